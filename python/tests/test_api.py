"""The package API on NumPy arrays: loading (path, dict, built-in name, strict, warnings),
layer objects, every tensor layout and strided views, batches (offsets, per-sequence,
ragged, per-token), M-RoPE rows, dtypes, in place without allocations, out=, cos/sin tables,
the caller's cos|sin cache, threads, mlx-lm's initialize_rope."""
import json
import tracemalloc

import numpy as np
import pytest

import ropekit
from conftest import config_path, from_bf16_bits, to_bf16_bits

RNG = np.random.default_rng(16)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def llama():
    return ropekit.load("llama-3.1-8b-instruct").default


def test_load_path_dict_builtin_agree():
    a = ropekit.load(config_path("llama-3.1-8b-instruct"))
    with open(config_path("llama-3.1-8b-instruct")) as f:
        b = ropekit.load(json.load(f))
    c = ropekit.load("llama-3.1-8b-instruct")
    for m in (a, b, c):
        r = m.default
        assert m.model_type == "llama"
        assert r.rope_type == "llama3" and r.head_dim == 128 and r.rotary_dim == 128
        assert r.layout == "half"
        assert r.inv_freq.dtype == np.float32 and r.inv_freq.shape == (64,)
        assert r.attention_factor == 1.0
    assert np.array_equal(a.default.inv_freq, c.default.inv_freq)
    assert "llama-3.1-8b-instruct" in ropekit.builtin_models()


def test_per_layer_objects_and_warnings():
    m = ropekit.load(config_path("gemma-3-4b-text"))
    assert set(m.names) == {"full_attention", "sliding_attention"}
    assert m.full_attention.rope_type == "linear"
    assert m["sliding_attention"].rope_type == "default"
    assert m.sliding_attention.rope_theta != m.full_attention.rope_theta
    assert isinstance(m.warnings, list)
    with pytest.raises(KeyError, match="full_attention"):
        m["nope"]
    with pytest.raises(AttributeError):
        m.nope
    if m.layer_types:
        assert m[0] is m[m.layer_types[0]]


def test_yarn_factor_and_deepseek_layout():
    ds = ropekit.load(config_path("deepseek-v3")).default
    assert ds.rope_type == "yarn"
    assert ds.layout in ("interleaved", "interleaved_to_half")
    assert ds.attention_factor == pytest.approx(1.0)  # mscale == mscale_all_dim
    assert ds.softmax_scale_multiplier > 1.0


def test_strict_and_config_error_path():
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
           "max_position_embeddings": 4096, "rope_theta": 10000.0,
           "rope_scaling": {"rope_type": "linear", "factor": -2.0}}
    with pytest.raises(ropekit.ConfigError) as e:
        ropekit.load(cfg)
    assert isinstance(e.value, ValueError)
    assert e.value.path.startswith("rope_scaling")
    assert "factor" in e.value.path
    with pytest.raises(FileNotFoundError):
        ropekit.load("no-such-model")
    with pytest.raises(TypeError):
        ropekit.load(42)
    with pytest.raises(ValueError, match="numerics"):
        ropekit.load("llama-3.1-8b-instruct", numerics="fast")


def test_strict_turns_warnings_into_errors():
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
           "max_position_embeddings": 131072, "rope_theta": 500000.0,
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
                            "unknown_key": 1}}
    m = ropekit.load(cfg)
    assert m.warnings and all(isinstance(w.path, str) for w in m.warnings)
    with pytest.raises(ropekit.ConfigError):
        ropekit.load(cfg, strict=True)


def reference_rotation(x, rope, positions):
    """float64 rotation of x [tokens, heads, dim] with the rope's own frequencies."""
    inv = rope.inv_freq.astype(np.float64)
    n = len(inv)
    th = np.asarray(positions, dtype=np.float64)[:, None] * inv[None, :]
    c, s = np.cos(th)[:, None, :], np.sin(th)[:, None, :]
    y = x.astype(np.float64).copy()
    a, b = x[..., :n].astype(np.float64), x[..., n:2 * n].astype(np.float64)
    y[..., :n] = a * c - b * s
    y[..., n:2 * n] = b * c + a * s
    return y


