"""The typed design manifest: what hw writes is what every reader gets, and bad files say why."""

from __future__ import annotations

import json
import re

import pytest

import golden
import hw
from golden.manifest import MANIFEST_VERSION, Manifest, ManifestError, axis_ports

PORT_NAMES = ["clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tuser",
              "s_axis_tlast", "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tuser",
              "m_axis_tlast"]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    model = golden.Model.random("gru", "exponential", 5, 7, output_size=3, input_kind="token",
                                seed=2)
    return hw.generate(model, out_dir=tmp_path_factory.mktemp("m") / "g", lanes=3)


def test_round_trip(design):
    man = Manifest.read(design)
    again = Manifest.from_dict(json.loads(json.dumps(man.to_dict())))
    assert again == man
    assert man.version == MANIFEST_VERSION
    assert man.config.lanes == 3 and man.config.cell == "gru"
    assert man.formats["h"] == golden.load(design / man.model_file).formats["h"]


def test_every_port_listed(design):
    man = Manifest.read(design)
    assert [p.name for p in man.ports] == PORT_NAMES
    directions = {p.name: p.direction for p in man.ports}
    assert directions["s_axis_tready"] == "out" and directions["m_axis_tready"] == "in"
    assert man.s_data.kind == "token" and man.s_data.fields[0].width == 3
    assert man.m_data.kind == "logits" and man.m_data.size == 3
    for name in PORT_NAMES:
        p = man.port(name)
        assert p.meaning and p.width >= 1
        assert bool(p.fields) == name.endswith("tdata")


def test_ports_match_verilog(design):
    """Every manifest port is a Verilog port of the top with that direction and width."""
    man = Manifest.read(design)
    text = (design / man.verilog).read_text()
    for p in man.ports:
        decl = re.search(rf"\b(input|output)\s+(?:wire\s+|reg\s+)?(\[(\d+):0\]\s+)?{p.name}\s*;",
                         text)
        assert decl, p.name
        assert decl.group(1) == ("input" if p.direction == "in" else "output"), p.name
        assert (int(decl.group(3)) + 1 if decl.group(3) else 1) == p.width, p.name


@pytest.mark.parametrize("method", golden.METHODS)
def test_memories_are_the_verilog_roms(tmp_path, method):
    """The manifest's weight memories (what energy prices) are exactly the ROMs in the Verilog."""
    model = golden.Model.random("lstm", method, 4, 6, output_size=5, seed=3)
    d = hw.generate(model, out_dir=tmp_path / "d", lanes=2)
    man = Manifest.read(d)
    text = (d / man.verilog).read_text()
    roms = {name: (int(w) + 1, int(n) + 1)
            for w, name, n in re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text)}
    assert roms == {m.name: (m.width, m.depth) for m in man.memories}
    # weight ROMs, and the layer's bias ROM (hw/pipeline.py; the head's 5 rows are one group:
    # its biases are constants)
    assert sorted(m.matrix for m in man.memories) == ["head.w", "layer0.b_ih+layer0.b_hh",
                                                      "layer0.w_hh", "layer0.w_ih"]
    assert all(m.reads_per_timestep >= 1 for m in man.memories)


def test_unrolled_has_no_memories(tmp_path):
    model = golden.Model.random("rnn", "ternary", 3, 4, seed=1)
    man = Manifest.read(hw.generate(model, out_dir=tmp_path / "u", unrolled=True))
    assert man.memories == () and man.weight_memory_bits == 0


def test_axis_ports_follow_the_model():
    model = golden.Model.random("rnn", "ternary", 3, 4, input_kind="vector", seed=1)
    ports = {p.name: p for p in axis_ports(model)}
    fx, fh = model.formats["x"], model.formats["h"]
    assert ports["s_axis_tdata"].width == 3 * fx.bits
    assert [f.lsb for f in ports["s_axis_tdata"].fields] == [0, fx.bits, 2 * fx.bits]
    assert ports["m_axis_tdata"].kind == "h" and ports["m_axis_tdata"].width == 4 * fh.bits


# ------------------------------------------------------------------------------- errors
def _write(tmp_path, d):
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    return tmp_path


def test_old_version_names_the_fix(design, tmp_path):
    d = Manifest.read(design).to_dict()
    d.pop("version")
    with pytest.raises(ManifestError, match=r"version.*regenerate the design"):
        Manifest.read(_write(tmp_path, d))


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("top"), "top"),
    (lambda d: d["config"].pop("lanes"), "config"),
    (lambda d: d["ports"][2]["fields"][0].update(width=99), "ports"),
    (lambda d: d["ports"][4].update(direction="inout"), "direction"),
    (lambda d: d.update(cycles_per_timestep="many"), "cycles_per_timestep"),
])
def test_bad_fields_are_named(design, tmp_path, mutate, field):
    d = Manifest.read(design).to_dict()
    mutate(d)
    with pytest.raises(ManifestError, match=field):
        Manifest.read(_write(tmp_path, d))


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(ManifestError, match="no such design folder"):
        Manifest.read(tmp_path / "nope")
    with pytest.raises(ManifestError, match="missing"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(tmp_path)
