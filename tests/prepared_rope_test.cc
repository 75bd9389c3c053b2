// PreparedRope (ropekit/apply.h): a call validated once and run on new pointers and positions.
// Its contract is apply_rope's: the same output bytes for the same arguments, and the same error
// messages, whether a check runs at construction (geometry, plan, options) or per call
// (pointers, overlaps, positions). apply_rope itself is checked against transformers' goldens
// and the double-precision reference elsewhere (apply_golden_test, apply_properties_test).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ropekit/ropekit.h"
#include "test_util.h"

namespace ropekit {
namespace {

// The message of the ArgumentError f throws, or "" if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ArgumentError& e) {
    return e.what();
  }
  return "";
}

struct Geometry {
  DType dtype = DType::kF32;
  std::int64_t tokens = 5, q_heads = 4, k_heads = 2;
  int head_dim = 128;
};

// One step of a decode or prefill loop: fresh inputs and outputs, rotated by apply_rope and by
// the prepared call; the outputs must be the same bytes.
struct Step {
  std::vector<std::uint8_t> q_in, k_in, q_ours, k_ours, q_ref, k_ref;
  Step(const Geometry& g, unsigned seed) {
    q_in = test::random_tensor(g.dtype, g.tokens * g.q_heads * g.head_dim, seed);
    k_in = test::random_tensor(g.dtype, g.tokens * g.k_heads * g.head_dim, seed + 1000);
    q_ours = q_ref = q_in;  // in-place runs rotate these; out-of-place runs overwrite them
    k_ours = k_ref = k_in;
  }
};

ConstTensorView view_in(const Geometry& g, const void* data, std::int64_t heads) {
  return ConstTensorView::contiguous(data, g.dtype, g.tokens, heads, g.head_dim);
}
TensorView view_out(const Geometry& g, void* data, std::int64_t heads) {
  return TensorView::contiguous(data, g.dtype, g.tokens, heads, g.head_dim);
}

// Runs `positions` through both paths on one fresh step and compares the outputs.
void expect_same_as_apply_rope(const FrequencyPlan& plan, const Geometry& g,
                               const ApplyOptions& options, bool in_place,
                               const PreparedRope& prepared, const Positions& positions,
                               unsigned seed, const std::string& what) {
  Step s(g, seed);
  ApplyResult ours, ref;
  if (in_place) {
    ours = prepared.apply(s.q_ours.data(), s.k_ours.data(), positions);
    ref = apply_rope(plan, view_out(g, s.q_ref.data(), g.q_heads),
                     view_out(g, s.k_ref.data(), g.k_heads), positions, options);
  } else {
    ours =
        prepared.apply(s.q_in.data(), s.q_ours.data(), s.k_in.data(), s.k_ours.data(), positions);
    ref = apply_rope(plan, view_in(g, s.q_in.data(), g.q_heads),
                     view_out(g, s.q_ref.data(), g.q_heads), view_in(g, s.k_in.data(), g.k_heads),
                     view_out(g, s.k_ref.data(), g.k_heads), positions, options);
  }
  EXPECT_EQ(ours.unapplied_attention_factor, ref.unapplied_attention_factor) << what;
  EXPECT_TRUE(s.q_ours == s.q_ref) << what << ": q differs from apply_rope's";
  EXPECT_TRUE(s.k_ours == s.k_ref) << what << ": k differs from apply_rope's";
  // and the rotation did something (a call that wrote nothing would pass the comparison in place)
  EXPECT_FALSE(s.q_ours == s.q_in) << what << ": q was not rotated";
}

PreparedRope prepare(const FrequencyPlan& plan, const Geometry& g, const ApplyOptions& options,
                     bool in_place) {
  if (in_place)
    return PreparedRope(plan, view_out(g, nullptr, g.q_heads), view_out(g, nullptr, g.k_heads),
                        options);
  return PreparedRope(plan, view_in(g, nullptr, g.q_heads), view_out(g, nullptr, g.q_heads),
                      view_in(g, nullptr, g.k_heads), view_out(g, nullptr, g.k_heads), options);
}

