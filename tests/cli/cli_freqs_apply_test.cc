// `ropekit freqs` and `ropekit apply` end to end: the command's output equals the library's
// (same plan, same rotation), for transformers configs, M-RoPE rows and mlx-lm's factory.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "npy_test_file.h"
#include "ropekit/ropekit.h"
#include "test_util.h"

#ifndef ROPEKIT_CLI
#error "ROPEKIT_CLI (path of the ropekit binary) is required"
#endif

namespace ropekit {
namespace {

namespace fs = std::filesystem;
using cli_test::write_npy;

struct CmdResult {
  int rc;
  std::string out;
};

CmdResult run(const std::string& args) {
  const cli_test::RunResult r = cli_test::run_cli(args);
  return CmdResult{r.exit_code, r.out};
}

// Runs with ROPEKIT_PROGRESS set as given; returns stderr (the progress line), or a failure.
std::string run_with_progress(const std::string& progress, const std::string& args) {
  cli_test::RunOptions options;
  options.env = {"ROPEKIT_PROGRESS=" + progress};
  const cli_test::RunResult r = cli_test::run_cli(args, options);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.err;
}

std::vector<float> read_npy_f32(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  std::string s(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  const std::size_t hlen = static_cast<unsigned char>(s[8]) |
                           (static_cast<std::size_t>(static_cast<unsigned char>(s[9])) << 8);
  const std::size_t at = 10 + hlen;
  std::vector<float> v((s.size() - at) / 4);
  std::memcpy(v.data(), s.data() + at, v.size() * 4);
  return v;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cli_test::scratch_dir(std::string("freqs_apply_") +
                                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CliTest, FreqsJsonEqualsLibraryPlan) {
  for (const std::string name :
       {"llama-3.1-8b-instruct", "gemma-3-4b-text", "phi-3.5-mini-instruct", "deepseek-v3"}) {
    const std::string cfg = test::data_path("models/" + name + ".json");
    const CmdResult r = run("freqs " + cfg + " --json --seq-len 8192");
    ASSERT_EQ(r.rc, 0) << name;
    const auto j = nlohmann::json::parse(r.out);
    const ModelRope m = load_hf_config(cfg);
    EXPECT_EQ(j["model_type"], m.model_type);
    for (const auto& layer : m.layers) {
      const auto plan = build_frequency_plan(layer, 8192, SeqLenPolicy::kTransformers,
                                             FrequencyArithmetic::kTransformers);
      const auto& L = j["layers"][layer.layer_type];
      EXPECT_EQ(L["rotary_dim"].get<int>(), plan.rotary_dim);
      EXPECT_EQ(L["head_dim"].get<int>(), plan.head_dim);
      EXPECT_EQ(L["rope_type"].get<std::string>(), plan.info.rope_type);
      EXPECT_DOUBLE_EQ(L["attention_factor"].get<double>(), plan.attention_factor);
      ASSERT_EQ(L["inv_freq"].size(), plan.inv_freq.size());
      for (std::size_t i = 0; i < plan.inv_freq.size(); ++i)
        EXPECT_EQ(static_cast<float>(L["inv_freq"][i].get<double>()), plan.inv_freq[i])
            << name << " " << i;
    }
  }
}

TEST_F(CliTest, ApplyEqualsLibraryForEveryDtypeAndMode) {
  const std::string cfg = test::data_path("models/qwen2.5-7b-instruct-yarn.json");
  const int tokens = 5, heads = 3, hd = 128;
  const auto x = test::hf_q(heads, tokens, hd);
  const std::vector<std::int64_t> pos = {0, 7, 4095, 131071, -3};
  write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, hd}, x.data(), x.size() * 4);
  write_npy((dir_ / "p.npy").string(), "<i8", {tokens}, pos.data(), pos.size() * 8);
  const ModelRope m = load_hf_config(cfg);
  for (const std::string dtype : {"f32", "bf16", "f16"})
    for (const std::string angles : {"exact", "hf"}) {
      SCOPED_TRACE(dtype + " " + angles);
      const CmdResult r =
          run("apply " + cfg + " --input " + (dir_ / "x.npy").string() + " --positions " +
              (dir_ / "p.npy").string() + " --output " + (dir_ / "y.npy").string() + " --dtype " +
              dtype + " --angles " + angles);
      ASSERT_EQ(r.rc, 0);
      const auto got = read_npy_f32(dir_ / "y.npy");
      // the library, same choices as the command's defaults
      const auto plan = build_frequency_plan(m.layers[0], 131072, SeqLenPolicy::kTransformers,
                                             FrequencyArithmetic::kTransformers);
      ApplyOptions o;
      o.angles = angles == "hf" ? AngleMode::kHf : AngleMode::kExact;
      o.rounding = angles == "hf" ? Rounding::kTransformers : Rounding::kSingle;
      const DType dt = dtype == "f32" ? DType::kF32 : dtype == "bf16" ? DType::kBF16 : DType::kF16;
      std::vector<std::uint16_t> buf(x.size());
      std::vector<float> want(x.size());
      if (dt == DType::kF32) {
        apply_rope(plan, ConstTensorView::contiguous(x.data(), dt, tokens, heads, hd),
                   TensorView::contiguous(want.data(), dt, tokens, heads, hd), {}, {},
                   Positions::per_token(std::span<const std::int64_t>(pos)), o);
      } else {
        for (std::size_t i = 0; i < x.size(); ++i)
          buf[i] = dt == DType::kBF16 ? f32_to_bf16(x[i]).bits : f32_to_f16(x[i]).bits;
        auto v = TensorView::contiguous(buf.data(), dt, tokens, heads, hd);
        apply_rope(plan, v, TensorView{}, Positions::per_token(std::span<const std::int64_t>(pos)),
                   o);
        for (std::size_t i = 0; i < x.size(); ++i)
          want[i] = dt == DType::kBF16 ? bf16_to_f32(BF16{buf[i]}) : f16_to_f32(F16{buf[i]});
      }
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
    }
}

TEST_F(CliTest, ApplyCommaPositionsInverseRoundTrip) {
  const std::string cfg = test::data_path("models/llama-3.1-8b-instruct.json");
  const int tokens = 3, heads = 2, hd = 128;
  const auto x = test::hf_k(heads, tokens, hd);
  write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, hd}, x.data(), x.size() * 4);
  const std::string io = " --positions 5,100000,-7 --seq-len 8192 ";
  ASSERT_EQ(run("apply " + cfg + " --input " + (dir_ / "x.npy").string() + io + "--output " +
                (dir_ / "y.npy").string())
                .rc,
            0);
  ASSERT_EQ(run("apply " + cfg + " --input " + (dir_ / "y.npy").string() + io +
                "--inverse --output " + (dir_ / "z.npy").string())
                .rc,
            0);
  const auto z = read_npy_f32(dir_ / "z.npy");
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(z[i], x[i], 4e-6) << i;
}

