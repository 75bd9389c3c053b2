// ggml's CPU RoPE loop written out again for the tests, from ggml-cpu's ops.cpp
// (ggml_rope_cache_init, ggml_mrope_cache_init, rope_yarn, rope_yarn_ramp,
// ggml_rope_yarn_corr_dims, rotate_pairs' partner features), independently of
// src/reference/ggml_rope.cc: the oracle of the llama.cpp numerics preset.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <utility>
#include <vector>

#include "ropekit/ggml_rope.h"

namespace ropekit::test {

using Pos4 = std::array<std::int64_t, 4>;

struct RefCache {
  std::vector<float> c, s;
};

inline RefCache ggml_loop(const GgmlRopeParams& p, const Pos4& pos) {
  const int mode = static_cast<int>(p.mode);
  const bool is_mrope = (mode & 8) != 0;
  const bool is_vision = mode == 24, is_imrope = mode == 40;
  const int pairs = is_vision ? p.n_dims : p.n_dims / 2;
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_dims));
  // ggml_rope_yarn_corr_dims
  float corr[2] = {0, 0};
  {
    auto dim = [&](float n_rot) {
      return static_cast<float>(p.n_dims) *
             std::log(static_cast<float>(p.n_ctx_orig) /
                      (n_rot * 2.0f * std::numbers::pi_v<float>)) /
             (2.0f * std::log(p.freq_base));
    };
    corr[0] = std::max(0.0f, std::floor(dim(p.beta_fast)));
    corr[1] = std::min(static_cast<float>(p.n_dims - 1), std::ceil(dim(p.beta_slow)));
  }
  auto rope_yarn = [&](float theta_extrap, int i0, float& c, float& s) {
    const float theta_interp = p.freq_scale * theta_extrap;
    float theta = theta_interp;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) {
      const float y = (static_cast<float>(i0 / 2) - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
      const float ramp_mix = (1 - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
      theta = theta_interp * (1 - ramp_mix) + theta_extrap * ramp_mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    }
    c = std::cos(theta) * mscale;
    s = std::sin(theta) * mscale;
  };
  RefCache r;
  r.c.resize(static_cast<std::size_t>(pairs));
  r.s.resize(static_cast<std::size_t>(pairs));
  const auto& sec = p.sections;
  const int sect_dims = sec[0] + sec[1] + sec[2] + sec[3];
  const int sec_w = sec[0] + sec[1];
  float tt = static_cast<float>(pos[0]), th = static_cast<float>(pos[1]),
        tw = static_cast<float>(pos[2]), te = static_cast<float>(pos[3]);
  for (int i0 = 0; i0 < 2 * pairs; i0 += 2) {
    const float ff =
        p.freq_factors.empty() ? 1.0f : p.freq_factors[static_cast<std::size_t>(i0 / 2)];
    float theta = tt;
    if (is_mrope) {
      const int sector = (i0 / 2) % sect_dims;
      if (is_vision) {
        if (sector == 0)
          tt = static_cast<float>(pos[0]);
        else if (sector == sec[0])
          th = static_cast<float>(pos[1]);
        else if (sector == sec_w)
          tw = static_cast<float>(pos[2]);
        else if (sector == sec_w + sec[2])
          te = static_cast<float>(pos[3]);
      }
      theta = tt;
      if (is_imrope) {
        if (sector % 3 == 1 && sector < 3 * sec[1])
          theta = th;
        else if (sector % 3 == 2 && sector < 3 * sec[2])
          theta = tw;
        else if (sector % 3 == 0 && sector < 3 * sec[0])
          theta = tt;
        else
          theta = te;
      } else {
        if (sector >= sec[0] && sector < sec_w)
          theta = th;
        else if (sector >= sec_w && sector < sec_w + sec[2])
          theta = tw;
        else if (sector >= sec_w + sec[2])
          theta = te;
      }
    }
    rope_yarn(theta / ff, i0, r.c[static_cast<std::size_t>(i0 / 2)],
              r.s[static_cast<std::size_t>(i0 / 2)]);
    tt *= theta_scale;
    th *= theta_scale;
    tw *= theta_scale;
    te *= theta_scale;
  }
  return r;
}

// rotate_pairs' partner features: NORMAL (2i, 2i+1), NEOX / M-RoPE (i, i + n_dims/2),
// VISION (i, i + n_dims).
inline std::pair<int, int> partners(const GgmlRopeParams& p, int i) {
  if (p.mode == GgmlRopeMode::kNormal) return {2 * i, 2 * i + 1};
  if (p.mode == GgmlRopeMode::kVision) return {i, i + p.n_dims};
  return {i, i + p.n_dims / 2};
}

}  // namespace ropekit::test
