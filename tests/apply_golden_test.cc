// apply_rope against the goldens, through the library API:
//   * transformers (hf/, hf-mrope/): float32 within 2e-5 in `hf` mode (both roundings), bf16
//     within one bf16 ulp with Rounding::kTransformers; `exact` mode against float64 math
//     from the same inverse frequencies within 2e-5 at every position, 131071 included.
//   * mlx-lm (mlx-lm/): every initialize_rope result, batch offsets included.
// Each case runs on the reference and on the default (SIMD when compiled) backend.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "ropekit/ropekit.h"
#include "test_util.h"

namespace ropekit {
namespace {

using nlohmann::json;

// golden [heads][seq][hd] → flat [seq][heads][hd]
std::vector<double> golden_tensor(const json& j) {
  const std::size_t heads = j.size(), seq = j[0].size(), hd = j[0][0].size();
  std::vector<double> out(heads * seq * hd);
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t s = 0; s < seq; ++s)
      for (std::size_t d = 0; d < hd; ++d) out[(s * heads + h) * hd + d] = j[h][s][d].get<double>();
  return out;
}

struct Result {
  std::vector<double> q, k;
};

Result run(const FrequencyPlan& plan, DType dt, const std::vector<std::int64_t>& positions,
           bool mrope_rows, const ApplyOptions& o, int heads, int seq) {
  const int hd = plan.head_dim;
  const auto qf = test::hf_q(heads, seq, hd), kf = test::hf_k(heads, seq, hd);
  Result r;
  auto go = [&](const std::vector<float>& x, std::vector<double>& out) {
    std::vector<std::uint16_t> in16(x.size()), out16(x.size());
    std::vector<float> out32(x.size());
    const void* in = x.data();
    void* outp = out32.data();
    if (dt != DType::kF32) {
      for (std::size_t i = 0; i < x.size(); ++i)
        in16[i] = dt == DType::kBF16 ? f32_to_bf16(x[i]).bits : f32_to_f16(x[i]).bits;
      in = in16.data();
      outp = out16.data();
    }
    const auto in_v = ConstTensorView::contiguous(in, dt, seq, heads, hd);
    const auto out_v = TensorView::contiguous(outp, dt, seq, heads, hd);
    const Positions pos = mrope_rows
                              ? Positions::mrope(std::span<const std::int64_t>(positions), seq)
                              : Positions::per_token(std::span<const std::int64_t>(positions));
    apply_rope(plan, in_v, out_v, {}, {}, pos, o);
    out.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      out[i] = dt == DType::kF32    ? out32[i]
               : dt == DType::kBF16 ? bf16_to_f32(BF16{out16[i]})
                                    : f16_to_f32(F16{out16[i]});
  };
  go(qf, r.q);
  go(kf, r.k);
  return r;
}

// float64 rotation of the test inputs by the given inverse frequencies (exact-mode oracle)
std::vector<double> f64_rotation(const std::vector<float>& x, const std::vector<float>& inv,
                                 double att, const std::vector<std::int64_t>& pos,
                                 PairLayout layout, int heads, int hd,
                                 const std::vector<std::uint8_t>& axis = {}, int seq = 0) {
  std::vector<double> y(x.begin(), x.end());
  const int n = static_cast<int>(inv.size());
  const int tokens = seq ? seq : static_cast<int>(pos.size());
  for (int s = 0; s < tokens; ++s)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < n; ++i) {
        const std::int64_t p =
            axis.empty()
                ? pos[static_cast<std::size_t>(s)]
                : pos[static_cast<std::size_t>(axis[static_cast<std::size_t>(i)] * tokens + s)];
        const double th =
            static_cast<double>(p) * static_cast<double>(inv[static_cast<std::size_t>(i)]);
        const double c = std::cos(th) * att, sn = std::sin(th) * att;
        const int a = layout == PairLayout::kHalf ? i : 2 * i,
                  b = layout == PairLayout::kHalf ? i + n : 2 * i + 1;
        const std::size_t base = (static_cast<std::size_t>(s) * heads + h) * hd;
        const double xa = x[base + a], xb = x[base + b];
        y[base + a] = xa * c - xb * sn;
        y[base + b] = xb * c + xa * sn;
      }
  return y;
}

