"""Sparse inputs: the kernels' column-selection entry points (dense_forward /
dense_backward with `rows`) and the engine's use of them for a batch whose
input has all-zero columns (fit, train_on_batch, evaluate), against float64
numpy references and against the whole-row path."""
from __future__ import annotations

import numpy as np
import pytest

import fastdense as fd
from fastdense import _core, layers, models, ops, optimizers
from test_kernels import act_ref  # (the float64 activation reference)

ACTS = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}
# (B, in, out): the packed GEMM (B > 16, out > 16), the narrow kernel (out <= 16),
# the small-batch path (B <= 16: W's selected rows streamed in place), several K
# blocks and edge tiles
# (24, 2000, 40): the selected columns span two K blocks on every ISA (AVX2's
# block is 800); (900, 40, 24): so does dW's batch.
SHAPES = [(128, 784, 512), (40, 100, 10), (9, 64, 40), (33, 600, 37), (17, 50, 1),
          (64, 300, 520), (2, 784, 512), (8, 300, 64), (16, 200, 100), (24, 2000, 40),
          (900, 40, 24)]


def sparse_inputs(B, K, N, seed=0, zero_cols=0.4):
    rng = np.random.default_rng([B, K, N, seed])
    x = rng.standard_normal((B, K)).astype(np.float32)
    x[:, rng.random(K) < zero_cols] = 0.0
    x[rng.random((B, K)) < 0.3] = 0.0
    w = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    dy = rng.standard_normal((B, N)).astype(np.float32)
    rows = np.flatnonzero(x.any(axis=0)).astype(np.int64)
    return x, w, b, dy, rows


def tol(a, b):
    """float32 accumulation bound for a . b (elementwise)."""
    k = max(a.shape[1], 1)
    return 8 * np.sqrt(k) * np.finfo(np.float32).eps * (np.abs(a) @ np.abs(b)) + 1e-6


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_rows_matches_reference_and_full_product(isa, threads, shape, act):
    x, w, b, _, rows = sparse_inputs(*shape)
    y = _core.dense_forward(np.ascontiguousarray(x[:, rows]), w, b, act, rows)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    want = act_ref(x64 @ w64 + b, act)
    t = tol(x64, w64) + np.abs(b)
    if act == 4:
        t = 2 * t.max(axis=1, keepdims=True)
    assert (np.abs(y - want) <= t).all()
    # the terms skipped are exact zeros: the full product agrees as closely
    full = _core.dense_forward(x, w, b, act)
    assert (np.abs(y - full) <= 2 * t).all()


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_backward_rows_matches_full_backward(isa, threads, shape, act):
    x, w, b, dy, rows = sparse_inputs(*shape)
    xs = np.ascontiguousarray(x[:, rows])
    y = _core.dense_forward(x, w, b, act)
    _, dw_full, db_full, dz_full = _core.dense_backward(dy, y, x, w, act, True, False)
    none, dw, db, dz = _core.dense_backward(dy, y, xs, w, act, True, False, rows)
    assert none is None and dw.shape == w.shape
    # dz and db come from the same pass; dW's rows sum over the batch in the same order
    np.testing.assert_array_equal(dz, dz_full)
    np.testing.assert_array_equal(db, db_full)
    np.testing.assert_array_equal(dw, dw_full)
    unused = np.setdiff1d(np.arange(w.shape[0]), rows)
    assert (dw[unused] == 0).all()
    dw_ref = x.astype(np.float64).T @ dz.astype(np.float64)
    assert (np.abs(dw - dw_ref) <= tol(x.T.astype(np.float64), np.abs(dz)) ).all()


