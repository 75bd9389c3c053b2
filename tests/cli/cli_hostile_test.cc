// Hostile inputs, environments and failing outputs: every ropekit command either does
// the job or says clearly why, and never loses a file. Each case checks the exit code, the
// message, that a failure leaves no output and no temporary file, and that the inputs are
// unchanged. Disks fill up through RLIMIT_FSIZE (with SIGXFSZ ignored, writes fail with EFBIG)
// and /dev/full; thread start-up fails through RLIMIT_AS (thread stacks cannot be mapped; unlike
// RLIMIT_NPROC it also stops root). Nothing depends on timing, core count or CPU features.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cli_run.h"
#include "npy.h"
#include "npy_test_file.h"
#include "ropekit/error.h"

namespace {

namespace fs = std::filesystem;
using ropekit::cli_test::read_file;
using ropekit::cli_test::run_cli;
using ropekit::cli_test::RunOptions;
using ropekit::cli_test::RunResult;

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// One scratch folder per test; remembers the inputs written to check them afterwards.
class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ropekit::cli_test::scratch_dir(std::string("hostile_") + info->name());
  }
  void TearDown() override {
    for (const auto& [path, bytes] : inputs_) {
      EXPECT_EQ(read_file(path), bytes) << path << " was changed";
    }
  }

  fs::path path(const std::string& name) const { return fs::path(dir_) / name; }

  fs::path input(const std::string& name, const std::string& bytes) {
    const fs::path p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    inputs_[p.string()] = bytes;
    return p;
  }

  // A .npy with any header text, format `major`.0.
  fs::path npy(const std::string& name, const std::string& dict, const std::string& data,
               int major = 1) {
    return input(name, ropekit::cli_test::npy_file_bytes(dict, data, major));
  }
  fs::path f32(const std::string& name, const std::string& shape, std::size_t n, float v = 0.5f) {
    std::string data(n * 4, '\0');
    for (std::size_t i = 0; i < n; ++i) std::memcpy(&data[i * 4], &v, 4);
    return npy(name, "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }", data);
  }
  fs::path config(const std::string& name = "config.json",
                  const std::string& text =
                      R"({"model_type":"llama","head_dim":8,)"
                      R"("max_position_embeddings":4096,"rope_theta":10000.0})") {
    return input(name, text);
  }
  fs::path x() { return f32("x.npy", "(4, 2, 8)", 64); }

  std::string apply(const fs::path& in, const fs::path& out, const std::string& pos = "0,1,2,3") {
    return "apply " + q(config()) + " --input " + q(in) + " --positions " + pos + " --output " +
           q(out);
  }

  // Every file of the scratch folder that is not an input: outputs and temporary files.
  std::vector<std::string> extra_files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      if (e.is_regular_file() && !inputs_.count(e.path().string())) out.push_back(e.path());
    }
    return out;
  }
  void expect_no_temporary_files() const {
    for (const auto& f : extra_files()) EXPECT_FALSE(has(f, ".ropekit-")) << f;
  }
  void expect_nothing_written() const {
    const auto extra = extra_files();
    EXPECT_TRUE(extra.empty()) << extra.front();
  }

  std::string dir_;
  std::map<std::string, std::string> inputs_;
};

// Exit 2, "ropekit: error: " once, on its own line, with every needle; no crash.
void expect_error(const RunResult& r, std::initializer_list<std::string> needles) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_TRUE(r.err.rfind("ropekit: error: ", 0) == 0 || has(r.err, "\nropekit: error: ")) << r.err;
  for (const auto& n : needles) EXPECT_TRUE(has(r.err, n)) << "'" << n << "' not in: " << r.err;
  EXPECT_LT(r.err.size(), 1000u) << "message too long";
}
// Exit 1 (usage), naming the option.
void expect_usage(const RunResult& r, std::initializer_list<std::string> needles) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  for (const auto& n : needles) EXPECT_TRUE(has(r.err, n)) << "'" << n << "' not in: " << r.err;
  EXPECT_LT(r.err.size(), 400u) << "message too long: " << r.err;
}

RunOptions fsize(long long bytes) {
  RunOptions o;
  o.file_size_limit = bytes;
  return o;
}
RunOptions stdout_to(RunOptions::Stdout mode) {
  RunOptions o;
  o.stdout_mode = mode;
  return o;
}

