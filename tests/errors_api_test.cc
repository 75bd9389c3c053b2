// The catalogue of bad API calls (docs/errors.md "API errors"): each case asserts
// ArgumentError, what the message names, and that a refused call wrote nothing (validation
// happens before any output byte is touched). Zero-sized calls are no-ops, not errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ropekit/ropekit.h"

namespace ropekit {
namespace {

constexpr std::int64_t kD = 8;  // head_dim of the test plans

FrequencyPlan plan(int head_dim = kD, int rotary_dim = kD) {
  RopeConfig c;
  c.head_dim = head_dim;
  c.rotary_dim = rotary_dim;
  c.max_position_embeddings = 4096;
  return build_frequency_plan(c);
}
FrequencyPlan mrope_plan() {
  RopeConfig c;
  c.head_dim = kD;
  c.rotary_dim = kD;
  c.max_position_embeddings = 4096;
  c.mrope = MRopeSpec{{2, 1, 1}, MRopeAssignment::kSections};
  return build_frequency_plan(c);
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// Runs f, expects ArgumentError whose message contains every needle; returns the message.
template <class F>
std::string argument_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
  } catch (const ArgumentError& e) {
    for (const auto& n : needles)
      EXPECT_TRUE(contains(e.what(), n)) << "\"" << n << "\" not in: " << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ArgumentError, got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected ArgumentError, nothing thrown";
  return "";
}

// A float buffer filled with a recognisable pattern, for "nothing written" checks.
struct Floats {
  std::vector<float> v;
  explicit Floats(std::size_t n) : v(n) {
    for (std::size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i % 17) - 1.0f;
  }
  float* data() { return v.data(); }
};

TensorView view(float* p, std::int64_t t, std::int64_t h, std::int64_t d = kD) {
  return TensorView::contiguous(p, DType::kF32, t, h, d);
}
const TensorView kNoK{};

// Every refused call below is checked to leave q (and k) bit-identical.
class ApiErrors : public ::testing::Test {
 protected:
  static constexpr std::int64_t kT = 4, kHq = 2, kHk = 1;
  Floats q{kT * kHq * kD}, k{kT * kHk * kD};
  std::vector<float> q0 = q.v, k0 = k.v;
  FrequencyPlan p = plan();
  std::vector<std::int64_t> pos64{0, 1, 2, 3};
  Positions pos = Positions::per_token(std::span<const std::int64_t>(pos64));