@pytest.mark.parametrize("act", [0, 1, 4], ids=["linear", "relu", "softmax"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_rows_skip_zero_terms_bitwise(isa, threads, shape, act):
    # Within the selected columns the kernels also skip, tile by tile, the k
    # where every row of a tile is zero; the result must be the very bits of
    # the plain product on the compacted operands (same K, same blocking)
    x, w, b, dy, rows = sparse_inputs(*shape, seed=3)
    x[np.random.default_rng(1).random(x.shape) < 0.5] = 0.0  # sparser rows
    rows = np.flatnonzero(x.any(axis=0)).astype(np.int64)
    xs, ws = np.ascontiguousarray(x[:, rows]), np.ascontiguousarray(w[rows])
    y = _core.dense_forward(xs, w, b, act, rows)
    np.testing.assert_array_equal(y, _core.dense_forward(xs, ws, b, act))
    _, dw, db, dz = _core.dense_backward(dy, y, xs, w, act, True, False, rows)
    _, dw_c, db_c, dz_c = _core.dense_backward(dy, y, xs, ws, act, True, False)
    np.testing.assert_array_equal(dw[rows], dw_c)
    np.testing.assert_array_equal(db, db_c)
    np.testing.assert_array_equal(dz, dz_c)


@pytest.mark.parametrize("shape", [(128, 784, 512), (64, 300, 520)],
                         ids=lambda s: "x".join(map(str, s)))
def test_rows_skip_zero_terms_keep_nan(isa, threads, shape):
    # 0 * inf is NaN in the plain product: a weight or a gradient that is not
    # finite turns the skipping off, so the NaN reach the same outputs
    x, w, b, dy, rows = sparse_inputs(*shape, seed=4)
    k = rows[len(rows) // 2]
    x[:48, k] = 0.0  # whole tiles of rows without column k (skipped when finite)
    x[5, rows[1:]] = 0.0  # row 5 only in column rows[0]: skipped by most dW tiles
    assert (x[:, k] != 0).any() and (x[:, rows] != 0).any(axis=0).all()
    xs = np.ascontiguousarray(x[:, rows])
    for bad in (np.inf, np.nan):
        w2 = w.copy()
        w2[k, 7] = bad
        y = _core.dense_forward(xs, w2, b, 0, rows)
        want = _core.dense_forward(xs, np.ascontiguousarray(w2[rows]), b, 0)
        np.testing.assert_array_equal(y, want)
        assert np.isnan(y[x[:, k] == 0, 7]).all()
        dy2 = dy.copy()
        dy2[5, 9] = bad
        _, dw, _, _ = _core.dense_backward(dy2, y, xs, w, 0, True, False, rows)
        _, dw_c, _, _ = _core.dense_backward(dy2, y, xs, np.ascontiguousarray(w[rows]), 0,
                                             True, False)
        np.testing.assert_array_equal(dw[rows], dw_c)
        assert np.isnan(dw[rows][xs[5] == 0, 9]).all()
    # Finite gradients whose column sum overflows (db is inf): the skipping
    # may stay on or go off, the bits are the full product's either way.
    dy3 = dy.copy()
    dy3[:4, 9] = 3e38
    _, dw, db, _ = _core.dense_backward(dy3, y, xs, w, 0, True, False, rows)
    _, dw_c, db_c, _ = _core.dense_backward(dy3, y, xs, np.ascontiguousarray(w[rows]), 0,
                                            True, False)
    assert np.isinf(db[9]) and np.array_equal(db, db_c)
    np.testing.assert_array_equal(dw[rows], dw_c)


def test_rows_edge_cases(isa):
    w = np.ones((6, 20), np.float32)
    b = np.arange(20, dtype=np.float32)
    # no column at all: y = act(b), dW = 0
    y = _core.dense_forward(np.zeros((30, 0), np.float32), w, b, 0, np.zeros(0, np.int64))
    np.testing.assert_array_equal(y, np.tile(b, (30, 1)))
    dy = np.ones((30, 20), np.float32)
    _, dw, db, _ = _core.dense_backward(dy, y, np.zeros((30, 0), np.float32), w, 0, True, False,
                                        np.zeros(0, np.int64))
    assert (dw == 0).all() and (db == 30).all()
    # every column selected equals the plain call
    x = np.random.default_rng(0).standard_normal((30, 6)).astype(np.float32)
    np.testing.assert_array_equal(_core.dense_forward(x, w, b, 1, np.arange(6)),
                                  _core.dense_forward(x, w, b, 1))


def test_rows_validation():
    x = np.ones((4, 3), np.float32)
    w = np.ones((6, 5), np.float32)
    for bad in (np.array([0, 0, 1]), np.array([2, 1, 3]), np.array([0, 1, 6]),
                np.array([-1, 0, 1])):
        with pytest.raises(ValueError, match="rows"):
            _core.dense_forward(x, w, None, 0, bad.astype(np.int64))
    with pytest.raises(ValueError, match="rows"):
        _core.dense_forward(x, w, None, 0, np.array([0, 1], np.int64))
    with pytest.raises(TypeError, match="rows"):
        _core.dense_forward(x, w, None, 0, np.array([0, 1, 2], np.int32))
    dy = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="need_dx"):
        _core.dense_backward(dy, dy, x, w, 0, True, True, np.array([0, 1, 2], np.int64))


# ----------------------------------------------------------------- the engine
def _model(K, N, act, seed=0, l2=None):
    m = models.Sequential([layers.Input((K,)),
                           layers.Dense(N, activation=act, kernel_regularizer=l2),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy")
    rng = np.random.default_rng(seed)
    m.set_weights([(rng.standard_normal(w.shape) * 0.1).astype(np.float32)
                   for w in m.get_weights()])
    return m


@pytest.mark.parametrize("act", ["relu", "tanh", "elu"])
@pytest.mark.parametrize("B", [4, 12, 64])
def test_train_step_on_sparse_batch_matches_float64(isa, act, B):
    """One SGD step on a batch with all-zero columns against numpy float64:
    the all-zero columns' weights move only by the regularizer."""
    K, N = 100, 40
    x, _, _, _, rows = sparse_inputs(B, K, N, seed=3, zero_cols=0.5)
    y = np.eye(3, dtype=np.float32)[np.arange(B) % 3]
    m = _model(K, N, act, l2=fd.regularizers.l2(0.01))
    w1, b1, w2, b2 = (w.astype(np.float64) for w in m.get_weights())
    m.train_on_batch(x, y)
    f = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
         "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))}[act]
    df = {"relu": lambda z: (z > 0) * 1.0, "tanh": lambda z: 1 - np.tanh(z) ** 2,
          "elu": lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))}[act]
    z = x @ w1 + b1
    h = f(z)
    o = h @ w2 + b2
    p = np.exp(o - o.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    do = (p - y) / B
    dz = (do @ w2.T) * df(z)
    gw1 = x.T.astype(np.float64) @ dz + 2 * 0.01 * w1
    new_w1 = m.get_weights()[0]
    np.testing.assert_allclose(new_w1, w1 - 0.1 * gw1, rtol=0, atol=2e-6)
    unused = np.setdiff1d(np.arange(K), rows)
    np.testing.assert_allclose(new_w1[unused], (w1 - 0.1 * 2 * 0.01 * w1)[unused], atol=1e-7)


# Nonzero columns (as ranges) around the selection's 64-column words: runs
# that cross a word's edge, start or end one, fill whole words, or hold the
# first or last column alone.
COLUMN_PATTERNS = {
    "cross_words": (130, [(0, 10), (30, 70), (100, 128)]),
    "word_edges": (129, [(63, 65), (127, 129)]),
    "whole_words": (192, [(64, 128)]),
    "first_and_last": (65, [(0, 1), (64, 65)]),
    "one_column": (64, [(37, 38)]),
    "alternate": (70, [(i, i + 1) for i in range(0, 70, 2)]),
}


@pytest.mark.parametrize("pattern", list(COLUMN_PATTERNS))
def test_train_step_selection_lists_any_column_pattern(threads, pattern):
    """One SGD step on a batch whose nonzero columns form `pattern`, against
    numpy float64: only those columns' rows of W move, by x^T . dz."""
    K, ranges = COLUMN_PATTERNS[pattern]
    B, N = 32, 24
    rng = np.random.default_rng(K)
    keep = np.zeros(K, bool)
    for a, b in ranges:
        keep[a:b] = True
    x = (rng.random((B, K)) + 0.5).astype(np.float32) * keep
    y = np.eye(3, dtype=np.float32)[np.arange(B) % 3]
    m = _model(K, N, "tanh", seed=2)
    w1, b1, w2, b2 = (w.astype(np.float64) for w in m.get_weights())
    m.train_on_batch(x, y)
    h = np.tanh(x @ w1 + b1)
    o = h @ w2 + b2
    p = np.exp(o - o.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = ((p - y) / B @ w2.T) * (1 - h ** 2)
    new_w1 = m.get_weights()[0]
    np.testing.assert_allclose(new_w1, w1 - 0.1 * (x.T.astype(np.float64) @ dz), rtol=0, atol=2e-6)
    np.testing.assert_array_equal(new_w1[~keep], w1[~keep].astype(np.float32))


def test_fit_on_sparse_inputs_matches_whole_row_path():
    """The default path (column selection) against the per-batch Python path
    of a custom loss, which multiplies whole rows: same training, to rounding."""
    rng = np.random.default_rng(5)
    x = rng.random((512, 200)).astype(np.float32)
    x[:, :120] = 0.0  # image borders
    x[rng.random(x.shape) < 0.6] = 0.0
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 512)]

    def cce(y_true, y_pred):
        return -ops.mean(ops.sum(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=-1))

    weights = []
    for loss in ("categorical_crossentropy", cce):
        m = _model(200, 64, "relu", seed=1)
        m.compile(optimizer=optimizers.RMSprop(1e-3), loss=loss)
        h = m.fit(x, y, epochs=3, batch_size=64, shuffle=False, verbose=0)
        weights.append((m.get_weights(), h.history["loss"]))
    (w_a, l_a), (w_b, l_b) = weights
    np.testing.assert_allclose(l_a, l_b, rtol=1e-4)
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, atol=2e-4)


def test_non_finite_weights_of_skipped_columns_still_give_nan():
    """0 * inf is NaN in the full product (and in Keras): a batch whose zero
    column meets a non-finite weight is not allowed to skip it."""
    x = np.zeros((16, 64), np.float32)
    x[:, :5] = 1.0
    y = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    for bad in (np.inf, np.nan):
        m = _model(64, 32, "relu")
        w = m.get_weights()
        w[0][40, 7] = bad  # column 40 of x is all zero
        m.set_weights(w)
        assert np.isnan(m.evaluate(x, y, verbose=0))
        assert np.isnan(m.predict(x, verbose=0)).any()
        assert np.isnan(m.train_on_batch(x, y))
    m = _model(64, 32, "relu")
    assert np.isfinite(m.train_on_batch(x, y))


@pytest.mark.parametrize("per_batch", [False, True], ids=["fit", "train_on_batch"])
def test_rows_a_fused_step_makes_non_finite_are_not_skipped_later(isa, threads, per_batch):
    """A fused RMSprop step that overflows rows of the first kernel to inf:
    every later batch whose zero columns meet those rows gives NaN (0 * inf),
    as the full product (and Keras) does, however the column selection learns
    which weights are finite (a tracked state that missed the step's report
    failed this 12 times out of 12)."""
    B = 16
    x = np.zeros((6 * B, 64), np.float32)
    x[:B, :8] = 1.0   # the first batch: columns 0-7, whose rows the step overflows
    x[B:, 8:16] = 1.0  # the later ones: columns 8-15 only
    y = np.eye(3, dtype=np.float32)[np.arange(6 * B) % 3]
    m = models.Sequential([layers.Input((64,)),
                           layers.Dense(32, activation="relu", use_bias=False),
                           layers.Dense(3, activation="softmax", trainable=False)])
    rng = np.random.default_rng(3)
    w = [(rng.standard_normal(w.shape) * 0.3).astype(np.float32) for w in m.get_weights()]
    w[0][8:16] = -1.0  # (the later batches' hidden units stay off: no gradient, W unchanged)
    m.set_weights(w)
    m.compile(optimizer=optimizers.RMSprop(learning_rate=2e38), loss="categorical_crossentropy")
    if per_batch:
        losses = [float(m.train_on_batch(x[i:i + B], y[i:i + B])) for i in range(0, 6 * B, B)]
    else:
        losses = m.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0).history["loss"]
        losses = [losses[0]]
    w0 = m.get_weights()[0]
    assert np.isinf(w0[:8]).any()  # (the first step overflowed some of those rows)
    if per_batch:
        assert np.isfinite(losses[0]) and np.isnan(losses[1:]).all()
    else:
        assert np.isnan(losses[0])


