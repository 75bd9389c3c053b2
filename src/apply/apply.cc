// apply_rope: the API boundary. Everything is validated here (shapes, strides, pointers,
// overlap, positions, dtypes, cache), then an ApplyJob is handed to a backend that trusts it.
// Messages: "[ropekit.apply] <what>: expected <expectation>, got <value>".
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "apply/apply_memo.h"
#include "apply/ggml_angles.h"
#include "kernel/job.h"
#include "ropekit/apply.h"
#include "ropekit/error.h"
#include "ropekit/thread_pool.h"

namespace ropekit {
namespace {

using detail::ApplyJob;
using detail::JobTensor;

[[noreturn]] void bad(const std::string& what, const std::string& expected,
                      const std::string& got) {
  throw ArgumentError("[ropekit.apply] " + what + ": expected " + expected + ", got " + got);
}

std::string str(std::int64_t v) { return std::to_string(v); }

// Byte extent of a view: [lo, hi) relative to data, over all its elements.
struct Extent {
  std::intptr_t lo = 0, hi = 0;
  bool empty = true;
  // dtype size − 1 (a relative extent from checked_extent: the data's alignment test, so that
  // a prepared call does not read the view for it)
  std::int32_t align_mask = 0;
};

Extent extent_of(const void* data, DType dt, std::int64_t nb, std::int64_t nt, std::int64_t nh,
                 std::int64_t nd, std::int64_t sb, std::int64_t st, std::int64_t sh,
                 std::int64_t sd) {
  Extent e;
  if (nb == 0 || nt == 0 || nh == 0 || nd == 0) return e;
  const std::int64_t es = dtype_size(dt);
  std::int64_t lo = 0, hi = 0;
  auto add = [&lo, &hi](std::int64_t n, std::int64_t s) {
    const std::int64_t span = (n - 1) * s;
    lo += span < 0 ? span : 0;
    hi += span < 0 ? 0 : span;
  };
  add(nb, sb);
  add(nt, st);
  add(nh, sh);
  add(nd, sd);
  e.lo = reinterpret_cast<std::intptr_t>(data) + static_cast<std::intptr_t>(lo * es);
  e.hi = reinterpret_cast<std::intptr_t>(data) + static_cast<std::intptr_t>((hi + 1) * es);
  e.empty = false;
  return e;
}

struct ViewInfo {
  const void* data;
  DType dtype;
  std::int64_t nt, nh, nd, st, sh, sd;
  const char* name;             // only for messages
  std::int64_t nb = 1, sb = 0;  // batch (sequences) and its stride
  Extent ext() const { return extent_of(data, dtype, nb, nt, nh, nd, sb, st, sh, sd); }
  // Sequences laid end to end (or a single one): the batch is just more tokens.
  bool flat() const { return nb == 1 || sb == nt * st; }
  ViewInfo flattened() const {
    ViewInfo f = *this;
    if (flat()) {
      f.nt = nb * nt;
      f.nb = 1;
      f.sb = 0;
    }
    return f;
  }
};

// From either view type field by field (no ConstTensorView temporary on the per-call path).
template <class View>
ViewInfo info(const View& v, const char* name) {
  ViewInfo i{v.data,         v.dtype,       v.tokens,     v.heads, v.head_dim,
             v.stride_token, v.stride_head, v.stride_dim, name};
  i.nb = v.batch;
  i.sb = v.stride_batch;
  return i;
}

constexpr std::int64_t kMaxExtent = std::int64_t{1} << 46;  // elements; guards index overflow

// A packed view: [batch, tokens, heads, dim] row-major without gaps (the usual case); such a
// view never writes an element twice. Sets `seq`, the elements of one sequence (products that
// overflow for hostile sizes are refused, not wrapped).
bool packed(const ViewInfo& v, std::int64_t& seq) {
  std::int64_t row = 0;
  return v.sd == 1 && v.sh == v.nd && !__builtin_mul_overflow(v.nh, v.nd, &row) && v.st == row &&
         !__builtin_mul_overflow(v.nt, row, &seq) && (v.nb == 1 || v.sb == seq);
}

// A packed view of at most 2^46 elements passes every stride test of check_view_full below:
// each |stride × (size − 1)| is below the element count. Sets `elements`.
bool packed_and_small(const ViewInfo& v, std::int64_t& elements) {
  std::int64_t seq = 0;
  return packed(v, seq) && v.sb >= -kMaxExtent && v.sb <= kMaxExtent &&
         !__builtin_mul_overflow(v.nb, seq, &elements) && elements <= kMaxExtent;
}

// Every check of one view's geometry (its data pointer is check_data's), with the messages. Out
// of line: the per-call path only pays for the inlined fast test above.
[[gnu::noinline]] void check_view_full(const ViewInfo& v, bool is_output) {
  if (v.nb < 1) bad(std::string(v.name) + ".batch", "a count >= 1", str(v.nb));
  if (v.nt < 0 || v.nh < 0 || v.nd < 0)
    bad(std::string(v.name) + " shape", "non-negative sizes",
        "[" + str(v.nt) + ", " + str(v.nh) + ", " + str(v.nd) + "]");
  if (v.dtype != DType::kF32 && v.dtype != DType::kF16 && v.dtype != DType::kBF16)
    bad(std::string(v.name) + ".dtype", "f32, f16 or bf16",
        "the value " + str(static_cast<std::int64_t>(v.dtype)));
  if (v.nt == 0 || v.nh == 0 || v.nd == 0) return;
  if (std::int64_t elements = 0; packed_and_small(v, elements)) return;
  for (const auto& [n, s, axis] :
       {std::tuple{v.nb, v.sb, "stride_batch"}, std::tuple{v.nt, v.st, "stride_token"},
        std::tuple{v.nh, v.sh, "stride_head"}, std::tuple{v.nd, v.sd, "stride_dim"}}) {
    if (std::abs(s) > kMaxExtent || n > kMaxExtent || std::abs(s) * (n - 1) > kMaxExtent)
      bad(std::string(v.name) + "." + axis, "|stride × (size − 1)| below 2^46 elements", str(s));
  }
  if (v.nb * v.nt > kMaxExtent)
    bad(std::string(v.name) + ".batch", "batch × tokens below 2^46", str(v.nb));
  if (std::int64_t seq = 0; is_output && !packed(v, seq)) {
    // An output must not write one element twice: sorted by |stride|, each axis must step
    // past the whole span of the smaller ones (a sufficient test for non-overlap).
    std::array<std::pair<std::int64_t, std::int64_t>, 4> ax = {
        std::pair{std::abs(v.sd), v.nd}, std::pair{std::abs(v.sh), v.nh},
        std::pair{std::abs(v.st), v.nt}, std::pair{std::abs(v.sb), v.nb}};
    std::sort(ax.begin(), ax.end());
    std::int64_t span = 1;
    for (const auto& [s, n] : ax) {
      if (n == 1) continue;
      if (s < span)
        bad(std::string(v.name) + " strides",
            "strides that give every element its own address (no self-overlap)",
            (v.nb > 1 ? "[" + str(v.sb) + ", " : "[") + str(v.st) + ", " + str(v.sh) + ", " +
                str(v.sd) + "]");
      span = s * (n - 1) + span;
    }
  }
}

// One view's byte extent relative to its data pointer, its geometry checked. The usual view is
// decided inline, without building anything: a valid dtype and either empty, or packed and small
// (then check_view_full would pass, and the extent is one span). Any other view goes through
// check_view_full(), which names what is wrong.
inline Extent checked_span(const ViewInfo& v, bool is_output) {
  if (v.nb >= 1 && v.nt >= 0 && v.nh >= 0 && v.nd >= 0 &&
      (v.dtype == DType::kF32 || v.dtype == DType::kF16 || v.dtype == DType::kBF16)) {
    if (v.nt == 0 || v.nh == 0 || v.nd == 0) return Extent{};
    if (std::int64_t elements = 0; packed_and_small(v, elements))
      return Extent{0, static_cast<std::intptr_t>(elements * dtype_size(v.dtype)), false};
  }
  check_view_full(v, is_output);
  ViewInfo at_zero = v;
  at_zero.data = nullptr;
  return at_zero.ext();  // valid now: no product in it can overflow
}

// checked_span() with the alignment mask that checked_data() tests the data pointer against.
inline Extent checked_extent(const ViewInfo& v, bool is_output) {
  Extent e = checked_span(v, is_output);
  e.align_mask = static_cast<std::int32_t>(dtype_size(v.dtype) - 1);  // the dtype is valid here
  return e;
}

[[noreturn, gnu::noinline]] void bad_data(const ViewInfo& v, const void* data) {
  if (data == nullptr)
    bad(std::string(v.name) + ".data", "a non-null pointer for a non-empty view", "nullptr");
  const auto es = static_cast<std::uintptr_t>(dtype_size(v.dtype));
  bad(std::string(v.name) + ".data",
      std::to_string(es) + "-byte alignment for " + std::string(dtype_name(v.dtype)),
      "an address misaligned by " +
          str(static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(data) % es)));
}

// The data pointer of a view whose geometry passed checked_extent (extent relative to the data):
// non-null and aligned to its element when the view is not empty. Returns the absolute extent.
inline Extent checked_data(const ViewInfo& v, const Extent& relative, const void* data) {
  // A new empty Extent, not a copy of `relative`: GCC copies the struct with a 16-byte load of
  // fields that prepare_call stored 8 bytes at a time, which cannot be forwarded from the stores
  // (measured: +10-15% per one-token apply_rope call).
  if (relative.empty) return Extent{};
  const auto p = reinterpret_cast<std::intptr_t>(data);
  // dtype sizes are powers of two: a mask, not a division, on every call
  if (p == 0 || (p & relative.align_mask) != 0) bad_data(v, data);
  return Extent{relative.lo + p, relative.hi + p, false};
}

// Same dtype and strides (shapes are compared by make_tensor): an output that may be its input.
bool same_geometry(const ViewInfo& a, const ViewInfo& b) {
  return a.dtype == b.dtype && a.st == b.st && a.sh == b.sh && a.sd == b.sd && a.nb == b.nb &&
         (a.nb == 1 || a.sb == b.sb);
}

// True if views a and b, at data pointers a_data and b_data, touch no common byte. Exact for
// disjoint extents; for views interleaved token by token in one buffer (fused qkv: equal
// stride_token) compares the per-token footprints. ea and eb are the views' absolute extents
// (computed once per call).
bool disjoint(const ViewInfo& a_view, const void* a_data, const Extent& ea, const ViewInfo& b_view,
              const void* b_data, const Extent& eb) {
  // separate extents: the usual case, decided before any copy (flattening keeps extents)
  if (ea.empty || eb.empty) return true;
  if (ea.hi <= eb.lo || eb.hi <= ea.lo) return true;
  ViewInfo a = a_view.flattened(), b = b_view.flattened();
  a.data = a_data;
  b.data = b_data;
  const std::int64_t esa = dtype_size(a.dtype), esb = dtype_size(b.dtype);
  // Batches interleaved sequence by sequence in one buffer (fused qkv as [batch, heads, seq,
  // dim]: equal stride_batch): compare the per-sequence footprints, as for tokens below.
  if (a.nb > 1 && a.nb == b.nb && a.sb * esa == b.sb * esb && a.sb > 0) {
    ViewInfo a1 = a, b1 = b;
    a1.nb = b1.nb = 1;
    const Extent sa = a1.ext(), sb = b1.ext();
    const std::int64_t row = a.sb * esa;
    const std::int64_t fa = static_cast<std::int64_t>(sa.hi - sa.lo);
    const std::int64_t fb = static_cast<std::int64_t>(sb.hi - sb.lo);
    if (fa > row || fb > row) return false;
    const std::int64_t delta = static_cast<std::int64_t>(sb.lo - sa.lo);
    const std::int64_t m = ((delta % row) + row) % row;
    return m >= fa && m + fb <= row;
  }
  if (a.nb == 1 && b.nb == 1 && a.st * esa == b.st * esb && a.st > 0 && a.sh >= 0 && a.sd >= 0 &&
      b.sh >= 0 && b.sd >= 0) {
    const std::int64_t row = a.st * esa;  // bytes per token in both
    const std::int64_t fa =
        ((a.nh - 1) * a.sh + (a.nd - 1) * a.sd + 1) * esa;  // footprint per token
    const std::int64_t fb = ((b.nh - 1) * b.sh + (b.nd - 1) * b.sd + 1) * esb;
    if (fa > row || fb > row) return false;
    const std::int64_t delta = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(b.data) -
                                                         reinterpret_cast<std::intptr_t>(a.data));
    const std::int64_t m = ((delta % row) + row) % row;  // b's token start within a's token row
    return m >= fa && m + fb <= row;
  }
  return false;
}

