"""Results through Python are bit-identical to the C++ API on the same inputs: the `ropekit
apply` command (the C++ library, no Python) is run on .npy files and its bytes compared with
the Python API's, for several scaling types, layouts, dtypes, angle modes, the inverse, the
unfolded attention factor, M-RoPE and mlx-lm's initialize_rope."""
import json
import subprocess

import numpy as np
import pytest

import ropekit
from conftest import config_path, from_bf16_bits, to_bf16_bits

MODELS = ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct-yarn", "phi-2", "deepseek-v3",
          "phi-3.5-mini-instruct", "internlm2.5-7b-dynamic"]


def run_cli(cli, args):
    r = subprocess.run([cli, "apply", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def inputs(tokens, heads, hd, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((tokens, heads, hd)).astype(np.float32)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", ["exact", "hf", "bf16", "bf16_hf", "inverse", "no_fold"])
def test_apply_bit_identical_to_cli(cli, tmp_path, name, mode):
    hf = mode in ("hf", "bf16_hf")
    numerics = "transformers" if hf else "exact"
    rope = ropekit.load(config_path(name), numerics=numerics).default
    x = inputs(6, 3, rope.head_dim, hash(name) % 1000)
    pos = np.array([0, 1, 2, 4095, 70000, 131071], dtype=np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", pos)
    args = [str(config_path(name)), "--input", str(tmp_path / "x.npy"), "--positions",
            str(tmp_path / "p.npy"), "--output", str(tmp_path / "y.npy")]
    if hf:
        args += ["--angles", "hf"]  # rounding and frequency arithmetic: transformers (default)
    else:
        args += ["--angles", "exact", "--rounding", "single", "--freq-arithmetic", "exact"]
    kw = {}
    if mode.startswith("bf16"):
        args += ["--dtype", "bf16"]
    if mode == "inverse":
        args += ["--inverse"]
        kw["inverse"] = True
    if mode == "no_fold":
        args += ["--no-fold"]
        kw["fold_attention_factor"] = False
    run_cli(cli, args)
    want = np.load(tmp_path / "y.npy")
    seq_len = int(pos.max()) + 1  # the command's default --seq-len
    if mode.startswith("bf16"):
        got = from_bf16_bits(rope.apply(to_bf16_bits(x), positions=pos, seq_len=seq_len, **kw))
    else:
        got = rope.apply(x, positions=pos, seq_len=seq_len, **kw)
        if mode == "no_fold":
            got = got[0]
    assert got.dtype == np.float32
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("name", ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct-yarn",
                                  "phi-3.5-mini-instruct", "qwen2-vl-7b-instruct"])
def test_llama_cpp_numerics_bit_identical_to_cli(cli, tmp_path, name):
    # The llama.cpp preset (ggml's float32 angles) at llama.cpp's default context
    # (max_position_embeddings) through both front doors.
    rope = ropekit.load(config_path(name), numerics="llama.cpp").default
    x = inputs(5, 2, rope.head_dim, 5)
    if rope.mrope_section:
        pos = np.array([[0, 1, 2, 3, 3], [0, 1, 2, 3, 4], [0, 1, 2, 5, 3]], dtype=np.int64)
    else:
        pos = np.array([0, 1, 4095, 70000, 131071], dtype=np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", pos)
    run_cli(cli, [str(config_path(name)), "--input", str(tmp_path / "x.npy"), "--positions",
                  str(tmp_path / "p.npy"), "--output", str(tmp_path / "y.npy"), "--numerics",
                  "llama.cpp"])
    want = np.load(tmp_path / "y.npy")
    got = rope.apply(x, positions=pos)
    assert got.tobytes() == want.tobytes()
    exact = ropekit.load(config_path(name), numerics="exact").default.apply(x, positions=pos)
    assert not np.array_equal(got, exact)  # ggml's float32 angles are not the exact ones
    if name != "phi-3.5-mini-instruct":  # llama.cpp's context picks LongRoPE's long factors
        assert np.max(np.abs(got - exact)) < 0.2


@pytest.mark.parametrize("angles", ["exact", "hf"])
def test_mrope_bit_identical_to_cli(cli, tmp_path, angles):
    name = "qwen2-vl-7b-instruct"
    rope = ropekit.load(config_path(name),
                        numerics="transformers" if angles == "hf" else "exact").default
    x = inputs(5, 2, rope.head_dim, 3)
    rows = np.array([[0, 1, 2, 3, 3], [0, 1, 2, 3, 4], [0, 1, 2, 5, 3]], dtype=np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", rows)
    args = [str(config_path(name)), "--input", str(tmp_path / "x.npy"), "--positions",
            str(tmp_path / "p.npy"), "--output", str(tmp_path / "y.npy"), "--angles", angles]
    if angles == "exact":
        args += ["--rounding", "single", "--freq-arithmetic", "exact"]
    run_cli(cli, args)
    got = rope.apply(x, positions=rows, seq_len=6)
    assert got.tobytes() == np.load(tmp_path / "y.npy").tobytes()


@pytest.mark.parametrize("offset", [0, 4093, 131071])
def test_initialize_rope_bit_identical_to_cli(cli, tmp_path, offset):
    kwargs = {"dims": 64, "base": 500000.0, "traditional": False,
              "scaling_config": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192},
              "max_position_embeddings": 131072}
    (tmp_path / "kw.json").write_text(json.dumps(kwargs))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 80)).astype(np.float32)  # [batch, heads, seq, dim > dims]
    np.save(tmp_path / "x.npy", x)
    run_cli(cli, ["--initialize-rope", str(tmp_path / "kw.json"), "--input",
                  str(tmp_path / "x.npy"), "--offset", str(offset), "--output",
                  str(tmp_path / "y.npy")])
    rope = ropekit.initialize_rope(**kwargs)
    got = rope(x, offset)
    assert got.tobytes() == np.load(tmp_path / "y.npy").tobytes()
