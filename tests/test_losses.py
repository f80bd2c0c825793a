"""Tests for the native loss (fastdense._core.loss) and fastdense.losses.

Golden values marked "Keras losses_test.py" are copied from Keras 3.15.1,
keras/src/losses/losses_test.py (keras-team/keras); Keras's own tests compare
them with ``assertAlmostEqual(..., decimal=3)`` (|diff| < 1.5e-3), and so do we
unless the value has more digits.  Values marked "real Keras" were produced by
running Keras 3.15.1 (JAX backend) here; the script is in tests/goldens/README.
Nothing here imports keras.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastdense import _core
from fastdense import losses as L

CCE, SCCE, BCE, MSE = 0, 1, 2, 3
LINEAR, RELU, SIGMOID, TANH, SOFTMAX = 0, 1, 2, 3, 4
EPS = 1e-7
F32 = np.float32


def core_loss(y_pred, y_true=None, labels=None, kind=CCE, from_logits=False, out_act=LINEAR):
    y_pred = np.ascontiguousarray(y_pred, F32)
    if y_true is not None:
        y_true = np.ascontiguousarray(y_true, F32)
    if labels is not None:
        labels = np.ascontiguousarray(labels, np.int32)
    return _core.loss(y_pred, y_true, labels, kind, from_logits, out_act)


def keras_close(got, want):
    """Keras's assertAlmostEqual(decimal=3)."""
    np.testing.assert_almost_equal(got, want, decimal=3)


