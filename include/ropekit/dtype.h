// ropekit/dtype.h — element types and correctly rounded conversions.
//
// Tensors hold f32, f16 (IEEE binary16) or bf16 (bfloat16: the top 16 bits of a binary32).
// All rotation math is done in f32 (fast kernels) or f64 (reference) and rounded ONCE to the
// output type with round-to-nearest-even (RNE). The conversions below are portable bit
// manipulation: exact for every input, NaN kept quiet (sign and payload top bits kept),
// overflow to ±inf, f16 subnormals rounded correctly.
//
//   f32 → bf16:  add 0x7FFF + lsb(bit 16), keep the top 16 bits      (RNE)
//   f32 → f16:   rebias the exponent 127 → 15, round the 23-bit mantissa to 10 bits (RNE),
//                subnormals below 2^-14 rounded at their fixed 2^-24 quantum
//   f64 → f16/bf16: rounded directly from the double (a single rounding, no double rounding)
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace ropekit {

enum class DType { kF32, kF16, kBF16 };

constexpr std::string_view dtype_name(DType t) noexcept {
  switch (t) {
    case DType::kF32:
      return "f32";
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
  }
  return "?";
}
constexpr int dtype_size(DType t) noexcept { return t == DType::kF32 ? 4 : 2; }

// 16-bit storage types. Plain structs over the bits, so tensors of them are trivially copyable.
struct F16 {
  std::uint16_t bits;
};
struct BF16 {
  std::uint16_t bits;
};

// ---- bf16 ------------------------------------------------------------------------------------
constexpr float bf16_to_f32(BF16 h) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h.bits) << 16);
}

constexpr BF16 f32_to_bf16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: keep sign and top payload, force quiet
    return BF16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
  }
  const std::uint32_t lsb = (u >> 16) & 1u;
  return BF16{static_cast<std::uint16_t>((u + 0x7FFFu + lsb) >> 16)};
}

// Rounds a double straight to bf16 (one rounding). Going through float first could round twice.
constexpr BF16 f64_to_bf16(double d) noexcept {
  const float f = static_cast<float>(d);  // RNE to 24 bits
  if (!(f == f) || std::bit_cast<std::uint32_t>(f) == 0x7F800000u ||
      std::bit_cast<std::uint32_t>(f) == 0xFF800000u) {
    return f32_to_bf16(f);
  }
  // If the float rounding landed exactly on a bf16 tie, the tie may be artificial: decide by the
  // sign of the residual d - f.
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0xFFFFu) == 0x8000u) {
    const double residual = d - static_cast<double>(f);
    if (residual != 0.0) {
      const bool away_from_zero = (residual > 0) == (f > 0);
      const std::uint32_t truncated = u & 0xFFFF0000u;
      return BF16{
          static_cast<std::uint16_t>((away_from_zero ? truncated + 0x10000u : truncated) >> 16)};
    }
  }
  return f32_to_bf16(f);
}

// ---- f16 -------------------------------------------------------------------------------------
constexpr float f16_to_f32(F16 h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h.bits & 0x8000u) << 16;
  const std::uint32_t exp = (h.bits >> 10) & 0x1Fu;
  const std::uint32_t man = h.bits & 0x3FFu;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));  // inf / NaN
  if (exp == 0) {
    // zero or subnormal: man * 2^-24, exact in float
    const float mag = static_cast<float>(man) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -mag : mag;
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));  // 112 = 127 - 15
}

namespace detail {
// Round a non-negative finite double magnitude to f16 bits (RNE), saturating to inf.
constexpr std::uint16_t f16_bits_from_magnitude(double a) noexcept {
  constexpr double kMaxF16 = 65504.0;
  constexpr double kOverflowThreshold = 65520.0;  // halfway between 65504 and 2^16: ties go to inf
  if (a >= kOverflowThreshold) return 0x7C00u;
  if (a > kMaxF16) return 0x7BFFu;  // rounds down to max
  // Find the quantum: for a in [2^e, 2^(e+1)) with e >= -14 the spacing is 2^(e-10);
  // below 2^-14 (subnormals) it is 2^-24.
  int e = 0;
  if (a >= 6.103515625e-05) {  // 2^-14
    (void)std::frexp(a, &e);   // a = m * 2^e, m in [0.5, 1): a in [2^(e-1), 2^e)
    e -= 1;
  } else {
    e = -14;
  }
  const double quantum = std::ldexp(1.0, e - 10);
  const double scaled = a / quantum;  // exact: power-of-two scaling
  double q = std::floor(scaled);
  const double rem = scaled - q;
  if (rem > 0.5 || (rem == 0.5 && std::fmod(q, 2.0) != 0.0)) q += 1.0;
  // Reassemble: value = q * quantum.
  const double v = q * quantum;
  if (v >= 65520.0) return 0x7C00u;
  if (v < 6.103515625e-05) return static_cast<std::uint16_t>(q);  // subnormal: q < 1024
  int ve = 0;
  const double vm = std::frexp(v, &ve);  // v = vm * 2^ve, vm in [0.5,1)
  const auto exp_field = static_cast<std::uint16_t>(ve - 1 + 15);
  const auto man_field = static_cast<std::uint16_t>((vm * 2.0 - 1.0) * 1024.0);
  return static_cast<std::uint16_t>((exp_field << 10) | man_field);
}
}  // namespace detail

// Exact RNE from double (one rounding). Also used for f32 inputs (a float is exactly a double).
inline F16 f64_to_f16(double d) noexcept {
  if (d != d) {
    const std::uint64_t u = std::bit_cast<std::uint64_t>(d);
    const auto sign = static_cast<std::uint16_t>((u >> 48) & 0x8000u);
    const auto payload = static_cast<std::uint16_t>((u >> 42) & 0x3FFu);
    return F16{static_cast<std::uint16_t>(sign | 0x7E00u | payload)};
  }
  const bool neg = std::signbit(d);
  const std::uint16_t mag =
      std::isinf(d) ? std::uint16_t{0x7C00u} : detail::f16_bits_from_magnitude(std::fabs(d));
  return F16{static_cast<std::uint16_t>(mag | (neg ? 0x8000u : 0u))};
}
inline F16 f32_to_f16(float f) noexcept { return f64_to_f16(static_cast<double>(f)); }

// ---- generic helpers -------------------------------------------------------------------------
// Loads element i of a buffer of type t as double; stores with one RNE rounding.
inline double load_as_double(DType t, const void* p) noexcept {
  switch (t) {
    case DType::kF32:
      return *static_cast<const float*>(p);
    case DType::kF16:
      return f16_to_f32(*static_cast<const F16*>(p));
    case DType::kBF16:
      return bf16_to_f32(*static_cast<const BF16*>(p));
  }
  return 0.0;
}
inline void store_from_double(DType t, void* p, double v) noexcept {
  switch (t) {
    case DType::kF32:
      *static_cast<float*>(p) = static_cast<float>(v);
      break;
    case DType::kF16:
      *static_cast<F16*>(p) = f64_to_f16(v);
      break;
    case DType::kBF16:
      *static_cast<BF16*>(p) = f64_to_bf16(v);
      break;
  }
}
// Rounds v to the nearest value representable in t (RNE), returned as double.
inline double round_to_dtype(DType t, double v) noexcept {
  switch (t) {
    case DType::kF32:
      return static_cast<float>(v);
    case DType::kF16:
      return f16_to_f32(f64_to_f16(v));
    case DType::kBF16:
      return bf16_to_f32(f64_to_bf16(v));
  }
  return v;
}

}  // namespace ropekit
