"""The model file: round trip, and every kind of damage named in the error."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from golden import Model, ModelFileError, Nonlinearity, load


def write_npz(path, header: dict, arrays: dict) -> None:
    buf = io.BytesIO()
    hdr = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez_compressed(buf, header=hdr, **arrays)
    path.write_bytes(buf.getvalue())


def parts(model: Model):
    return model.header(), dict(model.arrays())


@pytest.fixture
def model() -> Model:
    return Model.random("lstm", "ternary", 5, 4, output_size=3, layers=2, input_kind="vector",
                        seed=7, nonlinearity=Nonlinearity("lut", lut_bits=5))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("method,params", [("binary", {}), ("ternary", {}),
                                           ("pow2-ternary", {"i": 2, "f": 3}),
                                           ("exponential", {"kmin": -6, "kmax": 1})])
def test_roundtrip(cell, method, params, tmp_path, rng):
    m = Model.random(cell, method, 5, 4, output_size=2, layers=2, input_kind="token", seed=1,
                     method_params=params, scale_terms=3)
    path = m.save(tmp_path / "m.npz")
    back = load(path)
    assert back.hash() == m.hash()
    assert back.header() == json.loads(json.dumps(m.header()))
    x = rng.integers(0, 5, size=(2, 6))
    a, b = m.run(x), back.run(x)
    assert np.array_equal(a.logits_int, b.logits_int)
    assert all(np.array_equal(p, q) for p, q in zip(a.hidden_int, b.hidden_int, strict=True))
    assert np.array_equal(m.run(x, mode="float").logits, back.run(x, mode="float").logits)


def test_roundtrip_without_head_and_fixed_bias(tmp_path):
    m = Model.random("gru", "exponential", 3, 2, input_kind="vector", seed=2, bias_mode="fixed")
    back = load(m.save(tmp_path / "m.npz"))
    assert back.head is None and back.bias_mode == "fixed" and back.hash() == m.hash()


def test_hash_changes_with_content(model):
    assert model.hash() != model.with_formats(h=model.formats["h"].__class__(9, 6)).hash()


def test_save_refuses_to_overwrite(model, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="force"):
        model.save(path)
    assert path.read_bytes() == b"keep me"
    model.save(path, force=True)
    assert load(path).hash() == model.hash()
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary files left


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "nope.npz")


def test_damaged_file(model, tmp_path):
    path = model.save(tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)  # zero a block inside the compressed arrays
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="m.npz"):
        load(path)
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file at all")
    with pytest.raises(ModelFileError, match="junk.npz: not a readable .npz"):
        load(tmp_path / "junk.npz")


def test_truncated_file(model, tmp_path):
    path = model.save(tmp_path / "m.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="m.npz"):
            load(path)


def test_not_a_model_file(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="field 'header': missing"):
        load(tmp_path / "other.npz")
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(b"{not json", dtype=np.uint8))
    (tmp_path / "badjson.npz").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="field 'header': not valid JSON"):
        load(tmp_path / "badjson.npz")


@pytest.mark.parametrize(
    "edit,field",
    [
        (lambda h: h.pop("cell"), "'cell': missing"),
        (lambda h: h.pop("formats"), "'formats': missing"),
        (lambda h: h["formats"].pop("gate"), "'formats': missing \\['gate'\\]"),
        (lambda h: h["layers"][1].pop("w_hh"), "'layers\\[1\\].w_hh': missing"),
        (lambda h: h["layers"][0]["w_ih"].pop("scale_csd"), "'layers\\[0\\].w_ih.scale_csd'"),
        (lambda h: h["head"].pop("b_frac"), "'head.b_frac': missing"),
        (lambda h: h.update(input_size="5"), "'input_size': expected int"),
        (lambda h: h.update(cell="transformer"), "'cell': must be one of rnn, gru, lstm"),
        (lambda h: h.update(method="octal"), "'method': must be one of"),
        (lambda h: h.update(num_layers=3), "'layers': 2 entries but num_layers is 3"),
        (lambda h: h.update(schema_version=99), "'schema_version': 99 not supported"),
        (lambda h: h.update(format="other"), "'format'"),
        (lambda h: h["formats"].update(gate={"bits": 8, "frac": 7, "signed": True}),
         "'formats.gate': must be unsigned"),
        (lambda h: h["formats"].update(h={"bits": 0, "frac": 7}), "'formats.h'"),
        (lambda h: h.update(nonlinearity={"kind": "relu"}), "'nonlinearity'"),
        (lambda h: h.update(nonlinearity={"kind": "lut", "colour": 1}), "'nonlinearity'"),
        (lambda h: h.update(method_params={"W0": -1}), "'method_params'"),
        (lambda h: h["layers"][0]["w_ih"].update(scale="big"), "'layers\\[0\\].w_ih.scale'"),
        (lambda h: h["layers"][0]["w_ih"].update(scale_csd=[[2, 0]]), "scale_csd': signs"),
    ],
)
def test_missing_or_bad_header_field(model, tmp_path, edit, field):
    header, arrays = parts(model)
    edit(header)
    write_npz(tmp_path / "m.npz", header, arrays)
    with pytest.raises(ModelFileError, match=field) as e:
        load(tmp_path / "m.npz")
    assert str(tmp_path / "m.npz") in str(e.value)


@pytest.mark.parametrize("key", ["layer0.w_ih", "layer1.b_hh", "head.w", "head.b"])
def test_missing_array(model, tmp_path, key):
    header, arrays = parts(model)
    del arrays[key]
    write_npz(tmp_path / "m.npz", header, arrays)
    with pytest.raises(ModelFileError, match=f"'{key}': array missing"):
        load(tmp_path / "m.npz")


@pytest.mark.parametrize("key,shape", [("layer0.w_hh", (16, 5)), ("layer1.w_ih", (16, 5)),
                                       ("layer0.b_ih", (15,)), ("head.w", (3, 5)),
                                       ("head.b", (4,))])
def test_wrong_shape(model, tmp_path, key, shape):
    header, arrays = parts(model)
    arrays[key] = np.zeros(shape, np.int64)
    write_npz(tmp_path / "m.npz", header, arrays)
    with pytest.raises(ModelFileError, match=key.replace(".", "\\.")):
        load(tmp_path / "m.npz")


def test_bad_codes(model, tmp_path):
    header, arrays = parts(model)
    arrays["layer1.w_hh"] = arrays["layer1.w_hh"].copy()
    arrays["layer1.w_hh"][0, 0] = 2  # ternary codes are -1, 0, +1
    write_npz(tmp_path / "m.npz", header, arrays)
    with pytest.raises(ModelFileError, match="'layer1.w_hh': codes must be \\{-1, 0, \\+1\\}"):
        load(tmp_path / "m.npz")
    header, arrays = parts(model)
    arrays["head.w"] = arrays["head.w"].astype(np.float64)
    write_npz(tmp_path / "m.npz", header, arrays)
    with pytest.raises(ModelFileError, match="'head.w': expected integers"):
        load(tmp_path / "m.npz")


@pytest.mark.parametrize("method,params,bad", [("binary", {}, 0),
                                               ("pow2-ternary", {"i": 0, "f": 2}, 4),
                                               ("exponential", {"kmin": -3, "kmax": 0}, 3),
                                               ("exponential", {"kmin": -3, "kmax": 0}, 16)])
def test_bad_codes_per_method(method, params, bad, tmp_path):
    m = Model.random("rnn", method, 3, 2, input_kind="vector", seed=0, method_params=params)
    header, arrays = parts(m)
    arrays["layer0.w_ih"] = arrays["layer0.w_ih"].copy()
    arrays["layer0.w_ih"][1, 1] = bad
    write_npz(tmp_path / "m.npz", header, arrays)
    with pytest.raises(ModelFileError, match="'layer0.w_ih': codes must be"):
        load(tmp_path / "m.npz")