# ----------------------------------------------------- float64 references
def softmax64(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid64(z):
    return 1.0 / (1.0 + np.exp(-z))


def per_sample64(kind, y, t, from_logits):
    """Keras 3 formulas in float64; t is dense (one-hot for sparse)."""
    if kind in (CCE, SCCE):
        if from_logits:
            zs = y - y.max(axis=1, keepdims=True)
            logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
            return -(t * logp).sum(axis=1)
        q = np.clip(y / y.sum(axis=1, keepdims=True), EPS, 1 - EPS)
        return -(t * np.log(q)).sum(axis=1)
    if kind == BCE:
        if from_logits:
            v = np.maximum(y, 0) - y * t + np.log1p(np.exp(-np.abs(y)))
        else:
            p = np.clip(y, EPS, 1 - EPS)
            v = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        return v.mean(axis=1)
    return ((y - t) ** 2).mean(axis=1)


def make_case(kind, from_logits, out_act, B, U, seed, soft=False):
    """Returns (z or None, y_pred float32, y_true float32 dense, labels or None)."""
    rng = np.random.default_rng([kind, int(from_logits), out_act, B, U, seed])
    z = rng.standard_normal((B, U)) * 2.0
    if from_logits:
        y = z
    elif out_act == SOFTMAX:
        y = softmax64(z)
    elif out_act == SIGMOID:
        y = sigmoid64(z)
    elif kind in (CCE, SCCE):  # unnormalised positive "probabilities"
        y = rng.uniform(0.05, 1.0, (B, U))
    elif kind == BCE:
        y = rng.uniform(0.02, 0.98, (B, U))
    else:
        y = z
    labels = rng.integers(0, U, B).astype(np.int32)
    if kind == SCCE:
        t = np.eye(U)[labels]
    elif kind == CCE:
        if soft:
            t = rng.uniform(0, 1, (B, U))
            t /= t.sum(axis=1, keepdims=True)
        else:
            t = np.eye(U)[labels]
    elif kind == BCE:
        t = rng.uniform(0, 1, (B, U)) if soft else rng.integers(0, 2, (B, U)).astype(float)
    else:
        t = rng.standard_normal((B, U))
    return z, y.astype(F32), t.astype(F32), (labels if kind == SCCE else None)


NUMPY_FN = {CCE: L.categorical_crossentropy, SCCE: L.sparse_categorical_crossentropy,
            BCE: L.binary_crossentropy, MSE: L.mean_squared_error}

# (kind, from_logits, out_act): every branch of losses.cpp.
CASES = [
    (CCE, False, LINEAR), (CCE, False, SOFTMAX), (CCE, True, LINEAR), (CCE, True, SOFTMAX),
    (SCCE, False, LINEAR), (SCCE, False, SOFTMAX), (SCCE, True, LINEAR),
    (BCE, False, LINEAR), (BCE, False, SIGMOID), (BCE, True, LINEAR), (BCE, True, SIGMOID),
    (MSE, False, LINEAR), (MSE, False, SIGMOID), (MSE, False, TANH),
]
CASE_IDS = [f"{['cce', 'scce', 'bce', 'mse'][k]}-{'logits' if fl else 'probs'}-act{a}"
            for k, fl, a in CASES]
SIZES = [(1, 1), (1, 3), (7, 2), (16, 10), (64, 3)]


# ------------------------------------------------------------ fused flag
@pytest.mark.parametrize("kind,from_logits,out_act", CASES, ids=CASE_IDS)
def test_fused_flag(kind, from_logits, out_act):
    _, y, t, lab = make_case(kind, from_logits, out_act, 3, 4, 0)
    fused = core_loss(y, None if kind == SCCE else t, lab, kind, from_logits, out_act)[3]
    want = (not from_logits) and ((kind in (CCE, SCCE) and out_act == SOFTMAX)
                                  or (kind == BCE and out_act == SIGMOID))
    assert fused is want


# ------------------------------------------------- values vs numpy module
@pytest.mark.parametrize("B,U", SIZES)
@pytest.mark.parametrize("kind,from_logits,out_act", CASES, ids=CASE_IDS)
def test_values_match_numpy_losses(kind, from_logits, out_act, B, U):
    _, y, t, lab = make_case(kind, from_logits, out_act, B, U, 1)
    total, per, grad, _ = core_loss(y, None if kind == SCCE else t, lab, kind, from_logits,
                                    out_act)
    assert per.shape == (B,) and per.dtype == F32
    assert grad.shape == (B, U) and grad.dtype == F32
    if kind == SCCE:
        want = NUMPY_FN[kind](lab, y, from_logits=from_logits)
    elif kind == MSE:
        want = NUMPY_FN[kind](t, y)
    else:
        want = NUMPY_FN[kind](t, y, from_logits=from_logits)
    np.testing.assert_allclose(per, want, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(per, per_sample64(kind, y.astype(float), t.astype(float),
                                                 from_logits), rtol=2e-6, atol=2e-6)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, per.astype(np.float64).sum(), rtol=1e-12)


@pytest.mark.parametrize("kind,from_logits,out_act",
                         [c for c in CASES if c[0] in (CCE, BCE)],
                         ids=[i for c, i in zip(CASES, CASE_IDS) if c[0] in (CCE, BCE)])
def test_values_soft_targets(kind, from_logits, out_act):
    _, y, t, _ = make_case(kind, from_logits, out_act, 9, 5, 2, soft=True)
    per = core_loss(y, t, None, kind, from_logits, out_act)[1]
    np.testing.assert_allclose(per, NUMPY_FN[kind](t, y, from_logits=from_logits),
                               rtol=2e-6, atol=2e-6)


# ---------------------------------------------- finite-difference gradients
def fd_grad(f, p, h=1e-6):
    g = np.zeros_like(p)
    flat, gf = p.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * h)
    return g


GRAD_CASES = [(c, soft) for c in CASES for soft in (False, True)
              if not soft or c[0] in (CCE, BCE)]


@pytest.mark.parametrize("B,U", [(1, 1), (1, 4), (5, 3), (8, 10)])
@pytest.mark.parametrize("case,soft", GRAD_CASES,
                         ids=[CASE_IDS[CASES.index(c)] + ("-soft" if s else "")
                              for c, s in GRAD_CASES])