// Checks the positions and sets every position field of the job (those of other kinds to their
// defaults: a remembered job serves calls of every kind, apply_memoized).
void check_positions(const Positions& pos, std::int64_t tokens, std::int64_t seq,
                     const FrequencyPlan& plan, ApplyJob& job, std::int64_t& pmin,
                     std::int64_t& pmax) {
  job.pos_start = 0;
  job.pos_seq = 0;
  job.indptr = nullptr;
  job.seq_offsets = nullptr;
  job.n_seq = 0;
  job.pos_rows = 1;
  job.ids32 = nullptr;
  job.ids64 = nullptr;
  pmin = 0;
  pmax = 0;
  bool any = false;
  auto see = [&](std::int64_t lo, std::int64_t hi) {
    pmin = any ? std::min(pmin, lo) : lo;
    pmax = any ? std::max(pmax, hi) : hi;
    any = true;
  };
  auto in_range = [](std::int64_t p) { return p >= -kMaxAbsPosition && p <= kMaxAbsPosition; };
  job.pos_kind = pos.kind();
  switch (pos.kind()) {
    case Positions::Kind::kOffset: {
      const std::int64_t first = pos.start();
      if (!in_range(first) || (seq > 0 && (first > kMaxAbsPosition - (seq - 1))))
        bad("positions (offset)", "positions within ±(2^31 − 1)",
            "offset " + str(first) + " with " + str(seq) + " tokens");
      job.pos_start = first;
      job.pos_seq = seq < tokens ? seq : 0;  // a batch: every sequence starts at the offset
      if (seq > 0) see(first, first + seq - 1);
      return;
    }
    case Positions::Kind::kPerSequence: {
      const auto indptr = pos.indptr();
      const auto offs = pos.offsets();
      if (indptr.size() != offs.size() + 1)
        bad("positions.indptr",
            "offsets.size() + 1 = " + str(static_cast<std::int64_t>(offs.size() + 1)) + " entries",
            str(static_cast<std::int64_t>(indptr.size())));
      if (indptr.empty() || indptr.front() != 0)
        bad("positions.indptr[0]", "0", indptr.empty() ? "an empty indptr" : str(indptr.front()));
      if (indptr.back() != tokens)
        bad("positions.indptr[last]", "the token count " + str(tokens), str(indptr.back()));
      for (std::size_t s = 0; s + 1 < indptr.size(); ++s) {
        if (indptr[s + 1] < indptr[s])
          bad("positions.indptr[" + std::to_string(s + 1) + "]", "non-decreasing boundaries",
              str(indptr[s + 1]) + " after " + str(indptr[s]));
        const std::int64_t len = indptr[s + 1] - indptr[s];
        if (!in_range(offs[s]) || (len > 0 && offs[s] > kMaxAbsPosition - (len - 1)))
          bad("positions.offsets[" + std::to_string(s) + "]", "positions within ±(2^31 − 1)",
              str(offs[s]) + " with " + str(len) + " tokens");
        if (len > 0) see(offs[s], offs[s] + len - 1);
      }
      job.indptr = indptr.data();
      job.seq_offsets = offs.data();
      job.n_seq = static_cast<std::int64_t>(offs.size());
      return;
    }
    case Positions::Kind::kPerToken:
    case Positions::Kind::kMRope: {
      const bool mrope = pos.kind() == Positions::Kind::kMRope;
      const int rows = pos.n_rows();
      if (mrope && plan.pair_axis.empty())
        bad("positions", "1-D positions (this plan has no mrope_section)",
            "[" + str(rows) + ", tokens] M-RoPE rows");
      const int plan_rows = plan.position_rows > 0 ? plan.position_rows : 3;
      if (mrope && rows != plan_rows)
        bad("positions (rows)", str(plan_rows) + " position rows (the plan's position_rows)",
            str(rows));
      if (mrope && pos.mrope_tokens() != tokens)
        bad("positions (M-RoPE)", "rows of " + str(tokens) + " tokens", str(pos.mrope_tokens()));
      const std::int64_t want = mrope ? rows * tokens : tokens;
      const std::int64_t have =
          static_cast<std::int64_t>(pos.ids32().empty() ? pos.ids64().size() : pos.ids32().size());
      if (have != want)
        bad("positions",
            str(want) + (mrope ? " ids (" + str(rows) + " rows × tokens)" : " ids (one per token)"),
            str(have));
      job.pos_rows = mrope ? rows : 1;
      if (!pos.ids64().empty()) {
        for (std::size_t i = 0; i < pos.ids64().size(); ++i)
          if (!in_range(pos.ids64()[i]))
            bad("positions[" + std::to_string(i) + "]", "a position within ±(2^31 − 1)",
                str(pos.ids64()[i]));
          else
            see(pos.ids64()[i], pos.ids64()[i]);
        job.ids64 = pos.ids64().data();
      } else {
        for (std::size_t i = 0; i < pos.ids32().size(); ++i)
          if (!in_range(pos.ids32()[i]))
            bad("positions[" + std::to_string(i) + "]", "a position within ±(2^31 − 1)",
                str(pos.ids32()[i]));
          else
            see(pos.ids32()[i], pos.ids32()[i]);
        job.ids32 = pos.ids32().data();
      }
      return;
    }
  }
}

