"""losses.Circle / circle (Keras 3's metric-learning loss): per-sample values
against a plain numpy statement of Keras's formula, the mask of samples
without pairs, the gradient against central differences, and training side by
side with Keras where it is installed."""

import numpy as np
import pytest

import fastdense as fd
from fastdense import _autodiff as ad

L = fd.losses


def embeddings(seed=0, n=8, d=5):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, d))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


LABELS = np.array([0, 1, 0, 2, 1, 3, 0, 1])  # (2 and 3 once: no positive pair)


def ref_circle(lab, e, gamma=80.0, margin=0.4, remove_diagonal=True):
    e = e.astype(np.float64)
    dist = np.maximum(1 - e @ e.T, 0)
    pos = lab[:, None] == lab[None, :]
    neg = ~pos
    if remove_diagonal:
        pos &= ~np.eye(len(lab), dtype=bool)
    out = []
    for i in range(len(lab)):
        if not pos[i].any() or not neg[i].any():
            out.append(0.0)
            continue
        ap = np.maximum(margin + dist[i][pos[i]], 0)
        an = np.maximum(1 + margin - dist[i][neg[i]], 0)
        lp = np.logaddexp.reduce(-gamma * ap * (margin - dist[i][pos[i]]))
        ln = np.logaddexp.reduce(gamma * an * ((1 - margin) - dist[i][neg[i]]))
        out.append(np.logaddexp(0, lp + ln))
    return np.array(out)


@pytest.mark.parametrize("kw", [{}, dict(gamma=10.0, margin=0.25), dict(remove_diagonal=False)])
def test_values_mask_and_reduction(kw):
    e = embeddings()
    want = ref_circle(LABELS, e, **kw)
    got = L.circle(LABELS, e, **kw)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-4)
    kept = want > 0
    assert (got[~kept] == 0).all()
    loss = L.Circle(**kw)
    np.testing.assert_allclose(loss(LABELS, e), want[kept].mean(), rtol=2e-4)
    none = L.Circle(reduction=None, **kw)(LABELS, e)
    np.testing.assert_allclose(none, want, rtol=2e-4, atol=1e-4)


def test_gradient_against_central_differences():
    e = embeddings(1).astype(np.float64)
    f = lambda p: float(np.sum(L.circle(LABELS, p, gamma=4.0)))  # noqa: E731
    _, g = ad.value_and_grad(lambda yt, yp: L.circle(LABELS, yp, gamma=4.0), None, e)
    num = np.zeros_like(e)
    h = 1e-3
    for i in np.ndindex(e.shape):
        d = np.zeros_like(e)
        d[i] = h
        num[i] = (f(e + d) - f(e - d)) / (2 * h)
    # (float32 inside: the differences carry ~1e-2 of rounding on entries up to ~13)
    np.testing.assert_allclose(g, num, rtol=2e-2, atol=5e-2)
    assert np.isfinite(g).all()


def test_trains_and_configs():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(128, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    m = fd.Sequential([fd.Input((6,)), fd.layers.Dense(16, activation="relu"), fd.layers.Dense(8),
                       fd.layers.UnitNormalization()])
    m.compile("adam", L.Circle(gamma=16.0))
    h = m.fit(x, y, epochs=15, batch_size=32, verbose=0).history["loss"]
    assert np.isfinite(h).all() and h[-1] < h[0]
    cfg = L.Circle(gamma=16.0).get_config()
    assert cfg == {"name": "circle", "reduction": "sum_over_batch_size", "gamma": 16.0,
                   "margin": 0.4, "remove_diagonal": True}
    assert L.deserialize(L.serialize(L.Circle(margin=0.3))).margin == 0.3


def test_side_by_side_with_keras():
    keras = pytest.importorskip("keras")
    e = embeddings(3)
    for kw in ({}, dict(gamma=10.0, margin=0.25), dict(remove_diagonal=False)):
        np.testing.assert_allclose(L.circle(LABELS, e, **kw),
                                   np.asarray(keras.losses.circle(LABELS, e, **kw)), rtol=1e-6)
        np.testing.assert_allclose(L.Circle(**kw)(LABELS, e),
                                   keras.losses.Circle(**kw)(LABELS, e), rtol=1e-6)
    import jax
    _, g = ad.value_and_grad(lambda yt, yp: L.circle(LABELS, yp, gamma=4.0), None, e)
    jg = jax.grad(lambda v: keras.losses.circle(LABELS, v, gamma=4.0).sum())(e)
    np.testing.assert_allclose(g, np.asarray(jg), rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(96, 6)).astype(np.float32), rng.integers(0, 4, 96)
    keras.backend.clear_session()
    fd.backend.clear_session()
    ms = [lib.Sequential([lib.Input((6,)), lib.layers.Dense(16, activation="relu"),
                          lib.layers.Dense(8), lib.layers.UnitNormalization()])
          for lib in (keras, fd)]
    ms[1].set_weights(ms[0].get_weights())
    hs = []
    for m, lib in zip(ms, (keras, fd)):
        m.compile("adam", lib.losses.Circle(gamma=16.0))
        hs.append(m.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(hs[1], hs[0], rtol=1e-6)
    assert keras.losses.Circle().get_config() == L.Circle().get_config()