def test_gradient_matches_finite_differences(case, soft, B, U):
    """grad = d(mean_b loss_b)/dy, or d/dz through softmax/sigmoid when fused;
    checked against float64 central differences of the Keras formula."""
    kind, from_logits, out_act = case
    z, y, t, lab = make_case(kind, from_logits, out_act, B, U, 3, soft=soft)
    _, _, grad, fused = core_loss(y, None if kind == SCCE else t, lab, kind, from_logits,
                                  out_act)
    t64 = t.astype(np.float64)
    if fused:
        act = softmax64 if out_act == SOFTMAX else sigmoid64
        p = z.copy()  # differentiate w.r.t. the pre-activation z
        f = lambda: per_sample64(kind, act(p), t64, False).mean()  # noqa: E731
    else:
        p = y.astype(np.float64)
        f = lambda: per_sample64(kind, p, t64, from_logits).mean()  # noqa: E731
    want = fd_grad(f, p)
    scale = np.abs(want).max() + 1e-3
    np.testing.assert_allclose(grad, want, rtol=2e-4, atol=2e-5 * scale)


def test_gradient_is_zero_where_probabilities_are_clipped():
    # BCE: p = 0 and p = 1 lie outside [eps, 1 - eps]; jnp.clip passes no
    # gradient there, so neither does the native loss.
    y = np.array([[0.0, 1.0, 0.3]], F32)
    t = np.array([[1.0, 0.0, 1.0]], F32)
    g = core_loss(y, t, None, BCE)[2]
    assert g[0, 0] == 0 and g[0, 1] == 0
    np.testing.assert_allclose(g[0, 2], -1 / 0.3 / 3, rtol=1e-6)
    # fused (sigmoid) gradient p - y is also masked outside the clip range
    g = core_loss(y, t, None, BCE, False, SIGMOID)[2]
    np.testing.assert_allclose(g, [[0.0, 0.0, (0.3 - 1.0) / 3]], rtol=1e-6)
    # CCE: the target's probability is 0 -> clipped, only the normalisation term
    # of the (unclipped) classes remains: here none, so the gradient is zero.
    y = np.array([[0.0, 1.0]], F32)
    t = np.array([[1.0, 0.0]], F32)
    np.testing.assert_array_equal(core_loss(y, t, None, CCE)[2], [[0.0, 0.0]])


def test_fused_gradients_match_keras_jax_autodiff():
    """real Keras (tests/goldens/README, grads.py): jax.grad of
    mean(keras.losses.categorical_crossentropy(t, jax.nn.softmax(z))) and of
    mean(keras.losses.binary_crossentropy(t, jax.nn.sigmoid(z))), float32.
    Saturated rows (p < eps or sigmoid(18) == 1 in float32) get zero gradient."""
    z = np.array([[-20.0, 20.0, 0.0], [1.0, -2.0, 0.5]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], F32)
    total, _, grad, fused = core_loss(softmax64(z), t, None, CCE, False, SOFTMAX)
    assert fused
    np.testing.assert_allclose(total / 2, 8.561346054077148, rtol=1e-6)
    np.testing.assert_allclose(
        grad, [[0.0, 0.0, 0.0], [0.30187442898750305, 0.015029442496597767,
                                 -0.31690385937690735]], rtol=1e-6, atol=1e-9)
    z = np.array([[-20.0, 3.0], [0.5, 18.0]])
    t = np.array([[1.0, 0.0], [1.0, 0.0]], F32)
    total, _, grad, fused = core_loss(sigmoid64(z), t, None, BCE, False, SIGMOID)
    assert fused
    np.testing.assert_allclose(total / 2, 8.89578628540039, rtol=1e-6)
    np.testing.assert_allclose(grad, [[0.0, 0.23814354836940765],
                                      [-0.09438516199588776, 0.0]], rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------ clip extremes
def test_clipping_gives_finite_keras_values_at_extremes():
    # -log(eps) with eps = 1e-7 (float32): Keras clips to [eps, 1 - eps].
    log_eps = -np.log(F32(1e-7))                  # 16.118095
    log_one_minus = -np.log(1 - F32(1 - F32(1e-7)))  # 15.942385 (1 - eps rounds in f32)
    # CCE: the true class has probability 0
    per = core_loss([[0.0, 1.0], [1.0, 0.0]], [[1, 0], [0, 1]], None, CCE)[1]
    np.testing.assert_allclose(per, [log_eps, log_eps], rtol=1e-6)
    per = core_loss([[0.0, 1.0]], None, [0], SCCE)[1]
    np.testing.assert_allclose(per, [log_eps], rtol=1e-6)
    # BCE: p = 0 with y = 1, p = 1 with y = 0
    per = core_loss([[0.0], [1.0]], [[1.0], [0.0]], None, BCE)[1]
    np.testing.assert_allclose(per, [log_eps, log_one_minus], rtol=1e-6)
    assert abs(log_eps - 16.118095) < 1e-5 and abs(log_one_minus - 15.942385) < 1e-5
    # Perfect predictions give -log(1 - eps) ~ 1.19e-7, not 0 (as Keras).
    per = core_loss(np.eye(3), np.eye(3), None, CCE)[1]
    assert (per > 0).all() and (per < 2e-7).all()
    # numpy module agrees
    np.testing.assert_allclose(L.binary_crossentropy([[1.0], [0.0]], [[0.0], [1.0]]),
                               [log_eps, log_one_minus], rtol=1e-6)
    np.testing.assert_allclose(L.categorical_crossentropy([[1.0, 0.0]], [[0.0, 1.0]]),
                               [log_eps], rtol=1e-6)


def test_from_logits_is_stable_for_huge_logits():
    z = np.array([[100.0, -100.0, -100.0], [-1e4, 1e4, 0.0]], F32)
    total, per, grad, _ = core_loss(z, [[0, 1, 0], [0, 1, 0]], None, CCE, True)
    np.testing.assert_allclose(per, [200.0, 0.0], atol=1e-4)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)
    per = core_loss(np.array([[100.0, -100.0]], F32), [[0.0, 1.0]], None, BCE, True)[1]
    np.testing.assert_allclose(per, [100.0], rtol=1e-6)


