// The bench's baselines (cli/bench_loops.h), compiled once per SIMD target (Highway's
// foreach_target) and dispatched at run time like the library's kernels, so that the plain
// loop gets the same instruction set as ropekit without -march flags: its inner loops are
// ordinary C++ that the compiler vectorises under each target's attributes.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench_loops.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "bench_loops.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit::cli::bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---- copies --------------------------------------------------------------------------------
// How many of `bytes` bytes from p lie before its first `align`-aligned address.
inline std::size_t HeadBytes(const std::uint8_t* p, std::size_t bytes, std::size_t align) {
  const std::size_t mis = reinterpret_cast<std::uintptr_t>(p) % align;
  return std::min(bytes, mis == 0 ? std::size_t{0} : align - mis);
}

// Bytes up to the first `align`-aligned address of dst, copied with memcpy; returns their count.
inline std::size_t CopyHead(std::uint8_t* dst, const std::uint8_t* src, std::size_t bytes,
                            std::size_t align) {
  const std::size_t head = HeadBytes(dst, bytes, align);
  std::memcpy(dst, src, head);
  return head;
}

template <int kUnroll, class D>
void CopyUnrolled(D d, std::uint8_t* dst, const std::uint8_t* src, std::size_t bytes) {
  const std::size_t N = hn::Lanes(d);
  std::size_t i = CopyHead(dst, src, bytes, N);
  for (; i + kUnroll * N <= bytes; i += kUnroll * N) {
    hn::Vec<D> v[kUnroll];
    for (int u = 0; u < kUnroll; ++u) v[u] = hn::LoadU(d, src + i + u * N);
    for (int u = 0; u < kUnroll; ++u) hn::Store(v[u], d, dst + i + u * N);
  }
  std::memcpy(dst + i, src + i, bytes - i);
}

void CopyFloor(int variant, void* dst_v, const void* src_v, std::size_t bytes) {
  auto* dst = static_cast<std::uint8_t*>(dst_v);
  const auto* src = static_cast<const std::uint8_t*>(src_v);
  const hn::ScalableTag<std::uint8_t> d;
  switch (variant) {
    case 0:
      CopyUnrolled<4>(d, dst, src, bytes);
      return;
    case 1:
      CopyUnrolled<8>(d, dst, src, bytes);
      return;
    case 3:
      // One vector at a time, each load followed by its store: with the VM's memory at half its
      // earlier bandwidth, this measured 10-20% faster at DRAM sizes than the unrolled loops
      // (which load 4 or 8 vectors, then store them), and faster than the check copy below,
      // which the unrolled loops were not.
      CopyUnrolled<1>(d, dst, src, bytes);
      return;
    default: {
      // Half-width vectors: on CPUs that split a full-width store in two (AMD Zen 4 with
      // AVX-512) the narrower stores can stream better.
      const hn::CappedTag<std::uint8_t, (HWY_MAX_BYTES >= 32 ? HWY_MAX_BYTES / 2 : 16)> dh;
      CopyUnrolled<8>(dh, dst, src, bytes);
      return;
    }
  }
}

// A plain loop of 8-byte words. `zero` is 0 at run time but unknown to the compiler, so the
// loop is not turned into a call to memcpy (which switches to non-temporal stores for large
// sizes); the XOR costs one vector operation per vector moved.
void CopyCheck(void* dst_v, const void* src_v, std::size_t bytes, std::uint64_t zero) {
  auto* __restrict dst = static_cast<std::uint64_t*>(dst_v);
  const auto* __restrict src = static_cast<const std::uint64_t*>(src_v);
  const std::size_t words = bytes / 8;
  for (std::size_t i = 0; i < words; ++i) dst[i] = src[i] ^ zero;
  std::memcpy(reinterpret_cast<std::uint8_t*>(dst) + words * 8,
              reinterpret_cast<const std::uint8_t*>(src) + words * 8, bytes - words * 8);
}

void CopyNonTemporal(void* dst_v, const void* src_v, std::size_t bytes) {
  auto* dst = static_cast<std::uint8_t*>(dst_v);
  const auto* src = static_cast<const std::uint8_t*>(src_v);
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = CopyHead(dst, src, bytes, N);
  for (; i + 4 * N <= bytes; i += 4 * N) {
    const auto v0 = hn::LoadU(d, src + i);
    const auto v1 = hn::LoadU(d, src + i + N);
    const auto v2 = hn::LoadU(d, src + i + 2 * N);
    const auto v3 = hn::LoadU(d, src + i + 3 * N);
    hn::Stream(v0, d, dst + i);
    hn::Stream(v1, d, dst + i + N);
    hn::Stream(v2, d, dst + i + 2 * N);
    hn::Stream(v3, d, dst + i + 3 * N);
  }
  hwy::FlushStream();
  std::memcpy(dst + i, src + i, bytes - i);
}

