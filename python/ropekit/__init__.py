"""ropekit: rotary positional embeddings (RoPE) for LLMs, on NumPy arrays and torch tensors.

Load a model's RoPE (a config.json path, a dict, or a built-in model name), then rotate
queries and keys in place or into new arrays, zero-copy, with the C++ library's kernels:

    import ropekit
    model = ropekit.load("llama-3.1-8b-instruct")
    rope = model.default                       # or model["full_attention"], ...
    rope.apply(q, k, positions=0, inplace=True)  # q: [tokens, heads, head_dim]

NumPy arrays come in through the buffer protocol, torch tensors (CPU) through DLPack; this
package never imports torch (``ropekit.torch`` is the torch adapter). See docs/python.md.
"""
from __future__ import annotations

import json as _json
import os as _os

import numpy as _np

from . import _ropekit
from ._ropekit import Plan, State  # noqa: F401  (public: returned by Rope.plan / Rope.state)

__all__ = [
    "ConfigError", "ConfigWarning", "Model", "Rope", "Plan", "MlxRoPE", "load", "builtin_models",
    "apply", "cos_sin",
    "initialize_rope", "apply_with_cos_sin_cache", "set_threads", "get_threads",
    "supported_rope_types",
]

__version__ = _ropekit.__version__

#: A config that cannot give a correct rotation (a ValueError); ``.path`` is the JSON path.
ConfigError = _ropekit.ConfigError
ConfigError.__module__ = "ropekit"

_LAYOUTS = {None: 0, "thd": 1, "shd": 1, "hsd": 2, "bshd": 3, "bhsd": 4}
_ANGLES = {None: -1, "exact": 0, "hf": 1}
_ROUNDING = {None: -1, "single": 0, "transformers": 1}
_BACKENDS = {"auto": 0, "reference": 1, "simd": 2}
_STORES = {"auto": 0, "regular": 1, "non_temporal": 2}  # ApplyOptions::output_stores


def _code(table, value, name):
    try:
        return table[value]
    except (KeyError, TypeError):
        names = ", ".join(repr(k) for k in table if k is not None)
        raise ValueError(f"{name}: expected one of {names}, got {value!r}") from None


def set_threads(n: int) -> None:
    """Sets the size of the library's thread pool (the calling thread counts as one)."""
    _ropekit.set_threads(int(n))


def get_threads() -> int:
    """The size of the library's thread pool."""
    return _ropekit.get_threads()


def supported_rope_types() -> list:
    """The rope_type names ropekit understands (canonical names and aliases)."""
    return list(_ropekit.supported_rope_types())


def _models_dir():
    return _os.path.join(_os.path.dirname(__file__), "models")


def builtin_models() -> list:
    """Names of the built-in model configs (the ones ``ropekit models`` lists)."""
    d = _models_dir()
    if not _os.path.isdir(d):
        return []
    return sorted(f[:-5] for f in _os.listdir(d) if f.endswith(".json") and f != "SOURCES.json")


class ConfigWarning(tuple):
    """A (path, message) pair: what transformers would warn about, and what ropekit does."""

    __slots__ = ()

    def __new__(cls, path, message):
        return super().__new__(cls, (path, message))

    path = property(lambda self: self[0])
    message = property(lambda self: self[1])

    def __repr__(self):
        return f"ConfigWarning(path={self[0]!r}, message={self[1]!r})"


def _empty_like(x, name):
    """A new C-contiguous array/tensor of x's shape, dtype (and device)."""
    if isinstance(x, _np.ndarray):
        return _np.empty(x.shape, x.dtype)
    new_empty = getattr(x, "new_empty", None)  # torch.Tensor (never imported here)
    if new_empty is not None:
        return new_empty(x.shape)
    raise TypeError(f"{name}: expected a NumPy array or a torch tensor to allocate the output "
                    f"like, got {type(x).__name__} (pass out= for other array types)")


def _positions_arg(positions):
    if isinstance(positions, (list, tuple)) and positions and isinstance(positions[0], (list, tuple)):
        return _np.ascontiguousarray(positions, dtype=_np.int64)
    return positions