TEST_F(CliTest, ApplyMRopeRowsAndMlxFactory) {
  // M-RoPE: [3, tokens] int32 rows
  const std::string cfg = test::data_path("models/qwen2-vl-7b-instruct.json");
  const int tokens = 4, heads = 2, hd = 128;
  const auto x = test::hf_q(heads, tokens, hd);
  const std::vector<std::int32_t> rows = {0, 1, 2, 2, 0, 1, 1, 2, 0, 1, 2, 1};
  write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, hd}, x.data(), x.size() * 4);
  write_npy((dir_ / "p.npy").string(), "<i4", {3, tokens}, rows.data(), rows.size() * 4);
  ASSERT_EQ(run("apply " + cfg + " --input " + (dir_ / "x.npy").string() + " --positions " +
                (dir_ / "p.npy").string() + " --output " + (dir_ / "y.npy").string())
                .rc,
            0);
  const auto plan =
      build_frequency_plan(load_hf_config(cfg).layers[0], 3, SeqLenPolicy::kTransformers,
                           FrequencyArithmetic::kTransformers);
  std::vector<float> want(x.size());
  apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, heads, hd),
             TensorView::contiguous(want.data(), DType::kF32, tokens, heads, hd), {}, {},
             Positions::mrope(std::span<const std::int32_t>(rows), tokens));
  EXPECT_EQ(read_npy_f32(dir_ / "y.npy"), want);

  // mlx-lm: x [batch=2, heads=1, seq=3, dims=64] with per-batch offsets
  std::ofstream(dir_ / "kw.json") << R"({"dims": 64, "base": 10000.0, "traditional": true,
      "scaling_config": {"type": "linear", "factor": 4.0}, "max_position_embeddings": 4096})";
  std::vector<float> xm(2 * 3 * 64);
  for (std::size_t i = 0; i < xm.size(); ++i)
    xm[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  write_npy((dir_ / "xm.npy").string(), "<f4", {2, 1, 3, 64}, xm.data(), xm.size() * 4);
  ASSERT_EQ(
      run("apply --initialize-rope " + (dir_ / "kw.json").string() + " --input " +
          (dir_ / "xm.npy").string() + " --offsets 10,20 --output " + (dir_ / "ym.npy").string())
          .rc,
      0);
  const auto ym = read_npy_f32(dir_ / "ym.npy");
  // positions (offset + t) / 4 in float32, interleaved pairs: check one pair by hand
  const double theta = static_cast<double>(
      static_cast<float>(static_cast<float>(0.25) * static_cast<float>(20 + 2)));
  const std::size_t at = (1 * 3 + 2) * 64;  // batch 1, t = 2, pair 0
  EXPECT_NEAR(ym[at], xm[at] * std::cos(theta) - xm[at + 1] * std::sin(theta), 2e-6);
  EXPECT_NEAR(ym[at + 1], xm[at + 1] * std::cos(theta) + xm[at] * std::sin(theta), 2e-6);
  EXPECT_EQ(
      run("apply --initialize-rope " + (dir_ / "kw.json").string() + " --input " +
          (dir_ / "xm.npy").string() + " --offsets 1,2,3 --output " + (dir_ / "ym.npy").string())
          .rc,
      2);  // 3 offsets for batch 2
}