def test_evaluate_on_sparse_inputs_matches_predict():
    rng = np.random.default_rng(2)
    x = rng.random((300, 784)).astype(np.float32)
    x[:, rng.random(784) < 0.4] = 0.0
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 300)]
    m = _model(784, 128, "relu")
    loss = m.evaluate(x, y, batch_size=50, verbose=0)
    p = m.predict(x, batch_size=300, verbose=0).astype(np.float64)
    want = -np.mean(np.sum(y * np.log(np.clip(p, 1e-7, 1 - 1e-7)), axis=1))
    assert loss == pytest.approx(want, rel=1e-5)


def _sparse_model(seed=0):
    fd.utils.set_random_seed(seed)
    m = models.Sequential([layers.Dense(48, activation="relu", input_shape=(64,)),
                           layers.Dense(5, activation="softmax")])
    m.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return m


def test_one_sample_predict_reads_only_nonzero_inputs(isa):
    # a single row with mostly zero inputs takes the selected-rows GEMV; it
    # must agree with the batch's rows (same sums up to grouping) and with float64
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 64)).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0.0
    m = _sparse_model()
    m.fit(x, rng.integers(0, 5, 40), epochs=2, verbose=0)
    batch = m.predict(x, verbose=0)
    single = np.concatenate([m.predict(x[i:i + 1], verbose=0) for i in range(40)])
    np.testing.assert_allclose(single, batch, rtol=1e-5, atol=1e-7)
    w0, b0, w1, b1 = (w.astype(np.float64) for w in m.get_weights())
    h = np.maximum(x.astype(np.float64) @ w0 + b0, 0) @ w1 + b1
    want = np.exp(h - h.max(1, keepdims=True))
    np.testing.assert_allclose(single, want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 8, 16, 40])