def load(source, *, strict: bool = False, numerics: str = "exact") -> "Model":
    """Loads a model's RoPE: a config.json path, a dict (a parsed config.json), or a built-in
    model name (``builtin_models()``). ``strict``: warnings become ConfigError. ``numerics``:
    "exact" (default: exact frequencies and angles, one rounding), "transformers" (float32
    frequency arithmetic, float32 angles and bf16 roundings as transformers: bit parity) or
    "mlx-lm" (float32 angles, mlx-lm's sequence-length policy) or "llama.cpp" (ggml's float32
    angles, YaRN ramp and magnitude, computed per call as llama.cpp's CPU kernel does)."""
    _ropekit.check_numerics(numerics)
    if isinstance(source, dict):
        d = _ropekit.parse_config(_json.dumps(source), bool(strict))
    elif isinstance(source, (str, _os.PathLike)):
        s = _os.fspath(source)
        builtin = _os.path.join(_models_dir(), s + ".json")
        if _os.path.exists(s):
            d = _ropekit.load_config(s, bool(strict))
        elif _os.sep not in s and "/" not in s and _os.path.exists(builtin):
            d = _ropekit.load_config(builtin, bool(strict))
        else:
            raise FileNotFoundError(
                f"source: expected a config.json path, a dict or a built-in model name "
                f"({', '.join(builtin_models()[:4])}, ...), got {s!r} (no such file or model)")
    else:
        raise TypeError(f"source: expected a path, a dict or a built-in model name, got "
                        f"{type(source).__name__}")
    return Model(d, numerics)


class Model:
    """A model's RoPE: one Rope per layer type (``default``, or the config's layer types such as
    ``full_attention`` / ``sliding_attention``), and the config's warnings."""

    def __init__(self, d, numerics):
        self.model_type = d["model_type"]
        self.warnings = [ConfigWarning(p, m) for p, m in d["warnings"]]
        self.layer_types = list(d["layer_types"])  # per decoder layer, when the config says
        self.layer_uses_rope = list(d["layer_uses_rope"])
        # Llama 4's attention-temperature tuning: {floor_scale, attn_scale, position_offset,
        # layers (per decoder layer: whether it scales its queries)}, or None.
        self.query_scale = d.get("query_scale")
        self.numerics = numerics
        self.layers = {}
        for layer in d["layers"]:
            warns = [w for w in self.warnings]
            self.layers[layer.name] = Rope(layer, numerics=numerics, warnings=warns)

    @property
    def names(self):
        return list(self.layers)

    def query_scales(self, positions):
        """The per-position query scale (float32, the shape of ``positions``: token indices,
        transformers' ``cache_position``) that the layers listed in ``query_scale["layers"]``
        multiply their queries by: ``1 + attn_scale * ln(1 + floor((p + position_offset) /
        floor_scale))`` (Llama 4's attention-temperature tuning on NoPE layers). Multiply q by
        it in float32 and round once to q's dtype, as transformers does."""
        if self.query_scale is None:
            raise ValueError(f"query_scales: model_type {self.model_type!r} has no query scale")
        q = self.query_scale
        p = _np.asarray(positions, dtype=_np.int64)
        s = _ropekit.query_position_scales(q["floor_scale"], q["attn_scale"],
                                           q["position_offset"], p.reshape(-1))
        return s.reshape(p.shape)

    def __getitem__(self, name):
        if isinstance(name, int):  # decoder layer index
            if not self.layer_types:
                if len(self.layers) == 1:
                    return next(iter(self.layers.values()))
                raise KeyError(f"layer {name}: the config does not list its layers' types")
            name = self.layer_types[name]
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"layer type {name!r}: expected one of {', '.join(self.layers)}") from None

    def __getattr__(self, name):
        layers = self.__dict__.get("layers", {})
        if name in layers:
            return layers[name]
        if name == "default" and len(layers) == 1:
            return next(iter(layers.values()))
        raise AttributeError(f"Model has no layer type {name!r} (layer types: "
                             f"{', '.join(layers)})")

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        return f"<ropekit.Model {self.model_type!r} layers={self.names}>"