// --positions with 1, 2 and 4 rows: a [rows, tokens] .npy is checked against the layer's
// position rows and rotates exactly as the library does with Positions::rows.
TEST_F(CliTest, ApplyPositionRowsOneTwoAndFour) {
  const int tokens = 3, heads = 2;
  struct Case {
    std::string model, layer;
    int rows, hd;
  };
  for (const Case& c :
       {Case{"hunyuanocr", "", 4, 128}, Case{"devstral-small-2-24b-instruct", "vision", 2, 64},
        Case{"llama-3.1-8b-instruct", "", 1, 128}}) {
    SCOPED_TRACE(c.model);
    const std::string cfg = test::data_path("models/" + c.model + ".json");
    const auto x = test::hf_q(heads, tokens, c.hd);
    std::vector<std::int64_t> rows;
    for (int r = 0; r < c.rows; ++r)
      for (int t = 0; t < tokens; ++t) rows.push_back(7 * r + 3 * t + (r == 1 ? 100 : 0));
    write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, c.hd}, x.data(), x.size() * 4);
    write_npy((dir_ / "p.npy").string(), "<i8", {c.rows, tokens}, rows.data(), rows.size() * 8);
    const std::string layer = c.layer.empty() ? "" : " --layer " + c.layer;
    ASSERT_EQ(
        run("apply " + cfg + layer + " --input " + (dir_ / "x.npy").string() + " --positions " +
            (dir_ / "p.npy").string() + " --output " + (dir_ / "y.npy").string())
            .rc,
        0);
    const ModelRope m = load_hf_config(cfg);
    const RopeConfig& rc = c.layer.empty() ? m.layers.front() : m.layer(c.layer);
    const std::int64_t seq = *std::max_element(rows.begin(), rows.end()) + 1;
    const auto plan = build_frequency_plan(rc, seq, SeqLenPolicy::kTransformers,
                                           FrequencyArithmetic::kTransformers);
    std::vector<float> want(x.size());
    const Positions pos =
        c.rows == 1 ? Positions::per_token(std::span<const std::int64_t>(rows))
                    : Positions::rows(std::span<const std::int64_t>(rows), tokens, c.rows);
    apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, heads, c.hd),
               TensorView::contiguous(want.data(), DType::kF32, tokens, heads, c.hd), {}, {}, pos);
    EXPECT_EQ(read_npy_f32(dir_ / "y.npy"), want);

    // A row count other than the layer's is refused, naming the option and both shapes.
    const int wrong = c.rows == 4 ? 3 : c.rows + 1;
    std::vector<std::int64_t> bad(static_cast<std::size_t>(wrong) * tokens, 1);
    write_npy((dir_ / "bad.npy").string(), "<i8", {wrong, tokens}, bad.data(), bad.size() * 8);
    const cli_test::RunResult r = cli_test::run_cli(
        "apply " + cfg + layer + " --input " + (dir_ / "x.npy").string() + " --positions " +
        (dir_ / "bad.npy").string() + " --output " + (dir_ / "z.npy").string());
    EXPECT_EQ(r.exit_code, 2);
    for (const std::string& s : {std::string("--positions"),
                                 std::string("takes ") + std::to_string(c.rows) + " position row",
                                 std::string("got shape [") + std::to_string(wrong) + ", 3]"})
      EXPECT_NE(r.err.find(s), std::string::npos) << r.err;
  }
}

