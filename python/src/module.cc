// ropekit._ropekit: the Python binding of ropekit's public C++ API (include/ropekit/*.h only).
//
// Arrays come in through the buffer protocol (NumPy) or DLPack (torch, ...), see
// dlpack_array.h; they are never copied. The hot path (Plan.apply) parses its arguments once,
// builds views and releases the GIL while the kernels run. The Python package (ropekit/*.py)
// allocates outputs and gives the friendly signatures.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dlpack_array.h"
#include "ropekit/ropekit.h"

namespace py = pybind11;
namespace rk = ropekit;
using ropekit_py::acquire_array;
using ropekit_py::Array;
using ropekit_py::Elem;

namespace {

// ---- the one place that maps numerics preset names to the library's presets ----------------
using Numerics = rk::Numerics;

Numerics numerics_preset(const std::string& name) {
  if (const auto n = rk::numerics_preset(name)) return *n;
  throw py::value_error(
      "numerics: expected 'exact', 'transformers', 'mlx-lm' or 'llama.cpp', got '" + name + "'");
}

// ---- the one place that reads the plan's report-only fields ---------------------------------
struct PlanReport {
  std::string rope_type;
  double softmax_scale_multiplier;
  std::int64_t seq_len_used;
  double effective_theta;
  bool uses_long_factor;
};
PlanReport plan_report(const rk::FrequencyPlan& p) {
  return {p.info.rope_type, p.info.softmax_scale_multiplier, p.info.seq_len_used,
          p.info.effective_theta, p.info.uses_long_factor};
}

const char* layout_name(rk::PairLayout l) {
  switch (l) {
    case rk::PairLayout::kHalf:
      return "half";
    case rk::PairLayout::kInterleaved:
      return "interleaved";
    case rk::PairLayout::kInterleavedToHalf:
      return "interleaved_to_half";
  }
  return "?";
}

rk::PairLayout layout_from_name(const std::string& s) {
  if (s == "half" || s == "neox") return rk::PairLayout::kHalf;
  if (s == "interleaved" || s == "gptj") return rk::PairLayout::kInterleaved;
  if (s == "interleaved_to_half" || s == "deepseek") return rk::PairLayout::kInterleavedToHalf;
  throw py::value_error(
      "pair_layout: expected 'half', 'interleaved' or 'interleaved_to_half', got '" + s + "'");
}

py::array_t<float> float_array(const std::vector<float>& v) {
  py::array_t<float> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(float));
  return a;
}

rk::DType dtype_of(const Array& a, const char* name) {
  switch (a.elem) {
    case Elem::kF32:
      return rk::DType::kF32;
    case Elem::kF16:
      return rk::DType::kF16;
    case Elem::kBF16:
      return rk::DType::kBF16;
    default:
      break;
  }
  throw py::type_error(std::string(name) + ": expected float32, float16 or bfloat16, got " +
                       ropekit_py::elem_name(a.elem));
}

// Tensor layouts of q/k: which axes are batch, token, head, dim.
enum Layout : int { kAuto = 0, kTHD = 1, kHSD = 2, kBSHD = 3, kBHSD = 4 };

rk::TensorView view_of(const Array& a, const char* name, int layout) {
  rk::TensorView v;
  v.data = a.data;
  v.dtype = dtype_of(a, name);
  if (layout == kAuto) {
    if (a.ndim == 3) {
      layout = kTHD;
    } else {
      throw py::value_error(
          std::string(name) + ": expected a 3-D [tokens, heads, head_dim] tensor " +
          "(or pass layout='bshd', 'bhsd', 'hsd' for other shapes), got shape " + a.shape_str());
    }
  }
  const int want = layout == kBSHD || layout == kBHSD ? 4 : 3;
  if (a.ndim != want) {
    static const char* names[] = {"", "thd", "hsd", "bshd", "bhsd"};
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(want) +
                          "-D tensor for layout '" + names[layout] + "', got shape " +
                          a.shape_str());
  }
  int b = -1, t = 0, h = 1, d = 2;
  switch (layout) {
    case kTHD:
      t = 0, h = 1, d = 2;
      break;
    case kHSD:
      h = 0, t = 1, d = 2;
      break;
    case kBSHD:
      b = 0, t = 1, h = 2, d = 3;
      break;
    case kBHSD:
      b = 0, h = 1, t = 2, d = 3;
      break;
    default:
      throw py::value_error("layout: unknown code " + std::to_string(layout));
  }
  v.tokens = a.shape[t];
  v.heads = a.shape[h];
  v.head_dim = a.shape[d];
  v.stride_token = a.strides[t];
  v.stride_head = a.strides[h];
  v.stride_dim = a.strides[d];
  if (b >= 0) {
    v.batch = a.shape[b];
    v.stride_batch = a.strides[b];
    if (v.batch == 0) v.tokens = 0, v.batch = 1;  // empty batch: nothing to do
  }
  return v;
}

