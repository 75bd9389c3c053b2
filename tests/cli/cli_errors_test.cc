// The ropekit command on bad inputs (docs/errors.md "CLI"): usage errors exit 1 (CLI11's
// message), bad configs and inputs exit 2 with "ropekit: error: ..." naming the file, the key or
// the option. No input may crash the command (a sanitizer report or a signal fails these tests).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_run.h"
#include "npy_test_file.h"

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;  // exit status; -1 when killed by a signal
  std::string out, err;
};

std::string slurp(const fs::path& p) { return ropekit::cli_test::read_file(p.string()); }

fs::path scratch() {
  static const fs::path dir = ropekit::cli_test::scratch_dir(
      std::string("errors_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  return dir;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// `ropekit ARGS` through the CLI tests' runner (cli_run.h).
CliRun ropekit(const std::string& args) {
  const ropekit::cli_test::RunResult r = ropekit::cli_test::run_cli(args);
  return CliRun{r.exit_code, r.out, r.err};
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// Exit code 2, "ropekit: error:" and every needle on stderr; nothing from a sanitizer.
void expect_input_error(const CliRun& r, std::initializer_list<std::string> needles) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "ropekit: error: ")) << r.err;
  for (const auto& n : needles)
    EXPECT_TRUE(contains(r.err, n)) << "\"" << n << "\" not in stderr: " << r.err;
  EXPECT_FALSE(contains(r.err, "Sanitizer") || contains(r.err, "runtime error")) << r.err;
}
void expect_usage_error(const CliRun& r, std::initializer_list<std::string> needles) {
  EXPECT_EQ(r.code, 1) << r.err;
  for (const auto& n : needles)
    EXPECT_TRUE(contains(r.err + r.out, n)) << "\"" << n << "\" not in: " << r.err;
  EXPECT_FALSE(contains(r.err, "Sanitizer") || contains(r.err, "runtime error")) << r.err;
}

fs::path write_text(const std::string& name, const std::string& text) {
  const fs::path p = scratch() / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// A .npy file with any header: descr, fortran_order and shape as written, then `data`.
fs::path write_npy(const std::string& name, const std::string& descr, const std::string& fortran,
                   const std::string& shape, const std::string& data, int version = 1) {
  return write_text(name, ropekit::cli_test::npy_file_bytes("{'descr': '" + descr +
                                                                "', 'fortran_order': " + fortran +
                                                                ", 'shape': " + shape + ", }",
                                                            data, version));
}
std::string floats(std::size_t n, float v = 0.5f) {
  std::string s(n * 4, '\0');
  for (std::size_t i = 0; i < n; ++i) std::memcpy(&s[i * 4], &v, 4);
  return s;
}
std::string int64s(std::initializer_list<std::int64_t> v) {
  std::string s;
  for (std::int64_t x : v) s.append(reinterpret_cast<const char*>(&x), 8);
  return s;
}

// head_dim 8: [tokens=4, heads=2, head_dim=8] inputs.
fs::path small_config() {
  return write_text(
      "config.json",
      R"({"model_type":"llama","head_dim":8,"max_position_embeddings":4096,"rope_theta":10000.0})");
}
fs::path good_input() { return write_npy("x.npy", "<f4", "False", "(4, 2, 8)", floats(64)); }

std::string apply_args(const fs::path& config, const fs::path& input,
                       const std::string& positions = "0,1,2,3") {
  return "apply " + q(config) + " --input " + q(input) + " --positions " + positions +
         " --output " + q(scratch() / "y.npy");
}

// ---- usage errors: exit 1
// --------------------------------------------------------------------------

TEST(CliUsage, MissingOrUnknownArguments) {
  expect_usage_error(ropekit(""), {});
  expect_usage_error(ropekit("frobnicate"), {});
  expect_usage_error(ropekit("apply " + q(small_config()) + " --positions 0 --output y.npy"),
                     {"--input"});
  expect_usage_error(ropekit(apply_args(small_config(), good_input()) + " --bogus"), {"--bogus"});
  expect_usage_error(ropekit(apply_args(small_config(), good_input()) + " --dtype f64"),
                     {"--dtype"});
  expect_usage_error(ropekit(apply_args(small_config(), good_input()) + " --seq-len 0"),
                     {"--seq-len"});
  expect_usage_error(ropekit(apply_args(small_config(), good_input()) + " --seq-len abc"),
                     {"--seq-len"});
  expect_usage_error(ropekit("apply --input x.npy --output y.npy"),
                     {"CONFIG or --initialize-rope"});
  expect_usage_error(ropekit("freqs"), {"CONFIG or --initialize-rope"});
}

// --numerics takes exactly the names ropekit::numerics_preset accepts, in apply and in freqs:
// every alias works (mlx_lm was once refused by the command's own list), and anything else is a
// usage error that lists the presets.
TEST(CliUsage, NumericsPresetNamesAreTheLibrarys) {
  for (const char* name : {"exact", "transformers", "hf", "mlx-lm", "mlx", "mlx_lm", "llama.cpp",
                           "llama-cpp", "llama_cpp", "ggml"}) {
    const CliRun f = ropekit("freqs " + q(small_config()) + " --numerics " + name);
    EXPECT_EQ(f.code, 0) << name << ": " << f.err;
    const CliRun a = ropekit(apply_args(small_config(), good_input()) + " --numerics " + name);
    EXPECT_EQ(a.code, 0) << name << ": " << a.err;
  }
  for (const char* sub : {"freqs ", "apply "}) {
    const std::string args = std::string(sub) == "freqs "
                                 ? "freqs " + q(small_config())
                                 : apply_args(small_config(), good_input());
    expect_usage_error(ropekit(args + " --numerics llama"),
                       {"--numerics", "exact, transformers, mlx-lm, llama.cpp", "\"llama\""});
  }
}

TEST(CliUsage, TheGoodCallWorks) {
  const CliRun r = ropekit(apply_args(small_config(), good_input()));
  EXPECT_EQ(r.code, 0) << r.err;
}

// ---- configs: exit 2
// -------------------------------------------------------------------------------

TEST(CliConfig, MissingFileOrDirectory) {
  expect_input_error(
      ropekit(apply_args("/nonexistent/ropekit/config.json", good_input())),
      {"/nonexistent/ropekit/config.json", "neither a config file nor a built-in model"});
  const fs::path empty_dir = scratch() / "snapshot";
  fs::create_directories(empty_dir);
  expect_input_error(ropekit(apply_args(empty_dir, good_input())),
                     {"snapshot", "without a config.json"});
  expect_input_error(ropekit("freqs /nonexistent/ropekit/config.json"),
                     {"/nonexistent/ropekit/config.json"});
}

TEST(CliConfig, BadConfigsNameTheKey) {
  expect_input_error(
      ropekit(apply_args(write_text("trunc.json", R"({"head_dim": 8, "rope_)"), good_input())),
      {"malformed JSON"});
  expect_input_error(ropekit(apply_args(write_text("empty.json", ""), good_input())),
                     {"empty input"});
  expect_input_error(
      ropekit(apply_args(write_text("deep.json", std::string(100000, '[')), good_input())),
      {"nesting deeper than 64"});
  expect_input_error(
      ropekit("freqs " +
              q(write_text("factor.json", R"({"head_dim":8,"max_position_embeddings":4096,
      "rope_scaling":{"rope_type":"linear","factor":-2}})"))),
      {"rope_scaling.factor", "expected a finite number > 0"});
  expect_input_error(
      ropekit("freqs " +
              q(write_text("type.json", R"({"head_dim":8,"rope_scaling":{"type":"ntk"}})"))),
      {"rope_scaling.type", "unknown rope type \"ntk\"", "supported:"});
  expect_input_error(ropekit("freqs --strict " +
                             q(write_text("strict.json", R"({"head_dim":8,"rope_theta":10000})"))),
                     {"max_position_embeddings", "strict"});
}

TEST(CliConfig, LayerChoice) {
  const fs::path gemma = write_text("gemma.json", R"({"model_type":"gemma3_text","head_dim":8,
    "max_position_embeddings":4096,"rope_parameters":{"full_attention":{"rope_type":"linear","factor":8.0},
    "sliding_attention":{"rope_type":"default"}}})");
  expect_input_error(ropekit(apply_args(gemma, good_input())),
                     {"--layer", "full_attention, sliding_attention"});
  expect_input_error(ropekit(apply_args(gemma, good_input()) + " --layer global"),
                     {"\"global\"", "full_attention, sliding_attention"});
  expect_input_error(ropekit("freqs " + q(gemma) + " --layer global"), {"\"global\""});
}

// ---- .npy inputs: exit 2, the message names the file and the problem
// ----------------------------------

TEST(CliNpy, MissingAndUnreadable) {
  expect_input_error(ropekit(apply_args(small_config(), "/nonexistent/x.npy")),
                     {"cannot open", "/nonexistent/x.npy"});
  expect_input_error(ropekit(apply_args(small_config(), write_text("empty.npy", ""))),
                     {"empty.npy", "bad magic"});
  expect_input_error(
      ropekit(apply_args(small_config(), write_text("text.npy", "just some text, not numpy"))),
      {"text.npy", "not a .npy file (bad magic)"});
  expect_input_error(
      ropekit(apply_args(small_config(), write_text("short.npy", std::string("\x93NUMPY\x01", 7)))),
      {"short.npy", "bad magic"});
  // A format version numpy never wrote.
  std::string v9 = slurp(good_input());
  v9[6] = '\x09';
  expect_input_error(ropekit(apply_args(small_config(), write_text("v9.npy", v9))),
                     {"v9.npy", "unsupported format version 9"});
}

TEST(CliNpy, WrongDtype) {
  for (const char* descr : {"<f2", ">f4", "<c8", "|b1", "|u1", "<u4", "|O"}) {
    SCOPED_TRACE(descr);
    expect_input_error(ropekit(apply_args(small_config(), write_npy("dt.npy", descr, "False",
                                                                    "(4, 2, 8)", floats(64)))),
                       {"dt.npy", "unsupported dtype", descr});
  }
}

// An integer array as --input (or a float array as --positions) is readable but the wrong kind:
// the message must say which file (see the report).
TEST(CliNpy, IntegerInputOrFloatPositionsNameTheFile) {
  expect_input_error(
      ropekit(apply_args(small_config(), write_npy("ints.npy", "<i8", "False", "(4, 2, 8)",
                                                   std::string(64 * 8, '\0')))),
      {"ints.npy", "float"});
  const fs::path fpos = write_npy("fpos.npy", "<f4", "False", "(4,)", floats(4, 1.0f));
  expect_input_error(ropekit(apply_args(small_config(), good_input(), q(fpos))),
                     {"fpos.npy", "integer"});
}

TEST(CliNpy, WrongShape) {
  expect_input_error(ropekit(apply_args(small_config(), write_npy("2d.npy", "<f4", "False",
                                                                  "(4, 16)", floats(64)))),
                     {"2d.npy", "expected shape [tokens, heads, head_dim]", "got 2 dimensions"});
  expect_input_error(ropekit(apply_args(small_config(), write_npy("4d.npy", "<f4", "False",
                                                                  "(1, 4, 2, 8)", floats(64)))),
                     {"4d.npy", "got 4 dimensions"});
  expect_input_error(ropekit(apply_args(small_config(), write_npy("neg.npy", "<f4", "False",
                                                                  "(4, -2, 8)", floats(64)))),
                     {"neg.npy", "negative dimension"});
  expect_input_error(ropekit(apply_args(small_config(), write_npy("junk.npy", "<f4", "False",
                                                                  "(4, two, 8)", floats(64)))),
                     {"junk.npy", "malformed shape"});
  expect_input_error(
      ropekit(apply_args(small_config(), write_npy("huge.npy", "<f4", "False",
                                                   "(4611686018427387904, 4, 8)", floats(64)))),
      {"huge.npy", "shape too large"});
  expect_input_error(ropekit(apply_args(small_config(), write_npy("noshape.npy", "<f4", "False",
                                                                  "(4, 2, 8", floats(64)))),
                     {"noshape.npy"});
}

TEST(CliNpy, WrongHeadDim) {
  expect_input_error(ropekit(apply_args(small_config(), write_npy("hd.npy", "<f4", "False",
                                                                  "(4, 1, 16)", floats(64)))),
                     {"hd.npy", "head_dim 16 is not the config's head_dim 8"});
}

TEST(CliNpy, TruncatedData) {
  expect_input_error(ropekit(apply_args(small_config(), write_npy("trunc.npy", "<f4", "False",
                                                                  "(4, 2, 8)", floats(63)))),
                     {"trunc.npy", "truncated data", "expected 256 bytes", "got 252"});
  // header length pointing past the end of the file
  std::string h = slurp(good_input()).substr(0, 20);
  expect_input_error(ropekit(apply_args(small_config(), write_text("hdr.npy", h))),
                     {"hdr.npy", "truncated header"});
  // version 2 header length field past the end
  std::string v2 = std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12) + "{'descr'";
  expect_input_error(ropekit(apply_args(small_config(), write_text("v2.npy", v2))),
                     {"v2.npy", "truncated header"});
  // a header without the keys
  const fs::path nokeys =
      write_text("nokeys.npy", std::string("\x93NUMPY\x01\x00\x06\x00{    }", 16));
  expect_input_error(ropekit(apply_args(small_config(), nokeys)),
                     {"nokeys.npy", "header has no 'descr' entry"});
}

TEST(CliNpy, FortranOrder) {
  expect_input_error(ropekit(apply_args(small_config(), write_npy("fortran.npy", "<f4", "True",
                                                                  "(4, 2, 8)", floats(64)))),
                     {"fortran.npy", "Fortran-order arrays are not supported"});
}

// ---- positions
// ---------------------------------------------------------------------------------------

TEST(CliPositions, BadLists) {
  const fs::path cfg = small_config(), x = good_input();
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,x,3")),
                     {"0,1,x,3"});  // not a list: read as a file
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,,3")),
                     {"--positions", "integers separated by commas", "\"\""});
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,2")),
                     {"--positions", "expected 4 positions (one per token)", "got 3"});
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,2,3,4")), {"--positions", "got 5"});
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,2,-")), {"--positions", "\"-\""});
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,2,99999999999999999999")),
                     {"--positions", "99999999999999999999"});
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,2,2147483648")),
                     {"positions[3]", "2147483648"});
  expect_input_error(ropekit(apply_args(cfg, x, "0,1,2,-2147483648")), {"positions[3]"});
  expect_input_error(ropekit(apply_args(cfg, x, "/nonexistent/pos.npy")), {"/nonexistent/pos.npy"});
}

