// ropekit/position_rows.h — the position rows that Positions::rows takes, built as the
// reference model code builds them, so a caller does not have to reconstruct them.
//
// Rows are stored row after row: element (r, t) at rows[r * tokens + t].
#pragma once

#include <cstdint>
#include <vector>

#include "ropekit/config.h"

namespace ropekit {

// The [2, patches] rows (row 0: patch row, row 1: patch column) of a grid_h × grid_w patch
// grid, in the order the vision encoder holds the patches:
//   kPixtral  row-major (transformers `position_ids_in_meshgrid`).
//   kQwenVl   Qwen-VL's `rot_pos_emb`: the row-major grid cut into merge_size × merge_size
//             blocks, block after block (blocks row-major), each block row-major. grid_h and
//             grid_w must be multiples of merge_size.
//   kLlama4   row-major with positions row + 1 and column + 1, then the class token with
//             positions 0, 0 (no rotation) last (`Llama4VisionRotaryEmbedding`).
// Throws ArgumentError for grids or merge sizes < 1 and for grids the merge size does not divide.
std::vector<std::int64_t> vision_patch_rows(Vision2dKind kind, std::int64_t grid_h,
                                            std::int64_t grid_w, int merge_size = 1);

// M-RoPE rows of a text + image sequence, Qwen2-VL / Qwen2.5-VL / Qwen3-VL `get_rope_index` for
// one image: `text_before` text tokens (up to and including <|vision_start|>), the image's
// grid_t × (grid_h / m) × (grid_w / m) tokens (grid in patches, as image_grid_thw; m =
// spatial_merge_size), then `text_after` text tokens:
//
//     text before   T = H = W = 0 … text_before − 1
//     image token   (t, y, x) of the merged grid: T = s + t, H = s + y, W = s + x,
//                   s = text_before (images: t stays the frame index, Qwen2.5-VL's time scaling
//                   applies to videos only)
//     text after    T = H = W = n, n + 1, …   n = 1 + the largest image position
//
// `delta` = next_position − tokens is what the models add to the 1-D positions of the tokens
// decoded afterwards (`rope_deltas`).
struct MRopeRows {
  std::vector<std::int64_t> rows;  // [3, tokens]: T, H, W
  std::int64_t tokens = 0;
  std::int64_t next_position = 0;  // position of the next token
  std::int64_t delta = 0;
};
MRopeRows qwen_vl_rope_index(std::int64_t text_before, std::int64_t grid_t, std::int64_t grid_h,
                             std::int64_t grid_w, int spatial_merge_size, std::int64_t text_after);

}  // namespace ropekit
