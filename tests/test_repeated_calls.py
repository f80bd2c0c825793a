"""A layer applied several times in one model (Keras's shared layers: a tower
applied to two inputs, ``d(d(x))``): the engine runs a stage per call, the
later stages reading the first one's weights and adding their gradient to
its gradient (cpp/network.cpp, LayerSpec::shares). Float64 central
differences through the engine, the Keras API (layers listed once, the
summary's connections, node indices in configs, files), and where Keras is
installed, the same training side by side."""
import io
import json

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import (assert_grads_match, assert_same_bits_at_thread_counts, one_step,
                            stage_net)
from _keras_side import assert_same_as_keras
from fastdense import layers


def _siamese(lib=fd):
    a, b = lib.Input((6,), name="a"), lib.Input((6,), name="b")
    tower = lib.layers.Dense(8, activation="relu", name="tower")
    cat = lib.layers.Concatenate(name="cat")([tower(a), tower(b)])
    return lib.Model([a, b], lib.layers.Dense(1, name="out")(cat), name="siam")


def _twice(lib=fd):
    x = lib.Input((6,), name="c")
    sq = lib.layers.Dense(6, activation="tanh", name="sq")
    return lib.Model(x, lib.layers.Dense(2, name="o")(sq(sq(x))), name="sqm")


def _residual_thrice(lib=fd):
    x = lib.Input((6,), name="c")
    blk = lib.layers.Dense(6, activation="relu", name="blk")
    h = blk(x)
    h = lib.layers.Add(name="add")([h, blk(h)])
    return lib.Model(x, lib.layers.Dense(1, name="o")(blk(h)), name="res")


def test_engine_gradient_of_a_shared_stage_is_the_sum():
    """x -> D(4, tanh) -> the same D again -> D(2): the shared kernel's and
    bias's gradients against float64 central differences."""
    stages = [{"kind": 0, "units": 4, "activation": 3, "inputs": [-1]},
              {"kind": 0, "units": 4, "activation": 3, "inputs": [0], "shares": 0},
              {"kind": 0, "units": 2, "activation": 0, "inputs": [1]}]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    t = rng.standard_normal((5, 2)).astype(np.float32)
    net = stage_net(4, stages)
    assert [v[0] for v in net.variables()] == [0, 0, 2, 2]  # (no variables of its own)
    p = net.params
    p[:] = rng.standard_normal(p.size).astype(np.float32) * 0.5
    one_step(net, x, t)

    def loss(q):
        w0, b0, w2, b2 = q
        h = np.tanh(np.tanh(x @ w0 + b0) @ w0 + b0)
        return np.mean((h @ w2 + b2 - t) ** 2)

    assert_grads_match(net, loss)


def test_engine_rejects_bad_sharing():
    for stages in (
            [{"kind": 0, "units": 3, "inputs": [-1]},
             {"kind": 0, "units": 3, "inputs": [0], "shares": 0}],  # (in 4 vs 3)
            [{"kind": 0, "units": 4, "inputs": [-1], "shares": 0}],  # (itself)
            [{"kind": 0, "units": 4, "inputs": [-1]},
             {"kind": 2, "inputs": [0], "shares": 0}]):  # (not Dense)
        with pytest.raises(ValueError, match="share"):
            stage_net(4, stages)


@pytest.mark.parametrize("build", [_siamese, _twice, _residual_thrice])
def test_api_lists_a_shared_layer_once(build):
    m = build()
    names = [l.name for l in m.layers]
    assert len(names) == len(set(names))
    assert len(m.weights) == 4 and m.count_params() == sum(w.size for w in m.get_weights())
    cfg = json.loads(m.to_json())["config"]
    shared = [e for e in cfg["layers"] if len(e["inbound_nodes"]) > 1]
    assert len(shared) == 1
    refs = json.dumps(cfg)
    assert f'["{shared[0]["name"]}", 1, 0]' in refs  # (its second call's output, node 1)


def test_summary_connects_every_call():
    out = io.StringIO()
    _siamese().summary(print_fn=lambda s, **k: out.write(s))
    text = out.getvalue()
    assert "a[0][0], b[0][0]" in text and "tower[1][0]" in text


