"""``shiftrnn verify`` (cocotb bench on Verilator) and ``shiftrnn simulate`` (the fast path)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from .cli import CliError
from .options import add_data_options, eval_data_from_args, positive, probability

__all__ = ["register"]


def _flow_verify(key: str):
    from .flow import SCHEMA

    return SCHEMA["verify"][key].default


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="run the cocotb bench on a generated design (bit-exact vs golden)",
        description="Build the design with Verilator (cached by the Verilog's content hash) and "
                    "run the cocotb bench: random valid gaps and backpressure, sequences of "
                    "length 1, short and long, restarts, a reset mid-stream; every output of "
                    "every timestep is compared with golden exactly and the cycles per timestep "
                    "and latency are checked against the manifest.")
    p.add_argument("design", metavar="rtl_out/NAME", help="generated design folder")
    p.add_argument("--sequences", type=positive, default=8, metavar="N",
                   help="random sequences in the stream test (default 8; the flow's [verify] "
                        f"sequences is {_flow_verify('sequences')}, for a quicker demo)")
    p.add_argument("--length", type=positive, default=24, metavar="T",
                   help="long sequence length (default 24; the flow's [verify] length is "
                        f"{_flow_verify('length')})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of every random choice")
    p.add_argument("--idle", type=probability, default=0.3, metavar="P",
                   help="probability of idle cycles before an input beat (default 0.3)")
    p.add_argument("--backpressure", type=probability, default=0.3, metavar="P",
                   help="probability of ready low in a cycle (default 0.3)")
    p.add_argument("--waves", action="store_true",
                   help="write a VCD waveform into the design folder (<design>.vcd; the flow "
                        "writes one unless [verify] waves = false)")
    p.set_defaults(func=_verify)

    p = subparsers.add_parser(
        "simulate", help="run a dataset through the Verilated design (fast C++ path)",
        description="Run whole datasets through the RTL with a compiled C++ harness (no Python "
                    "per cycle): outputs checked against golden exactly, cycles, simulated "
                    "throughput, toggle counts (ports and registers) and, for language models, "
                    "bits per character from the RTL's own logits, evaluated as `shiftrnn eval` "
                    "and the flow do (the same streams, the same next-token targets).")
    p.add_argument("design", metavar="rtl_out/NAME", help="generated design folder")
    add_data_options(p)
    p.add_argument("--out", metavar="FILE.npz", help="save outputs, cycle stamps and toggles")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--no-check", action="store_true", help="skip the golden comparison")
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


def _simulate(args) -> int:
    import sim

    from .flow.data import score

    design = sim.Design(args.design)
    model = design.model
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    data = eval_data_from_args(args, model, design.path / design.manifest.model_file)
    print(f"data: {data.describe}")
    res = _run(sim.simulate, design, data.x, check=not args.no_check)
    if data.kind == "lm":  # the evaluation's next-token targets, as `shiftrnn eval`
        res = dataclasses.replace(res, bpc=score(model, data, res.outputs, integer=True))
    print(res.summary(design.name))
    if data.kind == "classify":
        print(f"accuracy {score(model, data, res.outputs, integer=True):.4f} (the RTL's "
              "last-step logits against the labels)")
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
