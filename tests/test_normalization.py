"""layers.Normalization and layers.Rescaling (the input-stage layers).

Normalization: adapt's statistics and the layer's output against a
float64 numpy reference of Keras's formula, its place in a model (the
leading layer(s), applied to the whole input array), its config, weights and
files, and side by side with real Keras when installed."""
from __future__ import annotations

import copy
import importlib.util
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers

needs_h5 = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                              reason="h5py (fastdense[h5]) is not installed")


def _data(n=200, seed=0):
    r = np.random.default_rng(seed)
    x = (r.normal(size=(n, 4)) * [1, 10, 100, 1e-3] + [0, 5, -50, 3]).astype(np.float32)
    y = (x @ r.normal(size=(4, 1)) / 50).astype(np.float32)
    return x, y


def _ref(x, mean, var, invert=False, eps=1e-7):
    x, mean, var = (np.asarray(a, np.float64) for a in (x, mean, var))
    scale = np.maximum(np.sqrt(var), eps)
    return mean + x * scale if invert else (x - mean) / scale


@pytest.mark.parametrize("axis", [-1, None, (1,)])
@pytest.mark.parametrize("invert", [False, True])
def test_adapt_and_call_match_the_formula(axis, invert):
    x, _ = _data()
    n = layers.Normalization(axis=axis, invert=invert)
    n.adapt(x)
    red = (0,) if axis is not None else (0, 1)
    np.testing.assert_allclose(n.adapt_mean.numpy(), x.astype(np.float64).mean(axis=red),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(n.adapt_variance.numpy(), x.astype(np.float64).var(axis=red),
                               rtol=1e-4, atol=1e-9)
    assert [w.name for w in n.weights] == ["mean", "variance", "count"]
    assert n.count.numpy().dtype == np.int32 and n.trainable_weights == []
    out = n(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    want = _ref(x, n.adapt_mean.numpy(), n.adapt_variance.numpy(), invert)
    np.testing.assert_allclose(out, want, rtol=2e-6, atol=2e-6 * np.abs(want).max())
    if not invert and axis is not None:  # standardized features (the last one has a
        # spread of 1e-3 around 3: float32's mean is good to ~1e-3 of that spread)
        np.testing.assert_allclose(out.mean(axis=0), 0, atol=2e-3)
        np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-3)


def test_given_mean_and_variance_broadcast_and_epsilon():
    x, _ = _data(10)
    n = layers.Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[1.0, 4.0, 0.0, 16.0])
    n.build(x.shape)
    assert n.weights == []
    np.testing.assert_allclose(n(x), _ref(x, [1, 2, 3, 4], [1, 4, 0, 16]), rtol=1e-6)
    s = layers.Normalization(mean=3.0, variance=2.0)
    s.build((None, 4))
    np.testing.assert_allclose(s(x), (x - 3.0) / np.sqrt(2.0), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="both `mean` and `variance` must be set"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="must have the same shape"):
        layers.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="must call `.build"):
        layers.Normalization()(x)


def test_adapt_on_batches_merges_as_one_pass():
    x, _ = _data(203)
    whole, parts = layers.Normalization(), layers.Normalization()
    whole.adapt(x)
    parts.adapt(iter([x[:64], x[64:128], x[128:200], x[200:]]))
    for a, b in zip(whole.get_weights(), parts.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="incompatible shape"):
        whole.adapt(np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="empty iterable"):
        layers.Normalization().adapt(iter([]))