// True if some |f[i]| > 4 or is inf/NaN. This runs on every call, decode steps included: one
// branch-free pass that vectorises, on the magnitude bits (they order like the values; inf and
// NaN are above every finite one). 4.0f − |f| in the bits is negative exactly when |f| > 4 (no
// overflow: both are below 2^31), so OR-ing the differences leaves the sign bit set when any is.
inline bool any_inv_freq_above_four(const float* f, std::size_t n) {
  constexpr std::int32_t kFourBits = 0x40800000;  // 4.0f
  std::int32_t over = 0;
#pragma GCC unroll 4  // fewer loop steps around the vectorised body (a decode step runs this)
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t bits;
    std::memcpy(&bits, &f[i], sizeof bits);
    over |= kFourBits - (bits & 0x7FFFFFFF);
  }
  return over < 0;
}

// Every check of the plan, with the messages. Returns a bound on max |inv_freq| for the SIMD
// backend's range test (simd_dispatch.cc): the bound 4 when every |inv_freq| <= 4 and `exact_max`
// is false, else the exact maximum.
[[gnu::noinline]] double check_plan_full(const FrequencyPlan& plan, bool exact_max) {
  if (plan.head_dim <= 0 || plan.head_dim % 2 != 0)
    bad("plan.head_dim", "an even number > 0", str(plan.head_dim));
  if (plan.rotary_dim <= 0 || plan.rotary_dim > plan.head_dim || plan.rotary_dim % 2 != 0)
    bad("plan.rotary_dim", "an even number in [2, head_dim]", str(plan.rotary_dim));
  if (static_cast<std::int64_t>(plan.inv_freq.size()) * 2 != plan.rotary_dim)
    bad("plan.inv_freq", str(plan.rotary_dim / 2) + " entries (rotary_dim / 2)",
        str(static_cast<std::int64_t>(plan.inv_freq.size())));
  double max_abs = 4.0;
  if (any_inv_freq_above_four(plan.inv_freq.data(), plan.inv_freq.size()) || exact_max) {
    max_abs = 0.0;
    for (std::size_t i = 0; i < plan.inv_freq.size(); ++i) {
      if (!std::isfinite(plan.inv_freq[i]))
        bad("plan.inv_freq[" + std::to_string(i) + "]", "a finite value",
            std::to_string(plan.inv_freq[i]));
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(plan.inv_freq[i])));
    }
  }
  if (!(std::isfinite(plan.attention_factor) && plan.attention_factor > 0))
    bad("plan.attention_factor", "a finite number > 0", std::to_string(plan.attention_factor));
  if (!plan.pair_axis.empty() && plan.pair_axis.size() != plan.inv_freq.size())
    bad("plan.pair_axis", str(static_cast<std::int64_t>(plan.inv_freq.size())) + " entries",
        str(static_cast<std::int64_t>(plan.pair_axis.size())));
  if (plan.position_rows < 0 || plan.position_rows > Positions::kMaxRows)
    bad("plan.position_rows", "0 (1-D positions) to " + str(Positions::kMaxRows),
        str(plan.position_rows));
  const int rows = plan.position_rows > 0 ? plan.position_rows : 3;
  for (const auto a : plan.pair_axis)
    if (a >= rows)
      bad("plan.pair_axis",
          rows == 3 ? std::string("entries 0, 1 or 2")
                    : "entries below position_rows = " + str(rows),
          str(a));
  return max_abs;
}

// The usual plan (no M-RoPE rows, every |inv_freq| <= 4, no position scale): the bound 4 from one
// vectorised pass, without building anything; `known_max` >= 0 is max |inv_freq| already known
// (from a CosSinCache that holds these very frequencies), which spares the pass. Anything else
// goes through check_plan_full(), which finds the exact maximum or names what is wrong.
inline double check_plan(const FrequencyPlan& plan, bool exact_max, double known_max) {
  const int hd = plan.head_dim, rd = plan.rotary_dim;
  if (exact_max || hd <= 0 || hd % 2 != 0 || rd <= 0 || rd > hd || rd % 2 != 0 ||
      static_cast<std::int64_t>(plan.inv_freq.size()) * 2 != rd || !plan.pair_axis.empty() ||
      plan.position_rows != 0 ||
      !(std::isfinite(plan.attention_factor) && plan.attention_factor > 0))
    return check_plan_full(plan, exact_max);
  if (known_max >= 0.0 ? !(known_max <= 4.0)
                       : any_inv_freq_above_four(plan.inv_freq.data(), plan.inv_freq.size()))
    return check_plan_full(plan, exact_max);
  return 4.0;
}

// Fills t (default-constructed: an absent tensor) in place, all but its data pointers and
// in_place (execute_call's); the job is not copied around.
void make_tensor(JobTensor& t, const ViewInfo& in, const ViewInfo& out, const FrequencyPlan& plan,
                 std::int64_t batch, std::int64_t seq) {
  if (in.nh == 0 && out.nh == 0) return;
  if (in.nd != plan.head_dim)
    bad(std::string(in.name) + ".head_dim", str(plan.head_dim) + " (the plan's head_dim)",
        str(in.nd));
  if (in.nb != batch) bad(std::string(in.name) + ".batch", str(batch) + " (q's batch)", str(in.nb));
  if (in.nt != seq)
    bad(std::string(in.name) + ".tokens", str(seq) + " (q's token count)", str(in.nt));
  if (out.nb != in.nb || out.nt != in.nt || out.nh != in.nh || out.nd != in.nd) {
    const bool b = in.nb != 1 || out.nb != 1;  // batches are shown only when there are some
    auto shape = [b](const ViewInfo& v) {
      return "[" + (b ? str(v.nb) + ", " : std::string()) + str(v.nt) + ", " + str(v.nh) + ", " +
             str(v.nd) + "]";
    };
    bad(std::string(out.name) + " shape",
        shape(in) + " (as " + std::string(in.name) + (b ? ": batch, tokens, heads, dim)" : ")"),
        shape(out));
  }
  // Sequences laid end to end in both: plain tokens, no per-token division.
  const bool flat = in.flat() && out.flat();
  t.in_type = in.dtype;
  t.in_stride_token = in.st;
  t.in_stride_head = in.sh;
  t.in_stride_dim = in.sd;
  t.out_type = out.dtype;
  t.out_stride_token = out.st;
  t.out_stride_head = out.sh;
  t.out_stride_dim = out.sd;
  t.seq = flat ? 0 : in.nt;
  t.in_stride_batch = flat ? 0 : in.sb;
  t.out_stride_batch = flat ? 0 : out.sb;
  t.heads = in.nh;
  if (batch * seq == 0 || in.nh == 0) t.heads = 0;
}