@pytest.mark.parametrize("how", ["assign", "set_weights", "fit"])
def test_sparse_predict_sees_non_finite_weights_of_zero_inputs(how, n):
    # 0 * inf is NaN in the full product: after any change of the weights the
    # engine re-checks them, so a non-finite weight on a zero input still
    # gives NaN (inference caches the check between changes: one sample, the
    # small-batch and the GEMM paths)
    x = np.zeros((n, 64), np.float32)
    x[:, :5] = 1.0
    m = _sparse_model()
    assert np.isfinite(m.predict(x, verbose=0)).all()  # (caches "finite")
    kernel = m.layers[0].kernel
    w = kernel.numpy()
    w[40, 3] = np.inf  # input 40 is zero
    if how == "assign":
        kernel.assign(w)
    elif how == "set_weights":
        m.set_weights([w] + m.get_weights()[1:])
    else:  # training writes the weights too: a huge step makes them inf
        m.compile(optimizer=optimizers.SGD(learning_rate=1e38), loss="mse")
        xs = np.ones((8, 64), np.float32)
        # (one target class: equal targets on every class would cancel in
        # softmax's gradient, leaving a step of rounding noise)
        ys = np.zeros((8, 5), np.float32)
        ys[:, 0] = 1e30
        m.fit(xs, ys, epochs=1, verbose=0)
        assert not np.isfinite(m.layers[0].kernel.numpy()).all()
    y = m.predict(x, verbose=0)
    full = _core.dense_forward(x, np.asarray(m.layers[0].kernel.numpy()),
                               m.layers[0].bias.numpy(), 1)
    assert np.isnan(y).any() and np.isnan(full).any()
    if how != "fit":
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        assert np.isnan(m.evaluate(x, np.zeros(n, np.int32), verbose=0))


