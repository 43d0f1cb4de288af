"""Energy model arithmetic, checked against hand-computed numbers; the weight memories it
prices are the ROMs in the generated Verilog."""

import re

import pytest

import golden
import hw
from estimate import BASELINES, activity_energy, datapath_energy, design_energy
from estimate.energy import PJ_PER_TOGGLE, SRAM_PJ_PER_BIT, add_energy_pj, mult_energy_pj
from golden.manifest import Manifest, Memory

# A tiny op-count dict in golden's format.
OPS = {
    "add": {"8": 10, "16": 4},
    "shift": 7,
    "gate_mul": {"8x4": 2},
    "nonlin": {"sigmoid": 2, "tanh": 1},
    "weights": 20,
    "mac_width": {"x": 8, "acc": 16},
}
#: Two weight memories: 64 + 48 bits stored, 8 x 12 + 2 x 16 = 128 bits read per timestep.
MEMORIES = (Memory("rom_ih0", "layer0.w_ih", 8, 8, 12), Memory("rom_hh0", "layer0.w_hh", 3, 16, 2))


def test_published_points_and_scaling():
    assert add_energy_pj(8) == pytest.approx(0.03)
    assert add_energy_pj(32) == pytest.approx(0.1)
    assert add_energy_pj(16) == pytest.approx(0.03 + 8 * 0.07 / 24)  # 0.05333
    assert mult_energy_pj(8, 8) == pytest.approx(0.2)
    assert mult_energy_pj(32, 32) == pytest.approx(3.2)  # published 3.1: within 5 %
    assert abs(mult_energy_pj(32, 32) - 3.1) / 3.1 < 0.05
    assert SRAM_PJ_PER_BIT == pytest.approx(10 / 64)


def test_shiftadd_by_hand():
    e = datapath_energy(OPS, "shiftadd", memories=MEMORIES, label="tiny")
    # adds: 10 x 0.03 + 4 x (0.03 + 8*0.07/24) = 0.3 + 0.213333
    add = 0.3 + 4 * (0.03 + 8 * 0.07 / 24)
    # gate products 8x4: min(8,4) = 4 adds of 12 bits each, 2 products
    gate = 2 * 4 * (0.03 + 4 * 0.07 / 24)
    # 3 nonlinearities x 3 adds of the 16-bit accumulator width
    nonlin = 3 * 3 * (0.03 + 8 * 0.07 / 24)
    read = 128 * 10 / 64  # 20 pJ
    assert e.breakdown["add"] == pytest.approx(add)
    assert e.breakdown["gate_mul"] == pytest.approx(gate)
    assert e.breakdown["nonlin"] == pytest.approx(nonlin)
    assert e.breakdown["weight_read"] == pytest.approx(read)
    assert e.counts["weight_bits_read"] == 128 and e.counts["weight_memory_bits"] == 112
    assert e.per_timestep_pj == pytest.approx(21.3266667, rel=1e-6)
    assert e.per_timestep_pj == pytest.approx(add + gate + nonlin + read)
    assert e.per_sequence_pj(5) == pytest.approx(5 * 21.3266667, rel=1e-6)
    assert e.counts["shift"] == 7 and e.counts["add"] == 14 and e.counts["gate_mul_adds"] == 8
    assert e.label == "tiny" and not e.relative


def test_unrolled_reads_no_weight_memory():
    e = datapath_energy(OPS, "shiftadd", memories=())
    assert e.breakdown["weight_read"] == 0.0 and e.counts["weight_bits_read"] == 0
    assert e.per_timestep_pj == pytest.approx(21.3266667 - 20.0, rel=1e-6)


def test_integer_width_keys_accepted():
    ops = dict(OPS, add={8: 10, 16: 4})
    assert datapath_energy(ops, "shiftadd", memories=MEMORIES).per_timestep_pj == \
        pytest.approx(21.3266667, rel=1e-6)


