#include "output_diff.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace ropekit::cli {
namespace {

constexpr std::int64_t kHeads = 2;

// The shared goldens' q formula: exact in float32, varied signs and magnitudes per feature.
// Tokens [first, first + tokens) of it.
std::vector<float> make_input(std::int64_t tokens, std::int64_t head_dim, std::int64_t first) {
  std::vector<float> q(static_cast<std::size_t>(tokens * kHeads * head_dim));
  for (std::int64_t t = first; t < first + tokens; ++t) {
    for (std::int64_t h = 0; h < kHeads; ++h) {
      for (std::int64_t d = 0; d < head_dim; ++d) {
        q[static_cast<std::size_t>(((t - first) * kHeads + h) * head_dim + d)] =
            static_cast<float>(((31 * h + 17 * t + 7 * d) % 23 - 11) / 8.0);
      }
    }
  }
  return q;
}

std::vector<float> rotate(const OutputSide& side, const std::vector<float>& input,
                          const std::vector<std::int64_t>& positions) {
  const FrequencyPlan& plan = *side.plan;
  const auto tokens = static_cast<std::int64_t>(positions.size());
  std::vector<float> out(input.size());
  // M-RoPE plans take three position rows; text tokens have T = H = W = the position.
  std::vector<std::int64_t> rows;
  Positions pos = Positions::per_token(std::span<const std::int64_t>(positions));
  if (plan.info.mrope) {
    rows.reserve(positions.size() * 3);
    for (int r = 0; r < 3; ++r) rows.insert(rows.end(), positions.begin(), positions.end());
    pos = Positions::mrope(std::span<const std::int64_t>(rows), tokens);
  }
  ApplyOptions options;
  options.angles = side.angles;
  options.fold_attention_factor = true;
  // kInterleavedToHalf writes pairs de-interleaved and is only valid out of place, which this is.
  const auto in =
      ConstTensorView::contiguous(input.data(), DType::kF32, tokens, kHeads, plan.head_dim);
  const auto q_out = TensorView::contiguous(out.data(), DType::kF32, tokens, kHeads, plan.head_dim);
  // k is a second copy of q: the tool compares one tensor, apply_rope rotates two.
  std::vector<float> k_out(input.size());
  const auto k_view =
      TensorView::contiguous(k_out.data(), DType::kF32, tokens, kHeads, plan.head_dim);
  apply_rope(plan, in, q_out, in, k_view, pos, options);
  return out;
}

}  // namespace

std::vector<std::int64_t> sample_positions(std::int64_t max_position) {
  max_position = std::clamp<std::int64_t>(max_position, 0, kMaxAbsPosition);
  std::vector<std::int64_t> p;
  for (std::int64_t i = 0; i < 16 && i <= max_position; ++i) p.push_back(i);
  if (max_position > 16) {
    constexpr int kGeometric = 48;
    const double ratio = std::pow(static_cast<double>(max_position) / 16.0, 1.0 / kGeometric);
    double v = 16;
    for (int i = 0; i < kGeometric; ++i) {
      v *= ratio;
      const auto n = std::min<std::int64_t>(max_position, std::llround(v));
      if (n > p.back()) p.push_back(n);
    }
    if (p.back() != max_position) p.push_back(max_position);
  }
  return p;
}

OutputDiff compare_outputs(const OutputSide& a, const OutputSide& b, std::int64_t max_position) {
  OutputDiff d;
  if (a.plan->head_dim != b.plan->head_dim) {
    d.reason = fmt::format("head_dim differs ({} vs {}): the outputs have different shapes",
                           a.plan->head_dim, b.plan->head_dim);
    return d;
  }
  d.positions = sample_positions(max_position);
  const std::int64_t head_dim = a.plan->head_dim;
  // In batches of positions holding at most ~1M values each (all 64 for the usual head_dim):
  // memory follows head_dim (up to 2^20), never positions x head_dim.
  const auto n = static_cast<std::int64_t>(d.positions.size());
  const std::int64_t batch =
      std::clamp<std::int64_t>((std::int64_t{1} << 20) / (kHeads * head_dim), 1, n);
  d.position_max_diff.assign(d.positions.size(), 0.0);
  for (std::int64_t t0 = 0; t0 < n; t0 += batch) {
    const std::int64_t m = std::min(batch, n - t0);
    const std::vector<float> input = make_input(m, head_dim, t0);
    const std::vector<std::int64_t> at(d.positions.begin() + t0, d.positions.begin() + t0 + m);
    const std::vector<float> ya = rotate(a, input, at);
    const std::vector<float> yb = rotate(b, input, at);
    for (std::size_t i = 0; i < ya.size(); ++i) {
      const double diff = std::fabs(static_cast<double>(ya[i]) - static_cast<double>(yb[i]));
      const std::size_t pos =
          static_cast<std::size_t>(t0) + i / static_cast<std::size_t>(kHeads * head_dim);
      d.position_max_diff[pos] = std::max(d.position_max_diff[pos], diff);
      d.max_abs_value = std::max(d.max_abs_value, std::fabs(static_cast<double>(ya[i])));
      if (diff > d.max_abs_diff) {
        d.max_abs_diff = diff;
        d.at_position = at[i / static_cast<std::size_t>(kHeads * head_dim)];
        d.at_feature = static_cast<int>(i % static_cast<std::size_t>(head_dim));
      }
    }
  }
  d.comparable = true;
  return d;
}

}  // namespace ropekit::cli