class Rope:
    """The RoPE of one layer type: its resolved config, frequency plan and the apply/cos_sin
    calls. Plans for other sequence lengths (dynamic NTK, LongRoPE) are built once and kept."""

    def __init__(self, layer, *, numerics="exact", warnings=()):
        self._layer = layer
        self.numerics = numerics
        self.warnings = list(warnings)
        self._plan0 = layer.plan(None, numerics)
        self._plans = {}

    # ---- the resolved config and plan --------------------------------------------------------
    name = property(lambda self: self._layer.name)
    model_type = property(lambda self: self._layer.model_type)
    rope_type = property(lambda self: self._layer.rope_type)
    rope_theta = property(lambda self: self._layer.rope_theta)
    head_dim = property(lambda self: self._layer.head_dim)
    rotary_dim = property(lambda self: self._layer.rotary_dim)
    partial_rotary_factor = property(lambda self: self._layer.partial_rotary_factor)
    max_position_embeddings = property(lambda self: self._layer.max_position_embeddings)
    layout = property(lambda self: self._layer.layout)
    mrope_section = property(lambda self: self._layer.mrope_section)
    inv_freq = property(lambda self: self._plan0.inv_freq, doc="float32 NumPy array")
    attention_factor = property(lambda self: self._plan0.attention_factor)
    softmax_scale_multiplier = property(lambda self: self._plan0.softmax_scale_multiplier)

    def plan(self, seq_len=None) -> Plan:
        """The frequency plan for a sequence length (None: at initialisation)."""
        if seq_len is None:
            return self._plan0
        p = self._plans.get(seq_len)
        if p is None:
            p = self._plans[seq_len] = self._layer.plan(int(seq_len), self.numerics)
        return p

    def state(self) -> State:
        """transformers' stateful module semantics: ``state.plan_for(seq_len)``."""
        return self._layer.state(self.numerics)

    def reserve(self, positions: int, *, angles=None, fold_attention_factor=True):
        """Precomputes a cos/sin table for positions [0, positions) of the initial plan; calls
        whose positions fall inside it read it instead of computing cos/sin."""
        a = _code(_ANGLES, angles, "angles")
        hf = (a == 1) or (a == -1 and self._plan0.numerics[0] == "hf")
        self._plan0.reserve_table(int(positions), hf, bool(fold_attention_factor))

    # ---- apply ------------------------------------------------------------------------------
    def apply(self, q, k=None, positions=0, *, offsets=None, indptr=None, out=None, k_out=None,
              inplace=False, layout=None, angles=None, rounding=None, inverse=False,
              fold_attention_factor=True, seq_len=None, pair_layout=None, threads=0,
              backend="auto", stores="auto"):
        """Rotates q (and k, which may have another head count) by RoPE.

        Tensors: ``[tokens, heads, head_dim]`` (layout "thd", the default for 3-D), "hsd",
        "bshd" or "bhsd" (4-D tensors need ``layout=``); any strides; float32, float16 or
        bfloat16 (torch bf16, or NumPy uint16 holding bfloat16 bits).
        Positions: an int offset (every sequence of a batch starts there), one position per
        token (int32/int64 array/tensor, ``[tokens]`` or ``[batch, seq]``), M-RoPE rows
        ``[3, tokens]``, or ``offsets`` (one start per sequence) with ``indptr`` for ragged
        batches. ``inplace=True`` writes into q/k; else into ``out``/``k_out`` or new arrays.
        Returns q_out, or (q_out, k_out); with ``fold_attention_factor=False`` the attention
        factor left out of the rotation is appended. ``stores``: "auto" (non-temporal stores
        for an output of 32 MiB or more), "regular" or "non_temporal" (same values)."""
        plan = self._plan0 if seq_len is None else self.plan(seq_len)
        if (inplace is True and positions.__class__ is int and offsets is None and layout is None
                and angles is None and rounding is None and inverse is False
                and fold_attention_factor is True and pair_layout is None and threads == 0
                and backend == "auto" and stores == "auto"):  # decode: no option to translate
            if getattr(q, "requires_grad", False) or getattr(k, "requires_grad", False):
                _no_grad_in_place()
            plan.apply_inplace(q, k, positions)
            return q if k is None else (q, k)
        return _apply(plan, q, k, positions, offsets, indptr, out, k_out, inplace, layout, angles,
                      rounding, inverse, fold_attention_factor, pair_layout, threads, backend,
                      stores)

    def apply_(self, q, k=None, positions=0):
        """``apply(q, k, positions, inplace=True)`` with the model's default options and the
        least per-call overhead (decode loops): rotates q (and k) in place and returns them.
        positions: as for ``apply`` (an int offset, or one position per token)."""
        if getattr(q, "requires_grad", False) or getattr(k, "requires_grad", False):
            _no_grad_in_place()
        self._plan0.apply_inplace(q, k, positions)
        return q if k is None else (q, k)

    def cos_sin(self, positions, *, format="full", offsets=None, indptr=None, count=None,
                angles=None, fold_attention_factor=True, seq_len=None):
        """The cos and sin tables (float32 NumPy) the kernels use for these positions.

        format "full": ``[..., rotary_dim]`` as transformers' rotary embedding returns them
        (``cat(c, c)``, for every pair layout: transformers permutes q/k instead); "half":
        ``[..., rotary_dim / 2]`` as flash-attn's ``rotary_emb`` takes them. positions: an
        int array ``[tokens]`` / ``[batch, seq]``, M-RoPE rows ``[3, tokens]``, or an int
        offset with ``count`` tokens."""
        plan = self._plan0 if seq_len is None else self.plan(seq_len)
        return _cos_sin(plan, positions, format, offsets, indptr, count, angles,
                        fold_attention_factor)

    def __repr__(self):
        return (f"<ropekit.Rope {self.name!r} {self.rope_type} head_dim={self.head_dim} "
                f"rotary_dim={self.rotary_dim} layout={self.layout}>")