// The backend of a validated job: the SIMD kernels where they support it, else the reference.
detail::RangeKernel kernel_for(const ApplyJob& job, Backend backend) {
  if (backend != Backend::kReference) {
    if (detail::RangeKernel simd = detail::simd_kernel_for(job)) return simd;
    if (backend == Backend::kSimd)
      throw ArgumentError(
          "[ropekit.apply] backend: the SIMD kernels do not support this job "
          "(see ropekit/targets.h); use Backend::kAuto or kReference");
  }
  return &detail::reference_range;
}

// ---- the steps of a call, shared by apply_rope (all at once, on locals) and PreparedRope (the
// pointer-free ones once, in a CallShape). apply_rope does not go through a CallShape: holding
// the extents and the job in one struct between the two halves measured 10-15% slower per
// one-token call, with about the same instruction count.

// Checks the options that are not about the cache; returns the job's stream_from_bytes.
[[gnu::always_inline]] inline std::int64_t checked_options(const ApplyOptions& o) {
  if (!(std::isfinite(o.position_scale) && o.position_scale > 0))
    bad("options.position_scale", "a finite number > 0", std::to_string(o.position_scale));
  if (o.max_threads < 0)
    bad("options.max_threads", "0 (all) or a positive count", str(o.max_threads));
  switch (o.output_stores) {
    case OutputStores::kAuto:
      return kAutoNonTemporalFromBytes;
    case OutputStores::kRegular:
      return INT64_MAX;
    case OutputStores::kNonTemporal:
      return 0;
  }
  bad("options.output_stores", "OutputStores::kAuto, kRegular or kNonTemporal",
      str(static_cast<int>(o.output_stores)));
}

// The plan, checked with the help of the options' cache.
struct CheckedPlan {
  const CosSinCache* own_cache;  // options.cache when it is ours (not a wrapped table), not ggml
  bool own_cache_matches;        // built for this plan: check_plan used its maximum
  double max_abs_inv_freq;
};

// A cache of our own built for this plan holds (bit for bit, or equal) the same frequencies,
// validated when it was built: its maximum spares check_plan a pass over them.
[[gnu::always_inline]] inline CheckedPlan checked_plan(const FrequencyPlan& plan,
                                                       const ApplyOptions& o) {
  const CosSinCache* const own_cache =
      o.cache && o.angles != AngleMode::kGgml && !o.cache->is_external() ? o.cache : nullptr;
  const bool own_cache_matches =
      own_cache && own_cache->matches(plan, o.angles, o.fold_attention_factor);
  const double max_abs_inv_freq = check_plan(
      plan, o.position_scale != 1.0, own_cache_matches ? own_cache->max_abs_inv_freq() : -1);
  return {own_cache, own_cache_matches, max_abs_inv_freq};
}

// The plan's and options' part of the job (all but tensors and positions), with the cache check.
[[gnu::always_inline]] inline void fill_job(ApplyJob& job, const FrequencyPlan& plan,
                                            const ApplyOptions& o, std::int64_t tokens,
                                            const CheckedPlan& cp) {
  job.tokens = tokens;
  job.head_dim = plan.head_dim;
  job.rotary_dim = plan.rotary_dim;
  job.pairs = plan.rotary_dim / 2;
  job.layout = o.layout.value_or(plan.layout);
  job.inverse = o.direction == Direction::kInverse;
  job.inv_freq = plan.inv_freq.data();
  job.max_abs_inv_freq = cp.max_abs_inv_freq;
  job.pair_axis = plan.pair_axis.empty() ? nullptr : plan.pair_axis.data();
  job.amplitude = o.fold_attention_factor ? plan.attention_factor : 1.0;
  job.angles = o.angles;
  job.rounding = o.rounding;
  job.hf_rounds_once = plan.hf_rounds_once;
  job.has_position_scale = o.position_scale != 1.0;
  job.position_scale = static_cast<float>(o.position_scale);
  job.position_scale_exact = o.position_scale;
  job.stream_from_bytes = checked_options(o);
  if (o.cache && o.angles != AngleMode::kGgml) {
    if (!(cp.own_cache ? cp.own_cache_matches
                       : o.cache->matches(plan, o.angles, o.fold_attention_factor)))
      bad("options.cache", "a cache built for this plan, angle mode and attention-factor folding",
          "a cache for other frequencies or settings");
    if (job.has_position_scale)
      bad("options.cache", "no cache when position_scale != 1", "a cache");
    // parity replays float ops; a caller's table is used as it is
    if (o.rounding != Rounding::kTransformers || o.cache->is_external()) job.cache = o.cache;
  }
}

// One input and its output: the same memory (in place) or disjoint.
[[gnu::always_inline]] inline void check_in_out(const ViewInfo& in, const void* in_data,
                                                const Extent& ein, const ViewInfo& out,
                                                const void* out_data, const Extent& eout,
                                                bool may_be_in_place) {
  if (in_data == out_data && ein.lo == eout.lo && !ein.empty) {
    if (!may_be_in_place)
      bad(out.name,
          "the same dtype and strides as " + std::string(in.name) +
              " when writing in place (or memory disjoint from it)",
          "a partial overlap (same address, " + std::string(dtype_name(out.dtype)) + " strides [" +
              str(out.st) + ", " + str(out.sh) + ", " + str(out.sd) + "] vs " +
              std::string(dtype_name(in.dtype)) + " [" + str(in.st) + ", " + str(in.sh) + ", " +
              str(in.sd) + "])");
  } else if (!disjoint(in, in_data, ein, out, out_data, eout)) {
    bad(out.name,
        "memory that is exactly " + std::string(in.name) + " (in place) or disjoint from it",
        "a partial overlap");
  }
}

// An output is exactly its input (same address and geometry: in place) or disjoint from it, and
// with k, no output overlaps another view. Extents are absolute. (Two direct calls: a loop over
// an initializer list of the pairs spilled all twelve arguments to the stack at every call.)
[[gnu::always_inline]] inline void check_overlaps(
    const ViewInfo& qi, const void* qi_data, const Extent& e_qi, const ViewInfo& qo,
    const void* qo_data, const Extent& e_qo, const ViewInfo& ki, const void* ki_data,
    const Extent& e_ki, const ViewInfo& ko, const void* ko_data, const Extent& e_ko,
    bool q_may_be_in_place, bool k_may_be_in_place, bool has_k) {
  check_in_out(qi, qi_data, e_qi, qo, qo_data, e_qo, q_may_be_in_place);
  check_in_out(ki, ki_data, e_ki, ko, ko_data, e_ko, k_may_be_in_place);
  if (has_k) {
    if (!disjoint(qo, qo_data, e_qo, ko, ko_data, e_ko))
      bad("k_out", "memory disjoint from q_out", "an overlap");
    if (!disjoint(qo, qo_data, e_qo, ki, ki_data, e_ki))
      bad("q_out", "memory disjoint from k_in", "an overlap");
    if (!disjoint(ko, ko_data, e_ko, qi, qi_data, e_qi))
      bad("k_out", "memory disjoint from q_in", "an overlap");
  }
}

// A wrapped cos/sin table (CosSinCache::wrap) has no fallback: every position must be in it.
[[gnu::always_inline]] inline void check_table_positions(const CosSinCache& table,
                                                         const Positions& positions,
                                                         std::int64_t tokens, std::int64_t pmin,
                                                         std::int64_t pmax) {
  if (tokens > 0 && (pmin < 0 || pmax >= table.size()))
    bad("positions", "positions in [0, " + str(table.size()) + ") (the rows of the cos/sin table)",
        "positions from " + str(pmin) + " to " + str(pmax));
  if (positions.kind() == Positions::Kind::kMRope)
    bad("positions", "1-D positions with a wrapped cos/sin table", "M-RoPE rows");
}

inline void set_data(JobTensor& t, const void* in, const void* out) {
  t.in = in;
  t.out = const_cast<void*>(out);
  t.in_place = in == out;
}