// int64 values of a sequence or array argument (indptr, offsets).
std::vector<std::int64_t> int64_vector(py::handle obj, const char* name) {
  std::vector<std::int64_t> out;
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    for (auto item : obj) {
      if (!PyIndex_Check(item.ptr()) || PyFloat_Check(item.ptr()))
        throw py::type_error(std::string(name) + ": expected integers, got " +
                             std::string(Py_TYPE(item.ptr())->tp_name));
      py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(item.ptr()));
      if (!i) throw py::error_already_set();
      out.push_back(i.cast<std::int64_t>());
    }
    return out;
  }
  Array a = acquire_array(obj.ptr(), name, false);
  if (a.elem != Elem::kI32 && a.elem != Elem::kI64)
    throw py::type_error(std::string(name) + ": expected an int32 or int64 array, got " +
                         ropekit_py::elem_name(a.elem));
  if (a.ndim != 1)
    throw py::value_error(std::string(name) + ": expected a 1-D array, got shape " + a.shape_str());
  out.resize(static_cast<std::size_t>(a.shape[0]));
  for (std::int64_t i = 0; i < a.shape[0]; ++i)
    out[static_cast<std::size_t>(i)] =
        a.elem == Elem::kI32 ? static_cast<const std::int32_t*>(a.data)[i * a.strides[0]]
                             : static_cast<const std::int64_t*>(a.data)[i * a.strides[0]];
  return out;
}

// Positions of a call, with the storage they point into.
struct PositionsArg {
  rk::Positions pos = rk::Positions::offset(0);
  Array ids;
  std::vector<std::int64_t> indptr, offsets;
};

void make_positions(PositionsArg& out, py::handle positions, py::handle offsets, py::handle indptr,
                    const rk::FrequencyPlan& plan, std::int64_t batch, std::int64_t seq) {
  const std::int64_t tokens = batch * seq;
  if (!offsets.is_none()) {
    if (!positions.is_none() &&
        !(PyLong_Check(positions.ptr()) && PyLong_AsLongLong(positions.ptr()) == 0))
      throw py::value_error(
          "positions: expected no positions when offsets are given (one start per sequence)");
    out.offsets = int64_vector(offsets, "offsets");
    if (!indptr.is_none()) {
      out.indptr = int64_vector(indptr, "indptr");
    } else {
      if (static_cast<std::int64_t>(out.offsets.size()) != batch)
        throw py::value_error(
            "offsets: expected " + std::to_string(batch) +
            " entries (one per batch sequence; give indptr for ragged batches), got " +
            std::to_string(out.offsets.size()));
      for (std::int64_t b = 0; b <= batch; ++b) out.indptr.push_back(b * seq);
    }
    out.pos = rk::Positions::per_sequence(out.indptr, out.offsets);
    return;
  }
  if (!indptr.is_none())
    throw py::value_error("indptr: expected offsets too (indptr + offsets: ragged batch)");
  if (positions.is_none()) {
    out.pos = rk::Positions::offset(0);
    return;
  }
  if (PyLong_Check(positions.ptr())) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(positions.ptr(), &overflow);
    if (overflow != 0)
      throw py::value_error("positions: expected an offset within ±(2^31 − 1), got " +
                            py::str(positions).cast<std::string>());
    out.pos = rk::Positions::offset(v);
    return;
  }
  if (PyList_Check(positions.ptr()) || PyTuple_Check(positions.ptr())) {
    out.offsets = int64_vector(positions, "positions");  // reuse the storage
    if (static_cast<std::int64_t>(out.offsets.size()) != tokens)
      throw py::value_error("positions: expected " + std::to_string(tokens) +
                            " positions (one per token), got " +
                            std::to_string(out.offsets.size()));
    out.pos = rk::Positions::per_token(std::span<const std::int64_t>(out.offsets));
    return;
  }
  out.ids = acquire_array(positions.ptr(), "positions", false);
  const Array& a = out.ids;
  if (a.ndim == 0 && (a.elem == Elem::kI32 || a.elem == Elem::kI64)) {  // np.int64(5), tensor(5)
    out.pos =
        rk::Positions::offset(a.elem == Elem::kI32 ? *static_cast<const std::int32_t*>(a.data)
                                                   : *static_cast<const std::int64_t*>(a.data));
    return;
  }
  if (a.elem != Elem::kI32 && a.elem != Elem::kI64)
    throw py::type_error(std::string("positions: expected an int, or an int32/int64 array, got ") +
                         ropekit_py::elem_name(a.elem));
  if (!a.c_contiguous())
    throw py::value_error("positions: expected a contiguous array, got strides that are not");
  const bool rows =
      !plan.pair_axis.empty() && a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == tokens;
  if (rows) {
    if (a.elem == Elem::kI32)
      out.pos = rk::Positions::mrope(
          std::span<const std::int32_t>(static_cast<const std::int32_t*>(a.data), 3 * tokens),
          tokens);
    else
      out.pos = rk::Positions::mrope(
          std::span<const std::int64_t>(static_cast<const std::int64_t*>(a.data), 3 * tokens),
          tokens);
    return;
  }
  if (a.size() != tokens || a.ndim > 2)
    throw py::value_error("positions: expected " + std::to_string(tokens) +
                          " positions (one per token" +
                          std::string(batch > 1 ? ", shape [batch, seq]" : "") +
                          (!plan.pair_axis.empty() ? ", or [3, tokens] M-RoPE rows" : "") +
                          "), got shape " + a.shape_str());
  if (a.elem == Elem::kI32)
    out.pos = rk::Positions::per_token(
        std::span<const std::int32_t>(static_cast<const std::int32_t*>(a.data), tokens));
  else
    out.pos = rk::Positions::per_token(
        std::span<const std::int64_t>(static_cast<const std::int64_t*>(a.data), tokens));
}