// ---- thread start-up failure -------------------------------------------------------------------

// 4096 worker threads asked for, and an address space in which only some of their stacks fit:
// the pool runs with the threads it could start and the output is the same as with one thread.
TEST_F(Hostile, ThreadStartFailureUsesFewerThreads) {
#ifdef ROPEKIT_TEST_SANITIZED
  GTEST_SKIP() << "address-space limits do not apply to sanitizer builds";
#else
  // Large enough to be split over threads (2 x 256 KiB per chunk and more).
  const fs::path in = f32("big.npy", "(512, 8, 128)", 512 * 8 * 128);
  const std::string pos = q(npy("pos.npy",
                                "{'descr': '<i8', 'fortran_order': False, "
                                "'shape': (512,), }",
                                std::string(512 * 8, '\0')));
  const std::string cfg = q(config("c128.json", R"({"head_dim":128,"rope_theta":10000.0})"));
  auto cmd = [&](const char* out) {
    return "apply " + cfg + " --input " + q(in) + " --positions " + pos + " --output " +
           q(path(out));
  };
  RunOptions one;
  one.env = {"ROPEKIT_THREADS=1"};
  ASSERT_EQ(run_cli(cmd("one.npy"), one).exit_code, 0);
  RunOptions many;
  many.env = {"ROPEKIT_THREADS=4096"};
  many.address_space_limit = 3LL << 30;  // 4096 stacks need 8-32 GiB
  const RunResult r = run_cli(cmd("many.npy"), many);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.signal, 0) << r.err;
  EXPECT_EQ(read_file(path("many.npy")), read_file(path("one.npy")));
  expect_no_temporary_files();
#endif
}

// ---- work proportional to the data
// ---------------------------------------------------------------

TEST_F(Hostile, ZeroElementsWithHugeDimensionsFinishAtOnce) {
  // mlx-lm layout: 2^31 - 1 batch entries of nothing used to loop over every batch entry.
  const fs::path kw = input("kw.json", R"({"dims": 8})");
  const fs::path in = f32("empty.npy", "(2147483647, 0, 1, 8)", 0);
  const RunResult r = run_cli("apply --initialize-rope " + q(kw) + " --input " + q(in) +
                              " --output " + q(path("y.npy")));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(read_file(path("y.npy")), "'shape': (2147483647,0,1,8)"));
  // transformers layout: no tokens, 2^31 - 1 heads.
  const fs::path pos =
      npy("pos.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", "");
  const fs::path in2 = f32("empty2.npy", "(0, 2147483647, 8)", 0);
  const RunResult r2 = run_cli(apply(in2, path("y2.npy"), q(pos)));
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  expect_no_temporary_files();
}

TEST_F(Hostile, DimensionsBeyondTheLimitsAreRefusedUpFront) {
  expect_error(run_cli(apply(f32("d.npy", "(4294967296, 0, 8)", 0), path("y.npy"))),
               {"d.npy", "shape too large", "2^31 - 1"});
  expect_error(run_cli(apply(f32("e.npy", "(65536, 65536, 2)", 0), path("y.npy"))),
               {"e.npy", "shape too large", "2^32 elements"});
  std::string many = "(";
  for (int i = 0; i < 7000; ++i) many += "1, ";
  many += ")";
  expect_error(run_cli(apply(f32("nd.npy", many, 1), path("y.npy"))),
               {"nd.npy", "more than 64 dimensions"});
  expect_nothing_written();
}

// A config of a few bytes with head_dim 2^18: compare's output check used to hold every sampled
// position at once (over 384 MiB; gigabytes at 2^20); it now works on batches of about a million
// values, within a 256 MiB address space.
TEST_F(Hostile, CompareMemoryFollowsHeadDimNotPositionsTimesHeadDim) {
#ifdef ROPEKIT_TEST_SANITIZED
  GTEST_SKIP() << "address-space limits do not apply to sanitizer builds";
#else
  const fs::path cfg = config("huge.json", R"({"head_dim":262144,"rope_theta":10000.0})");
  RunOptions o;
  o.env = {"ROPEKIT_THREADS=1"};
  o.address_space_limit = 256LL << 20;
  const RunResult r = run_cli("compare " + q(cfg) + " --json", o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\"comparable\": true")) << r.out.substr(0, 400);