def _no_grad_in_place():
    raise ValueError("q: expected tensors that do not require grad for an in-place rotation "
                     "(autograd cannot see it; use ropekit.torch.rotate / apply, or .detach())")


def _apply(plan, q, k, positions, offsets, indptr, out, k_out, inplace, layout, angles, rounding,
           inverse, fold, pair_layout, threads, backend, stores="auto"):
    if inplace:
        if out is not None or k_out is not None:
            raise ValueError("out: expected no output arrays with inplace=True")
        if getattr(q, "requires_grad", False) or getattr(k, "requires_grad", False):
            _no_grad_in_place()
        q_out, kk_out = None, None
    else:
        q_out = _empty_like(q, "q") if out is None else out
        kk_out = None if k is None else (_empty_like(k, "k") if k_out is None else k_out)
        if k is None and k_out is not None:
            raise ValueError("k_out: expected None when k is None")
    if positions.__class__ is not int:
        positions = _positions_arg(positions)
    factor = plan.apply(q, q_out, k, kk_out, positions, offsets, indptr,
                        _code(_LAYOUTS, layout, "layout"), _code(_ANGLES, angles, "angles"), _code(_ROUNDING, rounding, "rounding"),
                        bool(inverse), bool(fold), int(threads), _code(_BACKENDS, backend, "backend"),
                        pair_layout or "", _code(_STORES, stores, "stores"))
    qo = q if inplace else q_out
    if k is None:
        return qo if fold else (qo, factor)
    ko = k if inplace else kk_out
    return (qo, ko) if fold else (qo, ko, factor)


def _shape_of(positions):
    shape = getattr(positions, "shape", None)
    if shape is None:
        positions = _np.asarray(positions, dtype=_np.int64)
        shape = positions.shape
    return positions, tuple(shape)