// ---- Plan: a frequency plan and the defaults of its numerics ---------------------------------
struct Plan {
  std::shared_ptr<const rk::FrequencyPlan> plan;
  rk::AngleMode angles = rk::AngleMode::kExact;
  rk::Rounding rounding = rk::Rounding::kSingle;
  double position_scale = 1.0;             // mlx-lm linear scaling
  std::shared_ptr<rk::CosSinCache> cache;  // owned table (exact or hf), optional
};

struct CallOptions {
  int layout = kAuto;
  int angles = -1;    // -1: the plan's default; 0 exact, 1 hf
  int rounding = -1;  // -1: the plan's default; 0 single, 1 transformers
  bool inverse = false;
  bool fold = true;
  int threads = 0;
  int backend = 0;  // 0 auto, 1 reference, 2 simd
  int stores = 0;   // rk::OutputStores: 0 auto, 1 regular, 2 non-temporal
  std::optional<rk::PairLayout> pair_layout;
};
// `stores` is cast to the enum as given (ropekit/__init__.py's _STORES holds these codes).
static_assert(static_cast<int>(rk::OutputStores::kAuto) == 0 &&
                  static_cast<int>(rk::OutputStores::kRegular) == 1 &&
                  static_cast<int>(rk::OutputStores::kNonTemporal) == 2,
              "python/ropekit/__init__.py _STORES: codes of OutputStores");

rk::ApplyOptions apply_options(const Plan& p, const CallOptions& c) {
  rk::ApplyOptions o;
  o.angles = c.angles < 0 ? p.angles : (c.angles == 1 ? rk::AngleMode::kHf : rk::AngleMode::kExact);
  o.rounding = c.rounding < 0
                   ? p.rounding
                   : (c.rounding == 1 ? rk::Rounding::kTransformers : rk::Rounding::kSingle);
  o.direction = c.inverse ? rk::Direction::kInverse : rk::Direction::kForward;
  o.fold_attention_factor = c.fold;
  o.max_threads = c.threads;
  o.backend = c.backend == 1   ? rk::Backend::kReference
              : c.backend == 2 ? rk::Backend::kSimd
                               : rk::Backend::kAuto;
  o.layout = c.pair_layout;
  // As given: apply_rope names options.output_stores for a value that is not an OutputStores.
  o.output_stores = static_cast<rk::OutputStores>(c.stores);
  o.position_scale = p.position_scale;
  if (p.cache && p.cache->matches(*p.plan, o.angles, o.fold_attention_factor) &&
      o.position_scale == 1.0)
    o.cache = p.cache.get();
  return o;
}

// The tensors of one call, acquired once. q_out / k_out None: in place.
struct Call {
  Array qa, qoa, ka, koa;
  rk::TensorView qv{}, qov{}, kv{}, kov{};
  PositionsArg pa;
};