#endif
}

// ---- bounded reads
// -------------------------------------------------------------------------------

TEST_F(Hostile, DevicesAndDirectoriesAreNotReadWhole) {
  expect_error(run_cli(apply("/dev/zero", path("y.npy"))), {"/dev/zero", "bad magic"});
  expect_error(run_cli(apply(x(), path("y.npy"), "/dev/zero")), {"/dev/zero", "bad magic"});
  expect_error(run_cli("apply --initialize-rope /dev/zero --input " + q(x()) + " --output " +
                       q(path("y.npy"))),
               {"--initialize-rope /dev/zero", "16777216"});
  expect_error(run_cli("freqs --initialize-rope /dev/zero"), {"/dev/zero", "16 MiB"});
  fs::create_directories(path("folder"));
  expect_error(run_cli(apply(path("folder"), path("y.npy"))), {"folder", "is a directory"});
  expect_error(run_cli("freqs --initialize-rope " + q(path("folder"))), {"is a directory"});
  expect_nothing_written();
}

TEST_F(Hostile, KwargsFileBeyondTheCapIsRefusedBySize) {
  const fs::path big = path("big.json");
  { std::ofstream(big) << "{}"; }
  fs::resize_file(big, (16u << 20) + 1);  // sparse: no disk used
  const RunResult r = run_cli("freqs --initialize-rope " + q(big));
  expect_error(r, {"big.json", "16777217 bytes", "at most 16777216"});
}

// A pipe whose header announces far more data than arrives: the data read follows what comes.
TEST_F(Hostile, StreamWithHugeShapeAndLittleDataIsTruncated) {
  const fs::path in = f32("claims.npy", "(1000000, 2, 8)", 64);
  RunOptions o;
  o.stdin_data = read_file(in.string());
  expect_error(run_cli(apply("/dev/stdin", path("y.npy"), "0"), o),
               {"/dev/stdin", "truncated data", "expected 64000000 bytes", "got 256"});
  expect_nothing_written();
}

// ---- .npy to the specification
// -------------------------------------------------------------------

TEST_F(Hostile, NpyShapesNumPyNeverWritesAreRefused) {
  for (const char* shape : {"(4abc, 2, 8)", "(4.9, 2, 8)", "(2 2, 2, 8)", "(4,, 2, 8)", "(4)",
                            "(0x4, 2, 8)", "(04, 2, 8)", "(+4, 2, 8)", "(4, 2, 8,,)", "(,)",
                            "[4, 2, 8]", "(4, 2, 8e0)", "(4, 2, 1_0)"}) {
    SCOPED_TRACE(shape);
    expect_error(run_cli(apply(f32("s.npy", shape, 64), path("y.npy"))), {"s.npy", "malformed"});
  }
  expect_nothing_written();
}

TEST_F(Hostile, NpyHeadersWithDuplicateUnknownOrMissingKeysAreRefused) {
  const std::string data(256, '\0');
  expect_error(run_cli(apply(npy("dup.npy",
                                 "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (4, 2, 8), 'shape': (1, 2, 8), }",
                                 data),
                             path("y.npy"))),
               {"dup.npy", "duplicate key 'shape'"});
  expect_error(run_cli(apply(npy("dupd.npy",
                                 "{'descr': '<i8', 'descr': '<f4', "
                                 "'fortran_order': False, 'shape': (4, 2, 8), }",
                                 data),
                             path("y.npy"))),
               {"dupd.npy", "duplicate key 'descr'"});
  expect_error(run_cli(apply(npy("extra.npy",
                                 "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (4, 2, 8), 'x': 1, }",
                                 data),
                             path("y.npy"))),
               {"extra.npy", "unexpected key 'x'"});
  expect_error(
      run_cli(apply(npy("nof.npy", "{'descr': '<f4', 'shape': (4, 2, 8), }", data), path("y.npy"))),
      {"nof.npy", "no 'fortran_order' entry"});
  expect_error(run_cli(apply(npy("fo.npy",
                                 "{'descr': '<f4', 'fortran_order': 0, "
                                 "'shape': (4, 2, 8), }",
                                 data),
                             path("y.npy"))),
               {"fo.npy", "True or False"});
  expect_error(run_cli(apply(npy("tail.npy",
                                 "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (4, 2, 8), } + 1",
                                 data),
                             path("y.npy"))),
               {"tail.npy", "after the header dict"});
  std::string v15 = read_file(x().string());
  v15[7] = '\x05';
  expect_error(run_cli(apply(input("v15.npy", v15), path("y.npy"))),
               {"v15.npy", "unsupported format version 1.5"});
  expect_nothing_written();
}

