"""Energy model arithmetic, checked against hand-computed numbers."""

import pytest

from estimate import BASELINES, activity_energy, baseline_energy, energy_from_ops
from estimate.energy import PJ_PER_TOGGLE, SRAM_PJ_PER_BIT, add_energy_pj, mult_energy_pj

# A tiny op-count dict in golden's format.
OPS = {
    "add": {"8": 10, "16": 4},
    "shift": 7,
    "gate_mul": {"8x4": 2},
    "nonlin": {"sigmoid": 2, "tanh": 1},
    "weight_bits_read": 128,
    "weights": 20,
    "mac_width": {"x": 8, "acc": 16},
}


def test_published_points_and_scaling():
    assert add_energy_pj(8) == pytest.approx(0.03)
    assert add_energy_pj(32) == pytest.approx(0.1)
    assert add_energy_pj(16) == pytest.approx(0.03 + 8 * 0.07 / 24)  # 0.05333
    assert mult_energy_pj(8, 8) == pytest.approx(0.2)
    assert mult_energy_pj(32, 32) == pytest.approx(3.2)  # published 3.1: within 5 %
    assert abs(mult_energy_pj(32, 32) - 3.1) / 3.1 < 0.05
    assert SRAM_PJ_PER_BIT == pytest.approx(10 / 64)


def test_energy_from_ops_by_hand():
    e = energy_from_ops(OPS, "tiny")
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
    assert e.breakdown["shift"] == 0.0
    assert e.per_timestep_pj == pytest.approx(21.3266667, rel=1e-6)
    assert e.per_timestep_pj == pytest.approx(add + gate + nonlin + read)
    assert e.per_sequence_pj(5) == pytest.approx(5 * 21.3266667, rel=1e-6)
    assert e.counts["shift"] == 7 and e.counts["add"] == 14 and e.counts["gate_mul_adds"] == 8
    assert e.label == "tiny" and not e.relative


def test_unrolled_reads_no_weight_memory():
    e = energy_from_ops(OPS, unrolled=True)
    assert e.breakdown["weight_read"] == 0.0 and e.counts["weight_bits_read"] == 0
    assert e.per_timestep_pj == pytest.approx(21.3266667 - 20.0, rel=1e-6)


def test_integer_width_keys_accepted():
    ops = dict(OPS, add={8: 10, 16: 4})
    assert energy_from_ops(ops).per_timestep_pj == pytest.approx(21.3266667, rel=1e-6)


def test_baselines_by_hand():
    f = baseline_energy(OPS, "float32")
    # 20 weights x (3.7 + 0.9) + 20 x 32 bits x 10/64 + 2 gate products x 3.7
    assert f.breakdown == pytest.approx(
        {"mac_mult": 74.0, "mac_add": 18.0, "weight_read": 100.0, "gate_mul": 7.4}
    )
    assert f.per_timestep_pj == pytest.approx(199.4)
    i = baseline_energy(OPS, "int8-mult")
    # 20 x (0.2 + 0.1) + 20 x 8 bits x 10/64 + 2 x 0.2
    assert i.per_timestep_pj == pytest.approx(4.0 + 2.0 + 25.0 + 0.4)
    assert set(BASELINES) == {"float32", "int8-mult"}
    assert energy_from_ops(OPS).per_timestep_pj < i.per_timestep_pj < f.per_timestep_pj


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
        energy_from_ops({k: v for k, v in OPS.items() if k != "weights"})
    with pytest.raises(ValueError, match="baseline"):
        baseline_energy(OPS, "fp16")
    with pytest.raises(ValueError, match="gate_mul key"):
        energy_from_ops(dict(OPS, gate_mul={"8by4": 1}))
    with pytest.raises(ValueError):
        activity_energy({"a": 1}, cycles=0)