// --decoder-layer / --query-scale on Llama 4 Scout: a NoPE layer is not rotated, and with
// --query-scale its queries are multiplied by the attention-temperature scale of each position,
// in the computed dtype, exactly as the library's scale_queries does.
TEST_F(CliTest, ApplyQueryScaleOnALlama4NoPELayer) {
  const std::string cfg = test::data_path("models/llama-4-scout-17b-16e.json");
  const int tokens = 4, heads = 2, hd = 128;
  const auto x = test::hf_q(heads, tokens, hd);
  write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, hd}, x.data(), x.size() * 4);
  const std::string base = "apply " + cfg + " --input " + (dir_ / "x.npy").string() +
                           " --positions 0,8191,16383,100000 --output " + (dir_ / "y.npy").string();
  const ModelRope m = load_hf_config(cfg);
  const std::vector<std::int64_t> pos{0, 8191, 16383, 100000};
  for (const char* dtype : {"f32", "bf16"}) {
    SCOPED_TRACE(dtype);
    const DType dt = std::string(dtype) == "f32" ? DType::kF32 : DType::kBF16;
    ASSERT_EQ(run(base + " --dtype " + dtype + " --decoder-layer 3 --query-scale").rc, 0);
    std::vector<float> want(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      want[i] = static_cast<float>(round_to_dtype(dt, x[i]));
    if (dt == DType::kF32) {
      scale_queries(*m.query_scale, TensorView::contiguous(want.data(), dt, tokens, heads, hd),
                    Positions::per_token(std::span<const std::int64_t>(pos)));
    } else {
      std::vector<BF16> b(want.size());
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = f32_to_bf16(want[i]);
      scale_queries(*m.query_scale, TensorView::contiguous(b.data(), dt, tokens, heads, hd),
                    Positions::per_token(std::span<const std::int64_t>(pos)));
      for (std::size_t i = 0; i < b.size(); ++i) want[i] = bf16_to_f32(b[i]);
    }
    EXPECT_EQ(read_npy_f32(dir_ / "y.npy"), want);
  }
  // The NoPE layer without --query-scale: the input unchanged.
  ASSERT_EQ(run(base + " --decoder-layer 7").rc, 0);
  EXPECT_EQ(read_npy_f32(dir_ / "y.npy"), x);
  // A RoPE layer rotates as without --decoder-layer.
  ASSERT_EQ(run(base + " --decoder-layer 0").rc, 0);
  const auto rotated = read_npy_f32(dir_ / "y.npy");
  ASSERT_EQ(run(base + " --layer default").rc, 0);  // the text layer (the other is "vision")
  EXPECT_EQ(read_npy_f32(dir_ / "y.npy"), rotated);
  EXPECT_NE(rotated, x);
  // Errors name the option.
  for (const auto& [args, text] :
       {std::pair{std::string(" --query-scale"), "--query-scale: needs --decoder-layer"},
        std::pair{std::string(" --decoder-layer 0 --query-scale"),
                  "decoder layer 0 does not scale its queries (layers that do: 3, 7,"},
        std::pair{std::string(" --decoder-layer 48"),
                  "--decoder-layer: expected a layer in [0, 47]"}}) {
    const cli_test::RunResult r = cli_test::run_cli(base + args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
  }
  const cli_test::RunResult none =
      cli_test::run_cli("apply " + test::data_path("models/llama-3.1-8b-instruct.json") +
                        " --input " + (dir_ / "x.npy").string() + " --positions 0,1,2,3 --output " +
                        (dir_ / "z.npy").string() + " --decoder-layer 0");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("--decoder-layer: this config does not describe its decoder layers"),
            std::string::npos)
      << none.err;
}