def _cos_sin(plan, positions, format, offsets, indptr, count, angles, fold):
    if format not in ("full", "half"):
        raise ValueError(f"format: expected 'full' or 'half', got {format!r}")
    if isinstance(positions, int):
        if count is None:
            raise ValueError("count: expected the number of tokens with an int offset")
        lead, batch, seq = (int(count),), 1, int(count)
    else:
        positions, shape = _shape_of(positions)
        mrope = plan.mrope_section is not None and len(shape) >= 2 and shape[0] == 3
        if mrope:
            lead = tuple(shape[1:])
            n = 1
            for s in lead:
                n *= s
            if len(shape) > 2:
                positions = positions.reshape(3, n)
            batch, seq = 1, n
        elif len(shape) == 1:
            lead, batch, seq = shape, 1, shape[0]
        elif len(shape) == 2:
            lead, batch, seq = shape, shape[0], shape[1]
        else:
            raise ValueError(f"positions: expected [tokens], [batch, seq] or [3, tokens], got "
                             f"shape {list(shape)}")
    c, s = plan.cos_sin(positions, offsets, indptr, batch, seq, _code(_ANGLES, angles, "angles"),
                        bool(fold))
    if format == "full":  # transformers: cat(freqs, freqs), whatever the pair layout
        c, s = _np.concatenate([c, c], axis=-1), _np.concatenate([s, s], axis=-1)
    return c.reshape(lead + (c.shape[-1],)), s.reshape(lead + (s.shape[-1],))


def apply(rope, q, k=None, positions=0, **kwargs):
    """``rope.apply(q, k, positions, **kwargs)`` for a Rope, or the same with a Plan (e.g. one
    from ``Rope.plan(seq_len)`` or ``Plan.with_inv_freq``)."""
    if isinstance(rope, Plan):
        o = dict(offsets=None, indptr=None, out=None, k_out=None, inplace=False, layout=None,
                 angles=None, rounding=None, inverse=False, fold_attention_factor=True,
                 pair_layout=None, threads=0, backend="auto", stores="auto")
        unknown = set(kwargs) - set(o)
        if unknown:
            raise TypeError(f"apply: unexpected keyword arguments {sorted(unknown)}")
        o.update(kwargs)
        return _apply(rope, q, k, positions, o["offsets"], o["indptr"], o["out"], o["k_out"],
                      o["inplace"], o["layout"], o["angles"], o["rounding"], o["inverse"],
                      o["fold_attention_factor"], o["pair_layout"], o["threads"], o["backend"],
                      o["stores"])
    return rope.apply(q, k, positions, **kwargs)


def cos_sin(rope, positions, **kwargs):
    """``rope.cos_sin(positions, **kwargs)`` for a Rope or a Plan."""
    if isinstance(rope, Plan):
        o = dict(format="full", offsets=None, indptr=None, count=None, angles=None,
                 fold_attention_factor=True)
        o.update(kwargs)
        return _cos_sin(rope, positions, o["format"], o["offsets"], o["indptr"], o["count"],
                        o["angles"], o["fold_attention_factor"])
    return rope.cos_sin(positions, **kwargs)


