// Internal to the ropekit command: the same rows as an aligned table (people) or CSV (sheets).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ropekit::cli {

class TextTable {
 public:
  enum class Align { kLeft, kRight };

  // Columns in order; numbers read best right-aligned, words left-aligned.
  void add_column(std::string header, Align align = Align::kRight);
  void add_row(std::vector<std::string> cells);  // one cell per column

  // Columns padded to their widest cell, separated by two spaces; no trailing blanks.
  std::string render(const std::string& indent = "") const;
  // RFC 4180: a header line, then one line per row; cells holding ',', '"' or a newline quoted.
  std::string render_csv() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

// Right-pads `key` to `width` for "key  value" blocks (the header of `show`).
std::string key_value(const std::string& key, const std::string& value, std::size_t width = 18);

}  // namespace ropekit::cli
