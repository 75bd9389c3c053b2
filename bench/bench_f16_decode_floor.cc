// The instruction floor of cache-hot f16 decode on this CPU (developers' benchmark).
//
// `ropekit bench` times apply_rope on the decode shape (64 tokens × 32 heads × 128, cache-hot)
// against a copy of the same bytes; the target is 1.5× that copy on one thread. This
// file answers a narrower question for f16: how fast can the ROTATION ALONE go here? Each loop
// below is the shortest instruction sequence we know for one formulation, with everything the
// library does besides the rows removed: cos/sin constant and kept in registers, no tails, no
// pass-through, no per-token lookup or cos/sin computation. A library kernel can only be slower.
//
//   l1:0  the decode shape: 2048 rows of 128 f16 (512 KiB in, 512 KiB out, Highway-aligned)
//   l1:1  the same 2048 rows of work on a 16-row buffer (8 KiB, in L1): compute only
//   subnormals:1  one input in 97 is an f16 subnormal (~1e-6); values otherwise in (-2, 2)
//
// Each sample times 16 copies of the decode-shape bytes into the loop's output buffer (the
// library's detail::simd_copy, the floor of `ropekit bench`), then 16 runs of the loop, as
// `ropekit bench` batches decode calls. Counters: x_copy = median
// over samples of loop / copy (`ropekit bench`'s x_floor; with l1:1 it compares compute alone
// with the decode-shape copy), ns_per_row and copy_ns_per_row = median times per row.
//
//   bench_f16_decode_floor --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// Loops (half-split pairs, 64 pairs per row; the set-up checks each against the f32 formula
// rounded by the library's scalar f16 conversions before timing, so all three give its bits):
//   f16c        vcvtph2ps, 2 multiplies + 2 FMAs per 16 pairs, vcvtps2ph: the library's
//               RotateTokenF16Half
//   int_widen   f16 -> f32 by integer shifts (sign-extend the word, keep the sign and the low
//               15 bits at f32 bit 13: the value times 2^-112, exact for subnormals too; the
//               2^112 goes into cos/sin), pairs split even/odd like the bf16 kernels, vcvtps2ph
//               and one vpermt2w on the way out. Infinities and NaNs come out finite: a
//               library version would need one more test per input vector, left out here.
//               f16 subnormals become f32 subnormals, which this CPU's multiplies take slowly
//   hybrid      the first 32 pairs of each row as int_widen, the last 32 as f16c (spreads the
//               work over more execution ports; same caveats)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "ropekit/dtype.h"
#include "simd/simd_api.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define ROPEKIT_FLOOR_X86 1
#else
#define ROPEKIT_FLOOR_X86 0
#endif
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports the deliberately undefined pass-through vectors inside its unmasked AVX-512
// intrinsics (slli, cvtps_ph, ...) as (maybe-)uninitialized once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace {

#if ROPEKIT_FLOOR_X86

constexpr int kRowElems = 128;     // head_dim
constexpr int kPairs = 64;         // half-split pairs per row
constexpr int kDecodeRows = 2048;  // 64 tokens × 32 heads
constexpr int kL1Rows = 16;        // 8 KiB in + 8 KiB out

// The library's scalar f16 conversions (dtype.h, round-to-nearest-even) check the loops.
float F16ToF32(std::uint16_t h) { return ropekit::f16_to_f32(ropekit::F16{h}); }
std::uint16_t F32ToF16(float f) { return ropekit::f32_to_f16(f).bits; }

// Highway's allocator: 64-byte aligned (a plain std::vector of 512 KiB comes from mmap at a
// 16-byte offset, and every 64-byte access would straddle two cache lines), and successive
// allocations staggered, so that input and output do not alias modulo 4 KiB (aliasing made the
// integer-widening loops 10-25% slower).
using AlignedWords = hwy::AlignedFreeUniquePtr<std::uint16_t[]>;
AlignedWords ZeroedWords(std::size_t count) {
  AlignedWords p = hwy::AllocateAligned<std::uint16_t>(count);
  if (!p) throw std::bad_alloc();
  std::fill(p.get(), p.get() + count, std::uint16_t{0});
  return p;
}