FrequencyPlan model_plan(const std::string& file) {
  return build_frequency_plan(parse_hf_config(test::read_file("models/" + file)).layers.at(0));
}

// Real models (scaling types, attention factors, partial rotary), every dtype and layout, in
// place and out of place, with and without a cos/sin table, over a loop of steps with every
// 1-D position convention: each step equals apply_rope bit for bit.
TEST(PreparedRope, EqualsApplyRopeOverModelsDtypesLayoutsAndPositions) {
  for (const char* model : {"llama-3.1-8b-instruct.json", "qwen2.5-7b-instruct-yarn.json",
                            "phi-3.5-mini-instruct.json", "phi-2.json", "gpt-oss-20b.json"}) {
    const FrequencyPlan plan = model_plan(model);
    const CosSinCache cache(plan, AngleMode::kExact, true, 4096);
    for (const DType dt : {DType::kF32, DType::kF16, DType::kBF16})
      for (const PairLayout layout : {PairLayout::kHalf, PairLayout::kInterleaved})
        for (const bool in_place : {false, true})
          for (const bool table : {false, true}) {
            Geometry g;
            g.dtype = dt;
            g.head_dim = plan.head_dim;
            ApplyOptions o;
            o.layout = layout;
            o.cache = table ? &cache : nullptr;
            const PreparedRope prepared = prepare(plan, g, o, in_place);
            const std::string what = std::string(model) + " " + std::string(dtype_name(dt)) +
                                     (layout == PairLayout::kHalf ? " half" : " interleaved") +
                                     (in_place ? " in place" : " out of place") +
                                     (table ? " table" : " on the fly");
            const std::vector<std::int32_t> ids32 = {7, 3000, 5, 0, 99};
            const std::vector<std::int64_t> ids64 = {-3, 12, 4095, 70000, 1};  // some off-table
            const std::vector<std::int64_t> indptr = {0, 2, 5}, offsets = {10, 4094};
            unsigned seed = 1;
            for (std::int64_t p = 100; p < 103; ++p)  // a loop of steps
              expect_same_as_apply_rope(plan, g, o, in_place, prepared, Positions::offset(p),
                                        seed++, what + " offset " + std::to_string(p));
            expect_same_as_apply_rope(plan, g, o, in_place, prepared, Positions::per_token(ids32),
                                      seed++, what + " per_token int32");
            expect_same_as_apply_rope(plan, g, o, in_place, prepared, Positions::per_token(ids64),
                                      seed++, what + " per_token int64");
            expect_same_as_apply_rope(plan, g, o, in_place, prepared,
                                      Positions::per_sequence(indptr, offsets), seed++,
                                      what + " per_sequence");
          }
  }
}

// The single-user decode step: one token, 32 query heads and 8 key heads, positions that grow.
TEST(PreparedRope, OneTokenDecodeLoop) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  const CosSinCache cache(plan, AngleMode::kExact, true, 8192);
  for (const DType dt : {DType::kF32, DType::kBF16}) {
    Geometry g;
    g.dtype = dt;
    g.tokens = 1;
    g.q_heads = 32;
    g.k_heads = 8;
    ApplyOptions o;
    o.cache = &cache;
    const PreparedRope prepared = prepare(plan, g, o, false);
    for (std::int64_t p = 8185; p < 8200; ++p)  // across the table's end: on the fly past it
      expect_same_as_apply_rope(plan, g, o, false, prepared, Positions::offset(p),
                                static_cast<unsigned>(p),
                                std::string(dtype_name(dt)) + " position " + std::to_string(p));
  }
}

