#!/usr/bin/env bash
# The Python package's documented install, checked in a fresh virtual environment:
# `python3 -m pip install --no-build-isolation --no-deps .` from the clone (no network: NumPy
# and torch come from Debian, hence --system-site-packages), then import it from outside the
# source tree and rotate a NumPy array and a torch tensor.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-build-isolation --no-deps --no-index "$root"
cd "$work"
ROPEKIT_SRC="$root" "$work/venv/bin/python" - <<'PY'
import os
import numpy as np
import ropekit
# the installed copy, not the source tree
assert not ropekit.__file__.startswith(os.environ["ROPEKIT_SRC"] + "/"), ropekit.__file__
rope = ropekit.load("llama-3.1-8b-instruct").default
q = np.ones((2, 4, 128), np.float32)
y = rope.apply(q, positions=5)
assert y.shape == q.shape and not np.array_equal(y, q)
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    import ropekit.torch as rt
    t = torch.ones(2, 4, 128, dtype=torch.bfloat16)
    rope.apply(t, positions=5, inplace=True)
    assert t.dtype == torch.bfloat16 and not torch.equal(t, torch.ones_like(t))
print("ropekit", ropekit.__version__, "installed at", ropekit.__file__, ": apply ok")
PY
