// Position rows as the reference model code builds them: vision patch grids (Pixtral's
// `position_ids_in_meshgrid`, Qwen-VL's `rot_pos_emb`, Llama 4's `Llama4VisionRotaryEmbedding`)
// and Qwen-VL's `get_rope_index` for one image in a text sequence. See ropekit/position_rows.h.
#include "ropekit/position_rows.h"

#include <algorithm>
#include <string>

#include "ropekit/error.h"

namespace ropekit {
namespace {

void require(bool ok, const std::string& what, std::int64_t got) {
  if (!ok) throw ArgumentError(what + ", got " + std::to_string(got));
}

}  // namespace

std::vector<std::int64_t> vision_patch_rows(Vision2dKind kind, std::int64_t grid_h,
                                            std::int64_t grid_w, int merge_size) {
  require(grid_h >= 1 && grid_h <= (1 << 20), "grid_h: expected 1 to 2^20 patches", grid_h);
  require(grid_w >= 1 && grid_w <= (1 << 20), "grid_w: expected 1 to 2^20 patches", grid_w);
  require(merge_size >= 1, "merge_size: expected >= 1", merge_size);
  const std::int64_t m = kind == Vision2dKind::kQwenVl ? merge_size : 1;
  require(grid_h % m == 0, "grid_h: expected a multiple of merge_size " + std::to_string(m),
          grid_h);
  require(grid_w % m == 0, "grid_w: expected a multiple of merge_size " + std::to_string(m),
          grid_w);
  const std::int64_t patches = grid_h * grid_w;
  const std::int64_t n = patches + (kind == Vision2dKind::kLlama4 ? 1 : 0);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(2 * n), 0);
  std::int64_t t = 0;
  // Blocks of m × m patches, block-row-major, each block row-major (m = 1: plain row-major).
  for (std::int64_t by = 0; by < grid_h / m; ++by)
    for (std::int64_t bx = 0; bx < grid_w / m; ++bx)
      for (std::int64_t y = 0; y < m; ++y)
        for (std::int64_t x = 0; x < m; ++x, ++t) {
          const std::int64_t off = kind == Vision2dKind::kLlama4 ? 1 : 0;
          rows[static_cast<std::size_t>(t)] = by * m + y + off;
          rows[static_cast<std::size_t>(n + t)] = bx * m + x + off;
        }
  return rows;  // Llama 4's class token: the last column, already 0, 0
}

MRopeRows qwen_vl_rope_index(std::int64_t text_before, std::int64_t grid_t, std::int64_t grid_h,
                             std::int64_t grid_w, int spatial_merge_size, std::int64_t text_after) {
  constexpr std::int64_t kMax = 1 << 30;
  require(text_before >= 0 && text_before <= kMax, "text_before: expected 0 to 2^30", text_before);
  require(text_after >= 0 && text_after <= kMax, "text_after: expected 0 to 2^30", text_after);
  require(spatial_merge_size >= 1, "spatial_merge_size: expected >= 1", spatial_merge_size);
  const std::int64_t m = spatial_merge_size;
  require(grid_t >= 1 && grid_t <= (1 << 16), "grid_t: expected 1 to 2^16", grid_t);
  require(grid_h >= m && grid_h % m == 0 && grid_h <= (1 << 20),
          "grid_h: expected a multiple of spatial_merge_size " + std::to_string(m), grid_h);
  require(grid_w >= m && grid_w % m == 0 && grid_w <= (1 << 20),
          "grid_w: expected a multiple of spatial_merge_size " + std::to_string(m), grid_w);
  const std::int64_t lh = grid_h / m, lw = grid_w / m;
  const std::int64_t image = grid_t * lh * lw;
  require(image <= kMax, "image tokens: expected at most 2^30", image);
  MRopeRows r;
  r.tokens = text_before + image + text_after;
  r.rows.assign(static_cast<std::size_t>(3 * r.tokens), 0);
  auto set = [&](std::int64_t tok, std::int64_t t, std::int64_t h, std::int64_t w) {
    r.rows[static_cast<std::size_t>(tok)] = t;
    r.rows[static_cast<std::size_t>(r.tokens + tok)] = h;
    r.rows[static_cast<std::size_t>(2 * r.tokens + tok)] = w;
  };
  std::int64_t tok = 0;
  for (; tok < text_before; ++tok) set(tok, tok, tok, tok);
  const std::int64_t s = text_before;
  std::int64_t largest = s - 1;
  for (std::int64_t t = 0; t < grid_t; ++t)
    for (std::int64_t y = 0; y < lh; ++y)
      for (std::int64_t x = 0; x < lw; ++x, ++tok) {
        set(tok, s + t, s + y, s + x);
        largest = std::max({largest, s + t, s + y, s + x});
      }
  const std::int64_t n = largest + 1;
  for (std::int64_t i = 0; i < text_after; ++i, ++tok) set(tok, n + i, n + i, n + i);
  r.next_position = n + text_after;
  r.delta = r.next_position - r.tokens;
  return r;
}

}  // namespace ropekit
