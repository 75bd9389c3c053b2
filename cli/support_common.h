// Internal to the ropekit command: small shared helpers.
#pragma once

#include <string>
#include <string_view>

#include "ropekit/apply.h"
#include "ropekit/config.h"
#include "ropekit/frequencies.h"

namespace ropekit::cli {

std::string read_text_file(const std::string& path);  // IoError when unreadable
std::string_view layout_name(PairLayout l);       // "half", "interleaved", "interleaved_to_half"
SeqLenPolicy parse_policy(const std::string& s);  // "hf"/"transformers" or "mlx-lm"/"mlx"
AngleMode parse_angles(const std::string& s);     // "hf" or "exact"
DType parse_dtype(const std::string& s);          // "f32", "f16", "bf16"
FrequencyArithmetic parse_arithmetic(const std::string& s);  // "exact" or "transformers"

}  // namespace ropekit::cli