// How the job's tokens are split over the pool: 0 (on the calling thread, no fork-join: small
// work) or the number of chunks.
[[gnu::always_inline]] inline std::int64_t token_chunks(const ApplyJob& job, DType qi, DType qo,
                                                        DType ki, DType ko, int threads) {
  const std::int64_t bytes_per_token = (job.q.heads * (dtype_size(qi) + dtype_size(qo)) +
                                        job.k.heads * (dtype_size(ki) + dtype_size(ko))) *
                                       job.head_dim;
  constexpr std::int64_t kMinBytesPerChunk = 256 * 1024;
  const std::int64_t total = bytes_per_token * job.tokens;
  if (threads <= 1 || total < 2 * kMinBytesPerChunk || job.tokens < 2) return 0;
  return std::min<std::int64_t>(
      job.tokens, std::max<std::int64_t>(
                      threads, std::min<std::int64_t>(4 * threads, total / kMinBytesPerChunk)));
}

int pool_threads(const ApplyOptions& o, ThreadPool& pool) {
  return o.max_threads > 0 ? std::min(o.max_threads, pool.size()) : pool.size();
}

// Tokens [t0, t1) of the job: through the prepared form of its kernel where its shape has one.
[[gnu::always_inline]] inline void run_tokens(ApplyJob& job, detail::RangeKernel kernel,
                                              const detail::PreparedRange* prepared,
                                              std::int64_t t0, std::int64_t t1) {
  if (prepared && prepared->kernel) {
    prepared->kernel(job, *prepared, t0, t1);
  } else {
    kernel(job, t0, t1);
  }
}

// run_job's calls of ggml's per-call table or of the pool, out of line: their locals (the table,
// the chunk lambda) would otherwise widen the frame of every call, and each line a one-token
// call touches beyond its data costs several times a line of its data (docs/benchmarks.md,
// "Cache lines of a one-token call").
[[gnu::noinline]] void run_job_ggml_or_pooled(ApplyJob& job, const FrequencyPlan& plan,
                                              const ApplyOptions& o, detail::RangeKernel kernel,
                                              const detail::PreparedRange* prepared,
                                              ThreadPool& pool, int threads, std::int64_t chunks,
                                              ApplyResult& result) {
  std::optional<detail::GgmlAngleTable> ggml_table;  // llama.cpp numerics (ggml_angles.h)
  if (o.angles == AngleMode::kGgml) {
    detail::bind_ggml_angles(plan, o, job, ggml_table.emplace());
    result.unapplied_attention_factor = ggml_table->unapplied_magnitude;
    kernel = kernel_for(job, o.backend);
  }
  auto run_range = [&](std::int64_t t0, std::int64_t t1) {
    run_tokens(job, kernel, prepared, t0, t1);
  };
  if (chunks == 0) {
    run_range(0, job.tokens);
    return;
  }
  const std::int64_t tokens = job.tokens;
  pool.parallel_for(
      chunks,
      [&](std::int64_t c) {
        const std::int64_t t0 = tokens * c / chunks, t1 = tokens * (c + 1) / chunks;
        if (t1 > t0) run_range(t0, t1);
      },
      threads);
}

// Runs the job, ggml's per-call table first in that mode (`kernel` nullptr: chosen then), with
// the prepared form of its kernel where its shape has one (`prepared` non-null with a kernel).
[[gnu::always_inline]] inline void run_job(ApplyJob& job, const FrequencyPlan& plan,
                                           const ApplyOptions& o, detail::RangeKernel kernel,
                                           const detail::PreparedRange* prepared, ThreadPool& pool,
                                           int threads, std::int64_t chunks, ApplyResult& result) {
  if (chunks == 0 && o.angles != AngleMode::kGgml) {  // on this thread
    run_tokens(job, kernel, prepared, 0, job.tokens);
    return;
  }
  run_job_ggml_or_pooled(job, plan, o, kernel, prepared, pool, threads, chunks, result);
}

// apply_rope: every step at once.
ApplyResult run(const FrequencyPlan& plan, const ViewInfo& qi, const ViewInfo& qo,
                const ViewInfo& ki, const ViewInfo& ko, const Positions& positions,
                const ApplyOptions& o) {
  const CheckedPlan cp = checked_plan(plan, o);
  const Extent e_qi = checked_data(qi, checked_extent(qi, false), qi.data);
  const Extent e_ki = checked_data(ki, checked_extent(ki, false), ki.data);
  const Extent e_qo = checked_data(qo, checked_extent(qo, true), qo.data);
  const Extent e_ko = checked_data(ko, checked_extent(ko, true), ko.data);
  const bool has_k = ki.nh > 0 || ko.nh > 0;
  check_overlaps(qi, qi.data, e_qi, qo, qo.data, e_qo, ki, ki.data, e_ki, ko, ko.data, e_ko,
                 same_geometry(qi, qo), same_geometry(ki, ko), has_k);
  const std::int64_t batch = qi.nb, seq = qi.nt;
  ApplyJob job;
  fill_job(job, plan, o, batch * seq, cp);
  std::int64_t pmin = 0, pmax = 0;
  check_positions(positions, job.tokens, seq, plan, job, pmin, pmax);
  if (o.cache && o.cache->is_external())
    check_table_positions(*o.cache, positions, job.tokens, pmin, pmax);
  make_tensor(job.q, qi, qo, plan, batch, seq);
  if (has_k) make_tensor(job.k, ki, ko, plan, batch, seq);
  set_data(job.q, qi.data, qo.data);
  set_data(job.k, ki.data, ko.data);
  ApplyResult result;
  result.unapplied_attention_factor = o.fold_attention_factor ? 1.0 : plan.attention_factor;
  // ggml's arguments are options too: refused even when there is nothing to do, as PreparedRope
  // refuses them when it is built.
  if (o.angles == AngleMode::kGgml) detail::check_ggml_angles(plan, o, job);
  if (job.tokens == 0 || (job.q.heads == 0 && job.k.heads == 0)) return result;  // nothing to do
  const detail::RangeKernel kernel =
      o.angles == AngleMode::kGgml ? nullptr : kernel_for(job, o.backend);
  ThreadPool& pool = o.pool ? *o.pool : default_pool();
  const int threads = pool_threads(o, pool);
  run_job(job, plan, o, kernel, nullptr, pool, threads,
          token_chunks(job, qi.dtype, qo.dtype, ki.dtype, ko.dtype, threads), result);
  return result;
}

// PreparedRope: the pointer-free steps, once. It points to the plan, the options and the views
// (whose data it does not read); the views' extents are relative to their data.
// The fields a call reads come first and the large records last, each on its own cache lines: a
// one-token call touches few lines, and each line it adds to a call whose data fill the L1 cache
// costs several times a line of its data (docs/benchmarks.md, "Cache lines of a one-token call").
struct alignas(64) CallShape {
  const FrequencyPlan* plan = nullptr;
  const ApplyOptions* options = nullptr;
  const ViewInfo *qi = nullptr, *qo = nullptr, *ki = nullptr, *ko = nullptr;
  Extent e_qi, e_qo, e_ki, e_ko;
  bool q_may_be_in_place = false, k_may_be_in_place = false;  // same_geometry(in, out)
  bool has_k = false;
  bool external_cache = false;  // options.cache wraps a caller's table: positions must be in it
  int threads = 1;
  std::int64_t seq = 0;
  detail::RangeKernel kernel = nullptr;  // nullptr: chosen per call (ggml angles)
  ThreadPool* pool = nullptr;
  std::int64_t chunks = 0;
  ApplyResult result;
  alignas(64) ApplyJob job;        // every field but the tensors' data and the positions
  detail::PreparedRange prepared;  // the SIMD kernel's prepared form of this shape, if any
};