# ------------------------------------------------ Keras goldens (native)
# Keras losses_test.py, CategoricalCrossentropyTest / SparseCategoricalCrossentropyTest
CCE_TRUE = np.eye(3, dtype=F32)
CCE_LABELS = np.array([0, 1, 2], np.int32)
CCE_PROBS = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]], F32)
CCE_LOGITS = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]], F32)
# Keras losses_test.py, BinaryCrossentropyTest
BCE_TRUE = np.eye(3, dtype=F32)
BCE_PROBS = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]], F32)
BCE_TRUE2 = np.array([[1, 0], [1, 0]], F32)
BCE_PROBS2 = np.array([[1, 1], [1, 0]], F32)
BCE_TRUE3 = np.array([[1, 0, 1], [0, 1, 1]], F32)
BCE_LOGITS3 = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]], F32)
# Keras losses_test.py, MeanSquaredErrorTest
MSE_TRUE = np.array([[1, 9, 2], [-5, -2, 6]], F32)
MSE_PRED = np.array([[4, 8, 12], [8, 1, 3]], F32)


def test_core_keras_goldens_cce():
    total = core_loss(CCE_PROBS, CCE_TRUE, None, CCE)[0]
    keras_close(total / 3, 0.3239)                       # test_unweighted
    total, per, _, _ = core_loss(CCE_LOGITS, CCE_TRUE, None, CCE, True)
    keras_close(total / 3, 0.0573)                       # test_unweighted (logits)
    np.testing.assert_allclose(per, (0.001822, 0.000459, 0.169846), rtol=1e-3, atol=1e-6)
    keras_close(core_loss(np.eye(3), CCE_TRUE, None, CCE)[0] / 3, 0.0)  # all correct
    keras_close(core_loss(10 * np.eye(3), CCE_TRUE, None, CCE, True)[0] / 3, 0.0)


