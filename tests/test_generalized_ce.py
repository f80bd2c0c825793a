"""losses.CategoricalGeneralizedCrossEntropy (Keras 3's GCE for noisy labels):
values against the formula, its gradient against central differences,
arguments, configs, and training side by side with Keras where installed."""

import numpy as np
import pytest

import fastdense as fd
from fastdense import _autodiff as ad

L = fd.losses


def probs(seed=0, n=6, c=4):
    rng = np.random.default_rng(seed)
    p = rng.random((n, c)) + 0.05
    return p / p.sum(-1, keepdims=True), rng.integers(0, c, n)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_values_and_gradient(q):
    p, t = probs()
    want = (1 - p[np.arange(len(t)), t] ** q) / q
    got = L.categorical_generalized_cross_entropy(t, p.astype(np.float32), q)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # (float32 inside, as Keras: the autodiff gradient against the analytic one,
    # d/dp_label (1 - p^q) / q = -p^(q - 1), zero for the other classes)
    _, g = ad.value_and_grad(lambda yt, yp: L.categorical_generalized_cross_entropy(t, yp, q),
                             None, p.astype(np.float32))
    analytic = np.zeros_like(p)
    analytic[np.arange(len(t)), t] = -p[np.arange(len(t)), t] ** (q - 1)
    np.testing.assert_allclose(g, analytic, rtol=1e-5)
    loss = L.CategoricalGeneralizedCrossEntropy(q=q)
    np.testing.assert_allclose(loss(t, p.astype(np.float32)), want.mean(), rtol=1e-5)


def test_arguments_and_config():
    for bad in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ValueError, match=r"q must be in the interval \(0, 1\)"):
            L.CategoricalGeneralizedCrossEntropy(q=bad)
    cfg = L.CategoricalGeneralizedCrossEntropy(q=0.3).get_config()
    assert cfg == {"name": "categorical_generalized_cross_entropy",
                   "reduction": "sum_over_batch_size", "q": 0.3}
    back = L.deserialize(L.serialize(L.CategoricalGeneralizedCrossEntropy(q=0.3)))
    assert isinstance(back, L.CategoricalGeneralizedCrossEntropy) and back.q == 0.3
    _, t = probs()
    out_of_range = L.categorical_generalized_cross_entropy(np.array([7]), np.full((1, 4), 0.25,
                                                                                 np.float32), 0.5)
    np.testing.assert_allclose(out_of_range, [2.0])  # (one_hot of 7 with 4 classes: zeros)


def test_trains_and_saves(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    m = fd.Sequential([fd.Input((6,)), fd.layers.Dense(16, activation="relu"),
                       fd.layers.Dense(4, activation="softmax")])
    m.compile("adam", L.CategoricalGeneralizedCrossEntropy(q=0.7), metrics=["accuracy"])
    h = m.fit(x, y, epochs=20, batch_size=16, verbose=0).history
    assert h["loss"][-1] < h["loss"][0]
    pytest.importorskip("h5py")
    m.save(tmp_path / "m.keras")
    r = fd.models.load_model(tmp_path / "m.keras")
    assert isinstance(r.loss, L.CategoricalGeneralizedCrossEntropy) and r.loss.q == 0.7


def test_side_by_side_with_keras(tmp_path):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = rng.integers(0, 4, 96)
    keras.backend.clear_session()
    fd.backend.clear_session()
    ms = [lib.Sequential([lib.Input((6,)), lib.layers.Dense(8, activation="relu"),
                          lib.layers.Dense(4, activation="softmax")]) for lib in (keras, fd)]
    ms[1].set_weights(ms[0].get_weights())
    hs = []
    for m, lib in zip(ms, (keras, fd)):
        m.compile("adam", lib.losses.CategoricalGeneralizedCrossEntropy(q=0.3),
                  metrics=["accuracy"])
        hs.append(m.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history)
    for k in hs[0]:
        np.testing.assert_allclose(hs[1][k], hs[0][k], rtol=1e-6, atol=1e-7)
    assert keras.losses.CategoricalGeneralizedCrossEntropy(q=0.3).get_config() == \
        L.CategoricalGeneralizedCrossEntropy(q=0.3).get_config()
    pytest.importorskip("h5py")
    ms[1].save(tmp_path / "f.keras")
    ms[0].save(tmp_path / "k.keras")
    assert keras.models.load_model(tmp_path / "f.keras").loss.q == 0.3
    assert fd.models.load_model(tmp_path / "k.keras").loss.q == 0.3