void prepare_call(CallShape& s, const FrequencyPlan& plan, const ViewInfo& qi, const ViewInfo& qo,
                  const ViewInfo& ki, const ViewInfo& ko, const ApplyOptions& o) {
  s.plan = &plan;
  s.options = &o;
  const CheckedPlan cp = checked_plan(plan, o);
  s.qi = &qi;
  s.qo = &qo;
  s.ki = &ki;
  s.ko = &ko;
  s.e_qi = checked_extent(qi, false);
  s.e_ki = checked_extent(ki, false);
  s.e_qo = checked_extent(qo, true);
  s.e_ko = checked_extent(ko, true);
  s.q_may_be_in_place = same_geometry(qi, qo);
  s.k_may_be_in_place = same_geometry(ki, ko);
  s.has_k = ki.nh > 0 || ko.nh > 0;
  const std::int64_t batch = qi.nb;
  s.seq = qi.nt;
  fill_job(s.job, plan, o, batch * s.seq, cp);
  s.external_cache = o.cache && o.cache->is_external();
  make_tensor(s.job.q, qi, qo, plan, batch, s.seq);
  if (s.has_k) make_tensor(s.job.k, ki, ko, plan, batch, s.seq);
  s.result.unapplied_attention_factor = o.fold_attention_factor ? 1.0 : plan.attention_factor;
  if (o.angles == AngleMode::kGgml) {
    detail::check_ggml_angles(plan, o, s.job);  // its table is built at each call
  } else {
    s.kernel = kernel_for(s.job, o.backend);
    if (s.kernel != &detail::reference_range) detail::simd_prepare(s.job, s.prepared);
  }
  s.pool = o.pool ? o.pool : &default_pool();
  s.threads = pool_threads(o, *s.pool);
  s.chunks = token_chunks(s.job, qi.dtype, qo.dtype, ki.dtype, ko.dtype, s.threads);
}

// The per-call steps of a prepared call; `job` is a copy of s.job.
ApplyResult execute_call(const CallShape& s, ApplyJob& job, const void* qi_data, void* qo_data,
                         const void* ki_data, void* ko_data, const Positions& positions) {
  const Extent e_qi = checked_data(*s.qi, s.e_qi, qi_data);
  const Extent e_ki = checked_data(*s.ki, s.e_ki, ki_data);
  const Extent e_qo = checked_data(*s.qo, s.e_qo, qo_data);
  const Extent e_ko = checked_data(*s.ko, s.e_ko, ko_data);
  check_overlaps(*s.qi, qi_data, e_qi, *s.qo, qo_data, e_qo, *s.ki, ki_data, e_ki, *s.ko, ko_data,
                 e_ko, s.q_may_be_in_place, s.k_may_be_in_place, s.has_k);
  std::int64_t pmin = 0, pmax = 0;
  check_positions(positions, job.tokens, s.seq, *s.plan, job, pmin, pmax);
  if (s.external_cache) check_table_positions(*s.options->cache, positions, job.tokens, pmin, pmax);
  set_data(job.q, qi_data, qo_data);
  if (s.has_k) set_data(job.k, ki_data, ko_data);  // else k has no heads, and no data is read
  ApplyResult result = s.result;
  if (job.tokens == 0 || (job.q.heads == 0 && job.k.heads == 0)) return result;  // nothing to do
  run_job(job, *s.plan, *s.options, s.kernel, &s.prepared, *s.pool, s.threads, s.chunks, result);
  return result;
}

// A copy of a trivially copyable object in 8-byte moves. A plain copy of an ApplyJob (over
// 256 bytes) compiles to `rep movsq`, whose start-up measured a sixth of a one-token call.
template <class T>
[[gnu::always_inline]] inline void copy_in_words(T& dst, const T& src) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % 8 == 0);
  auto* d = reinterpret_cast<unsigned char*>(&dst);
  const auto* s = reinterpret_cast<const unsigned char*>(&src);
#pragma GCC unroll 64
  for (std::size_t i = 0; i < sizeof(T); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s + i, 8);
    std::memcpy(d + i, &w, 8);
  }
}

// ---- apply_rope's memo of validated calls -------------------------------------------------------
// A decode loop calls apply_rope with the same plan, options and view geometry in every layer and
// at every step; only the data pointers and the positions change. Each thread remembers the
// shapes of its small calls (CallShape, as PreparedRope holds one) under a key of every input
// that prepare_call reads, and a call whose key equals a remembered one runs only the per-call
// steps (execute_call: pointers, overlaps, positions), as a PreparedRope call does. Validating
// everything again measured 1.2-1.3x the time of a prepared one-token call (docs/benchmarks.md).
//
// What the key holds, and why that is all of it:
//   * the four views' geometry (dtype, shape, strides: all but the data pointer) and the entry
//     point (the views' names, in messages);
//   * every plan field apply_rope reads but pair_axis and ggml: inv_freq by value (the caller may
//     change it in place between calls), the rest as values. Plans with pair_axis (position rows)
//     and calls with AngleMode::kGgml are not remembered;
//   * every option, the cache by its serial (a new cache may take a destroyed one's address), and
//     the thread count the pool gives now (a new pool may take a destroyed one's address);
//   * the SIMD dispatch version (force_target changes the target, and so the kernel).
// The static_asserts below fail when a field is added to a struct the key copies: add it to
// the key, or say here why the call does not read it.
//
// A shape is remembered the second time it is seen in a row of misses, so that calls whose shape
// changes every time (a batch that grows by a token per step) pay only the key and never the
// second validation that remembering costs (prepare_call after run). Calls of more than
// kMemoMaxTokens tokens are never remembered: validation is a negligible share of them.
constexpr std::int64_t kMemoMaxTokens = 256;
constexpr int kMemoEntries = 4;  // q and k in separate calls, and a second model, at once
constexpr std::size_t kMemoMaxPairs = 256;

#if defined(__x86_64__) && defined(__GLIBCXX__)
static_assert(sizeof(TensorView) == 80 && sizeof(ConstTensorView) == 80,
              "a view field was added: put it in ViewKey");
static_assert(sizeof(ApplyOptions) == 64, "an option was added: put it in MemoKey");
static_assert(sizeof(FrequencyPlan) == 296,
              "a plan field was added: put it in MemoKey if apply_rope reads it");
#endif

// The key: the stored inputs of a remembered shape (see visit_key).
//
// A view's sizes and strides are stored in 32 bits: a served call reads its key, and the four
// views in 64 bits would take two cache lines more of it (docs/benchmarks.md, "Cache lines of a
// one-token call"). A call with a size or stride beyond them (a view into a buffer of more than
// 2^31 elements) is not remembered (KeyRecord).
struct ViewKey {
  DType dtype = DType::kF32;
  std::int32_t tokens = 0, heads = 0, head_dim = 0;
  std::int32_t stride_token = 0, stride_head = 0, stride_dim = 0, batch = 0, stride_batch = 0;
};

struct MemoKey {
  bool in_place_entry = false;  // apply_rope(plan, q, k, ...): the views are q and k
  ViewKey views[4];             // q_in, q_out, k_in, k_out (in place: q, q, k, k)
  // the plan (inv_freq's values: MemoEntry::inv_freq)
  int head_dim = 0, rotary_dim = 0;
  PairLayout layout = PairLayout::kHalf;
  double attention_factor = 0;
  int position_rows = 0;
  bool hf_rounds_once = false;
  std::size_t pairs = 0;
  // the options
  AngleMode angles = AngleMode::kExact;
  Direction direction = Direction::kForward;
  Rounding rounding = Rounding::kSingle;
  Backend backend = Backend::kAuto;
  bool fold_attention_factor = false;
  bool has_layout_override = false;
  PairLayout layout_override = PairLayout::kHalf;
  double position_scale = 0;
  const CosSinCache* cache = nullptr;
  std::uint64_t cache_serial = 0;
  const ThreadPool* pool = nullptr;
  int max_threads = 0;
  OutputStores output_stores = OutputStores::kAuto;
  // the environment
  int threads = 0;                     // pool_threads() now
  std::uint64_t dispatch_version = 0;  // detail::simd_dispatch_version(): the kernel stays valid
};

// The values of a call that the key compares, besides the plan, the options and the views.
struct CallEnvironment {
  std::uint64_t cache_serial;
  int threads;
  std::uint64_t dispatch_version;
};

// Visits every key field with op(stored field, this call's value), in one list for both the
// comparison and the recording, so that the two cannot disagree; stops at the first op that
// returns false.
template <class Op, class View>
[[gnu::always_inline]] inline bool visit_view(Op& op, ViewKey& k, const View& v) {
  return op(k.dtype, v.dtype) && op(k.tokens, v.tokens) && op(k.heads, v.heads) &&
         op(k.head_dim, v.head_dim) && op(k.stride_token, v.stride_token) &&
         op(k.stride_head, v.stride_head) && op(k.stride_dim, v.stride_dim) &&
         op(k.batch, v.batch) && op(k.stride_batch, v.stride_batch);
}

