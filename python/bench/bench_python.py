#!/usr/bin/python3
"""ropekit through Python vs the same call in C++, vs transformers' formula in eager torch.

    PYTHONPATH=build/python /usr/bin/python3 python/bench/bench_python.py [--quick] [--threads N]

Cases (plain RoPE, theta 500000, head_dim 128, torch tensors):
  prefill  4096 tokens x 32 heads x 128, f32 and bf16, out of place (into a preallocated
           output) and in place, positions from 0
  decode   1 token, 32 q heads + 8 k heads, bf16, in place, q and k in one call, position 1000
Columns:
  python    `rope.apply(...)` (for decode also `rope.apply_(q, k, offset)`, the in-place call
            with the model's default options), per call: median and best sample.
  C++       the same `ropekit::apply_rope` call on the same tensors, timed in C++ in the same
            process (views prepared once, as a C++ caller does: `_ropekit._time_cpp_apply`),
            sample by sample alternating with the Python samples, so both see the same load:
            median and best sample.
  best py-C++, best py/C++  from the best samples: on a shared machine the same call moves
            between modes (e.g. 4.6 and 8.9 ms for f32 prefill, C++ and Python alike), so the
            medians of two series can sit in different modes; the best samples compare like
            with like. The targets are judged on them.
  C++ proc  build/ropekit_pybench_cpp (python/bench/bench_cpp.cc): the same calls from a C++
            program, run once before (the `ropekit bench` method; moves with the machine's load).
  eager     transformers' `q * cos + rotate_half(q) * sin` (and k) in eager torch, on
            [batch, heads, seq, dim] views, cos/sin precomputed (as its rotary module hands them
            over), so without the cos/sin cost.
Medians of 31 samples (7 with --quick); a decode sample is 2000 calls (eager: 200).
Not a test: timings depend on the machine and its load.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

import ropekit
from ropekit import _ropekit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def time_us(fn, calls):
    a = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - a) / 1e3 / calls


def interleaved(py_fn, cpp_fn, samples, calls):
    """Alternates C++ and Python samples; returns (median py, median C++, best py, best C++)."""
    for _ in range(3):
        py_fn()
        cpp_fn(1)
    py, cc = [], []
    for _ in range(samples):
        cc.append(cpp_fn(calls))
        py.append(time_us(py_fn, calls))
    return float(np.median(py)), float(np.median(cc)), min(py), min(cc)


def cpp_process(quick):
    exe = os.environ.get("ROPEKIT_PYBENCH_CPP", os.path.join(REPO, "build", "ropekit_pybench_cpp"))
    if not os.path.exists(exe):
        return {}
    env = dict(os.environ, ROPEKIT_THREADS=str(ropekit.get_threads()))
    out = subprocess.run([exe] + (["--quick"] if quick else []), capture_output=True, text=True,
                         check=True, env=env).stdout
    return {r["case"]: r["us"] for r in map(json.loads, out.splitlines())}


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def main():
    quick = "--quick" in sys.argv
    samples = 7 if quick else 31
    if "--threads" in sys.argv:  # the library's pool size (default: the hardware threads)
        ropekit.set_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    cfg = {"model_type": "llama", "head_dim": 128, "hidden_size": 4096,
           "num_attention_heads": 32, "rope_theta": 500000.0, "max_position_embeddings": 131072}
    rope = ropekit.load(cfg).default
    plan = rope.plan()
    T, H, D = 4096, 32, 128
    proc = cpp_process(quick)
    rows = []

    for dt, tdt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        q = ((torch.arange(T * H * D) % 23 - 11) / 8.0).reshape(T, H, D).to(tdt)
        out = torch.empty_like(q)
        r = interleaved(lambda: rope.apply(q, positions=0, out=out),
                        lambda n: _ropekit._time_cpp_apply(plan, q, out, None, None, 0, 0, n),
                        samples, 1)
        qb = q.reshape(1, T, H, D).transpose(1, 2)  # [1, H, T, D], as after the projections
        c, s = rope.cos_sin(np.arange(T)[None])
        cos, sin = torch.from_numpy(c).to(tdt)[:, None], torch.from_numpy(s).to(tdt)[:, None]
        eager = float(np.median([time_us(lambda: qb * cos + rotate_half(qb) * sin, 1)
                                 for _ in range(max(3, samples // 3))]))
        rows.append((f"prefill {T}x{H}x{D} {dt} out", *r, proc.get(f"prefill_{dt}_out"), eager))
        r = interleaved(lambda: rope.apply(q, positions=0, inplace=True),
                        lambda n: _ropekit._time_cpp_apply(plan, q, None, None, None, 0, 0, n),
                        samples, 1)
        rows.append((f"prefill {T}x{H}x{D} {dt} inplace", *r, proc.get(f"prefill_{dt}_inplace"),
                     None))

    dq = torch.full((1, 32, 128), 0.25, dtype=torch.bfloat16)
    dk = torch.full((1, 8, 128), 0.5, dtype=torch.bfloat16)
    calls = 2000

    def cpp_dec(n):
        return _ropekit._time_cpp_apply(plan, dq, None, dk, None, 1000, 0, n)

    r_rope = interleaved(lambda: rope.apply(dq, dk, 1000, inplace=True), cpp_dec, samples, calls)
    r_plan = interleaved(lambda: rope.apply_(dq, dk, 1000), cpp_dec, samples, calls)
    qd = dq.reshape(1, 1, 32, 128).transpose(1, 2)
    kd = dk.reshape(1, 1, 8, 128).transpose(1, 2)
    c, s = rope.cos_sin(np.array([[1000]]))
    cos = torch.from_numpy(c).to(torch.bfloat16)[:, None]
    sin = torch.from_numpy(s).to(torch.bfloat16)[:, None]
    eager_dec = float(np.median([time_us(lambda: (qd * cos + rotate_half(qd) * sin,
                                                  kd * cos + rotate_half(kd) * sin), calls // 10)
                                 for _ in range(samples)]))
    dec_proc = proc.get("decode_bf16_qk_inplace")
    rows.append(("decode 1x(32+8)x128 bf16 inplace, Rope.apply(inplace=True)", *r_rope, dec_proc, eager_dec))
    rows.append(("decode 1x(32+8)x128 bf16 inplace, Rope.apply_", *r_plan, dec_proc, eager_dec))

    print(f"ropekit {ropekit.__version__}: Python vs C++ vs eager torch (transformers' formula); "
          f"SIMD target {_ropekit.active_target()}, ropekit threads {ropekit.get_threads()}, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}; medians of {samples}")
    print()
    hdr = (f"{'case':56} {'py med':>9} {'C++ med':>9} {'py best':>9} {'C++ best':>9} "
           f"{'py-C++':>8} {'py/C++':>7} {'C++ proc':>9} {'eager':>10} {'vs eager':>8}")
    print(hdr + "   (us)")
    print("-" * len(hdr))
    for name, py, cc, pb, cb, pr, eager in rows:
        prs = f"{pr:9.2f}" if pr is not None else f"{'-':>9}"
        e = f"{eager:10.1f}" if eager else f"{'-':>10}"
        sp = f"{eager / pb:7.1f}x" if eager else f"{'-':>8}"
        print(f"{name:56} {py:9.2f} {cc:9.2f} {pb:9.2f} {cb:9.2f} {pb - cb:8.2f} {pb / cb:7.3f} "
              f"{prs} {e} {sp}")
    print()
    dec = min(rows[-2][3] - rows[-2][4], rows[-1][3] - rows[-1][4])
    worst = max(r[3] / r[4] for r in rows if r[0].startswith("prefill"))
    print(f"decode: Python overhead above the C++ call {rows[-2][3] - rows[-2][4]:.2f} us "
          f"(Rope.apply(inplace=True)), "
          f"{rows[-1][3] - rows[-1][4]:.2f} us (Rope.apply_); medians "
          f"{rows[-2][1] - rows[-2][2]:.2f} / {rows[-1][1] - rows[-1][2]:.2f} us; "
          f"target <= 5 us: {'met' if dec <= 5 else 'NOT met'}")
    print(f"prefill: worst Python / C++ {worst:.3f} (best samples); target <= 1.10: "
          f"{'met' if worst <= 1.10 else 'NOT met'}")
    print(f"speed-up over eager torch: prefill {rows[0][6] / rows[0][3]:.0f}x (f32), "
          f"{rows[2][6] / rows[2][3]:.0f}x (bf16); decode {eager_dec / rows[-2][3]:.1f}x")


if __name__ == "__main__":
    main()