// What NumPy writes, in every version and spelling it has used, is read.
TEST_F(Hostile, NpyHeadersNumPyWritesAreRead) {
  const std::string data(256, '\0');
  const std::vector<std::pair<std::string, int>> headers = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 8), }", 1},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 8)}", 1},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 8,), }", 1},
      {"{\"shape\": (4,2,8), \"descr\": \"<f4\", \"fortran_order\": False}", 1},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 8), }", 2},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 8), }", 3},
  };
  int i = 0;
  for (const auto& [dict, version] : headers) {
    SCOPED_TRACE(dict);
    const std::string name = "ok" + std::to_string(i++) + ".npy";
    const RunResult r = run_cli(apply(npy(name, dict, data, version), path("y_" + name)));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  expect_no_temporary_files();
}

// The writer: a header that does not fit version 1.0's 16-bit length gets version 2.0 (the old
// writer wrapped the length: a corrupt file), and both read back.
TEST(HostileNpy, WriterUsesVersion2WhenTheHeaderNeedsIt) {
  const std::string small = ropekit::cli::npy_f32_header({4, 2, 8});
  EXPECT_EQ(small[6], '\x01');
  EXPECT_EQ(small.size() % 64, 0u);
  const std::vector<std::int64_t> many(40000, 1);
  const std::string big = ropekit::cli::npy_f32_header(many);
  ASSERT_EQ(big[6], '\x02');
  EXPECT_EQ(big.size() % 64, 0u);
  std::uint32_t len = 0;
  for (int b = 0; b < 4; ++b)
    len |= static_cast<std::uint32_t>(static_cast<unsigned char>(big[8 + b])) << (8 * b);
  EXPECT_EQ(len + 12, big.size());
  EXPECT_GT(len, 65535u);
  ropekit::cli::NpyArray a;
  // The reader refuses more than 64 dimensions, as NumPy does.
  EXPECT_THROW(ropekit::cli::parse_npy_header(big.substr(12), "big.npy", a), ropekit::IoError);
  ropekit::cli::parse_npy_header(small.substr(10), "small.npy", a);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{4, 2, 8}));
}

// ---- write errors, partial files, destroyed inputs --------------------------------------------

TEST_F(Hostile, FullDiskLeavesNoOutput) {
  for (const long long limit : {0LL, 100LL, 200LL}) {  // nothing, part of the header, part of data
    SCOPED_TRACE(limit);
    const RunResult r = run_cli(apply(x(), path("y.npy")), fsize(limit));
    expect_error(r, {"cannot write", "y.npy", "File too large"});
    expect_nothing_written();
  }
}

TEST_F(Hostile, FailedWriteOverTheInputLeavesTheInput) {
  const fs::path in = x();
  expect_error(run_cli(apply(in, in), fsize(300)), {"cannot write", "File too large"});
  expect_nothing_written();  // and TearDown checks x.npy is unchanged
}

TEST_F(Hostile, FailedWriteKeepsAnExistingOutput) {
  const fs::path out = input("y.npy", "previous contents");
  expect_error(run_cli(apply(x(), out), fsize(100)), {"cannot write", "File too large"});
  expect_no_temporary_files();
}

