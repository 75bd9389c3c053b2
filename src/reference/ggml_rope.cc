// ggml's CPU RoPE (ggml-cpu ops.cpp: rope_yarn_ramp, rope_yarn, ggml_rope_cache_init,
// ggml_mrope_cache_init, rotate_pairs), replayed in float32 step by step: the llama.cpp numerics
// of include/ropekit/ggml_rope.h. Scalar on purpose: it is a reference of what llama.cpp
// computes, not a fast path.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "reference/ggml_math.h"
#include "ropekit/error.h"
#include "ropekit/ggml_rope.h"

namespace ropekit {
namespace {

struct Corr {
  float low = 0, high = 0;
};

// ggml_rope_yarn_corr_dims, in float as ggml computes it.
Corr corr_dims(const GgmlRopeParams& p) {
  auto dim = [&](float n_rot) {
    return static_cast<float>(p.n_dims) *
           std::log(static_cast<float>(p.n_ctx_orig) /
                    (n_rot * 2.0f * static_cast<float>(std::numbers::pi))) /
           (2.0f * std::log(p.freq_base));
  };
  Corr c;
  c.low = std::max(0.0f, std::floor(dim(p.beta_fast)));
  c.high = std::min(static_cast<float>(p.n_dims - 1), std::ceil(dim(p.beta_slow)));
  return c;
}

float ramp(const Corr& c, int pair) {
  const float y = (static_cast<float>(pair) - c.low) / std::max(0.001f, c.high - c.low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

bool multi(GgmlRopeMode m) {
  return m == GgmlRopeMode::kMrope || m == GgmlRopeMode::kImrope || m == GgmlRopeMode::kVision;
}

int pair_count(const GgmlRopeParams& p) {
  return p.mode == GgmlRopeMode::kVision ? p.n_dims : p.n_dims / 2;
}

void check(const GgmlRopeParams& p) {
  if (p.n_dims <= 0 || p.n_dims % 2 != 0)
    throw ArgumentError("n_dims: expected an even number > 0, got " + std::to_string(p.n_dims));
  if (!p.freq_factors.empty() && static_cast<int>(p.freq_factors.size()) < pair_count(p))
    throw ArgumentError("freq_factors: expected at least " + std::to_string(pair_count(p)) +
                        " values, got " + std::to_string(p.freq_factors.size()));
  if (p.ext_factor != 0 && p.n_ctx_orig <= 0)
    throw ArgumentError("n_ctx_orig: expected > 0 with ext_factor != 0");
}

// The angle before rope_yarn (theta_extrap) for each pair, by ggml's running products.
void extrap_angles(const GgmlRopeParams& p, const std::array<std::int64_t, 4>& pos, float* out) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_dims));
  const int pairs = pair_count(p);
  std::array<float, 4> base{};
  for (int s = 0; s < 4; ++s) base[s] = static_cast<float>(pos[s]);
  std::array<float, 4> theta = base;
  const auto& sec = p.sections;
  const int sect_dims = sec[0] + sec[1] + sec[2] + sec[3];
  const int sec_w = sec[0] + sec[1], sec_e = sec_w + sec[2];
  for (int i = 0; i < pairs; ++i) {
    const float ff = p.freq_factors.empty() ? 1.0f : p.freq_factors[static_cast<std::size_t>(i)];
    float t = theta[0];
    if (multi(p.mode) && sect_dims > 0) {
      const int sector = i % sect_dims;
      if (p.mode == GgmlRopeMode::kVision) {  // independent sections: restart each stream
        if (sector == 0)
          theta[0] = base[0];
        else if (sector == sec[0])
          theta[1] = base[1];
        else if (sector == sec_w)
          theta[2] = base[2];
        else if (sector == sec_e)
          theta[3] = base[3];
      }
      if (p.mode == GgmlRopeMode::kImrope) {
        if (sector % 3 == 1 && sector < 3 * sec[1])
          t = theta[1];
        else if (sector % 3 == 2 && sector < 3 * sec[2])
          t = theta[2];
        else if (sector % 3 == 0 && sector < 3 * sec[0])
          t = theta[0];
        else
          t = theta[3];
      } else {
        t = theta[0];
        if (sector >= sec[0] && sector < sec_w)
          t = theta[1];
        else if (sector >= sec_w && sector < sec_e)
          t = theta[2];
        else if (sector >= sec_e)
          t = theta[3];
      }
    }
    out[i] = t / ff;
    for (float& v : theta) v *= theta_scale;
  }
}

}  // namespace

