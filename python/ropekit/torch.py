"""ropekit for PyTorch (CPU tensors): autograd, drop-ins and a rotary-embedding module.

Pure Python on top of the extension, which sees tensors only through DLPack (it never links
libtorch). New tensors are allocated here with torch and handed to the kernels as outputs.

- ``rotate(x, rope, positions, ...)``: RoPE as an autograd function (backward: the transposed
  rotation, also a ropekit kernel call).
- ``apply(q, k, rope, positions, ...)``: both at once, with autograd.
- ``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1)``: transformers'
  (and Liger-Kernel's ``liger_rotary_pos_emb``) signature and result.
- ``apply_rope_with_cos_sin_cache(positions, query, key, head_size, cos_sin_cache, is_neox)``:
  FlashInfer's (vLLM's cos|sin cache layout) signature and result; ``..._inplace`` too.
- ``RotaryEmbedding``: transformers' rotary-embedding module interface,
  ``forward(x, position_ids) -> (cos, sin)``, with exact angles for any supported config.
"""
from __future__ import annotations

import torch as _torch

import ropekit as _rk
from ropekit import _ropekit

__all__ = ["rotate", "apply", "apply_rotary_pos_emb", "liger_rotary_pos_emb",
           "apply_rope_with_cos_sin_cache", "apply_rope_with_cos_sin_cache_inplace",
           "RotaryEmbedding", "RopeFunction"]


def _check_cpu(t, name):
    if not isinstance(t, _torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name}: expected a CPU tensor (ropekit runs on the CPU), got device "
                         f"{t.device}")


def _to_interleaved(g, rotary_dim):
    """Undoes the interleaved→half output permutation (DeepSeek): half order → pair order."""
    n = rotary_dim // 2
    rot = _torch.stack((g[..., :n], g[..., n:rotary_dim]), dim=-1).flatten(-2)
    return _torch.cat((rot, g[..., rotary_dim:]), dim=-1) if g.shape[-1] > rotary_dim else rot


class RopeFunction(_torch.autograd.Function):
    """y = A·R(p)·x per pair; backward dx = A·R(p)ᵀ·dy (the inverse-direction kernel)."""

    @staticmethod
    def forward(ctx, x, plan, positions, offsets, indptr, layout, angles, rounding, inverse,
                pair_layout):
        out = _torch.empty(x.shape, dtype=x.dtype)
        plan.apply(x.detach(), out, None, None, positions, offsets, indptr, layout, angles,
                   rounding, inverse, True, 0, 0, pair_layout, 0)
        ctx.args = (plan, positions, offsets, indptr, layout, angles, rounding, inverse,
                    pair_layout)
        return out

    @staticmethod
    def backward(ctx, grad):
        plan, positions, offsets, indptr, layout, angles, rounding, inverse, pair_layout = ctx.args
        eff = pair_layout or plan.layout
        g = grad
        if eff == "interleaved_to_half":
            g = _to_interleaved(g, plan.rotary_dim)
            pair_layout = "interleaved"
        dx = _torch.empty(g.shape, dtype=g.dtype)
        plan.apply(g.detach(), dx, None, None, positions, offsets, indptr, layout, angles,
                   rounding, not inverse, True, 0, 0, pair_layout, 0)
        return dx, None, None, None, None, None, None, None, None, None


def _pos(positions):
    if isinstance(positions, int) or positions is None:
        return positions
    if isinstance(positions, _torch.Tensor):
        _check_cpu(positions, "positions")
        return positions.contiguous()
    return _rk._positions_arg(positions)


def rotate(x, rope, positions=0, *, offsets=None, indptr=None, layout=None, angles=None,
           rounding=None, inverse=False, seq_len=None, pair_layout=None):
    """RoPE of one tensor with autograd (a new tensor; the attention factor is folded)."""
    _check_cpu(x, "x")
    plan = rope if isinstance(rope, _ropekit.Plan) else rope.plan(seq_len)
    return RopeFunction.apply(x, plan, _pos(positions), offsets, indptr,
                              _rk._code(_rk._LAYOUTS, layout, "layout"),
                              _rk._code(_rk._ANGLES, angles, "angles"),
                              _rk._code(_rk._ROUNDING, rounding, "rounding"), bool(inverse),
                              pair_layout or "")


