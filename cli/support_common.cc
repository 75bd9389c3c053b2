#include "support_common.h"

#include "file_io.h"
#include "ropekit/error.h"

namespace ropekit::cli {

std::string read_text_file(const std::string& path) {
  return read_text_file_bounded(path, kMaxTextFileBytes, "file");
}

std::string_view layout_name(PairLayout l) {
  switch (l) {
    case PairLayout::kHalf:
      return "half";
    case PairLayout::kInterleaved:
      return "interleaved";
    case PairLayout::kInterleavedToHalf:
      return "interleaved_to_half";
  }
  return "?";
}

SeqLenPolicy parse_policy(const std::string& s) {
  if (s == "mlx-lm" || s == "mlx") return SeqLenPolicy::kMlxLm;
  if (s == "hf" || s == "transformers" || s.empty()) return SeqLenPolicy::kTransformers;
  throw ArgumentError("--policy: expected hf or mlx-lm, got " + s);
}

AngleMode parse_angles(const std::string& s) {
  if (s == "hf") return AngleMode::kHf;
  if (s == "exact") return AngleMode::kExact;
  if (s == "ggml" || s == "llama.cpp") return AngleMode::kGgml;
  throw ArgumentError("--angles: expected hf, exact or ggml, got " + s);
}

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::kF32;
  if (s == "f16" || s == "float16") return DType::kF16;
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  throw ArgumentError("--dtype: expected f32, f16 or bf16, got " + s);
}

FrequencyArithmetic parse_arithmetic(const std::string& s) {
  if (s == "exact") return FrequencyArithmetic::kExact;
  if (s == "transformers" || s == "hf") return FrequencyArithmetic::kTransformers;
  if (s == "ggml" || s == "llama.cpp") return FrequencyArithmetic::kGgml;
  throw ArgumentError("--freq-arithmetic: expected exact, transformers or ggml, got " + s);
}

}  // namespace ropekit::cli