namespace detail {

int ggml_pair_count(const GgmlRopeParams& p) { return pair_count(p); }

void ggml_check_params(const GgmlRopeParams& p) { check(p); }

float ggml_magnitude(const GgmlRopeParams& p) {
  // rope_yarn multiplies per pair; the product is the same for every pair.
  float mscale = p.attn_factor;
  if (p.ext_factor != 0) mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  return mscale;
}

void ggml_angles_into(const GgmlRopeParams& p, const std::array<std::int64_t, 4>& position,
                      float* theta) {
  std::array<std::int64_t, 4> pos = position;
  if (!multi(p.mode)) pos = {position[0], position[0], position[0], position[0]};
  extrap_angles(p, pos, theta);
  const int pairs = pair_count(p);
  const Corr c = p.ext_factor != 0 ? corr_dims(p) : Corr{};
  for (int i = 0; i < pairs; ++i) {
    const float extrap = theta[i];
    const float interp = p.freq_scale * extrap;
    if (p.ext_factor != 0) {
      const float mix = ramp(c, i) * p.ext_factor;
      theta[i] = interp * (1 - mix) + extrap * mix;
    } else {
      theta[i] = interp;
    }
  }
}

void ggml_cos_sin_into(const GgmlRopeParams& p, const std::array<std::int64_t, 4>& position,
                       float magnitude, float* cos_out, float* sin_out) {
  ggml_angles_into(p, position, cos_out);  // the angles, overwritten pair by pair below
  const int pairs = pair_count(p);
  for (int i = 0; i < pairs; ++i) {
    const float theta = cos_out[i];
    cos_out[i] = std::cos(theta) * magnitude;
    sin_out[i] = std::sin(theta) * magnitude;
  }
}

}  // namespace detail

std::vector<float> ggml_rope_angles(const GgmlRopeParams& p,
                                    const std::array<std::int64_t, 4>& position) {
  check(p);
  std::vector<float> theta(static_cast<std::size_t>(pair_count(p)));
  detail::ggml_angles_into(p, position, theta.data());
  return theta;
}

std::vector<float> ggml_rope_cache(const GgmlRopeParams& p,
                                   const std::array<std::int64_t, 4>& position, bool backward) {
  check(p);
  const auto pairs = static_cast<std::size_t>(pair_count(p));
  std::vector<float> c(pairs), s(pairs);
  detail::ggml_cos_sin_into(p, position, detail::ggml_magnitude(p), c.data(), s.data());
  const float sign = backward ? -1.0f : 1.0f;
  std::vector<float> cache(2 * pairs);
  for (std::size_t i = 0; i < pairs; ++i) {
    cache[2 * i] = c[i];
    cache[2 * i + 1] = s[i] * sign;
  }
  return cache;
}

void ggml_rope_apply(const GgmlRopeParams& p, std::span<float> x, std::int64_t tokens,
                     std::int64_t heads, std::int64_t head_dim,
                     std::span<const std::int32_t> positions, bool backward) {
  check(p);
  if (tokens < 0 || heads < 0 || head_dim <= 0 ||
      x.size() != static_cast<std::size_t>(tokens * heads * head_dim))
    throw ArgumentError("x: expected tokens · heads · head_dim floats");
  const bool vision = p.mode == GgmlRopeMode::kVision;
  if (vision ? 2 * p.n_dims != head_dim : p.n_dims > head_dim)
    throw ArgumentError("n_dims: expected " +
                        std::string(vision ? "head_dim / 2" : "at most head_dim") + ", got " +
                        std::to_string(p.n_dims));
  const std::size_t want = static_cast<std::size_t>(tokens) * (multi(p.mode) ? 4 : 1);
  if (positions.size() != want)
    throw ArgumentError("positions: expected " + std::to_string(want) + " values, got " +
                        std::to_string(positions.size()));
  const int pairs = pair_count(p);
  const std::size_t half =
      vision ? static_cast<std::size_t>(p.n_dims) : static_cast<std::size_t>(p.n_dims / 2);
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::array<std::int64_t, 4> pos{};
    for (int s = 0; s < 4; ++s)
      pos[s] = multi(p.mode) ? positions[static_cast<std::size_t>(s * tokens + t)]
                             : positions[static_cast<std::size_t>(t)];
    const std::vector<float> cache = ggml_rope_cache(p, pos, backward);
    for (std::int64_t h = 0; h < heads; ++h) {
      float* row = x.data() + (t * heads + h) * head_dim;
      for (int i = 0; i < pairs; ++i) {
        const std::size_t a = p.mode == GgmlRopeMode::kNormal ? 2 * static_cast<std::size_t>(i)
                                                              : static_cast<std::size_t>(i);
        const std::size_t b = p.mode == GgmlRopeMode::kNormal ? a + 1 : a + half;
        const float c = cache[2 * static_cast<std::size_t>(i)];
        const float s = cache[2 * static_cast<std::size_t>(i) + 1];
        const float x0 = row[a], x1 = row[b];
        row[a] = x0 * c - x1 * s;
        row[b] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace ropekit
