#!/usr/bin/python3
"""ropekit through Python vs the same call in C++, vs transformers' formula in eager torch.

    PYTHONPATH=build/python /usr/bin/python3 python/bench/bench_python.py [--quick]

Cases (plain RoPE, theta 500000, head_dim 128, positions from 0 / 1000):
  prefill  4096 tokens x 32 heads x 128, f32 and bf16, out of place (into a preallocated
           output, as the C++ call) and in place
  decode   1 token, 32 q heads + 8 k heads, bf16, in place (q and k in one call)
The C++ column runs build/ropekit_pybench_cpp (python/bench/bench_cpp.cc: the same calls
through the C++ API, same library, same thread pool) in the same run. The eager-torch column
is transformers' `q * cos + rotate_half(q) * sin` (and k) on [batch, heads, seq, dim] tensors
with cos/sin precomputed (as its rotary module hands them over), i.e. without the cos/sin cost.
Timings: medians of 15 samples (5 with --quick); a decode sample is 2000 calls / 2000.
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def median_us(fn, samples, calls):
    for _ in range(3):
        fn()
    t = []
    for _ in range(samples):
        a = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        t.append((time.perf_counter_ns() - a) / 1e3 / calls)
    t.sort()
    return t[len(t) // 2]


def cpp_results(quick):
    exe = os.environ.get("ROPEKIT_PYBENCH_CPP", os.path.join(REPO, "build", "ropekit_pybench_cpp"))
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: build it (cmake --build build --target ropekit_pybench_cpp)")
    out = subprocess.run([exe] + (["--quick"] if quick else []), capture_output=True, text=True,
                         check=True).stdout
    return {r["case"]: r["us"] for r in map(json.loads, out.splitlines())}


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def main():
    quick = "--quick" in sys.argv
    samples = 5 if quick else 15
    cfg = {"model_type": "llama", "head_dim": 128, "hidden_size": 4096,
           "num_attention_heads": 32, "rope_theta": 500000.0,
           "max_position_embeddings": 131072}
    rope = ropekit.load(cfg).default
    plan = rope.plan()
    T, H, D = 4096, 32, 128
    rows = []

    cpp = cpp_results(quick)
    torch_threads = torch.get_num_threads()

    for dt, tdt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        q = ((torch.arange(T * H * D) % 23 - 11) / 8.0).reshape(T, H, D).to(tdt)
        out = torch.empty_like(q)
        py_out = median_us(lambda: rope.apply(q, positions=0, out=out), samples, 1)
        py_in = median_us(lambda: rope.apply(q, positions=0, inplace=True), samples, 1)
        # transformers: q [1, H, T, D] (a transposed view, as after its projections), cos/sin
        qb = q.reshape(1, T, H, D).transpose(1, 2)
        pos = torch.arange(T)[None]
        c, s = rope.cos_sin(pos.numpy())
        cos, sin = torch.from_numpy(c).to(tdt)[:, None], torch.from_numpy(s).to(tdt)[:, None]
        eager = median_us(lambda: qb * cos + rotate_half(qb) * sin, samples, 1)
        rows.append((f"prefill {T}x{H}x{D} {dt} out", py_out, cpp[f"prefill_{dt}_out"], eager))
        rows.append((f"prefill {T}x{H}x{D} {dt} inplace", py_in, cpp[f"prefill_{dt}_inplace"],
                     None))

    dq = torch.full((1, 32, 128), 0.25, dtype=torch.bfloat16)
    dk = torch.full((1, 8, 128), 0.5, dtype=torch.bfloat16)
    calls = 2000
    py_dec = median_us(lambda: rope.apply(dq, dk, 1000, inplace=True), samples, calls)
    py_dec_plan = median_us(lambda: plan.apply(dq, None, dk, None, 1000, None, None, 0, -1, -1,
                                               False, True, 0, 0, ""), samples, calls)
    qd = dq.reshape(1, 1, 32, 128).transpose(1, 2)
    kd = dk.reshape(1, 1, 8, 128).transpose(1, 2)
    c, s = rope.cos_sin(np.array([[1000]]))
    cos, sin = torch.from_numpy(c).to(torch.bfloat16)[:, None], torch.from_numpy(s).to(
        torch.bfloat16)[:, None]
    eager_dec = median_us(lambda: (qd * cos + rotate_half(qd) * sin,
                                   kd * cos + rotate_half(kd) * sin), samples, calls // 10)
    cpp_dec = cpp["decode_bf16_qk_inplace"]
    rows.append(("decode 1x(32+8)x128 bf16 inplace: Rope.apply", py_dec, cpp_dec, eager_dec))
    rows.append(("decode 1x(32+8)x128 bf16 inplace: Plan.apply", py_dec_plan, cpp_dec, eager_dec))

    print(f"ropekit {ropekit.__version__} Python vs C++ vs eager torch (transformers' formula); "
          f"SIMD target {ropekit._ropekit.active_target()}, ropekit threads "
          f"{ropekit.get_threads()}, torch threads {torch_threads}; medians of {samples}")
    print()
    hdr = (f"{'case':48} {'python us':>11} {'C++ us':>11} {'py - C++':>10} {'py / C++':>9} "
           f"{'eager us':>11} {'vs eager':>9}")
    print(hdr)
    print("-" * len(hdr))
    for name, py, cc, eager in rows:
        e = f"{eager:11.1f}" if eager else f"{'-':>11}"
        sp = f"{eager / py:8.1f}x" if eager else f"{'-':>9}"
        print(f"{name:48} {py:11.2f} {cc:11.2f} {py - cc:10.2f} {py / cc:9.3f} {e} {sp}")
    print()
    dec_over = py_dec - cpp_dec
    pre = [r for r in rows if r[0].startswith("prefill")]
    worst = max(r[1] / r[2] for r in pre)
    print(f"decode overhead above C++: {dec_over:.2f} us (Rope.apply), "
          f"{py_dec_plan - cpp_dec:.2f} us (Plan.apply); target <= 5 us: "
          f"{'met' if dec_over <= 5 else 'NOT met'}")
    print(f"prefill worst python / C++: {worst:.3f}; target <= 1.10: "
          f"{'met' if worst <= 1.10 else 'NOT met'}")


if __name__ == "__main__":
    main()