// Position rows (Qwen2-VL's M-RoPE), the options that change the arithmetic (inverse, hf
// angles, a position scale, transformers' rounding, unfolded attention factor), and llama.cpp's
// numerics (a per-call table).
TEST(PreparedRope, EqualsApplyRopeForRowsOptionsAndGgml) {
  {
    const FrequencyPlan plan = model_plan("qwen2-vl-7b-instruct.json");
    ASSERT_FALSE(plan.pair_axis.empty());
    Geometry g;
    g.head_dim = plan.head_dim;
    const std::vector<std::int64_t> rows = {0, 1, 2, 3, 4, 0, 0, 5, 5, 6, 0, 1, 0, 1, 2};
    const PreparedRope prepared = prepare(plan, g, {}, false);
    expect_same_as_apply_rope(plan, g, {}, false, prepared, Positions::mrope(rows, 5), 3,
                              "qwen2-vl mrope");
  }
  const FrequencyPlan plan = model_plan("qwen2.5-7b-instruct-yarn.json");
  ApplyOptions inverse;
  inverse.direction = Direction::kInverse;
  ApplyOptions hf;
  hf.angles = AngleMode::kHf;
  ApplyOptions scaled;
  scaled.position_scale = 0.25;
  ApplyOptions transformers = with_numerics({}, Numerics::transformers());
  ApplyOptions unfolded;
  unfolded.fold_attention_factor = false;
  ApplyOptions reference;
  reference.backend = Backend::kReference;
  int n = 0;
  for (const ApplyOptions& o : {inverse, hf, scaled, transformers, unfolded, reference})
    for (const DType dt : {DType::kF32, DType::kBF16}) {
      Geometry g;
      g.dtype = dt;
      g.head_dim = plan.head_dim;
      const PreparedRope prepared = prepare(plan, g, o, true);
      expect_same_as_apply_rope(
          plan, g, o, true, prepared, Positions::offset(131000), 11,
          "options #" + std::to_string(n) + " " + std::string(dtype_name(dt)));
      ++n;
    }
  {
    const FrequencyPlan ggml_plan = build_frequency_plan(
        parse_hf_config(test::read_file("models/llama-3.1-8b-instruct.json")).layers.at(0),
        std::nullopt, Numerics::llama_cpp());
    const ApplyOptions o = with_numerics({}, Numerics::llama_cpp());
    Geometry g;
    const PreparedRope prepared = prepare(ggml_plan, g, o, false);
    for (std::int64_t p : {0, 40000})
      expect_same_as_apply_rope(ggml_plan, g, o, false, prepared, Positions::offset(p), 5,
                                "llama.cpp numerics at " + std::to_string(p));
  }
}

// A long prefill goes over the pool like apply_rope's.
TEST(PreparedRope, ThreadedPrefillEqualsApplyRope) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  ThreadPool pool(3);
  ApplyOptions o;
  o.pool = &pool;
  Geometry g;
  g.tokens = 600;  // 600 x 10 heads x 128 x 8 bytes: above the split threshold
  g.q_heads = 8;
  for (const bool in_place : {false, true}) {
    const PreparedRope prepared = prepare(plan, g, o, in_place);
    expect_same_as_apply_rope(plan, g, o, in_place, prepared, Positions::offset(17), 21,
                              in_place ? "in place" : "out of place");
  }
}

// Calls from several threads at once each get their own result.
TEST(PreparedRope, ConcurrentCallsAreIndependent) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  Geometry g;
  g.tokens = 1;
  const PreparedRope prepared = prepare(plan, g, {}, false);
  constexpr int kThreads = 4, kCalls = 50;
  std::vector<std::vector<std::uint8_t>> q_out(kThreads), k_out(kThreads);
  const std::vector<std::uint8_t> q_in = test::random_tensor(g.dtype, g.q_heads * g.head_dim, 1);
  const std::vector<std::uint8_t> k_in = test::random_tensor(g.dtype, g.k_heads * g.head_dim, 2);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    q_out[t].resize(q_in.size());
    k_out[t].resize(k_in.size());
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c)  // the last call's position is 1000 t + kCalls − 1
        prepared.apply(q_in.data(), q_out[t].data(), k_in.data(), k_out[t].data(),
                       Positions::offset(1000 * t + c));
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    std::vector<std::uint8_t> q_ref(q_in.size()), k_ref(k_in.size());
    apply_rope(plan, view_in(g, q_in.data(), g.q_heads), view_out(g, q_ref.data(), g.q_heads),
               view_in(g, k_in.data(), g.k_heads), view_out(g, k_ref.data(), g.k_heads),
               Positions::offset(1000 * t + kCalls - 1));
    EXPECT_TRUE(q_out[t] == q_ref) << "thread " << t;
    EXPECT_TRUE(k_out[t] == k_ref) << "thread " << t;
  }
}