def test_in_a_model_it_trains_as_on_normalized_data():
    """Sequential([norm, Dense, Dense]) gives the same losses, weights and
    predictions as the Dense stack trained on norm(x)."""
    x, y = _data()
    norm = layers.Normalization()
    norm.adapt(x)
    m = fd.Sequential([norm, layers.Dense(16, activation="relu"), layers.Dense(1)])
    assert m.input_shape == (None, 4)  # (from the adapted layer, as Keras)
    plain = fd.Sequential([fd.Input((4,)), layers.Dense(16, activation="relu"), layers.Dense(1)])
    plain.set_weights(m.get_weights()[3:])
    hist = []
    for model, data in ((m, x), (plain, norm(x))):
        model.compile(optimizer=fd.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        hist.append(model.fit(data, y, epochs=3, batch_size=32, shuffle=False, verbose=0,
                              validation_split=0.2).history)
    assert hist[0] == hist[1]
    np.testing.assert_array_equal(m.predict(x, verbose=0), plain.predict(norm(x), verbose=0))
    np.testing.assert_array_equal(m.predict(x[:1], verbose=0), plain.predict(norm(x[:1]), verbose=0))
    np.testing.assert_array_equal(m(x[:5]), plain(norm(x[:5])))
    assert m.evaluate(x, y, verbose=0) == plain.evaluate(norm(x), y, verbose=0)
    assert len(m.trainable_weights) == 4 and len(m.non_trainable_weights) == 3
    # (adapted before the model: its paths are the layer's own, as in Keras)
    assert [v.path for v in m.weights][:3] == [f"{norm.name}/mean", f"{norm.name}/variance",
                                               f"{norm.name}/count"]
    # an unadapted one, built with the model: zeros and ones (the identity)
    m2 = fd.Sequential([layers.Normalization(), layers.Dense(1)])
    m2.build((None, 4))
    np.testing.assert_array_equal(m2.layers[0].adapt_variance.numpy(), np.ones(4))
    with pytest.raises(NotImplementedError, match="first layer"):
        fd.Sequential([layers.Dense(3), layers.Normalization()])


def test_config_and_copies():
    x, _ = _data()
    n = layers.Normalization(axis=-1)
    n.adapt(x)
    m = fd.Sequential([n, layers.Dense(2)])
    cfg = n.get_config()
    assert {k: cfg[k] for k in ("axis", "invert", "mean", "variance")} == {
        "axis": (-1,), "invert": False, "mean": None, "variance": None}
    back = layers.Normalization.from_config(cfg)
    assert back.axis == (-1,) and back.input_mean is None
    for again in (fd.models.model_from_json(m.to_json()), copy.deepcopy(m)):
        again.set_weights(m.get_weights())
        np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))
    fixed = fd.Sequential([fd.Input((4,)), layers.Normalization(mean=[1, 2, 3, 4],
                                                                variance=[1, 1, 4, 4],
                                                                invert=True), layers.Dense(2)])
    again = fd.models.model_from_json(fixed.to_json())
    again.set_weights(fixed.get_weights())
    np.testing.assert_array_equal(again.predict(x, verbose=0), fixed.predict(x, verbose=0))