void acquire_call(Call& c, py::handle q, py::handle q_out, py::handle k, py::handle k_out,
                  int layout, const char* q_name = "q") {
  const bool q_inplace = q_out.is_none() || q_out.ptr() == q.ptr();
  c.qa = acquire_array(q.ptr(), q_name, q_inplace);
  c.qv = view_of(c.qa, q_name, layout);
  c.qov = c.qv;
  if (!q_inplace) {
    c.qoa = acquire_array(q_out.ptr(), "out", true);
    c.qov = view_of(c.qoa, "out", layout);
  }
  if (!k.is_none()) {
    const bool k_inplace = k_out.is_none() || k_out.ptr() == k.ptr();
    c.ka = acquire_array(k.ptr(), "k", k_inplace);
    c.kv = view_of(c.ka, "k", layout);
    c.kov = c.kv;
    if (!k_inplace) {
      c.koa = acquire_array(k_out.ptr(), "k_out", true);
      c.kov = view_of(c.koa, "k_out", layout);
    }
    if (c.kv.batch != c.qv.batch || c.kv.tokens != c.qv.tokens)
      throw py::value_error("k: expected batch " + std::to_string(c.qv.batch) + " and " +
                            std::to_string(c.qv.tokens) + " tokens (as " + q_name +
                            "), got shape " + c.ka.shape_str());
  } else if (!k_out.is_none()) {
    throw py::value_error("k_out: expected None when k is None");
  }
}

double execute(Call& c, const rk::FrequencyPlan& plan, const rk::ApplyOptions& opts) {
  rk::ApplyResult r;
  {
    py::gil_scoped_release nogil;
    r = rk::apply_rope(plan, c.qv, c.qov, c.kv, c.kov, c.pa.pos, opts);
  }
  return r.unapplied_attention_factor;
}

double run_apply(const rk::FrequencyPlan& plan, const rk::ApplyOptions& opts, py::handle q,
                 py::handle q_out, py::handle k, py::handle k_out, py::handle positions,
                 py::handle offsets, py::handle indptr, int layout) {
  Call c;
  acquire_call(c, q, q_out, k, k_out, layout);
  make_positions(c.pa, positions, offsets, indptr, plan, c.qv.batch, c.qv.tokens);
  return execute(c, plan, opts);
}