TEST_F(Hostile, OutputIntoTheInputSucceedsAtomically) {
  const fs::path in = f32("self.npy", "(4, 2, 8)", 64, 1.0f);
  inputs_.erase(in.string());  // this one is meant to change
  const std::string before = read_file(in.string());
  const RunResult r = run_cli(apply(in, in, "0,1,2,3"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string after = read_file(in.string());
  EXPECT_EQ(after.size(), before.size());
  EXPECT_NE(after, before);
  expect_no_temporary_files();
}

TEST_F(Hostile, OutputsThatAreNotFiles) {
  expect_error(run_cli(apply(x(), "/dev/full")), {"cannot write /dev/full", "No space left"});
  fs::create_directories(path("outdir"));
  expect_error(run_cli(apply(x(), path("outdir"))), {"cannot write", "outdir", "Is a directory"});
  expect_error(run_cli(apply(x(), path("missing/y.npy"))), {"cannot write", "missing/y.npy"});
  EXPECT_EQ(run_cli(apply(x(), "/dev/null")).exit_code, 0);
  expect_nothing_written();
}

TEST_F(Hostile, PlotOnAFullDiskLeavesNoFile) {
  for (const char* name : {"chart.svg", "chart.png"}) {
    SCOPED_TRACE(name);
    const RunResult ok =
        run_cli("plot llama-3.1-8b-instruct -o " + q(path(std::string("ok_") + name)));
    if (ok.exit_code != 0 && has(ok.err, "without PNG support")) continue;
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    for (const long long limit : {0LL, 1000LL}) {
      const RunResult r = run_cli("plot llama-3.1-8b-instruct -o " + q(path(name)), fsize(limit));
      expect_error(r, {"cannot write", name, "File too large"});
      EXPECT_FALSE(fs::exists(path(name)));
    }
  }
  expect_no_temporary_files();
}

// Every command that prints: a full or closed stdout is an error, not exit 0.
TEST_F(Hostile, FullOrClosedStdoutIsAnError) {
  const std::string cfg = q(config());
  const std::vector<std::string> commands = {
      "freqs " + cfg,    "freqs " + cfg + " --json",
      "compare " + cfg,  "compare " + cfg + " --json",
      "validate " + cfg, "targets",
      "targets --json",  "show " + cfg,
      "models",          "compare --help",
  };
  for (const auto& mode : {RunOptions::Stdout::kDevFull, RunOptions::Stdout::kClosed}) {
    for (const auto& c : commands) {
      SCOPED_TRACE(c);
      const RunResult r = run_cli(c, stdout_to(mode));
      expect_error(r, {"cannot write to standard output"});
    }
  }
  // Closed stdout does not lend descriptor 1 to the output file.
  const RunResult r = run_cli(apply(x(), path("y.npy")), stdout_to(RunOptions::Stdout::kClosed));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(path("y.npy")).substr(0, 6), "\x93NUMPY");
  expect_no_temporary_files();
}

// ---- options -----------------------------------------------------------------------------------

TEST_F(Hostile, NumbersOutsideTheirRangeAreUsageErrors) {
  const std::string cfg = q(config());
  for (const char* v : {"nan", "NaN", "inf", "-1", "1e999", "abc"}) {
    SCOPED_TRACE(v);
    expect_usage(run_cli("compare " + cfg + " --tolerance " + v), {"--tolerance"});
  }
  for (const char* v : {"nan", "0.1", "9", "inf"}) {
    SCOPED_TRACE(v);
    expect_usage(run_cli("plot " + cfg + " -o " + q(path("p.svg")) + " --png-scale " + v),
                 {"--png-scale"});
  }
  // Beyond 64 bits: CLI11 used to clamp these to 2^63 - 1 silently.
  for (const char* c : {"show", "compare", "plot"}) {
    SCOPED_TRACE(c);
    std::string extra = std::string(c) == "plot" ? " -o " + q(path("p.svg")) : "";
    expect_usage(run_cli(std::string(c) + " " + cfg + extra + " --seq-len 99999999999999999999"),
                 {"--seq-len", "99999999999999999999"});
  }
  expect_usage(
      run_cli("apply --initialize-rope " + q(input("kw.json", R"({"dims": 8})")) + " --input " +
              q(x()) + " --output " + q(path("y.npy")) + " --offset 99999999999999999999"),
      {"--offset"});
  // Range bounds in words, not 309-digit numbers (expect_usage checks the length).
  const RunResult r = run_cli("compare " + cfg + " --tolerance -1");
  EXPECT_FALSE(has(r.err, "179769313486231570")) << r.err;
  expect_nothing_written();
}

TEST_F(Hostile, PositionListsAreReadAsLists) {
  const fs::path in = x();
  for (const char* list : {"0,1,2,3,", ",0,1,2,3", "0,1,,3"}) {
    SCOPED_TRACE(list);
    expect_error(run_cli(apply(in, path("y.npy"), list)), {"--positions", "\"\""});
  }
  expect_error(run_cli(apply(in, path("y.npy"), "0,1.5,2,3")), {"--positions", "\"1.5\""});
  const RunResult r = run_cli(apply(in, path("y.npy"), "1.5"));
  expect_error(r, {"--positions", "\"1.5\""});
  EXPECT_FALSE(has(r.err, "cannot open")) << r.err;
  expect_nothing_written();
}

// ---- messages
// ------------------------------------------------------------------------------------

TEST_F(Hostile, UserTextIsEchoedAsAShortPrefix) {
  const std::string huge(1 << 20, 'A');
  // a rope type, an unknown key, a model name, a layer name, a positions list
  expect_error(run_cli("freqs " + q(config("type.json", R"({"head_dim":8,"rope_scaling":)"
                                                        R"({"rope_type":")" +
                                                            huge + "\"}}"))),
               {"unknown rope type", "AAAA", "bytes)"});
  const RunResult v = run_cli("validate " + q(config("key.json", R"({"head_dim":8,)"
                                                                 R"("rope_scaling":{"rope_type":)"
                                                                 R"("linear","factor":2,")" +
                                                                     huge + "\":1}}")));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_LT(v.out.size(), 1000u);
  EXPECT_TRUE(has(v.out, "unrecognized key")) << v.out.substr(0, 300);
  expect_error(run_cli("show " + std::string(100000, 'm')), {"neither a config file", "bytes)"});
  expect_error(run_cli("freqs " + q(config()) + " --layer " + std::string(100000, 'l')),
               {"not in this config"});
  expect_error(run_cli(apply(x(), path("y.npy"), std::string(100000, '7') + ",x")),
               {"--positions", "bytes)"});
  // Control characters are escaped, not sent to the terminal.
  const RunResult esc = run_cli("show \"$(printf '\\033[31mred\\nline')\"");
  EXPECT_EQ(esc.exit_code, 2);
  EXPECT_FALSE(has(esc.err, "\x1b")) << esc.err;
  EXPECT_TRUE(has(esc.err, "\\x1b[31mred\\nline")) << esc.err;
}