// Loads and stores back 4 vectors at a time, aligned, with the bytes before the first aligned
// address and after the last whole group done one at a time. Each vector is XORed with `zero`
// (0 at run time, unknown to the compiler) so that the store of a value just loaded from the same
// address is not removed as redundant; that costs one vector operation per vector, as in
// CopyCheck.
void PassInPlace(void* data_v, std::size_t bytes, std::uint64_t zero) {
  auto* p = static_cast<std::uint8_t*>(data_v);
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t N = hn::Lanes(d);
  const auto z = hn::BitCast(d, hn::Set(hn::ScalableTag<std::uint64_t>(), zero));
  const auto zb = static_cast<std::uint8_t>(zero);
  const std::size_t head = HeadBytes(p, bytes, N);
  std::size_t i = 0;
  for (; i < head; ++i) p[i] ^= zb;
  for (; i + 4 * N <= bytes; i += 4 * N) {
    const auto v0 = hn::Load(d, p + i);
    const auto v1 = hn::Load(d, p + i + N);
    const auto v2 = hn::Load(d, p + i + 2 * N);
    const auto v3 = hn::Load(d, p + i + 3 * N);
    hn::Store(hn::Xor(v0, z), d, p + i);
    hn::Store(hn::Xor(v1, z), d, p + i + N);
    hn::Store(hn::Xor(v2, z), d, p + i + 2 * N);
    hn::Store(hn::Xor(v3, z), d, p + i + 3 * N);
  }
  for (; i < bytes; ++i) p[i] ^= zb;
}

