"""torch through DLPack and the adapter ropekit.torch: zero-copy apply on tensors (f32, bf16,
every layout, strided views, in place keeps the data pointer), the drop-ins against pure-torch
versions of each peer's formula written here (float32 within 2e-5, bf16 within one bf16 ulp),
the rotary-embedding module, and autograd (backward = the explicit transposed rotation, and a
finite-difference check)."""
import numpy as np
import pytest
import torch

import ropekit
import ropekit.torch as rt
from conftest import config_path


@pytest.fixture(scope="module")
def llama():
    return ropekit.load("llama-3.1-8b-instruct").default


def randn(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(dtype)


def bf16_ulp(t):
    v = t.abs().double()
    e = torch.floor(torch.log2(torch.where(v == 0, torch.ones_like(v), v)))
    e = torch.where((v == 0) | (e < -126), torch.full_like(e, -126), e)
    return torch.pow(2.0, e - 7)


def within_bf16_ulp(got, want):
    return ((got.double() - want.double()).abs() / bf16_ulp(want)).max().item() <= 1.0


# ---- the core API on tensors -------------------------------------------------------------------
def test_tensor_apply_matches_numpy_and_is_zero_copy(llama):
    q = randn(6, 4, 128)
    want = llama.apply(q.numpy(), positions=3)
    got = llama.apply(q, positions=3)
    assert isinstance(got, torch.Tensor) and np.array_equal(got.numpy(), want)
    ptr = q.data_ptr()
    r = llama.apply(q, positions=3, inplace=True)
    assert r is q and q.data_ptr() == ptr and np.array_equal(q.numpy(), want)


def test_tensor_bf16_and_f16(llama):
    q = randn(5, 2, 128, dtype=torch.bfloat16)
    got = llama.apply(q, positions=7)
    assert got.dtype == torch.bfloat16
    bits = q.view(torch.int16).numpy().view(np.uint16)
    want = llama.apply(bits, positions=7)  # NumPy: bf16 bits in uint16
    assert np.array_equal(got.view(torch.int16).numpy().view(np.uint16), want)
    h = llama.apply(q.to(torch.float16), positions=7)
    assert h.dtype == torch.float16


def test_tensor_layouts_and_views(llama):
    B, S, H, D = 2, 5, 4, 128
    x = randn(B, S, H, D)
    want = torch.stack([llama.apply(x[b], positions=4) for b in range(B)])
    assert torch.equal(llama.apply(x, positions=4, layout="bshd"), want)
    xt = x.transpose(1, 2)  # [B, H, S, D] view of bshd storage
    assert torch.equal(llama.apply(xt, positions=4, layout="bhsd").transpose(1, 2), want)
    assert torch.equal(llama.apply(xt.contiguous(), positions=4, layout="bhsd").transpose(1, 2),
                       want)
    # in place on the transposed view
    y = x.clone()
    llama.apply(y.transpose(1, 2), positions=4, layout="bhsd", inplace=True)
    assert torch.equal(y, want)
    # q and k with different head counts, positions as a tensor
    k = randn(B, S, 2, D, seed=1)
    pos = torch.arange(S, dtype=torch.int32) + 4
    qo, ko = llama.apply(x, k, positions=pos.repeat(B), layout="bshd")
    assert torch.equal(qo, want)
    assert torch.equal(ko, torch.stack([llama.apply(k[b], positions=4) for b in range(B)]))


# ---- transformers / Liger drop-in -----------------------------------------------------------------
def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def hf_apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    """transformers' formula (modeling_llama.apply_rotary_pos_emb), in the inputs' dtype."""
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def hf_cos_sin(inv_freq, position_ids, dtype, scaling=1.0):
    """transformers' LlamaRotaryEmbedding.forward (float32 angles)."""
    inv = torch.from_numpy(inv_freq).float()[None, :, None].expand(position_ids.shape[0], -1, 1)
    freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * scaling).to(dtype), (emb.sin() * scaling).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("unsqueeze_dim", [1, 2])
