// Multimodal RoPE (M-RoPE): each rotated pair takes its position from one of three rows —
// temporal T, height H, width W — so image patches get 2-D positions and video frames 3-D.
// Qwen2-VL, Wang et al., arXiv:2409.12191 (contiguous sections); Qwen2.5-VL,
// arXiv:2502.13923 (same text RoPE); Qwen3-VL, arXiv:2511.21631 (interleaved assignment, so
// every axis spans high and low frequencies); GLM-4.1V (sections over interleaved pairs);
// ERNIE-4.5-VL (H/W alternating, T last). The frequencies are the plain ones; only the
// position row per pair changes. This is separate from the pair layout (which features form
// a pair): see ropekit/config.h.
#include "freq/freq_math.h"
#include "ropekit/error.h"

namespace ropekit::detail {

std::vector<std::uint8_t> mrope_pair_axes(const MRopeSpec& spec, int pairs) {
  constexpr std::uint8_t kT = 0, kH = 1, kW = 2;
  std::vector<std::uint8_t> axis(static_cast<std::size_t>(pairs), kT);
  const auto [s0, s1, s2] = spec.section;
  for (int k = 0; k < pairs; ++k) {
    std::uint8_t a = kT;
    switch (spec.assignment) {
      case MRopeAssignment::kSections:  // [t | h | w]
        a = k < s0 ? kT : (k < s0 + s1 ? kH : kW);
        break;
      case MRopeAssignment::kInterleavedThw:  // T H W T H W ... then T
        if (k % 3 == 1 && k < 3 * s1)
          a = kH;
        else if (k % 3 == 2 && k < 3 * s2)
          a = kW;
        break;
      case MRopeAssignment::kErnieHw:  // section = [h, w, t]: H W H W ... then T
        a = k < s0 + s1 ? (k % 2 == 0 ? kH : kW) : kT;
        break;
    }
    axis[static_cast<std::size_t>(k)] = a;
  }
  return axis;
}

std::vector<std::uint8_t> xdrope_pair_axes(const XdRopeSpec& spec, int pairs) {
  const auto n = spec.section.size();
  bool ok = n >= 1 && n <= 4;
  long sum = 0;
  for (const int s : spec.section) {
    ok = ok && s >= 0;
    sum += s;
  }
  if (!ok || sum != pairs)
    throw ConfigError("xdrope_section", "expected 1 to 4 sections >= 0 summing to rotary_dim/2 = " +
                                            std::to_string(pairs) + ", got " + std::to_string(n) +
                                            " sections summing to " + std::to_string(sum));
  std::vector<std::uint8_t> axis;
  axis.reserve(static_cast<std::size_t>(pairs));
  for (std::size_t j = 0; j < n; ++j)
    axis.insert(axis.end(), static_cast<std::size_t>(spec.section[j]),
                static_cast<std::uint8_t>(j));
  return axis;
}

}  // namespace ropekit::detail