template <bool kInPlaceEntry, class Op, class InView, class OutView>
[[gnu::always_inline]] inline bool visit_key(Op& op, MemoKey& k, const FrequencyPlan& plan,
                                             const InView& q_in, const OutView& q_out,
                                             const InView& k_in, const OutView& k_out,
                                             const ApplyOptions& o, const CallEnvironment& env) {
  return op(k.in_place_entry, kInPlaceEntry) && visit_view(op, k.views[0], q_in) &&
         visit_view(op, k.views[2], k_in) &&
         (kInPlaceEntry ||  // in place, the outputs are the inputs
          (visit_view(op, k.views[1], q_out) && visit_view(op, k.views[3], k_out))) &&
         op(k.head_dim, plan.head_dim) && op(k.rotary_dim, plan.rotary_dim) &&
         op(k.layout, plan.layout) && op(k.attention_factor, plan.attention_factor) &&
         op(k.position_rows, plan.position_rows) && op(k.hf_rounds_once, plan.hf_rounds_once) &&
         op(k.pairs, plan.inv_freq.size()) && op(k.angles, o.angles) &&
         op(k.direction, o.direction) && op(k.rounding, o.rounding) && op(k.backend, o.backend) &&
         op(k.fold_attention_factor, o.fold_attention_factor) &&
         op(k.has_layout_override, o.layout.has_value()) &&
         op(k.layout_override, o.layout.value_or(PairLayout::kHalf)) &&
         op(k.position_scale, o.position_scale) && op(k.cache, o.cache) &&
         op(k.cache_serial, env.cache_serial) &&
         op(k.pool, static_cast<const ThreadPool*>(o.pool)) && op(k.max_threads, o.max_threads) &&
         op(k.output_stores, o.output_stores) && op(k.threads, env.threads) &&
         op(k.dispatch_version, env.dispatch_version);
}

// Doubles compare by value: the key holds validated ones (finite; attention_factor and
// position_scale > 0).
struct KeyCompare {
  template <class T>
  bool operator()(const T& stored, const T& value) const {
    return stored == value;
  }
  // a view's size or stride: a stored one always fits, so a value that does not never matches
  bool operator()(std::int32_t stored, std::int64_t value) const { return stored == value; }
};

// Returns false, the key incomplete, at a size or stride that 32 bits do not hold.
struct KeyRecord {
  template <class T>
  bool operator()(T& stored, const T& value) const {
    stored = value;
    return true;
  }
  bool operator()(std::int32_t& stored, std::int64_t value) const {
    if (value < std::numeric_limits<std::int32_t>::min() ||
        value > std::numeric_limits<std::int32_t>::max())
      return false;
    stored = static_cast<std::int32_t>(value);
    return true;
  }
};

// A hit reads the tag and key, the frequencies, the views and the shape. They lie in two 4 KiB
// pages, the shape at the start of the second, so that the lines read in each page share the L1
// cache's sets with those of the other (a line's set is its address modulo 4 KiB on the usual
// 8-way, 64-set L1). A one-token call of 32 f32 heads out of place moves 32 KiB, the whole L1
// data cache of some CPUs (Zen 4); in that cache each set that gets a ninth line loses its eight
// data lines at every call, so what a line costs is the set it adds, not the line. Laid out one
// after the other, the lines a hit reads took 28 sets; folded, 15, and a served one-token
// call measured 1.7× a copy of its data instead of 1.95× (docs/benchmarks.md, "A one-token call
// at the L1 cache's size").
struct alignas(4096) MemoEntry {
  // the first page: what a hit compares, and the views execute_call reads
  bool valid = false;
  std::uint64_t tag = 0;   // key_tag() of key
  std::uint64_t hits = 0;  // calls served (here, not in CallMemo: a hit touches one line less)
  MemoKey key;
  alignas(64) ViewInfo views[4];  // q_in, q_out, k_in, k_out: geometry and names (data unused)
  alignas(64) float inv_freq[kMemoMaxPairs];
  // the second page
  alignas(4096) CallShape shape;  // points to views; its plan and options are set at each call
};
static_assert(offsetof(MemoEntry, inv_freq) + 64 * sizeof(float) <= 1024,
              "a hit's lines in the first page should stay within the shape's first 16 lines");

// A digest of the key fields that usually tell a thread's shapes apart (q's tokens and heads, k's
// heads, the cache, the layout, the first frequency), compared before the key itself: a loop that
// alternates q and k, a table and none, or two plans then skips the other entries at once.
// Equal keys give equal tags.
template <class InView>
std::uint64_t key_tag(const FrequencyPlan& plan, const InView& q_in, const InView& k_in,
                      const ApplyOptions& o) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint32_t first_freq = 0;
  if (!plan.inv_freq.empty()) std::memcpy(&first_freq, plan.inv_freq.data(), sizeof first_freq);
  std::uint64_t h = static_cast<std::uint64_t>(q_in.tokens);
  h = h * kMul + static_cast<std::uint64_t>(q_in.heads);
  h = h * kMul + static_cast<std::uint64_t>(k_in.heads);
  h = h * kMul + reinterpret_cast<std::uintptr_t>(o.cache);
  h = h * kMul + static_cast<std::uint64_t>(plan.layout);
  return h * kMul + first_freq;
}

// Whether entry e's key is this call's (out of line: inlined into the loop over the entries, the
// call's fields were loaded once before it and spilled to the stack).
template <bool kInPlaceEntry, class InView, class OutView>
[[gnu::noinline]] bool same_key(MemoEntry& e, const FrequencyPlan& plan, const InView& q_in,
                                const OutView& q_out, const InView& k_in, const OutView& k_out,
                                const ApplyOptions& o, const CallEnvironment& env) {
  KeyCompare cmp;
  return visit_key<kInPlaceEntry>(cmp, e.key, plan, q_in, q_out, k_in, k_out, o, env) &&
         std::memcmp(e.inv_freq, plan.inv_freq.data(), plan.inv_freq.size() * sizeof(float)) == 0;
}

struct CallMemo {
  MemoEntry entries[kMemoEntries];  // first: a field before them would take a page of its own
  std::uint64_t retired_hits = 0;   // the hits of replaced entries (detail::apply_memo_hits())
  int next = 0;                     // the entry the next remembered shape replaces
  bool seen_once = false;
  MemoKey last_miss;  // the key of the last call that missed (valid when seen_once)
  float last_miss_inv[kMemoMaxPairs];
};

// In thread-local storage: 36 KiB per thread of a program that links ropekit statically
// (in a shared library, made at a thread's first call). The same layout on the heap, reached
// through a thread-local pointer, measured about 5% slower per one-token call (docs/benchmarks.md,
// "A one-token call at the L1 cache's size").
CallMemo& this_thread_memo() {
  static thread_local CallMemo memo;
  return memo;
}

// The views' names in messages: apply_rope(plan, q, k, ...) or the out-of-place form.
template <bool kInPlaceEntry>
constexpr const char* kViewNames[4] = {kInPlaceEntry ? "q" : "q_in", kInPlaceEntry ? "q" : "q_out",
                                       kInPlaceEntry ? "k" : "k_in", kInPlaceEntry ? "k" : "k_out"};

// A call the memo does not serve: every check, apply_rope's messages. Out of line, as is
// remember_call: their locals (the views' infos) would otherwise widen the frame of every call
// the memo serves.
template <bool kInPlaceEntry, class InView, class OutView>
[[gnu::noinline]] ApplyResult run_views(const FrequencyPlan& plan, const InView& q_in,
                                        const OutView& q_out, const InView& k_in,
                                        const OutView& k_out, const Positions& positions,
                                        const ApplyOptions& o) {
  constexpr const char* const* kNames = kViewNames<kInPlaceEntry>;
  return run(plan, info(q_in, kNames[0]), info(q_out, kNames[1]), info(k_in, kNames[2]),
             info(k_out, kNames[3]), positions, o);
}