// The largest int64 position must be refused like any other out-of-range position, not overflow
// while the sequence length is derived from it (see the report).
TEST(CliPositions, Int64MaxPositionIsAnErrorNotUndefinedBehaviour) {
  expect_input_error(ropekit(apply_args(small_config(), good_input(), "0,1,2,9223372036854775807")),
                     {"9223372036854775807"});
}

TEST(CliPositions, NpyPositions) {
  const fs::path cfg = small_config(), x = good_input();
  const fs::path rows =
      write_npy("rows.npy", "<i8", "False", "(3, 4)", int64s({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}));
  expect_input_error(ropekit(apply_args(cfg, x, q(rows))),
                     {"--positions", "rows.npy", "takes 1 position row", "got shape [3, 4]"});
  const fs::path two =
      write_npy("two.npy", "<i8", "False", "(2, 4)", int64s({0, 1, 2, 3, 0, 1, 2, 3}));
  expect_input_error(ropekit(apply_args(cfg, x, q(two))),
                     {"two.npy", "takes 1 position row", "got shape [2, 4]"});
  const fs::path five =
      write_npy("five.npy", "<i8", "False", "(5, 4)",
                int64s({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  expect_input_error(
      ropekit(apply_args(cfg, x, q(five))),
      {"five.npy", "expected shape [tokens] or [rows, tokens] with 1 to 4 rows", "got [5, 4]"});
  const fs::path three = write_npy("three.npy", "<i8", "False", "(3,)", int64s({0, 1, 2}));
  expect_input_error(ropekit(apply_args(cfg, x, q(three))), {"--positions", "got 3"});
  const fs::path fortran = write_npy("fpos.npy", "<i8", "True", "(4,)", int64s({0, 1, 2, 3}));
  expect_input_error(ropekit(apply_args(cfg, x, q(fortran))), {"fpos.npy", "Fortran-order"});
}

// ---- output and mlx-lm mode
// ------------------------------------------------------------------------------

TEST(CliOutput, UnwritableOutput) {
  const CliRun r = ropekit("apply " + q(small_config()) + " --input " + q(good_input()) +
                           " --positions 0,1,2,3 --output /nonexistent/dir/y.npy");
  expect_input_error(r, {"cannot write", "/nonexistent/dir/y.npy"});
}

TEST(CliMlx, KwargsErrors) {
  const fs::path x = write_npy("x4.npy", "<f4", "False", "(1, 2, 4, 8)", floats(64));
  const auto mlx = [&](const fs::path& kwargs, const std::string& extra = "") {
    return ropekit("apply --initialize-rope " + q(kwargs) + " --input " + q(x) + " --output " +
                   q(scratch() / "y.npy") + extra);
  };
  expect_input_error(mlx("/nonexistent/kwargs.json"), {"cannot open", "/nonexistent/kwargs.json"});
  expect_input_error(mlx(write_text("bad.json", R"({"dims": 7})")), {"dims", "even"});
  expect_input_error(
      mlx(write_text("type.json", R"({"dims": 8, "scaling_config": {"type": "su"}})")),
      {"scaling_config.type", "Unsupported RoPE type su"});
  expect_input_error(mlx(write_text("big.json", R"({"dims": 16})")), {"dims 16", "last axis"});
  expect_input_error(mlx(write_text("ok.json", R"({"dims": 8})"), " --offsets 0,1,2"),
                     {"--offsets", "one offset per batch entry"});
  expect_input_error(mlx(write_text("ok2.json", R"({"dims": 8})"), " --offset 2147483647"),
                     {"positions (offset)"});
  const fs::path x3 = write_npy("x3.npy", "<f4", "False", "(4, 8)", floats(32));
  expect_input_error(
      ropekit("apply --initialize-rope " + q(write_text("ok3.json", R"({"dims": 8})")) +
              " --input " + q(x3) + " --output " + q(scratch() / "y.npy")),
      {"x3.npy", "at least 3 dimensions"});
}

// Deeply nested kwargs must be an error (exit 2), not a stack overflow (see the report).
TEST(CliMlx, DeeplyNestedKwargsAreAnErrorNotACrash) {
  const fs::path x = write_npy("x4.npy", "<f4", "False", "(1, 2, 4, 8)", floats(64));
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const fs::path kw = write_text("deep.json", R"({"dims": )" + deep + "}");
  expect_input_error(ropekit("apply --initialize-rope " + q(kw) + " --input " + q(x) +
                             " --output " + q(scratch() / "y.npy")),
                     {"dims"});
  expect_input_error(ropekit("freqs --initialize-rope " + q(kw)), {"dims"});
}

}  // namespace
