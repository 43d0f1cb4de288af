"""Golden integer GRU speed against PyTorch's float32 nn.GRU on the same machine.

Runs a token-input GRU (hidden 128, batch 64, 64 tokens, 100 timesteps) through
``golden.Model.run_int`` and the same sizes through ``torch.nn.GRU`` (float32, one-hot input,
torch's default thread count), alternating the two so that both see the same machine load, and
keeps each one's best time. Prints timesteps per second and the ratio, and writes them into the
``## Golden`` section of docs/benchmarks.md (``--no-write`` to skip). Goal: golden no slower than
3x torch.

    python bench/golden_speed.py [--repeats 10] [--no-write]

It also repeats the measurement in a child process with one thread on each side, which a busy
machine disturbs much less than two threads fighting other jobs for the cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdoc import DOC, write_section  # noqa: E402

import golden  # noqa: E402

GOAL = 3.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(args) -> dict:
    import torch

    if args.single_thread:
        torch.set_num_threads(1)

    B, T, V, H = args.batch, args.steps, args.tokens, args.hidden
    model = golden.Model.random("gru", args.method, V, H, input_kind="token", seed=0,
                                nonlinearity=golden.Nonlinearity(args.nonlinearity))
    tokens = np.random.default_rng(0).integers(0, V, size=(B, T))
    torch.manual_seed(0)
    gru = torch.nn.GRU(V, H, batch_first=True)  # float32
    onehot = torch.nn.functional.one_hot(torch.from_numpy(tokens), V).float()

    def run_golden():
        return model.run_int(tokens)

    def run_torch():
        with torch.no_grad():
            return gru(onehot)

    run_golden(), run_torch()  # warm up (allocations, BLAS and torch kernels)
    best = {"golden": float("inf"), "torch": float("inf")}
    for _ in range(args.repeats):
        for name, fn in (("golden", run_golden), ("torch", run_torch)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {
        "golden_s": best["golden"],
        "torch_s": best["torch"],
        "golden_steps_per_s": T / best["golden"],
        "torch_steps_per_s": T / best["torch"],
        "ratio": best["golden"] / best["torch"],
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


def measure_single_thread(args) -> dict | None:
    """The same measurement in a child process with one BLAS thread and one torch thread."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    argv = [sys.executable, __file__, "--single-thread", "--json", "--no-write",
            "--repeats", str(args.repeats), "--hidden", str(args.hidden), "--batch",
            str(args.batch), "--tokens", str(args.tokens), "--steps", str(args.steps),
            "--method", args.method, "--nonlinearity", args.nonlinearity]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"golden_speed: single-thread run failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    return json.loads(done.stdout)


def section(r: dict, args) -> str:
    verdict = "meets" if r["ratio"] <= GOAL else "MISSES"
    one = r.get("single")
    lines = [
        f"`python bench/golden_speed.py` ({datetime.date.today().isoformat()}): integer golden "
        f"GRU (`Model.run_int`, {args.method} weights, {args.nonlinearity} nonlinearity) against "
        f"PyTorch float32 `nn.GRU`, hidden {args.hidden}, batch {args.batch}, token input "
        f"({args.tokens} tokens; one-hot for torch), T = {args.steps}; best of {args.repeats} "
        "alternating runs each, default thread counts.",
        "",
        f"| | time per batch | timesteps/s (batch of {args.batch}) | sequence-steps/s |",
        "|---|---|---|---|",
        f"| golden (numpy, integer) | {r['golden_s'] * 1e3:.1f} ms | "
        f"{r['golden_steps_per_s']:.0f} | {r['golden_steps_per_s'] * args.batch:.0f} |",
        f"| torch (float32, {r['torch_threads']} threads) | {r['torch_s'] * 1e3:.1f} ms | "
        f"{r['torch_steps_per_s']:.0f} | {r['torch_steps_per_s'] * args.batch:.0f} |",
        "",
        f"**golden / torch time ratio: {r['ratio']:.2f}** ({verdict} the goal of <= {GOAL:g}x).",
        "",
    ]
    if one:
        lines += [
            "One thread on each side (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)): golden "
            f"{one['golden_s'] * 1e3:.1f} ms, torch {one['torch_s'] * 1e3:.1f} ms, ratio "
            f"{one['ratio']:.2f}.",
            "",
        ]
    lines += [
        f"Machine: {cpu_name()}, nproc {os.cpu_count()}, load average {r['load']:.2f} at the "
        f"start; Python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{r['torch_version']}. On a shared machine the times move with its load (two BLAS "
        "threads suffer most); the alternating best-of ratio is the stable part.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--method", default="ternary", choices=golden.METHODS)
    p.add_argument("--nonlinearity", default="hard", choices=golden.KINDS)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    p.add_argument("--single-thread", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the raw numbers as JSON only")
    args = p.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    try:
        r = measure(args)
    except ImportError as e:
        print(f"golden_speed: needs torch for the comparison ({e})", file=sys.stderr)
        return 2
    r["load"] = load
    if args.json:
        print(json.dumps(r))
        return 0
    r["single"] = measure_single_thread(args)
    text = section(r, args)
    print(text)
    if not args.no_write:
        write_section("Golden", text)
        print(f"wrote the '## Golden' section of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