struct Buffers {
  AlignedWords in, out;  // decode shape
  // L1 shape: input and output in one block, the output 512 bytes past a 4 KiB multiple from
  // the input so that loads and stores do not alias modulo 4 KiB.
  AlignedWords l1;
  std::uint16_t* l1_in;
  std::uint16_t* l1_out;
  alignas(64) float cos_nat[kPairs], sin_nat[kPairs];  // natural pair order
  alignas(64) float cos_eo_f16[kPairs],
      sin_eo_f16[kPairs];  // per 32 pairs: 16 even, 16 odd; ·2^112

  explicit Buffers(bool subnormals)
      : in(ZeroedWords(kDecodeRows * kRowElems)),
        out(ZeroedWords(kDecodeRows * kRowElems)),
        l1(ZeroedWords(2 * kL1Rows * kRowElems + 256)) {
    l1_in = l1.get();
    l1_out = l1.get() + kL1Rows * kRowElems + 256;
    for (std::size_t i = 0; i < static_cast<std::size_t>(kDecodeRows) * kRowElems; ++i) {
      const float v = static_cast<float>(static_cast<int>(i * 2654435761u % 4001) - 2000) / 1000.0f;
      in.get()[i] = F32ToF16(subnormals && i % 97 == 0 ? v * 1e-6f : v);
    }
    std::copy(in.get(), in.get() + kL1Rows * kRowElems, l1_in);
    for (int i = 0; i < kPairs; ++i) {
      const double theta = 1234.0 * std::pow(500000.0, -i / 64.0);  // position 1234, θ = 500000
      cos_nat[i] = static_cast<float>(std::cos(theta));
      sin_nat[i] = static_cast<float>(std::sin(theta));
    }
    for (int blk = 0; blk < kPairs / 32; ++blk)
      for (int j = 0; j < 16; ++j)
        for (int odd = 0; odd < 2; ++odd) {
          const int src = 32 * blk + 2 * j + odd, dst = 32 * blk + 16 * odd + j;
          cos_eo_f16[dst] = std::ldexp(cos_nat[src], 112);
          sin_eo_f16[dst] = std::ldexp(sin_nat[src], 112);
        }
  }
};

// The floor: the copy `ropekit bench` times (detail::simd_copy, regular stores).
void CopyRows(const std::uint16_t* in, std::uint16_t* out, int rows, int passes) {
  const std::size_t bytes = static_cast<std::size_t>(rows) * kRowElems * sizeof(std::uint16_t);
  for (int p = 0; p < passes; ++p) ropekit::detail::simd_copy(out, in, bytes);
}

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// 16 pairs starting at pair i, F16C both ways.
__attribute__((target("avx512f,avx512bw,f16c,fma"), always_inline)) inline void F16CBlock(
    const std::uint16_t* x, std::uint16_t* y, int i, __m512 c, __m512 s) {
  const __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
  const __m512 b =
      _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + kPairs + i)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                      _mm512_cvtps_ph(_mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)), kRne));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + kPairs + i),
                      _mm512_cvtps_ph(_mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)), kRne));
}

// Even word w (low half of a u32): (w << 16) >>arith 3 puts the sign at bit 31 (copies at
// 30..28, cleared by keep_even) and the low 15 bits at 27..13; odd word (high half): >>arith 3
// directly, then keep_odd clears the copies and the 13 bits of the even word shifted in.
// `order` puts [16 even-pair results | 16 odd-pair results] back in pair order.
struct IntWidenConsts {
  __m512i keep_even, keep_odd, order;
};