def test_core_keras_goldens_sparse_cce():
    keras_close(core_loss(CCE_PROBS, None, CCE_LABELS, SCCE)[0] / 3, 0.3239)
    total, per, _, _ = core_loss(CCE_LOGITS, None, CCE_LABELS, SCCE, True)
    keras_close(total / 3, 0.0573)
    np.testing.assert_allclose(per, (0.001822, 0.000459, 0.169846), rtol=1e-3, atol=1e-6)
    keras_close(core_loss(np.eye(3), None, CCE_LABELS, SCCE)[0] / 3, 0.0)


def test_core_keras_goldens_bce():
    np.testing.assert_allclose(core_loss(BCE_PROBS, BCE_TRUE, None, BCE)[0] / 3,
                               0.20046903, rtol=1e-5)    # test_unweighted (assertAllClose)
    keras_close(core_loss(BCE_PROBS2, BCE_TRUE2, None, BCE)[0] / 2, 3.98559)
    total, per, _, _ = core_loss(BCE_LOGITS3, BCE_TRUE3, None, BCE, True)
    keras_close(total / 2, 3.3333)
    np.testing.assert_allclose(per, [0.0, 6.666], atol=1e-3)  # test_no_reduction
    keras_close(core_loss(BCE_TRUE, BCE_TRUE, None, BCE)[0] / 3, 0.0)
    keras_close(core_loss(20 * BCE_TRUE - 10, BCE_TRUE, None, BCE, True)[0] / 3, 0.0)


def test_core_keras_goldens_mse():
    total, per, grad, _ = core_loss(MSE_PRED, MSE_TRUE, None, MSE)
    keras_close(total / 2, 49.5)
    np.testing.assert_allclose(per, [110 / 3, 187 / 3], rtol=1e-6)
    np.testing.assert_allclose(grad, 2 * (MSE_PRED - MSE_TRUE) / 6, rtol=1e-6)
    assert core_loss(MSE_TRUE, MSE_TRUE, None, MSE)[0] == 0.0


# ------------------------------------------------------------ validation
def test_core_loss_argument_validation():
    y = np.full((2, 3), 0.3, F32)
    with pytest.raises(ValueError, match="labels"):
        _core.loss(y, None, np.array([0, 3], np.int32), SCCE, False, 0)
    with pytest.raises(ValueError, match="labels"):
        _core.loss(y, None, np.array([-1, 0], np.int32), SCCE, False, 0)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        _core.loss(y, y, None, SCCE, False, 0)
    with pytest.raises(ValueError, match="dense"):
        _core.loss(y, None, np.array([0, 1], np.int32), CCE, False, 0)
    with pytest.raises(TypeError, match="dtype"):
        _core.loss(y, None, np.array([0, 1], np.int64), SCCE, False, 0)
    with pytest.raises(TypeError, match="dtype"):
        _core.loss(y.astype(np.float64), y, None, MSE, False, 0)
    with pytest.raises(ValueError, match="shape"):
        _core.loss(y, np.zeros((2, 4), F32), None, MSE, False, 0)
    with pytest.raises(ValueError, match="loss code"):
        _core.loss(y, y, None, 4, False, 0)
    with pytest.raises(ValueError, match="activation"):
        _core.loss(y, y, None, MSE, False, 99)