def apply(q, k, rope, positions=0, **kwargs):
    """(rotate(q), rotate(k)) with autograd; k may be None."""
    return rotate(q, rope, positions, **kwargs), (None if k is None else
                                                  rotate(k, rope, positions, **kwargs))


# ---- transformers / Liger drop-in ----------------------------------------------------------------
class _TableFunction(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos_h, sin_h, offsets, layout, rounding):
        out = _torch.empty(x.shape, dtype=x.dtype)
        _ropekit.apply_with_table(cos_h, sin_h, x.detach(), out, None, None, None, offsets, None,
                                  layout, True, rounding, False, 0, 0)
        ctx.args = (cos_h, sin_h, offsets, layout, rounding)
        return out

    @staticmethod
    def backward(ctx, grad):
        cos_h, sin_h, offsets, layout, rounding = ctx.args
        dx = _torch.empty(grad.shape, dtype=grad.dtype)
        _ropekit.apply_with_table(cos_h, sin_h, grad.detach(), dx, None, None, None, offsets,
                                  None, layout, True, rounding, True, 0, 0)
        return dx, None, None, None, None, None


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1, *, rounding=None):
    """transformers' ``apply_rotary_pos_emb``: ``q * cos + rotate_half(q) * sin`` (and k), with
    cos/sin ``[batch, seq, head_dim]`` or ``[seq, head_dim]`` as its rotary embedding returns
    them (``cat(freqs, freqs)``), unsqueezed at ``unsqueeze_dim``: 1 for q ``[batch, heads, seq,
    dim]``, 2 for ``[batch, seq, heads, dim]``. Returns new tensors (q_embed, k_embed), with
    autograd to q and k (not to cos/sin). ``rounding``: default "transformers" for bf16/f16
    (its three roundings replayed: bit parity), "single" for float32 (one rounding).
    ``position_ids`` is ignored, as transformers ignores it."""
    del position_ids
    _check_cpu(q, "q")
    _check_cpu(cos, "cos")
    _check_cpu(sin, "sin")
    if q.dim() != 4:
        raise ValueError(f"q: expected a 4-D tensor, got shape {list(q.shape)}")
    if unsqueeze_dim not in (1, 2):
        raise ValueError(f"unsqueeze_dim: expected 1 ([batch, heads, seq, dim]) or 2 ([batch, "
                         f"seq, heads, dim]), got {unsqueeze_dim}")
    layout = 4 if unsqueeze_dim == 1 else 3
    d = q.shape[-1]
    if cos.shape[-1] != d or sin.shape != cos.shape:
        raise ValueError(f"cos: expected cos and sin of width head_dim {d} and equal shapes, got "
                         f"{list(cos.shape)} and {list(sin.shape)}")
    batch = q.shape[0]
    seq = q.shape[2] if unsqueeze_dim == 1 else q.shape[1]
    n = d // 2
    if cos.dim() == 3 and cos.shape[0] == batch and batch > 1:
        offsets = list(range(0, batch * seq, seq))  # row b·seq + s for token s of sequence b
    elif cos.dim() in (2, 3) and (cos.dim() == 2 or cos.shape[0] == 1):
        offsets = None  # one table for every sequence: positions 0 .. seq-1
    else:
        raise ValueError(f"cos: expected [batch, seq, dim] or [seq, dim] for q {list(q.shape)}, got "
                         f"{list(cos.shape)}")
    if cos.shape[-2] != seq:
        raise ValueError(f"cos: expected {seq} positions (q's sequence length), got "
                         f"{cos.shape[-2]}")
    cos_h = cos[..., :n].reshape(-1, n).to(_torch.float32).contiguous()
    sin_h = sin[..., :n].reshape(-1, n).to(_torch.float32).contiguous()
    if rounding is None:
        rounding = "single" if q.dtype == _torch.float32 else "transformers"
    r = _rk._code(_rk._ROUNDING, rounding, "rounding")
    q_embed = _TableFunction.apply(q, cos_h, sin_h, offsets, layout, r)
    k_embed = None
    if k is not None:
        _check_cpu(k, "k")
        k_embed = _TableFunction.apply(k, cos_h, sin_h, offsets, layout, r)
    return q_embed, k_embed