// 32 pairs starting at pair i; cos/sin (times 2^112) of the even and of the odd pairs.
__attribute__((target("avx512f,avx512bw,f16c,fma"), always_inline)) inline void IntWidenBlock(
    const std::uint16_t* x, std::uint16_t* y, int i, __m512 ce, __m512 co, __m512 se, __m512 so,
    const IntWidenConsts& k) {
  const __m512i wa = _mm512_loadu_si512(x + i), wb = _mm512_loadu_si512(x + kPairs + i);
  const __m512 ae = _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_srai_epi32(_mm512_slli_epi32(wa, 16), 3), k.keep_even));
  const __m512 ao = _mm512_castsi512_ps(_mm512_and_si512(_mm512_srai_epi32(wa, 3), k.keep_odd));
  const __m512 be = _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_srai_epi32(_mm512_slli_epi32(wb, 16), 3), k.keep_even));
  const __m512 bo = _mm512_castsi512_ps(_mm512_and_si512(_mm512_srai_epi32(wb, 3), k.keep_odd));
  const __m256i ya_e = _mm512_cvtps_ph(_mm512_fmsub_ps(ae, ce, _mm512_mul_ps(be, se)), kRne);
  const __m256i ya_o = _mm512_cvtps_ph(_mm512_fmsub_ps(ao, co, _mm512_mul_ps(bo, so)), kRne);
  const __m256i yb_e = _mm512_cvtps_ph(_mm512_fmadd_ps(be, ce, _mm512_mul_ps(ae, se)), kRne);
  const __m256i yb_o = _mm512_cvtps_ph(_mm512_fmadd_ps(bo, co, _mm512_mul_ps(ao, so)), kRne);
  _mm512_storeu_si512(y + i, _mm512_permutex2var_epi16(_mm512_castsi256_si512(ya_e), k.order,
                                                       _mm512_castsi256_si512(ya_o)));
  _mm512_storeu_si512(y + kPairs + i,
                      _mm512_permutex2var_epi16(_mm512_castsi256_si512(yb_e), k.order,
                                                _mm512_castsi256_si512(yb_o)));
}

enum class Form { kF16C, kIntWiden, kHybrid };

template <Form kForm>
__attribute__((target("avx512f,avx512bw,f16c,fma"))) void Rotate(const Buffers& b,
                                                                 const std::uint16_t* in,
                                                                 std::uint16_t* out, int rows,
                                                                 int passes) {
  __m512 c[4], s[4], ce[4], se[4];
  for (int k = 0; k < 4; ++k) {
    c[k] = _mm512_load_ps(b.cos_nat + 16 * k);
    s[k] = _mm512_load_ps(b.sin_nat + 16 * k);
    ce[k] = _mm512_load_ps(b.cos_eo_f16 + 16 * k);
    se[k] = _mm512_load_ps(b.sin_eo_f16 + 16 * k);
  }
  const IntWidenConsts kc{
      _mm512_set1_epi32(static_cast<int>(0x8FFFFFFFu)),
      _mm512_set1_epi32(static_cast<int>(0x8FFFE000u)),
      _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                       37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0)};
  for (int p = 0; p < passes; ++p) {
    const std::uint16_t* x = in;
    std::uint16_t* y = out;
    for (int r = 0; r < rows; ++r, x += kRowElems, y += kRowElems) {
      if constexpr (kForm == Form::kF16C) {
        for (int k = 0; k < 4; ++k) F16CBlock(x, y, 16 * k, c[k], s[k]);
      } else if constexpr (kForm == Form::kIntWiden) {
        IntWidenBlock(x, y, 0, ce[0], ce[1], se[0], se[1], kc);
        IntWidenBlock(x, y, 32, ce[2], ce[3], se[2], se[3], kc);
      } else {
        IntWidenBlock(x, y, 0, ce[0], ce[1], se[0], se[1], kc);
        F16CBlock(x, y, 32, c[2], s[2]);
        F16CBlock(x, y, 48, c[3], s[3]);
      }
    }
  }
}