def test_apply_out_of_place_matches_float64(llama):
    q, k = rand(5, 4, 128), rand(5, 2, 128)
    pos = np.array([0, 1, 7, 4095, 100000])
    q0, k0 = q.copy(), k.copy()
    qo, ko = llama.apply(q, k, pos)
    assert np.array_equal(q, q0) and np.array_equal(k, k0)  # inputs untouched
    assert np.abs(qo - reference_rotation(q, llama, pos)).max() < 1e-5
    assert np.abs(ko - reference_rotation(k, llama, pos)).max() < 1e-5
    # an int offset is positions offset .. offset + tokens - 1
    assert np.array_equal(llama.apply(q, positions=3), llama.apply(q, positions=np.arange(3, 8)))
    # int32 positions, lists
    assert np.array_equal(llama.apply(q, positions=pos.astype(np.int32)), qo)
    assert np.array_equal(llama.apply(q, positions=list(pos)), qo)


def test_inplace_keeps_pointer_and_allocates_nothing_large(llama):
    q, k = rand(256, 8, 128), rand(256, 2, 128)
    want_q, want_k = llama.apply(q, k, 11)
    ptr = q.__array_interface__["data"][0]
    llama.apply(q, k, 11, inplace=True)  # warm-up of any lazy state
    q[...] = rand(256, 8, 128)
    q_in = q.copy()
    want_q = llama.apply(q_in, positions=11)
    tracemalloc.start()
    tracemalloc.reset_peak()
    r = llama.apply(q, positions=11, inplace=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert r is q and q.__array_interface__["data"][0] == ptr
    assert peak < q.nbytes // 16, peak
    assert np.array_equal(q, want_q)


def test_out_argument_and_inverse(llama):
    q = rand(6, 3, 128)
    out = np.empty_like(q)
    r = llama.apply(q, positions=5, out=out)
    assert r is out
    back = llama.apply(out, positions=5, inverse=True)
    assert np.abs(back - q).max() < 1e-5


LAYOUTS = {
    "thd": lambda x: x,                                  # [T, H, D]
    "hsd": lambda x: np.ascontiguousarray(x.transpose(1, 0, 2)),
}


def test_every_layout_and_strided_views(llama):
    B, S, H, D = 3, 5, 4, 128
    x = rand(B, S, H, D)  # bshd
    pos = np.arange(S) + 9
    want = np.stack([llama.apply(x[b], positions=9) for b in range(B)])  # per-sequence calls
    # bshd contiguous, one call
    assert np.array_equal(llama.apply(x, positions=9, layout="bshd"), want)
    # bhsd contiguous
    xh = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    got = llama.apply(xh, positions=9, layout="bhsd")
    assert np.array_equal(got.transpose(0, 2, 1, 3), want)
    # bhsd as a strided view of bshd storage (no copy)
    assert np.array_equal(llama.apply(x.transpose(0, 2, 1, 3), positions=9, layout="bhsd")
                          .transpose(0, 2, 1, 3), want)
    # hsd (one sequence, heads first)
    got = llama.apply(np.ascontiguousarray(x[0].transpose(1, 0, 2)), positions=9, layout="hsd")
    assert np.array_equal(got.transpose(1, 0, 2), want[0])
    # a slice of a fused qkv buffer: [T, 3H, D][:, :H]
    qkv = rand(S, 3 * H, D)
    qkv[:, :H] = x[0]
    assert np.array_equal(llama.apply(qkv[:, :H], positions=9), want[0])
    # in place on a strided slice leaves the rest of the buffer alone
    before = qkv.copy()
    llama.apply(qkv[:, :H], positions=9, inplace=True)
    assert np.array_equal(qkv[:, :H], want[0]) and np.array_equal(qkv[:, H:], before[:, H:])
    # reversed / every-other views
    xr = x[0][::-1]
    want_r = llama.apply(np.ascontiguousarray(xr), positions=pos)
    assert np.array_equal(llama.apply(xr, positions=pos), want_r)
    big = rand(S, H, 2 * D)
    assert np.array_equal(llama.apply(big[:, :, ::2], positions=pos),
                          llama.apply(np.ascontiguousarray(big[:, :, ::2]), positions=pos))
    # 4-D needs an explicit layout
    with pytest.raises(ValueError, match="layout"):
        llama.apply(x, positions=0)


def test_batch_positions(llama):
    B, S, H, D = 3, 4, 2, 128
    x = rand(B, S, H, D)
    offs = np.array([0, 100, 7])
    want = np.stack([llama.apply(x[b], positions=int(offs[b])) for b in range(B)])
    assert np.array_equal(llama.apply(x, offsets=offs, layout="bshd"), want)
    ids = offs[:, None] + np.arange(S)[None, :]  # [batch, seq] per token
    assert np.array_equal(llama.apply(x, positions=ids, layout="bshd"), want)
    # ragged (FlashInfer): indptr + offsets over [tokens, heads, dim]
    flat = x.reshape(B * S, H, D)
    indptr = np.array([0, 1, 4, 12])
    roffs = np.array([5, 0, 300])
    got = llama.apply(flat, offsets=roffs, indptr=indptr)
    pos = np.concatenate([np.arange(indptr[i + 1] - indptr[i]) + roffs[i] for i in range(3)])
    assert np.array_equal(got, llama.apply(flat, positions=pos))
    with pytest.raises(ValueError, match="offsets"):
        llama.apply(x, offsets=[1, 2], layout="bshd")
    with pytest.raises(ValueError, match="positions"):
        llama.apply(x, positions=np.arange(5), layout="bshd")


def test_dtypes_f16_and_bf16_bits(llama):
    q = rand(4, 2, 128)
    ref = llama.apply(q, positions=3)
    h = llama.apply(q.astype(np.float16), positions=3)
    assert h.dtype == np.float16 and np.abs(h.astype(np.float32) - ref).max() < 1e-2
    b = llama.apply(to_bf16_bits(q), positions=3)  # NumPy: uint16 holds bfloat16 bits
    assert b.dtype == np.uint16
    assert np.abs(from_bf16_bits(b) - ref).max() < 5e-2
    # mixed: bf16 in, f32 out
    o = np.empty(q.shape, np.float32)
    llama.apply(to_bf16_bits(q), positions=3, out=o)
    assert np.abs(o - ref).max() < 5e-2


def test_attention_factor_folded_or_returned():
    yarn = ropekit.load(config_path("qwen2.5-7b-instruct-yarn")).default
    assert yarn.attention_factor > 1
    q = rand(3, 2, yarn.head_dim)
    folded = yarn.apply(q, positions=0)
    pure, factor = yarn.apply(q, positions=0, fold_attention_factor=False)
    assert factor == pytest.approx(yarn.attention_factor)
    assert np.abs(pure * factor - folded).max() < 1e-5


def test_mrope_rows():
    rope = ropekit.load(config_path("qwen2-vl-7b-instruct")).default
    T = 5
    rows = np.array([[0, 1, 2, 3, 3], [0, 1, 2, 3, 4], [0, 1, 2, 5, 3]], dtype=np.int64)
    q = rand(T, 2, rope.head_dim)
    y = rope.apply(q, positions=rows)
    # text tokens (all rows equal) rotate as 1-D positions
    y1 = rope.apply(q[:3], positions=np.array([0, 1, 2]))
    assert np.array_equal(y[:3], y1)
    c, s = rope.cos_sin(rows)
    assert c.shape == (T, rope.rotary_dim)


def test_cos_sin_formats(llama):
    pos = np.array([0, 1, 5, 131071])
    c, s = llama.cos_sin(pos)
    ch, sh = llama.cos_sin(pos, format="half")
    assert c.shape == (4, 128) and ch.shape == (4, 64) and c.dtype == np.float32
    assert np.array_equal(c[:, :64], ch) and np.array_equal(c[:, 64:], ch)
    th = pos[:, None].astype(np.float64) * llama.inv_freq.astype(np.float64)[None, :]
    assert np.abs(ch - np.cos(th)).max() < 1e-6 and np.abs(sh - np.sin(th)).max() < 1e-6
    c2, _ = llama.cos_sin(3, count=4)
    assert np.array_equal(c2, llama.cos_sin(np.arange(3, 7))[0])
    cb, _ = llama.cos_sin(np.stack([pos, pos + 1]))
    assert cb.shape == (2, 4, 128)


def test_cos_sin_cache_of_caller(llama):
    # a vLLM/FlashInfer cache [max_pos, rotary_dim] = cos | sin, from the rope's own tables
    ch, sh = llama.cos_sin(np.arange(64), format="half")
    cache = np.ascontiguousarray(np.concatenate([ch, sh], axis=1))
    q, k = rand(7, 4, 128), rand(7, 1, 128)
    pos = np.array([3, 0, 63, 9, 9, 1, 2])
    qo, ko = ropekit.apply_with_cos_sin_cache(pos, q, k, cache, is_neox=True)
    wq, wk = llama.apply(q, k, pos)
    assert np.array_equal(qo, wq) and np.array_equal(ko, wk)
    # flattened heads with head_size, in place
    q2 = q.reshape(7, -1).copy()
    ropekit.apply_with_cos_sin_cache(pos, q2, None, cache, head_size=128, inplace=True)
    assert np.array_equal(q2.reshape(7, 4, 128), wq)
    with pytest.raises(ValueError, match="positions"):
        ropekit.apply_with_cos_sin_cache(np.array([64] * 7), q, k, cache)
    with pytest.raises(TypeError, match="float32"):
        ropekit.apply_with_cos_sin_cache(pos, q, k, cache.astype(np.float64))


def aligned_empty(shape, dtype, align=64):
    """An uninitialised array whose data starts on an `align`-byte boundary."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(n + align, np.uint8)
    skip = (-raw.ctypes.data) % align
    return raw[skip:skip + n].view(dtype).reshape(shape)


def test_stores_give_the_same_values(llama):
    # Non-temporal stores (stores="non_temporal", or "auto" for outputs of 32 MiB or more) write
    # the same values as regular ones: f32 and bf16 bits, half-split pairs, 64-byte aligned
    # outputs (the ones that stream on AVX-512), from the model's default options.
    for dtype in (np.float32, np.uint16):
        x = rand(300, 4, 128)
        if dtype == np.uint16:
            x = to_bf16_bits(x)
        outs = {}
        for stores in ("regular", "non_temporal", "auto"):
            out = aligned_empty(x.shape, dtype)
            llama.apply(x, positions=5, out=out, stores=stores)
            outs[stores] = out
        assert np.array_equal(outs["regular"], outs["non_temporal"])
        assert np.array_equal(outs["regular"], outs["auto"])
        # ... and they are the rotation (not, e.g., left unwritten).
        assert not np.array_equal(outs["regular"], x)


def test_threads_setting(llama):
    n = ropekit.get_threads()
    q = rand(2048, 8, 128)
    want = llama.apply(q, positions=0)
    try:
        ropekit.set_threads(1)
        assert ropekit.get_threads() == 1
        assert np.array_equal(llama.apply(q, positions=0), want)
        assert np.array_equal(llama.apply(q, positions=0, threads=1), want)
    finally:
        ropekit.set_threads(n)
    with pytest.raises(ValueError):
        ropekit.set_threads(0)


def test_seq_len_plans_dynamic():
    dyn = ropekit.load(config_path("internlm2.5-7b-dynamic")).default
    assert dyn.rope_type == "dynamic"
    p0, p1 = dyn.plan(), dyn.plan(4 * dyn.max_position_embeddings)
    assert p1.effective_theta > p0.effective_theta
    assert dyn.plan(4 * dyn.max_position_embeddings) is p1  # kept
    state = dyn.state()
    assert state.plan_for(10).effective_theta == p0.effective_theta
    q = rand(2, 2, dyn.head_dim)
    assert not np.array_equal(dyn.apply(q, positions=0, seq_len=4 * dyn.max_position_embeddings),
                              dyn.apply(q, positions=0))


def test_reserved_table_gives_same_results(llama):
    rope = ropekit.load("llama-3.1-8b-instruct").default
    q = rand(9, 4, 128)
    pos = np.array([0, 5, 100, 2000, 70000, 3, 3, 1, 9])
    want = rope.apply(q, positions=pos)
    rope.reserve(4096)
    got = rope.apply(q, positions=pos)
    assert np.abs(got - want).max() <= 1e-6


def test_mlx_initialize_rope_api():
    r = ropekit.initialize_rope(64, 10000.0, False, {"type": "linear", "factor": 4.0}, 4096)
    assert r.class_name == "RoPE" and r.scale == pytest.approx(0.25)
    x = rand(2, 3, 8, 64)
    y = r(x, offset=4)
    y2 = r(x[0], offset=4)
    assert np.array_equal(y[0], y2)
    y3 = r(x, offset=np.array([4, 4]))
    assert np.array_equal(y, y3)
    with pytest.raises(ropekit.ConfigError):
        ropekit.initialize_rope(64, 10000.0, False, {"type": "bogus"})


def test_supported_rope_types_and_version():
    types = ropekit.supported_rope_types()
    for t in ("default", "linear", "dynamic", "yarn", "longrope", "llama3"):
        assert t in types
    assert ropekit.__version__.count(".") == 2


def test_model_iteration_and_repr():
    m = ropekit.load(config_path("gemma-3-4b-text"))
    assert len(m) == 2 and {r.name for r in m} == set(m.names)
    assert "gemma" in repr(m) and "Rope" in repr(m.full_attention)


def test_concurrent_calls_from_python_threads(llama):
    # the GIL is released while kernels run: calls from several threads must stay correct
    from concurrent.futures import ThreadPoolExecutor
    xs = [rand(64, 4, 128) for _ in range(8)]
    want = [llama.apply(x, positions=i) for i, x in enumerate(xs)]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda i: llama.apply(xs[i], positions=i), range(8)))
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_scalar_array_positions_are_offsets(llama):
    x = rand(3, 2, 128)
    want = llama.apply(x, positions=7)
    assert np.array_equal(llama.apply(x, positions=np.int64(7)), want)
    assert np.array_equal(llama.apply(x, positions=np.array(7, np.int32)), want)


def test_fused_qkv_heads_major_in_place(llama):
    B, S, H, Hk, D = 2, 3, 4, 2, 128
    qkv = rand(B, H + 2 * Hk, S, D)  # [batch, heads, seq, dim], q | k | v heads
    q, k = qkv[:, :H], qkv[:, H:H + Hk]
    want_q = llama.apply(np.ascontiguousarray(q), positions=3, layout="bhsd")
    want_k = llama.apply(np.ascontiguousarray(k), positions=3, layout="bhsd")
    v = qkv[:, H + Hk:].copy()
    llama.apply(q, k, positions=3, layout="bhsd", inplace=True)
    assert np.array_equal(q, want_q) and np.array_equal(k, want_k)
    assert np.array_equal(qkv[:, H + Hk:], v)


def test_apply_underscore_is_apply_in_place(llama):
    q, k = rand(3, 4, 128), rand(3, 2, 128)
    wq, wk = llama.apply(q, k, positions=np.array([5, 0, 9]))
    ptr = q.__array_interface__["data"][0]
    rq, rk = llama.apply_(q, k, np.array([5, 0, 9]))
    assert rq is q and rk is k and q.__array_interface__["data"][0] == ptr
    assert np.array_equal(q, wq) and np.array_equal(k, wk)
    x = rand(2, 2, 128)
    assert np.array_equal(llama.apply_(x.copy(), None, 4), llama.apply(x, positions=4))


def test_query_scale_llama4_scout():
    m = ropekit.load("llama-4-scout-17b-16e")
    q = m.query_scale
    assert q["floor_scale"] == 8192 and q["attn_scale"] == 0.1 and q["position_offset"] == 1
    assert [i for i, on in enumerate(q["layers"]) if on] == list(range(3, 48, 4))
    pos = np.array([[0, 8190, 8191], [16383, 100000, 2**31 - 1]])
    s = m.query_scales(pos)
    assert s.dtype == np.float32 and s.shape == pos.shape
    want = np.log(np.floor((pos.astype(np.float64) + 1) / 8192) + 1) * 0.1 + 1
    assert np.all(np.abs(s - want) <= 0.5 * np.spacing(s))  # double, rounded once to float32
    assert ropekit.load("llama-3.1-8b-instruct").query_scale is None
    with pytest.raises(ValueError, match="position"):
        m.query_scales([-1])
