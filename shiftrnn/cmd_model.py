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
from .options import positive

__all__ = ["parse_format", "register"]

CELL_CHOICES = tuple(golden.CELLS)


# ----------------------------------------------------------------------------- parsing helpers
def parse_format(text: str) -> tuple[str, golden.Fixed]:
    """``NAME=FORMAT`` (``h=S8.6``, ``gate=U8.7``; ``h=8.6`` keeps the default's sign) to
    ``(name, Fixed)`` through :func:`golden.parse_format`."""
    name, sep, spec = text.partition("=")
    if not sep:
        raise CliError(f"--format {text!r}: expected NAME=FORMAT with NAME one of "
                       f"{', '.join(FORMAT_NAMES)}, e.g. h=S8.6")
    try:
        return name.strip(), golden.parse_format(name.strip(), spec)
    except ValueError as e:
        raise CliError(f"--format {text!r}: {e}") from None


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


def _check_out(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise CliError(f"{path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise CliError(f"{path} is a folder; --out needs a file name")


def _add_quant_options(p: argparse.ArgumentParser, input_kind_default: str) -> None:
    p.add_argument("--method", required=True, choices=golden.METHODS,
                   help="weight quantizer: binary (+-H), ternary (0, +-W0), pow2-ternary "
                        "(dual-copy rounding to 0 or +-2^e, |w| <= (2^(i+f)-1)/2^f) or "
                        "exponential (+-2^k, kmin <= k <= kmax); docs/training.md describes "
                        "them")
    p.add_argument("--method-param", action="extend", nargs="+", metavar="KEY=VALUE",
                   help="quantizer parameter: H (binary), W0 (ternary), i, f (pow2-ternary), "
                        "kmin, kmax (exponential)")
    p.add_argument("--nonlinearity", default="hard", choices=golden.KINDS,
                   help="sigmoid/tanh implementation (default: hard)")
    p.add_argument("--input-kind", default=input_kind_default, choices=INPUT_KINDS,
                   help=f"token index or Fixed vector input (default: {input_kind_default})")
    p.add_argument("--format", action="extend", nargs="+", metavar="NAME=FORMAT",
                   help="Fixed format override, NAME one of " + ", ".join(FORMAT_NAMES) + ", "
                        "FORMAT [S|U]BITS.FRAC (without S/U the default's sign); defaults: "
                        + ", ".join(f"{k}={v}" for k, v in golden.DEFAULT_FORMATS.items()))
    p.add_argument("--scale-terms", type=positive, default=2, metavar="K",
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
    """Quantize a torch.save'd state dict or nn.RNN/GRU/LSTM module (keys weight_ih_l{k}, ...,
    optional head.weight/head.bias)."""
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
            {name: {"scale": q.scale, "C": _constants(q, len(golden.GATES[m.cell])),
                    "shift": q.shift}
             for name, q in (("w_ih", layer.w_ih), ("w_hh", layer.w_hh))}
            for layer in m.layers
        ],
        "widths": m.widths(),
        "ops_per_step": m.op_counts(),
        "meta": m.meta,
    }


def _constants(q: golden.QuantMatrix, gates: int):
    """The scale constants a matrix's sums meet: one (an int), one per gate (a list), or
    ``'per row'`` (row scales that differ within a gate; the generator refuses them)."""
    kind = q.scale_kind(gates)
    if kind == "row":
        return "per row"
    c = q.block_multipliers(gates)
    return c if kind == "gate" else c[0]


def cmd_info(args) -> int:
    """Cell, sizes, method, formats, nonlinearity, accumulator widths, operation counts and
    hash of a model file."""
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
        f"                weights {ops['weights']} (weight memories: see the design's "
        "manifest.json)",
    ]
    if m.meta:
        lines.append(f"  meta          {json.dumps(m.meta, sort_keys=True)}")
    print("\n".join(lines))
    return 0


#: What ``shiftrnn run`` writes (also its --help).
RUN_OUTPUTS = (
    "hidden (batch, time, hidden): the last layer's hidden state, real values; "
    "logits (batch, time, outputs): the dense head's outputs, real values (models with a head); "
    "in int mode also hidden_int and logits_int: the same as formats.h / formats.out integers, "
    "and output_int: what m_axis_tdata carries (logits_int with a head, else hidden_int)")


def cmd_run(args) -> int:
    from golden import evaluation as E

    _check_out(args.out, args.force)
    m = golden.load(args.model)
    try:
        x, _ = E.load_arrays(args.inputs)
    except E.DataError as e:
        raise CliError(f"--inputs {e}") from None
    try:
        x_int = E.model_inputs(x, m)
    except E.DataError as e:
        raise CliError(f"--inputs {args.inputs}: {e} (model {args.model}: {m.input_kind} "
                       f"input, input size {m.input_size})") from None
    if args.mode == "int":
        r = m.run_int(x_int)
        out = {"hidden": r.h, "hidden_int": r.hidden_int[-1]}
        if r.logits_int is not None:
            out.update(logits=r.logits, logits_int=r.logits_int)
        out["output_int"] = r.output_int
    else:
        given_floats = m.input_kind == "vector" and not np.issubdtype(x.dtype, np.integer)
        floats = np.reshape(x, x_int.shape) if given_floats else m.formats["x"].to_float(x_int)
        r = m.run(x_int if m.input_kind == "token" else floats, "float")
        out = {"hidden": r.h} | ({} if r.logits is None else {"logits": r.logits})
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
    p.add_argument("--input", required=True, type=positive, metavar="N",
                   help="input size (vocabulary for token input)")
    p.add_argument("--hidden", required=True, type=positive, metavar="N")
    p.add_argument("--output", type=positive, metavar="N",
                   help="add a dense head with N outputs (logits)")
    p.add_argument("--layers", type=positive, default=1, metavar="N")
    p.add_argument("--seed", required=True, type=int, metavar="S")
    _add_quant_options(p, "token")
    p.set_defaults(func=cmd_random_model)

    p = sub.add_parser("import", help="quantize a PyTorch nn.RNN/GRU/LSTM (.pt) into a model",
                       description=cmd_import.__doc__)
    p.add_argument("file", type=Path, metavar="FILE.pt")
    p.add_argument("--cell", required=True, choices=CELL_CHOICES)
    _add_quant_options(p, "vector")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", help="describe a model file",
                       description=cmd_info.__doc__)
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run the golden model on inputs",
                       description="Run the golden model on X.npy (or an .npz with 'x'): tokens "
                                   "(batch, time), or vectors (batch, time, input) as floats "
                                   "(quantized to formats.x) or as the on-wire formats.x "
                                   "integers s_axis_tdata carries (used as they are). Writes "
                                   "Y.npz with " + RUN_OUTPUTS + ".")
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("--inputs", required=True, type=Path, metavar="X.npy",
                   help="tokens, float vectors or on-wire integer vectors")
    p.add_argument("--out", required=True, type=Path, metavar="Y.npz")
    p.add_argument("--mode", choices=("int", "float"), default="int")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_run)
