// The command on GGUF files (written by tests/gguf_test_convert.h): show / freqs / validate /
// plot take a .gguf path, and `compare CONFIG MODEL.gguf` exits 0 when the file rotates like the
// config and 3, naming the GGUF key, for the converter mistakes released files have had.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "ggml_test_loop.h"
#include "gguf_test_convert.h"
#include "npy_test_file.h"
#include "ropekit/apply.h"
#include "ropekit/gguf.h"
#include "test_util.h"

namespace ropekit::cli_test {
namespace {

std::string model(const std::string& name) { return test::data_path("models/" + name + ".json"); }

// One scratch folder per test (scratch_dir empties it, and ctest runs tests in parallel).
const std::string& dir() {
  static std::map<std::string, std::string> dirs;
  const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  auto it = dirs.find(name);
  if (it == dirs.end()) it = dirs.emplace(name, scratch_dir("gguf_" + name)).first;
  return it->second;
}

std::string write_gguf(const test::GgufWriter& w, const std::string& name) {
  const std::string path = dir() + "/" + name + ".gguf";
  w.write(path);
  return path;
}

test::GgufWriter converted(const std::string& name, const std::string& arch) {
  return test::convert_rope(load_hf_config(model(name)), arch);
}

TEST(CliGguf, ShowFreqsValidateAndPlotTakeAGgufPath) {
  const std::string f = write_gguf(converted("llama-3.1-8b-instruct", "llama"), "llama31");
  const RunResult show = run_cli("show '" + f + "'");
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("ggml"), std::string::npos);
  EXPECT_NE(show.out.find("500000"), std::string::npos);
  const RunResult freqs = run_cli("freqs '" + f + "' --json");
  ASSERT_EQ(freqs.exit_code, 0) << freqs.err;
  const RunResult hf = run_cli("freqs llama-3.1-8b-instruct --json");
  const auto a = nlohmann::json::parse(freqs.out), b = nlohmann::json::parse(hf.out);
  // The same schema (same keys at the top level).
  std::vector<std::string> ka, kb;
  for (const auto& [k, v] : a.items()) ka.push_back(k);
  for (const auto& [k, v] : b.items()) kb.push_back(k);
  EXPECT_EQ(ka, kb);
  EXPECT_EQ(run_cli("validate '" + f + "'").exit_code, 0);
  const std::string svg = dir() + "/plot.svg";
  EXPECT_EQ(run_cli("plot '" + f + "' -o '" + svg + "'").exit_code, 0);
}

TEST(CliGguf, ApplyRotatesWithTheFilesRope) {
  const test::GgufWriter w = converted("llama-3.1-8b-instruct", "llama");
  const std::string f = write_gguf(w, "apply");
  std::vector<float> x(4 * 2 * 128);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) / 4.0f - 0.75f;
  const std::vector<std::int64_t> pos{0, 1, 1000, 100000};
  write_npy(dir() + "/x.npy", "<f4", {4, 2, 128}, x.data(), x.size() * 4);
  write_npy(dir() + "/p.npy", "<i8", {4}, pos.data(), pos.size() * 8);
  const RunResult r = run_cli("apply '" + f + "' --input '" + dir() + "/x.npy' --positions '" +
                              dir() + "/p.npy' --output '" + dir() + "/y.npy'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string y = read_file(dir() + "/y.npy");
  ASSERT_GE(y.size(), x.size() * 4);
  std::vector<float> got(x.size());
  std::memcpy(got.data(), y.data() + (y.size() - x.size() * 4), x.size() * 4);
  // The library's rotation with the file's plan (llama.cpp's interleaved pairs).
  const FrequencyPlan plan =
      build_frequency_plan(gguf_model_rope(parse_gguf_rope_metadata(w.bytes())).layers.at(0));
  std::vector<float> want(x.size()), k(x.size());
  const auto in = ConstTensorView::contiguous(x.data(), DType::kF32, 4, 2, 128);
  apply_rope(plan, in, TensorView::contiguous(want.data(), DType::kF32, 4, 2, 128), in,
             TensorView::contiguous(k.data(), DType::kF32, 4, 2, 128),
             Positions::per_token(std::span<const std::int64_t>(pos)));
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

// `apply --numerics llama.cpp` on a GGUF (Qwen2.5's YaRN as llama.cpp's converter writes it)
// against ggml's loop written out in tests/ggml_test_loop.h, with the arguments llama.cpp
// derives from the file's keys: f32 within a float32 ulp of (|x_a| + |x_b|)·(|c| + |s|), bf16
// within one bf16 ulp.
TEST(CliGguf, ApplyWithLlamaCppNumericsComputesAsGgml) {
  const std::string f = write_gguf(converted("qwen2.5-7b-instruct-yarn", "qwen2"), "qwen_yarn");
  const std::int64_t tokens = 5, heads = 2, head = 128;
  std::vector<float> x(static_cast<std::size_t>(tokens * heads * head));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) / 4.0f - 0.75f;
  const std::vector<std::int64_t> pos{0, 3, 4095, 100000, 2000000};
  write_npy(dir() + "/x.npy", "<f4", {5, 2, 128}, x.data(), x.size() * 4);
  write_npy(dir() + "/p.npy", "<i8", {5}, pos.data(), pos.size() * 8);
  GgmlRopeParams g;  // llama.cpp: qwen2 is NEOX; YaRN: freq_scale 1/4, ext_factor 1
  g.mode = GgmlRopeMode::kNeox;
  g.n_dims = 128;
  g.freq_base = 1000000.0f;
  g.freq_scale = 0.25f;
  g.ext_factor = 1.0f;
  g.n_ctx_orig = 32768;
  g.attn_factor = (0.1f * std::log(4.0f) + 1.0f) * (1.0f / (1.0f + 0.1f * std::log(4.0f)));
  for (const char* dtype : {"f32", "bf16"}) {
    SCOPED_TRACE(dtype);
    const RunResult r = run_cli("apply '" + f + "' --input '" + dir() + "/x.npy' --positions '" +
                                dir() + "/p.npy' --output '" + dir() + "/y.npy' --numerics " +
                                "llama.cpp --dtype " + dtype);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string y = read_file(dir() + "/y.npy");
    ASSERT_GE(y.size(), x.size() * 4);
    std::vector<float> got(x.size());
    std::memcpy(got.data(), y.data() + (y.size() - x.size() * 4), x.size() * 4);
    const bool bf16 = std::string(dtype) == "bf16";
    for (std::int64_t t = 0; t < tokens; ++t) {
      const test::RefCache ref = test::ggml_loop(g, {pos[t], pos[t], pos[t], pos[t]});
      for (std::int64_t h = 0; h < heads; ++h)
        for (int i = 0; i < 64; ++i) {
          const std::size_t a = static_cast<std::size_t>((t * heads + h) * head + i), b = a + 64;
          const double c = ref.c[static_cast<std::size_t>(i)],
                       s = ref.s[static_cast<std::size_t>(i)];
          const double want[2] = {x[a] * c - x[b] * s, x[a] * s + x[b] * c};
          const std::size_t at[2] = {a, b};
          for (int k = 0; k < 2; ++k) {
            const double mag = (std::fabs(x[a]) + std::fabs(x[b])) * (std::fabs(c) + std::fabs(s));
            // bf16: one rounding to 8 significant bits (plus the float32 working error)
            const double tol =
                bf16 ? std::ldexp(std::max(std::fabs(want[k]), 1e-3), -7) + std::ldexp(mag, -22)
                     : std::ldexp(mag, -23);
            ASSERT_NEAR(got[at[k]], want[k], tol) << t << " " << h << " " << i;
          }
        }
    }
  }
  // ggml's arguments are printed by show and freqs.
  const RunResult sh = run_cli("show '" + f + "'");
  ASSERT_EQ(sh.exit_code, 0) << sh.err;
  EXPECT_NE(sh.out.find("llama_cpp         neox, n_dims 128, freq_base 1000000, freq_scale 0.25, "
                        "ext_factor 1, n_ctx_orig 32768"),
            std::string::npos)
      << sh.out;
  const RunResult fr = run_cli("freqs '" + f + "' --numerics llama.cpp --json");
  ASSERT_EQ(fr.exit_code, 0) << fr.err;
  const auto j = nlohmann::json::parse(fr.out)["layers"]["default"]["ggml"];
  EXPECT_EQ(j["mode"], "neox");
  EXPECT_EQ(j["freq_scale"].get<double>(), 0.25);
  EXPECT_EQ(j["n_ctx_orig"].get<std::int64_t>(), 32768);
}

TEST(CliGguf, BadFilesNameTheFileAndTheKey) {
  test::GgufWriter w;
  w.str("general.architecture", "llama").str("llama.rope.freq_base", "1e4");
  const std::string f = write_gguf(w, "bad");
  const RunResult r = run_cli("show '" + f + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(
      r.err.find("ropekit: error: " + f + ": llama.rope.freq_base: expected an f32, got string"),
      std::string::npos)
      << r.err;
  std::string truncated = read_file(f).substr(0, 30);
  const std::string tf = dir() + "/truncated.gguf";
  {
    std::ofstream o(tf, std::ios::binary);
    o << truncated;
  }
  const RunResult rt = run_cli("show '" + tf + "'");
  EXPECT_EQ(rt.exit_code, 2);
  EXPECT_NE(rt.err.find("byte offset"), std::string::npos) << rt.err;
}

TEST(CliGguf, CompareAgreesWithACorrectConversionInEitherOrder) {
  for (const auto& [name, arch] :
       std::vector<std::pair<std::string, std::string>>{{"llama-3.1-8b-instruct", "llama"},
                                                        {"qwen2.5-7b-instruct-yarn", "qwen2"},
                                                        {"phi-3.5-mini-instruct", "phi3"},
                                                        {"deepseek-v3", "deepseek2"},
                                                        {"gemma-3-4b-text", "gemma3"}}) {
    const std::string f = write_gguf(converted(name, arch), name);
    const RunResult r = run_cli("compare " + name + " '" + f + "'");
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("agree"), std::string::npos);
    EXPECT_EQ(run_cli("compare '" + f + "' '" + model(name) + "'").exit_code, 0) << name;
  }
}

TEST(CliGguf, CompareCatchesYarnFactorWrittenIntoExtFactor) {
  test::GgufWriter w = converted("qwen2.5-7b-instruct-yarn", "qwen2");
  w.f32("qwen2.rope.scaling.yarn_ext_factor", 4.0f);
  const std::string f = write_gguf(w, "ext_factor");
  const RunResult r = run_cli("compare qwen2.5-7b-instruct-yarn '" + f + "'");
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("differs: qwen2.rope.scaling.yarn_ext_factor: config 1, GGUF 4"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("first exceeds"), std::string::npos);
}

TEST(CliGguf, CompareCatchesLlama31WithoutRopeFreqs) {
  const ModelRope hf = load_hf_config(model("llama-3.1-8b-instruct"));
  ModelRope plain = hf;
  plain.layers.front().scaling = DefaultScaling{};
  const std::string f = write_gguf(test::convert_rope(plain, "llama"), "no_rope_freqs");
  const RunResult r = run_cli("compare llama-3.1-8b-instruct '" + f + "' --json");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["agree"].get<bool>());
  EXPECT_EQ(j["layers"][0]["differences"][0]["key"], "rope_freqs.weight");
  EXPECT_EQ(j["layers"][0]["differences"][0]["gguf"], "missing");
}

