"""Bad inputs raise the documented exceptions, naming the argument and what was expected:
TypeError for types/dtypes, ValueError for shapes, devices, overlap, read-only arrays written
in place and position counts; ropekit.ConfigError (a ValueError, with .path) for configs;
OSError for unreadable files. Never a crash."""
import numpy as np
import pytest

import ropekit
from conftest import config_path


@pytest.fixture(scope="module")
def rope():
    return ropekit.load("llama-3.1-8b-instruct").default


def q(t=3, h=2, d=128, dtype=np.float32):
    return np.ones((t, h, d), dtype)


@pytest.mark.parametrize("bad,exc,match", [
    (q(dtype=np.float64), TypeError, "q: expected (a )?float32"),
    (q(dtype=np.int32), TypeError, "q: expected (a )?float32"),
    ([[1.0]], TypeError, "q"),
    ("text", TypeError, "q"),
    (None, TypeError, "q"),
    (q(d=96), ValueError, "head_dim"),
    (np.ones((3, 128), np.float32), ValueError, "q: expected a 3-D"),
])
def test_bad_q(rope, bad, exc, match):
    with pytest.raises(exc, match=match):
        rope.apply(bad, positions=0, out=q())


def test_bad_stores(rope):
    with pytest.raises(ValueError, match="stores: expected one of 'auto', 'regular', "
                                         "'non_temporal', got 'fast'"):
        rope.apply(q(), positions=0, stores="fast")


def test_stores_reach_apply_options(rope, monkeypatch):
    # The code of a stores name is handed to ApplyOptions::output_stores as it is: a code that is
    # no OutputStores is refused by apply_rope itself, which shows the option reaches C++.
    monkeypatch.setitem(ropekit._STORES, "bogus", 7)
    with pytest.raises(ValueError, match="options.output_stores: expected OutputStores::kAuto, "
                                         "kRegular or kNonTemporal, got 7"):
        rope.apply(q(), positions=0, stores="bogus")


def test_read_only_in_place(rope):
    x = q()
    x.setflags(write=False)
    with pytest.raises(ValueError, match="q: expected a writable"):
        rope.apply(x, positions=0, inplace=True)
    rope.apply(x, positions=0)  # reading it is fine
    out = q()
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out: expected a writable"):
        rope.apply(q(), positions=0, out=out)


def test_overlap(rope):
    buf = np.ones((4, 2, 128), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        rope.apply(buf[:3], positions=0, out=buf[1:])
    with pytest.raises(ValueError, match="overlap|k_out"):
        rope.apply(buf[:2], buf[2:], positions=0, out=buf[2:], k_out=buf[:2])


def test_bad_positions(rope):
    with pytest.raises(ValueError, match="positions: expected 3 positions"):
        rope.apply(q(), positions=np.arange(4))
    with pytest.raises(TypeError, match="positions"):
        rope.apply(q(), positions=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="positions"):
        rope.apply(q(), positions=np.array([0, 1, 2 ** 31], np.int64))
    with pytest.raises(ValueError, match="contiguous"):
        rope.apply(q(), positions=np.arange(6)[::2])
    with pytest.raises(ValueError, match="indptr"):
        rope.apply(q(), offsets=[0, 0], indptr=[0, 2, 2])
    with pytest.raises(ValueError, match="offset"):
        rope.apply(q(), positions=2 ** 31 - 2)


def test_bad_shapes_between_q_and_k(rope):
    with pytest.raises(ValueError, match="k"):
        rope.apply(q(), q(t=4), positions=0)
    with pytest.raises(ValueError, match="out"):
        rope.apply(q(), positions=0, out=q(t=4))
    with pytest.raises(ValueError, match="k_out"):
        rope.apply(q(), None, positions=0, k_out=q())


def test_bad_options(rope):
    with pytest.raises(ValueError, match="layout"):
        rope.apply(q(), positions=0, layout="nchw")
    with pytest.raises(ValueError, match="angles"):
        rope.apply(q(), positions=0, angles="fast")
    with pytest.raises(ValueError, match="rounding"):
        rope.apply(q(), positions=0, rounding="up")
    with pytest.raises(ValueError, match="pair_layout"):
        rope.apply(q(), positions=0, pair_layout="zigzag")
    with pytest.raises(ValueError, match="threads"):
        rope.apply(q(), positions=0, threads=-1)
    with pytest.raises(ValueError, match="format"):
        rope.cos_sin(np.arange(3), format="complex")


def test_mrope_rows_need_an_mrope_model(rope):
    with pytest.raises(ValueError, match="positions"):
        rope.apply(q(), positions=np.zeros((3, 3), np.int64))


def test_config_errors_carry_the_json_path():
    with pytest.raises(ropekit.ConfigError) as e:
        ropekit.load({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 2,
                      "max_position_embeddings": 128,
                      "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                       "beta_fast": "fast"}})
    assert "beta_fast" in e.value.path and "rope_scaling" in e.value.path
    assert "beta_fast" in str(e.value)
    with pytest.raises(ropekit.ConfigError):
        ropekit.load({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 2,
                      "rope_scaling": {"rope_type": "no-such-type"}})


def test_unreadable_config_is_oserror(tmp_path):
    with pytest.raises(OSError):
        ropekit.load(tmp_path)  # a directory
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ropekit.ConfigError):
        ropekit.load(bad)


def test_errors_never_crash_on_garbage_arguments(rope):
    garbage = [object(), 1.5, b"bytes", np.ones((2, 2, 2, 2, 2), np.float32), np.ones(0),
               np.empty((0, 2, 128), np.float32)]
    for g in garbage:
        for kw in ({"positions": g}, {"offsets": g}, {}):
            try:
                rope.apply(g if not kw else q(), **kw)
            except (TypeError, ValueError):
                pass


def test_huge_python_int_offset_is_a_value_error(rope):
    with pytest.raises(ValueError, match="positions"):
        rope.apply(q(), positions=2 ** 70)
    with pytest.raises(TypeError, match="offsets"):
        rope.apply(q(), offsets=[1.5])
