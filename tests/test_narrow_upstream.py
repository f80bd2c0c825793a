"""The first layer's backward with its dL/dy given as a narrow next layer's
dX (kernels: backward_rows_up, bound as dense_backward_upstream; the engine
uses it for 784-512-10-like networks). It must give the bits of the two-step
form, the narrow layer's dense_backward storing dX and dense_backward on it,
on every ISA path and thread count, on its fast path and on the fallbacks."""
from __future__ import annotations

import numpy as np
import pytest

import fastdense as fd
from fastdense import _core, layers, models, optimizers

ACTS = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}

# (B, in, out, U). Fast path: B > 8, out > 16, any act but softmax. The rest
# fall back to storing dX: B <= 8 (row-streaming dX), out <= 16 (a narrow
# first layer reads dz in place).
SHAPES = [
    (128, 784, 512, 10),  # MNIST
    (40, 100, 40, 10),    # a partial column panel
    (9, 64, 70, 16),      # the smallest fast batch, U at its limit
    (300, 70, 33, 1),     # two K blocks of the batch, one upstream unit
    (8, 64, 40, 10),      # fallback: small batch
    (33, 50, 16, 3),      # fallback: narrow first layer
]


def _two_step(dz1, w1, y, x, w, act, bias, rows, rmsprop, adam=None):
    """The narrow layer's dX by its own backward, then this layer's."""
    y1 = np.zeros((x.shape[0], w1.shape[1]), np.float32)  # (linear: y unused)
    dx = _core.dense_backward(dz1, y1, y, w1, ACTS["linear"], True, True)[0]
    return _core.dense_backward(dx, y, x, w, act, bias, False, rows, rmsprop, adam)


def _data(shape, act, seed_extra=0):
    B, n_in, n_out, U = shape
    rng = np.random.default_rng([B, n_in, n_out, U, act, seed_extra])
    x = rng.standard_normal((B, n_in)).astype(np.float32)
    x[rng.random((B, n_in)) < 0.5] = 0.0
    x[:, rng.random(n_in) < 0.3] = 0.0
    w = (rng.standard_normal((n_in, n_out)) * 0.1).astype(np.float32)
    y = _core.dense_forward(x, w, (rng.standard_normal(n_out) * 0.1).astype(np.float32),
                            act)
    dz1 = rng.standard_normal((B, U)).astype(np.float32)
    w1 = (rng.standard_normal((n_out, U)) * 0.2).astype(np.float32)
    return x, w, y, dz1, w1


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("selection", [False, True], ids=["whole", "rows"])
def test_same_bits_as_storing_dx(isa, threads, shape, act, selection):
    x, w, y, dz1, w1 = _data(shape, act)
    rows = None
    xs = x
    if selection:
        rows = np.flatnonzero(x.any(axis=0)).astype(np.int64)
        xs = np.ascontiguousarray(x[:, rows])
    _, dw_want, db_want, _ = _two_step(dz1, w1, y, xs, w, act, True, rows, None)
    dw, db = _core.dense_backward_upstream(dz1, w1, y, xs, w, act, True, rows)
    if selection:  # (rows outside the selection: zeros in both)
        np.testing.assert_array_equal(dw[rows], dw_want[rows])
    else:
        np.testing.assert_array_equal(dw, dw_want)
    np.testing.assert_array_equal(db, db_want)


@pytest.mark.parametrize("kind", ["rmsprop", "adam"])
@pytest.mark.parametrize("shape", SHAPES[:4], ids=lambda s: "x".join(map(str, s)))
def test_fused_step_same_bits(isa, threads, shape, kind):
    x, w, y, dz1, w1 = _data(shape, ACTS["relu"], 1)
    rows = np.flatnonzero(x.any(axis=0)).astype(np.int64)
    xs = np.ascontiguousarray(x[:, rows])
    rng = np.random.default_rng(5)
    v0 = (rng.random(w.shape) * 0.01).astype(np.float32)
    m0 = (rng.standard_normal(w.shape) * 0.01).astype(np.float32)
    state0 = [v0] if kind == "rmsprop" else [m0, v0]
    extra = (1e-3, 0.9, 1e-7) if kind == "rmsprop" else (2e-3, 0.9, 0.999, 1e-7)
    p_want, st_want = w.copy(), [a.copy() for a in state0]
    out_want = _two_step(dz1, w1, y, xs, w, 1, False, rows,
                         **{"rmsprop": None, kind: (p_want, *st_want, *extra)})
    p, st = w.copy(), [a.copy() for a in state0]
    dw, db = _core.dense_backward_upstream(dz1, w1, y, xs, w, 1, False, rows,
                                           **{kind: (p, *st, *extra)})
    assert dw is None and db is None and out_want[1] is None
    np.testing.assert_array_equal(p, p_want)
    for a, b in zip(st, st_want):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(p, w)  # (the step did move the selected rows)


