// apply_rope's per-thread memo of validated calls (src/apply/apply.cc): a call whose shape this
// thread has remembered runs only the per-call checks. It must give the bytes, the result and the
// errors that the same call gives on a thread that has remembered nothing. Every test compares a
// warm call on this thread with that call on a new thread, after changing one input of the key
// (every field the memo keys on, and the per-call ones it does not) between calls.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "apply/apply_memo.h"
#include "kernel/job.h"
#include "ropekit/ropekit.h"
#include "simd/simd_api.h"
#include "test_util.h"

namespace ropekit {
namespace {

// One apply_rope call, described by value: q (and optionally k) with any geometry, in place or
// not. Inputs are a deterministic function of the description; outputs start as a fixed byte.
struct Call {
  FrequencyPlan plan;
  ApplyOptions options;
  bool in_place = false;
  DType in_dtype = DType::kF32, out_dtype = DType::kF32;
  std::int64_t batch = 1, tokens = 3, heads = 4, k_heads = 2, head_dim = 128;
  std::int64_t stride_token = 4 * 128, stride_head = 128, stride_dim = 1, stride_batch = 0;
  std::int64_t q_head_dim = 0;  // q's views' head_dim when not 0 (else head_dim)
  std::int64_t position = 1000;
  // Positions of another kind than offset(position) (per call, like the position itself).
  enum class Kind { kOffset, kIds64, kIds32, kPerSequence } kind = Kind::kOffset;
  // Per-call faults (not in the memo's key): a null or misaligned q pointer, q_out over k_in.
  bool null_q = false, misaligned_q = false, q_out_over_k_in = false;
};

Call base_call() {
  Call c;
  c.plan = build_frequency_plan(test::plain_config(128, 128, PairLayout::kHalf, 500000.0, 8192));
  c.plan.attention_factor = 1.25;  // so that folding it or not changes the output
  return c;
}

std::int64_t q_elements(const Call& c) {  // the span of q's view (non-negative strides)
  return (c.batch - 1) * c.stride_batch + (c.tokens - 1) * c.stride_token +
         (c.heads - 1) * c.stride_head + (c.head_dim - 1) * c.stride_dim + 1;
}

// The outcome of the call: its output bytes and unapplied attention factor, or its error.
std::string outcome(const Call& c) {
  const std::int64_t q_n = q_elements(c), k_n = c.tokens * c.batch * c.k_heads * c.head_dim;
  std::vector<std::uint8_t> q_in, k_in, q_out, k_out;
  q_in = test::random_tensor(c.in_dtype, q_n, 1);
  k_in = test::random_tensor(c.in_dtype, k_n, 2);
  q_in.resize(q_in.size() + 64);  // room for a misaligned q pointer
  k_in.resize(k_in.size() + 64);
  q_out.assign(static_cast<std::size_t>(q_n * dtype_size(c.out_dtype)) + 64, 0x5A);
  k_out.assign(static_cast<std::size_t>(k_n * dtype_size(c.out_dtype)) + 64, 0x5A);
  auto view = [&](auto v, auto* data, DType dt, std::int64_t heads, bool is_q) {
    v.data = data;
    v.dtype = dt;
    v.batch = c.batch;
    v.tokens = c.tokens;
    v.heads = heads;
    v.head_dim = is_q && c.q_head_dim != 0 ? c.q_head_dim : c.head_dim;
    v.stride_token = is_q ? c.stride_token : heads * c.head_dim;
    v.stride_head = is_q ? c.stride_head : c.head_dim;
    v.stride_dim = is_q ? c.stride_dim : 1;
    v.stride_batch = is_q ? c.stride_batch : c.tokens * heads * c.head_dim;
    return v;
  };
  std::uint8_t* q_data = c.in_place ? q_in.data() : q_out.data();
  const std::uint8_t* q_src = q_in.data();
  if (c.null_q) q_src = nullptr;
  if (c.misaligned_q) q_src = q_in.data() + 1;
  if (c.q_out_over_k_in) q_data = k_in.data();
  const std::int64_t n = c.batch * c.tokens;
  std::vector<std::int64_t> ids64(static_cast<std::size_t>(n)), indptr{0, n - 1, n},
      offsets{c.position, c.position + 50};  // two sequences
  std::vector<std::int32_t> ids32(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < n; ++t) {
    ids64[static_cast<std::size_t>(t)] = c.position + 7 * t;
    ids32[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(c.position + 5 * t);
  }
  Positions positions = Positions::offset(c.position);
  if (c.kind == Call::Kind::kIds64) positions = Positions::per_token(ids64);
  if (c.kind == Call::Kind::kIds32) positions = Positions::per_token(ids32);
  if (c.kind == Call::Kind::kPerSequence) positions = Positions::per_sequence(indptr, offsets);
  std::string out;
  try {
    ApplyResult r;
    if (c.in_place) {
      r = apply_rope(
          c.plan, view(TensorView{}, const_cast<std::uint8_t*>(q_src), c.in_dtype, c.heads, true),
          view(TensorView{}, k_in.data(), c.in_dtype, c.k_heads, false), positions, c.options);
    } else {
      r = apply_rope(c.plan, view(ConstTensorView{}, q_src, c.in_dtype, c.heads, true),
                     view(TensorView{}, q_data, c.out_dtype, c.heads, true),
                     view(ConstTensorView{}, k_in.data(), c.in_dtype, c.k_heads, false),
                     view(TensorView{}, k_out.data(), c.out_dtype, c.k_heads, false), positions,
                     c.options);
    }
    out = "factor " + std::to_string(r.unapplied_attention_factor) + "\n";
  } catch (const Error& e) {
    return std::string("error: ") + e.what();
  }
  const auto& q_bytes = c.in_place ? q_in : q_out;
  const auto& k_bytes = c.in_place ? k_in : k_out;
  out.append(q_bytes.begin(), q_bytes.end());
  out.append(k_bytes.begin(), k_bytes.end());
  return out;
}

// The same call on a new thread: its memo is empty, so the call is validated in full.
std::string outcome_on_new_thread(const Call& c) {
  std::string r;
  std::thread t([&] { r = outcome(c); });
  t.join();
  return r;
}

std::string brief(const std::string& outcome) {
  return outcome.rfind("error: ", 0) == 0 ? outcome : "(output bytes)";
}

// This thread remembers c's shape, then serves it from the memo.
void warm(const Call& c) {
  const std::string fresh = outcome_on_new_thread(c);
  ASSERT_EQ(brief(fresh), "(output bytes)");
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(outcome(c) == fresh);  // the second is remembered
  const std::uint64_t hits = detail::apply_memo_hits();
  ASSERT_TRUE(outcome(c) == fresh);
  ASSERT_EQ(detail::apply_memo_hits(), hits + 1) << "the memo did not serve a repeated call";
}

// One input changed alone: `setup` makes the call the change applies to (the same for both),
// `apply` changes that input.
struct Change {
  const char* what;
  std::function<void(Call&)> apply;
  bool changes_output;  // the output (or an error) differs from the unchanged call's
  std::function<void(Call&)> setup = [](Call&) {};
  bool out_of_place_only = false;  // the input exists only in apply_rope's out-of-place form
};

std::vector<Change> changes() {
  return {
      {"q tokens", [](Call& c) { c.tokens = 4; }, true},
      {"q heads", [](Call& c) { c.heads = 3; }, true},
      {"k heads", [](Call& c) { c.k_heads = 1; }, true},
      {"k absent", [](Call& c) { c.k_heads = 0; }, true},
      {"q stride_token (padded tokens)", [](Call& c) { c.stride_token += 64; }, true},
      {"q stride_head alone", [](Call& c) { c.stride_head = 2 * c.head_dim; }, true,
       [](Call& c) { c.stride_token = 2 * c.heads * c.head_dim; }},
      {"q stride_dim alone", [](Call& c) { c.stride_dim = 2; }, true,
       [](Call& c) {
         c.stride_head = 2 * c.head_dim;
         c.stride_token = c.heads * c.stride_head;
       }},
      {"batch alone", [](Call& c) { c.batch = 2; }, true,
       [](Call& c) { c.stride_batch = c.tokens * c.stride_token; }},
      {"stride_batch alone", [](Call& c) { c.stride_batch = (c.tokens + 1) * c.stride_token; },
       true,
       [](Call& c) {
         c.batch = 2;
         c.stride_batch = c.tokens * c.stride_token;
       }},
      {"input dtype", [](Call& c) { c.in_dtype = DType::kBF16; }, true},
      {"output dtype", [](Call& c) { c.out_dtype = DType::kF16; }, true, [](Call&) {}, true},
      {"in place", [](Call& c) { c.in_place = true; }, true, [](Call&) {}, true},
      {"plan layout", [](Call& c) { c.plan.layout = PairLayout::kInterleaved; }, true},
      {"plan attention_factor", [](Call& c) { c.plan.attention_factor = 1.5; }, true},
      {"plan inv_freq, changed in place", [](Call& c) { c.plan.inv_freq[5] *= 1.5f; }, true},
      {"plan inv_freq, a NaN in place",
       [](Call& c) { c.plan.inv_freq[7] = std::numeric_limits<float>::quiet_NaN(); }, true},
      {"plan rotary_dim (partial rotary)",
       [](Call& c) {
         c.plan =
             build_frequency_plan(test::plain_config(128, 64, PairLayout::kHalf, 500000.0, 8192));
         c.plan.attention_factor = 1.25;
       },
       true},
      {"plan and view head_dim",
       [](Call& c) {
         c.plan =
             build_frequency_plan(test::plain_config(64, 64, PairLayout::kHalf, 500000.0, 8192));
         c.plan.attention_factor = 1.25;
         c.head_dim = 64;
         c.stride_head = 64;
         c.stride_token = c.heads * 64;
       },
       true},
      {"plan head_dim alone (an error)", [](Call& c) { c.plan.head_dim = 256; }, true},
      {"q's head_dim alone (an error)", [](Call& c) { c.q_head_dim = 64; }, true},
      {"plan rotary_dim alone (an error)", [](Call& c) { c.plan.rotary_dim = 64; }, true},
      {"plan inv_freq one entry shorter (an error)", [](Call& c) { c.plan.inv_freq.pop_back(); },
       true},
      {"plan position_rows (an error)", [](Call& c) { c.plan.position_rows = 9; }, true},
      {"plan hf_rounds_once", [](Call& c) { c.plan.hf_rounds_once = true; }, true,
       [](Call& c) {
         c.in_dtype = c.out_dtype = DType::kBF16;
         c.options.rounding = Rounding::kTransformers;
       }},
      {"options.angles", [](Call& c) { c.options.angles = AngleMode::kHf; }, true,
       [](Call& c) { c.position = 100000; }},
      {"options.direction", [](Call& c) { c.options.direction = Direction::kInverse; }, true},
      {"options.rounding", [](Call& c) { c.options.rounding = Rounding::kTransformers; }, true,
       [](Call& c) { c.in_dtype = c.out_dtype = DType::kBF16; }},
      {"options.backend", [](Call& c) { c.options.backend = Backend::kReference; }, false},
      {"options.fold_attention_factor", [](Call& c) { c.options.fold_attention_factor = false; },
       true},
      {"options.layout", [](Call& c) { c.options.layout = PairLayout::kInterleaved; }, true},
      {"options.layout, another value",
       [](Call& c) { c.options.layout = PairLayout::kInterleaved; }, true,
       [](Call& c) { c.options.layout = PairLayout::kHalf; }},
      {"options.layout set to the plan's default",
       [](Call& c) { c.options.layout = PairLayout::kHalf; }, false,
       [](Call& c) { c.plan.layout = PairLayout::kInterleaved; }},
      {"options.position_scale", [](Call& c) { c.options.position_scale = 2.0; }, true},
      {"options.position_scale (an error)", [](Call& c) { c.options.position_scale = -1.0; }, true},
      {"options.max_threads (an error)", [](Call& c) { c.options.max_threads = -1; }, true},
      {"options.max_threads", [](Call& c) { c.options.max_threads = 1; }, false},
      {"options.output_stores",
       [](Call& c) { c.options.output_stores = OutputStores::kNonTemporal; }, false},
      {"options.output_stores (an error)",
       [](Call& c) { c.options.output_stores = static_cast<OutputStores>(7); }, true},
      // per call, not in the key
      {"positions", [](Call& c) { c.position = 77; }, true},
      {"positions (an error)", [](Call& c) { c.position = kMaxAbsPosition; }, true},
      {"positions per token (int64)", [](Call& c) { c.kind = Call::Kind::kIds64; }, true},
      {"positions per token (int32)", [](Call& c) { c.kind = Call::Kind::kIds32; }, true},
      {"positions per sequence", [](Call& c) { c.kind = Call::Kind::kPerSequence; }, true,
       [](Call& c) { c.position = 77; }},
      {"positions per token, int64 then int32", [](Call& c) { c.kind = Call::Kind::kIds32; }, true,
       [](Call& c) { c.kind = Call::Kind::kIds64; }},
      {"positions per token, then offset", [](Call& c) { c.kind = Call::Kind::kOffset; }, true,
       [](Call& c) { c.kind = Call::Kind::kIds32; }},
      {"a null q pointer (an error)", [](Call& c) { c.null_q = true; }, true},
      {"a misaligned q pointer (an error)", [](Call& c) { c.misaligned_q = true; }, true},
      {"q_out over k_in (an error)", [](Call& c) { c.q_out_over_k_in = true; }, true, [](Call&) {},
       true},
  };
}

// Each change, made to a call this thread has remembered (the same objects, changed in place):
// the changed call, repeated until the memo serves it, gives a new thread's outcome, and the
// unchanged call still does afterwards.
TEST(ApplyMemo, EveryInputChangedBetweenCallsGivesAFirstCallsOutcome) {
  for (const bool in_place : {false, true}) {
    for (const Change& change : changes()) {
      if (in_place && change.out_of_place_only) continue;
      Call c = base_call();
      c.in_place = in_place;
      change.setup(c);
      const Call unchanged = c;
      warm(c);
      change.apply(c);
      const std::string expected = outcome_on_new_thread(c);
      const std::string what = std::string(change.what) + (in_place ? " (in place)" : "");
      if (change.changes_output) {
        EXPECT_TRUE(expected != outcome_on_new_thread(unchanged))
            << what << ": the test sees nothing";
      }
      for (int i = 0; i < 3; ++i)
        EXPECT_EQ(brief(outcome(c)), brief(expected)) << what << ", call " << i;
      EXPECT_TRUE(outcome(c) == expected) << what;
      EXPECT_TRUE(outcome(unchanged) == outcome_on_new_thread(unchanged)) << what << ", then back";
    }
  }
}

// The cache is keyed by its serial, not its address: a new cache at a destroyed one's address,
// built for other frequencies, is refused as a first call refuses it.
TEST(ApplyMemo, ACacheAtADestroyedCachesAddressIsCheckedAgain) {
  Call c = base_call();
  std::optional<CosSinCache> slot;
  slot.emplace(c.plan, AngleMode::kExact, true, 4096);
  const CosSinCache* const address = &*slot;
  c.options.cache = address;
  warm(c);
  slot.reset();
  FrequencyPlan other =
      build_frequency_plan(test::plain_config(128, 128, PairLayout::kHalf, 10000.0, 8192));
  other.attention_factor = 1.25;
  slot.emplace(other, AngleMode::kExact, true, 4096);
  ASSERT_EQ(&*slot, address);
  const std::string expected = outcome_on_new_thread(c);
  EXPECT_NE(expected.find("options.cache"), std::string::npos) << brief(expected);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(brief(outcome(c)), brief(expected)) << "call " << i;
  // and a cache for the call's own plan at that address serves it
  slot.reset();
  slot.emplace(c.plan, AngleMode::kExact, true, 4096);
  ASSERT_EQ(&*slot, address);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(outcome(c) == outcome_on_new_thread(c)) << "call " << i;
}

// A call of 256 tokens of 32 heads (8 MiB moved): split over a pool's threads.
Call split_call() {
  Call c = base_call();
  c.tokens = 256;
  c.heads = 32;
  c.stride_token = c.heads * c.head_dim;
  return c;
}

// A pool at a destroyed pool's address, of another size: the thread count is in the key.
TEST(ApplyMemo, APoolAtADestroyedPoolsAddressIsCountedAgain) {
  Call c = split_call();
  std::optional<ThreadPool> slot;
  slot.emplace(2);
  const ThreadPool* const address = &*slot;
  c.options.pool = &*slot;
  warm(c);
  slot.reset();
  slot.emplace(1);
  ASSERT_EQ(&*slot, address);
  const std::uint64_t hits = detail::apply_memo_hits();
  EXPECT_TRUE(outcome(c) == outcome_on_new_thread(c));
  EXPECT_EQ(detail::apply_memo_hits(), hits) << "a call split for 2 threads served on a pool of 1";
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(outcome(c) == outcome_on_new_thread(c)) << "call " << i;
}

// Another pool of the same size: the memo must run the call on the pool it is given.
TEST(ApplyMemo, AnotherPoolOfTheSameSizeIsUsed) {
  Call c = split_call();
  std::optional<ThreadPool> first;
  first.emplace(2);
  ThreadPool second(2);
  c.options.pool = &*first;
  warm(c);
  first.reset();  // a remembered pool pointer would now dangle
  c.options.pool = &second;
  const std::uint64_t hits = detail::apply_memo_hits();
  EXPECT_TRUE(outcome(c) == outcome_on_new_thread(c));
  EXPECT_EQ(detail::apply_memo_hits(), hits) << "a shape remembered with another pool served";
  warm(c);
}

// force_target between calls: the memo's kernels belong to the target they were chosen for, so
// a change of target must reach the key.
TEST(ApplyMemo, ForcingATargetChangesTheKey) {
  const Call c = base_call();
  warm(c);
  for (const SimdTarget& t : compiled_targets()) {
    if (!t.supported) continue;
    const std::uint64_t before = detail::simd_dispatch_version();
    force_target(t.name);
    EXPECT_NE(detail::simd_dispatch_version(), before) << t.name;
    const std::uint64_t hits = detail::apply_memo_hits();
    EXPECT_TRUE(outcome(c) == outcome_on_new_thread(c)) << t.name;
    EXPECT_EQ(detail::apply_memo_hits(), hits) << t.name << ": a kernel of the last target served";
    warm(c);
    EXPECT_EQ(active_target(), t.name);
  }
  force_target("auto");
  warm(c);
}

// The AVX512_BF16 switch of the tests between calls: a remembered shape holds the row kernels
// chosen with the switch as it was (the prepared range, kernel/job.h), so the switch must reach
// the key as a target change does. On CPUs without the extension the switch stays off, and the
// key must still change (the kernels cannot tell).
TEST(ApplyMemo, TheAvx512Bf16SwitchChangesTheKey) {
  Call c = base_call();
  c.in_dtype = c.out_dtype = DType::kBF16;
  c.tokens = 1;
  for (const bool hardware : {false, true, false, true}) {
    warm(c);
    const std::uint64_t before = detail::simd_dispatch_version();
    detail::set_avx512_bf16_enabled(hardware);
    EXPECT_NE(detail::simd_dispatch_version(), before);
    const std::uint64_t hits = detail::apply_memo_hits();
    EXPECT_TRUE(outcome(c) == outcome_on_new_thread(c)) << hardware;
    EXPECT_EQ(detail::apply_memo_hits(), hits) << hardware << ": a kernel chosen before served";
  }
  detail::set_avx512_bf16_enabled(true);
}

// What the memo remembers: a shape seen twice in a row; shapes used in turn (q and k in separate
// calls) are all served; a shape that changes at every call is never remembered.
TEST(ApplyMemo, RemembersRepeatedShapesAndNotChangingOnes) {
  Call q = base_call(), k = base_call();
  q.k_heads = k.k_heads = 0;
  k.heads = 2;
  k.stride_token = 2 * k.head_dim;
  warm(q);
  warm(k);
  std::uint64_t hits = detail::apply_memo_hits();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(outcome(q) == outcome_on_new_thread(q));
    EXPECT_TRUE(outcome(k) == outcome_on_new_thread(k));
  }
  EXPECT_EQ(detail::apply_memo_hits(), hits + 8);
  hits = detail::apply_memo_hits();
  Call growing = base_call();
  for (int t = 40; t <= 45; ++t) {  // shapes no other test uses
    growing.tokens = t;
    EXPECT_TRUE(outcome(growing) == outcome_on_new_thread(growing)) << t << " tokens";
  }
  EXPECT_EQ(detail::apply_memo_hits(), hits);
  // and calls above the memo's token limit are validated in full every time
  Call large = base_call();
  large.tokens = 257;
  large.k_heads = 0;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(outcome(large) == outcome_on_new_thread(large));
  EXPECT_EQ(detail::apply_memo_hits(), hits);
}

// The memo stores a view's sizes and strides in 32 bits (ViewKey): a call with a stride beyond them
// is never remembered, and a remembered call whose stride has the same low 32 bits does not serve
// it. One token, so that the stride spans nothing and the call needs no 16 GiB buffer; the
// outputs then agree, and the memo's hit count tells which path served.
TEST(ApplyMemo, StridesBeyond32BitsAreNeverRemembered) {
  for (const bool in_place : {false, true}) {
    Call narrow = base_call();
    narrow.in_place = in_place;
    narrow.tokens = 1;
    narrow.k_heads = 0;
    Call wide = narrow;
    wide.stride_token += std::int64_t{1} << 32;
    warm(narrow);
    const std::uint64_t hits = detail::apply_memo_hits();
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(outcome(wide) == outcome_on_new_thread(wide)) << "in place " << in_place;
    EXPECT_EQ(detail::apply_memo_hits(), hits)
        << "in place " << in_place << ": a shape with a stride beyond 32 bits was served";
    EXPECT_TRUE(outcome(narrow) == outcome_on_new_thread(narrow)) << "in place " << in_place;
    EXPECT_EQ(detail::apply_memo_hits(), hits + 1) << "in place " << in_place;
    Call wide_negative = narrow;  // below 32 bits' range, as strides may be negative
    wide_negative.stride_token -= std::int64_t{1} << 32;
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(outcome(wide_negative) == outcome_on_new_thread(wide_negative));
    EXPECT_EQ(detail::apply_memo_hits(), hits + 1) << "in place " << in_place;
  }
}

// The kernels reuse this thread's on-the-fly angle constants for a job whose frequency identity
// (ApplyJob::freq_id) is the one they were derived under, without comparing the frequencies. An
// identity must then never stand for other frequencies: shapes remembered and replaced in turn,
// sharing an identity when their frequencies are equal (q and k in separate calls), each give a
// new thread's outcome (PreparedRope's identities: prepared_rope_test). One token (the kernels'
// one-row path) and three.
TEST(ApplyMemo, FrequencyIdentitiesNeverServeOtherFrequencies) {
  const double thetas[] = {500000.0, 10000.0, 1000000.0, 20000.0, 75000.0, 300000.0};
  for (const std::int64_t tokens : {1, 3}) {
    std::vector<Call> calls;  // per theta: q alone, then k-shaped (2 heads), on the fly
    for (const double theta : thetas) {
      Call q = base_call();
      q.plan = build_frequency_plan(test::plain_config(128, 128, PairLayout::kHalf, theta, 8192));
      q.tokens = tokens;
      q.k_heads = 0;
      Call k = q;
      k.heads = 2;
      k.stride_token = 2 * k.head_dim;
      calls.push_back(q);
      calls.push_back(k);
    }
    std::vector<std::string> expected(calls.size());
    for (std::size_t i = 0; i < calls.size(); ++i) expected[i] = outcome_on_new_thread(calls[i]);
    ASSERT_TRUE(expected[0] != expected[2]) << "the test sees nothing";
    // Twelve shapes through four entries: each pair is remembered (replacing older ones) and
    // served, then served in turn with the pair before it, then every earlier call is repeated
    // (served, or validated and remembered again under another identity).
    for (int round = 0; round < 2; ++round) {
      for (std::size_t i = 0; i < calls.size(); i += 2) {
        for (const std::size_t j : {i, i + 1}) {  // a shape is remembered when seen twice in a row
          for (int rep = 0; rep < 3; ++rep)
            EXPECT_TRUE(outcome(calls[j]) == expected[j]) << tokens << " tokens, call " << j;
        }
        const std::uint64_t hits = detail::apply_memo_hits();
        // This pair and the one before, all remembered: served in turn, with other frequencies
        // at every call.
        for (int rep = 0; rep < 2 && i >= 2; ++rep) {
          for (const std::size_t j : {i, i - 2, i + 1, i - 1})
            EXPECT_TRUE(outcome(calls[j]) == expected[j]) << tokens << " tokens, call " << j;
        }
        EXPECT_EQ(detail::apply_memo_hits(), hits + (i >= 2 ? 8 : 0));
        for (std::size_t j = 0; j < i; ++j)
          EXPECT_TRUE(outcome(calls[j]) == expected[j]) << tokens << " tokens, call " << j;
      }
    }
  }
}

}  // namespace
}  // namespace ropekit