# --------------------------------------------- Loss classes (Keras goldens)
# Keras losses_test.py: (class kwargs, y_true, y_pred, sample_weight, expected)
CLASS_GOLDENS = {
    "mse_unweighted": (L.MeanSquaredError, {}, MSE_TRUE, MSE_PRED, None, 49.5),
    "mse_scalar_weighted": (L.MeanSquaredError, {}, MSE_TRUE, MSE_PRED, 2.3, 113.85),
    "mse_zero_weighted": (L.MeanSquaredError, {}, MSE_TRUE, MSE_PRED, 0, 0.0),
    "mse_timestep_weighted": (
        L.MeanSquaredError, {}, np.asarray([1, 9, 2, -5, -2, 6]).reshape(2, 3, 1),
        np.asarray([4, 8, 12, 8, 1, 3]).reshape(2, 3, 1),
        np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3)), 97.833336),
    "mse_no_reduction": (L.MeanSquaredError, {"reduction": None}, MSE_TRUE, MSE_PRED, 2.3,
                         [84.3333, 143.3666]),
    "mse_sum_reduction": (L.MeanSquaredError, {"reduction": "sum"}, MSE_TRUE, MSE_PRED, 2.3,
                          227.69998),
    "bce_all_correct": (L.BinaryCrossentropy, {}, BCE_TRUE, BCE_TRUE, None, 0.0),
    "bce_all_correct_logits": (L.BinaryCrossentropy, {"from_logits": True}, BCE_TRUE,
                               20 * BCE_TRUE - 10, None, 0.0),
    "bce_unweighted": (L.BinaryCrossentropy, {}, BCE_TRUE, BCE_PROBS, None, 0.20046903),
    "bce_unweighted_2": (L.BinaryCrossentropy, {}, BCE_TRUE2, BCE_PROBS2, None, 3.98559),
    "bce_unweighted_logits": (L.BinaryCrossentropy, {"from_logits": True}, BCE_TRUE3,
                              BCE_LOGITS3, None, 3.3333),
    "bce_scalar_weighted": (L.BinaryCrossentropy, {}, BCE_TRUE2, BCE_PROBS2, 2.3, 9.1668),
    "bce_scalar_weighted_logits": (L.BinaryCrossentropy, {"from_logits": True}, BCE_TRUE3,
                                   BCE_LOGITS3, 2.3, 7.666),
    "bce_sample_weighted_logits": (L.BinaryCrossentropy, {"from_logits": True}, BCE_TRUE3,
                                   BCE_LOGITS3, np.array([4, 3]), 10.0),
    "bce_no_reduction": (L.BinaryCrossentropy, {"from_logits": True, "reduction": None},
                         BCE_TRUE3, BCE_LOGITS3, None, [0.0, 6.666]),
    "bce_label_smoothing": (L.BinaryCrossentropy, {"from_logits": True, "label_smoothing": 0.1},
                            np.array([[1, 0, 1]]), np.array([[10.0, -10.0, -10.0]]), None,
                            (10.0 + 5.0 * 0.1) / 3.0),
    "cce_all_correct": (L.CategoricalCrossentropy, {}, CCE_TRUE, np.eye(3), None, 0.0),
    "cce_unweighted": (L.CategoricalCrossentropy, {}, CCE_TRUE, CCE_PROBS, None, 0.3239),
    "cce_unweighted_logits": (L.CategoricalCrossentropy, {"from_logits": True}, CCE_TRUE,
                              CCE_LOGITS, None, 0.0573),
    "cce_scalar_weighted": (L.CategoricalCrossentropy, {}, CCE_TRUE, CCE_PROBS, 2.3, 0.7449),
    "cce_scalar_weighted_logits": (L.CategoricalCrossentropy, {"from_logits": True}, CCE_TRUE,
                                   CCE_LOGITS, 2.3, 0.1317),
    "cce_no_reduction": (L.CategoricalCrossentropy, {"from_logits": True, "reduction": None},
                         CCE_TRUE, CCE_LOGITS, None, (0.001822, 0.000459, 0.169846)),
    "cce_label_smoothing": (L.CategoricalCrossentropy,
                            {"from_logits": True, "label_smoothing": 0.1},
                            np.array([[1, 0, 0]]), np.array([[100.0, -100.0, -100.0]]), None,
                            400.0 * 0.1 / 3.0),
    "scce_all_correct": (L.SparseCategoricalCrossentropy, {}, np.array([[0], [1], [2]]),
                         np.eye(3), None, 0.0),
    "scce_unweighted": (L.SparseCategoricalCrossentropy, {}, np.array([0, 1, 2]), CCE_PROBS,
                        None, 0.3239),
    "scce_unweighted_logits": (L.SparseCategoricalCrossentropy, {"from_logits": True},
                               np.array([0, 1, 2]), CCE_LOGITS, None, 0.0573),
    "scce_scalar_weighted": (L.SparseCategoricalCrossentropy, {}, np.array([[0], [1], [2]]),
                             CCE_PROBS, 2.3, 0.7449),
    "scce_scalar_weighted_logits": (L.SparseCategoricalCrossentropy, {"from_logits": True},
                                    np.array([[0], [1], [2]]), CCE_LOGITS, 2.3, 0.1317),
    "scce_no_reduction": (L.SparseCategoricalCrossentropy,
                          {"from_logits": True, "reduction": None}, np.array([[0], [1], [2]]),
                          CCE_LOGITS, None, (0.001822, 0.000459, 0.169846)),
}