def test_non_finite_upstream_keeps_its_nan(isa, threads):
    """A NaN / inf in dz_next reaches the same outputs as through a stored dX
    (and not the padding of a partial panel's packed columns)."""
    shape = (40, 60, 45, 10)
    x, w, y, dz1, w1 = _data(shape, ACTS["relu"], 2)
    dz1[3, 2] = np.nan
    dz1[7, 0] = np.inf
    _, dw_want, db_want, _ = _two_step(dz1, w1, y, x, w, 1, True, None, None)
    dw, db = _core.dense_backward_upstream(dz1, w1, y, x, w, 1, True)
    assert np.isnan(dw).any()
    np.testing.assert_array_equal(dw, dw_want)
    np.testing.assert_array_equal(db, db_want)


@pytest.mark.parametrize("act", [0, 1, 2, 3], ids=["linear", "relu", "sigmoid", "tanh"])
def test_matches_float64_chain_rule(isa, act):
    """dW = x^T . ((dz1 . w1^T) * act'(y)), db its column sums, in float64."""
    x, w, y, dz1, w1 = _data((64, 90, 48, 7), act, 3)
    dw, db = _core.dense_backward_upstream(dz1, w1, y, x, w, act, True)
    dy = dz1.astype(np.float64) @ w1.astype(np.float64).T
    y64 = y.astype(np.float64)
    deriv = {0: np.ones_like(y64), 1: (y64 > 0).astype(np.float64),
             2: y64 * (1 - y64), 3: 1 - y64 * y64}[act]
    dz = dy * deriv
    np.testing.assert_allclose(dw, x.astype(np.float64).T @ dz, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(db, dz.sum(0), rtol=2e-4, atol=2e-5)


def test_finite_difference_gradient():
    """The kernel's dW against central differences of the float64 loss
    L(W) = sum(dz1 * (relu(x.W + b) . w1)) for a few entries of W."""
    x, w, _, dz1, w1 = _data((24, 30, 40, 5), ACTS["relu"], 4)
    b = np.full(w.shape[1], 0.05, np.float32)
    y = _core.dense_forward(x, w, b, ACTS["relu"])
    dw, _ = _core.dense_backward_upstream(dz1, w1, y, x, w, ACTS["relu"], True)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)

    def loss(wm):
        return float(np.sum(dz1 * (np.maximum(x64 @ wm + b64, 0) @ w1.astype(np.float64))))

    rng = np.random.default_rng(9)
    h = 1e-6
    for _ in range(12):
        i, j = rng.integers(w.shape[0]), rng.integers(w.shape[1])
        wp, wm = w64.copy(), w64.copy()
        wp[i, j] += h
        wm[i, j] -= h
        fd_grad = (loss(wp) - loss(wm)) / (2 * h)
        assert abs(dw[i, j] - fd_grad) <= 1e-3 * max(1.0, abs(fd_grad)), (i, j)


def test_validation_names_the_argument():
    x = np.ones((12, 5), np.float32)
    w = np.ones((5, 20), np.float32)
    y = np.ones((12, 20), np.float32)
    with pytest.raises(ValueError, match="`dz_next`.*1 to 16.*shape=\\(12, 17\\)"):
        _core.dense_backward_upstream(np.ones((12, 17), np.float32),
                                      np.ones((20, 17), np.float32), y, x, w, 1, True)
    with pytest.raises(ValueError, match="`dz_next`"):
        _core.dense_backward_upstream(np.ones((11, 4), np.float32),
                                      np.ones((20, 4), np.float32), y, x, w, 1, True)
    with pytest.raises(ValueError, match="`w_next`"):
        _core.dense_backward_upstream(np.ones((12, 4), np.float32),
                                      np.ones((4, 20), np.float32), y, x, w, 1, True)
    with pytest.raises(ValueError, match="`y`"):
        _core.dense_backward_upstream(np.ones((12, 4), np.float32),
                                      np.ones((20, 4), np.float32), y[:, :3], x, w, 1, True)


def _train(nt, hidden_act="relu", out_units=10, bs=128, epochs=1):
    (x, y) = _mnist_like()
    fd.set_num_threads(nt)
    fd.utils.set_random_seed(3)
    m = models.Sequential([layers.Dense(64, activation=hidden_act, input_shape=(x.shape[1],)),
                           layers.Dense(out_units, activation="softmax")])
    m.compile(optimizer=optimizers.RMSprop(), loss="sparse_categorical_crossentropy")
    h = m.fit(x, y % out_units, epochs=epochs, batch_size=bs, verbose=0)
    return m.get_weights(), h.history["loss"]


def _mnist_like():
    rng = np.random.default_rng(11)
    x = rng.random((600, 100)).astype(np.float32)
    x[x < 0.6] = 0.0
    x[:, :20] = 0.0  # (always-zero columns: the column selection's case)
    y = rng.integers(0, 10, 600)
    return x, y


@pytest.mark.parametrize("hidden_act", ["relu", "tanh"])
def test_engine_training_independent_of_threads(isa, hidden_act):
    """fit takes the fused path (second layer of 10 units); 1 and 2 threads
    give the same bits, and the model learns."""
    old = _core.get_num_threads()
    try:
        w1, l1 = _train(1, hidden_act, epochs=3)
        w2, l2 = _train(2, hidden_act, epochs=3)
    finally:
        fd.set_num_threads(old)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert l1 == l2
    assert l1[-1] < l1[0]