  void TearDown() override {
    EXPECT_EQ(std::memcmp(q.v.data(), q0.data(), q0.size() * 4), 0)
        << "q was written by a refused call";
    EXPECT_EQ(std::memcmp(k.v.data(), k0.data(), k0.size() * 4), 0)
        << "k was written by a refused call";
  }
  TensorView qv() { return view(q.data(), kT, kHq); }
  TensorView kv() { return view(k.data(), kT, kHk); }
};

// ---- pointers ----------------------------------------------------------------------------------

TEST_F(ApiErrors, NullPointers) {
  TensorView nq = qv();
  nq.data = nullptr;
  argument_error([&] { apply_rope(p, nq, kv(), pos); }, {"q.data", "non-null", "nullptr"});
  TensorView nk = kv();
  nk.data = nullptr;
  argument_error([&] { apply_rope(p, qv(), nk, pos); }, {"k.data", "nullptr"});
  Floats out(q.v.size());
  TensorView nout = view(nullptr, kT, kHq);
  argument_error([&] { apply_rope(p, qv(), nout, ConstTensorView{}, TensorView{}, pos); },
                 {"q_out.data", "nullptr"});
  argument_error(
      [&] {
        apply_rope(p, ConstTensorView(nq), view(out.data(), kT, kHq), ConstTensorView{},
                   TensorView{}, pos);
      },
      {"q_in.data"});
}

TEST_F(ApiErrors, MisalignedPointers) {
  std::vector<std::uint8_t> bytes(4 * kT * kHq * kD + 8, 0);
  for (int off : {1, 2, 3}) {
    void* mis = bytes.data() + 4 + off;  // vector storage is at least 8-aligned
    TensorView v = TensorView::contiguous(mis, DType::kF32, kT, kHq, kD);
    argument_error([&] { apply_rope(p, v, kNoK, pos); },
                   {"q.data", "4-byte alignment for f32", "misaligned by " + std::to_string(off)});
  }
  TensorView h = TensorView::contiguous(bytes.data() + 1, DType::kBF16, kT, kHq, kD);
  argument_error([&] { apply_rope(p, h, kNoK, pos); },
                 {"q.data", "2-byte alignment for bf16", "misaligned by 1"});
  TensorView f16 = TensorView::contiguous(bytes.data() + 3, DType::kF16, kT, kHq, kD);
  argument_error([&] { apply_rope(p, f16, kNoK, pos); }, {"2-byte alignment for f16"});
  for (std::uint8_t b : bytes) ASSERT_EQ(b, 0);
}

// ---- zero-sized dimensions: a no-op, nothing written
// ---------------------------------------------

TEST_F(ApiErrors, ZeroTokensIsANoOp) {
  std::vector<std::int64_t> none;
  const Positions empty = Positions::per_token(std::span<const std::int64_t>(none));
  EXPECT_NO_THROW(apply_rope(p, view(q.data(), 0, kHq), view(k.data(), 0, kHk), empty));
  EXPECT_NO_THROW(
      apply_rope(p, view(nullptr, 0, kHq), view(nullptr, 0, kHk), Positions::offset(0)));
  EXPECT_NO_THROW(apply_rope(p, view(q.data(), 0, kHq), kNoK, Positions::offset(5)));
  // Out of place: the outputs are not touched either.
  Floats out(q.v.size());
  const std::vector<float> out0 = out.v;
  EXPECT_NO_THROW(apply_rope(p, view(q.data(), 0, kHq), view(out.data(), 0, kHq), ConstTensorView{},
                             TensorView{}, empty));
  EXPECT_EQ(out.v, out0);
  // Per-sequence positions with no tokens.
  std::vector<std::int64_t> indptr{0, 0, 0}, offsets{7, 9};
  EXPECT_NO_THROW(
      apply_rope(p, view(q.data(), 0, kHq), kNoK, Positions::per_sequence(indptr, offsets)));
  // The attention factor is still reported.
  ApplyOptions o;
  o.fold_attention_factor = false;
  FrequencyPlan scaled = p;
  scaled.attention_factor = 1.5;
  EXPECT_EQ(apply_rope(scaled, view(q.data(), 0, kHq), kNoK, empty, o).unapplied_attention_factor,
            1.5);
}

TEST_F(ApiErrors, ZeroHeadsIsANoOpForThatTensor) {
  // q with no heads (and no data): only k is rotated.
  std::vector<float> k_before = k.v;
  EXPECT_NO_THROW(apply_rope(p, view(nullptr, kT, 0), kv(), Positions::offset(1)));
  EXPECT_NE(k.v, k_before);  // k rotated (positions 1..4: not the identity)
  k0 = k.v;                  // (TearDown compares against the rotated k)
  // k with no heads: only q.
  std::vector<float> q_before = q.v;
  EXPECT_NO_THROW(apply_rope(p, qv(), view(nullptr, kT, 0), Positions::offset(1)));
  EXPECT_NE(q.v, q_before);
  q0 = q.v;
  // Both empty.
  EXPECT_NO_THROW(
      apply_rope(p, view(q.data(), kT, 0), view(k.data(), kT, 0), Positions::offset(0)));
}

TEST_F(ApiErrors, NegativeSizes) {
  argument_error([&] { apply_rope(p, view(q.data(), -1, kHq), kNoK, Positions::offset(0)); },
                 {"q shape", "non-negative sizes", "[-1, 2, 8]"});
  argument_error([&] { apply_rope(p, qv(), view(k.data(), kT, -2), pos); },
                 {"k shape", "non-negative"});
}

TEST_F(ApiErrors, ZeroHeadDimIsAHeadDimMismatch) {
  argument_error([&] { apply_rope(p, view(q.data(), kT, kHq, 0), kNoK, pos); },
                 {"q.head_dim", "expected 8 (the plan's head_dim)", "got 0"});
}

// ---- shapes against the plan and each other
// --------------------------------------------------------

TEST_F(ApiErrors, HeadDimNotMatchingThePlan) {
  argument_error([&] { apply_rope(p, view(q.data(), kT, 1, 16), kNoK, pos); },
                 {"q.head_dim", "expected 8 (the plan's head_dim)", "got 16"});
  argument_error([&] { apply_rope(p, qv(), view(k.data(), 2, 1, 4), Positions::offset(0)); },
                 {"k.head_dim", "got 4"});
  argument_error([&] { apply_rope(p, qv(), view(k.data(), 2, 2, kD), pos); },
                 {"k.tokens", "4 (q's token count)", "got 2"});
  Floats out(q.v.size());
  argument_error(
      [&] { apply_rope(p, qv(), view(out.data(), kT, 1), ConstTensorView{}, TensorView{}, pos); },
      {"q_out shape", "[4, 2, 8] (as q_in)", "[4, 1, 8]"});
}

// ---- overlap and aliasing
// -----------------------------------------------------------------------------

TEST_F(ApiErrors, QAndKOverlapInPlace) {
  // k is q: every element would be rotated twice.
  TensorView same = qv();
  argument_error([&] { apply_rope(p, qv(), same, pos); }, {"disjoint from q"});
  // k starts inside q.
  TensorView inside = view(q.data() + 4, 2, 1);
  std::vector<std::int64_t> two{0, 1};
  argument_error(
      [&] {
        apply_rope(p, view(q.data(), 2, 1), inside,
                   Positions::per_token(std::span<const std::int64_t>(two)));
      },
      {"disjoint from q"});
}

TEST_F(ApiErrors, OutputsPartiallyAliasingInputs) {
  // One scratch buffer; every view below lies inside it.
  constexpr std::int64_t kN = kT * kHq * kD;
  Floats buf(4 * kN);
  const std::vector<float> buf0 = buf.v;
  float* const b = buf.data();
  const ConstTensorView in = view(b, kT, kHq);
  // q_out shifted by one element over q_in
  argument_error(
      [&] { apply_rope(p, in, view(b + 1, kT, kHq), ConstTensorView{}, TensorView{}, pos); },
      {"q_out", "exactly q_in (in place) or disjoint from it", "partial overlap"});
  // the same memory with other strides (head-major over token-major): a partial alias
  TensorView hm{b, DType::kF32, kT, kHq, kD, kD, kT * kD, 1};
  argument_error([&] { apply_rope(p, in, hm, ConstTensorView{}, TensorView{}, pos); },
                 {"q_out", "the same dtype and strides as q_in when writing in place"});
  const TensorView q_out = view(b + kN, kT, kHq);
  const ConstTensorView k_in = view(b + 2 * kN, kT, kHk);
  const TensorView k_out = view(b + 3 * kN, kT, kHk);
  // k_out over q_in
  argument_error([&] { apply_rope(p, in, q_out, k_in, view(b + 8, kT, kHk), pos); },
                 {"k_out", "disjoint from q_in"});
  // q_out over k_in
  argument_error([&] { apply_rope(p, in, view(b + 2 * kN - 8, kT, kHq), k_in, k_out, pos); },
                 {"q_out", "disjoint from k_in"});
  // q_out and k_out overlapping
  argument_error([&] { apply_rope(p, in, q_out, k_in, view(b + kN + 4, kT, kHk), pos); },
                 {"k_out", "disjoint from q_out"});
  // k_out over its own input, shifted
  argument_error([&] { apply_rope(p, in, q_out, k_in, view(b + 2 * kN + 3, kT, kHk), pos); },
                 {"k_out", "exactly k_in (in place) or disjoint from it"});
  EXPECT_EQ(buf.v, buf0);
  // Inputs may alias each other (they are only read): q_in == k_in is legal.
  EXPECT_NO_THROW(apply_rope(p, in, q_out, ConstTensorView(view(b, kT, kHk)), k_out, pos));
}

TEST_F(ApiErrors, InPlaceWithAnotherDtypeOrStrides) {
  TensorView as_f16{q.data(), DType::kF16, kT, kHq, kD, kHq * kD, kD, 1};
  argument_error([&] { apply_rope(p, qv(), as_f16, ConstTensorView{}, TensorView{}, pos); },
                 {"q_out", "the same dtype and strides as q_in when writing in place", "f16"});
}

TEST_F(ApiErrors, OutputSelfOverlap) {
  // stride_head 0: both heads of a token write the same features.
  TensorView zero_head{q.data(), DType::kF32, kT, kHq, kD, kHq * kD, 0, 1};
  argument_error([&] { apply_rope(p, zero_head, kNoK, pos); },
                 {"q strides", "no self-overlap", "[16, 0, 1]"});
  TensorView zero_dim{q.data(), DType::kF32, kT, kHq, kD, kHq * kD, kD, 0};
  argument_error([&] { apply_rope(p, zero_dim, kNoK, pos); }, {"q strides", "no self-overlap"});
  // tokens one element apart: rows overlap
  TensorView overlapping_rows{q.data(), DType::kF32, kT, 1, kD, 1, kD, 1};
  argument_error([&] { apply_rope(p, overlapping_rows, kNoK, pos); }, {"q strides"});
  // the same for an out-of-place output
  Floats out(q.v.size());
  TensorView bad_out{out.data(), DType::kF32, kT, kHq, kD, kD, 0, 1};
  argument_error([&] { apply_rope(p, qv(), bad_out, ConstTensorView{}, TensorView{}, pos); },
                 {"q_out strides"});
}

TEST_F(ApiErrors, BroadcastInputsAreLegal) {
  // An input may repeat elements (stride 0): only outputs must be one-to-one.
  Floats out(q.v.size());
  const ConstTensorView one_head(q.data(), DType::kF32, kT, kHq, kD, kD, 0, 1);
  EXPECT_NO_THROW(
      apply_rope(p, one_head, view(out.data(), kT, kHq), ConstTensorView{}, TensorView{}, pos));
  for (std::int64_t t = 0; t < kT; ++t)
    for (std::int64_t d = 0; d < kD; ++d)
      EXPECT_EQ(out.v[static_cast<std::size_t>((t * kHq + 0) * kD + d)],
                out.v[static_cast<std::size_t>((t * kHq + 1) * kD + d)]);
}

TEST_F(ApiErrors, FusedQkvInPlaceIsAccepted) {
  // One buffer [T, Hq + 2·Hk, D]: q, then k, then v; q and k rotated in place, v untouched.
  constexpr std::int64_t kRow = (kHq + 2 * kHk) * kD;
  Floats qkv(kT * kRow);
  const std::vector<float> qkv0 = qkv.v;
  TensorView fq{qkv.data(), DType::kF32, kT, kHq, kD, kRow, kD, 1};
  TensorView fk{qkv.data() + kHq * kD, DType::kF32, kT, kHk, kD, kRow, kD, 1};
  ASSERT_NO_THROW(apply_rope(p, fq, fk, pos));
  // The same rotation on separate contiguous copies.
  std::vector<float> sq(static_cast<std::size_t>(kT * kHq * kD)),
      sk(static_cast<std::size_t>(kT * kHk * kD));
  for (std::int64_t t = 0; t < kT; ++t) {
    std::memcpy(&sq[static_cast<std::size_t>(t * kHq * kD)],
                &qkv0[static_cast<std::size_t>(t * kRow)], kHq * kD * 4);
    std::memcpy(&sk[static_cast<std::size_t>(t * kHk * kD)],
                &qkv0[static_cast<std::size_t>(t * kRow + kHq * kD)], kHk * kD * 4);
  }
  apply_rope(p, view(sq.data(), kT, kHq), view(sk.data(), kT, kHk), pos);
  for (std::int64_t t = 0; t < kT; ++t) {
    EXPECT_EQ(std::memcmp(&sq[static_cast<std::size_t>(t * kHq * kD)],
                          &qkv.v[static_cast<std::size_t>(t * kRow)], kHq * kD * 4),
              0);
    EXPECT_EQ(std::memcmp(&sk[static_cast<std::size_t>(t * kHk * kD)],
                          &qkv.v[static_cast<std::size_t>(t * kRow + kHq * kD)], kHk * kD * 4),
              0);
    // v: untouched
    EXPECT_EQ(
        std::memcmp(&qkv0[static_cast<std::size_t>(t * kRow + (kHq + kHk) * kD)],
                    &qkv.v[static_cast<std::size_t>(t * kRow + (kHq + kHk) * kD)], kHk * kD * 4),
        0);
  }
  // Out of place from the fused buffer into separate outputs.
  Floats oq(sq.size()), ok(sk.size());
  EXPECT_NO_THROW(apply_rope(p, fq, view(oq.data(), kT, kHq), fk, view(ok.data(), kT, kHk), pos));
  // k shifted one element back over q's last feature is refused (and writes nothing).
  const std::vector<float> before = qkv.v;
  TensorView fk_over{qkv.data() + kHq * kD - 1, DType::kF32, kT, kHk, kD, kRow, kD, 1};
  argument_error([&] { apply_rope(p, fq, fk_over, pos); }, {"disjoint from q"});
  EXPECT_EQ(qkv.v, before);
}

// ---- positions
// ---------------------------------------------------------------------------------------

TEST_F(ApiErrors, PositionCountsThatDoNotMatch) {
  std::vector<std::int64_t> three{0, 1, 2};
  argument_error(
      [&] {
        apply_rope(p, qv(), kv(), Positions::per_token(std::span<const std::int64_t>(three)));
      },
      {"positions", "expected 4 ids (one per token)", "got 3"});
  std::vector<std::int32_t> five{0, 1, 2, 3, 4};
  argument_error(
      [&] { apply_rope(p, qv(), kv(), Positions::per_token(std::span<const std::int32_t>(five))); },
      {"positions", "got 5"});
  // M-RoPE: 3 rows × tokens.
  const FrequencyPlan mp = mrope_plan();
  std::vector<std::int64_t> rows(3 * kT - 1, 0);
  argument_error(
      [&] {
        apply_rope(mp, qv(), kv(), Positions::mrope(std::span<const std::int64_t>(rows), kT));
      },
      {"positions", "12 ids (3 rows × tokens)", "got 11"});
  std::vector<std::int64_t> rows_ok(3 * kT, 0);
  argument_error(
      [&] {
        apply_rope(mp, qv(), kv(),
                   Positions::mrope(std::span<const std::int64_t>(rows_ok), kT + 1));
      },
      {"positions (M-RoPE)", "rows of 4 tokens", "5"});
}

TEST_F(ApiErrors, PositionsBeyondTheSupportedRange) {
  const std::int64_t kMax = kMaxAbsPosition;
  for (std::int64_t bad : {kMax + 1, -kMax - 1, std::numeric_limits<std::int64_t>::max(),
                           std::numeric_limits<std::int64_t>::min()}) {
    SCOPED_TRACE(bad);
    std::vector<std::int64_t> ids{0, 1, bad, 3};
    argument_error(
        [&] {
          apply_rope(p, qv(), kv(), Positions::per_token(std::span<const std::int64_t>(ids)));
        },
        {"positions[2]", "±(2^31 − 1)", std::to_string(bad)});
  }
  std::vector<std::int32_t> min32{0, std::numeric_limits<std::int32_t>::min(), 0, 0};  // −2^31
  argument_error(
      [&] {
        apply_rope(p, qv(), kv(), Positions::per_token(std::span<const std::int32_t>(min32)));
      },
      {"positions[1]", "-2147483648"});
  // Offsets: the last token's position must be in range too.
  argument_error([&] { apply_rope(p, qv(), kv(), Positions::offset(kMax - 2)); },
                 {"positions (offset)", "offset 2147483645 with 4 tokens"});
  argument_error([&] { apply_rope(p, qv(), kv(), Positions::offset(-kMax - 1)); },
                 {"positions (offset)"});
  argument_error(
      [&] {
        apply_rope(p, qv(), kv(), Positions::offset(std::numeric_limits<std::int64_t>::max()));
      },
      {"positions (offset)"});
  std::vector<std::int64_t> indptr{0, 2, 4}, offs{0, kMax};
  argument_error([&] { apply_rope(p, qv(), kv(), Positions::per_sequence(indptr, offs)); },
                 {"positions.offsets[1]", "2147483647 with 2 tokens"});
  std::vector<std::int64_t> offs_ok{0, kMax - 1};  // positions kMax − 1 and kMax: fine
  std::vector<float> scratch = q.v;
  EXPECT_NO_THROW(
      apply_rope(p, view(scratch.data(), kT, kHq), kNoK, Positions::per_sequence(indptr, offs_ok)));
  // M-RoPE rows are checked too.
  const FrequencyPlan mp = mrope_plan();
  std::vector<std::int64_t> rows(3 * kT, 0);
  rows[kT + 2] = kMax + 1;  // row H, token 2
  argument_error(
      [&] {
        apply_rope(mp, qv(), kv(), Positions::mrope(std::span<const std::int64_t>(rows), kT));
      },
      {"positions[6]", "2147483648"});
}

TEST(ApiPositions, TheRangeLimitsThemselvesAreSupported) {
  const FrequencyPlan p = plan();
  std::vector<float> q(2 * kD, 1.0f);
  std::vector<std::int64_t> ids{kMaxAbsPosition, -kMaxAbsPosition};
  ASSERT_NO_THROW(apply_rope(p, view(q.data(), 2, 1), kNoK,
                             Positions::per_token(std::span<const std::int64_t>(ids))));
  for (float v : q) EXPECT_TRUE(std::isfinite(v) && std::fabs(v) <= 1.5f) << v;
  std::vector<float> r(kD, 1.0f);
  EXPECT_NO_THROW(apply_rope(p, view(r.data(), 1, 1), kNoK, Positions::offset(kMaxAbsPosition)));
  EXPECT_NO_THROW(apply_rope(p, view(r.data(), 1, 1), kNoK, Positions::offset(-kMaxAbsPosition)));
}

TEST_F(ApiErrors, MropeRowsWithAPlanWithoutMrope) {
  std::vector<std::int64_t> rows(3 * kT, 1);
  argument_error(
      [&] { apply_rope(p, qv(), kv(), Positions::mrope(std::span<const std::int64_t>(rows), kT)); },
      {"positions", "1-D positions (this plan has no mrope_section)", "[3, tokens] M-RoPE rows"});
}

TEST_F(ApiErrors, IndptrErrors) {
  std::vector<std::int64_t> offs{0, 0};
  const auto run = [&](std::vector<std::int64_t> indptr,
                       std::initializer_list<std::string> needles) {
    argument_error([&] { apply_rope(p, qv(), kv(), Positions::per_sequence(indptr, offs)); },
                   needles);
  };
  run({0, 4}, {"positions.indptr", "offsets.size() + 1 = 3 entries", "got 2"});
  run({0, 2, 4, 4}, {"positions.indptr", "got 4"});
  run({1, 2, 4}, {"positions.indptr[0]", "expected 0", "got 1"});
  run({0, 2, 3}, {"positions.indptr[last]", "the token count 4", "got 3"});
  run({0, 2, 5}, {"positions.indptr[last]", "got 5"});
  run({0, 5, 4}, {"positions.indptr[2]", "non-decreasing", "4 after 5"});
  run({0, -1, 4}, {"positions.indptr[1]", "non-decreasing"});
  std::vector<std::int64_t> no_offs;
  std::vector<std::int64_t> empty;
  argument_error([&] { apply_rope(p, qv(), kv(), Positions::per_sequence(empty, no_offs)); },
                 {"positions.indptr", "1 entries", "got 0"});
}

// ---- the plan, the options, the cache
// -----------------------------------------------------------------

TEST_F(ApiErrors, TamperedPlans) {
  FrequencyPlan bad = p;
  bad.inv_freq[2] = std::numeric_limits<float>::quiet_NaN();
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); }, {"plan.inv_freq[2]", "a finite value"});
  bad = p;
  bad.inv_freq[0] = std::numeric_limits<float>::infinity();
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); }, {"plan.inv_freq[0]"});
  bad = p;
  bad.inv_freq.pop_back();
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); },
                 {"plan.inv_freq", "4 entries (rotary_dim / 2)", "got 3"});
  for (double a : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    bad = p;
    bad.attention_factor = a;
    argument_error([&] { apply_rope(bad, qv(), kv(), pos); },
                   {"plan.attention_factor", "a finite number > 0"});
  }
  bad = p;
  bad.head_dim = 7;
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); },
                 {"plan.head_dim", "an even number > 0", "7"});
  bad = p;
  bad.rotary_dim = 10;
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); },
                 {"plan.rotary_dim", "[2, head_dim]", "10"});
  bad = mrope_plan();
  bad.pair_axis[1] = 3;
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); },
                 {"plan.pair_axis", "entries 0, 1 or 2"});
  bad = mrope_plan();
  bad.pair_axis.pop_back();
  argument_error([&] { apply_rope(bad, qv(), kv(), pos); }, {"plan.pair_axis", "4 entries"});
  FrequencyPlan empty;
  argument_error([&] { apply_rope(empty, qv(), kv(), pos); }, {"plan.head_dim"});
}