double max_abs(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// max over elements of |a − b| / (one bf16 ulp of b)
double max_bf16_ulps(const std::vector<double>& got, const std::vector<double>& want) {
  double m = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    m = std::max(m, std::fabs(got[i] - want[i]) / test::ulp_of(DType::kBF16, want[i]));
  return m;
}

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e :
       std::filesystem::directory_iterator(test::data_path("tests/data/golden/" + dir)))
    if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

const Backend kBackends[] = {Backend::kReference, Backend::kAuto};

class HfApply : public ::testing::TestWithParam<std::string> {};

TEST_P(HfApply, ReproducesEveryScenario) {
  const json g = test::load_json("tests/data/golden/hf/" + GetParam() + ".json");
  const ModelRope m = parse_hf_config(test::read_file("models/" + GetParam() + ".json"));
  int cases = 0;
  for (const auto& [lname, L] : g["layers"].items()) {
    const RopeConfig& c = m.layer(lname);
    for (const auto& [sname, S] : L["scenarios"].items()) {
      if (!S.contains("q_embed")) continue;
      SCOPED_TRACE(GetParam() + "/" + lname + "/" + sname);
      const auto positions = S["positions"].get<std::vector<std::int64_t>>();
      const int seq = static_cast<int>(positions.size());
      const int heads = static_cast<int>(S["q_embed"].size());
      const bool bf16 = S.value("dtype", "") == "bfloat16";
      std::int64_t max_pos = 0;
      for (auto p : positions) max_pos = std::max(max_pos, p);
      const std::int64_t seq_len = S.value("seq_len_seen_by_hf", max_pos + 1);
      // The plan from the config (transformers' float32 arithmetic replayed), with the golden's
      // own inv_freq_used where torch's pow rounded a pair differently (see
      // frequencies_golden_test): parity of the rotation needs the same float32 frequencies.
      FrequencyPlan plan = build_frequency_plan(c, seq_len, SeqLenPolicy::kTransformers,
                                                FrequencyArithmetic::kTransformers);
      int replaced = 0;
      if (S.contains("inv_freq_used"))
        for (std::size_t i = 0; i < plan.inv_freq.size(); ++i) {
          const float want = static_cast<float>(S["inv_freq_used"][i].get<double>());
          if (plan.inv_freq[i] != want) {
            EXPECT_LE(std::fabs(plan.inv_freq[i] - want), std::nextafter(want, 1e30f) - want);
            plan.inv_freq[i] = want;
            ++replaced;
          }
        }
      EXPECT_LE(replaced, 1);
      const bool deepseek = S.contains("q_embed_interleave");
      for (const Backend backend : kBackends) {
        ApplyOptions o;
        o.backend = backend;
        o.angles = AngleMode::kHf;
        if (bf16) {
          // transformers' bf16 DeepSeek scenario was produced by the half-split apply function
          o.layout = PairLayout::kHalf;
          o.rounding = Rounding::kTransformers;
          const Result r = run(plan, DType::kBF16, positions, false, o, heads, seq);
          EXPECT_LE(max_bf16_ulps(r.q, golden_tensor(S["q_embed"])), 1.0) << "q bf16";
          EXPECT_LE(max_bf16_ulps(r.k, golden_tensor(S["k_embed"])), 1.0) << "k bf16";
          ++cases;
          continue;
        }
        for (const Rounding rounding : {Rounding::kSingle, Rounding::kTransformers}) {
          o.rounding = rounding;
          o.layout = deepseek ? std::optional(PairLayout::kInterleavedToHalf) : std::nullopt;
          const Result r = run(plan, DType::kF32, positions, false, o, heads, seq);
          const char* qk = deepseek ? "q_embed_interleave" : "q_embed";
          const char* kk = deepseek ? "k_embed_interleave" : "k_embed";
          EXPECT_LE(max_abs(r.q, golden_tensor(S[qk])), 2e-5) << "q";
          EXPECT_LE(max_abs(r.k, golden_tensor(S[kk])), 2e-5) << "k";
          if (deepseek) {  // and transformers' plain half-split apply on the same plan
            o.layout = PairLayout::kHalf;
            const Result h = run(plan, DType::kF32, positions, false, o, heads, seq);
            EXPECT_LE(max_abs(h.q, golden_tensor(S["q_embed"])), 2e-5) << "q half";
          }
          ++cases;
        }
        // exact angles vs float64 math from the same float32 inverse frequencies
        ApplyOptions e;
        e.backend = backend;
        e.angles = AngleMode::kExact;
        const Result r = run(plan, DType::kF32, positions, false, e, heads, seq);
        const auto want_q =
            f64_rotation(test::hf_q(heads, seq, plan.head_dim), plan.inv_freq,
                         plan.attention_factor, positions, plan.layout, heads, plan.head_dim);
        const auto want_k =
            f64_rotation(test::hf_k(heads, seq, plan.head_dim), plan.inv_freq,
                         plan.attention_factor, positions, plan.layout, heads, plan.head_dim);
        EXPECT_LE(max_abs(r.q, want_q), 2e-5) << "exact q";
        EXPECT_LE(max_abs(r.k, want_k), 2e-5) << "exact k";
      }
    }
  }
  EXPECT_GT(cases, 0);
}

