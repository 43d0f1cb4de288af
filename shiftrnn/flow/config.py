"""The flow configuration: its schema, loading a TOML file, and the built-in examples.

Each ``[section]`` is a frozen dataclass whose fields are the section's keys; a field's
:func:`key` carries its kind, default, help text, choices and minimum. Adding a key is adding
one field (the README's reference table lists every key; a test checks it). :data:`SCHEMA` is
derived from the dataclasses, and :func:`parse_config` checks a parsed TOML document against it.

The built-in examples (``shiftrnn demo``) are package data, ``shiftrnn/flow/examples/*.toml``;
the repository's ``examples/*.toml`` are the same files (a test checks it).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import estimate
import golden
from golden.evaluation import CORPUS_FORMATS, DEFAULT_MAX_TIMESTEPS
from hw import DATAPATHS
from train.recipes import RECIPES

from .errors import FlowError

__all__ = [
    "DEMO_EXAMPLE", "EXAMPLES", "SCHEMA", "SECTIONS", "CompareSection", "DataSection",
    "EstimateSection", "FlowConfig", "HardwareSection", "ModelSection", "Opt", "TopSection",
    "TrainSection", "VerifySection", "builtin_config", "check_name", "check_value", "close_hint",
    "key", "load_config", "parse_config",
]

#: Name of the built-in example ``shiftrnn demo`` runs.
DEMO_EXAMPLE = "gru"


@dataclass(frozen=True)
class Opt:
    """One configuration key: kind, default, help, choices, minimum.

    ``kind`` is ``int``, ``float``, ``bool``, ``str``, ``path`` (a file, relative to the
    configuration), ``list`` (of strings) or ``table``.
    """

    kind: str
    default: object
    help: str
    choices: tuple | None = None
    minimum: float | None = None


def key(kind: str, default, help: str, *, choices=None, minimum=None):
    """A section field: the default plus its :class:`Opt` (in the field's metadata)."""
    opt = Opt(kind, default, help, None if choices is None else tuple(choices), minimum)
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"opt": opt})
    return field(default=default, metadata={"opt": opt})