def test_training_matches_the_unrolled_reference():
    """d(d(x)) trained with SGD: the same as numpy's gradient of the loss
    through both calls (one step), and the same bits at any thread count."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 6)).astype("float32")
    y = rng.standard_normal((32, 2)).astype("float32")
    m = _twice()
    w0 = [w.astype(np.float64) for w in m.get_weights()]
    m.compile(optimizer=fd.optimizers.SGD(0.1), loss="mse")
    m.train_on_batch(x, y)
    k, b, k2, b2 = w0
    h1 = np.tanh(x @ k + b)
    h2 = np.tanh(h1 @ k + b)
    dy = 2 * (h2 @ k2 + b2 - y) / y.size
    dz2 = (dy @ k2.T) * (1 - h2 ** 2)
    dz1 = (dz2 @ k.T) * (1 - h1 ** 2)
    grad_k = h1.T @ dz2 + x.T @ dz1
    grad_b = dz2.sum(0) + dz1.sum(0)
    np.testing.assert_allclose(m.get_weights()[0], k - 0.1 * grad_k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.get_weights()[1], b - 0.1 * grad_b, rtol=1e-5, atol=1e-6)

    def run():
        fd.utils.set_random_seed(3)
        mm = _residual_thrice()
        mm.compile(optimizer="adam", loss="mse")
        mm.fit(x, y[:, :1], epochs=3, batch_size=8, verbose=0)
        return [w.copy() for w in mm.get_weights()]

    assert_same_bits_at_thread_counts(run)


def test_regularizer_and_constraint_apply_once():
    """The shared kernel's L2 penalty counts once in the loss (as Keras: once
    per layer), and its MaxNorm constraint holds after the update."""
    x = fd.Input((6,))
    d = layers.Dense(6, kernel_regularizer=fd.regularizers.L2(0.5),
                     kernel_constraint=fd.constraints.MaxNorm(0.5))
    m = fd.Model(x, d(d(x)))
    m.compile(optimizer=fd.optimizers.SGD(0.0), loss="mse")
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((16, 6)).astype("float32")
    pred = m.predict(xs, verbose=0)
    loss = m.evaluate(xs, np.zeros((16, 6), np.float32), verbose=0)
    kernel = m.get_weights()[0]
    np.testing.assert_allclose(loss, np.mean(pred ** 2) + 0.5 * np.sum(kernel ** 2), rtol=1e-5)
    m.compile(optimizer=fd.optimizers.SGD(1.0), loss="mse")
    m.fit(xs, np.ones((16, 6), np.float32), epochs=2, verbose=0)
    assert np.all(np.linalg.norm(m.get_weights()[0], axis=0) <= 0.5 + 1e-6)


def test_files_round_trip(tmp_path):
    pytest.importorskip("h5py")
    rng = np.random.default_rng(4)
    xa, xb = (rng.standard_normal((16, 6)).astype("float32") for _ in range(2))
    for build, xin in ((_siamese, [xa, xb]), (_twice, xa), (_residual_thrice, xa)):
        m = build()
        for ext in (".keras", ".h5"):
            path = str(tmp_path / f"{build.__name__}{ext}")
            m.save(path)
            back = fd.models.load_model(path)
            assert [l.name for l in back.layers] == [l.name for l in m.layers]
            np.testing.assert_array_equal(back.predict(xin, verbose=0), m.predict(xin, verbose=0))


def test_loading_a_call_of_nothing_raises():
    cfg = json.loads(_twice().to_json())
    sq = next(e for e in cfg["config"]["layers"] if e["name"] == "sq")
    sq["inbound_nodes"][1]["args"][0]["config"]["keras_history"] = ["sq", 5, 0]
    with pytest.raises(ValueError, match="which no call of the model computes"):
        fd.models.model_from_json(json.dumps(cfg))


def test_layers_with_weights_other_than_dense_still_raise():
    x = fd.Input((6,))
    for layer in (layers.BatchNormalization(), layers.LayerNormalization(), layers.PReLU()):
        with pytest.raises(NotImplementedError, match="applied more than once"):
            fd.Model(x, layer(layer(x)))
    inner = fd.Model(x, layers.Dense(6)(x))
    other = fd.Input((6,))
    with pytest.raises(NotImplementedError, match="applied more than once"):
        fd.Model(other, inner(inner(other)))


def test_subclassed_model_calling_a_layer_twice():
    class Twice(fd.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(6, activation="tanh")
            self.o = layers.Dense(2)

        def call(self, inputs):
            return self.o(self.d(self.d(inputs)))

    m = Twice()
    m.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 6)).astype("float32")
    m.fit(x, np.zeros((16, 2), np.float32), verbose=0)
    k, b, k2, b2 = m.get_weights()
    want = np.tanh(np.tanh(x @ k + b) @ k + b) @ k2 + b2
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ Keras side by side
@pytest.mark.parametrize("build", [_siamese, _twice, _residual_thrice])
def test_matches_keras(build, tmp_path):
    rng = np.random.default_rng(0)
    xa, xb = (rng.standard_normal((64, 6)).astype("float32") for _ in range(2))
    y = rng.standard_normal((64, 2 if build is _twice else 1)).astype("float32")
    assert_same_as_keras(build, [xa, xb] if build is _siamese else xa, y, tmp_path)


def _first_call_io(lib):
    a, b = lib.Input((4,), name="a"), lib.Input((4,), name="b")
    d = lib.layers.Dense(3, name="shared")
    ha, hb = d(a), d(b)
    m = lib.Model([a, b], lib.layers.Add()([ha, hb]))
    return d, a, ha, m


def test_input_and_output_are_the_first_calls():
    """A layer applied several times: layer.input / layer.output are its first
    call's (Keras's node 0), and a model cut there runs that branch."""
    d, a, ha, m = _first_call_io(fd)
    assert d.input is a and d.output is ha
    sub = fd.Model(d.input, d.output)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(sub.predict(x, verbose=0), x @ d.get_weights()[0] + d.get_weights()[1],
                               rtol=1e-5, atol=1e-6)


def test_input_and_output_names_as_keras():
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    fd.backend.clear_session()
    (kd, *_), (fdd, *_) = _first_call_io(keras), _first_call_io(fd)
    assert (kd.input.name, kd.output.name) == (fdd.input.name, fdd.output.name)
    assert tuple(kd.output.shape) == tuple(fdd.output.shape)