def _split_heads(x, head_size, name):
    """[tokens, heads * head_size] -> [tokens, heads, head_size] as a view (never a copy)."""
    if x.shape[1] % head_size != 0:
        raise ValueError(f"{name}: expected a width that is a multiple of head_size "
                         f"{head_size}, got shape {list(x.shape)}")
    shape = (x.shape[0], x.shape[1] // head_size, head_size)
    if isinstance(x, _np.ndarray):
        v = x.view()
        try:
            v.shape = shape  # raises instead of copying
        except AttributeError:
            raise ValueError(f"{name}: expected heads that can be split without a copy, got "
                             f"strides {x.strides}") from None
        return v
    return x.view(*shape)  # torch: a view, or an error


def apply_with_cos_sin_cache(positions, query, key, cos_sin_cache, *, is_neox=True,
                             head_size=None, inplace=False, layout=None, inverse=False,
                             rounding=None, threads=0, backend="auto"):
    """Rotates with a caller's float32 cos|sin cache ``[max_position, rotary_dim]`` (vLLM /
    FlashInfer: cos in the first half of each row, sin in the second), so ropekit can run where
    an engine already owns the cache. ``query``/``key``: ``[tokens, heads, head_size]`` (or
    ``[tokens, heads * head_size]`` with ``head_size``); the first rotary_dim features of each
    head are rotated, the rest pass through. positions: one int per token (or an offset).
    Returns (query_out, key_out), or the inputs rotated in place with ``inplace=True``."""
    q_shape = query.shape
    k_shape = key.shape if key is not None else None
    if head_size is not None and len(q_shape) == 2:
        query = _split_heads(query, head_size, "query")
        if key is not None:
            key = _split_heads(key, head_size, "key")
    if inplace:
        q_out = k_out = None
    else:
        q_out = _empty_like(query, "query")
        k_out = None if key is None else _empty_like(key, "key")
    if positions.__class__ is not int:
        positions = _positions_arg(positions)
    _ropekit.apply_with_table(cos_sin_cache, None, query, q_out, key, k_out, positions, None,
                              None, _code(_LAYOUTS, layout, "layout"), bool(is_neox),
                              _code(_ROUNDING, rounding, "rounding"), bool(inverse), int(threads),
                              _code(_BACKENDS, backend, "backend"))
    if inplace:
        return None
    q_out = q_out.reshape(q_shape)
    return q_out, (None if key is None else k_out.reshape(k_shape))


class MlxRoPE:
    """What mlx-lm's ``initialize_rope`` returns, applied with ``mx.fast.rope``'s conventions:
    ``rope(x, offset=0)`` with x ``[..., seq, dims]`` (``[batch, heads, seq, dim]``,
    ``[heads, seq, dim]`` or ``[seq, dim]``); offset an int or one per batch entry. Features
    past ``dims`` pass through. Angles are float32 as MLX computes them (``angles="exact"``
    for the true angles)."""

    def __init__(self, r):
        self._r = r
        self._plans = {}

    class_name = property(lambda self: self._r.class_name)
    rope_type = property(lambda self: self._r.rope_type)
    dims = property(lambda self: self._r.dims)
    traditional = property(lambda self: self._r.traditional)
    base = property(lambda self: self._r.base)
    scale = property(lambda self: self._r.scale)
    freqs = property(lambda self: self._r.freqs)
    input_prescale = property(lambda self: self._r.input_prescale)

    def plan(self, seq, offset, head_dim) -> Plan:
        key = (seq, offset, head_dim) if self._r.dynamic else head_dim
        p = self._plans.get(key)
        if p is None:
            p = self._plans[key] = self._r.plan_for_call(int(seq), int(offset), int(head_dim))
        return p

    def __call__(self, x, offset=0, *, out=None, inplace=False, angles="hf", inverse=False):
        nd = len(x.shape)
        if nd not in (2, 3, 4):
            raise ValueError(f"x: expected [..., seq, dims] with 2 to 4 axes, got shape "
                             f"{list(x.shape)}")
        seq, head_dim = x.shape[-2], x.shape[-1]
        if nd == 2:
            x_v = x[None]
            out_v = None if out is None else out[None]
        else:
            x_v, out_v = x, out
        layout = "bhsd" if nd == 4 else "hsd"
        if isinstance(offset, int):
            plan = self.plan(seq, offset, head_dim)
            offsets, positions = None, offset
        else:
            if self._r.dynamic:
                raise ValueError("offset: DynamicNTKScalingRoPE takes one int offset (as mlx-lm)")
            if nd != 4:
                raise ValueError("offset: per-batch offsets need x [batch, heads, seq, dim]")
            plan = self.plan(seq, 0, head_dim)
            offsets, positions = offset, None
        if inplace:
            _apply(plan, x_v, None, positions, offsets, None, None, None, True, layout,
                         angles, None, inverse, True, None, 0, "auto")
            return x
        if out_v is None:
            out = _empty_like(x, "x")
            out_v = out[None] if nd == 2 else out
        _apply(plan, x_v, None, positions, offsets, None, out_v, None, False, layout, angles,
               None, inverse, True, None, 0, "auto")
        return out

    def __repr__(self):
        return f"<ropekit.MlxRoPE {self.class_name} dims={self.dims} traditional={self.traditional}>"


def initialize_rope(dims, base=10000.0, traditional=False, scaling_config=None,
                    max_position_embeddings=None) -> MlxRoPE:
    """mlx-lm's ``initialize_rope(dims, base, traditional, scaling_config,
    max_position_embeddings)`` with its semantics (class choice, defaults, errors)."""
    cfg = "null" if scaling_config is None else _json.dumps(scaling_config)
    mp = None if max_position_embeddings is None else int(max_position_embeddings)
    return MlxRoPE(_ropekit.initialize_rope(int(dims), float(base), bool(traditional), cfg, mp))
