// Multimodal RoPE (M-RoPE): each rotated pair takes its position from one of three rows —
// temporal T, height H, width W — so image patches get 2-D positions and video frames 3-D.
// Qwen2-VL, Wang et al., arXiv:2409.12191 (contiguous sections); Qwen2.5-VL,
// arXiv:2502.13923 (same text RoPE); Qwen3-VL, arXiv:2511.21631 (interleaved assignment, so
// every axis spans high and low frequencies); GLM-4.1V (sections over interleaved pairs);
// ERNIE-4.5-VL (H/W alternating, T last). The frequencies are the plain ones; only the
// position row per pair changes. This is separate from the pair layout (which features form
// a pair): see ropekit/config.h.
#include "freq/freq_math.h"

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
        if (k % 3 == 1 && k < 3 * s1) a = kH;
        else if (k % 3 == 2 && k < 3 * s2) a = kW;
        break;
      case MRopeAssignment::kErnieHw:  // section = [h, w, t]: H W H W ... then T
        a = k < s0 + s1 ? (k % 2 == 0 ? kH : kW) : kT;
        break;
    }
    axis[static_cast<std::size_t>(k)] = a;
  }
  return axis;
}

}  // namespace ropekit::detail
