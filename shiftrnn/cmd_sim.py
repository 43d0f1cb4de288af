"""``shiftrnn verify`` (cocotb bench on Verilator) and ``shiftrnn simulate`` (the fast path)."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np

from shiftrnn.cli import CliError

__all__ = ["register", "corpus_tokens", "load_inputs"]


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {v}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="run the cocotb bench on a generated design (bit-exact vs golden)",
        description="Build the design with Verilator (cached by the Verilog's content hash) and "
                    "run the cocotb bench: random valid gaps and backpressure, sequences of "
                    "length 1, short and long, restarts, a reset mid-stream; every output of "
                    "every timestep is compared with golden exactly and the cycles per timestep "
                    "and latency are checked against the manifest.")
    p.add_argument("design", metavar="rtl_out/NAME", help="generated design folder")
    p.add_argument("--sequences", type=_positive, default=8, metavar="N",
                   help="random sequences in the stream test (default 8)")
    p.add_argument("--length", type=_positive, default=24, metavar="T",
                   help="long sequence length (default 24)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of every random choice")
    p.add_argument("--idle", type=_probability, default=0.3, metavar="P",
                   help="probability of idle cycles before an input beat (default 0.3)")
    p.add_argument("--backpressure", type=_probability, default=0.3, metavar="P",
                   help="probability of ready low in a cycle (default 0.3)")
    p.add_argument("--waves", action="store_true",
                   help="write a VCD waveform into the design folder (<design>.vcd)")
    p.set_defaults(func=_verify)

    p = subparsers.add_parser(
        "simulate", help="run a dataset through the Verilated design (fast C++ path)",
        description="Run whole datasets through the RTL with a compiled C++ harness (no Python "
                    "per cycle): outputs checked against golden exactly, cycles, simulated "
                    "throughput, toggle counts (ports and registers) and, for language models, "
                    "bits per character from the RTL's own logits.")
    p.add_argument("design", metavar="rtl_out/NAME", help="generated design folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--inputs", metavar="FILE.npy",
                     help="tokens (batch, time) or vectors (batch, time, input): integers are "
                          "used as is (token indices / formats.x integers), floats are quantized")
    src.add_argument("--corpus", metavar="FILE",
                     help="text for a token model: characters mapped with the model's vocabulary "
                          "(meta['vocab']) if it has one, else bytes mod input_size")
    p.add_argument("--length", type=_positive, default=256, metavar="T",
                   help="with --corpus: split the text into sequences of T characters "
                        "(default 256; a shorter text is one sequence)")
    p.add_argument("--out", metavar="FILE.npz", help="save outputs, cycle stamps and toggles")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--no-check", action="store_true", help="skip the golden comparison")
    p.add_argument("--workers", type=_positive, metavar="N",
                   help="split the sequences into shards and run them on N Dask worker "
                        "processes (started and stopped by the command); same results as one "
                        "process, bit for bit")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the shards on an existing Dask cluster, e.g. tcp://HOST:8786 "
                        "(default: $SHIFTRNN_SCHEDULER if set)")
    p.set_defaults(func=_simulate)


def _run(fn, *a, **kw):
    """Turn toolchain/build/simulator failures into one clear CLI error line."""
    from sim.build import BuildError
    from sim.toolchain import ToolchainError

    try:
        return fn(*a, **kw)
    except (ToolchainError, BuildError) as e:
        raise CliError(str(e)) from None
    except RuntimeError as e:
        raise CliError(f"simulation failed: {e}") from None


def _verify(args) -> int:
    import sim

    res = _run(sim.verify, args.design, sequences=args.sequences, length=args.length,
               seed=args.seed, idle_prob=args.idle, backpressure=args.backpressure,
               waves=args.waves)
    print(res.summary())
    if not res.passed and res.log:
        print(f"log: {res.log}")
    return 0 if res.passed else 1


def corpus_tokens(text: str, model, length: int) -> np.ndarray:
    """Token sequences ``(batch, length)`` of a text for a token model.

    Characters map through ``model.meta['vocab']`` when present (an unknown character is an
    error), else each UTF-8 byte modulo ``input_size``. The text is cut into ``length``-character
    sequences (a remainder shorter than ``length`` is dropped unless it is the whole text).
    """
    vocab = (model.meta or {}).get("vocab")
    if vocab:
        index = {ch: i for i, ch in enumerate(vocab)}
        missing = sorted({ch for ch in text if ch not in index})
        if missing:
            shown = "".join(missing[:20])
            raise CliError(f"{len(missing)} character(s) of the corpus are not in the model's "
                           f"vocabulary: {shown!r}")
        toks = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
    else:
        toks = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
        toks %= model.input_size
    if toks.size == 0:
        raise CliError("the corpus is empty")
    if toks.size < length:
        return toks[None, :]
    n = toks.size // length
    return toks[: n * length].reshape(n, length)


def load_inputs(path, model) -> np.ndarray:
    """Integer inputs for ``model`` from a ``.npy`` file (floats are quantized)."""
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CliError(f"{path}: not a readable .npy array ({type(e).__name__}: {e})") from None
    if model.input_kind == "token":
        if x.ndim == 1:
            x = x[None, :]
        if not np.issubdtype(x.dtype, np.integer):
            raise CliError(f"{path}: a token model needs integer token indices, got {x.dtype}")
        return model.quantize_inputs(x)
    if x.ndim == 2:
        x = x[None]
    if np.issubdtype(x.dtype, np.integer):
        fx = model.formats["x"]
        if x.ndim != 3 or x.shape[2] != model.input_size:
            raise CliError(f"{path}: expected (batch, time, {model.input_size}), got {x.shape}")
        if x.min() < fx.min_int or x.max() > fx.max_int:
            raise CliError(f"{path}: integers outside formats.x {fx} ([{fx.min_int}, "
                           f"{fx.max_int}]); pass floats to have them quantized")
        return x.astype(np.int64)
    return model.quantize_inputs(x)


def _simulate(args) -> int:
    import sim

    design = sim.Design(args.design)
    model = design.model
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    if args.corpus:
        if model.input_kind != "token":
            raise CliError("--corpus needs a token-input model; use --inputs for vector models")
        text = Path(args.corpus).read_text(encoding="utf-8", errors="replace")
        x = corpus_tokens(text, model, args.length)
        print(f"corpus {args.corpus}: {x.size} characters as {x.shape[0]} sequence(s) of "
              f"{x.shape[1]}")
    else:
        x = load_inputs(args.inputs, model)
    from sim.shard import SCHEDULER_ENV

    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    res = _run(sim.simulate, design, x, check=not args.no_check, workers=args.workers,
               scheduler=scheduler, progress=True)
    print(res.summary(design.name))
    if out is not None:
        from golden import atomic_write_bytes

        buf = io.BytesIO()
        np.savez_compressed(buf, outputs=res.outputs, in_cycles=res.in_cycles,
                            out_cycles=res.out_cycles, cycles=np.int64(res.cycles),
                            bpc=np.float64(np.nan if res.bpc is None else res.bpc),
                            toggles=np.frombuffer(json.dumps(
                                {"toggles": res.toggles, "bits": res.toggle_bits}).encode(),
                                dtype=np.uint8))
        atomic_write_bytes(out, buf.getvalue())
        print(f"wrote {out}")
    return 0 if res.passed else 1