TEST_F(ApiErrors, BadOptions) {
  for (double s : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    ApplyOptions o;
    o.position_scale = s;
    argument_error([&] { apply_rope(p, qv(), kv(), pos, o); },
                   {"options.position_scale", "a finite number > 0"});
  }
  ApplyOptions o;
  o.max_threads = -1;
  argument_error([&] { apply_rope(p, qv(), kv(), pos, o); }, {"options.max_threads", "-1"});
  o.max_threads = 0;
  o.output_stores = static_cast<OutputStores>(7);
  argument_error([&] { apply_rope(p, qv(), kv(), pos, o); }, {"options.output_stores", "7"});
  // The SIMD kernels never run the transformers rounding emulation: forcing them is an error.
  ApplyOptions simd;
  simd.backend = Backend::kSimd;
  simd.rounding = Rounding::kTransformers;
  argument_error([&] { apply_rope(p, qv(), kv(), pos, simd); }, {"backend", "kReference"});
}

TEST_F(ApiErrors, CacheBuiltForAnotherPlan) {
  RopeConfig c;
  c.head_dim = kD;
  c.rotary_dim = kD;
  c.rope_theta = 500000.0;
  c.max_position_embeddings = 4096;
  const CosSinCache theta_cache(build_frequency_plan(c), AngleMode::kExact, true, 16);
  ApplyOptions o;
  o.cache = &theta_cache;
  argument_error(
      [&] { apply_rope(p, qv(), kv(), pos, o); },
      {"options.cache", "a cache built for this plan, angle mode and attention-factor folding"});
  const CosSinCache hf_cache(p, AngleMode::kHf, true, 16);
  o.cache = &hf_cache;
  argument_error([&] { apply_rope(p, qv(), kv(), pos, o); }, {"options.cache"});
  FrequencyPlan scaled = p;
  scaled.attention_factor = 1.25;
  const CosSinCache unfolded(scaled, AngleMode::kExact, false, 16);
  o.cache = &unfolded;
  argument_error([&] { apply_rope(scaled, qv(), kv(), pos, o); }, {"options.cache"});
  const CosSinCache good(p, AngleMode::kExact, true, 16);
  o.cache = &good;
  o.position_scale = 0.5;
  argument_error([&] { apply_rope(p, qv(), kv(), pos, o); }, {"options.cache", "position_scale"});
}