def test_apply_rotary_pos_emb_matches_transformers(llama, dtype, unsqueeze_dim):
    B, H, Hk, S, D = 2, 4, 2, 7, 128
    pos = torch.stack([torch.arange(S) + 3, torch.arange(S) * 1000])
    cos, sin = hf_cos_sin(llama.inv_freq, pos, dtype)
    if unsqueeze_dim == 1:
        q, k = randn(B, H, S, D, dtype=dtype), randn(B, Hk, S, D, dtype=dtype, seed=1)
    else:
        q, k = randn(B, S, H, D, dtype=dtype), randn(B, S, Hk, D, dtype=dtype, seed=1)
    wq, wk = hf_apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim)
    gq, gk = rt.apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=unsqueeze_dim)
    lq, lk = rt.liger_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=unsqueeze_dim)
    assert gq.dtype == dtype and gq.shape == q.shape
    assert torch.equal(gq, lq) and torch.equal(gk, lk)
    if dtype == torch.float32:
        assert (gq - wq).abs().max().item() <= 2e-5 and (gk - wk).abs().max().item() <= 2e-5
    else:
        assert within_bf16_ulp(gq, wq) and within_bf16_ulp(gk, wk)
    # a [seq, dim] table shared by the batch
    c1, s1 = cos[0], sin[0]
    wq1, _ = hf_apply_rotary_pos_emb(q, k, c1[None], s1[None], unsqueeze_dim)
    gq1, _ = rt.apply_rotary_pos_emb(q, k, c1, s1, unsqueeze_dim=unsqueeze_dim)
    if dtype == torch.float32:
        assert (gq1 - wq1).abs().max().item() <= 2e-5
    else:
        assert within_bf16_ulp(gq1, wq1)


def test_apply_rotary_pos_emb_autograd_matches_torch(llama):
    B, H, S, D = 1, 2, 5, 128
    cos, sin = hf_cos_sin(llama.inv_freq, torch.arange(S)[None] * 37, torch.float32)
    q = randn(B, H, S, D).requires_grad_()
    k = randn(B, H, S, D, seed=2).requires_grad_()
    q2, k2 = q.detach().clone().requires_grad_(), k.detach().clone().requires_grad_()
    w = randn(B, H, S, D, seed=3)
    gq, gk = rt.apply_rotary_pos_emb(q, k, cos, sin)
    ((gq * w).sum() + (gk * w).sum()).backward()
    wq, wk = hf_apply_rotary_pos_emb(q2, k2, cos, sin)
    ((wq * w).sum() + (wk * w).sum()).backward()
    assert (q.grad - q2.grad).abs().max().item() <= 2e-5
    assert (k.grad - k2.grad).abs().max().item() <= 2e-5


