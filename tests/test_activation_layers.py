"""The parameterized activation layers (ReLU, LeakyReLU, ELU, Softmax): the
engine's forward against Keras's formulas in float64, its gradients against
float64 finite differences, their configs and errors as Keras's."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers, models, optimizers


def relu_ref(x, max_value=None, negative_slope=0.0, threshold=0.0):
    # keras.layers.ReLU's formula (keras/src/activations/activations.py)
    x = np.asarray(x, np.float64)
    pos = x * (x > threshold) if threshold != 0 else np.maximum(x, 0)
    if max_value is not None:
        pos = np.clip(pos, 0, max_value)
    neg = np.maximum(threshold - x, 0)
    return pos - negative_slope * neg


CASES = [
    ("relu", lambda: layers.ReLU(), lambda x: relu_ref(x)),
    ("relu6", lambda: layers.ReLU(max_value=6.0), lambda x: relu_ref(x, 6.0)),
    ("relu-max1-slope-thr", lambda: layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5),
     lambda x: relu_ref(x, 1.0, 0.1, 0.5)),
    ("relu-slope", lambda: layers.ReLU(negative_slope=0.2), lambda x: relu_ref(x, None, 0.2)),
    ("relu-thr", lambda: layers.ReLU(threshold=0.3), lambda x: relu_ref(x, None, 0.0, 0.3)),
    ("leaky-default", lambda: layers.LeakyReLU(), lambda x: np.where(x > 0, x, 0.3 * x)),
    ("leaky-0.05", lambda: layers.LeakyReLU(negative_slope=0.05),
     lambda x: np.where(x > 0, x, 0.05 * x)),
    ("elu-default", lambda: layers.ELU(), lambda x: np.where(x > 0, x, np.expm1(x))),
    ("elu-0.5", lambda: layers.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ("softmax", lambda: layers.Softmax(),
     lambda x: np.exp(x - x.max(1, keepdims=True)) / np.exp(x - x.max(1, keepdims=True)).sum(
         1, keepdims=True)),
]


def _weights(seed, shapes):
    r = np.random.default_rng(seed)
    return [(r.normal(size=s) * 0.7).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_kerass_formula(name, make, ref):
    x = np.random.default_rng(0).normal(size=(33, 5)).astype(np.float32) * 2
    x[0] = 0.0
    layer = make()
    m = models.Sequential([layers.Input((5,)), layers.Dense(7), layer])
    w = _weights(1, [(5, 7), (7,)])
    m.set_weights(w)
    z = x.astype(np.float64) @ w[0] + w[1]
    got = m.predict(x, verbose=0)
    np.testing.assert_allclose(got, ref(z), rtol=2e-6, atol=2e-6)
    # the layer called on an array computes the same (in numpy)
    np.testing.assert_allclose(np.asarray(layer(z.astype(np.float32))), got, rtol=2e-6,
                               atol=2e-6)
    # a stage of its own (after a dropped-out Dense it cannot fuse): same output
    m2 = models.Sequential([layers.Input((5,)), layers.Dense(7, activation="tanh"), make()])
    m2.set_weights(w)
    np.testing.assert_allclose(m2.predict(x, verbose=0), ref(np.tanh(z)), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
def test_gradients_match_float64_finite_differences(name, make, ref):
    """One SGD step through Dense -> layer -> Dense with mse: the engine's
    gradient, (w - w_new) / lr, against central differences of the float64
    loss (inputs kept away from the kinks, where the derivative jumps)."""
    r = np.random.default_rng(2)
    x = r.normal(size=(16, 4))
    y = r.normal(size=(16, 3))
    w = [a.astype(np.float64) for a in _weights(3, [(4, 6), (6,), (6, 3), (3,)])]

    def loss(ws):
        h = ref(x @ ws[0] + ws[1])
        return np.mean((h @ ws[2] + ws[3] - y) ** 2)

    z = x @ w[0] + w[1]
    kinks = [0.0, 0.3, 0.5, 1.0, 6.0]
    assert np.min(np.abs(z[..., None] - np.array(kinks))) > 1e-3  # (no finite difference across a kink)
    m = models.Sequential([layers.Input((4,)), layers.Dense(6), make(), layers.Dense(3)])
    m.set_weights([a.astype(np.float32) for a in w])
    lr = 0.01
    m.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="mse")
    m.train_on_batch(x.astype(np.float32), y.astype(np.float32))
    new = m.get_weights()
    eps = 1e-6
    for i, a in enumerate(w):
        fd_grad = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            wp = [b.copy() for b in w]
            wm = [b.copy() for b in w]
            wp[i][idx] += eps
            wm[i][idx] -= eps
            fd_grad[idx] = (loss(wp) - loss(wm)) / (2 * eps)
        engine = (a.astype(np.float32) - new[i]).astype(np.float64) / lr
        np.testing.assert_allclose(engine, fd_grad, rtol=2e-3, atol=2e-4, err_msg=f"weights[{i}]")


def test_configs_round_trip_and_match_kerass_keys():
    m = models.Sequential([layers.Input((4,)), layers.Dense(6), layers.LeakyReLU(0.1),
                           layers.Dense(5), layers.ReLU(max_value=2.0, threshold=0.25),
                           layers.Dense(4), layers.ELU(alpha=0.7), layers.Dense(3),
                           layers.Softmax()])
    cfgs = [l.get_config() for l in m.layers]
    assert cfgs[1]["negative_slope"] == 0.1 and "activation" not in cfgs[1]
    assert {k: cfgs[3][k] for k in ("max_value", "negative_slope", "threshold")} == {
        "max_value": 2.0, "negative_slope": 0.0, "threshold": 0.25}
    assert cfgs[5]["alpha"] == 0.7 and cfgs[7]["axis"] == -1
    x = np.random.default_rng(4).normal(size=(9, 4)).astype(np.float32)
    back = fd.models.model_from_json(m.to_json())
    assert [type(l).__name__ for l in back.layers] == [
        "Dense", "LeakyReLU", "Dense", "ReLU", "Dense", "ELU", "Dense", "Softmax"]
    back.set_weights(m.get_weights())
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    spec = json.loads(m.to_json())["config"]["layers"]
    assert spec[2]["class_name"] == "LeakyReLU" and spec[2]["module"] == "keras.layers"
    # a Keras 2 LeakyReLU config names the slope `alpha`
    assert layers.LeakyReLU(alpha=0.02).negative_slope == 0.02
    assert type(layers.ReLU.from_config(cfgs[3])) is layers.ReLU


@pytest.mark.parametrize("make,pattern", [
    (lambda: layers.ReLU(max_value=-1.0), r"max_value of a ReLU layer cannot be a negative"),
    (lambda: layers.ReLU(negative_slope=-0.1), r"negative_slope of a ReLU layer.*=-0\.1"),
    (lambda: layers.ReLU(threshold=None), r"threshold of a ReLU layer.*threshold=None"),
    (lambda: layers.LeakyReLU(negative_slope=-1), r"Leaky ReLU layer.*negative_slope=-1"),
    (lambda: layers.LeakyReLU(negative_slope=float("nan")), r"negative_slope=nan"),
    (lambda: layers.ELU(alpha="big"), r"`alpha` of ELU.*'big'"),
    (lambda: layers.Softmax(axis=0), r"axis=-1.*axis=0"),
])
def test_bad_arguments_raise_with_kerass_texts(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_trains_mnist_like_model_with_leaky_relu_and_stays_deterministic():
    r = np.random.default_rng(5)
    x = r.random((512, 20)).astype(np.float32)
    y = (x[:, :10] > 0.5).astype(np.float32)
    out = []
    for _ in range(2):
        fd.utils.set_random_seed(3)
        m = models.Sequential([layers.Input((20,)), layers.Dense(32), layers.LeakyReLU(),
                               layers.Dense(10), layers.Softmax()])
        m.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        h = m.fit(x, y / y.sum(1, keepdims=True).clip(1), epochs=3, batch_size=64, verbose=0)
        out.append((h.history["loss"], m.get_weights()))
    assert out[0][0] == out[1][0] and out[0][0][-1] < out[0][0][0]
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_array_equal(a, b)


KERAS_TWINS = [
    ("ReLU", {}), ("ReLU", {"max_value": 6.0}),
    ("ReLU", {"max_value": 1.0, "negative_slope": 0.1, "threshold": 0.5}),
    ("ReLU", {"negative_slope": 0.2}), ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.05}),
    ("ELU", {}), ("ELU", {"alpha": 0.5}), ("Softmax", {}),
]


@pytest.mark.parametrize("cls,kw", KERAS_TWINS, ids=[f"{c}{k}" for c, k in KERAS_TWINS])
def test_side_by_side_with_keras(cls, kw):
    """The same model, weights and data in real Keras (JAX backend) and in
    fastdense: predictions, three epochs of SGD (losses and weights) and the
    layer config agree to float32 rounding."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    r = np.random.default_rng(7)
    x = r.normal(size=(64, 6)).astype(np.float32)
    y = r.normal(size=(64, 3)).astype(np.float32)
    w = _weights(8, [(6, 8), (8,), (8, 3), (3,)])
    out = {}
    for lib in (keras, fd):
        m = lib.Sequential([lib.Input((6,)), lib.layers.Dense(8), getattr(lib.layers, cls)(**kw),
                            lib.layers.Dense(3)])
        m.set_weights(w)
        m.compile(optimizer=lib.optimizers.SGD(0.05), loss="mse")
        p0 = np.asarray(m.predict(x, verbose=0))
        h = m.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        cfg = m.layers[1].get_config()
        out[lib.__name__] = (p0, h.history["loss"], [np.asarray(a) for a in m.get_weights()],
                             {k: v for k, v in cfg.items() if k not in ("name", "dtype")})
    k, f = out["keras"], out["fastdense"]
    np.testing.assert_allclose(f[0], k[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f[1], k[1], rtol=1e-5)
    for a, b in zip(f[2], k[2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert f[3] == k[3]


ACT_LAYERS = [
    ("leaky", lambda lib: lib.layers.LeakyReLU(negative_slope=0.2)),
    ("relu-args", lambda lib: lib.layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2)),
    ("elu", lambda lib: lib.layers.ELU(alpha=0.7)),
    ("activation-tanh", lambda lib: lib.layers.Activation("tanh")),
]


@pytest.mark.parametrize("name,make", ACT_LAYERS, ids=[c[0] for c in ACT_LAYERS])
def test_activation_layer_as_dense_activation(name, make):
    """Dense(8, activation=LeakyReLU(0.2)), as Keras allows: the same numbers
    as the Dense layer followed by that activation layer (predict, layer call,
    three epochs of SGD), and a config that round-trips."""
    r = np.random.default_rng(3)
    x = r.normal(size=(48, 5)).astype(np.float32)
    y = r.normal(size=(48, 2)).astype(np.float32)
    fused = models.Sequential([fd.Input((5,)), layers.Dense(8, activation=make(fd)),
                               layers.Dense(2)])
    split = models.Sequential([fd.Input((5,)), layers.Dense(8), make(fd), layers.Dense(2)])
    split.set_weights(fused.get_weights())
    np.testing.assert_array_equal(fused.predict(x, verbose=0), split.predict(x, verbose=0))
    np.testing.assert_allclose(fused.layers[0](x), split.layers[1](split.layers[0](x)),
                               rtol=1e-6, atol=1e-7)
    hist = []
    for m in (fused, split):
        m.compile(optimizer=optimizers.SGD(0.05), loss="mse")
        hist.append(m.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
                    .history["loss"])
    assert hist[0] == hist[1]
    for a, b in zip(fused.get_weights(), split.get_weights()):
        np.testing.assert_array_equal(a, b)
    cfg = fused.layers[0].get_config()
    assert cfg["activation"]["module"] == "keras.layers"
    assert cfg["activation"]["class_name"] == type(fused.layers[0].activation).__name__
    back = layers.Dense.from_config(json.loads(json.dumps(cfg)))
    assert type(back.activation) is type(fused.layers[0].activation)
    assert back.activation.get_config() == fused.layers[0].activation.get_config()
    again = models.model_from_json(fused.to_json())
    again.set_weights(fused.get_weights())
    np.testing.assert_array_equal(again.predict(x, verbose=0), fused.predict(x, verbose=0))


def test_activation_layer_as_dense_activation_matches_keras(tmp_path):
    """Side by side with real Keras: predictions, training and the saved
    file in both directions."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    r = np.random.default_rng(5)
    x = r.normal(size=(64, 5)).astype(np.float32)
    y = r.normal(size=(64, 3)).astype(np.float32)

    def build(lib):
        return lib.Sequential([lib.Input((5,))] + [lib.layers.Dense(8, activation=make(lib))
                                                   for _, make in ACT_LAYERS]
                              + [lib.layers.Dense(3)])
    k, f = build(keras), build(fd)
    f.set_weights([np.asarray(w) for w in k.get_weights()])
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), atol=1e-6)
    assert f.layers[0].get_config()["activation"] == {
        **k.layers[0].get_config()["activation"],
        "config": {**k.layers[0].get_config()["activation"]["config"],
                   "name": f.layers[0].activation.name}}
    k.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    f.compile(optimizer=optimizers.SGD(0.05), loss="mse")
    hk = k.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    hf = f.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(hf, hk, rtol=1e-5)
    k.save(tmp_path / "k.keras")
    f.save(tmp_path / "f.keras")
    f2 = fd.saving.load_model(tmp_path / "k.keras")
    k2 = keras.saving.load_model(tmp_path / "f.keras")
    np.testing.assert_allclose(f2.predict(x, verbose=0), k.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(k2.predict(x, verbose=0), f.predict(x, verbose=0), atol=1e-6)