TEST(CacheErrors, BadSizesAndPlans) {
  const FrequencyPlan p = plan();
  CosSinCache c(p, AngleMode::kExact);
  argument_error([&] { c.reserve(-1); }, {"reserve", "-1"});
  argument_error([&] { c.reserve(kMaxAbsPosition + 2); }, {"reserve", "2^31"});
  EXPECT_EQ(c.size(), 0);
  FrequencyPlan none;
  argument_error([&] { CosSinCache x(none, AngleMode::kExact); },
                 {"plan.inv_freq", "at least one frequency"});
  FrequencyPlan nan = p;
  nan.inv_freq[1] = std::numeric_limits<float>::quiet_NaN();
  argument_error([&] { CosSinCache x(nan, AngleMode::kExact); }, {"plan.inv_freq", "finite"});
}

TEST_F(ApiErrors, StridesTooLargeToIndex) {
  TensorView huge = qv();
  huge.stride_token = std::int64_t{1} << 50;
  argument_error([&] { apply_rope(p, huge, kNoK, pos); }, {"q.stride_token", "below 2^46"});
  TensorView neg = qv();
  neg.stride_head = -(std::int64_t{1} << 47);
  argument_error([&] { apply_rope(p, neg, kNoK, pos); }, {"q.stride_head"});
  TensorView many = view(q.data(), std::int64_t{1} << 47, 1);
  argument_error([&] { apply_rope(p, many, kNoK, Positions::offset(0)); }, {"q.stride_token"});
}