# ---- FlashInfer / vLLM drop-in ------------------------------------------------------------------
def flashinfer_reference(positions, query, key, head_size, cache, is_neox):
    """FlashInfer's / vLLM's forward_native formula, f32 math, cast to the input dtype."""
    def rot(x):
        n = x.shape[0]
        x = x.view(n, -1, head_size)
        cs = cache[positions.long()]
        r = cache.shape[-1]
        cos, sin = cs[:, None, : r // 2], cs[:, None, r // 2:]
        xr, xp = x[..., :r].float(), x[..., r:]
        if is_neox:
            x1, x2 = xr[..., : r // 2], xr[..., r // 2:]
            o = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        else:
            x1, x2 = xr[..., 0::2], xr[..., 1::2]
            o = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
        return torch.cat((o.to(x.dtype), xp), dim=-1).view(n, -1)
    return rot(query), rot(key)


def vllm_cache(max_pos, rotary_dim, base=10000.0):
    inv = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float) / rotary_dim))
    freqs = torch.einsum("i,j->ij", torch.arange(max_pos, dtype=torch.float), inv)
    return torch.cat((freqs.cos(), freqs.sin()), dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("is_neox", [True, False])
def test_apply_rope_with_cos_sin_cache_matches_flashinfer(dtype, is_neox):
    T, Hq, Hk, D, R = 9, 4, 2, 128, 64  # partial rotary: 64 of 128
    cache = vllm_cache(4096, R)
    positions = torch.tensor([0, 1, 2, 100, 4095, 7, 7, 3000, 5])
    query = randn(T, Hq * D, dtype=dtype)
    key = randn(T, Hk * D, dtype=dtype, seed=1)
    wq, wk = flashinfer_reference(positions, query, key, D, cache, is_neox)
    gq, gk = rt.apply_rope_with_cos_sin_cache(positions, query, key, D, cache, is_neox)
    assert gq.shape == query.shape and gq.dtype == dtype
    if dtype == torch.float32:
        assert (gq - wq).abs().max().item() <= 2e-5 and (gk - wk).abs().max().item() <= 2e-5
    else:
        assert within_bf16_ulp(gq, wq) and within_bf16_ulp(gk, wk)
    q2, k2 = query.clone(), key.clone()
    ptr = q2.data_ptr()
    assert rt.apply_rope_with_cos_sin_cache_inplace(positions, q2, k2, D, cache, is_neox) is None
    assert q2.data_ptr() == ptr and torch.equal(q2, gq) and torch.equal(k2, gk)


def test_flashinfer_dropin_errors():
    cache = vllm_cache(16, 64)
    q = randn(2, 128)
    with pytest.raises(TypeError, match="cos_sin_cache"):
        rt.apply_rope_with_cos_sin_cache(torch.tensor([0, 1]), q, q.clone(), 64,
                                         cache.double(), True)
    with pytest.raises(ValueError, match="positions"):
        rt.apply_rope_with_cos_sin_cache(torch.tensor([0, 16]), q, q.clone(), 64, cache, True)


# ---- the rotary-embedding module -------------------------------------------------------------------
def test_rotary_embedding_module_exact_angles(llama):
    mod = rt.RotaryEmbedding("llama-3.1-8b-instruct")
    x = randn(2, 3, 4, dtype=torch.bfloat16)
    pos = torch.stack([torch.arange(6), torch.arange(6) + 131000])
    cos, sin = mod(x, pos)
    assert cos.shape == (2, 6, 128) and cos.dtype == torch.bfloat16
    c32, s32 = mod(x.float(), pos)
    th = pos[..., None].double() * torch.from_numpy(llama.inv_freq).double()
    want = torch.cat((th.cos(), th.cos()), dim=-1)
    assert (c32.double() - want).abs().max().item() < 1e-6
    assert torch.equal(mod.inv_freq, torch.from_numpy(llama.inv_freq))
    # what the module returns plugs into the drop-in
    q = randn(2, 4, 6, 128)
    gq, _ = rt.apply_rotary_pos_emb(q, None, c32, s32)
    want_q = torch.stack([llama.apply(q[b].transpose(0, 1), positions=pos[b]).transpose(0, 1)
                          for b in range(2)])
    assert (gq - want_q).abs().max().item() < 2e-5


def test_rotary_embedding_module_dynamic_and_yarn():
    dyn = rt.RotaryEmbedding(str(config_path("internlm2.5-7b-dynamic")))
    mp = dyn.rope.max_position_embeddings
    x = randn(1, 1, 1)
    short = dyn(x, torch.arange(4)[None])[0]
    long = dyn(x, torch.arange(4)[None] + 2 * mp)[0]
    assert short.shape == long.shape
    back = dyn(x, torch.arange(4)[None])[0]
    assert torch.equal(short, back)
    yarn = rt.RotaryEmbedding(str(config_path("qwen2.5-7b-instruct-yarn")))
    c, _ = yarn(x, torch.zeros(1, 1, dtype=torch.int64))
    assert c[0, 0, 0].item() == pytest.approx(yarn.attention_scaling, rel=1e-6)


# ---- autograd ----------------------------------------------------------------------------------------
def explicit_transposed_rotation(w, rope, positions):
    """dx = A·R(p)ᵀ w, written out per pair in float64 (half layout)."""
    inv = torch.from_numpy(rope.inv_freq).double()
    n = inv.shape[0]
    th = positions.double()[:, None] * inv[None, :]
    c = (th.cos() * rope.attention_factor)[:, None, :]
    s = (th.sin() * rope.attention_factor)[:, None, :]
    w = w.double()
    a, b = w[..., :n], w[..., n:2 * n]
    out = w.clone()
    out[..., :n] = a * c + b * s
    out[..., n:2 * n] = b * c - a * s
    return out


@pytest.mark.parametrize("name", ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct-yarn"])
def test_autograd_backward_is_transposed_rotation(name):
    rope = ropekit.load(str(config_path(name))).default
    T, H, D = 6, 3, rope.head_dim
    pos = torch.tensor([0, 1, 5, 4095, 70000, 131071])
    x = randn(T, H, D).requires_grad_()
    w = randn(T, H, D, seed=4)
    y = rt.rotate(x, rope, pos)
    assert torch.equal(y.detach(), rope.apply(x.detach(), positions=pos))
    (y * w).sum().backward()
    want = explicit_transposed_rotation(w, rope, pos)
    assert (x.grad.double() - want).abs().max().item() <= 2e-5


@pytest.mark.parametrize("layout", [None, "interleaved", "interleaved_to_half"])
def test_autograd_finite_differences(layout):
    rope = ropekit.load(str(config_path("phi-2"))).default  # partial rotary
    T, H, D = 4, 2, rope.head_dim
    pos = torch.tensor([3, 0, 900, 17])
    x = randn(T, H, D).requires_grad_()
    v = randn(T, H, D, seed=5)
    w = randn(T, H, D, seed=6)
    y = rt.rotate(x, rope, pos, pair_layout=layout)
    (y * w).sum().backward()
    eps = 1e-2

    def f(z):
        return (rt.rotate(z, rope, pos, pair_layout=layout).double() * w.double()).sum()
    with torch.no_grad():
        fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    assert abs(fd.item() - (x.grad.double() * v.double()).sum().item()) <= 1e-3 * (1 + abs(fd))


def test_autograd_two_tensors_and_batch(llama):
    B, S, H, D = 2, 3, 2, 128
    q = randn(B, S, H, D).requires_grad_()
    k = randn(B, S, 1, D, seed=1).requires_grad_()
    qo, ko = rt.apply(q, k, llama, offsets=[5, 9], layout="bshd")
    (qo.sum() + ko.sum()).backward()
    back = llama.apply(torch.ones(B, S, H, D), offsets=[5, 9], layout="bshd", inverse=True)
    assert torch.allclose(q.grad, back, atol=1e-6)


def test_torch_errors(llama):
    q = randn(3, 2, 128)
    with pytest.raises(TypeError, match="q"):
        llama.apply(q.double(), positions=0)
    with pytest.raises(TypeError, match="positions"):
        llama.apply(q, positions=torch.zeros(3))
    meta = torch.empty(3, 2, 128, device="meta")
    with pytest.raises(ValueError):
        llama.apply(meta, positions=0)
    with pytest.raises(ValueError, match="CPU"):
        rt.rotate(meta, llama, 0)


def test_rotary_embedding_mrope_rows_with_batch():
    name = "qwen2-vl-7b-instruct"
    emb = rt.RotaryEmbedding(str(config_path(name)))
    rope = emb.rope
    rows = torch.tensor([[0, 1, 2, 3, 3], [0, 1, 2, 3, 4], [0, 1, 2, 5, 3]])
    pid = torch.stack([rows, rows + 10], dim=1)  # [3, batch=2, seq=5]
    cos, sin = emb(torch.zeros(1), pid)
    assert cos.shape == (2, 5, rope.rotary_dim)
    c0, s0 = rope.cos_sin(rows.numpy())
    c1, _ = rope.cos_sin((rows + 10).numpy())
    assert np.array_equal(cos[0].numpy(), c0) and np.array_equal(cos[1].numpy(), c1)
    assert np.array_equal(sin[0].numpy(), s0)


def test_in_place_on_a_tensor_requiring_grad_is_refused(llama):
    x = randn(2, 2, 128).requires_grad_()
    with pytest.raises(ValueError, match="grad"):
        llama.apply(x, positions=0, inplace=True)
    with pytest.raises(ValueError, match="grad"):
        llama.apply(x.detach().clone(), x, positions=0, inplace=True)
    assert llama.apply(x, positions=0).shape == x.shape  # out of place reads it: fine
