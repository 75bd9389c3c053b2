"""The goldens (tests/data/golden) through the Python API, with
the tolerances of tests/apply_golden_test.cc: transformers float32 within 2e-5 with hf angles
(both roundings), bf16 within one bf16 ulp with transformers rounding, exact angles against
float64 math from the same frequencies within 2e-5; M-RoPE; every mlx-lm initialize_rope
result (batch offsets included). Each on the reference and the default (SIMD) backend."""
import numpy as np
import pytest

import ropekit
from conftest import (bf16_ulp, config_path, from_bf16_bits, golden, golden_names, golden_tensor,
                      hf_k, hf_q, to_bf16_bits)

BACKENDS = ["reference", "auto"]


def golden_plan(plan, inv_used):
    """The golden's own float32 frequencies where torch's pow rounded one pair differently."""
    if inv_used is None:
        return plan
    want = np.asarray(inv_used, dtype=np.float64).astype(np.float32)
    have = plan.inv_freq
    diff = np.nonzero(have != want)[0]
    assert len(diff) <= 1
    for i in diff:
        assert abs(float(have[i]) - float(want[i])) <= float(np.spacing(want[i]))
    return plan.with_inv_freq(want) if len(diff) else plan


def f64_rotation(x, inv, att, pos_of_pair, layout):
    """x [seq, heads, hd]; pos_of_pair [seq, pairs] positions."""
    y = x.astype(np.float64).copy()
    n = len(inv)
    th = pos_of_pair.astype(np.float64) * inv.astype(np.float64)[None, :]
    c, s = (np.cos(th) * att)[:, None, :], (np.sin(th) * att)[:, None, :]
    if layout == "half":
        a, b = np.arange(n), np.arange(n) + n
    else:
        a, b = 2 * np.arange(n), 2 * np.arange(n) + 1
    xa, xb = x[..., a].astype(np.float64), x[..., b].astype(np.float64)
    y[..., a] = xa * c - xb * s
    y[..., b] = xb * c + xa * s
    return y


def run(plan, q, k, positions, backend, **kw):
    return ropekit.apply(plan, q, k, positions, backend=backend, **kw)


@pytest.mark.parametrize("name", golden_names("hf"))
def test_hf_golden(name):
    g = golden(f"hf/{name}.json")
    model = ropekit.load(config_path(name), numerics="transformers")
    cases = 0
    for lname, L in g["layers"].items():
        rope = model[lname]
        assert rope.head_dim == L["head_dim"] and rope.rotary_dim == L["rotary_dim"]
        for sname, S in L["scenarios"].items():
            if "q_embed" not in S:
                continue
            positions = np.asarray(S["positions"], dtype=np.int64)
            seq, heads = len(positions), len(S["q_embed"])
            seq_len = S.get("seq_len_seen_by_hf", int(positions.max()) + 1)
            plan = golden_plan(rope.plan(seq_len), S.get("inv_freq_used"))
            q, k = hf_q(heads, seq, plan.head_dim), hf_k(heads, seq, plan.head_dim)
            deepseek = "q_embed_interleave" in S
            bf16 = S.get("dtype") == "bfloat16"
            for backend in BACKENDS:
                if bf16:
                    qo, ko = run(plan, to_bf16_bits(q), to_bf16_bits(k), positions, backend,
                                 angles="hf", rounding="transformers", pair_layout="half")
                    for got, key in ((qo, "q_embed"), (ko, "k_embed")):
                        want = golden_tensor(S[key])
                        err = np.abs(from_bf16_bits(got) - want) / bf16_ulp(want)
                        assert err.max() <= 1.0, (name, lname, sname, backend, key)
                    cases += 1
                    continue
                for rounding in ("single", "transformers"):
                    qo, ko = run(plan, q, k, positions, backend, angles="hf", rounding=rounding,
                                 pair_layout="interleaved_to_half" if deepseek else None)
                    qk = "q_embed_interleave" if deepseek else "q_embed"
                    kk = "k_embed_interleave" if deepseek else "k_embed"
                    assert np.abs(qo - golden_tensor(S[qk])).max() <= 2e-5, (name, sname, backend)
                    assert np.abs(ko - golden_tensor(S[kk])).max() <= 2e-5, (name, sname, backend)
                    if deepseek:
                        qh = run(plan, q, None, positions, backend, angles="hf",
                                 rounding=rounding, pair_layout="half")
                        assert np.abs(qh - golden_tensor(S["q_embed"])).max() <= 2e-5
                    cases += 1
                # exact angles against float64 math from the same float32 frequencies
                qo, ko = run(plan, q, k, positions, backend, angles="exact", rounding="single")
                pp = np.repeat(positions[:, None], len(plan.inv_freq), axis=1)
                for got, x in ((qo, q), (ko, k)):
                    want = f64_rotation(x, plan.inv_freq, plan.attention_factor, pp, plan.layout)
                    assert np.abs(got - want).max() <= 2e-5, (name, sname, backend, "exact")
            if not bf16:  # the cos/sin tables transformers' rotary embedding returns
                c, s = ropekit.cos_sin(plan, positions, angles="hf")
                assert np.abs(c - np.asarray(S["cos"])).max() <= 2e-5, (name, sname, "cos")
                assert np.abs(s - np.asarray(S["sin"])).max() <= 2e-5, (name, sname, "sin")
    assert cases > 0


