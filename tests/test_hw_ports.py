"""The stream ports come from flip-flops: defined from reset under Verilog-2005 and
SystemVerilog simulation rules (Icarus Verilog ``-g2005`` / ``-g2012``).

A plain Verilog testbench holds reset (declared ``reg rst = 1``: no reset edge for
``always @*`` blocks to see at time 0), releases it, checks that ``s_axis_tready`` and
``m_axis_tvalid`` are 0 or 1 (never X) in every cycle, streams a short sequence and compares
every output word with golden. Skipped, with the reason, where ``iverilog`` is absent.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import golden
import hw
from golden.manifest import Manifest

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None,
                                reason="iverilog not installed (Debian package iverilog)")

TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg rst = 1;
  reg [{iw}:0] s_axis_tdata = 0;
  reg s_axis_tvalid = 0, s_axis_tuser = 0, s_axis_tlast = 0, m_axis_tready = 1;
  wire s_axis_tready, m_axis_tvalid, m_axis_tuser, m_axis_tlast;
  wire [{ow}:0] m_axis_tdata;
  {top} dut(.clk(clk), .rst(rst), .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready), .s_axis_tuser(s_axis_tuser), .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
    .m_axis_tuser(m_axis_tuser), .m_axis_tlast(m_axis_tlast));
  always #5 clk = ~clk;
  reg [{iw}:0] beats [0:{n}];
  integer sent = 0, got = 0, cycle = 0;
  initial begin
{init}
  end
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle == 3) rst <= 0;
    if (cycle > 3 && ((^s_axis_tready) === 1'bx || (^m_axis_tvalid) === 1'bx))
      $display("X at cycle %0d: ready %b valid %b", cycle, s_axis_tready, m_axis_tvalid);
    if (!rst && s_axis_tvalid && s_axis_tready) sent = sent + 1;
    if (!rst && m_axis_tvalid && m_axis_tready) begin
      $display("OUT %h %b %b", m_axis_tdata, m_axis_tuser, m_axis_tlast);
      got = got + 1;
    end
    if (got == {count} || cycle > {limit}) $finish;
    s_axis_tvalid <= cycle >= 5 && sent < {count} && !(s_axis_tvalid && s_axis_tready
                     && sent + 1 == {count});
    s_axis_tdata <= beats[sent + (s_axis_tvalid && s_axis_tready)];
    s_axis_tuser <= (sent + (s_axis_tvalid && s_axis_tready)) == 0;
    s_axis_tlast <= (sent + (s_axis_tvalid && s_axis_tready)) == {count} - 1;
  end
endmodule
"""


def run_icarus(design, x: np.ndarray, std: str, tmp_path) -> list[str]:
    man = Manifest.read(design)
    words = [man.s_data.pack_int(row) for row in np.asarray(x).reshape(len(x), -1)]
    init = "\n".join(f"    beats[{i}] = {man.s_data.width}'h{w:x};" for i, w in enumerate(words))
    tb = tmp_path / f"tb_{std}.v"
    tb.write_text(TB.format(iw=man.s_data.width - 1, ow=man.m_data.width - 1, top=man.top,
                            n=len(words), init=init, count=len(words),
                            limit=20 + (len(words) + 2) * man.cycles_per_timestep))
    exe = tmp_path / f"sim_{std}"
    subprocess.run(["iverilog", std, "-o", str(exe), str(tb), str(design / man.verilog)],
                   check=True, capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", str(exe)], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()


@pytest.mark.parametrize("std", ["-g2005", "-g2012"])
@pytest.mark.parametrize("cell,kind,kw", [
    ("gru", "token", {"lanes": 1}), ("lstm", "vector", {"lanes": 3}),
    ("rnn", "vector", {"unrolled": True}),
], ids=["gru-folded", "lstm-folded", "rnn-unrolled"])
def test_ports_defined_from_reset(tmp_path, std, cell, kind, kw):
    model = golden.Model.random(cell, "ternary", 5, 7, output_size=4 if kind == "token" else None,
                                input_kind=kind, seed=4)
    design = hw.generate(model, out_dir=tmp_path / "d", **kw)
    rng = np.random.default_rng(2)
    x = (rng.integers(0, 5, (1, 4)) if kind == "token"
         else model.formats["x"].from_float(rng.normal(0, 1, (1, 4, 5))))
    lines = run_icarus(design, x[0], std, tmp_path)
    assert not [ln for ln in lines if ln.startswith("X at")], lines[:5]
    outs = [ln.split() for ln in lines if ln.startswith("OUT")]
    assert len(outs) == 4, lines[-5:]
    m_data = Manifest.read(design).m_data
    got = np.array([m_data.unpack_int(int(w, 16)) for _, w, _, _ in outs])
    assert np.array_equal(got, model.run_int(x).output_int[0])
    assert [(u, la) for _, _, u, la in outs] == [("1", "0"), ("0", "0"), ("0", "0"), ("0", "1")]