// Ministral 3 (Devstral Small 2): every layer rotates, then scales its queries
// (llama_4_scaling_beta), the scale rounded to the computed dtype first.
TEST_F(CliTest, ApplyQueryScaleAfterRoPEOnMinistral3) {
  const std::string cfg = test::data_path("models/devstral-small-2-24b-instruct.json");
  const int tokens = 3, heads = 2, hd = 128;
  const auto x = test::hf_q(heads, tokens, hd);
  write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, hd}, x.data(), x.size() * 4);
  const std::vector<std::int64_t> pos{0, 8192, 300000};
  ASSERT_EQ(run("apply " + cfg + " --input " + (dir_ / "x.npy").string() +
                " --positions 0,8192,300000 --dtype bf16 --decoder-layer 5 --query-scale "
                "--output " +
                (dir_ / "y.npy").string())
                .rc,
            0);
  const ModelRope m = load_hf_config(cfg);
  const auto plan = build_frequency_plan(m.layer("default"), 300001, SeqLenPolicy::kTransformers,
                                         FrequencyArithmetic::kTransformers);
  std::vector<BF16> b(x.size());
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = f32_to_bf16(x[i]);
  const TensorView v = TensorView::contiguous(b.data(), DType::kBF16, tokens, heads, hd);
  apply_rope(plan, v, TensorView{}, Positions::per_token(std::span<const std::int64_t>(pos)));
  scale_queries(*m.query_scale, v, Positions::per_token(std::span<const std::int64_t>(pos)));
  std::vector<float> want(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) want[i] = bf16_to_f32(b[i]);
  EXPECT_EQ(read_npy_f32(dir_ / "y.npy"), want);
}