// The object owns its plan and options: changing the caller's afterwards changes nothing.
TEST(PreparedRope, OwnsItsPlanAndOptions) {
  FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  const FrequencyPlan original = plan;
  Geometry g;
  auto options = std::make_unique<ApplyOptions>();
  PreparedRope prepared = prepare(plan, g, *options, true);
  for (float& f : plan.inv_freq) f *= 2.0f;
  options->direction = Direction::kInverse;
  options.reset();
  expect_same_as_apply_rope(original, g, {}, true, prepared, Positions::offset(9), 4,
                            "after the caller's plan changed");
  PreparedRope moved = std::move(prepared);
  expect_same_as_apply_rope(original, g, {}, true, moved, Positions::offset(9), 4, "moved");
}

// What the constructor refuses, with apply_rope's message for the same arguments.
TEST(PreparedRope, ConstructionErrorsAreApplyRopes) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  const FrequencyPlan other = model_plan("phi-3.5-mini-instruct.json");
  const CosSinCache other_cache(other, AngleMode::kExact, true, 16);
  std::vector<float> q(5 * 4 * 128), k(5 * 2 * 128), qo(q.size()), ko(k.size());
  struct Bad {
    const char* expect;  // a part of the message
    ConstTensorView qi, ki;
    TensorView qov, kov;
    ApplyOptions o;
  };
  const auto qi = ConstTensorView::contiguous(q.data(), DType::kF32, 5, 4, 128);
  const auto ki = ConstTensorView::contiguous(k.data(), DType::kF32, 5, 2, 128);
  const auto qov = TensorView::contiguous(qo.data(), DType::kF32, 5, 4, 128);
  const auto kov = TensorView::contiguous(ko.data(), DType::kF32, 5, 2, 128);
  std::vector<Bad> cases;
  cases.push_back({"q_in.head_dim",
                   ConstTensorView::contiguous(q.data(), DType::kF32, 5, 8, 64),
                   ki,
                   qov,
                   kov,
                   {}});
  cases.push_back(
      {"k_out shape", qi, ki, qov, TensorView::contiguous(ko.data(), DType::kF32, 5, 1, 128), {}});
  cases.push_back({"k_in.tokens",
                   qi,
                   ConstTensorView::contiguous(k.data(), DType::kF32, 4, 2, 128),
                   qov,
                   TensorView::contiguous(ko.data(), DType::kF32, 4, 2, 128),
                   {}});
  ConstTensorView bad_stride = qi;
  bad_stride.stride_token = std::int64_t{1} << 50;
  cases.push_back({"q_in.stride_token", bad_stride, ki, qov, kov, {}});
  TensorView self_overlap = qov;
  self_overlap.stride_head = 64;
  cases.push_back({"q_out strides", qi, ki, self_overlap, kov, {}});
  ApplyOptions scale;
  scale.position_scale = -1;
  cases.push_back({"options.position_scale", qi, ki, qov, kov, scale});
  ApplyOptions wrong_cache;
  wrong_cache.cache = &other_cache;
  cases.push_back({"options.cache", qi, ki, qov, kov, wrong_cache});
  ApplyOptions stores;
  stores.output_stores = static_cast<OutputStores>(9);
  cases.push_back({"options.output_stores", qi, ki, qov, kov, stores});
  ApplyOptions ggml = with_numerics({}, Numerics::llama_cpp());  // the plan has no ggml arguments
  cases.push_back({"plan.ggml", qi, ki, qov, kov, ggml});
  for (const Bad& b : cases) {
    const std::string ours = error_of([&] { PreparedRope(plan, b.qi, b.qov, b.ki, b.kov, b.o); });
    const std::string ref =
        error_of([&] { apply_rope(plan, b.qi, b.qov, b.ki, b.kov, Positions::offset(0), b.o); });
    EXPECT_NE(ours.find(b.expect), std::string::npos) << b.expect << ": " << ours;
    EXPECT_EQ(ours, ref) << b.expect;
  }
  // Options are refused even for an empty call, by both.
  const auto empty_q = ConstTensorView::contiguous(q.data(), DType::kF32, 0, 4, 128);
  const auto empty_qo = TensorView::contiguous(qo.data(), DType::kF32, 0, 4, 128);
  for (const ApplyOptions& o : {ggml, stores, scale}) {
    const std::string ours = error_of([&] { PreparedRope(plan, empty_q, empty_qo, {}, {}, o); });
    EXPECT_FALSE(ours.empty());
    EXPECT_EQ(ours, error_of([&] {
                apply_rope(plan, empty_q, empty_qo, {}, {}, Positions::offset(0), o);
              }));
  }
  FrequencyPlan broken = plan;
  broken.inv_freq.pop_back();
  EXPECT_NE(error_of([&] { PreparedRope(broken, qi, qov, ki, kov); }).find("plan.inv_freq"),
            std::string::npos);
}