INSTANTIATE_TEST_SUITE_P(Goldens, HfApply, ::testing::ValuesIn(names("hf")), param_name);

class MRopeApply : public ::testing::TestWithParam<std::string> {};

TEST_P(MRopeApply, ReproducesEveryScenario) {
  const json g = test::load_json("tests/data/golden/hf-mrope/" + GetParam() + ".json");
  const ModelRope m = parse_hf_config(test::read_file("models/" + GetParam() + ".json"));
  FrequencyPlan plan =
      build_frequency_plan(m.layers.at(0), std::nullopt, SeqLenPolicy::kTransformers,
                           FrequencyArithmetic::kTransformers);
  int replaced = 0;  // torch's pow rounding, as in HfApply
  for (std::size_t i = 0; i < plan.inv_freq.size(); ++i) {
    const float want = static_cast<float>(g["inv_freq"][i].get<double>());
    if (plan.inv_freq[i] != want) {
      EXPECT_LE(std::fabs(plan.inv_freq[i] - want), std::nextafter(want, 1e30f) - want);
      plan.inv_freq[i] = want;
      ++replaced;
    }
  }
  EXPECT_LE(replaced, 1);
  for (const auto& [sname, S] : g["scenarios"].items()) {
    SCOPED_TRACE(GetParam() + "/" + sname);
    std::vector<std::int64_t> rows;
    for (const auto& row : S["position_ids"])
      for (const auto& p : row) rows.push_back(p.get<std::int64_t>());
    const int seq = static_cast<int>(S["position_ids"][0].size());
    const int heads = static_cast<int>(S["q_embed"].size());
    const bool bf16 = sname.find("bf16") != std::string::npos;
    for (const Backend backend : kBackends) {
      ApplyOptions o;
      o.backend = backend;
      o.angles = AngleMode::kHf;
      o.rounding = Rounding::kTransformers;
      const Result r = run(plan, bf16 ? DType::kBF16 : DType::kF32, rows, true, o, heads, seq);
      if (bf16) {
        EXPECT_LE(max_bf16_ulps(r.q, golden_tensor(S["q_embed"])), 1.0);
        EXPECT_LE(max_bf16_ulps(r.k, golden_tensor(S["k_embed"])), 1.0);
        continue;
      }
      EXPECT_LE(max_abs(r.q, golden_tensor(S["q_embed"])), 2e-5);
      EXPECT_LE(max_abs(r.k, golden_tensor(S["k_embed"])), 2e-5);
      ApplyOptions e;
      e.backend = backend;
      const Result x = run(plan, DType::kF32, rows, true, e, heads, seq);
      const auto want =
          f64_rotation(test::hf_q(heads, seq, plan.head_dim), plan.inv_freq, plan.attention_factor,
                       rows, plan.layout, heads, plan.head_dim, plan.pair_axis, seq);
      EXPECT_LE(max_abs(x.q, want), 2e-5) << "exact";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, MRopeApply, ::testing::ValuesIn(names("hf-mrope")), param_name);

class MlxApply : public ::testing::TestWithParam<std::string> {};

TEST_P(MlxApply, ReproducesEveryResult) {
  const json g = test::load_json("tests/data/golden/mlx-lm/" + GetParam() + ".json");
  int cases = 0;
  for (const auto& r : g["ropes"]) {
    if (r["constructor"] != "initialize_rope") continue;
    const MlxRope rope = initialize_rope_from_kwargs(r["kwargs"].dump());
    const int d = r["head_dim"].get<int>();
    for (const auto& res : r["results"]) {
      if (!res.contains("out")) continue;
      SCOPED_TRACE(GetParam() + "/" + r["name"].get<std::string>() + " offset " +
                   res["offset"].dump());
      const int batch = res["batch"].get<int>(), heads = 2, seq = 8;
      std::vector<std::int64_t> offs;
      if (res["offset"].is_array())
        offs = res["offset"].get<std::vector<std::int64_t>>();
      else
        offs.assign(static_cast<std::size_t>(batch), res["offset"].get<std::int64_t>());
      const auto want = res["out"].get<std::vector<double>>();
      double worst = 0;
      for (int b = 0; b < batch; ++b) {
        std::vector<float> x(static_cast<std::size_t>(heads) * seq * d), y(x.size());
        for (int h = 0; h < heads; ++h)
          for (int s = 0; s < seq; ++s)
            for (int i = 0; i < d; ++i)
              x[(static_cast<std::size_t>(h) * seq + s) * d + i] =
                  static_cast<float>(std::sin(0.1 * (i + 1) * (h + 1) * (s + 1) * (b + 1)));
        const FrequencyPlan plan = rope.plan_for_call(seq, offs[static_cast<std::size_t>(b)], d);
        ApplyOptions o;
        o.angles = AngleMode::kHf;
        o.position_scale = rope.scale;
        // [heads, seq, d] viewed as tokens = seq, heads: token stride d, head stride seq·d
        const ConstTensorView in(x.data(), DType::kF32, seq, heads, d, d,
                                 static_cast<std::int64_t>(seq) * d, 1);
        const TensorView out{
            y.data(), DType::kF32, seq, heads, d, d, static_cast<std::int64_t>(seq) * d, 1};
        apply_rope(plan, in, out, {}, {}, Positions::offset(offs[static_cast<std::size_t>(b)]), o);
        for (std::size_t i = 0; i < y.size(); ++i)
          worst =
              std::max(worst, std::fabs(y[i] - want[static_cast<std::size_t>(b) * y.size() + i]));
      }
      const double tol =
          2e-5 + 1e-7 * static_cast<double>(*std::max_element(offs.begin(), offs.end()) + 8);
      EXPECT_LE(worst, tol);
      ++cases;
    }
  }
  EXPECT_GT(cases, 0);
}

std::vector<std::string> mlx_factory_names() {
  std::vector<std::string> out;
  for (const auto& n : names("mlx-lm")) {
    const json g = test::load_json("tests/data/golden/mlx-lm/" + n + ".json");
    for (const auto& r : g["ropes"])
      if (r["constructor"] == "initialize_rope") {
        out.push_back(n);
        break;
      }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Goldens, MlxApply, ::testing::ValuesIn(mlx_factory_names()), param_name);

}  // namespace
}  // namespace ropekit
