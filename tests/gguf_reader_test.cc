// The GGUF binary reader on files written by tests/gguf_test_writer.h: well-formed files of
// versions 2 and 3, and every kind of malformed header (truncated, absurd counts, wrong types,
// big-endian, split shards), each a ConfigError naming the key or the byte offset.
#include <gtest/gtest.h>

#include <string>

#include "gguf_test_writer.h"
#include "ropekit/error.h"
#include "ropekit/gguf.h"

namespace ropekit {
namespace {

using test::GgufWriter;

GgufWriter minimal(std::uint32_t version = 3) {
  GgufWriter w(version);
  w.str("general.architecture", "llama")
      .str("general.name", "tiny")
      .u32("llama.context_length", 4096)
      .u32("llama.embedding_length", 512)
      .u32("llama.attention.head_count", 8)
      .f32("llama.rope.freq_base", 500000.0f);
  return w;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_gguf_rope_metadata(bytes);
  } catch (const ConfigError& e) {
    return std::string(e.what());
  }
  return "no error";
}

std::string path_of(const std::string& bytes) {
  try {
    parse_gguf_rope_metadata(bytes);
  } catch (const ConfigError& e) {
    return e.path();
  }
  return "no error";
}

TEST(GgufReader, ReadsVersions2And3) {
  for (std::uint32_t v : {2u, 3u}) {
    const auto m = parse_gguf_rope_metadata(minimal(v).bytes());
    EXPECT_EQ(m.version, v);
    EXPECT_EQ(m.architecture, "llama");
    EXPECT_EQ(m.name, "tiny");
    EXPECT_EQ(m.context_length, 4096);
    EXPECT_EQ(m.head_count, 8);
    EXPECT_EQ(m.freq_base, 500000.0);
    EXPECT_FALSE(m.rope_freqs);
  }
}

TEST(GgufReader, SkipsTokenizerArraysAndWeightsReadsRopeTensors) {
  GgufWriter w = minimal();
  w.string_array("tokenizer.ggml.tokens", 20000, 7);
  w.u32("llama.rope.dimension_count", 8);
  w.tensor_raw("token_embd.weight", {16, 4}, 1, std::string(128, '\x01'));  // f16 weights
  w.tensor("rope_freqs.weight", {1.0f, 2.0f, 4.0f, 8.0f});
  const auto m = parse_gguf_rope_metadata(w.bytes());
  ASSERT_TRUE(m.rope_freqs);
  EXPECT_EQ(*m.rope_freqs, (std::vector<float>{1, 2, 4, 8}));
  EXPECT_EQ(m.dimension_count, 8);
  EXPECT_EQ(m.tensor_count, 2u);
}

TEST(GgufReader, AnyAlignment) {
  GgufWriter w = minimal();
  w.u32("general.alignment", 64);
  w.tensor_raw("a.weight", {3}, 0, std::string(12, '\0'));
  w.tensor("rope_freqs.weight", {1.0f, 3.0f});
  const auto m = parse_gguf_rope_metadata(w.bytes(64));
  EXPECT_EQ(m.alignment, 64u);
  EXPECT_EQ(*m.rope_freqs, (std::vector<float>{1, 3}));
  GgufWriter bad = minimal();
  bad.u32("general.alignment", 48);
  EXPECT_EQ(path_of(bad.bytes()), "general.alignment");
}

TEST(GgufReader, EveryTruncationIsAConfigErrorWithAnOffset) {
  GgufWriter w = minimal();
  w.string_array("tokenizer.ggml.tokens", 3, 5);
  w.tensor("rope_freqs.weight", {1.0f, 2.0f});
  const std::string full = w.bytes();
  int truncated = 0;
  for (std::size_t n = 0; n + 1 < full.size(); ++n) {
    const std::string e = error_of(full.substr(0, n));
    truncated += e.find("truncated") != std::string::npos;
    if (e == "no error") continue;  // cut inside the final padding / unread weights: still valid
    EXPECT_TRUE(e.find("byte offset") != std::string::npos ||
                e.find("rope_freqs.weight") != std::string::npos)
        << n << ": " << e;
  }
  EXPECT_GT(truncated, 100);
}

TEST(GgufReader, RefusesOtherFilesVersionsAndBigEndian) {
  EXPECT_NE(error_of("{\"model_type\": \"llama\"}").find("GGUF magic"), std::string::npos);
  std::string v1 = minimal().bytes();
  v1[4] = 1;
  EXPECT_NE(error_of(v1).find("version 2 or 3, got 1"), std::string::npos);
  std::string be = minimal().bytes();
  be[4] = 0, be[7] = 3;
  EXPECT_NE(error_of(be).find("big-endian"), std::string::npos);
  EXPECT_NE(error_of(be).find("byte offset 4"), std::string::npos);
}

TEST(GgufReader, AbsurdCountsAreRefusedBeforeAllocating) {
  std::string b = minimal().bytes();
  const std::uint64_t huge = std::uint64_t{1} << 60;
  std::memcpy(b.data() + 16, &huge, 8);  // key/value count
  EXPECT_NE(error_of(b).find("byte offset 16"), std::string::npos);
  b = minimal().bytes();
  std::memcpy(b.data() + 8, &huge, 8);  // tensor count
  EXPECT_NE(error_of(b).find("tensor count"), std::string::npos);

  std::string arr;  // an array claiming 2^60 u32 elements
  GgufWriter::put_string(arr, "tokenizer.ggml.scores");
  GgufWriter::put(arr, std::uint32_t{9});
  GgufWriter::put(arr, std::uint32_t{4});
  GgufWriter::put(arr, huge);
  EXPECT_NE(error_of(minimal().raw_kv(arr).bytes()).find("array length"), std::string::npos);

  std::string key;  // a key claiming 2^40 bytes
  GgufWriter::put(key, std::uint64_t{1} << 40);
  EXPECT_NE(error_of(minimal().raw_kv(key).bytes()).find("a key of at most"), std::string::npos);

  GgufWriter t = minimal();  // a RoPE tensor claiming 2^40 elements
  t.tensor_raw("rope_freqs.weight", {std::uint64_t{1} << 40}, 0, "");
  EXPECT_EQ(path_of(t.bytes()), "rope_freqs.weight");
  GgufWriter past = minimal();  // data past the end
  past.tensor_raw("rope_freqs.weight", {64}, 0, std::string(8, '\0'));
  EXPECT_NE(error_of(past.bytes()).find("truncated"), std::string::npos);
}

TEST(GgufReader, WrongTypesNameTheKey) {
  GgufWriter w = minimal();
  w.str("llama.rope.scaling.factor", "8");
  EXPECT_EQ(path_of(w.bytes()), "llama.rope.scaling.factor");
  EXPECT_NE(error_of(w.bytes()).find("expected an f32, got string"), std::string::npos);
  GgufWriter i = minimal();
  i.f32("llama.rope.dimension_count", 64.0f);
  EXPECT_NE(error_of(i.bytes()).find("llama.rope.dimension_count: expected an integer, got f32"),
            std::string::npos);
  GgufWriter neg = minimal();
  neg.i32("llama.rope.scaling.original_context_length", -5);
  EXPECT_EQ(path_of(neg.bytes()), "llama.rope.scaling.original_context_length");
  GgufWriter f16 = minimal();
  f16.tensor_raw("rope_freqs.weight", {4}, 1, std::string(8, '\0'));
  EXPECT_NE(error_of(f16.bytes()).find("f32"), std::string::npos);
  GgufWriter zero = minimal();
  zero.tensor("rope_factors_long.weight", {1.0f, 0.0f});
  EXPECT_EQ(path_of(zero.bytes()), "rope_factors_long.weight[1]");
  GgufWriter dup = minimal();
  dup.f32("llama.rope.freq_base", 10000.0f);
  EXPECT_EQ(path_of(dup.bytes()), "llama.rope.freq_base");
  std::string bad_type;
  GgufWriter::put_string(bad_type, "x");
  GgufWriter::put(bad_type, std::uint32_t{13});
  EXPECT_NE(error_of(minimal().raw_kv(bad_type).bytes()).find("value type"), std::string::npos);
}

TEST(GgufReader, SplitShardsWithoutMetadataAreRefused) {
  GgufWriter shard;
  shard.u32("split.no", 1).u32("split.count", 3);
  EXPECT_EQ(path_of(shard.bytes()), "split.no");
  EXPECT_NE(error_of(shard.bytes()).find("shard 1 of 3"), std::string::npos);
  GgufWriter none;
  none.u32("general.alignment", 32);
  EXPECT_EQ(path_of(none.bytes()), "general.architecture");
  GgufWriter first = minimal();
  first.u32("split.no", 0).u32("split.count", 3);
  const ModelRope m = gguf_model_rope(parse_gguf_rope_metadata(first.bytes()));
  ASSERT_FALSE(m.warnings.empty());
  EXPECT_EQ(m.warnings.front().path, "split.count");
}

TEST(GgufReader, ReadsFilesAndDetectsTheMagic) {
  const auto path = std::filesystem::path(ROPEKIT_CLI_TEST_SCRATCH) / "reader_test.gguf";
  std::filesystem::create_directories(path.parent_path());
  minimal().write(path);
  EXPECT_TRUE(is_gguf_file(path));
  EXPECT_EQ(read_gguf_rope_metadata(path).architecture, "llama");
  EXPECT_FALSE(is_gguf_file(path.parent_path() / "missing.gguf"));
  EXPECT_THROW(read_gguf_rope_metadata(path.parent_path() / "missing.gguf"), IoError);
}

}  // namespace
}  // namespace ropekit