// What a call refuses, with apply_rope's message for the same pointers and positions; a refused
// call writes nothing.
TEST(PreparedRope, CallErrorsAreApplyRopes) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  Geometry g;
  const PreparedRope prepared = prepare(plan, g, {}, false);
  std::vector<float> buf(64 * 1024, 0.5f);
  float* q_in = buf.data();
  float* k_in = buf.data() + 4096;
  float* q_out = buf.data() + 8192;
  float* k_out = buf.data() + 12288;
  const std::vector<std::int64_t> five = {1, 2, 3, 4, 5}, four = {1, 2, 3, 4};
  const std::vector<std::int64_t> indptr_bad = {0, 3}, offsets_one = {0};
  struct Bad {
    const char* expect;
    const void *qi, *ki;
    void *qo, *ko;
    Positions pos;
  };
  const char* misaligned = reinterpret_cast<const char*>(q_in) + 2;
  const std::vector<Bad> cases = {
      {"q_in.data", nullptr, k_in, q_out, k_out, Positions::offset(0)},
      {"k_out.data", q_in, k_in, q_out, nullptr, Positions::offset(0)},
      {"q_in.data", misaligned, k_in, q_out, k_out, Positions::offset(0)},
      {"q_out", q_in, k_in, q_in + 1, k_out, Positions::offset(0)},     // partial overlap
      {"k_out", q_in, k_in, q_out, q_out + 128, Positions::offset(0)},  // inside q_out
      {"q_out", q_in, k_in, k_in + 256, k_out, Positions::offset(0)},   // over k_in
      {"k_out", q_in, k_in, q_out, q_in + 512, Positions::offset(0)},   // over q_in
      {"positions (offset)", q_in, k_in, q_out, k_out, Positions::offset(kMaxAbsPosition - 2)},
      {"positions", q_in, k_in, q_out, k_out, Positions::per_token(four)},
      {"positions.indptr[last]", q_in, k_in, q_out, k_out,
       Positions::per_sequence(indptr_bad, offsets_one)},
  };
  for (const Bad& b : cases) {
    const std::vector<float> before = buf;
    const std::string ours = error_of([&] { prepared.apply(b.qi, b.qo, b.ki, b.ko, b.pos); });
    EXPECT_TRUE(buf == before) << b.expect << ": a refused call wrote";
    const std::string ref = error_of([&] {
      apply_rope(plan, view_in(g, b.qi, g.q_heads), view_out(g, b.qo, g.q_heads),
                 view_in(g, b.ki, g.k_heads), view_out(g, b.ko, g.k_heads), b.pos);
    });
    EXPECT_NE(ours.find(b.expect), std::string::npos) << b.expect << ": " << ours;
    EXPECT_EQ(ours, ref) << b.expect;
  }
  // A wrapped table: every position must be in it.
  std::vector<float> rows(16 * 128, 0.25f);
  const auto table = CosSinCache::wrap(rows.data(), rows.data() + 64, 16, 64, 128);
  ApplyOptions o;
  o.cache = table.get();
  const PreparedRope wrapped = prepare(plan, g, o, false);
  EXPECT_NE(error_of([&] {
              wrapped.apply(q_in, q_out, k_in, k_out, Positions::offset(12));
            }).find("the rows of the cos/sin table"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { wrapped.apply(q_in, q_out, k_in, k_out, Positions::offset(11)); }), "");
  // A moved-from object says so.
  PreparedRope taken = prepare(plan, g, {}, false);
  const PreparedRope keeper = std::move(taken);
  EXPECT_NE(error_of([&] {
              taken.apply(q_in, q_out, k_in, k_out,
                          Positions::offset(0));  // NOLINT(bugprone-use-after-move)
            }).find("moved-from"),
            std::string::npos);
}