// Large applies go in token chunks when progress is shown (ROPEKIT_PROGRESS=always stands in for
// a terminal): the chunked result must equal one library call, per-token ids and M-RoPE rows,
// f32 and bf16, and stderr carries the progress line only when asked (piped: silent).
TEST_F(CliTest, LargeApplyShowsProgressOnlyWhenAskedAndChunksExactly) {
  const int tokens = 4099, heads = 8, hd = 128;  // 4.2M elements: above the progress threshold
  std::vector<float> x(static_cast<std::size_t>(tokens) * heads * hd);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(std::sin(0.001 * static_cast<double>(i) + 0.3));
  write_npy((dir_ / "x.npy").string(), "<f4", {tokens, heads, hd}, x.data(), x.size() * 4);
  std::vector<std::int64_t> ids(tokens), rows(3 * static_cast<std::size_t>(tokens));
  for (int t = 0; t < tokens; ++t) {
    ids[static_cast<std::size_t>(t)] = (static_cast<std::int64_t>(t) * 7919) % 200000 - 5;
    for (int r = 0; r < 3; ++r)
      rows[static_cast<std::size_t>(r * tokens + t)] = (t * (r + 3)) % 997 + r;
  }
  write_npy((dir_ / "ids.npy").string(), "<i8", {tokens}, ids.data(), ids.size() * 8);
  write_npy((dir_ / "rows.npy").string(), "<i8", {3, tokens}, rows.data(), rows.size() * 8);
  struct Case {
    std::string model, positions, dtype;
  };
  for (const Case& c : {Case{"llama-3.1-8b-instruct.json", "ids.npy", "f32"},
                        Case{"llama-3.1-8b-instruct.json", "ids.npy", "bf16"},
                        Case{"qwen2-vl-7b-instruct.json", "rows.npy", "f32"}}) {
    SCOPED_TRACE(c.model + " " + c.dtype);
    const std::string cfg = test::data_path("models/" + c.model);
    const std::string args = "apply " + cfg + " --input " + (dir_ / "x.npy").string() +
                             " --positions " + (dir_ / c.positions).string() + " --output " +
                             (dir_ / "y.npy").string() + " --dtype " + c.dtype;
    const std::string shown = run_with_progress("always", args);
    EXPECT_NE(shown.find("\rapply 100% (4099/4099 tokens)"), std::string::npos) << shown;
    EXPECT_NE(shown.find("\rapply  "), std::string::npos) << "no intermediate progress: " << shown;
    EXPECT_EQ(shown.back(), '\r') << "the line is cleared at the end";

    const ModelRope m = load_hf_config(cfg);
    const bool mrope = c.positions == "rows.npy";
    const std::int64_t seq =
        mrope ? 997 + 2 : 200000 - 5;  // the command's default: max(position) + 1
    const FrequencyPlan plan = build_frequency_plan(m.layers[0], seq, SeqLenPolicy::kTransformers,
                                                    FrequencyArithmetic::kTransformers);
    const Positions pos = mrope ? Positions::mrope(std::span<const std::int64_t>(rows), tokens)
                                : Positions::per_token(std::span<const std::int64_t>(ids));
    std::vector<float> want(x.size());
    if (c.dtype == "f32") {
      apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, heads, hd),
                 TensorView::contiguous(want.data(), DType::kF32, tokens, heads, hd), {}, {}, pos);
    } else {
      std::vector<std::uint16_t> buf(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) buf[i] = f32_to_bf16(x[i]).bits;
      apply_rope(plan, TensorView::contiguous(buf.data(), DType::kBF16, tokens, heads, hd),
                 TensorView{}, pos);
      for (std::size_t i = 0; i < x.size(); ++i) want[i] = bf16_to_f32(BF16{buf[i]});
    }
    const auto got = read_npy_f32(dir_ / "y.npy");
    ASSERT_EQ(got.size(), want.size());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
    EXPECT_EQ(differ, 0u);

    // Piped stderr (not a terminal) and no override: nothing at all on stderr.
    EXPECT_EQ(run_with_progress("", args), "");
    EXPECT_EQ(run_with_progress("never", args), "");
  }

  // mlx-lm semantics: [batch, heads, seq, dims] with an offset; progress counts batch × seq.
  std::ofstream(dir_ / "kw.json") << R"({"dims": 128, "base": 500000.0})";
  const std::string args = "apply --initialize-rope " + (dir_ / "kw.json").string() + " --input " +
                           (dir_ / "xm.npy").string() + " --offset 77 --output " +
                           (dir_ / "ym.npy").string();
  write_npy((dir_ / "xm.npy").string(), "<f4", {1, heads, tokens, hd}, x.data(), x.size() * 4);
  const std::string shown = run_with_progress("always", args);
  EXPECT_NE(shown.find("apply 100% (4099/4099 positions)"), std::string::npos) << shown;
  const MlxRope r = initialize_rope_from_kwargs(R"({"dims": 128, "base": 500000.0})");
  ApplyOptions o;
  o.angles = AngleMode::kHf;
  std::vector<float> want(x.size());
  // [heads, seq, dims] as [tokens = seq, heads, dims]: token stride dims, head stride seq·dims
  apply_rope(
      r.plan_for_call(tokens, 77, hd),
      ConstTensorView(x.data(), DType::kF32, tokens, heads, hd, hd, tokens * hd, 1),
      TensorView{want.data(), DType::kF32, tokens, heads, hd, hd, std::int64_t{tokens} * hd, 1}, {},
      {}, Positions::offset(77), o);
  EXPECT_EQ(read_npy_f32(dir_ / "ym.npy"), want);
}

}  // namespace
}  // namespace ropekit