@pytest.mark.parametrize("name", golden_names("hf-mrope"))
def test_mrope_golden(name):
    g = golden(f"hf-mrope/{name}.json")
    rope = ropekit.load(config_path(name), numerics="transformers").default
    assert rope.mrope_section is not None
    plan = golden_plan(rope.plan(), g["inv_freq"])
    axes = np.asarray(plan.pair_axis)
    for sname, S in g["scenarios"].items():
        rows = np.asarray(S["position_ids"], dtype=np.int64)
        seq, heads = rows.shape[1], len(S["q_embed"])
        q, k = hf_q(heads, seq, plan.head_dim), hf_k(heads, seq, plan.head_dim)
        bf16 = "bf16" in sname
        for backend in BACKENDS:
            if bf16:
                qo, ko = run(plan, to_bf16_bits(q), to_bf16_bits(k), rows, backend, angles="hf",
                             rounding="transformers")
                for got, key in ((qo, "q_embed"), (ko, "k_embed")):
                    want = golden_tensor(S[key])
                    assert (np.abs(from_bf16_bits(got) - want) / bf16_ulp(want)).max() <= 1.0
                continue
            qo, ko = run(plan, q, k, rows, backend, angles="hf", rounding="transformers")
            assert np.abs(qo - golden_tensor(S["q_embed"])).max() <= 2e-5, (sname, backend)
            assert np.abs(ko - golden_tensor(S["k_embed"])).max() <= 2e-5, (sname, backend)
            qx = run(plan, q, None, rows, backend, angles="exact", rounding="single")
            pp = rows[axes].T  # [seq, pairs]: each pair's own row
            want = f64_rotation(q, plan.inv_freq, plan.attention_factor, pp, plan.layout)
            assert np.abs(qx - want).max() <= 2e-5, (sname, backend, "exact")


def mlx_names():
    out = []
    for n in golden_names("mlx-lm"):
        if any(r["constructor"] == "initialize_rope" for r in golden(f"mlx-lm/{n}.json")["ropes"]):
            out.append(n)
    return out


@pytest.mark.parametrize("name", mlx_names())
def test_mlx_golden(name):
    g = golden(f"mlx-lm/{name}.json")
    cases = 0
    for r in g["ropes"]:
        if r["constructor"] != "initialize_rope":
            continue
        kw = r["kwargs"]
        rope = ropekit.initialize_rope(kw["dims"], kw.get("base", 10000.0),
                                       kw.get("traditional", False), kw.get("scaling_config"),
                                       kw.get("max_position_embeddings"))
        d = r["head_dim"]
        for res in r["results"]:
            if "out" not in res:
                continue
            batch, heads, seq = res["batch"], 2, 8
            b = np.arange(batch)[:, None, None, None]
            h = np.arange(heads)[None, :, None, None]
            s = np.arange(seq)[None, None, :, None]
            i = np.arange(d)[None, None, None, :]
            x = np.sin(0.1 * (i + 1) * (h + 1) * (s + 1) * (b + 1)).astype(np.float32)
            offset = res["offset"]
            y = rope(x, offset if isinstance(offset, int) else np.asarray(offset, np.int64))
            want = np.asarray(res["out"], dtype=np.float64).reshape(y.shape)
            max_off = max(offset) if isinstance(offset, list) else offset
            assert np.abs(y - want).max() <= 2e-5 + 1e-7 * (max_off + 8), (r["name"], offset)
            cases += 1
    assert cases > 0