def liger_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
    """Liger-Kernel's ``liger_rotary_pos_emb`` (the same contract as transformers')."""
    return apply_rotary_pos_emb(q, k, cos, sin, position_ids, unsqueeze_dim)


# ---- FlashInfer / vLLM drop-in ---------------------------------------------------------------------
def _check_cache(cos_sin_cache):
    _check_cpu(cos_sin_cache, "cos_sin_cache")
    if cos_sin_cache.dtype != _torch.float32:
        raise TypeError(f"cos_sin_cache: expected float32, got {cos_sin_cache.dtype}")


def apply_rope_with_cos_sin_cache(positions, query, key, head_size, cos_sin_cache, is_neox=True):
    """FlashInfer's ``apply_rope_with_cos_sin_cache``: query ``[nnz, num_q_heads * head_size]``,
    key ``[nnz, num_k_heads * head_size]``, positions ``[nnz]`` int, cos_sin_cache float32
    ``[max_position, rotary_dim]`` (cos | sin). Returns new (query_out, key_out) of the input
    shapes; f32 math, one rounding. ``is_neox``: half-split pairs, else interleaved (GPT-J)."""
    _check_cpu(query, "query")
    _check_cache(cos_sin_cache)
    return _rk.apply_with_cos_sin_cache(_pos(positions), query, key, cos_sin_cache,
                                        is_neox=is_neox, head_size=head_size)


def apply_rope_with_cos_sin_cache_inplace(positions, query, key, head_size, cos_sin_cache,
                                          is_neox=True):
    """The in-place variant (FlashInfer's ``..._inplace``; vLLM's custom op rotates in place)."""
    _check_cpu(query, "query")
    _check_cache(cos_sin_cache)
    q = query.view(query.shape[0], -1, head_size) if query.dim() == 2 else query
    k = None
    if key is not None:
        k = key.view(key.shape[0], -1, head_size) if key.dim() == 2 else key
    _rk.apply_with_cos_sin_cache(_pos(positions), q, k, cos_sin_cache, is_neox=is_neox,
                                 inplace=True)


# ---- transformers' rotary-embedding module -----------------------------------------------------------
class RotaryEmbedding(_torch.nn.Module):
    """transformers' rotary-embedding interface: ``forward(x, position_ids) -> (cos, sin)``,
    each ``[batch, seq, rotary_dim]`` in x's dtype, attention scaling folded in, in the format
    ``apply_rotary_pos_emb`` takes. Angles are exact (the true p·inv_freq, not float32) for any
    config ropekit supports; ``numerics="transformers"`` gives transformers' own values.
    Dynamic NTK and LongRoPE follow transformers' stateful rule (seq_len = max position + 1).
    M-RoPE: position_ids ``[3, batch, seq]`` gives each dim the angle of its own axis (the
    sections already merged, unlike transformers' per-axis ``[3, batch, seq, dim]``)."""

    def __init__(self, config=None, layer_type=None, device=None, *, rope=None,
                 numerics="exact"):
        super().__init__()
        if rope is None:
            model = config if isinstance(config, _rk.Model) else _rk.load(config, numerics=numerics)
            rope = model[layer_type] if layer_type is not None else next(iter(model))
        self.rope = rope
        self.rope_type = rope.rope_type
        self._state = rope.state()
        self._stateful = rope.rope_type in ("dynamic", "longrope")
        self.attention_scaling = rope.attention_factor
        self.register_buffer("inv_freq", _torch.from_numpy(rope.inv_freq.copy()),
                             persistent=False)
        if device is not None and _torch.device(device).type != "cpu":
            raise ValueError(f"device: expected a CPU device, got {device}")

    @_torch.no_grad()
    def forward(self, x, position_ids):
        _check_cpu(position_ids, "position_ids")
        if self._stateful:
            plan = self._state.plan_for(int(position_ids.max()) + 1)
            self.attention_scaling = plan.attention_factor
        else:
            plan = self.rope.plan()
        pos = position_ids.to(_torch.int64).contiguous()
        c, s = _rk._cos_sin(plan, pos, "full", None, None, None, None, True)
        return (_torch.from_numpy(c).to(x.dtype), _torch.from_numpy(s).to(x.dtype))
