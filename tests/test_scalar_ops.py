"""Keras's ops between a symbolic tensor and a number in a functional graph
(``x + 0.5 * h``, ``1 - x``, ``x / 4``, ``3 / x``, ``-x``): an engine stage
with the constant (cpp/scalar_ops.cpp). Each op against numpy, float64
central differences through each, the Keras API (not layers; summary rows,
config arguments with the number, files), errors; where Keras is installed,
the same training side by side."""
import io
import json

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_grads_match, one_step, stage_net
from _keras_side import assert_same_as_keras
from fastdense import layers

# ScalarOp code -> numpy reference of y = op(h, c)
REFS = {1: lambda h, c: h + c, 2: lambda h, c: h - c, 3: lambda h, c: c - h,
        4: lambda h, c: h * c, 5: lambda h, c: h / c, 6: lambda h, c: c / h,
        7: lambda h, c: -h}


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("op", sorted(REFS))
def test_engine_op_values_and_gradients(op):
    """sigmoid Dense -> op with c = 1.7 -> Dense: the predictions against
    numpy, the gradients against float64 central differences."""
    rng = np.random.default_rng(op)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    t = rng.standard_normal((5, 2)).astype(np.float32)
    stages = [{"kind": 0, "units": 4, "activation": 2, "inputs": [-1]},
              {"kind": 2, "scalar_op": op, "scalar": 1.7},
              {"kind": 0, "units": 2}]
    net = stage_net(3, stages)
    p = net.params
    p[:] = rng.standard_normal(p.size).astype(np.float32)
    w0, b0, w2, b2 = [p[off:off + int(np.prod(s))].reshape(s)
                      for _, off, s, _ in net.variables()]
    want = REFS[op](_sigmoid(x @ w0 + b0), np.float32(1.7)) @ w2 + b2
    np.testing.assert_allclose(net.predict(x, 5, False), want, rtol=1e-5, atol=1e-6)
    one_step(net, x, t)

    def loss(q):
        a, b, c, d = q
        return np.mean((REFS[op](_sigmoid(x @ a + b), 1.7) @ c + d - t) ** 2)

    assert_grads_match(net, loss)


def test_engine_rejects_bad_ops():
    for stage in ({"kind": 2, "scalar_op": 8, "scalar": 1.0},
                  {"kind": 2, "scalar_op": 4, "scalar": float("inf")},
                  {"kind": 2, "scalar_op": 4, "scalar": 2.0, "activation": 1}):
        with pytest.raises(ValueError, match="scalar op"):
            stage_net(3, [{"kind": 0, "units": 4, "inputs": [-1]}, stage])


def _model(lib=fd):
    x = lib.Input((6,), name="x")
    h = lib.layers.Dense(6, activation="relu", name="d")(x)
    o = ((2.0 - h) * 0.5 + 1) / 3.0 - h + x * 2 + (-h) + 1.0 / (h + 1.5)
    return lib.Model(x, lib.layers.Dense(2, name="o")(o), name="ops")


def test_model_matches_numpy_and_keeps_ops_out_of_layers():
    m = _model()
    assert [l.name for l in m.layers] == ["x", "d", "o"]  # (ops are not layers, as Keras)
    x = np.random.default_rng(0).standard_normal((8, 6)).astype("float32")
    k, b, k2, b2 = m.get_weights()
    h = np.maximum(x @ k + b, 0)
    o = ((2.0 - h) * 0.5 + 1) / 3.0 - h + x * 2 + (-h) + 1.0 / (h + 1.5)
    np.testing.assert_allclose(m.predict(x, verbose=0), o @ k2 + b2, rtol=1e-5, atol=1e-5)
    cfg = json.loads(m.to_json())["config"]
    ops = [e for e in cfg["layers"] if e["module"] == "keras.src.ops.numpy"]
    assert [e["class_name"] for e in ops[:3]] == ["Subtract", "Multiply", "Add"]
    assert ops[0]["inbound_nodes"][0]["args"][0] == 2.0  # (the number first: 2 - h)
    assert ops[1]["inbound_nodes"][0]["args"][1] == 0.5
    out = io.StringIO()
    m.summary(line_length=150, print_fn=lambda s, **k: out.write(s))
    assert "true_divide (TrueDivide)" in out.getvalue() and "negative (Negative)" in out.getvalue()


def test_files_round_trip(tmp_path):
    pytest.importorskip("h5py")
    m = _model()
    x = np.random.default_rng(1).standard_normal((8, 6)).astype("float32")
    for ext in (".keras", ".h5"):
        path = str(tmp_path / f"ops{ext}")
        m.save(path)
        back = fd.models.load_model(path)
        np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    again = fd.Model.from_config(json.loads(m.to_json())["config"])
    assert [e["name"] for e in again.get_config()["layers"]] == \
        [e["name"] for e in m.get_config()["layers"]]


def test_errors():
    x = fd.Input((4,))
    with pytest.raises(NotImplementedError, match="between a symbolic tensor and a number"):
        x / layers.Dense(4)(x)
    with pytest.raises(NotImplementedError, match="finite number"):
        x * float("inf")
    with pytest.raises(NotImplementedError, match="between two symbolic tensors"):
        x + True


# ------------------------------------------------------------------ Keras side by side
@pytest.mark.parametrize("kind", ["residual", "chain", "rdiv"])
def test_matches_keras(kind, tmp_path):
    def build(lib):
        x = lib.Input((6,), name="x")
        h = lib.layers.Dense(6, activation="relu", name="d")(x)
        o = {"residual": lambda: x + 0.5 * h, "chain": lambda: -h * 2 + 1,
             "rdiv": lambda: 1.0 / (h + 1.5)}[kind]()
        return lib.Model(x, lib.layers.Dense(2, name="o")(o), name="m")

    rng = np.random.default_rng(0)
    assert_same_as_keras(build, rng.standard_normal((64, 6)).astype("float32"),
                         rng.standard_normal((64, 2)).astype("float32"), tmp_path)