@pytest.mark.parametrize("case", list(CLASS_GOLDENS))
def test_loss_classes_keras_goldens(case):
    cls, kw, yt, yp, sw, want = CLASS_GOLDENS[case]
    got = cls(**kw)(yt, yp, sample_weight=sw)
    if np.ndim(want):
        np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-4)
    else:
        assert np.ndim(got) == 0
        keras_close(got, want)


# Keras losses_test.py test_sample_weighted cases: sample_weight of shape (B, 1)
# against per-sample losses of shape (B,).  Keras's squeeze_or_expand_to_same_rank
# expands the losses to (B, 1); fastdense.losses.reduce_values instead broadcasts
# (B,) * (B, 1) to (B, B), counting every sample under every weight.
COLUMN_WEIGHT_GOLDENS = {
    "mse_sample_weighted": (L.MeanSquaredError, {}, MSE_TRUE, MSE_PRED,
                            np.array([[1.2], [3.4]]), 767.8 / 6),
    "mse_mean_with_sample_weight": (
        L.MeanSquaredError, {"reduction": "mean_with_sample_weight"}, MSE_TRUE, MSE_PRED,
        np.array([[1.2], [3.4]]), (110 / 3 * 1.2 + 187 / 3 * 3.4) / (1.2 + 3.4)),
    "bce_sample_weighted": (L.BinaryCrossentropy, {}, BCE_TRUE2, BCE_PROBS2,
                            np.array([1.2, 3.4]).reshape((2, 1)), 4.7827),
    "cce_sample_weighted": (L.CategoricalCrossentropy, {}, CCE_TRUE, CCE_PROBS,
                            np.array([[1.2], [3.4], [5.6]]), 1.0696),
    "cce_sample_weighted_logits": (L.CategoricalCrossentropy, {"from_logits": True}, CCE_TRUE,
                                   CCE_LOGITS, np.array([[1.2], [3.4], [5.6]]), 0.31829),
    "scce_sample_weighted": (L.SparseCategoricalCrossentropy, {}, np.array([[0], [1], [2]]),
                             CCE_PROBS, np.array([[1.2], [3.4], [5.6]]), 1.0696),
    "scce_sample_weighted_logits": (L.SparseCategoricalCrossentropy, {"from_logits": True},
                                    np.array([[0], [1], [2]]), CCE_LOGITS,
                                    np.array([[1.2], [3.4], [5.6]]), 0.31829),
}


@pytest.mark.parametrize("case", list(COLUMN_WEIGHT_GOLDENS))
def test_loss_classes_column_sample_weight_keras_goldens(case):
    cls, kw, yt, yp, sw, want = COLUMN_WEIGHT_GOLDENS[case]
    keras_close(cls(**kw)(yt, yp, sample_weight=sw), want)


@pytest.mark.parametrize("case", list(COLUMN_WEIGHT_GOLDENS))
def test_loss_classes_rank1_sample_weight_keras_goldens(case):
    # The same Keras goldens with the weights given as shape (B,).
    cls, kw, yt, yp, sw, want = COLUMN_WEIGHT_GOLDENS[case]
    keras_close(cls(**kw)(yt, yp, sample_weight=np.ravel(sw)), want)