// An empty k (q only) takes null k pointers, as apply_rope takes empty k views.
TEST(PreparedRope, QueryOnly) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  Geometry g;
  g.k_heads = 0;
  const PreparedRope prepared(plan, view_in(g, nullptr, g.q_heads), view_out(g, nullptr, g.q_heads),
                              ConstTensorView{}, TensorView{});
  Step s(g, 8);
  prepared.apply(s.q_in.data(), s.q_ours.data(), nullptr, nullptr, Positions::offset(77));
  apply_rope(plan, view_in(g, s.q_in.data(), g.q_heads), view_out(g, s.q_ref.data(), g.q_heads),
             ConstTensorView{}, TensorView{}, Positions::offset(77));
  EXPECT_TRUE(s.q_ours == s.q_ref);
  EXPECT_FALSE(s.q_ours == s.q_in);
}

// PreparedRope objects of different frequencies, applied in turn on one thread, on the fly: each
// carries its own frequency identity (ApplyJob::freq_id), under which the kernels reuse this
// thread's angle constants without comparing the frequencies; an identity must never stand for
// another object's frequencies.
TEST(PreparedRope, ObjectsOfOtherFrequenciesInTurn) {
  const std::int64_t heads = 4, dim = 128;
  const std::vector<std::uint8_t> input = test::random_tensor(DType::kF32, heads * dim, 3);
  std::vector<FrequencyPlan> plans;
  for (const double theta : {500000.0, 10000.0, 1000000.0})
    plans.push_back(
        build_frequency_plan(test::plain_config(128, 128, PairLayout::kInterleaved, theta, 8192)));
  std::vector<float> out(static_cast<std::size_t>(heads * dim));
  const auto qi = ConstTensorView::contiguous(input.data(), DType::kF32, 1, heads, dim);
  const auto qo = TensorView::contiguous(out.data(), DType::kF32, 1, heads, dim);
  std::vector<std::vector<float>> expected(plans.size());
  for (std::size_t i = 0; i < plans.size(); ++i) {
    std::thread t([&] { apply_rope(plans[i], qi, qo, {}, {}, Positions::offset(777)); });
    t.join();
    expected[i] = out;
  }
  ASSERT_FALSE(expected[0] == expected[1]) << "the test sees nothing";
  std::vector<PreparedRope> prepared;
  for (const FrequencyPlan& plan : plans)
    prepared.emplace_back(plan, qi, qo, ConstTensorView{}, TensorView{});
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      std::fill(out.begin(), out.end(), 0.0f);
      prepared[i].apply(input.data(), out.data(), nullptr, nullptr, Positions::offset(777));
      EXPECT_EQ(out, expected[i]) << "plan " << i << ", round " << round;
    }
  }
}