TEST(CliGguf, CompareCatchesALostYarnBlock) {
  const ModelRope hf = load_hf_config(model("qwen2.5-7b-instruct-yarn"));
  ModelRope plain = hf;
  plain.layers.front().scaling = DefaultScaling{};
  const std::string f = write_gguf(test::convert_rope(plain, "qwen2"), "no_yarn");
  const RunResult r = run_cli("compare qwen2.5-7b-instruct-yarn '" + f + "'");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.out.find("differs: qwen2.rope.scaling.type: config yarn, GGUF (absent)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("differs: qwen2.rope.scaling.factor: config 4, GGUF 1"), std::string::npos);
}

TEST(CliGguf, CompareNamesThetaAndWidthAndRefusesDuplicateKeys) {
  test::GgufWriter w = converted("phi-3.5-mini-instruct", "phi3");
  w.f32("phi3.rope.freq_base", 20000.0f);  // a second freq_base would be a duplicate key: rebuild
  const std::string dup = write_gguf(w, "dup");
  EXPECT_EQ(run_cli("compare phi-3.5-mini-instruct '" + dup + "'").exit_code, 2);

  ModelRope hf = load_hf_config(model("qwen3-8b"));
  hf.layers.front().rope_theta = 10000;
  hf.layers.front().rotary_dim = 64;
  const std::string f = write_gguf(test::convert_rope(hf, "qwen3"), "theta");
  const RunResult r = run_cli("compare qwen3-8b '" + f + "'");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.out.find("qwen3.rope.freq_base: config 1000000, GGUF 10000"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("qwen3.rope.dimension_count: config 128, GGUF 64"), std::string::npos);
}

}  // namespace
}  // namespace ropekit::cli_test
