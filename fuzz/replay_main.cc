// A main() for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput on every file
// named on the command line (directories: every regular file below them, in sorted order).
// A finding aborts the process, so a non-zero exit names the failing input on stderr first.
//
//   fuzz_config_replay fuzz/regressions/config fuzz/corpus/config
//   fuzz_apply_differential_replay crash-0123abcd...
//
// Built with any compiler (GCC included) and registered as ctest tests (fuzz/replay_tests.cmake),
// so crash files kept in fuzz/regressions/ are replayed by every test run.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file() && e.path().filename().string().front() != '.')
          files.push_back(e.path());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {  // e.g. an empty regressions folder (git keeps no empty folders)
      std::fprintf(stderr, "replay: skipping %s (not found)\n", argv[i]);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...  (no inputs found)\n",
                 argc > 0 ? argv[0] : "replay");
    return 2;
  }
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.string().c_str(), bytes.size());
    std::fflush(stderr);
    // A copy in an exactly sized heap block, as libFuzzer passes it (ASan sees overreads).
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  }
  std::printf("replayed %zu inputs: no finding\n", files.size());
  return 0;
}