# ==================================================================================== schema
@dataclass(frozen=True)
class TopSection:
    """Top-level keys."""

    name: str | None = key("str", None, "design name: outputs go to rtl_out/NAME (default: the "
                           "config file's name)")
    description: str = key("str", "", "one line shown in the report")


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: where the network comes from and how it is quantized."""

    source: str = key("str", "train", "where the network comes from: 'train' (quantization-"
                      "aware training), 'torch' (a torch.save'd nn.RNN/GRU/LSTM state dict) or "
                      "'file' (a shiftrnn model .npz)", choices=("train", "torch", "file"))
    path: str | None = key("path", None, "the .pt (torch) or .npz (file), relative to the "
                           "config")
    cell: str = key("str", "gru", "recurrent cell (train, torch)", choices=golden.CELLS)
    method: str = key("str", "ternary", "weight quantizer (train, torch)",
                      choices=golden.METHODS)
    method_params: dict = key("table", {}, "quantizer parameters: H, W0, i, f, kmin, kmax")
    nonlinearity: str = key("str", "hard", "sigmoid/tanh implementation (train, torch)",
                            choices=golden.KINDS)
    scale_terms: int = key("int", 2, "CSD terms of each non-power-of-two scale", minimum=1)
    bias_mode: str = key("str", "quantized", "biases quantized like their matrix or fixed",
                         choices=golden.BIAS_MODES)
    input_kind: str = key("str", "token", "token index or Fixed vector input (torch)",
                          choices=golden.INPUT_KINDS)
    formats: dict = key("table", {}, "activation Fixed formats, NAME = \"S8.6\" (x, h, c, "
                        "pre, gate, act, out; without S/U a format keeps its default's sign: "
                        "gate is unsigned)")


@dataclass(frozen=True)
class TrainSection:
    """``[train]``: quantization-aware training of a character language model."""

    corpus: str = key("path", "builtin", "character corpus: 'builtin' (train/corpus.txt) or a "
                      "text file, split 90/5/5")
    corpus_format: str = key("str", "auto", "plain text or Penn Treebank char format",
                             choices=CORPUS_FORMATS)
    recipe: str = key("str", "learned", "training recipe (scales, thresholds, learning "
                      "rates; docs/training.md)", choices=tuple(RECIPES))
    hidden: int = key("int", 32, "hidden units", minimum=1)
    layers: int = key("int", 1, "recurrent layers (1 or 2)", minimum=1)
    epochs: int = key("int", 20, "passes over the training text", minimum=1)
    batch: int = key("int", 64, "parallel streams", minimum=1)
    seq_len: int = key("int", 32, "truncated back-propagation length", minimum=1)
    lr: float = key("float", 5e-3, "Adam learning rate (cosine decay)", minimum=0)
    seed: int = key("int", 0, "seed of everything random")
    fake_quant: bool = key("bool", True, "narrow activations to the Fixed formats in training "
                           "(the integer path then keeps the trained BPC)")
    stochastic: bool = key("bool", False, "stochastic weight quantization in training")
    eval_every: int = key("int", 5, "validate every N epochs", minimum=1)
    max_batches: int | None = key("int", None, "cap on batches per epoch", minimum=1)
    threads: int = key("int", 1, "torch threads", minimum=1)
    keep_last: bool = key("bool", False, "export the last epoch, not the best validated one")
    float_baseline: bool = key("bool", False, "also train the unquantized network (same "
                               "budget) for the accuracy table")


@dataclass(frozen=True)
class DataSection:
    """``[data]``: what quantize and simulate evaluate on."""

    corpus: str | None = key("path", None, "evaluation text (default: the test split of the "
                             "training corpus, or of the corpus the model file records)")
    corpus_format: str = key("str", "auto", "format of the evaluation text",
                             choices=CORPUS_FORMATS)
    inputs: str | None = key("path", None, "evaluation inputs: .npy (batch, time[, input]) or "
                             ".npz with 'x' (and labels 'y')")
    max_timesteps: int = key("int", DEFAULT_MAX_TIMESTEPS, "cap on evaluated timesteps",
                             minimum=2)
    sequences: int = key("int", 16, "random sequences when there is no data", minimum=1)
    length: int = key("int", 32, "length of the random sequences", minimum=2)
    seed: int = key("int", 0, "seed of the random sequences")


@dataclass(frozen=True)
class HardwareSection:
    """``[hardware]``: how the design is built."""

    lanes: int | None = key("int", None, "hidden units computed in parallel (folded; default "
                            "1)", minimum=1)
    unrolled: bool = key("bool", False, "weights as wiring, one timestep in a few cycles")
    datapath: str = key("str", "shiftadd", "shiftadd (multiplier-free) or mult (baseline)",
                        choices=DATAPATHS)


@dataclass(frozen=True)
class VerifySection:
    """``[verify]``: the cocotb bench."""

    sequences: int = key("int", 4, "random sequences in the cocotb stream test", minimum=1)
    length: int = key("int", 12, "long sequence length", minimum=1)
    seed: int = key("int", 0, "seed of every random choice of the bench")
    idle: float = key("float", 0.3, "probability of idle input cycles", minimum=0)
    backpressure: float = key("float", 0.3, "probability of output ready low", minimum=0)
    waves: bool = key("bool", True, "record a VCD waveform (rtl_out/NAME/NAME.vcd)")
    lint: bool = key("bool", True, "Verilator -Wall lint")


@dataclass(frozen=True)
class EstimateSection:
    """``[estimate]``: synthesis, place and route, energy."""

    targets: tuple = key("list", ("generic", "ice40"), "yosys targets: "
                         f"{', '.join(estimate.TARGETS)} ([] to skip synthesis)",
                         choices=estimate.TARGETS)
    devices: tuple = key("list", ("up5k",), "nextpnr devices for fit and fmax: "
                         f"{', '.join(estimate.DEVICES)} ([] to skip)",
                         choices=tuple(estimate.DEVICES))
    baseline: bool = key("bool", True, "generate and synthesise the multiplier datapath too")
    baseline_pnr: bool = key("bool", False, "also place and route the multiplier baseline")
    synth_timeout: float = key("float", 1800.0, "seconds before yosys is stopped", minimum=1)
    pnr_timeout: float = key("float", 900.0, "seconds before nextpnr is stopped (the result "
                             "is then 'timed out')", minimum=1)


@dataclass(frozen=True)
class CompareSection:
    """``[compare]``: ``shiftrnn compare`` inside the estimate stage."""

    methods: tuple = key("list", (), "low-precision methods to build side by side with the "
                         "int8-multiplier and float32 baselines at the same lanes "
                         "(shiftrnn compare; [] to skip)", choices=golden.METHODS)
    target: str = key("str", "ice40", "synthesis target of the comparison",
                      choices=estimate.TARGETS)
    place: bool = key("bool", False, "place and route every variant too (slower)")


#: Section name (``""``: top level) -> its dataclass.
SECTIONS = {"": TopSection, "model": ModelSection, "train": TrainSection, "data": DataSection,
            "hardware": HardwareSection, "verify": VerifySection, "estimate": EstimateSection,
            "compare": CompareSection}
#: ``{section: {key: Opt}}``, from :data:`SECTIONS`.
SCHEMA = {sec: {f.name: f.metadata["opt"] for f in dataclasses.fields(cls)}
          for sec, cls in SECTIONS.items()}


@dataclass(frozen=True)
class FlowConfig:
    """A checked flow configuration (every key present, paths absolute). Picklable.

    Attributes
    ----------
    name : str
        Design name; outputs go to ``OUT_DIR/NAME``.
    source : str
        Where the configuration came from (file path or ``<built-in example X>``).
    text : str
        The TOML text (shown in the report).
    given : frozenset of str
        ``section.key`` names set explicitly in the file.
    description : str
    model, train, data, hardware, verify, estimate, compare
        The sections.
    """

    name: str
    source: str
    text: str
    given: frozenset
    description: str
    model: ModelSection
    train: TrainSection
    data: DataSection
    hardware: HardwareSection
    verify: VerifySection
    estimate: EstimateSection
    compare: CompareSection

    def section(self, name: str) -> dict:
        """One section's keys and values (``''``: the top level), e.g. for hashing."""
        if name == "":
            return {"name": self.name, "description": self.description}
        return dataclasses.asdict(getattr(self, name))

    def sections(self) -> dict:
        """Every section as ``{section: {key: value}}``."""
        return {sec: self.section(sec) for sec in SECTIONS}