def test_baselines_by_hand():
    f = datapath_energy(OPS, "float32")
    # 20 weights x (3.7 + 0.9) + 20 x 32 bits x 10/64 + 2 gate products x 3.7
    assert f.breakdown == pytest.approx(
        {"mac_mult": 74.0, "mac_add": 18.0, "weight_read": 100.0, "gate_mul": 7.4}
    )
    assert f.per_timestep_pj == pytest.approx(199.4)
    i = datapath_energy(OPS, "int8-mult")
    # 20 x (0.2 + 0.1) + 20 x 8 bits x 10/64 + 2 x 0.2
    assert i.per_timestep_pj == pytest.approx(4.0 + 2.0 + 25.0 + 0.4)
    assert set(BASELINES) == {"float32", "int8-mult"}
    ours = datapath_energy(OPS, "shiftadd", memories=MEMORIES)
    assert ours.per_timestep_pj < i.per_timestep_pj < f.per_timestep_pj
    # a generated multiplier design reads its own memories, priced by the same function
    m = datapath_energy(OPS, "int8-mult", memories=MEMORIES)
    assert m.breakdown["weight_read"] == pytest.approx(20.0)
    assert m.per_timestep_pj == pytest.approx(4.0 + 2.0 + 20.0 + 0.4)


def test_activity_energy_by_hand():
    a = activity_energy({"acc": 1000, "state": 250}, cycles=400, timesteps=10)
    assert PJ_PER_TOGGLE == pytest.approx(0.03 / 12.5)
    assert a.per_timestep_pj == pytest.approx(1250 * 0.0024 / 10)  # 0.3 pJ
    assert a.breakdown["acc"] == pytest.approx(0.24)
    assert a.counts["cycles"] == 40
    assert a.relative
    b = activity_energy({"acc": 10}, 1, pj_per_toggle=1.0)
    assert b.per_timestep_pj == 10.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="weights"):
        datapath_energy({k: v for k, v in OPS.items() if k != "weights"}, "float32")
    with pytest.raises(ValueError, match="unknown datapath"):
        datapath_energy(OPS, "fp16")
    with pytest.raises(ValueError, match="gate_mul key"):
        datapath_energy(dict(OPS, gate_mul={"8by4": 1}), "shiftadd", memories=())
    with pytest.raises(ValueError, match="manifest's memories"):
        datapath_energy(OPS, "shiftadd")
    with pytest.raises(ValueError):
        activity_energy({"a": 1}, cycles=0)


def _verilog_rom_bits(text: str) -> int:
    """Bits of every ROM declared in generated Verilog: ``reg [W-1:0] name [D-1:0];``."""
    return sum((int(w) + 1) * (int(d) + 1)
               for w, _, d in re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text))


@pytest.mark.parametrize("method", golden.METHODS)
def test_weight_memory_bits_are_the_verilog_roms(tmp_path, method):
    """The energy estimate prices the weight memories the generator built, bit for bit."""
    model = golden.Model.random("gru", method, 6, 5, output_size=6, seed=4)
    d = hw.generate(model, out_dir=tmp_path / "d", lanes=2)
    man = Manifest.read(d)
    rom_bits = _verilog_rom_bits((d / man.verilog).read_text())
    assert rom_bits > 0
    e = design_energy(model, man)["design"]
    assert e.counts["weight_memory_bits"] == rom_bits
    reads = sum(m.width * m.reads_per_timestep for m in man.memories)
    assert e.counts["weight_bits_read"] == reads
    assert e.breakdown["weight_read"] == pytest.approx(reads * SRAM_PJ_PER_BIT)
    # a multiplier design is the int8 baseline built: priced as that baseline, as everywhere
    mult = hw.generate(model, out_dir=tmp_path / "m", lanes=2, datapath="mult")
    en = design_energy(model, Manifest.read(mult))
    assert en["design"].per_timestep_pj == en["int8-mult"].per_timestep_pj


def test_unrolled_design_reads_no_memory(tmp_path):
    model = golden.Model.random("lstm", "exponential", 3, 4, input_kind="vector", seed=1)
    d = hw.generate(model, out_dir=tmp_path / "u", unrolled=True)
    man = Manifest.read(d)
    assert _verilog_rom_bits((d / man.verilog).read_text()) == 0
    e = design_energy(model, man)["design"]
    assert e.counts["weight_memory_bits"] == 0 and e.breakdown["weight_read"] == 0.0