// One PreparedRope called in place and out of place in turn (its views allow both): the kernels
// are chosen for each form when it is built (kernel/job.h: PreparedRange), and each call must take
// the form its pointers ask for. Interleaved-to-half has its own in-place kernel (a row copy).
// Compared with the same call on a new thread, which remembers nothing and so chooses the kernel
// for that call alone. One token (the kernels' one-token path) and five.
TEST(PreparedRope, InPlaceAndOutOfPlaceCallsOfOneObject) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  const CosSinCache cache(plan, AngleMode::kExact, true, 4096);
  for (const DType dt : {DType::kF32, DType::kF16, DType::kBF16})
    for (const PairLayout layout :
         {PairLayout::kHalf, PairLayout::kInterleaved, PairLayout::kInterleavedToHalf})
      for (const std::int64_t tokens : {1, 5})
        for (const bool table : {false, true}) {
          Geometry g;
          g.dtype = dt;
          g.tokens = tokens;
          ApplyOptions o;
          o.layout = layout;
          o.cache = table ? &cache : nullptr;
          const PreparedRope prepared = prepare(plan, g, o, /*in_place=*/false);
          const std::string what =
              std::string(dtype_name(dt)) + " layout " + std::to_string(static_cast<int>(layout)) +
              ", " + std::to_string(tokens) + " tokens" + (table ? ", table" : ", on the fly");
          for (int call = 0; call < 4; ++call) {
            const bool in_place = call % 2 == 1;
            const Positions pos = Positions::offset(100 + call);
            Step s(g, static_cast<unsigned>(call + 1));
            std::vector<std::uint8_t> q_out(s.q_in.size()), k_out(s.k_in.size());
            void* q_dst = in_place ? static_cast<void*>(s.q_ours.data()) : q_out.data();
            void* k_dst = in_place ? static_cast<void*>(s.k_ours.data()) : k_out.data();
            prepared.apply(s.q_ours.data(), q_dst, s.k_ours.data(), k_dst, pos);
            std::thread fresh([&] {  // into q_ref / k_ref, from themselves or from the inputs
              apply_rope(plan, view_in(g, in_place ? s.q_ref.data() : s.q_in.data(), g.q_heads),
                         view_out(g, s.q_ref.data(), g.q_heads),
                         view_in(g, in_place ? s.k_ref.data() : s.k_in.data(), g.k_heads),
                         view_out(g, s.k_ref.data(), g.k_heads), pos, o);
            });
            fresh.join();
            const std::vector<std::uint8_t>& q_got = in_place ? s.q_ours : q_out;
            const std::vector<std::uint8_t>& k_got = in_place ? s.k_ours : k_out;
            EXPECT_TRUE(q_got == s.q_ref) << what << (in_place ? ", in place" : ", out of place");
            EXPECT_TRUE(k_got == s.k_ref) << what << (in_place ? ", in place" : ", out of place");
            EXPECT_FALSE(q_got == s.q_in) << what << ": q was not rotated";
          }
        }
}

// Non-temporal stores need outputs aligned to 64 bytes, and a prepared shape decides at each call
// whether this call's output is (rope-inl.h: AlignedForStreams): outputs at an aligned address and
// at addresses 4 and 32 bytes past one, in turn, through one object that streams whenever it may.
// A non-temporal store to a misaligned address faults; the bytes must be a fresh thread's.
TEST(PreparedRope, StreamedOutputsAreChosenPerCall) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  for (const DType dt : {DType::kF32, DType::kBF16})
    for (const PairLayout layout : {PairLayout::kHalf, PairLayout::kInterleaved})
      for (const std::int64_t tokens : {1, 3}) {
        Geometry g;
        g.dtype = dt;
        g.tokens = tokens;
        g.k_heads = 0;
        ApplyOptions o;
        o.layout = layout;
        o.output_stores = OutputStores::kNonTemporal;
        const PreparedRope prepared = prepare(plan, g, o, /*in_place=*/false);
        const std::size_t bytes =
            static_cast<std::size_t>(tokens * g.q_heads * g.head_dim) * dtype_size(dt);
        for (const std::size_t skew : {0, 4, 32, 0}) {
          const std::vector<std::uint8_t> in =
              test::random_tensor(dt, tokens * g.q_heads * g.head_dim, static_cast<unsigned>(skew));
          std::vector<std::uint8_t> storage(bytes + 128), fresh_storage(bytes + 128);
          auto at = [&](std::vector<std::uint8_t>& v) {
            const auto addr = reinterpret_cast<std::uintptr_t>(v.data());
            return v.data() + (64 - addr % 64) % 64 + skew;
          };
          std::uint8_t* out = at(storage);
          std::uint8_t* fresh_out = at(fresh_storage);
          prepared.apply(in.data(), out, nullptr, nullptr, Positions::offset(4000));
          std::thread fresh([&] {
            apply_rope(plan, view_in(g, in.data(), g.q_heads), view_out(g, fresh_out, g.q_heads),
                       ConstTensorView{}, TensorView{}, Positions::offset(4000), o);
          });
          fresh.join();
          EXPECT_TRUE(std::equal(out, out + bytes, fresh_out))
              << dtype_name(dt) << " layout " << static_cast<int>(layout) << ", " << tokens
              << " tokens, output " << skew << " bytes past a line";
          EXPECT_FALSE(std::equal(out, out + bytes, in.data())) << "not rotated";
        }
      }
}