// The loops' f32 math (a·c − b·s with one FMA, b·c + a·s likewise), rounded to f16 RNE.
bool Matches(const Buffers& b, const std::uint16_t* in, const std::uint16_t* out, int rows) {
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < kPairs; ++i) {
      const std::size_t ia = static_cast<std::size_t>(r) * kRowElems + static_cast<std::size_t>(i),
                        ib = ia + kPairs;
      const float a = F16ToF32(in[ia]), x_b = F16ToF32(in[ib]);
      const float c = b.cos_nat[i], s = b.sin_nat[i];
      if (out[ia] != F32ToF16(std::fma(a, c, -(x_b * s))) ||
          out[ib] != F32ToF16(std::fma(x_b, c, a * s)))
        return false;
    }
  return true;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// F16C from CPUID leaf 1 (Clang 14's __builtin_cpu_supports does not know "f16c").
bool HasF16C() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

void BM_F16DecodeFloor(benchmark::State& st, Form form) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("fma") || !HasF16C()) {
    st.SkipWithError("needs AVX-512 F/BW, F16C and FMA");
    return;
  }
  const bool l1 = st.range(0) != 0;
  Buffers b(st.range(1) != 0);
  const std::uint16_t* in = l1 ? b.l1_in : b.in.get();
  std::uint16_t* out = l1 ? b.l1_out : b.out.get();
  const int rows = l1 ? kL1Rows : kDecodeRows;
  const int passes = kDecodeRows / rows;  // 2048 rows of work either way
  auto run = [&] {
    switch (form) {
      case Form::kF16C:
        Rotate<Form::kF16C>(b, in, out, rows, passes);
        break;
      case Form::kIntWiden:
        Rotate<Form::kIntWiden>(b, in, out, rows, passes);
        break;
      case Form::kHybrid:
        Rotate<Form::kHybrid>(b, in, out, rows, passes);
        break;
    }
  };
  run();
  if (!Matches(b, in, out, rows)) {
    st.SkipWithError("loop output differs from the f32 formula rounded by ropekit::f32_to_f16");
    return;
  }
  for (int w = 0; w < 3; ++w) {
    CopyRows(b.in.get(), b.out.get(), kDecodeRows, 1);
    run();
  }
  using Clock = std::chrono::steady_clock;
  constexpr int kBatch = 16;
  std::vector<double> ratios, loops, copies;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    CopyRows(b.in.get(), b.out.get(), kDecodeRows, kBatch);
    const auto t1 = Clock::now();
    for (int i = 0; i < kBatch; ++i) run();
    const auto t2 = Clock::now();
    benchmark::ClobberMemory();
    const double copy_s = std::chrono::duration<double>(t1 - t0).count() / kBatch;
    const double loop_s = std::chrono::duration<double>(t2 - t1).count() / kBatch;
    st.SetIterationTime(loop_s);
    ratios.push_back(loop_s / copy_s);
    loops.push_back(loop_s);
    copies.push_back(copy_s);
  }
  st.counters["x_copy"] = Median(ratios);
  st.counters["ns_per_row"] = Median(loops) * 1e9 / kDecodeRows;
  st.counters["copy_ns_per_row"] = Median(copies) * 1e9 / kDecodeRows;
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{0, 1}, {0, 1}})
      ->ArgNames({"l1", "subnormals"})
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}
BENCHMARK_CAPTURE(BM_F16DecodeFloor, f16c, Form::kF16C)->Apply(Args);
BENCHMARK_CAPTURE(BM_F16DecodeFloor, int_widen, Form::kIntWiden)->Apply(Args);
BENCHMARK_CAPTURE(BM_F16DecodeFloor, hybrid, Form::kHybrid)->Apply(Args);

#endif  // ROPEKIT_FLOOR_X86

}  // namespace

BENCHMARK_MAIN();