// The identity trick for cos/sin: rotating e_a (1 in every pair's first feature, 0 elsewhere)
// gives y_a = c and y_b = s exactly (1·c − 0·s), so the tables are the kernels' own values.
py::tuple cos_sin_tables(const Plan& p, const CallOptions& c, py::handle positions,
                         py::handle offsets, py::handle indptr, std::int64_t batch,
                         std::int64_t seq) {
  const rk::FrequencyPlan& plan = *p.plan;
  const int hd = plan.head_dim, n = plan.rotary_dim / 2;
  const std::int64_t tokens = batch * seq;
  std::vector<float> x(static_cast<std::size_t>(hd), 0.0f);
  for (int i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = 1.0f;
  py::array_t<float> y({tokens, static_cast<std::int64_t>(hd)});
  rk::ApplyOptions o = apply_options(p, c);
  o.layout = rk::PairLayout::kHalf;
  o.rounding = rk::Rounding::kSingle;  // f32 output: 1·c − 0·s is c either way
  PositionsArg pa;
  make_positions(pa, positions, offsets, indptr, plan, batch, seq);
  {
    // one "head" per token, the same input row for every token (token stride 0)
    const rk::ConstTensorView in(x.data(), rk::DType::kF32, seq, 1, hd, 0, hd, 1);
    rk::ConstTensorView in_b = in;
    in_b.batch = batch;
    in_b.stride_batch = 0;
    rk::TensorView out = rk::TensorView::contiguous(y.mutable_data(), rk::DType::kF32, seq, 1, hd);
    out.batch = batch;
    out.stride_batch = seq * hd;
    py::gil_scoped_release nogil;
    rk::apply_rope(plan, in_b, out, {}, {}, pa.pos, o);
  }
  py::array_t<float> cos({tokens, static_cast<std::int64_t>(n)});
  py::array_t<float> sin({tokens, static_cast<std::int64_t>(n)});
  const float* ys = y.data();
  float* cs = cos.mutable_data();
  float* ss = sin.mutable_data();
  for (std::int64_t t = 0; t < tokens; ++t)
    for (int i = 0; i < n; ++i) {
      cs[t * n + i] = ys[t * hd + i];
      ss[t * n + i] = ys[t * hd + n + i];
    }
  return py::make_tuple(cos, sin);
}

CallOptions call_options(int layout, int angles, int rounding, bool inverse, bool fold, int threads,
                         int backend, const std::string& pair_layout, int stores = 0) {
  CallOptions c;
  c.layout = layout;
  c.angles = angles;
  c.rounding = rounding;
  c.inverse = inverse;
  c.fold = fold;
  c.threads = threads;
  c.backend = backend;
  c.stores = stores;
  if (!pair_layout.empty()) c.pair_layout = layout_from_name(pair_layout);
  return c;
}

// Plans with all-zero frequencies for a caller's cos/sin table, one per geometry.
std::shared_ptr<const rk::FrequencyPlan> table_plan(int head_dim, int rotary_dim, bool neox) {
  static std::vector<std::shared_ptr<const rk::FrequencyPlan>> plans;  // GIL held
  for (const auto& p : plans)
    if (p->head_dim == head_dim && p->rotary_dim == rotary_dim &&
        p->layout == (neox ? rk::PairLayout::kHalf : rk::PairLayout::kInterleaved))
      return p;
  auto p = std::make_shared<rk::FrequencyPlan>();
  p->info.rope_type = "external";
  p->head_dim = head_dim;
  p->rotary_dim = rotary_dim;
  p->layout = neox ? rk::PairLayout::kHalf : rk::PairLayout::kInterleaved;
  p->inv_freq.assign(static_cast<std::size_t>(rotary_dim / 2), 0.0f);
  if (plans.size() < 64) plans.push_back(p);
  return p;
}

// Applies with a caller's float32 cos/sin: `cos_sin` [max_pos, rotary_dim] (cos | sin halves,
// vLLM/FlashInfer), or separate `cos`, `sin` tables whose rows are indexed by the positions.
double apply_with_table(py::handle cos, py::handle sin, py::handle q, py::handle q_out,
                        py::handle k, py::handle k_out, py::handle positions, py::handle offsets,
                        py::handle indptr, int layout, bool neox, int rounding, bool inverse,
                        int threads, int backend) {
  Array ca = acquire_array(cos.ptr(), sin.is_none() ? "cos_sin_cache" : "cos", false);
  const char* cname = sin.is_none() ? "cos_sin_cache" : "cos";
  if (ca.elem != Elem::kF32)
    throw py::type_error(std::string(cname) + ": expected float32, got " +
                         ropekit_py::elem_name(ca.elem));
  if (ca.ndim != 2)
    throw py::value_error(std::string(cname) +
                          ": expected a 2-D [positions, width] table, got shape " + ca.shape_str());
  if (ca.strides[1] != 1 && ca.shape[1] > 1)
    throw py::value_error(std::string(cname) + ": expected rows with unit stride, got stride " +
                          std::to_string(ca.strides[1]));
  Array sa;
  std::int64_t pairs = 0;
  const float* cp = static_cast<const float*>(ca.data);
  const float* sp = nullptr;
  if (sin.is_none()) {
    if (ca.shape[1] % 2 != 0 || ca.shape[1] == 0)
      throw py::value_error("cos_sin_cache: expected an even width (rotary_dim), got " +
                            std::to_string(ca.shape[1]));
    pairs = ca.shape[1] / 2;
    sp = cp + pairs;
  } else {
    sa = acquire_array(sin.ptr(), "sin", false);
    if (sa.elem != Elem::kF32)
      throw py::type_error(std::string("sin: expected float32, got ") +
                           ropekit_py::elem_name(sa.elem));
    if (sa.ndim != 2 || sa.shape[0] != ca.shape[0] || sa.shape[1] != ca.shape[1] ||
        (sa.shape[0] > 1 && sa.strides[0] != ca.strides[0]) ||
        (sa.strides[1] != 1 && sa.shape[1] > 1))
      throw py::value_error("sin: expected the shape and strides of cos " + ca.shape_str() +
                            ", got " + sa.shape_str());
    pairs = ca.shape[1];
    sp = static_cast<const float*>(sa.data);
  }
  Call call;
  acquire_call(call, q, q_out, k, k_out, layout, "query");
  const int head_dim = static_cast<int>(call.qv.head_dim);
  if (2 * pairs > head_dim)
    throw py::value_error("cos_sin_cache: expected a rotary width <= head_size " +
                          std::to_string(head_dim) + ", got " + std::to_string(2 * pairs));
  auto plan = table_plan(head_dim, static_cast<int>(2 * pairs), neox);
  auto cache = rk::CosSinCache::wrap(cp, sp, ca.shape[0], static_cast<int>(pairs), ca.strides[0]);
  make_positions(call.pa, positions, offsets, indptr, *plan, call.qv.batch, call.qv.tokens);
  Plan p;
  p.plan = plan;
  const CallOptions c = call_options(layout, 0, rounding, inverse, true, threads, backend, "");
  rk::ApplyOptions o = apply_options(p, c);
  o.cache = cache.get();
  return execute(call, *plan, o);
}

// ---- Layer: one RopeConfig ----------------------------------------------------------------------
struct Layer {
  rk::RopeConfig config;
};

std::shared_ptr<Plan> make_plan(rk::FrequencyPlan fp, const Numerics& n) {
  auto p = std::make_shared<Plan>();
  p->plan = std::make_shared<const rk::FrequencyPlan>(std::move(fp));
  p->angles = n.angles;
  p->rounding = n.rounding;
  return p;
}

struct State {
  std::unique_ptr<rk::RopeState> state;
  Numerics numerics;
  std::shared_ptr<Plan> last;
};

void register_errors(py::module_& m) {
  static PyObject* config_error =
      PyErr_NewExceptionWithDoc("ropekit._ropekit.ConfigError",
                                "A model config or factory argument that cannot give a correct "
                                "rotation. `.path` is the JSON path of the offending key.",
                                PyExc_ValueError, nullptr);
  m.attr("ConfigError") = py::handle(config_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const rk::ConfigError& e) {
      py::object inst =
          py::reinterpret_steal<py::object>(PyObject_CallFunction(config_error, "s", e.what()));
      if (!inst) return;  // error already set
      inst.attr("path") = py::str(e.path());
      PyErr_SetObject(config_error, inst.ptr());
    } catch (const rk::ArgumentError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const rk::IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const rk::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
}

}  // namespace

PYBIND11_MODULE(_ropekit, m) {
  m.doc() = "ropekit's C++ API for Python (see the ropekit package for the documented interface)";
  m.attr("__version__") = rk::kVersion;
  register_errors(m);

  m.def("set_threads", [](int n) {
    if (n < 1) throw py::value_error("threads: expected a count >= 1, got " + std::to_string(n));
    rk::set_default_threads(n);
  });
  m.def("get_threads", []() { return rk::default_pool().size(); });
  m.def("active_target", &rk::active_target);
  m.def("check_numerics", [](const std::string& name) { (void)numerics_preset(name); });

  py::class_<Plan, std::shared_ptr<Plan>>(m, "Plan")
      .def_property_readonly("rope_type",
                             [](const Plan& p) { return plan_report(*p.plan).rope_type; })
      .def_property_readonly("head_dim", [](const Plan& p) { return p.plan->head_dim; })
      .def_property_readonly("rotary_dim", [](const Plan& p) { return p.plan->rotary_dim; })
      .def_property_readonly("layout", [](const Plan& p) { return layout_name(p.plan->layout); })
      .def_property_readonly("inv_freq",
                             [](const Plan& p) { return float_array(p.plan->inv_freq); })
      .def_property_readonly("attention_factor",
                             [](const Plan& p) { return p.plan->attention_factor; })
      .def_property_readonly(
          "softmax_scale_multiplier",
          [](const Plan& p) { return plan_report(*p.plan).softmax_scale_multiplier; })
      .def_property_readonly("seq_len",
                             [](const Plan& p) { return plan_report(*p.plan).seq_len_used; })
      .def_property_readonly("effective_theta",
                             [](const Plan& p) { return plan_report(*p.plan).effective_theta; })
      .def_property_readonly("uses_long_factor",
                             [](const Plan& p) { return plan_report(*p.plan).uses_long_factor; })
      .def_property_readonly("position_scale", [](const Plan& p) { return p.position_scale; })
      .def_property_readonly("mrope_section",
                             [](const Plan& p) -> py::object {
                               if (!p.plan->info.mrope) return py::none();
                               const auto& s = p.plan->info.mrope->section;
                               return py::make_tuple(s[0], s[1], s[2]);
                             })
      .def_property_readonly("pair_axis",
                             [](const Plan& p) {
                               return std::vector<int>(p.plan->pair_axis.begin(),
                                                       p.plan->pair_axis.end());
                             })
      .def_property_readonly("numerics",
                             [](const Plan& p) {
                               return py::make_tuple(p.angles == rk::AngleMode::kHf     ? "hf"
                                                     : p.angles == rk::AngleMode::kGgml ? "ggml"
                                                                                        : "exact",
                                                     p.rounding == rk::Rounding::kTransformers
                                                         ? "transformers"
                                                         : "single");
                             })
      .def("with_inv_freq",
           [](const Plan& p, py::handle inv) {
             Array a = acquire_array(inv.ptr(), "inv_freq", false);
             if (a.elem != Elem::kF32 || a.ndim != 1 ||
                 a.shape[0] != static_cast<std::int64_t>(p.plan->inv_freq.size()))
               throw py::value_error("inv_freq: expected a float32 array of " +
                                     std::to_string(p.plan->inv_freq.size()) + " values, got " +
                                     ropekit_py::elem_name(a.elem) + " " + a.shape_str());
             rk::FrequencyPlan fp = *p.plan;
             for (std::int64_t i = 0; i < a.shape[0]; ++i)
               fp.inv_freq[static_cast<std::size_t>(i)] =
                   static_cast<const float*>(a.data)[i * a.strides[0]];
             auto out = std::make_shared<Plan>(p);
             out->plan = std::make_shared<const rk::FrequencyPlan>(std::move(fp));
             out->cache.reset();
             return out;
           })
      .def("reserve_table",
           [](Plan& p, std::int64_t n, bool hf, bool fold) {
             if (!p.cache ||
                 !p.cache->matches(*p.plan, hf ? rk::AngleMode::kHf : rk::AngleMode::kExact, fold))
               p.cache = std::make_shared<rk::CosSinCache>(
                   *p.plan, hf ? rk::AngleMode::kHf : rk::AngleMode::kExact, fold);
             py::gil_scoped_release nogil;
             p.cache->reserve(n);
           })
      // apply(q, out, k, k_out, positions, offsets, indptr, layout, angles, rounding, inverse,
      //       fold, threads, backend, pair_layout, stores) -> the attention factor not applied
      .def("apply",
           [](const Plan& p, py::handle q, py::handle q_out, py::handle k, py::handle k_out,
              py::handle positions, py::handle offsets, py::handle indptr, int layout, int angles,
              int rounding, bool inverse, bool fold, int threads, int backend,
              const std::string& pair_layout, int stores) {
             const CallOptions c = call_options(layout, angles, rounding, inverse, fold, threads,
                                                backend, pair_layout, stores);
             return run_apply(*p.plan, apply_options(p, c), q, q_out, k, k_out, positions, offsets,
                              indptr, layout);
           })
      // The decode fast path (Rope.apply with only q, k, an int offset and inplace=True):
      // the plan's default options, fewer arguments to convert.
      .def("apply_inplace",
           [](const Plan& p, py::handle q, py::handle k, py::handle positions) {
             Call c;
             acquire_call(c, q, py::none(), k, py::none(), kAuto);
             make_positions(c.pa, positions, py::none(), py::none(), *p.plan, c.qv.batch,
                            c.qv.tokens);
             return execute(c, *p.plan, apply_options(p, CallOptions{}));
           })
      .def("cos_sin", [](const Plan& p, py::handle positions, py::handle offsets, py::handle indptr,
                         std::int64_t batch, std::int64_t seq, int angles, bool fold) {
        const CallOptions c = call_options(kTHD, angles, -1, false, fold, 0, 0, "");
        return cos_sin_tables(p, c, positions, offsets, indptr, batch, seq);
      });

  // For python/bench/bench_python.py: the same call through the C++ API, `calls` times, on
  // views prepared once (what a C++ caller does), GIL released; returns microseconds per call.
  m.def("_time_cpp_apply", [](const Plan& p, py::handle q, py::handle q_out, py::handle k,
                              py::handle k_out, std::int64_t offset, int layout, int calls) {
    Call c;
    acquire_call(c, q, q_out, k, k_out, layout);
    const rk::Positions pos = rk::Positions::offset(offset);
    const rk::ApplyOptions o = apply_options(p, CallOptions{});
    py::gil_scoped_release nogil;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) rk::apply_rope(*p.plan, c.qv, c.qov, c.kv, c.kov, pos, o);
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / std::max(calls, 1);
  });
  m.def("apply_with_table", &apply_with_table,
        "apply_with_table(cos, sin, q, q_out, k, k_out, positions, offsets, indptr, layout, "
        "neox, rounding, inverse, threads, backend)");

  py::class_<Layer, std::shared_ptr<Layer>>(m, "Layer")
      .def_property_readonly("name", [](const Layer& l) { return l.config.layer_type; })
      .def_property_readonly("model_type", [](const Layer& l) { return l.config.model_type; })
      .def_property_readonly("rope_type",
                             [](const Layer& l) { return rk::scaling_type_name(l.config.scaling); })
      .def_property_readonly("rope_theta", [](const Layer& l) { return l.config.rope_theta; })
      .def_property_readonly("head_dim", [](const Layer& l) { return l.config.head_dim; })
      .def_property_readonly("rotary_dim", [](const Layer& l) { return l.config.rotary_dim; })
      .def_property_readonly("partial_rotary_factor",
                             [](const Layer& l) { return l.config.partial_rotary_factor; })
      .def_property_readonly("max_position_embeddings",
                             [](const Layer& l) { return l.config.max_position_embeddings; })
      .def_property_readonly("layout", [](const Layer& l) { return layout_name(l.config.layout); })
      .def_property_readonly("mrope_section",
                             [](const Layer& l) -> py::object {
                               if (!l.config.mrope) return py::none();
                               const auto& s = l.config.mrope->section;
                               return py::make_tuple(s[0], s[1], s[2]);
                             })
      .def("plan",
           [](const Layer& l, std::optional<std::int64_t> seq_len, const std::string& numerics) {
             const Numerics n = numerics_preset(numerics);
             return make_plan(rk::build_frequency_plan(l.config, seq_len, n.policy, n.arithmetic),
                              n);
           })
      .def("state", [](const Layer& l, const std::string& numerics) {
        auto s = std::make_shared<State>();
        s->numerics = numerics_preset(numerics);
        s->state =
            std::make_unique<rk::RopeState>(l.config, s->numerics.policy, s->numerics.arithmetic);
        return s;
      });

  py::class_<State, std::shared_ptr<State>>(m, "State")
      .def("plan_for", [](State& s, std::int64_t seq_len) {
        const rk::FrequencyPlan& fp = s.state->plan_for(seq_len);
        if (!s.last || s.last->plan->inv_freq != fp.inv_freq ||
            s.last->plan->attention_factor != fp.attention_factor)
          s.last = make_plan(fp, s.numerics);
        return s.last;
      });

  auto load = [](rk::ModelRope model) {
    py::dict d;
    py::list layers, warnings;
    for (auto& c : model.layers) layers.append(std::make_shared<Layer>(Layer{c}));
    for (auto& w : model.warnings) warnings.append(py::make_tuple(w.path, w.message));
    d["model_type"] = model.model_type;
    d["layers"] = layers;
    d["warnings"] = warnings;
    d["layer_types"] = model.layer_types;
    d["layer_uses_rope"] =
        std::vector<bool>(model.layer_uses_rope.begin(), model.layer_uses_rope.end());
    d["query_scale"] = py::none();
    if (model.query_scale) {
      py::dict q;
      q["floor_scale"] = model.query_scale->floor_scale;
      q["attn_scale"] = model.query_scale->attn_scale;
      q["position_offset"] = model.query_scale->position_offset;
      q["scale_in_query_dtype"] = model.query_scale->scale_in_query_dtype;
      q["layers"] =
          std::vector<bool>(model.layer_scales_queries.begin(), model.layer_scales_queries.end());
      d["query_scale"] = q;
    }
    return d;
  };
  m.def("parse_config", [load](const std::string& text, bool strict) {
    rk::ParseOptions o;
    o.strict = strict;
    return load(rk::parse_hf_config(text, o));
  });
  m.def("load_config", [load](const std::string& path, bool strict) {
    rk::ParseOptions o;
    o.strict = strict;
    return load(rk::load_hf_config(path, o));
  });
  m.def("supported_rope_types", &rk::supported_rope_types);
  // query_position_scales(floor_scale, attn_scale, position_offset, positions) -> float32 scales
  // (ropekit/query_scale.h), one per position.
  m.def("query_position_scales",
        [](double floor_scale, double attn_scale, int offset,
           const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& pos) {
          const rk::QueryPositionScale s{floor_scale, attn_scale, offset};
          py::array_t<float> out(pos.size());
          float* o = out.mutable_data();
          const std::int64_t* p = pos.data();
          for (py::ssize_t i = 0; i < pos.size(); ++i) o[i] = rk::query_position_scale(s, p[i]);
          return out;
        });

  py::class_<rk::MlxRope>(m, "MlxRope")
      .def_readonly("class_name", &rk::MlxRope::class_name)
      .def_readonly("rope_type", &rk::MlxRope::rope_type)
      .def_readonly("dims", &rk::MlxRope::dims)
      .def_readonly("traditional", &rk::MlxRope::traditional)
      .def_readonly("base", &rk::MlxRope::base)
      .def_readonly("scale", &rk::MlxRope::scale)
      .def_property_readonly("freqs", [](const rk::MlxRope& r) { return float_array(r.freqs); })
      .def_readonly("input_prescale", &rk::MlxRope::input_prescale)
      .def_readonly("dynamic", &rk::MlxRope::dynamic)
      .def_readonly("max_position_embeddings", &rk::MlxRope::max_position_embeddings)
      .def("plan_for_call",
           [](const rk::MlxRope& r, std::int64_t seq, std::int64_t offset, int head_dim) {
             Numerics n = numerics_preset("mlx-lm");
             auto p = make_plan(r.plan_for_call(seq, offset, head_dim), n);
             p->position_scale = r.scale;
             return p;
           });
  m.def("initialize_rope",
        [](int dims, double base, bool traditional, const std::string& scaling_json,
           std::optional<std::int64_t> max_pos) {
          return rk::initialize_rope(dims, base, traditional, scaling_json, max_pos);
        });
}