# ================================================================================== checking
def _fail(where: str, msg: str) -> FlowError:
    return FlowError(f"{where}: {msg}")


def close_hint(value, choices) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``choices``, else ``""``."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], 1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_WANT = {"int": "an integer", "float": "a number", "bool": "true or false",
         "str": "a non-empty string", "path": "a file path (string)",
         "list": "a list of strings", "table": "a table { key = value, ... }"}


def _type_ok(kind: str, v) -> bool:
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind == "bool":
        return isinstance(v, bool)
    if kind in ("str", "path"):
        return isinstance(v, str) and v != ""
    if kind == "list":
        return isinstance(v, list) and all(isinstance(s, str) for s in v)
    return isinstance(v, dict)


def check_value(where: str, opt: Opt, v, base_dir: Path | None):
    """One key's value as a configuration file gives it, checked against its :class:`Opt`.

    Returns the value as the section holds it (floats as float, lists as tuples, paths resolved
    against ``base_dir``). ``where`` names the file and key and ends with the key's name.

    Raises
    ------
    FlowError
        ``where: what is wrong`` with the allowed values.
    """
    if not _type_ok(opt.kind, v):
        raise _fail(where, f"expected {_WANT[opt.kind]}, got {v!r}")
    if opt.kind == "float":
        v = float(v)
    if opt.kind == "list":
        v = tuple(v)
        bad = [s for s in v if opt.choices is not None and s not in opt.choices]
        if bad:
            raise _fail(where, f"unknown {where.rsplit(' ', 1)[-1].rstrip('s')} {bad[0]!r}"
                        f"{close_hint(bad[0], opt.choices)}; choose from {', '.join(opt.choices)}")
    elif opt.choices is not None and v not in opt.choices:
        raise _fail(where, f"{v!r} is not one of {', '.join(map(repr, opt.choices))}"
                    f"{close_hint(v, opt.choices)}")
    if opt.minimum is not None and v < opt.minimum:
        raise _fail(where, f"must be >= {opt.minimum:g}, got {v!r}")
    if opt.kind == "path" and v != "builtin" and base_dir is not None:
        v = str((base_dir / v).resolve()) if not Path(v).is_absolute() else v
    return v