// A position out of range is reported at the index the user wrote (not the index inside a
// progress chunk), on a line of its own (not after the progress line).
TEST_F(Hostile, PositionErrorsNameTheirIndexOnTheirOwnLine) {
  const std::int64_t tokens = 4096;
  std::string ids(static_cast<std::size_t>(tokens) * 8, '\0');
  for (std::int64_t t = 0; t < tokens; ++t) {
    const std::int64_t p = t == 4000 ? (std::int64_t{1} << 40) : t;
    std::memcpy(&ids[static_cast<std::size_t>(t) * 8], &p, 8);
  }
  const fs::path pos =
      npy("pos.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (4096,), }", ids);
  const fs::path in = f32("big.npy", "(4096, 8, 128)", 4096 * 8 * 128);
  RunOptions o;
  o.env = {"ROPEKIT_PROGRESS=always"};
  const RunResult r =
      run_cli("apply " + q(config("c128.json", R"({"head_dim":128,"rope_theta":10000.0})")) +
                  " --input " + q(in) + " --positions " + q(pos) + " --output " + q(path("y.npy")),
              o);
  expect_error(r, {"positions[4000]", "1099511627776"});
  expect_nothing_written();
}

// An error after the progress line was drawn (the second batch entry's offset is out of range)
// starts a line of its own.
TEST_F(Hostile, ErrorAfterProgressStartsANewLine) {
  const fs::path kw = input("kw.json", R"({"dims": 8})");
  const fs::path in = f32("b2.npy", "(2, 1, 4, 8)", 64);
  RunOptions o;
  o.env = {"ROPEKIT_PROGRESS=always"};
  const RunResult r = run_cli("apply --initialize-rope " + q(kw) + " --input " + q(in) +
                                  " --offsets 0,2147483647 --output " + q(path("y.npy")),
                              o);
  expect_error(r, {"positions (offset)"});
  EXPECT_TRUE(has(r.err, "apply")) << "the progress line was drawn: " << r.err;
  EXPECT_TRUE(has(r.err, "\nropekit: error: ")) << r.err;
  expect_nothing_written();
}

