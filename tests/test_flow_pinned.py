"""The flow's behaviour, pinned: report.md of two fixed configurations, number for number.

Each configuration runs the whole flow (a short quantization-aware training or a model file,
real Verilator, yosys where it is quick) and its ``report.md`` must equal the stored fixture in
``tests/data/flow/`` exactly, after the wall-clock figures and temporary paths are replaced by
placeholders (:func:`normalise`). A refactor that changes any number in the report fails here.

A deliberate change of the report's numbers regenerates the fixtures with
``SHIFTRNN_UPDATE_FIXTURES=1 pytest tests/test_flow_pinned.py`` and says why in its commit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import golden
from shiftrnn.flow import load_config, run_flow

FIXTURES = Path(__file__).resolve().parent / "data" / "flow"

CONFIGS = {
    # A char-level GRU trained for two short epochs on the built-in corpus, with the float
    # baseline, a multiplier baseline, generic synthesis and a two-method comparison.
    "pinned_lm": """\
name = "pinned_lm"
description = "pinned: a tiny trained GRU, every report section but place and route"

[model]
source = "train"
cell = "gru"
method = "ternary"

[train]
hidden = 8
epochs = 2
max_batches = 3
eval_every = 1
float_baseline = true

[data]
max_timesteps = 600

[hardware]
lanes = 2

[verify]
sequences = 2
length = 4
waves = false

[estimate]
targets = ["generic"]
devices = []

[compare]
methods = ["binary", "exponential"]
target = "generic"
""",
    # A model file (vector input, no head) on random sequences: the bit-exactness-only report.
    "pinned_outputs": """\
name = "pinned_outputs"

[model]
source = "file"
path = "model.npz"

[data]
sequences = 3
length = 5

[hardware]
unrolled = true

[verify]
sequences = 2
length = 3
waves = false

[estimate]
targets = []
devices = []
""",
}


def normalise(md: str, tmp: Path) -> str:
    """Replace what depends on the clock or on the temporary folder by placeholders."""
    md = md.replace(str(tmp), "<tmp>")
    md = re.sub(r"simulated at [\d,]+ cycles/s", "simulated at <rate> cycles/s", md)
    # The flow-stages table: | stage | seconds | finished | result |
    md = re.sub(r"^\| (\w+) \| [\d.]+ \| [\d-]+ [\d:]+ \|", r"| \1 | <s> | <time> |", md,
                flags=re.M)
    return re.sub(r"\(([\d.]+) s\)", "(<s> s)", md)


def _run(name: str, tmp: Path) -> str:
    cfg_path = tmp / f"{name}.toml"
    cfg_path.write_text(CONFIGS[name])
    if name == "pinned_outputs":
        golden.Model.random("lstm", "exponential", 3, 4, input_kind="vector",
                            seed=11).save(tmp / "model.npz")
    res = run_flow(load_config(cfg_path), out_dir=tmp / "rtl_out", progress=False,
                   echo=lambda s: None)
    return normalise(res.report_md.read_text(), tmp)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_report_is_pinned(tmp_path, name):
    pytest.importorskip("torch")
    got = _run(name, tmp_path)
    fixture = FIXTURES / f"{name}.md"
    if os.environ.get("SHIFTRNN_UPDATE_FIXTURES") == "1":
        fixture.parent.mkdir(parents=True, exist_ok=True)
        fixture.write_text(got)
    assert got == fixture.read_text()
