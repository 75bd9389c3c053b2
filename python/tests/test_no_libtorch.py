"""The extension does not link libtorch: its ELF dependencies name no torch/c10 library, and it
imports and applies to NumPy arrays in a process where `import torch` is blocked."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import ropekit


def test_extension_has_no_torch_dependency():
    so = ropekit._ropekit.__file__
    tool = shutil.which("readelf")
    if tool is None:
        pytest.fail("readelf (binutils) is needed for this check")
    out = subprocess.run([tool, "-d", so], capture_output=True, text=True, check=True).stdout
    needed = [line for line in out.splitlines() if "(NEEDED)" in line]
    assert needed, out
    for line in needed:
        low = line.lower()
        assert "torch" not in low and "c10" not in low, line


def test_imports_and_applies_with_torch_blocked():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None          # any `import torch` now raises ImportError
        import numpy as np
        import ropekit
        rope = ropekit.load("llama-3.1-8b-instruct").default
        q = np.ones((2, 4, 128), np.float32)
        y = rope.apply(q, positions=5)
        assert y.shape == q.shape and not np.array_equal(y, q)
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
