// Reading a model's RoPE from a large GGUF file: how long, and how much memory. Not a test
// (timing depends on the machine): a program that writes a sparse file of --size GiB (default
// 4) with a tokenizer array of --tokens strings (default 200,000), a few weight tensors and the
// rope_freqs tensor at the end, then times load_gguf_rope on it and reports the peak resident
// memory it added. The target (docs/gguf.md): under 100 ms and 16 MiB.
//
//   build/bench/bench_gguf_read [--size GiB] [--tokens N] [--dir DIR]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ropekit/gguf.h"

namespace {

template <typename T>
void put(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s.append(b, sizeof(T));
}
void put_string(std::string& s, const std::string& v) {
  put(s, static_cast<std::uint64_t>(v.size()));
  s += v;
}

// Linux: the peak resident set (VmHWM, KiB), reset by writing 5 to /proc/self/clear_refs.
long status_kib(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  return -1;
}
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace

int main(int argc, char** argv) {
  double gib = 4;
  std::uint64_t tokens = 200000;
  std::filesystem::path dir = std::filesystem::temp_directory_path();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--size")
      gib = std::atof(argv[i + 1]);
    else if (a == "--tokens")
      tokens = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--dir")
      dir = argv[i + 1];
  }
  const std::filesystem::path path = dir / "ropekit_bench_sparse.gguf";
  const auto data_bytes = static_cast<std::uint64_t>(gib * 1024 * 1024 * 1024);
  std::string h = "GGUF";
  put(h, std::uint32_t{3});
  const int n_weights = 4;
  put(h, static_cast<std::uint64_t>(n_weights + 1));  // tensors
  put(h, std::uint64_t{7});                           // key/values
  auto kv_str = [&](const char* k, const char* v) {
    put_string(h, k);
    put(h, std::uint32_t{8});
    put_string(h, v);
  };
  auto kv_u32 = [&](const char* k, std::uint32_t v) {
    put_string(h, k);
    put(h, std::uint32_t{4});
    put(h, v);
  };
  kv_str("general.architecture", "llama");
  kv_u32("llama.context_length", 131072);
  kv_u32("llama.embedding_length", 4096);
  kv_u32("llama.attention.head_count", 32);
  kv_u32("llama.rope.dimension_count", 128);
  put_string(h, "llama.rope.freq_base");
  put(h, std::uint32_t{6});
  put(h, 500000.0f);
  put_string(h, "tokenizer.ggml.tokens");
  put(h, std::uint32_t{9});
  put(h, std::uint32_t{8});
  put(h, tokens);
  for (std::uint64_t t = 0; t < tokens; ++t) put_string(h, "tok" + std::to_string(t));
  const std::uint64_t per_weight = (data_bytes / n_weights) & ~std::uint64_t{31};
  for (int w = 0; w < n_weights; ++w) {
    put_string(h, "blk." + std::to_string(w) + ".attn_q.weight");
    put(h, std::uint32_t{1});
    put(h, per_weight / 2);
    put(h, std::uint32_t{1});  // f16
    put(h, per_weight * static_cast<std::uint64_t>(w));
  }
  put_string(h, "rope_freqs.weight");
  put(h, std::uint32_t{1});
  put(h, std::uint64_t{64});
  put(h, std::uint32_t{0});
  put(h, per_weight * n_weights);
  while (h.size() % 32) h += '\0';
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(h.data(), static_cast<std::streamsize>(h.size()));
    f.seekp(static_cast<std::streamoff>(h.size() + per_weight * n_weights));
    std::vector<float> freqs(64, 1.0f);
    f.write(reinterpret_cast<const char*>(freqs.data()), 64 * 4);  // the rest stays a hole
  }
  const std::size_t header_bytes = h.size();
  std::string().swap(h);
  reset_peak();
  const long before = status_kib("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  const ropekit::ModelRope m = ropekit::load_gguf_rope(path);
  const auto t1 = std::chrono::steady_clock::now();
  const long after = status_kib("VmHWM");
  std::printf("file %.2f GiB (%zu header bytes, %llu tokenizer strings): %s, %zu layer(s)\n",
              static_cast<double>(std::filesystem::file_size(path)) / (1 << 30), header_bytes,
              static_cast<unsigned long long>(tokens), m.model_type.c_str(), m.layers.size());
  std::printf(
      "load_gguf_rope: %.2f ms, peak resident memory %ld KiB above the resident set before it\n",
      std::chrono::duration<double, std::milli>(t1 - t0).count(), after - before);
  std::filesystem::remove(path);
  return 0;
}