// A prepared shape finds a table's sin row at a fixed distance from its cos row (measured when it
// is built; ropekit/cos_sin_cache.h promises the same distance for every row): a decode loop over a
// caller's tables (CosSinCache::wrap) whose sin table lies before its cos table, and over the
// library's own cache, forward and inverse, equals a fresh thread's call on the library's cache.
TEST(PreparedRope, TableRowsAtTheirDistance) {
  const FrequencyPlan plan = model_plan("llama-3.1-8b-instruct.json");
  const int pairs = plan.rotary_dim / 2;
  const std::int64_t rows = 512;
  const CosSinCache own(plan, AngleMode::kExact, true, rows);
  std::vector<float> sin_then_cos(static_cast<std::size_t>(2 * rows * pairs + 16));
  float* sin_table = sin_then_cos.data() + 3;  // not 64-byte aligned either
  float* cos_table = sin_table + rows * pairs + 5;
  for (std::int64_t p = 0; p < rows; ++p) {
    std::copy_n(own.cos_row(p), pairs, cos_table + p * pairs);
    std::copy_n(own.sin_row(p), pairs, sin_table + p * pairs);
  }
  const auto wrapped = CosSinCache::wrap(cos_table, sin_table, rows, pairs, pairs);
  for (const CosSinCache* table : {static_cast<const CosSinCache*>(wrapped.get()), &own})
    for (const Direction dir : {Direction::kForward, Direction::kInverse}) {
      Geometry g;
      g.tokens = 1;
      g.q_heads = 32;
      g.k_heads = 8;
      ApplyOptions o;
      o.cache = table;
      o.direction = dir;
      const PreparedRope prepared = prepare(plan, g, o, /*in_place=*/false);
      for (std::int64_t p : {0, 1, 200, 511}) {
        Step s(g, static_cast<unsigned>(p + 1));
        prepared.apply(s.q_in.data(), s.q_ours.data(), s.k_in.data(), s.k_ours.data(),
                       Positions::offset(p));
        ApplyOptions fresh_options = o;
        fresh_options.cache = &own;
        std::thread fresh([&] {
          apply_rope(plan, view_in(g, s.q_in.data(), g.q_heads),
                     view_out(g, s.q_ref.data(), g.q_heads), view_in(g, s.k_in.data(), g.k_heads),
                     view_out(g, s.k_ref.data(), g.k_heads), Positions::offset(p), fresh_options);
        });
        fresh.join();
        const std::string what = std::string(table == &own ? "own cache" : "wrapped tables") +
                                 (dir == Direction::kInverse ? ", inverse" : "") + ", position " +
                                 std::to_string(p);
        EXPECT_TRUE(s.q_ours == s.q_ref) << what;
        EXPECT_TRUE(s.k_ours == s.k_ref) << what;
      }
    }
}

}  // namespace
}  // namespace ropekit