def test_variable_values_are_read_only_views():
    # writes must go through assign (Keras's values cannot be written either),
    # so the engine hears of every change
    m = _sparse_model()
    m.predict(np.zeros((1, 64), np.float32), verbose=0)
    with pytest.raises(ValueError, match="read-only"):
        m.layers[0].kernel.value[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        m.layers[0].kernel[0][0] = 1.0


def _softmax_ref(m, x):
    w0, b0, w1, b1 = (w.astype(np.float64) for w in m.get_weights())
    h = np.maximum(x.astype(np.float64) @ w0 + b0, 0) @ w1 + b1
    e = np.exp(h - h.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("n,batch_size", [(2100, 32), (2100, 5000), (300, 1), (9, 7),
                                          (1030, 1000), (129, 128)])
def test_predict_on_sparse_inputs_any_batch_size(isa, threads, n, batch_size):
    # predict runs its forward over chunks of 128..1024 rows whatever the
    # batch size, each reading only its nonzero input columns: every row must
    # still be its own (float64 reference; same values for any batch size up
    # to the grouping of float sums)
    rng = np.random.default_rng(n)
    x = rng.random((n, 64)).astype(np.float32)
    x[:, rng.random(64) < 0.4] = 0.0
    x[rng.random(x.shape) < 0.5] = 0.0
    m = _sparse_model()
    m.fit(x[:40], rng.integers(0, 5, min(n, 40)), epochs=2, verbose=0)
    p = m.predict(x, batch_size=batch_size, verbose=0)
    assert p.shape == (n, 5) and p.dtype == np.float32
    np.testing.assert_allclose(p, _softmax_ref(m, x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p, m.predict(x, batch_size=n, verbose=0), rtol=1e-5, atol=1e-7)
    loss = m.evaluate(x, np.argmax(p, 1), batch_size=batch_size, verbose=0)
    assert loss == pytest.approx(m.evaluate(x, np.argmax(p, 1), batch_size=n, verbose=0),
                                 rel=1e-5)


def test_predict_on_sparse_inputs_sees_non_finite_weights_of_zero_columns():
    # batched predict reads only the nonzero columns; an inf weight on a column
    # that is zero in every row must still give NaN, as 0 * inf does in the
    # full product (x itself is validated finite before it reaches the engine)
    rng = np.random.default_rng(5)
    x = rng.random((200, 64)).astype(np.float32)
    x[:, 30:] = 0.0
    m = _sparse_model()
    assert np.isfinite(m.predict(x, verbose=0)).all()
    w = m.get_weights()
    w[0][40, 3] = np.inf  # input column 40 is zero in every row
    m.set_weights(w)
    for bs in (1, 7, 32, 200):
        p = m.predict(x, batch_size=bs, verbose=0)
        assert np.isnan(p).all(), bs  # (NaN in one hidden unit reaches every output)


@pytest.mark.parametrize("n", [70, 1030])
def test_last_batch_too_small_to_select_reads_its_own_columns(n):
    """Regression: a last batch of fewer than 8 rows (not column-selected)
    after selected batches used to reuse the previous batch's selection,
    training on the wrong columns.  Minibatch SGD against float64 numpy, no
    shuffle; the last rows' nonzero columns are zero in every other row."""
    K, N, bs = 100, 24, 32
    rng = np.random.default_rng(8)
    x = rng.random((n, K)).astype(np.float32)
    last = n - n % bs  # the last, short batch
    assert 0 < n - last < 8
    x[:last, 50:] = 0.0
    x[last:, :50] = 0.0
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    m = _model(K, N, "relu", seed=2)
    w1, b1, w2, b2 = (w.astype(np.float64) for w in m.get_weights())
    m.fit(x, y, epochs=2, batch_size=bs, shuffle=False, verbose=0)
    for _ in range(2):
        for s in range(0, n, bs):
            xb, yb = x[s:s + bs].astype(np.float64), y[s:s + bs]
            z = xb @ w1 + b1
            h = np.maximum(z, 0)
            o = h @ w2 + b2
            p = np.exp(o - o.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            do = (p - yb) / len(xb)
            dz = (do @ w2.T) * (z > 0)
            w2, b2 = w2 - 0.1 * (h.T @ do), b2 - 0.1 * do.sum(0)
            w1, b1 = w1 - 0.1 * (xb.T @ dz), b1 - 0.1 * dz.sum(0)
    for got, want in zip(m.get_weights(), (w1, b1, w2, b2)):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # evaluate: the same loss whatever the batch size (a last chunk < 8 included)
    losses = [m.evaluate(x, y, batch_size=b, verbose=0) for b in (bs, 5, 1000, n)]
    np.testing.assert_allclose(losses, losses[-1], rtol=2e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_subnormal_inputs_count_as_zero_and_negative_zero_columns_drop(threads):
    # The engine computes with subnormals flushed to zero, as Keras's TF and
    # JAX backends do (FTZ + DAZ): a column whose only nonzeros are subnormal
    # adds nothing even times a huge weight, whether the batch's column scan
    # keeps it (it ORs bit patterns) or not; a column of -0.0 is a zero
    # column. The calling thread's mode is restored after (numpy keeps its
    # subnormals).
    prev = fd.get_num_threads()
    fd.set_num_threads(threads)
    try:
        rng = np.random.default_rng(3)
        x = rng.random((64, 48)).astype(np.float32)
        x[rng.random(x.shape) < 0.6] = 0.0
        x[:, 10:30] = 0.0
        x[:, 11] = np.float32(1.1e-38)  # subnormal, in every row
        x[::3, 12] = np.float32(2e-45)  # the smallest subnormal, in some rows
        x[:, 13] = np.float32(-0.0)
        assert np.all(x[:, 11] != 0) and np.all(x[::3, 12] != 0)
        m = models.Sequential([layers.Input((48,)), layers.Dense(4)])
        w = rng.standard_normal((48, 4)).astype(np.float32)
        w[11] = 3e38
        w[12] = 1e38
        b = rng.standard_normal(4).astype(np.float32)
        m.set_weights([w, b])
        flushed = np.where(np.abs(x) < np.finfo(np.float32).tiny, 0.0, x)
        ref = flushed.astype(np.float64) @ w.astype(np.float64) + b
        for bs in (64, 16, 1):
            p = m.predict(x if bs > 1 else x[:7], batch_size=bs, verbose=0)
            np.testing.assert_allclose(p, ref[:len(p)], rtol=1e-5, atol=2e-5)
        # (the subnormals would have moved every prediction by more than 1)
        assert np.abs(ref - (x.astype(np.float64) @ w.astype(np.float64) + b)).min() > 1
        assert np.float32(1e-38) * np.float32(0.01) > 0  # (this thread: IEEE again)
    finally:
        fd.set_num_threads(prev)


def test_deferred_velocity_decays_give_each_steps_bits(isa, threads):
    """Inside fit's native loop the RMSprop decays of the first kernel's
    all-zero rows are deferred and applied in one pass (when a batch selects
    the row again, or when the loop returns): the velocities and weights must
    hold the bits of one decay a step, whatever the chunking -- a whole epoch
    per native call, one batch per call (a batch hook), train_on_batch -- and
    the rows zero in every batch must hold the float32 decay applied step by
    step."""
    B, n_b, K = 32, 12, 64
    rng = np.random.default_rng(11)
    dense = rng.random((B * 4, K)).astype(np.float32) + 0.1  # (phase 1: every row steps)
    x = rng.random((B * n_b, K)).astype(np.float32)
    x[rng.random(x.shape) < 0.5] = 0.0
    x[:, :10] = 0.0  # zero in every batch
    for c in range(10, 30):  # zero in runs of batches, back now and then
        keep = (np.arange(n_b) % (2 + c % 5)) == 0
        x[~np.repeat(keep, B), c] = 0.0
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, B * n_b)]
    yd = np.eye(3, dtype=np.float32)[rng.integers(0, 3, B * 4)]

    class Hook(fd.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    def run(how):
        m = _model(K, 40, "tanh", seed=2)
        m.compile(optimizer=optimizers.RMSprop(1e-3), loss="categorical_crossentropy")
        m.fit(dense, yd, batch_size=B, epochs=1, shuffle=False, verbose=0)
        v0 = np.array(m.optimizer.variables[2])
        w0 = m.get_weights()[0].copy()
        for _ in range(2):
            if how == "epoch":
                m.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
            elif how == "hook":
                m.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0, callbacks=[Hook()])
            else:
                for i in range(0, len(x), B):
                    m.train_on_batch(x[i:i + B], y[i:i + B])
        return m, v0, w0

    results = {how: run(how) for how in ("epoch", "hook", "batch")}
    m, v0, w0 = results["epoch"]
    v = np.array(m.optimizer.variables[2])
    # rows 0-9: 2 * n_b decays of v, p untouched
    ref = v0[:10].copy()
    rho = np.float32(0.9)
    for _ in range(2 * n_b):
        ref = rho * ref + np.float32(1.0 - 0.9) * np.float32(0.0)
    assert (v0[:10] > 0).all()
    np.testing.assert_array_equal(v[:10], ref)
    np.testing.assert_array_equal(m.get_weights()[0][:10], w0[:10])
    for how in ("hook", "batch"):
        other = results[how][0]
        for i, (a, b) in enumerate(zip(m.optimizer.variables, other.optimizer.variables)):
            np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=f"{how} variable {i}")
        for a, b in zip(m.get_weights(), other.get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=how)


def test_training_flushes_subnormals_on_every_thread():
    """Velocities of rows whose inputs stay zero decay towards zero: in
    float32 they pass through the subnormal range, which Keras's backends
    flush to zero (FTZ + DAZ) and so does the engine, in the caller thread
    and in the pool's workers alike (so 1 and 2 threads give the same bits),
    while the caller's own mode comes back after fit."""
    B, K = 32, 64  # (steps big enough for the pool: see kSerialStepFlops)
    rng = np.random.default_rng(4)
    dense = rng.random((128, K)).astype(np.float32) + 0.1
    x = rng.random((900 * B, K)).astype(np.float32)
    x[:, :10] = 0.0
    yd = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 128)]
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 900 * B)]
    prev = fd.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            fd.set_num_threads(threads)
            # (the pool's workers start here, in this thread's IEEE mode)
            a = rng.random((256, 256)).astype(np.float32)
            _core.dense_forward(a, a, None, 0)
            m = _model(K, 256, "tanh", seed=2)
            m.compile(optimizer=optimizers.RMSprop(1e-3), loss="categorical_crossentropy")
            m.fit(dense, yd, batch_size=B, epochs=1, shuffle=False, verbose=0)
            assert np.array(m.optimizer.variables[2])[:10].min() > 1e-12
            # ~720 steps take 1e-5 to 1e-38; 900 go on into the subnormals
            # (in one epoch: long deferrals, whose decays the pool splits)
            m.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
            v = np.array(m.optimizer.variables[2])
            out.append([np.array(a) for a in m.optimizer.variables] + m.get_weights())
            tiny = np.finfo(np.float32).tiny
            assert not ((v != 0) & (np.abs(v) < tiny)).any()
            assert (v[:10] == 0).any()
            assert np.float32(1e-38) * np.float32(0.01) > 0  # (this thread: IEEE again)
    finally:
        fd.set_num_threads(prev)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_layer_call_and_apply_gradients_flush_subnormals_like_fit():
    """Every native computation runs with subnormals flushed (as Keras's
    backends do), not only fit/evaluate/predict: a Dense layer called on an
    array gives predict's bits for inputs with subnormals, and an optimizer's
    apply_gradients treats a subnormal gradient as zero. numpy, in this
    thread, keeps IEEE subnormals after each call."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 8)).astype(np.float32)
    x[:, 2] = np.float32(1e-39)  # subnormal
    x[::2, 5] = np.float32(-3e-42)
    w = rng.standard_normal((8, 3)).astype(np.float32)
    w[2] = 3e38  # a subnormal times this would be ~0.3, not 0
    w[5] = -2e38
    b = rng.standard_normal(3).astype(np.float32)
    layer = layers.Dense(3)
    m = models.Sequential([layers.Input((8,)), layer])
    m.set_weights([w, b])
    flushed = np.where(np.abs(x) < np.finfo(np.float32).tiny, np.float32(0), x)
    called = np.asarray(layer(x))
    np.testing.assert_array_equal(called, m.predict(x, verbose=0))
    np.testing.assert_array_equal(called, np.asarray(layer(flushed)))
    # (IEEE would have added ~0.3 per row through column 2)
    ref = flushed.astype(np.float64) @ w.astype(np.float64) + b
    np.testing.assert_allclose(called, ref, rtol=1e-5, atol=1e-4)
    assert np.float32(1e-38) * np.float32(0.01) > 0  # (this thread: IEEE again)

    # SGD: w - lr * g; a subnormal g read as zero leaves w's bits unchanged,
    # where IEEE would move a subnormal w.
    var = fd.Variable(np.full(4, 1e-39, np.float32))
    opt = fd.optimizers.SGD(learning_rate=1.0)
    opt.apply_gradients([(np.full(4, -1e-39, np.float32), var)])
    got = np.asarray(var.numpy() if hasattr(var, "numpy") else var.value)
    # DAZ: 0 - 1 * 0 = 0 (FTZ too); IEEE: 1e-39 + 1e-39 = 2e-39
    assert np.all(got == 0), got
    assert np.float32(1e-38) * np.float32(0.01) > 0
