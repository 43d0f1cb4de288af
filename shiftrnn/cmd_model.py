"""Model subcommands: ``random-model``, ``import``, ``info`` and ``run``.

``random-model`` and ``import`` write a model file (``.npz`` + JSON header); ``info`` describes
one; ``run`` puts inputs through the golden model. Outputs are never overwritten without
``--force``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

import golden
from golden.model import FORMAT_NAMES, INPUT_KINDS
from golden.quantize import method_params

from .cli import CliError

__all__ = ["parse_format", "register"]

CELL_CHOICES = tuple(golden.CELLS)


# ----------------------------------------------------------------------------- parsing helpers
def parse_format(text: str) -> tuple[str, golden.Fixed]:
    """``NAME=BITS.FRAC`` (optionally ``NAME=U8.7`` / ``NAME=S8.6``) to ``(name, Fixed)``.

    The gate format is unsigned and every other one signed unless the prefix says otherwise.
    """
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or name not in FORMAT_NAMES:
        raise CliError(
            f"--format {text!r}: expected NAME=BITS.FRAC with NAME one of "
            f"{', '.join(FORMAT_NAMES)} (e.g. h=8.6)"
        )
    spec = spec.strip()
    signed = name != "gate"
    if spec[:1] in ("U", "u", "S", "s"):
        signed, spec = spec[0] in "Ss", spec[1:]
    bits, dot, frac = spec.partition(".")
    try:
        if not dot:
            raise ValueError("no '.'")
        fmt = golden.Fixed(int(bits), int(frac), signed)
    except ValueError as e:
        raise CliError(
            f"--format {text!r}: BITS.FRAC must be two integers, bits 1..62 (signed >= 2), "
            f"frac -64..62, e.g. {name}=8.6 ({e})"
        ) from None
    return name, fmt


def parse_method_param(text: str) -> tuple[str, float | int]:
    """``KEY=VALUE`` with a numeric value."""
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        num = float(value)
    except ValueError:
        raise CliError(f"--method-param {text!r}: expected KEY=NUMBER, e.g. kmin=-6") from None
    return key.strip(), int(num) if num.is_integer() and "." not in value else num


def _formats(args) -> dict[str, golden.Fixed]:
    out = {}
    for text in args.format or []:
        name, fmt = parse_format(text)
        out[name] = fmt
    return out


def _method_params(args) -> dict:
    params = dict(parse_method_param(t) for t in args.method_param or [])
    try:
        method_params(args.method, (1, 1), **params)
    except ValueError as e:
        raise CliError(f"--method-param: {e}") from None
    return params


def _positive(name: str):
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v

    return conv


def _check_out(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise CliError(f"{path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise CliError(f"{path} is a folder; --out needs a file name")


def _add_quant_options(p: argparse.ArgumentParser, input_kind_default: str) -> None:
    p.add_argument("--method", required=True, choices=golden.METHODS,
                   help="weight quantizer (DESIGN.md section 1)")
    p.add_argument("--method-param", action="extend", nargs="+", metavar="KEY=VALUE",
                   help="quantizer parameter: H (binary), W0 (ternary), i, f (pow2-ternary), "
                        "kmin, kmax (exponential)")
    p.add_argument("--nonlinearity", default="hard", choices=golden.KINDS,
                   help="sigmoid/tanh implementation (default: hard)")
    p.add_argument("--input-kind", default=input_kind_default, choices=INPUT_KINDS,
                   help=f"token index or Fixed vector input (default: {input_kind_default})")
    p.add_argument("--format", action="extend", nargs="+", metavar="NAME=BITS.FRAC",
                   help="Fixed format override, NAME one of " + ", ".join(FORMAT_NAMES) + "; "
                        "defaults: " + ", ".join(f"{k}={v.bits}.{v.frac}"
                                                 for k, v in golden.DEFAULT_FORMATS.items()))
    p.add_argument("--scale-terms", type=_positive("--scale-terms"), default=2, metavar="K",
                   help="CSD terms of each non-power-of-two scale (default: 2; 1 = a shift)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help="model file to write (.npz)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


# ------------------------------------------------------------------------------- subcommands
def cmd_random_model(args) -> int:
    _check_out(args.out, args.force)
    model = golden.Model.random(
        args.cell, args.method, args.input, args.hidden, output_size=args.output,
        layers=args.layers, input_kind=args.input_kind, seed=args.seed,
        formats=_formats(args), nonlinearity=golden.Nonlinearity(args.nonlinearity),
        scale_terms=args.scale_terms, method_params=_method_params(args),
    )
    model.save(args.out, force=args.force)
    print(f"wrote {args.out} ({_one_line(model)})")
    return 0


def cmd_import(args) -> int:
    from golden.importer import from_state_dict, load_torch

    _check_out(args.out, args.force)
    try:
        sd = load_torch(args.file)
    except ImportError as e:
        raise CliError(str(e)) from None
    try:
        model = from_state_dict(
            sd, args.cell, args.method, input_kind=args.input_kind,
            nonlinearity=golden.Nonlinearity(args.nonlinearity), formats=_formats(args),
            scale_terms=args.scale_terms, method_params=_method_params(args),
            meta={"source": str(args.file)},
        )
    except ValueError as e:
        raise CliError(f"{args.file}: {e}") from None
    model.save(args.out, force=args.force)
    print(f"wrote {args.out} ({_one_line(model)})")
    return 0


def _one_line(m: golden.Model) -> str:
    out = f", output {m.output_size}" if m.head is not None else ""
    return (f"{m.cell} {m.method}, {m.input_kind} input {m.input_size}, hidden {m.hidden_size}"
            f"{out}, {len(m.layers)} layer{'s' if len(m.layers) > 1 else ''}")


def model_info(m: golden.Model) -> dict:
    """Everything ``info --json`` prints: header, widths, op counts, hash."""
    return {
        "hash": m.hash(),
        "cell": m.cell,
        "method": m.method,
        "method_params": m.method_params,
        "input_kind": m.input_kind,
        "input_size": int(m.input_size),
        "hidden_size": int(m.hidden_size),
        "output_size": m.output_size,
        "num_layers": len(m.layers),
        "scale_terms": m.scale_terms,
        "bias_mode": m.bias_mode,
        "formats": {k: str(m.formats[k]) for k in FORMAT_NAMES},
        "nonlinearity": {**m.nonlinearity.to_dict(), "describe": m.nonlinearity.describe()},
        "scales": [
            {name: {"scale": q.scale, "C": q.C, "shift": q.shift}
             for name, q in (("w_ih", layer.w_ih), ("w_hh", layer.w_hh))}
            for layer in m.layers
        ],
        "widths": m.widths(),
        "ops_per_step": m.op_counts(),
        "meta": m.meta,
    }


def cmd_info(args) -> int:
    m = golden.load(args.file)
    info = model_info(m)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    lines = [
        f"{args.file}",
        f"  hash          {info['hash']}",
        f"  cell          {m.cell}, {len(m.layers)} layer(s)",
        f"  sizes         {m.input_kind} input {m.input_size}, hidden {m.hidden_size}, "
        f"output {m.output_size if m.head is not None else '- (no head)'}",
        f"  method        {m.method} {m.method_params or ''}".rstrip()
        + f", scale terms {m.scale_terms}, bias {m.bias_mode}",
        "  formats       " + ", ".join(f"{k}={m.formats[k]}" for k in FORMAT_NAMES),
        f"  nonlinearity  {m.nonlinearity.describe()}",
    ]
    for i, (lw, sc) in enumerate(zip(info["widths"]["layers"], info["scales"], strict=True)):
        lines.append(
            f"  layer {i}       acc_ih {lw['acc_ih']} bits (|sum| <= {lw['bound_ih']}), "
            f"acc_hh {lw['acc_hh']} bits (|sum| <= {lw['bound_hh']}); scales "
            f"C={sc['w_ih']['C']}*2^{sc['w_ih']['shift']}, C={sc['w_hh']['C']}*2^"
            f"{sc['w_hh']['shift']}"
        )
    if "head" in info["widths"]:
        hw = info["widths"]["head"]
        lines.append(f"  head          acc {hw['acc']} bits (|sum| <= {hw['bound']})")
    ops = info["ops_per_step"]
    lines += [
        "  ops per step  adds " + ", ".join(f"{n}x{w}b" for w, n in sorted(
            ops["add"].items(), key=lambda kv: int(kv[0]))) + f"; shifts {ops['shift']}",
        "                gate products " + (", ".join(f"{n}x({k})" for k, n in
                                                  ops["gate_mul"].items()) or "none")
        + "; nonlinearities " + ", ".join(f"{k} {v}" for k, v in ops["nonlin"].items()),
        f"                weights {ops['weights']}, weight bits read {ops['weight_bits_read']}",
    ]
    if m.meta:
        lines.append(f"  meta          {json.dumps(m.meta, sort_keys=True)}")
    print("\n".join(lines))
    return 0


def cmd_run(args) -> int:
    _check_out(args.out, args.force)
    m = golden.load(args.model)
    path = Path(args.inputs)
    if not path.is_file():
        raise CliError(f"{path}: no such inputs file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError, OSError, EOFError, ...
        raise CliError(f"{path}: not a readable .npy array ({type(e).__name__}: {e})") from None
    if not isinstance(x, np.ndarray):
        raise CliError(f"{path}: holds several arrays (.npz); --inputs needs one .npy array")
    try:
        r = m.run(x, mode=args.mode)
    except ValueError as e:
        raise CliError(f"{path}: {e} (model {args.model}: {m.input_kind} input, "
                       f"input size {m.input_size})") from None
    out = {"hidden": r.h}
    if r.logits is not None:
        out["logits"] = r.logits
    if args.mode == "int":
        out["hidden_int"] = r.hidden_int[-1]
        if r.logits_int is not None:
            out["logits_int"] = r.logits_int
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    golden.atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out} ({', '.join(f'{k} {v.shape}' for k, v in out.items())}; "
          f"mode {args.mode})")
    return 0


# ---------------------------------------------------------------------------------- register
def register(sub) -> None:
    """Add ``random-model``, ``import``, ``info`` and ``run`` to the ``shiftrnn`` parser."""
    p = sub.add_parser("random-model", help="write a random quantized model (tests, demos)",
                       description="Write a random quantized model file.")
    p.add_argument("--cell", required=True, choices=CELL_CHOICES)
    p.add_argument("--input", required=True, type=_positive("--input"), metavar="N",
                   help="input size (vocabulary for token input)")
    p.add_argument("--hidden", required=True, type=_positive("--hidden"), metavar="N")
    p.add_argument("--output", type=_positive("--output"), metavar="N",
                   help="add a dense head with N outputs (logits)")
    p.add_argument("--layers", type=_positive("--layers"), default=1, metavar="N")
    p.add_argument("--seed", required=True, type=int, metavar="S")
    _add_quant_options(p, "token")
    p.set_defaults(func=cmd_random_model)

    p = sub.add_parser("import", help="quantize a PyTorch nn.RNN/GRU/LSTM (.pt) into a model",
                       description="Quantize a torch.save'd state dict or nn.RNN/GRU/LSTM module "
                                   "(keys weight_ih_l{k}, ..., optional head.weight/head.bias).")
    p.add_argument("file", type=Path, metavar="FILE.pt")
    p.add_argument("--cell", required=True, choices=CELL_CHOICES)
    _add_quant_options(p, "vector")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", help="describe a model file",
                       description="Cell, sizes, method, formats, nonlinearity, accumulator "
                                   "widths, operation counts and hash of a model file.")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run the golden model on inputs",
                       description="Run the golden model on X.npy (tokens (batch, time) or "
                                   "vectors (batch, time, input)); write hidden (last layer), "
                                   "logits (with a head) and, in int mode, their integers.")
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("--inputs", required=True, type=Path, metavar="X.npy")
    p.add_argument("--out", required=True, type=Path, metavar="Y.npz")
    p.add_argument("--mode", choices=("int", "float"), default="int")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_run)
