"""Shared fixtures: where the goldens and configs are (tests/data/ and models/ of the repository),
the golden inputs, and tolerance helpers mirroring tests/test_util.cc."""
import json
import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("ROPEKIT_TEST_DATA", REPO / "tests" / "data"))
MODELS = REPO / "models"


def golden(rel):
    with open(DATA / "golden" / rel) as f:
        return json.load(f)


def golden_names(sub):
    return sorted(p.stem for p in (DATA / "golden" / sub).glob("*.json"))


def config_path(name):
    return MODELS / f"{name}.json"


def hf_inputs(heads, seq, hd, a, b, c, m, off, div):
    h = np.arange(heads)[None, :, None]
    s = np.arange(seq)[:, None, None]
    d = np.arange(hd)[None, None, :]
    return (((a * h + b * s + c * d) % m - off) / div).astype(np.float32)  # [seq, heads, hd]


def hf_q(heads, seq, hd):
    return hf_inputs(heads, seq, hd, 31, 17, 7, 23, 11, 8.0)


def hf_k(heads, seq, hd):
    return hf_inputs(heads, seq, hd, 13, 29, 11, 19, 9, 4.0)


def golden_tensor(g):
    """golden [heads][seq][hd] -> [seq, heads, hd]"""
    return np.asarray(g, dtype=np.float64).transpose(1, 0, 2)


def to_bf16_bits(x):
    """float32 -> bfloat16 bits (uint16), round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r


def from_bf16_bits(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def bf16_ulp(v):
    v = np.abs(np.asarray(v, dtype=np.float64))
    e = np.floor(np.log2(np.where(v == 0, 1.0, v)))
    e = np.where((v == 0) | (e < -126), -126, e)
    return np.ldexp(1.0, (e - 7).astype(int))


@pytest.fixture
def cli():
    path = os.environ.get("ROPEKIT_CLI", str(REPO / "build" / "ropekit"))
    if not os.path.exists(path):
        pytest.fail(f"the ropekit command is needed for C++ parity checks: {path} not found "
                    f"(build it, or set ROPEKIT_CLI)")
    return path
