"""Report parsers, cache helpers and the I/O wrapper, on saved real tool output (no tools run)."""

import json
from pathlib import Path

import pytest

import golden
from estimate.cache import cache_key, cache_root
from estimate.iowrap import WRAP_TOP, Port, netlist_ports, wrapper_verilog
from estimate.pnr import _no_fit_message, parse_log, parse_report
from estimate.synth import parse_mul_cells, parse_stat, summarise

DATA = Path(__file__).parent / "data" / "estimate"


def test_parse_stat_xilinx7_fixture():
    cells = parse_stat(DATA / "stat_xilinx7_mult8.json")
    assert cells == {"BUFG": 1, "DSP48E1": 1, "IBUF": 17, "OBUF": 16}
    r = summarise("xilinx7", cells)
    assert (r.lut, r.ff, r.carry, r.dsp, r.bram) == (0, 0, 0, 1, 0)
    assert r.total_cells == 35


def test_parse_stat_ice40_fixture():
    r = summarise("ice40", parse_stat(DATA / "stat_ice40_adder8.json"))
    assert (r.lut, r.ff, r.carry, r.dsp, r.bram) == (8, 25, 8, 0, 0)


def test_resource_sums_and_prefixes():
    cells = {"LUT2": 3, "LUT6": 4, "FDRE": 5, "FDCE": 1, "RAMB36E1": 2, "RAMB18E1": 1}
    r = summarise("xilinx7", cells)
    assert (r.lut, r.ff, r.bram) == (7, 6, 5)  # BRAM in RAMB18 units
    r = summarise("ice40", {"SB_DFFE": 2, "SB_DFFSR": 3, "SB_DFF": 1, "SB_RAM40_4K": 2})
    assert (r.ff, r.bram) == (6, 2)
    r = summarise("generic", {"$_DFF_P_": 4, "$_SDFFE_PP0P_": 2, "$_AND_": 9})
    assert (r.ff, r.lut) == (6, 0)
    with pytest.raises(ValueError, match="unknown synthesis target"):
        summarise("virtex2", {})


def test_parse_mul_cells():
    netlist = {
        "modules": {
            "top": {
                "cells": {
                    "m1": {
                        "type": "$mul",
                        "parameters": {"A_WIDTH": "1000", "B_WIDTH": "11", "Y_WIDTH": "1010"},
                        "connections": {"A": [2, 3], "B": ["1", "1"], "Y": [4]},
                    },
                    "a1": {"type": "$add", "parameters": {}, "connections": {}},
                }
            }
        }
    }
    (m,) = parse_mul_cells(netlist)
    assert (m.name, m.type, m.a_width, m.b_width, m.y_width) == ("m1", "$mul", 8, 3, 10)
    assert m.constant_operand


def test_parse_report_fixture():
    fmax, util = parse_report(DATA / "report_up5k_adder8.json")
    assert list(fmax) == ["clk$SB_IO_IN_$glb_clk"]
    assert fmax["clk$SB_IO_IN_$glb_clk"] == pytest.approx(92.0895, rel=1e-4)
    assert util["ICESTORM_LC"] == {"used": 28, "available": 5280}
    assert util["SB_IO"] == {"used": 26, "available": 39}


def test_parse_log_no_fit_fixture():
    util, errors = parse_log((DATA / "nofit_lp384_lcfill.log").read_text())
    assert util["ICESTORM_LC"] == {"used": 787, "available": 384}
    assert set(util) == {"ICESTORM_LC", "SB_IO", "SB_GB", "SB_WARMBOOT"}
    assert errors == ["Failed to expand region (0, 0) |_> (7, 9) of 787 ICESTORM_LCs"]
    message = _no_fit_message("lp384", util, errors)
    assert message.startswith("does not fit lp384: ICESTORM_LC 787/384")
    # an error that is not about capacity is not a "does not fit"
    assert _no_fit_message("up5k", {}, ["Failed to parse JSON"]) is None
    io = {"SB_IO": {"used": 26, "available": 21}}
    assert "wrap_io=True" in _no_fit_message("lp384", io, [])


def test_cache_key_and_root(tmp_path, monkeypatch):
    k = cache_key(verilog="module a; endmodule", top="a", target="ice40")
    assert len(k) == 64
    assert k == cache_key(target="ice40", top="a", verilog="module a; endmodule")
    assert k != cache_key(verilog="module a ; endmodule", top="a", target="ice40")
    monkeypatch.setenv("SHIFTRNN_CACHE", str(tmp_path / "root"))
    assert cache_root() == tmp_path / "root" / "estimate"
    assert cache_root(tmp_path / "x") == tmp_path / "x"
    golden.atomic_write_bytes(tmp_path / "x" / "e.json", json.dumps({"a": 1}).encode())
    assert json.loads((tmp_path / "x" / "e.json").read_text()) == {"a": 1}
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["e.json"]  # no temp file left
    assert (tmp_path / "x" / "e.json").stat().st_mode & 0o044 == 0o044  # not mkstemp's 0600


def test_wrapper_verilog():
    ports = [Port("clk", "input", 1), Port("a", "input", 8), Port("rst", "input", 1),
             Port("y", "output", 9)]  # fmt: skip
    text = wrapper_verilog("core8", ports)
    assert f"module {WRAP_TOP} (" in text
    assert "reg [8:0] chain;" in text  # a (8 bits) + rst
    assert ".a(chain[7:0])" in text and ".rst(chain[8:8])" in text
    assert ".y(outs[8:0])" in text and "assign dout = ^outs;" in text
    with pytest.raises(ValueError, match="no clock"):
        wrapper_verilog("core8", ports, clock="clock")
    with pytest.raises(ValueError, match="no outputs"):
        wrapper_verilog("core8", ports[:3])
    ports = {
        "clk": {"direction": "input", "bits": [2]},
        "q": {"direction": "output", "bits": [3, 4]},
    }
    netlist = {"modules": {"m": {"ports": ports}}}
    assert netlist_ports(netlist, "m") == [Port("clk", "input", 1), Port("q", "output", 2)]