# real Keras: keras.losses.MeanSquaredError(reduction=red)(MSE_TRUE, MSE_PRED,
# sample_weight=sw) for each reduction and weight shape (tests/goldens/README).
REDUCTION_GOLDENS = {
    (None, "none"): [36.66666793823242, 62.333335876464844],
    (None, "scalar"): [84.33333587646484, 143.36666870117188],
    (None, "vec"): [44.000003814697266, 211.933349609375],
    ("none", "vec"): [44.000003814697266, 211.933349609375],
    ("sum", "none"): 99.0,
    ("sum", "scalar"): 227.70001220703125,
    ("sum", "vec"): 255.933349609375,
    ("sum_over_batch_size", "none"): 49.5,
    ("sum_over_batch_size", "scalar"): 113.85000610351562,
    ("sum_over_batch_size", "vec"): 127.9666748046875,
    ("mean", "none"): 49.5,
    ("mean", "scalar"): 113.85000610351562,
    ("mean", "vec"): 127.9666748046875,
    ("mean_with_sample_weight", "none"): 49.5,
    ("mean_with_sample_weight", "vec"): 55.63768005371094,
}
WEIGHTS = {"none": None, "scalar": 2.3, "vec": np.array([1.2, 3.4], F32),
           "col": np.array([[1.2], [3.4]], F32)}


@pytest.mark.parametrize("reduction,weights", list(REDUCTION_GOLDENS),
                         ids=[f"{r}-{w}" for r, w in REDUCTION_GOLDENS])
def test_reductions_with_sample_weight_match_keras(reduction, weights):
    got = L.MeanSquaredError(reduction=reduction)(MSE_TRUE, MSE_PRED,
                                                  sample_weight=WEIGHTS[weights])
    want = REDUCTION_GOLDENS[(reduction, weights)]
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("reduction,want", [
    (None, [[44.000003814697266], [211.933349609375]]),   # real Keras
    ("sum", 255.933349609375),
    ("sum_over_batch_size", 127.9666748046875),
    ("mean_with_sample_weight", 55.63768005371094),
])
def test_reductions_with_column_sample_weight_match_keras(reduction, want):
    got = L.MeanSquaredError(reduction=reduction)(MSE_TRUE, MSE_PRED,
                                                  sample_weight=WEIGHTS["col"])
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_mean_with_sample_weight_scalar_weight_matches_keras():
    got = L.MeanSquaredError(reduction="mean_with_sample_weight")(MSE_TRUE, MSE_PRED,
                                                                  sample_weight=2.3)
    np.testing.assert_allclose(got, 99.00000762939453, rtol=1e-6)  # real Keras


def test_reduction_validation_and_defaults():
    assert L.MeanSquaredError().reduction == "sum_over_batch_size"
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="avg")


def test_base_function_rank_matching():
    # Keras losses_test.py MeanSquaredErrorTest.test_base_function_reduction
    out = L.mean_squared_error(np.array([4, 8, 12]), np.array([[3], [0], [1]]))
    assert np.shape(out) == (3,)
    np.testing.assert_allclose(out, [1.0, 64.0, 121.0])


def test_loss_function_wrapper_and_native_codes():
    w = L.LossFunctionWrapper(L.mean_squared_error, reduction="sum")
    np.testing.assert_allclose(w(MSE_TRUE, MSE_PRED), 99.0)
    assert L.CategoricalCrossentropy()._native() == (CCE, False)
    assert L.SparseCategoricalCrossentropy(from_logits=True)._native() == (SCCE, True)
    assert L.BinaryCrossentropy()._native() == (BCE, False)
    assert L.MeanSquaredError()._native() == (MSE, False)
    # not expressible natively: label smoothing, other reductions
    assert L.CategoricalCrossentropy(label_smoothing=0.1)._native() is None
    assert L.MeanSquaredError(reduction="sum")._native() is None


def test_get_by_name_and_errors():
    assert L.get("mse") is L.mean_squared_error
    assert L.get("categorical_crossentropy") is L.categorical_crossentropy
    assert isinstance(L.get("BinaryCrossentropy"), L.BinaryCrossentropy)
    obj = L.MeanSquaredError()
    assert L.get(obj) is obj
    with pytest.raises(ValueError, match="not_a_loss"):
        L.get("not_a_loss")
    with pytest.raises(NotImplementedError):
        L.sparse_categorical_crossentropy([0], [[0.5, 0.5]], ignore_class=-1)