// ---- validate agrees with the commands that compute
// ----------------------------------------------

TEST_F(Hostile, ValidateRefusesWhatNoCommandCanCompute) {
  // A factor that is finite and > 0 but makes the first frequency infinite.
  const fs::path cfg = config("tiny_factor.json", R"({"head_dim":8,"rope_theta":10000.0,)"
                                                  R"("rope_scaling":{"rope_type":"linear",)"
                                                  R"("factor":1e-320}})");
  const RunResult f = run_cli("freqs " + q(cfg));
  expect_error(f, {"layer default (rope_type linear)", "cannot be computed", "not finite"});
  // Not a key this config does not have (it has rope_scaling).
  EXPECT_FALSE(has(f.err, "rope_parameters")) << f.err;
  const std::vector<std::string> others = {
      "show " + q(cfg), "plot -o " + q(path("p.svg")) + " " + q(cfg), "compare " + q(cfg),
      "apply " + q(cfg) + " --input " + q(x()) + " --positions 0,1,2,3 --output " +
          q(path("y.npy"))};
  for (const std::string& c : others) {
    SCOPED_TRACE(c);
    expect_error(run_cli(c), {"layer default", "cannot be computed"});
  }
  const RunResult v = run_cli("validate " + q(cfg));
  EXPECT_EQ(v.exit_code, 2) << v.out << v.err;
  EXPECT_TRUE(has(v.out, "error: ")) << v.out;
  EXPECT_TRUE(has(v.out, "not finite")) << v.out;
  EXPECT_TRUE(has(v.err, "frequencies cannot be computed")) << v.err;
  // And a valid config stays valid.
  EXPECT_EQ(run_cli("validate " + q(config())).exit_code, 0);
}

// ---- SVG titles
// ----------------------------------------------------------------------------------

bool valid_utf8_xml_text(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return false;
    std::size_t n = c < 0x80             ? 1
                    : (c & 0xE0) == 0xC0 ? 2
                    : (c & 0xF0) == 0xE0 ? 3
                    : (c & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST_F(Hostile, SvgTitlesWithControlCharactersOrInvalidUtf8StayValid) {
  const fs::path svg = path("t.svg");
  const RunResult r = run_cli("plot llama-3.1-8b-instruct -o " + q(svg) +
                              " --title \"$(printf 'a\\001b\\377\\376<&>\\303')\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = read_file(svg.string());
  EXPECT_TRUE(valid_utf8_xml_text(text));
  EXPECT_TRUE(has(text,
                  "a\xEF\xBF\xBD"
                  "b"))
      << "U+FFFD for the control character";
  EXPECT_TRUE(has(text, "&lt;&amp;&gt;"));
  const RunResult png = run_cli("plot llama-3.1-8b-instruct -o " + q(path("t.png")) +
                                " --title \"$(printf '\\001\\377')\"");
  if (!has(png.err, "without PNG support")) {
    EXPECT_EQ(png.exit_code, 0) << png.err;
  }
  expect_no_temporary_files();
}

// ---- compare
// ----------------------------------------------------------------------------------------

TEST_F(Hostile, CompareOneLayerAgainstEachLayerOfB) {
  const fs::path gemma = config("gemma.json", R"({"model_type":"gemma3_text","head_dim":8,)"
                                              R"("max_position_embeddings":4096,"rope_parameters":)"
                                              R"({"full_attention":{"rope_type":"linear",)"
                                              R"("factor":8.0},"sliding_attention":)"
                                              R"({"rope_type":"default"}}})");
  const RunResult r = run_cli("compare " + q(config()) + " " + q(gemma));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "layer default vs full_attention")) << r.out;
  EXPECT_TRUE(has(r.out, "layer default vs sliding_attention")) << r.out;
}

TEST_F(Hostile, HelpTextsEndWithANewline) {
  for (const char* c : {"", "freqs", "apply", "show", "compare", "plot", "models", "validate",
                        "targets", "bench"}) {
    SCOPED_TRACE(c);
    const RunResult r = run_cli(std::string(c) + " --help");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_FALSE(r.out.empty());
    EXPECT_EQ(r.out.back(), '\n');
  }
}

}  // namespace