@needs_h5
def test_saved_and_loaded(tmp_path):
    x, y = _data()
    n = layers.Normalization()
    n.adapt(x)
    m = fd.Sequential([n, layers.Dense(2)])
    m.compile("adam", "mse")
    m.fit(x, np.hstack([y, y]), verbose=0)
    m.save(tmp_path / "n.keras")
    back = fd.saving.load_model(tmp_path / "n.keras")
    assert back.layers[0].count.numpy().dtype == np.int32
    for a, b in zip(back.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_side_by_side_with_keras(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x, y = _data()
    out = {}
    w0 = None
    for lib in (keras, fd):
        n = lib.layers.Normalization()
        n.adapt(x)
        m = lib.Sequential([n, lib.layers.Dense(16, activation="relu"), lib.layers.Dense(1)])
        m.build((None, 4))
        if w0 is None:
            w0 = [np.asarray(a) for a in m.get_weights()]
        else:
            m.set_weights(w0)
        m.compile(optimizer=lib.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        h = m.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0,
                  validation_split=0.2).history
        m.save(tmp_path / f"{lib.__name__}.keras")
        out[lib.__name__] = (h, np.asarray(m.predict(x, verbose=0)),
                             {k: v for k, v in n.get_config().items() if k not in ("name",)})
    (hk, pk, ck), (hf, pf, cf) = out["keras"], out["fastdense"]
    for key in hk:
        np.testing.assert_allclose(hf[key], hk[key], rtol=1e-5)
    np.testing.assert_allclose(pf, pk, rtol=1e-5, atol=1e-6)
    assert ck == cf
    a = fd.saving.load_model(tmp_path / "keras.keras")
    b = keras.saving.load_model(tmp_path / "fastdense.keras")
    np.testing.assert_allclose(a.predict(x, verbose=0), pk, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(b.predict(x, verbose=0)), pf, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ Rescaling
def test_rescaling_in_a_model_trains_as_on_rescaled_data():
    r = np.random.default_rng(2)
    x = r.integers(0, 256, (64, 6, 4)).astype(np.uint8)
    y = r.integers(0, 3, 64)
    resc = layers.Rescaling(1 / 255.0, offset=-0.5)
    np.testing.assert_array_equal(resc(x), x.astype(np.float32) * np.float32(1 / 255.0)
                                  + np.float32(-0.5))
    m = fd.Sequential([fd.Input((6, 4)), resc, layers.Flatten(),
                       layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    plain = fd.Sequential([fd.Input((24,)), layers.Dense(8, activation="relu"),
                           layers.Dense(3, activation="softmax")])
    plain.set_weights(m.get_weights())
    xr = resc(x).reshape(64, -1)
    hist = []
    for model, data in ((m, x), (plain, xr)):
        model.compile(optimizer=fd.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        hist.append(model.fit(data, y, epochs=2, batch_size=16, shuffle=False,
                              verbose=0).history)
    assert hist[0] == hist[1]
    np.testing.assert_array_equal(m.predict(x, verbose=0), plain.predict(xr, verbose=0))
    assert resc.get_config()["scale"] == 1 / 255.0 and resc.get_config()["offset"] == -0.5
    again = fd.models.model_from_json(m.to_json())
    again.set_weights(m.get_weights())
    assert again.input_shape == (None, 6, 4)
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))
    # per-channel scale broadcasts
    np.testing.assert_allclose(layers.Rescaling([1.0, 2.0, 3.0, 4.0])(np.ones((2, 4))),
                               [[1, 2, 3, 4]] * 2)
    with pytest.raises(ValueError, match="`scale` of Rescaling must be a finite number"):
        layers.Rescaling(float("nan"))
    with pytest.raises(NotImplementedError, match="first layers"):
        fd.Sequential([layers.Dense(3), layers.Rescaling(2.0)])


def test_rescaling_side_by_side_with_keras(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    r = np.random.default_rng(3)
    x = r.integers(0, 256, (64, 6, 4)).astype(np.uint8)
    y = r.integers(0, 3, 64)
    out, w0 = {}, None
    for lib in (keras, fd):
        m = lib.Sequential([lib.Input((6, 4)), lib.layers.Rescaling(1 / 255.0, offset=-0.5),
                            lib.layers.Flatten(), lib.layers.Dense(8, activation="relu"),
                            lib.layers.Dense(3, activation="softmax")])
        if w0 is None:
            w0 = [np.asarray(a) for a in m.get_weights()]
        else:
            m.set_weights(w0)
        m.compile(optimizer=lib.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        h = m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history
        m.save(tmp_path / f"{lib.__name__}.keras")
        out[lib.__name__] = (h["loss"], np.asarray(m.predict(x, verbose=0)),
                             {k: v for k, v in m.layers[0].get_config().items() if k != "name"})
    (lk, pk, ck), (lf, pf, cf) = out["keras"], out["fastdense"]
    np.testing.assert_allclose(lf, lk, rtol=1e-5)
    np.testing.assert_allclose(pf, pk, rtol=1e-5, atol=1e-6)
    assert cf == ck
    a = fd.saving.load_model(tmp_path / "keras.keras")
    b = keras.saving.load_model(tmp_path / "fastdense.keras")
    np.testing.assert_allclose(a.predict(x, verbose=0), pk, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(b.predict(x, verbose=0)), pf, rtol=1e-5, atol=1e-6)