def misplaced_hint(section: str, key_: str) -> str:
    """`` (it belongs in [train]: train.hidden)`` when ``key_`` is a key of another section of
    the flow schema, else ``""``."""
    for sec, opts in SCHEMA.items():
        if sec and sec != section and key_ in opts:
            return f" (it belongs in [{sec}]: {sec}.{key_})"
    return ""


def _unknown_top(source: str, key_: str) -> FlowError:
    known = list(SCHEMA[""]) + [f"[{s}]" for s in SCHEMA if s]
    hint = close_hint(key_, list(SCHEMA) + list(SCHEMA[""]))
    return _fail(source, f"unknown key or section {key_!r}{hint}; known: {', '.join(known)}")


def _read_sections(data: dict, source: str, base_dir: Path | None
                   ) -> tuple[dict[str, dict], set[str]]:
    """``{section: {key: checked value}}`` of the keys present, and their ``section.key``."""
    for key_, value in data.items():
        if key_ in SCHEMA and key_ and not isinstance(value, dict):
            raise _fail(source, f"{key_!r} must be a section [{key_}], got {value!r}")
        if key_ not in SCHEMA and key_ not in SCHEMA[""]:
            raise _unknown_top(source, key_)
    values: dict[str, dict] = {s: {} for s in SCHEMA}
    given: set[str] = set()
    for sec, opts in SCHEMA.items():
        table = {k: v for k, v in data.items() if k not in SCHEMA or not k} if not sec else \
            data.get(sec, {})
        for key_, value in table.items():
            if key_ not in opts:
                hint = misplaced_hint(sec, key_) or close_hint(key_, opts)
                raise FlowError(f"{source}: [{sec or 'top level'}] unknown key {key_!r}"
                                f"{hint}; known keys: {', '.join(opts)}")
            where = f"{source}: [{sec}] {key_}" if sec else f"{source}: {key_}"
            values[sec][key_] = check_value(where, opts[key_], value, base_dir)
            given.add(f"{sec}.{key_}" if sec else key_)
    return values, given


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
    values, given = _read_sections(data, source, base_dir)
    sections = {sec: cls(**values[sec]) for sec, cls in SECTIONS.items()}
    name = check_name(sections[""].name or default_name, f"{source}: name")
    cfg = FlowConfig(name=name, source=source, text=text, given=frozenset(given),
                     description=sections[""].description,
                     **{sec: s for sec, s in sections.items() if sec})
    _check_combinations(cfg)
    return cfg