// ---- the plain loop ------------------------------------------------------------------------
// A float's bits and back (std::bit_cast: compilers vectorise it like the arithmetic around it).
inline float Bits(std::uint32_t u) { return std::bit_cast<float>(u); }
inline std::uint32_t Bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Element access: float as it is; bf16 bits widened by a shift and rounded to nearest even
// (no NaN handling: the bench's inputs are finite).
struct F32Io {
  using T = float;
  static float Load(float v) { return v; }
  static float Store(float v) { return v; }
};
struct BF16Io {
  using T = std::uint16_t;
  static float Load(std::uint16_t v) { return Bits(static_cast<std::uint32_t>(v) << 16); }
  static std::uint16_t Store(float f) {
    const std::uint32_t u = Bits(f);
    return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  }
};
// f16 by integer and float arithmetic that compilers vectorise (their _Float16 conversions are
// scalar in GCC 12 and missing in Clang 14 on x86): the widening rebias with a float multiply
// for subnormals, and round-to-nearest-even narrowing by adding a bias and the kept mantissa's
// low bit before truncating (the usual branch-free forms; selects, no branches).
struct F16Io {
  using T = std::uint16_t;
  static float Load(std::uint16_t h) {
    const std::uint32_t mag = static_cast<std::uint32_t>(h & 0x7FFFu) << 13;
    const std::uint32_t exp = mag & 0x0F800000u;
    // Normal numbers: rebias 15 -> 127. Inf/NaN: to the top exponent. Zero/subnormal: scale.
    const float normal = Bits(mag + (112u << 23));
    const float special = Bits(mag + (224u << 23));
    const float sub = Bits(mag + (113u << 23)) - Bits(113u << 23);
    const float m = exp == 0x0F800000u ? special : (exp == 0 ? sub : normal);
    return Bits(Bits(m) | (static_cast<std::uint32_t>(h & 0x8000u) << 16));
  }
  static std::uint16_t Store(float f) {
    const std::uint32_t u = Bits(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t mag = u & 0x7FFFFFFFu;
    // Subnormal results: a float add of 0.5 (as the bias) rounds the mantissa to 2^-24 steps.
    const std::uint32_t sub = Bits(Bits(mag) + 0.5f) - Bits(0.5f);
    // Normal results: rebias 127 -> 15 and round to nearest even at bit 13.
    const std::uint32_t normal = (mag + ((15u - 127u) << 23) + 0xFFFu + ((mag >> 13) & 1u)) >> 13;
    const std::uint32_t big = mag > 0x7F800000u ? 0x7E00u : 0x7C00u;  // NaN : overflow to inf
    const std::uint32_t h = mag >= (143u << 23) ? big : (mag < (113u << 23) ? sub : normal);
    return static_cast<std::uint16_t>(h | sign);
  }
};

template <class Io, bool kInterleaved>
void RotateHeadOut(const typename Io::T* __restrict x, typename Io::T* __restrict y,
                   const float* __restrict c, const float* __restrict s, int pairs, int head_dim) {
  for (int i = 0; i < pairs; ++i) {
    const int a = kInterleaved ? 2 * i : i, b = kInterleaved ? 2 * i + 1 : i + pairs;
    const float x0 = Io::Load(x[a]), x1 = Io::Load(x[b]);
    y[a] = Io::Store(x0 * c[i] - x1 * s[i]);
    y[b] = Io::Store(x1 * c[i] + x0 * s[i]);
  }
  for (int j = 2 * pairs; j < head_dim; ++j) y[j] = x[j];
}

template <class Io, bool kInterleaved>
void RotateHeadInPlace(typename Io::T* x, const float* __restrict c, const float* __restrict s,
                       int pairs) {
  for (int i = 0; i < pairs; ++i) {
    const int a = kInterleaved ? 2 * i : i, b = kInterleaved ? 2 * i + 1 : i + pairs;
    const float x0 = Io::Load(x[a]), x1 = Io::Load(x[b]);
    x[a] = Io::Store(x0 * c[i] - x1 * s[i]);
    x[b] = Io::Store(x1 * c[i] + x0 * s[i]);
  }
}

template <class Io, bool kInterleaved>
void PlainTokens(const PlainJob& job, std::int64_t t_begin, std::int64_t t_end) {
  using T = typename Io::T;
  const std::int64_t hd = job.head_dim;
  for (std::int64_t t = t_begin; t < t_end; ++t) {
    const float* c = job.cos + job.positions[t] * job.pairs;
    const float* s = job.sin + job.positions[t] * job.pairs;
    for (int n = 0; n < job.n_tensors; ++n) {
      const PlainTensor& pt = job.tensors[n];
      const std::int64_t row = t * pt.heads * hd;
      const T* in = static_cast<const T*>(pt.in) + row;
      T* out = static_cast<T*>(pt.out) + row;
      if (pt.in == pt.out) {
        for (std::int64_t h = 0; h < pt.heads; ++h)
          RotateHeadInPlace<Io, kInterleaved>(out + h * hd, c, s, job.pairs);
      } else {
        for (std::int64_t h = 0; h < pt.heads; ++h)
          RotateHeadOut<Io, kInterleaved>(in + h * hd, out + h * hd, c, s, job.pairs, job.head_dim);
      }
    }
  }
}

template <class Io>
void PlainTyped(const PlainJob& job, std::int64_t t_begin, std::int64_t t_end) {
  if (job.interleaved)
    PlainTokens<Io, true>(job, t_begin, t_end);
  else
    PlainTokens<Io, false>(job, t_begin, t_end);
}

void PlainRope(const PlainJob& job, std::int64_t t_begin, std::int64_t t_end) {
  switch (job.dtype) {
    case DType::kF32:
      PlainTyped<F32Io>(job, t_begin, t_end);
      return;
    case DType::kBF16:
      PlainTyped<BF16Io>(job, t_begin, t_end);
      return;
    case DType::kF16:
      PlainTyped<F16Io>(job, t_begin, t_end);
      return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ropekit::cli::bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ropekit::cli::bench {
HWY_EXPORT(CopyFloor);
HWY_EXPORT(CopyCheck);
HWY_EXPORT(CopyNonTemporal);
HWY_EXPORT(PassInPlace);
HWY_EXPORT(PlainRope);

namespace {
// Zero, read through a volatile so that the compiler cannot see it (CopyCheck).
volatile std::uint64_t g_zero = 0;
}  // namespace

int copy_floor_variants() { return 4; }
const char* copy_floor_name(int variant) {
  switch (variant) {
    case 0:
      return "vector x4";
    case 1:
      return "vector x8";
    case 3:
      return "vector x1";
    default:
      return "half-vector x8";
  }
}
void copy_floor(int variant, void* dst, const void* src, std::size_t bytes) {
  HWY_DYNAMIC_DISPATCH(CopyFloor)(variant, dst, src, bytes);
}
void copy_check(void* dst, const void* src, std::size_t bytes) {
  HWY_DYNAMIC_DISPATCH(CopyCheck)(dst, src, bytes, g_zero);
}
void copy_non_temporal(void* dst, const void* src, std::size_t bytes) {
  HWY_DYNAMIC_DISPATCH(CopyNonTemporal)(dst, src, bytes);
}
void pass_in_place(void* data, std::size_t bytes) {
  HWY_DYNAMIC_DISPATCH(PassInPlace)(data, bytes, g_zero);
}
void plain_rope(const PlainJob& job, std::int64_t t_begin, std::int64_t t_end) {
  HWY_DYNAMIC_DISPATCH(PlainRope)(job, t_begin, t_end);
}

}  // namespace ropekit::cli::bench
#endif  // HWY_ONCE