// After a call the memo did not serve (and run_views validated): remembers its shape the second
// time it is seen in a row.
template <bool kInPlaceEntry, class InView, class OutView>
[[gnu::noinline]] void remember_call(CallMemo& memo, std::uint64_t tag, const FrequencyPlan& plan,
                                     const InView& q_in, const OutView& q_out, const InView& k_in,
                                     const OutView& k_out, const ApplyOptions& o,
                                     const CallEnvironment& env) {
  constexpr const char* const* kNames = kViewNames<kInPlaceEntry>;
  const std::size_t inv_bytes = plan.inv_freq.size() * sizeof(float);
  KeyCompare compare;
  if (!memo.seen_once ||
      !visit_key<kInPlaceEntry>(compare, memo.last_miss, plan, q_in, q_out, k_in, k_out, o, env) ||
      std::memcmp(memo.last_miss_inv, plan.inv_freq.data(), inv_bytes) != 0) {
    KeyRecord record;
    std::memcpy(memo.last_miss_inv, plan.inv_freq.data(), inv_bytes);
    // a key that 32-bit view fields do not hold is not recorded: such a shape is never remembered
    memo.seen_once =
        visit_key<kInPlaceEntry>(record, memo.last_miss, plan, q_in, q_out, k_in, k_out, o, env);
    return;
  }
  // The second call of this shape in a row: remember it. prepare_call's checks are a subset of
  // run()'s on the same inputs (kernel_for included: run() calls it on every non-empty call), so
  // it cannot throw here.
  memo.seen_once = false;
  MemoEntry& e = memo.entries[memo.next];
  memo.next = (memo.next + 1) % kMemoEntries;
  e.valid = false;
  memo.retired_hits += e.hits;
  e.hits = 0;
  e.tag = tag;
  e.key = memo.last_miss;  // this call's key (compared equal above)
  std::memcpy(e.inv_freq, plan.inv_freq.data(), inv_bytes);
  e.views[0] = info(q_in, kNames[0]);
  e.views[1] = info(q_out, kNames[1]);
  e.views[2] = info(k_in, kNames[2]);
  e.views[3] = info(k_out, kNames[3]);
  e.shape = CallShape{};
  prepare_call(e.shape, plan, e.views[0], e.views[1], e.views[2], e.views[3], o);
  // The kernels read the entry's copy of the frequencies, which changes only when the entry is
  // replaced. Its identity is that of another entry with the same frequencies (q and k in separate
  // calls, a table and none: the per-thread angle constants then serve both without a compare),
  // else a new one.
  e.shape.job.inv_freq = e.inv_freq;
  e.shape.job.freq_id = 0;
  for (const MemoEntry& other : memo.entries) {
    if (other.valid && other.key.pairs == e.key.pairs &&
        std::memcmp(other.inv_freq, e.inv_freq, inv_bytes) == 0) {
      e.shape.job.freq_id = other.shape.job.freq_id;
      break;
    }
  }
  if (e.shape.job.freq_id == 0) e.shape.job.freq_id = detail::new_frequency_id();
  e.valid = true;
}

// apply_rope through the memo. kInPlaceEntry: apply_rope(plan, q, k, ...) (InView and OutView
// are TensorView, and the outputs are the inputs).
template <bool kInPlaceEntry, class InView, class OutView>
ApplyResult apply_memoized(const FrequencyPlan& plan, const InView& q_in, const OutView& q_out,
                           const InView& k_in, const OutView& k_out, const Positions& positions,
                           const ApplyOptions& o) {
  // Small, non-empty calls of 1-D plans (the unvalidated sizes are only compared here).
  const bool small = q_in.tokens > 0 && q_in.batch >= 1 && q_in.tokens <= kMemoMaxTokens &&
                     q_in.batch <= kMemoMaxTokens && q_in.tokens * q_in.batch <= kMemoMaxTokens &&
                     (q_in.heads > 0 || k_in.heads > 0);
  if (!small || o.angles == AngleMode::kGgml || !plan.pair_axis.empty() ||
      plan.inv_freq.size() > kMemoMaxPairs)
    return run_views<kInPlaceEntry>(plan, q_in, q_out, k_in, k_out, positions, o);

  ThreadPool& pool = o.pool ? *o.pool : default_pool();
  const CallEnvironment env{o.cache ? o.cache->serial() : 0, pool_threads(o, pool),
                            detail::simd_dispatch_version()};
  CallMemo& memo = this_thread_memo();
  const std::uint64_t tag = key_tag(plan, q_in, k_in, o);
  for (MemoEntry& e : memo.entries) {
    if (!e.valid || e.tag != tag ||
        !same_key<kInPlaceEntry>(e, plan, q_in, q_out, k_in, k_out, o, env))
      continue;
    // Every input the shape was derived from equals this call's: the plan and options are this
    // call's objects from now on (check_positions and the table test read them), and the job,
    // this thread's own, serves the call where it is (execute_call sets its data pointers and
    // every position field). Its frequencies stay the entry's copy, equal to the plan's, under
    // the entry's frequency identity.
    ++e.hits;
    CallShape& s = e.shape;
    s.plan = &plan;
    s.options = &o;
    return execute_call(s, s.job, q_in.data, q_out.data, k_in.data, k_out.data, positions);
  }

  const ApplyResult result = run_views<kInPlaceEntry>(plan, q_in, q_out, k_in, k_out, positions, o);
  remember_call<kInPlaceEntry>(memo, tag, plan, q_in, q_out, k_in, k_out, o, env);
  return result;
}

}  // namespace

std::uint64_t detail::apply_memo_hits() {
  const CallMemo& memo = this_thread_memo();
  std::uint64_t hits = memo.retired_hits;
  for (const MemoEntry& e : memo.entries) hits += e.hits;
  return hits;
}

std::uint64_t detail::new_frequency_id() {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

ApplyResult apply_rope(const FrequencyPlan& plan, const TensorView& q, const TensorView& k,
                       const Positions& positions, const ApplyOptions& options) {
  return apply_memoized<true>(plan, q, q, k, k, positions, options);
}

ApplyResult apply_rope(const FrequencyPlan& plan, const ConstTensorView& q_in,
                       const TensorView& q_out, const ConstTensorView& k_in,
                       const TensorView& k_out, const Positions& positions,
                       const ApplyOptions& options) {
  return apply_memoized<false>(plan, q_in, q_out, k_in, k_out, positions, options);
}

// ---- PreparedRope ------------------------------------------------------------------------------
// Owns copies of the plan and the options (the shape points into them), so the object may
// outlive the caller's.
struct PreparedRope::Impl {
  FrequencyPlan plan;
  ApplyOptions options;
  ViewInfo views[4];  // q_in, q_out, k_in, k_out: their geometry (data unused)
  CallShape shape;

  void prepare() {
    prepare_call(shape, plan, views[0], views[1], views[2], views[3], options);
    shape.job.freq_id = detail::new_frequency_id();  // plan.inv_freq never changes
  }
};

PreparedRope::PreparedRope(const FrequencyPlan& plan, const ConstTensorView& q_in,
                           const TensorView& q_out, const ConstTensorView& k_in,
                           const TensorView& k_out, const ApplyOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->plan = plan;
  impl_->options = options;
  impl_->views[0] = info(q_in, "q_in");
  impl_->views[1] = info(q_out, "q_out");
  impl_->views[2] = info(k_in, "k_in");
  impl_->views[3] = info(k_out, "k_out");
  impl_->prepare();
}

PreparedRope::PreparedRope(const FrequencyPlan& plan, const TensorView& q, const TensorView& k,
                           const ApplyOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->plan = plan;
  impl_->options = options;
  impl_->views[0] = impl_->views[1] = info(q, "q");
  impl_->views[2] = impl_->views[3] = info(k, "k");
  impl_->prepare();
}

PreparedRope::PreparedRope(PreparedRope&&) noexcept = default;
PreparedRope& PreparedRope::operator=(PreparedRope&&) noexcept = default;
PreparedRope::~PreparedRope() = default;

ApplyResult PreparedRope::apply(const void* q_in, void* q_out, const void* k_in, void* k_out,
                                const Positions& positions) const {
  if (!impl_) throw ArgumentError("[ropekit.apply] PreparedRope: a moved-from object");
  ApplyJob job;
  copy_in_words(job, impl_->shape.job);
  return execute_call(impl_->shape, job, q_in, q_out, k_in, k_out, positions);
}

ApplyResult PreparedRope::apply(void* q, void* k, const Positions& positions) const {
  return apply(q, q, k, k, positions);
}

}  // namespace ropekit