def check_name(name: str, where: str) -> str:
    """A design (or sweep) name must be a plain folder name; returns it."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise _fail(where, f"{name!r} must be a plain folder name (letters, digits, '_', '-', "
                    "'.'), e.g. name = \"gru-ternary\"")
    return name


def _check_model_source(cfg: FlowConfig) -> None:
    source, m, tr, given = cfg.source, cfg.model, cfg.train, cfg.given
    if m.source == "train":
        if m.path is not None:
            raise _fail(f"{source}: [model] path", "is for source = 'torch' or 'file'; "
                        "source = 'train' trains a new network (drop path, or set the source)")
        if tr.layers not in (1, 2):
            raise _fail(f"{source}: [train] layers", f"training supports 1 or 2 layers, got "
                        f"{tr.layers}")
        if tr.stochastic and m.method == "pow2-ternary":
            raise _fail(f"{source}: [train] stochastic", "pow2-ternary has no stochastic form; "
                        "set stochastic = false")
        check_lanes(cfg, tr.hidden)
        if m.input_kind != "token" and "model.input_kind" in given:
            raise _fail(f"{source}: [model] input_kind", "training makes a character language "
                        "model (token input); vector input needs source = 'torch' or 'file'")
        return
    if m.path is None:
        raise _fail(f"{source}: [model] path", f"source = {m.source!r} needs path = "
                    f"\"FILE{'.pt' if m.source == 'torch' else '.npz'}\"")
    extra = sorted(k for k in given if k.startswith("train."))
    if extra:
        raise _fail(f"{source}: [train]", f"{extra[0]} applies only to source = 'train' "
                    f"(this config's source is {m.source!r}); remove the [train] section")
    own = sorted(k for k in given if k.split(".")[0] == "model" and k.split(".")[1] in
                 ("cell", "method", "method_params", "nonlinearity", "scale_terms", "bias_mode",
                  "input_kind"))
    if m.source == "file" and own:
        raise _fail(f"{source}: [model] {own[0].split('.')[1]}", "a model file brings its own "
                    "cell, method and nonlinearity; remove the key (or use source = 'torch' to "
                    "quantize float weights)")


def check_lanes(cfg: FlowConfig, hidden: int) -> None:
    """``[hardware] lanes`` must not exceed the hidden size (known from ``[train]`` or the
    model)."""
    lanes = cfg.hardware.lanes
    if lanes is not None and lanes > hidden:
        raise FlowError(f"{cfg.source}: [hardware] lanes = {lanes} is larger than the hidden "
                        f"size {hidden} of the model; use lanes between 1 and {hidden}, or "
                        "unrolled = true for a fully parallel design")


def _check_combinations(cfg: FlowConfig) -> None:
    """Cross-key checks that need no model (the hidden-size checks come with the model)."""
    source = cfg.source
    _check_model_source(cfg)
    if cfg.hardware.unrolled and cfg.hardware.lanes is not None:
        raise _fail(f"{source}: [hardware]", f"lanes = {cfg.hardware.lanes} and unrolled = true"
                    " contradict each other; keep one (unrolled computes all hidden units at "
                    "once)")
    if cfg.data.corpus is not None and cfg.data.inputs is not None:
        raise _fail(f"{source}: [data]", "give corpus (text for a token model) or inputs "
                    "(arrays), not both")
    for key_ in ("idle", "backpressure"):
        if not 0 <= getattr(cfg.verify, key_) < 1:
            raise _fail(f"{source}: [verify] {key_}", f"must be in [0, 1), got "
                        f"{getattr(cfg.verify, key_)}")
    for k, v in cfg.model.method_params.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _fail(f"{source}: [model] method_params.{k}", f"expected a number, got {v!r}")
    model_formats(cfg)


def model_formats(cfg: FlowConfig) -> dict[str, golden.Fixed]:
    """``[model] formats`` as :class:`golden.Fixed` (checked)."""
    out = {}
    for name, text in cfg.model.formats.items():
        try:
            out[name] = golden.parse_format(name, text)
        except ValueError as e:
            close = difflib.get_close_matches(name, golden.FORMAT_NAMES, 1)
            hint = f" (did you mean {close[0]!r}?)" if close and name not in \
                golden.FORMAT_NAMES else ""
            raise _fail(f"{cfg.source}: [model] formats.{name}", f"{e}{hint}") from None
    return out


# =================================================================================== loading
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


def _examples() -> dict[str, str]:
    folder = importlib.resources.files(__package__) / "examples"
    return {p.name.removesuffix(".toml"): p.read_text(encoding="utf-8")
            for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".toml")}


#: The built-in examples, name -> TOML text (package data; the same text as examples/*.toml).
#: Small enough to run the whole flow in a few minutes on two cores, on the built-in corpus.
EXAMPLES = _examples()


def builtin_config(example: str = DEMO_EXAMPLE) -> FlowConfig:
    """One of the built-in :data:`EXAMPLES` (no file needed)."""
    if example not in EXAMPLES:
        raise FlowError(f"no built-in example {example!r}; choose one of "
                        f"{', '.join(EXAMPLES)}")
    text = EXAMPLES[example]
    return parse_config(tomllib.loads(text), source=f"<built-in example {example}>",
                        base_dir=None, default_name=example, text=text)
