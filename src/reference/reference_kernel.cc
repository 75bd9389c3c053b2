// The scalar double-precision reference: the oracle every fast path is tested against, and a
// backend in its own right (Backend::kReference).
//
// Per token: cos/sin of each pair's angle in double (exact or hf angle), times the amplitude;
// per head: the whole row is read first (so in-place and the de-interleaving layout are safe),
// rotated in double and each output rounded once (RNE) to the output dtype. Rounding::
// kTransformers instead replays transformers' float32/bf16/f16 operation sequence.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernel/angles.h"
#include "kernel/job.h"

namespace ropekit::detail {
namespace {

struct PairTrig {
  std::vector<double> c, s;
};

// cos/sin (double) of every pair for token t, amplitude included unless `emulate`
// (then cos/sin are float32 values and the amplitude is applied in float32 later).
void token_trig(const ApplyJob& job, std::int64_t t, std::int64_t& seq_hint, bool emulate,
                PairTrig& out) {
  const int n = job.pairs;
  std::int64_t pos[Positions::kMaxRows] = {0, 0, 0, 0};
  const bool mrope = job.pos_kind == Positions::Kind::kMRope;
  for (int a = 0; a < (mrope ? job.pos_rows : 1); ++a) pos[a] = token_position(job, t, a, seq_hint);
  const float scale = job.position_scale;
  for (int i = 0; i < n; ++i) {
    const std::int64_t p = mrope && job.pair_axis ? pos[job.pair_axis[i]] : pos[0];
    const float inv = job.inv_freq[i];
    double c = 0, s = 0;
    if (job.cache && p >= 0 && p < job.cache->size()) {
      c = job.cache->cos_row(p)[i];
      s = job.cache->sin_row(p)[i];
      out.c[static_cast<std::size_t>(i)] = c;
      out.s[static_cast<std::size_t>(i)] = s;
      continue;  // the cache already holds the amplitude when the job folds it
    }
    if (job.angles == AngleMode::kHf) {
      const double theta = hf_angle(p, inv, job.has_position_scale, scale);
      c = std::cos(theta);
      s = std::sin(theta);
      if (emulate) {  // torch computes cos/sin of a float tensor into float32
        c = static_cast<float>(c);
        s = static_cast<float>(s);
      }
    } else {
      // p · inv · scale kept exact: inv · scale as m + m_lo (FMA), then p · m split again.
      double m = inv, m_lo = 0.0;
      if (job.has_position_scale) exact_multiplier(inv, job.position_scale_exact, m, m_lo);
      exact_cos_sin(p, m, m_lo, c, s);
    }
    if (!emulate) {
      c *= job.amplitude;
      s *= job.amplitude;
    }
    out.c[static_cast<std::size_t>(i)] = c;
    out.s[static_cast<std::size_t>(i)] = s;
  }
}

inline const char* elem_in(const JobTensor& x, std::int64_t t, std::int64_t h, std::int64_t d) {
  return static_cast<const char*>(x.in) +
         (token_offset(t, x.seq, x.in_stride_token, x.in_stride_batch) + h * x.in_stride_head +
          d * x.in_stride_dim) *
             dtype_size(x.in_type);
}
inline char* elem_out(const JobTensor& x, std::int64_t t, std::int64_t h, std::int64_t d) {
  return static_cast<char*>(x.out) +
         (token_offset(t, x.seq, x.out_stride_token, x.out_stride_batch) + h * x.out_stride_head +
          d * x.out_stride_dim) *
             dtype_size(x.out_type);
}

// float32 (or 16-bit) arithmetic as torch does it: every op rounded to `t`'s precision.
inline double round_op(DType t, double v) { return round_to_dtype(t, static_cast<float>(v)); }

void rotate_tensor(const ApplyJob& job, const JobTensor& x, std::int64_t t, const PairTrig& trig,
                   bool emulate, std::vector<double>& row) {
  const int n = job.pairs;
  const int hd = job.head_dim;
  const DType ot = x.out_type;
  // In the emulation, torch's dtype is the tensor's: cos/sin and every product are rounded
  // to it (float32 for f32 tensors).
  const DType op_type = ot;
  std::vector<double> ce, se;
  if (emulate) {
    ce.resize(static_cast<std::size_t>(n));
    se.resize(static_cast<std::size_t>(n));
    const float amp = static_cast<float>(job.amplitude);
    for (int i = 0; i < n; ++i) {
      const float cf = static_cast<float>(trig.c[static_cast<std::size_t>(i)]);
      const float sf = static_cast<float>(trig.s[static_cast<std::size_t>(i)]);
      const float ca = job.amplitude == 1.0 ? cf : cf * amp;
      const float sa = job.amplitude == 1.0 ? sf : sf * amp;
      ce[static_cast<std::size_t>(i)] =
          job.hf_rounds_once ? static_cast<double>(ca) : round_to_dtype(op_type, ca);
      se[static_cast<std::size_t>(i)] =
          job.hf_rounds_once ? static_cast<double>(sa) : round_to_dtype(op_type, sa);
    }
  }
  for (std::int64_t h = 0; h < x.heads; ++h) {
    for (int d = 0; d < hd; ++d)
      row[static_cast<std::size_t>(d)] = load_as_double(x.in_type, elem_in(x, t, h, d));
    for (int i = 0; i < n; ++i) {
      int ia = 0, ib = 0, oa = 0, ob = 0;
      pair_features(job.layout, n, i, ia, ib, oa, ob);
      const double a = row[static_cast<std::size_t>(ia)];
      const double b = row[static_cast<std::size_t>(ib)];
      const double sign = job.inverse ? -1.0 : 1.0;
      double ya = 0, yb = 0;
      if (!emulate) {
        const double c = trig.c[static_cast<std::size_t>(i)];
        const double s = sign * trig.s[static_cast<std::size_t>(i)];
        ya = a * c - b * s;
        yb = b * c + a * s;
      } else {
        const double c = ce[static_cast<std::size_t>(i)];
        const double s = sign * se[static_cast<std::size_t>(i)];
        if (job.hf_rounds_once) {  // float32 complex multiply, one rounding at the end
          ya = static_cast<float>(static_cast<float>(a * c) - static_cast<float>(b * s));
          yb = static_cast<float>(static_cast<float>(b * c) + static_cast<float>(a * s));
        } else {  // q*cos + rotate_half(q)*sin: each product and the sum rounded to the dtype
          ya = round_op(op_type, round_op(op_type, a * c) - round_op(op_type, b * s));
          yb = round_op(op_type, round_op(op_type, b * c) + round_op(op_type, a * s));
        }
      }
      store_from_double(ot, elem_out(x, t, h, oa), ya);
      store_from_double(ot, elem_out(x, t, h, ob), yb);
    }
    // Pass-through features: untouched in place; copied (bit-identical for equal dtypes).
    if (!x.in_place) {
      for (int d = job.rotary_dim; d < hd; ++d) {
        if (x.in_type == ot) {
          std::memcpy(elem_out(x, t, h, d), elem_in(x, t, h, d),
                      static_cast<std::size_t>(dtype_size(ot)));
        } else {
          store_from_double(ot, elem_out(x, t, h, d), row[static_cast<std::size_t>(d)]);
        }
      }
    }
  }
}

}  // namespace

void reference_range(const ApplyJob& job, std::int64_t t_begin, std::int64_t t_end) {
  const bool emulate = job.rounding == Rounding::kTransformers;
  PairTrig trig;
  trig.c.resize(static_cast<std::size_t>(job.pairs));
  trig.s.resize(static_cast<std::size_t>(job.pairs));
  std::vector<double> row(static_cast<std::size_t>(job.head_dim));
  std::int64_t seq_hint =
      job.pos_kind == Positions::Kind::kPerSequence ? seq_for_token(job, t_begin) : 0;
  for (std::int64_t t = t_begin; t < t_end; ++t) {
    token_trig(job, t, seq_hint, emulate, trig);
    if (job.q.heads > 0) rotate_tensor(job, job.q, t, trig, emulate, row);
    if (job.k.heads > 0) rotate_tensor(job, job.k, t, trig, emulate, row);
  }
}

}  // namespace ropekit::detail