// DType is an enum: a value outside f32/f16/bf16 (from a binding or a corrupted struct) must be
// refused, not silently treated as a 2-byte type (see the report).
TEST_F(ApiErrors, UnknownDtypeValue) {
  TensorView odd = qv();
  odd.dtype = static_cast<DType>(7);
  argument_error([&] { apply_rope(p, odd, kNoK, pos); }, {"q", "dtype"});
  Floats out(q.v.size());
  const std::vector<float> out0 = out.v;
  TensorView odd_out = view(out.data(), kT, kHq);
  odd_out.dtype = static_cast<DType>(3);
  argument_error([&] { apply_rope(p, qv(), odd_out, ConstTensorView{}, TensorView{}, pos); },
                 {"q_out", "dtype"});
  EXPECT_EQ(out.v, out0);
}

TEST(PlanArguments, NegativeSeqLen) {
  RopeConfig c;
  c.head_dim = kD;
  c.rotary_dim = kD;
  c.max_position_embeddings = 4096;
  argument_error([&] { (void)build_frequency_plan(c, -1); },
                 {"seq_len", "expected a length > 0", "-1"});
  argument_error([&] { (void)build_frequency_plan(c, 0); }, {"seq_len", "0"});
}

TEST(OtherArguments, TargetsThreadsLayers) {
  argument_error([&] { force_target("NOT_A_TARGET"); },
                 {"target", "expected one of auto", "NOT_A_TARGET"});
  EXPECT_NO_THROW(force_target("auto"));
  argument_error([&] { ThreadPool pool(0); }, {"threads", "expected >= 1", "0"});
  argument_error([&] { set_default_threads(-3); }, {"threads", "-3"});
  const ModelRope m = parse_hf_config(R"({"head_dim": 64, "max_position_embeddings": 4096})");
  argument_error([&] { (void)m.layer("full_attention"); },
                 {"\"full_attention\"", "available: default"});
}

}  // namespace
}  // namespace ropekit
