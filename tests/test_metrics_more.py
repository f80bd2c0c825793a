"""Tests for fastdense.metrics beyond the accuracy family: top-k accuracy,
regression / hinge / probabilistic metrics, Precision, Recall, the confusion
counts and AUC.

Goldens marked "Keras <file>" are copied from Keras 3.15.1,
keras/src/metrics/<file> (keras-team/keras), with Keras's tolerances there
(mostly ``assertAllClose(..., atol=1e-3)`` or ``assertAlmostEqual`` to 7
places).  Goldens marked "real Keras" were produced here by calling Keras
3.15.1 (JAX backend) on the same inputs, e.g. ``keras.metrics.AUC(curve="PR")(T,
P, sample_weight=W)`` with T, P, W built as below, printed with numpy's
shortest float32 repr.  Nothing here imports keras.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from fastdense import metrics as M

F32 = np.float32


def close(got, want, atol=1e-3):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=atol)


def close32(got, want):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=3e-6, atol=1e-6)


# ------------------------------------------- Keras accuracy_metrics_test.py
TK_TRUE = np.array([[0, 0, 1], [0, 1, 0]])
TK_PRED = np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]], dtype="float32")


def test_top_k_keras_goldens():
    # Keras accuracy_metrics_test.py TopKCategoricalAccuracyTest
    m = M.TopKCategoricalAccuracy(k=1, name="top_k_categorical_accuracy", dtype="float32")
    m.update_state(TK_TRUE, TK_PRED)
    close(m.result(), 0.5)
    m = M.TopKCategoricalAccuracy(k=1)
    m.update_state(TK_TRUE, TK_PRED, sample_weight=np.array([0.7, 0.3]))
    close(m.result(), 0.3)
    cfg = m.get_config()
    assert cfg == {"name": "top_k_categorical_accuracy", "dtype": "float32", "k": 1}
    assert M.TopKCategoricalAccuracy.from_config(cfg).k == 1


def test_sparse_top_k_keras_goldens():
    # Keras accuracy_metrics_test.py SparseTopKCategoricalAccuracyTest
    m = M.SparseTopKCategoricalAccuracy(k=1)
    m.update_state(np.array([2, 1]), TK_PRED)
    close(m.result(), 0.5)
    m = M.SparseTopKCategoricalAccuracy(k=1)
    m.update_state(np.array([2, 1]), TK_PRED, sample_weight=np.array([0.7, 0.3]))
    close(m.result(), 0.3)
    ids = np.array([[1, 0, 3], [1, 2, 3]])
    m = M.SparseTopKCategoricalAccuracy(k=1, from_sorted_ids=True)
    m.update_state(np.array([2, 1]), ids)
    close(m.result(), 0.5)
    m = M.SparseTopKCategoricalAccuracy(k=1, from_sorted_ids=True)
    m.update_state(np.array([2, 1]), ids, sample_weight=np.array([0.7, 0.3]))
    close(m.result(), 0.3)
    cfg = M.SparseTopKCategoricalAccuracy(k=1).get_config()
    assert cfg == {"name": "sparse_top_k_categorical_accuracy", "dtype": "float32", "k": 1}
    cfg = M.SparseTopKCategoricalAccuracy(k=1, from_sorted_ids=True).get_config()
    assert cfg["from_sorted_ids"] is True
    assert M.SparseTopKCategoricalAccuracy.from_config(cfg).from_sorted_ids


def test_top_k_ties_and_shapes_like_keras_in_top_k():
    # ties count in the target's favour (rank = 1 + #strictly larger scores)
    pred = np.array([[0.5, 0.5, 0.5, 0.1]], F32)
    np.testing.assert_array_equal(M.top_k_categorical_accuracy([[0, 0, 1, 0]], pred, k=1), [1.0])
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy([3], pred, k=3), [0.0])
    # a NaN score at the target counts as -inf (rank 2 here)
    nan_pred = np.array([[np.nan, 0.1]], F32)
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy([0], nan_pred, k=1), [0.0])
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy([0], nan_pred, k=2), [1.0])
    # (batch, 1) labels give (batch, 1) matches; 3-D scores are flattened
    assert M.sparse_top_k_categorical_accuracy(np.array([[1], [0]]), TK_PRED, k=1).shape == (2, 1)
    t3 = np.eye(3)[np.array([[0, 1], [2, 2]])]
    p3 = np.stack([TK_PRED, TK_PRED[::-1]])[:, :, :]
    out = M.top_k_categorical_accuracy(t3, p3, k=1)
    assert out.shape == (2, 2) and out.dtype == np.float32


# ---------------------------------------- Keras regression_metrics_test.py
RM_T = np.array([[0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 0], [0, 0, 0, 0, 1]])
RM_P = np.array([[0, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 1, 1, 1, 1]])
RM_W = np.array([1.0, 1.5, 2.0, 2.5])


@pytest.mark.parametrize("cls,unweighted,weighted,atol", [
    # Keras regression_metrics_test.py / hinge_metrics_test.py
    ("MeanSquaredError", 0.5, 0.54285, 1e-5),
    ("MeanAbsoluteError", 0.5, 0.54285, 1e-5),
    ("MeanSquaredLogarithmicError", 0.24022, 0.26082, 1e-5),
    ("CategoricalHinge", 0.5, 0.5, 1e-5),
])
def test_regression_metric_keras_goldens(cls, unweighted, weighted, atol):
    m = getattr(M, cls)()
    m.update_state(RM_T, RM_P)
    close(m.result(), unweighted, atol)
    close(getattr(M, cls)()(RM_T, RM_P, sample_weight=RM_W), weighted, atol)


def test_cosine_similarity_metric_of_tiny_vectors_real_keras():
    # real Keras: CosineSimilarity()([[1, 0], [1, 2]], [[1e-8, 0], [1e-3, 2e-3]]);
    # a norm below epsilon is floored at epsilon (ops.nn.normalize)
    close32(M.CosineSimilarity()(np.array([[1.0, 0.0], [1.0, 2.0]]),
                                 np.array([[1e-8, 0.0], [1e-3, 2e-3]])), 0.55)


def test_mape_rmse_logcosh_cosine_keras_goldens():
    # Keras regression_metrics_test.py: y_true 0 divides by epsilon
    np.testing.assert_allclose(M.MeanAbsolutePercentageError()(RM_T, RM_P.astype(F32)), 35e7,
                               rtol=1e-6)
    np.testing.assert_allclose(M.MeanAbsolutePercentageError()(RM_T, RM_P.astype(F32),
                                                               sample_weight=RM_W), 40e7,
                               rtol=1e-6)
    r = M.RootMeanSquaredError()
    r.update_state(np.array([2, 4, 6]), np.array([1, 3, 2]))
    close(r.result(), np.sqrt(6))
    close(M.RootMeanSquaredError()(np.array([2, 4, 6, 8]), np.array([1, 3, 2, 3]),
                                   sample_weight=np.array([0, 1, 0, 1])), np.sqrt(13))
    t = np.asarray([[1, 9, 2], [-5, -2, 6]], dtype=F32)
    p = np.asarray([[4, 8, 12], [8, 1, 3]], dtype=F32)
    err = p - t
    lc = np.log((np.exp(err) + np.exp(-err)) / 2)
    close(M.LogCoshError()(t, p), np.sum(lc) / 6)
    w = np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape((2, 3))
    close(M.LogCoshError()(t, p, sample_weight=np.array([[1.2], [3.4]])),
          np.sum(lc * w) / np.sum(w))

    def l2(x):
        return x / np.sqrt(np.maximum(np.sum(x * x, axis=1, keepdims=True), 1e-12))
    expected = np.sum(l2(t) * l2(p), axis=1)
    close(M.CosineSimilarity()(t, p), np.mean(expected))
    close(M.CosineSimilarity()(t, p, sample_weight=np.asarray([1.2, 3.4])),
          np.sum(expected * np.asarray([1.2, 3.4])) / 4.6)
    close(M.CosineSimilarity(axis=1)(t, p), np.mean(expected))


def test_hinge_metric_keras_goldens():
    # Keras hinge_metrics_test.py
    p = np.array([[-0.3, 0.2, -0.1, 1.6], [-0.25, -1.0, 0.5, 0.6]])
    m = M.Hinge()
    m.update_state(np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]]), p)
    close(m.result(), 0.506)
    close(M.Hinge()(np.array([[-1, 1, -1, 1], [-1, -1, 1, 1]]), p,
                    sample_weight=np.array([1.5, 2.0])), 0.493)
    m = M.SquaredHinge()
    m.update_state(np.array([[0, 1, 0, 1], [0, 0, 1, 1]], dtype="float32"), p)
    close(m.result(), 0.364)
    close(M.SquaredHinge()(np.array([[-1, 1, -1, 1], [-1, -1, 1, 1]], dtype="float32"), p,
                           sample_weight=np.array([1.5, 2.0])), 0.347)


def test_probabilistic_metric_keras_goldens():
    # Keras probabilistic_metrics_test.py
    yt = np.array([1, 0, 1, 0]).reshape([2, 2])
    yp = np.array([1, 1, 1, 0], dtype=np.float32).reshape([2, 2])
    close(M.BinaryCrossentropy()(yt, yp), 3.9855)
    close(M.BinaryCrossentropy()(yt, yp, sample_weight=np.array([1.5, 2.0])), 3.4162)
    lt = np.array([[1, 0, 1], [0, 1, 1]])
    lp = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
    close(M.BinaryCrossentropy(from_logits=True)(lt, lp), 3.333)
    close(M.BinaryCrossentropy(from_logits=True)(lt, lp, sample_weight=np.array([2.0, 2.5])),
          3.7037)
    close(M.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.array((1, 0, 1)), np.array((10.0, -10.0, -10.0))), (10.0 + 5.0 * 0.1) / 3.0)

    ct = np.array([[0, 1, 0], [0, 0, 1]])
    cp = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    logits = np.array([[1, 9, 0], [1, 8, 1]], dtype=np.float32)
    sw = np.array([1.5, 2.0])
    close(M.CategoricalCrossentropy()(ct, cp), 1.176)
    close(M.CategoricalCrossentropy(from_logits=True)(ct, logits), 3.5011)
    close(M.CategoricalCrossentropy()(ct, cp, sample_weight=sw), 1.338)
    close(M.CategoricalCrossentropy(from_logits=True)(ct, logits, sample_weight=sw), 4.0012)
    close(M.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(ct, logits), 3.667)
    labels = np.array([1, 2])
    close(M.SparseCategoricalCrossentropy()(labels, cp), 1.176)
    close(M.SparseCategoricalCrossentropy(from_logits=True)(labels, logits), 3.5011)
    close(M.SparseCategoricalCrossentropy()(labels, cp, sample_weight=sw), 1.338)
    close(M.SparseCategoricalCrossentropy(from_logits=True)(labels, logits, sample_weight=sw),
          4.0012)
    with pytest.raises(NotImplementedError, match="ignore_class"):
        M.SparseCategoricalCrossentropy(ignore_class=0)

    kp = np.asarray([0.4, 0.9, 0.12, 0.36, 0.3, 0.4], dtype=F32).reshape((2, 3))
    kt = np.asarray([0.5, 0.8, 0.12, 0.7, 0.43, 0.8], dtype=F32).reshape((2, 3))
    kexp = kt * np.log(kt / kp)
    close(M.KLDivergence()(kt, kp), np.sum(kexp) / 2)
    close(M.KLDivergence()(kt, kp, sample_weight=np.asarray([1.2, 3.4]).reshape((2, 1))),
          np.sum(kexp * np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape(2, 3)) / 4.6)
    pp = np.asarray([1, 9, 2, 5, 2, 6], dtype=F32).reshape((2, 3))
    pt = np.asarray([4, 8, 12, 8, 1, 3], dtype=F32).reshape((2, 3))
    pexp = pp - pt * np.log(pp)
    close(M.Poisson()(pt, pp), np.sum(pexp) / 6)
    w = np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape((2, 3))
    close(M.Poisson()(pt, pp, sample_weight=np.asarray([1.2, 3.4]).reshape((2, 1))),
          np.sum(pexp * w) / np.sum(w))


# ----------------------------------------- Keras confusion_metrics_test.py
def test_precision_keras_goldens():
    p = M.Precision(name="my_precision", thresholds=[0.4, 0.9], top_k=15, class_id=12)
    assert p.name == "my_precision" and p.thresholds == [0.4, 0.9]
    assert p.top_k == 15 and p.class_id == 12
    p2 = M.Precision.from_config(p.get_config())
    assert (p2.name, p2.thresholds, p2.top_k, p2.class_id) == ("my_precision", [0.4, 0.9], 15, 12)

    assert M.Precision()(np.array([0, 1, 1, 0]), np.array([1, 0, 1, 0])) == pytest.approx(0.5)
    inputs = np.random.default_rng(0).integers(0, 2, size=(100, 1))
    assert M.Precision(thresholds=[0.5])(1 - inputs, inputs) == 0
    res = M.Precision()(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]),
                        np.array([[1, 0, 1, 0], [1, 0, 1, 0]]),
                        sample_weight=np.array([[1, 2, 3, 4], [4, 3, 2, 1]]))
    assert res == pytest.approx(7.0 / 10.0)
    assert M.Precision()(np.zeros(4), np.zeros(4)) == 0
    np.testing.assert_allclose(M.Precision(thresholds=[0.5, 0.7])(
        np.array([0, 1, 1, 0]), np.array([1, 0, 0.6, 0])), [0.5, 0.0], atol=0.5)
    yt, yp = np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0.6, 0]], dtype="float32")
    w = np.array([[4, 0], [3, 1]], dtype="float32")
    np.testing.assert_allclose(M.Precision(thresholds=[0.5, 1.0])(yt, yp, sample_weight=w),
                               [3.0 / 7.0, 0], rtol=1e-6)
    m = M.Precision(thresholds=[0.5, 1.0])
    for _ in range(2):
        m.update_state(yt, yp, sample_weight=w)
    np.testing.assert_allclose(m.result(), [6.0 / 14.0, 0], rtol=1e-6)
    assert M.Precision(top_k=3)(np.array([0, 1, 1, 0, 0]),
                                np.array([0.2, 0.1, 0.5, 0, 0.2])) == pytest.approx(1.0 / 3)
    m = M.Precision(top_k=3)
    m(np.array([[0, 1, 1, 0, 1]]), np.array([[0.2, 0.1, 0.4, 0, 0.2]]),
      sample_weight=np.array([[1, 4, 2, 3, 5]]))
    res = m(np.array([1, 0, 1, 1, 1]), np.array([0.2, 0.6, 0.4, 0.2, 0.2]),
            sample_weight=np.array(3))
    assert res == pytest.approx(13.0 / 17.0)
    with pytest.raises(ValueError, match=r"When class_id is provided, y_pred must be a 2D array "
                                         r"with shape \(num_samples, num_classes\), found shape"):
        M.Precision(class_id=2)(np.array([0, 1, 1, 0, 0]), np.array([0.2, 0.1, 0.6, 0, 0.2]))
    m = M.Precision(class_id=1)
    assert m(MC_TRUE, MC_PRED) == pytest.approx(1.0)
    assert m.true_positives == pytest.approx(1.0) and m.false_positives == pytest.approx(0.0)
    m = M.Precision(thresholds=0.7, top_k=2)
    assert m(np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.8, 0.6, 0, 0.2])) == pytest.approx(1)
    assert m.true_positives == pytest.approx(1) and m.false_positives == pytest.approx(0)


MC_PRED = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.7, 0.2, 0.1],
                    [0.1, 0.1, 0.8]])
MC_TRUE = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0],
                    [0.0, 0.0, 1.0]])


def test_recall_keras_goldens():
    r = M.Recall(name="my_recall", thresholds=[0.4, 0.9], top_k=15, class_id=12)
    r2 = M.Recall.from_config(r.get_config())
    assert (r2.name, r2.thresholds, r2.top_k, r2.class_id) == ("my_recall", [0.4, 0.9], 15, 12)
    assert M.Recall()(np.array([0, 1, 1, 0]), np.array([1, 0, 1, 0])) == pytest.approx(0.5)
    inputs = np.random.default_rng(1).integers(0, 2, size=(100, 1))
    assert M.Recall(thresholds=[0.5])(1 - inputs, inputs) == 0
    res = M.Recall()(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]), np.array([[1, 0, 1, 0], [0, 1, 0, 1]]),
                     sample_weight=np.array([[1, 2, 3, 4], [4, 3, 2, 1]]))
    assert res == pytest.approx(4.0 / 10.0)
    assert M.Recall()(np.zeros(4), np.zeros(4)) == 0
    yt, yp = np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0.6, 0]], dtype="float32")
    w = np.array([[1, 4], [3, 2]], dtype="float32")
    close(M.Recall(thresholds=[0.5, 1.0])(yt, yp, sample_weight=w), [3.0 / 7.0, 0])
    m = M.Recall(thresholds=[0.5, 1.0])
    for _ in range(2):
        m.update_state(yt, yp, sample_weight=w)
    close(m.result(), [6.0 / 14.0, 0])
    assert M.Recall(top_k=3)(np.array([0, 1, 1, 0, 0]),
                             np.array([0.2, 0.1, 0.5, 0, 0.2])) == pytest.approx(0.5)
    m = M.Recall(top_k=3)
    m(np.array([[0, 1, 1, 0, 1]]), np.array([[0.2, 0.1, 0.4, 0, 0.2]]),
      sample_weight=np.array([[1, 4, 2, 3, 5]]))
    res = m(np.array([1, 0, 1, 1, 1]), np.array([0.2, 0.6, 0.4, 0.2, 0.2]),
            sample_weight=np.array(3))
    assert res == pytest.approx(13.0 / 23.0)
    with pytest.raises(ValueError, match="When class_id is provided"):
        M.Recall(class_id=2)(np.array([0, 1, 1, 0, 0]), np.array([0.2, 0.1, 0.6, 0, 0.2]))
    m = M.Recall(class_id=1)
    assert m(MC_TRUE, MC_PRED) == pytest.approx(1.0)
    assert m.true_positives == pytest.approx(1.0) and m.false_negatives == pytest.approx(0.0)
    m = M.Recall(thresholds=0.7, top_k=2)
    assert m(np.array([1, 1, 1, 0, 1]), np.array([0.2, 0.8, 0.6, 0, 0.2])) == pytest.approx(0.25)
    assert m.true_positives == pytest.approx(1) and m.false_negatives == pytest.approx(3)


AUC_PRED = np.array([0, 0.5, 0.3, 0.9], dtype="float32")
AUC_TRUE = np.array([0, 0, 1, 1])
AUC_W = [1, 2, 3, 4]
AUC_LOGITS = -np.log(1.0 / (AUC_PRED.astype(np.float64) + 1e-12) - 1.0)


@pytest.mark.parametrize("kw,weighted,want", [
    # Keras confusion_metrics_test.py AUCTest (num_thresholds=3 unless given)
    ({}, False, 0.75),
    ({"thresholds": [0.5], "num_thresholds": 2}, False, 0.75),
    ({}, True, 0.7855),
    ({"summation_method": "majoring"}, True, 1.0),
    ({"summation_method": "minoring"}, True, 0.571),
    ({"curve": "PR", "summation_method": "majoring"}, True, 1 * 0.429 + 1 * 0.571),
    ({"curve": "PR", "summation_method": "minoring"}, True, 0.7 * 0.429),
    ({"curve": "PR"}, True, 2.416 / 7 + 4 / 7),
    ({"curve": "PRGAIN", "summation_method": "majoring"}, True, 1.0),
    ({"curve": "PRGAIN", "summation_method": "minoring"}, True, 0.0),
    ({"curve": "PRGAIN"}, True, 0.5),
])
def test_auc_keras_goldens(kw, weighted, want):
    kw = {"num_thresholds": 3, **kw}
    m = M.AUC(**kw)
    got = m(AUC_TRUE, AUC_PRED, sample_weight=AUC_W if weighted else None)
    assert isinstance(got, np.float32)
    close(got, want)


def test_auc_keras_tests_misc():
    # Keras confusion_metrics_test.py AUCTest
    assert M.AUC()(AUC_TRUE, AUC_TRUE) == 1
    close(M.AUC(num_thresholds=3, from_logits=True)(AUC_TRUE, AUC_LOGITS), 0.75)
    m = M.AUC(num_thresholds=2, thresholds=[0.5])
    assert m.num_thresholds == 3
    close(m.thresholds, [0.0, 0.5, 1.0])
    close(M.AUC(num_thresholds=3, curve="PR")(AUC_TRUE, AUC_PRED, sample_weight=[-1, -2, -3, -4]),
          0.0)
    y = np.array([0, 0, 0, 1, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.3, 0.4, 0.4, 0.6, 0.6, 0.8, 0.9])
    close(M.AUC(num_thresholds=3, curve="PRGAIN")(y, p), 0.666666 * 0.333333 + 0.333333 * 0.833333)
    with pytest.raises(ValueError, match="Argument `num_thresholds` must be an integer > 1"):
        M.AUC(num_thresholds=-1)
    with pytest.raises(ValueError, match="Argument `num_thresholds` must be an integer > 1."):
        M.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match='Invalid AUC curve value: "Invalid".'):
        M.AUC(curve="Invalid")
    with pytest.raises(ValueError, match='Invalid AUC summation method value: "Invalid".'):
        M.AUC(summation_method="Invalid")
    logits = 1 / (1 + np.exp(np.array([[[-10.0, 10.0, -10.0], [10.0, -10.0, 10.0]],
                                       [[-12.0, 12.0, -12.0], [12.0, -12.0, 12.0]]],
                                      dtype=np.float32)))
    labels = np.array([[[1, 0, 0], [1, 0, 0]], [[0, 1, 1], [0, 1, 1]]], dtype=np.int64)
    assert M.AUC()(labels, logits) == 0.5


def test_auc_config_keras_tests():
    m = M.AUC(num_thresholds=100, curve="PR", summation_method="majoring", name="auc_1",
              dtype="float64", multi_label=True, num_labels=2, from_logits=True)
    m.update_state(MULTI_TRUE_GOOD, MULTI_PRED)
    assert m.name == "auc_1" and m.num_thresholds == 100
    assert m.curve == M.AUCCurve.PR and m.curve == "PR"
    assert m.summation_method == M.AUCSummationMethod.MAJORING
    assert m.multi_label and m.num_labels == 2 and m._from_logits
    cfg = m.get_config()
    assert "thresholds" not in cfg and cfg == json.loads(json.dumps(cfg))
    m2 = M.AUC.from_config(cfg)
    m2.update_state(MULTI_TRUE_GOOD, MULTI_PRED)
    assert m2.get_config() == cfg
    close(m.thresholds, m2.thresholds, 1e-9)
    m = M.AUC(num_thresholds=None, curve="PR", summation_method="majoring", name="auc_1",
              thresholds=[0.3, 0.5])
    m.update_state(AUC_TRUE, AUC_PRED)
    assert m.num_thresholds == 4
    close(m.thresholds, [0.0, 0.3, 0.5, 1.0])
    cfg = m.get_config()
    assert cfg == json.loads(json.dumps(cfg)) and cfg["thresholds"] == [0.3, 0.5]
    assert M.AUC.from_config(cfg).get_config() == cfg


MULTI_PRED = np.array([[0, 0.5, 0.3, 0.9], [0.1, 0.2, 0.3, 0.4]], dtype="float32").T
MULTI_TRUE_GOOD = np.array([[0, 0, 1, 1], [0, 0, 1, 1]]).T


@pytest.mark.parametrize("kw,sw,want,atol", [
    # Keras confusion_metrics_test.py MultiAUCTest (num_thresholds=5)
    ({"multi_label": True}, None, (0.875 + 1.0) / 2.0, 1e-3),
    ({"multi_label": False}, [1, 2, 3, 4], 1.0 - (0.3333 * (1.0 - 0.2857) / 2.0), 1e-3),
    ({"multi_label": False}, np.arange(8).reshape(4, 2), 1.0 - (0.3333 * (1.0 - 0.2727) / 2.0),
     1e-3),
    ({"multi_label": True, "label_weights": [0.75, 0.25]}, None,
     (0.875 * 0.75 + 1.0 * 0.25) / (0.75 + 0.25), 1e-3),
    ({"multi_label": False, "label_weights": [0.75, 0.25]}, None,
     1.0 - ((1.0 - 0.375) * 0.375 / 2.0), 1e-2),
    ({"multi_label": False}, None, 1.0 - (3.0 / 32.0), 1e-3),
])
def test_multi_auc_keras_goldens(kw, sw, want, atol):
    close(M.AUC(num_thresholds=5, **kw)(MULTI_TRUE_GOOD, MULTI_PRED, sample_weight=sw), want,
          atol)


def test_multi_auc_all_correct_and_logits():
    assert M.AUC(multi_label=True)(MULTI_TRUE_GOOD, MULTI_TRUE_GOOD) == 1
    assert M.AUC(multi_label=False)(MULTI_TRUE_GOOD, MULTI_TRUE_GOOD) == 1
    logits = -np.log(1.0 / (MULTI_PRED.astype(np.float64) + 1e-12) - 1.0)
    close(M.AUC(num_thresholds=5, multi_label=True, from_logits=True)(MULTI_TRUE_GOOD, logits),
          (0.875 + 1.0) / 2.0)
    with pytest.raises(ValueError, match="`num_labels` is needed only when `multi_label` is True"):
        M.AUC(num_labels=2)
    with pytest.raises(ValueError, match="must have rank 2 when `multi_label=True`"):
        M.AUC(multi_label=True)(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


# -------------------------------------------------------- real Keras goldens
_I = np.arange(40)
P = (((_I * 37) % 41) / 41.0).astype(F32)          # scores in [0, 1)
T = ((_I * 7) % 5 < 2).astype(F32)                 # 16 positives
W = (1.0 + (_I % 3)).astype(F32)                   # weights 1, 2, 3
P2 = np.stack([P, ((_I * 11) % 13) / 13.0], axis=1).astype(F32)
T2 = np.stack([T, (_I % 4 == 0)], axis=1).astype(F32)
Z = ((P - 0.5) * 6).astype(F32)
S = (((_I[:, None] * 13 + np.arange(10)[None] * 7) % 17) / 17.0).astype(F32)  # with ties
L10 = (_I * 3) % 10
OH = np.eye(10, dtype=F32)[L10]
RT = np.array([[1, 9, 2], [-5, -2, 6], [0, 0, 0], [0.5, 1, 0]], F32)
RP = np.array([[4, 8, 12], [8, 1, 3], [0, 0, 0], [0.25, -0.5, 1]], F32)
PT = np.array([[0.2, 0.3, 0.5], [0, 0, 1], [0.7, 0.3, 0], [1, 0, 0]], F32)
PP = np.array([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.05, 0.5, 0.45], [0.4, 0.4, 0.2]], F32)
SW = np.array([1.5, 0.0, 2.0, 1.5], F32)

REAL_KERAS = [
    # (metric factory, y_true, y_pred, sample_weight, real Keras 3.15.1 result)
    (lambda: M.AUC(), T, P, None, 0.33333334),
    (lambda: M.AUC(), T, P, W, 0.3131649),
    (lambda: M.AUC(curve="PR"), T, P, None, 0.30495468),
    (lambda: M.AUC(curve="PR"), T, P, W, 0.30061394),
    (lambda: M.AUC(curve="PR", summation_method="majoring"), T, P, None, 0.32443428),
    (lambda: M.AUC(num_thresholds=10, summation_method="minoring"), T, P, None, 0.3046875),
    (lambda: M.AUC(curve="PRGAIN"), T, P, None, -0.2574956),
    (lambda: M.AUC(thresholds=[0.1, 0.35, 0.6, 0.62]), T, P, W, 0.30285904),
    (lambda: M.AUC(from_logits=True), T, Z, None, 0.3333333),
    (lambda: M.AUC(multi_label=True), T2, P2, None, 0.40416667),
    (lambda: M.AUC(multi_label=True, label_weights=[0.3, 0.7]), T2, P2, None, 0.4325),
    (lambda: M.AUC(), T2, P2, W, 0.4289903),
    (lambda: M.Precision(), T, P, None, 0.4),
    (lambda: M.Precision(thresholds=[0.2, 0.5, 0.9]), T, P, W, [0.3846154, 0.3902439, 0.]),
    (lambda: M.Precision(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]), T, P, None,
     [0.3846154, 0.33333334, 0.4, 0.2, 0.]),
    (lambda: M.Recall(), T, P, None, 0.5),
    (lambda: M.Recall(thresholds=[0.2, 0.5, 0.9]), T, P, W, [0.78125, 0.5, 0.]),
    (lambda: M.Precision(top_k=1), T2, P2, None, 0.3),
    (lambda: M.Recall(top_k=1), T2, P2, None, 0.46153846),
    (lambda: M.Precision(class_id=1), T2, P2, W, 0.2777778),
    (lambda: M.Recall(class_id=1, thresholds=0.3), T2, P2, None, 0.7),
    (lambda: M.TruePositives(thresholds=[0.3, 0.6]), T, P, W, [16., 7.]),
    (lambda: M.FalsePositives(), T, P, None, 12.),
    (lambda: M.TrueNegatives(thresholds=[0.0, 0.5, 1.0]), T, P, None, [0., 12., 24.]),
    (lambda: M.FalseNegatives(thresholds=[0.3, 0.6]), T, P, None, [8., 12.]),
    (lambda: M.TopKCategoricalAccuracy(), OH, S, None, 0.575),
    (lambda: M.TopKCategoricalAccuracy(k=2), OH, S, W, 0.2658228),
    (lambda: M.SparseTopKCategoricalAccuracy(), L10, S, None, 0.575),
    (lambda: M.SparseTopKCategoricalAccuracy(k=3), L10[:, None], S, W, 0.36708862),
    (lambda: M.RootMeanSquaredError(), RT, RP, SW, 3.3661923),
    (lambda: M.MeanSquaredLogarithmicError(), RT, RP, SW, 0.39949808),
    (lambda: M.CosineSimilarity(), RT, RP, SW, 0.12831539),
    (lambda: M.LogCoshError(), RT, RP, SW, 1.3370112),
    (lambda: M.MeanAbsolutePercentageError(), RT, RP, SW, 100000110.),
    (lambda: M.MeanAbsoluteError(), RT, RP, SW, 1.675),
    (lambda: M.KLDivergence(), PT, PP, SW, 1.008352),
    (lambda: M.Poisson(), PT, PP, SW, 0.85386485),
    (lambda: M.CategoricalCrossentropy(), PT, PP, SW, 1.5615952),
    (lambda: M.BinaryCrossentropy(), PT, PP, SW, 0.83078873),
    (lambda: M.Hinge(), PT, PP, SW, 0.9003334),
    (lambda: M.SquaredHinge(), PT, PP, SW, 0.8253601),
    (lambda: M.CategoricalHinge(), PT, PP, SW, 1.127),
]


@pytest.mark.parametrize("i", range(len(REAL_KERAS)))
def test_metrics_match_real_keras(i):
    factory, yt, yp, sw, want = REAL_KERAS[i]
    m = factory()
    got = m(yt, yp, sample_weight=sw)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-6)
    assert np.asarray(got).dtype == np.float32
    # batches accumulate; reset_state starts over
    m.reset_state()
    for s in range(0, len(yt), 7):
        m.update_state(yt[s:s + 7], yp[s:s + 7],
                       sample_weight=None if sw is None else sw[s:s + 7])
    np.testing.assert_allclose(np.asarray(m.result(), np.float64), want, rtol=2e-5, atol=1e-6)


def test_confusion_edge_cases_match_real_keras():
    # real Keras: evenly spaced thresholds take Keras's bucketed path, which
    # clips predictions to [0, 1] (1.5 then no longer beats threshold 1.0);
    # uneven thresholds compare the raw predictions
    yt, yp = np.array([1, 0, 1, 1]), np.array([0.0, 0.5, 1.0, 1.5])
    close32(M.Precision(thresholds=[0.0, 0.5, 1.0])(yt, yp), [0.6666667, 1.0, 0.0])
    close32(M.Precision(thresholds=[0.0, 0.4, 1.0])(yt, yp), [0.6666667, 0.6666667, 1.0])
    # real Keras: AUC(num_thresholds=3) with predictions outside [0, 1]
    close32(M.AUC(num_thresholds=3)(np.array([0, 1, 1, 0]), np.array([1.5, 0.7, -0.2, 0.2])), 0.5)
    # real Keras: top_k keeps the lower index on ties (ops.top_k -> index 0)
    assert M.Precision(top_k=1)(np.array([0, 1, 0]), np.array([0.5, 0.5, 0.1])) == 0.0
    assert M.Recall(top_k=1)(np.array([[0, 1, 0]]), np.array([[0.5, 0.5, 0.1]])) == 0.0
    assert M.Precision(top_k=1)(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.1])) == 1.0
    # results before any update are 0, as Keras's divide_no_nan gives
    assert M.AUC().result() == 0.0 and M.Precision().result() == 0.0
    assert M.Recall(thresholds=[0.1, 0.2]).result().tolist() == [0.0, 0.0]


# --------------------------------------------------------- numpy references
def _brute_counts(t, p, thresholds, w):
    """float64 tp, fp, tn, fn at each threshold (prediction > threshold)."""
    pos, pp = (t != 0)[None], p[None] > np.asarray(thresholds, np.float32)[:, None]
    return [np.sum(w * m, axis=1) for m in (pos & pp, ~pos & pp, ~pos & ~pp, pos & ~pp)]


@pytest.mark.parametrize("seed", range(4))
def test_auc_and_precision_recall_match_brute_force_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 200
    t = (rng.random(n) < 0.4).astype(F32)
    p = np.clip(rng.normal(0.35 + 0.3 * t, 0.2), 0, 1).astype(F32)
    w = rng.uniform(0.1, 2.0, n).astype(F32)
    k = 50
    thr = np.array([-1e-7] + [(i + 1) / (k - 1) for i in range(k - 2)] + [1 + 1e-7], F32)
    tp, fp, tn, fn = _brute_counts(t, p, thr, w)
    rec, fpr = tp / (tp + fn), fp / (fp + tn)
    want = np.sum((fpr[:-1] - fpr[1:]) * (rec[:-1] + rec[1:]) / 2)
    close(M.AUC(num_thresholds=k)(t, p, sample_weight=w), want, 1e-5)
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-30), 0)
    want_pr = np.sum((rec[:-1] - rec[1:]) * np.minimum(prec[:-1], prec[1:]))
    close(M.AUC(num_thresholds=k, curve="PR", summation_method="minoring")(
        t, p, sample_weight=w), want_pr, 1e-5)
    # many thresholds approach the exact (Mann-Whitney) ROC AUC
    d = p[t == 1][:, None].astype(np.float64) - p[t == 0][None]
    exact = np.mean((d > 0) + 0.5 * (d == 0))
    close(M.AUC(num_thresholds=4001)(t, p), exact, 2e-3)
    # precision / recall at uneven thresholds
    thr2 = [0.1, 0.45, 0.8]
    tp, fp, tn, fn = _brute_counts(t, p, thr2, w)
    close(M.Precision(thresholds=thr2)(t, p, sample_weight=w), tp / (tp + fp), 1e-6)
    close(M.Recall(thresholds=thr2)(t, p, sample_weight=w), tp / (tp + fn), 1e-6)


def test_top_k_and_rmse_match_numpy():
    rng = np.random.default_rng(5)
    scores = rng.random((50, 7)).astype(F32)
    labels = rng.integers(0, 7, 50)
    rank = np.argsort(np.argsort(-scores, axis=1), axis=1)[np.arange(50), labels]
    for k in (1, 3, 7):
        close(M.SparseTopKCategoricalAccuracy(k=k)(labels, scores), np.mean(rank < k), 1e-6)
        close(M.TopKCategoricalAccuracy(k=k)(np.eye(7)[labels], scores), np.mean(rank < k), 1e-6)
    t, p = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    w = rng.uniform(0, 2, 50)
    want = np.sqrt(np.sum(np.mean((t - p) ** 2, axis=1) * w) / np.sum(w))
    close(M.RootMeanSquaredError()(t, p, sample_weight=w), want, 1e-5)


# ----------------------------------------------- names, get(), resolve()
# real Keras 3.15.1: keras.metrics.get(name) -> class name (name attribute =
# the class default; compile keeps the string as the name)
KERAS_METRIC_NAMES = {
    "auc": "AUC", "precision": "Precision", "recall": "Recall",
    "top_k_categorical_accuracy": "TopKCategoricalAccuracy",
    "sparse_top_k_categorical_accuracy": "SparseTopKCategoricalAccuracy",
    "mae": "MeanAbsoluteError", "MAE": "MeanAbsoluteError",
    "mean_absolute_error": "MeanAbsoluteError", "mape": "MeanAbsolutePercentageError",
    "MAPE": "MeanAbsolutePercentageError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "msle": "MeanSquaredLogarithmicError", "MSLE": "MeanSquaredLogarithmicError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "root_mean_squared_error": "RootMeanSquaredError", "cosine_similarity": "CosineSimilarity",
    "log_cosh_error": "LogCoshError", "hinge": "Hinge", "squared_hinge": "SquaredHinge",
    "categorical_hinge": "CategoricalHinge", "kl_divergence": "KLDivergence",
    "poisson": "Poisson", "binary_crossentropy": "BinaryCrossentropy",
    "bce": "BinaryCrossentropy", "BCE": "BinaryCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "true_positives": "TruePositives", "false_positives": "FalsePositives",
    "true_negatives": "TrueNegatives", "false_negatives": "FalseNegatives",
    "MSE": "MeanSquaredError", "sum": "Sum", "mean": "Mean",
}
DIRECTIONS = {  # Keras 3.15.1's metric._direction
    "AUC": "up", "Precision": "up", "Recall": "up", "TopKCategoricalAccuracy": "up",
    "SparseTopKCategoricalAccuracy": "up", "MeanAbsoluteError": "down",
    "MeanAbsolutePercentageError": "down", "MeanSquaredLogarithmicError": "down",
    "RootMeanSquaredError": "down", "CosineSimilarity": "up", "LogCoshError": "down",
    "Hinge": "down", "SquaredHinge": "down", "CategoricalHinge": "down",
    "KLDivergence": "down", "Poisson": "down", "BinaryCrossentropy": "down",
    "CategoricalCrossentropy": "down", "SparseCategoricalCrossentropy": "down",
    "MeanSquaredError": "down",
}
DEFAULT_NAMES = {  # Keras 3.15.1 defaults of the classes
    "MeanAbsoluteError": "mean_absolute_error", "LogCoshError": "logcosh",
    "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
    "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
    "RootMeanSquaredError": "root_mean_squared_error", "CosineSimilarity": "cosine_similarity",
    "Hinge": "hinge", "SquaredHinge": "squared_hinge", "CategoricalHinge": "categorical_hinge",
    "KLDivergence": "kl_divergence", "Poisson": "poisson",
    "BinaryCrossentropy": "binary_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "TopKCategoricalAccuracy": "top_k_categorical_accuracy",
    "SparseTopKCategoricalAccuracy": "sparse_top_k_categorical_accuracy",
}


@pytest.mark.parametrize("name", sorted(KERAS_METRIC_NAMES))
def test_get_and_resolve_keep_keras_names(name):
    obj = M.get(name)
    assert type(obj).__name__ == KERAS_METRIC_NAMES[name]
    r = M.resolve(name, (4, 3), (4, 3))
    assert type(r).__name__ == KERAS_METRIC_NAMES[name] and r.name == name
    assert getattr(r, "_direction", None) == DIRECTIONS.get(type(r).__name__)
    assert r._native() is None


@pytest.mark.parametrize("cls", sorted(DEFAULT_NAMES))
def test_default_names_directions_and_config_round_trip(cls):
    m = getattr(M, cls)()
    assert m.name == DEFAULT_NAMES[cls] and m._direction == DIRECTIONS[cls]
    cfg = m.get_config()
    assert cfg["name"] == m.name and cfg["dtype"] == "float32"
    assert getattr(M, cls).from_config(cfg).get_config() == cfg
    renamed = getattr(M, cls).from_config(dict(cfg, name="x"))
    assert renamed.name == "x"


def test_confusion_metrics_default_names_are_unique_like_keras():
    # Keras auto-names unnamed instances: auc, auc_1, auc_2, ...
    for cls, base in ((M.AUC, "auc"), (M.Precision, "precision"), (M.Recall, "recall"),
                      (M.TruePositives, "true_positives")):
        first, second = cls().name, cls().name
        assert first.startswith(base) and second.startswith(base + "_") and first != second
        assert cls(name=base).name == base
    for cls in (M.AUC, M.Precision, M.Recall):
        assert cls()._direction == "up"
    assert M.Precision(thresholds=[0.2, 0.7]).get_config()["thresholds"] == [0.2, 0.7]
    with pytest.raises(ValueError, match=r"Threshold values must be in \[0, 1\]"):
        M.Precision(thresholds=[0.5, 1.5])


def test_resolve_function_names_get_keras_directions():
    # names that fastdense resolves to functions still get the direction of
    # the class Keras would build (EarlyStopping(mode="auto") reads it)
    for name, direction in (("categorical_accuracy", "up"), ("sparse_categorical_accuracy", "up"),
                            ("binary_accuracy", "up"), ("mse", "down"),
                            ("mean_squared_error", "down")):
        assert M.resolve(name, (4, 3), (4, 3))._direction == direction
    w = M.MeanMetricWrapper(M.top_k_categorical_accuracy, k=2)
    assert w._direction == "up" and w.name == "top_k_categorical_accuracy"
    assert M.MeanMetricWrapper(M.mean_absolute_error)._direction == "down"
    assert not hasattr(M.MeanMetricWrapper(lambda t, p: t), "_direction")


@pytest.mark.parametrize("name", ["kld", "huber", "log_cosh", "logcosh", "Auc", "rmse",
                                  "top_k_accuracy"])
def test_unknown_metric_names_raise_like_keras(name):
    # real Keras 3.15.1: keras.metrics.get(name) raises ValueError for each
    with pytest.raises(ValueError, match=f"Could not interpret metric identifier: {name}"):
        M.get(name)
    with pytest.raises(ValueError, match=name):
        M.resolve(name, (2, 1), (2, 1))


def test_iou_names_resolve_as_keras():
    # real Keras 3.15.1: get("BinaryIoU") / get("binary_io_u") build one; get("IoU") and
    # get("mean_io_u") fail for their missing required arguments
    assert isinstance(M.get("BinaryIoU"), M.BinaryIoU)
    assert isinstance(M.get("binary_io_u"), M.BinaryIoU)
    for name, missing in (("IoU", "'num_classes' and 'target_class_ids'"),
                          ("mean_io_u", "'num_classes'")):
        with pytest.raises(TypeError, match=missing):
            M.get(name)


@pytest.mark.parametrize("cls", ["Sum", "Mean"])
def test_sum_and_mean_weights(cls):
    m = getattr(M, cls)()
    m.update_state(np.array([[1.0, 3.0], [5.0, 7.0]]), sample_weight=np.array([0.5, 2.0]))
    # Keras reduce_to_samplewise_values: per-sample sum (Sum) or mean (Mean) first
    want = {"Sum": 0.5 * 4 + 2.0 * 12, "Mean": (0.5 * 2 + 2.0 * 6) / 2.5}[cls]
    close(m.result(), want, 1e-6)
    m.reset_state()
    assert m.result() == 0.0


def test_every_metric_accepts_sample_weight_and_returns_float32():
    yt = (T2 > 0).astype(F32)
    p2 = P2 + F32(0.01)
    for cls in M._CLASSES:
        if cls in (M.Mean, M.Sum):
            continue
        if cls in (M.PearsonCorrelation, M.ConcordanceCorrelation):
            continue  # (per-sample correlations of 2 features: test_correlation_metrics_...)
        if issubclass(cls, M._IoUBase):
            continue  # (class ids, one weight per id: test_iou_metrics)
        m = cls(0.5) if issubclass(cls, M._SensitivitySpecificityBase) else cls()
        if cls in (M.SparseCategoricalAccuracy, M.SparseCategoricalCrossentropy,
                   M.SparseTopKCategoricalAccuracy):
            m.update_state(T.astype(int), p2, sample_weight=W)
        else:
            m.update_state(yt, p2, sample_weight=W)
        res = np.asarray(m.result())
        assert res.dtype == np.float32 and np.all(np.isfinite(res)), cls.__name__
        m.reset_state()
        res = np.asarray(m.result())
        # (R2Score after a reset: 0 / 0, NaN, as Keras's)
        assert np.all(res == 0) or cls is M.RootMeanSquaredError or (
            cls is M.R2Score and np.isnan(res))


def test_a_string_metric_uses_one_auto_name_as_in_keras():
    # compile checks metric names without creating metrics; fit creates
    # them: "auc" takes one auto-name, so the next AUC() is named as Keras's
    import numpy as np
    from fastdense import layers, metrics, models
    x = np.random.default_rng(0).random((32, 5)).astype(np.float32)
    y = (x[:, :1] > 0.5).astype(np.float32)
    probe = metrics.AUC()
    base = int(probe.name.rsplit("_", 1)[1]) if "_" in probe.name else 0
    m = models.Sequential([layers.Input((5,)), layers.Dense(1, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy", metrics=["auc"])
    m.fit(x, y, verbose=0)
    assert metrics.AUC().name == f"auc_{base + 2}"
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        m.compile("sgd", "binary_crossentropy", metrics=["not_a_metric"])


# Keras 3.15.1 (JAX) on the same data (tools: /tmp scripts of the 2026-12-06 session,
# rounded to 6 decimals): F1Score / FBetaScore(beta=2) / R2Score, two update_state
# calls (the second with sample weights)
F_GOLDEN = [
    ({}, [0.358834, 0.393948, 0.241115, 0.0], [0.367889, 0.489367, 0.211414, 0.0]),
    ({"average": "micro"}, 0.254568, 0.254568),
    ({"average": "macro"}, 0.248474, 0.267167),
    ({"average": "weighted"}, 0.237831, 0.243997),
    ({"threshold": 0.5}, [0.392691, 0.293489, 0.429211, 0.241804],
     [0.526903, 0.456855, 0.473203, 0.28732]),
    ({"average": "macro", "threshold": 0.3}, 0.396243, 0.562155),
]
R2_GOLDEN = [({}, 0.681425), ({"class_aggregation": None}, [0.877862, 0.590799, 0.575616]),
             ({"class_aggregation": "variance_weighted_average"}, 0.738956),
             ({"num_regressors": 2}, 0.67598)]


def _f_data():
    r = np.random.default_rng(0)
    yt = np.eye(4)[r.integers(0, 4, 50)].astype("float32")
    yp = r.random((50, 4)).astype("float32")
    sw = r.random(50).astype("float32")
    return r, yt, yp, sw


@pytest.mark.parametrize("kw,f1,f2", F_GOLDEN)
def test_f_scores_match_keras(kw, f1, f2):
    from fastdense import metrics
    _, yt, yp, sw = _f_data()
    for cls, extra, want, name in ((metrics.F1Score, {}, f1, "f1_score"),
                                   (metrics.FBetaScore, {"beta": 2.0}, f2, "fbeta_score")):
        m = cls(**kw, **extra)
        m.update_state(yt[:30], yp[:30])
        m.update_state(yt[30:], yp[30:], sample_weight=sw[30:])
        np.testing.assert_allclose(m.result(), want, atol=2e-6)
        assert m.name == name
        m.reset_state()
        m.update_state(yt, yp)
        full = cls(**kw, **extra)
        full.update_state(yt, yp)
        np.testing.assert_array_equal(m.result(), full.result())


@pytest.mark.parametrize("kw,want", R2_GOLDEN)
def test_r2_score_matches_keras(kw, want):
    from fastdense import metrics
    r, _, _, sw = _f_data()
    ytr = r.normal(size=(40, 3)).astype("float32")
    ypr = (ytr + r.normal(size=(40, 3)) * 0.5).astype("float32")
    m = metrics.R2Score(**kw)
    m.update_state(ytr[:20], ypr[:20])
    m.update_state(ytr[20:], ypr[20:], sample_weight=sw[:20])
    np.testing.assert_allclose(m.result(), want, atol=2e-6)


def test_f_scores_and_r2_in_fit_as_keras():
    # compiled metrics: History values as Keras's (a per-class F1 is an array)
    import fastdense as keras
    r = np.random.default_rng(0)  # (the draws of the standalone data first)
    r.integers(0, 4, 50), r.random((50, 4)), r.random(50)
    r.normal(size=(40, 3)), r.normal(size=(40, 3))
    x = r.normal(size=(64, 5)).astype("float32")
    y = np.eye(3)[r.integers(0, 3, 64)].astype("float32")
    m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax",
                                                                kernel_initializer="ones")])
    m.compile("sgd", "categorical_crossentropy",
              metrics=[keras.metrics.F1Score(average="macro"), keras.metrics.R2Score()])
    h = m.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False).history
    np.testing.assert_allclose(h["f1_score"], [0.45895, 0.36253], atol=1e-5)
    np.testing.assert_allclose(h["r2_score"], [-0.03531, -0.03216], atol=1e-5)
    np.testing.assert_allclose(h["loss"], [1.09848, 1.09545], atol=1e-5)
    m2 = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax",
                                                                 kernel_initializer="ones")])
    m2.compile("sgd", "categorical_crossentropy", metrics=[keras.metrics.F1Score()])
    h = m2.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False).history
    np.testing.assert_allclose(h["f1_score"][0], [0.42857, 0.44828, 0.5], atol=1e-5)
    loss, f1 = m2.evaluate(x, y, verbose=0)
    assert np.shape(f1) == (3,) and isinstance(loss, float)


def test_f_score_and_r2_arguments_raise_as_keras():
    from fastdense import metrics
    with pytest.raises(ValueError, match="Invalid `average`"):
        metrics.F1Score(average="sum")
    with pytest.raises(ValueError, match="Invalid `beta`.*Python float"):
        metrics.FBetaScore(beta=2)
    with pytest.raises(ValueError, match="0 < threshold <= 1"):
        metrics.F1Score(threshold=1.5)
    with pytest.raises(ValueError, match="class_aggregation"):
        metrics.R2Score(class_aggregation="sum")
    assert type(metrics.get("f1_score")) is metrics.F1Score
    assert type(metrics.get("R2Score")) is metrics.R2Score


def test_serialize_and_deserialize_as_keras():
    """Keras 3.15.1's metrics.serialize of AUC(num_thresholds=50), MAE() and
    the binary_accuracy function, and deserialize back."""
    from fastdense import metrics as M
    auc = M.serialize(M.AUC(num_thresholds=50))
    assert auc["module"] == "keras.metrics" and auc["class_name"] == "AUC"
    assert auc["registered_name"] is None and auc["config"]["num_thresholds"] == 50
    back = M.deserialize(auc)
    assert type(back) is M.AUC and back.num_thresholds == 50
    assert M.serialize(M.binary_accuracy) == {
        "module": "builtins", "class_name": "function", "config": "binary_accuracy",
        "registered_name": "function"}
    assert M.deserialize(M.serialize(M.binary_accuracy)) is M.binary_accuracy
    assert type(M.deserialize("mae")) is M.MeanAbsoluteError  # (as metrics.get("mae"))
    mine = lambda y, p: p  # noqa: E731
    assert M.deserialize("mine", custom_objects={"mine": mine}) is mine


# real Keras 3.15.1 (JAX): the metric updated with (y[:150], p[:150]) then
# (y[150:], p[150:], sample_weight=sw[150:]) for the data of _sens_data(), and
# (default num_thresholds) with class_id=1 on the 3-class data
SENS_GOLDENS = [
    ("SensitivityAtSpecificity", 0.6, {}, 0.7869835495948792, 0.3883495032787323),
    ("SensitivityAtSpecificity", 0.6, {"num_thresholds": 1}, 0.7424193620681763, None),
    ("SensitivityAtSpecificity", 0.6, {"num_thresholds": 10}, 0.6503236293792725, None),
    ("SpecificityAtSensitivity", 0.7, {}, 0.7198953032493591, 0.3502538204193115),
    ("SpecificityAtSensitivity", 0.7, {"num_thresholds": 1}, 0.6650123596191406, None),
    ("SpecificityAtSensitivity", 0.7, {"num_thresholds": 10}, 0.5913918614387512, None),
    ("PrecisionAtRecall", 0.5, {}, 0.8406236171722412, 0.3788546323776245),
    ("PrecisionAtRecall", 0.5, {"num_thresholds": 1}, 0.5253774523735046, None),
    ("PrecisionAtRecall", 0.5, {"num_thresholds": 10}, 0.818516731262207, None),
    ("RecallAtPrecision", 0.6, {}, 0.6460013389587402, 0.0),
    ("RecallAtPrecision", 0.6, {"num_thresholds": 1}, 0.0, None),
    ("RecallAtPrecision", 0.6, {"num_thresholds": 10}, 0.5313578844070435, None),
    ("RecallAtPrecision", 0.99, {}, 0.4186893701553345, 0.0),
    ("RecallAtPrecision", 0.99, {"num_thresholds": 10}, 0.2686057388782501, None),
]


def _sens_data():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.4).astype(np.float32)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1).astype(np.float32)
    sw = rng.random(300).astype(np.float32)
    y2 = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 300)]
    p2 = rng.dirichlet(np.ones(3), 300).astype(np.float32)
    return y, p, sw, y2, p2


@pytest.mark.parametrize("cls,value,kw,want,want_class", SENS_GOLDENS)
def test_sensitivity_specificity_family_matches_real_keras(cls, value, kw, want, want_class):
    from fastdense import metrics as M
    y, p, sw, y2, p2 = _sens_data()
    m = getattr(M, cls)(value, **kw)
    m.update_state(y[:150], p[:150])
    m.update_state(y[150:], p[150:], sample_weight=sw[150:])
    assert float(m.result()) == pytest.approx(want, rel=1e-6, abs=1e-7)
    if want_class is not None:
        c = getattr(M, cls)(value, class_id=1)
        c.update_state(y2, p2)
        assert float(c.result()) == pytest.approx(want_class, rel=1e-6, abs=1e-7)
    cfg = m.get_config()
    arg = {"SensitivityAtSpecificity": "specificity", "SpecificityAtSensitivity": "sensitivity",
           "PrecisionAtRecall": "recall", "RecallAtPrecision": "precision"}[cls]
    assert cfg[arg] == value and cfg["num_thresholds"] == kw.get("num_thresholds", 200)
    assert type(M.deserialize(M.serialize(m))) is type(m)
    m.reset_state()
    assert float(m.result()) == 0.0
    with pytest.raises(ValueError, match=f"`{arg}` must be in the range"):
        getattr(M, cls)(1.5)
    with pytest.raises(ValueError, match="num_thresholds"):
        getattr(M, cls)(0.5, num_thresholds=0)


def test_precision_at_recall_in_fit():
    import fastdense as fdm
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(np.float32)
    m = fdm.Sequential([fdm.Input((4,)), fdm.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy",
              metrics=[fdm.metrics.PrecisionAtRecall(0.8, name="p_at_r")])
    h = m.fit(x, y, epochs=3, batch_size=50, verbose=0, validation_data=(x, y)).history
    assert set(h) == {"loss", "p_at_r", "val_loss", "val_p_at_r"}
    ev = m.evaluate(x, y, verbose=0, return_dict=True)
    ref = fdm.metrics.PrecisionAtRecall(0.8)
    ref.update_state(y, m.predict(x, verbose=0))
    assert ev["p_at_r"] == pytest.approx(float(ref.result()), rel=1e-6)



def test_correlation_metrics_match_real_keras():
    """Real Keras 3.15.1 (JAX): updated with (y[:20], p[:20]) then (y[20:],
    p[20:], sample_weight=sw[20:]); and with axis=0 on all the data."""
    from fastdense import metrics as M
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 5)).astype(np.float32)
    p = (y * 0.5 + rng.normal(size=(40, 5))).astype(np.float32)
    sw = rng.random(40).astype(np.float32)
    for cls, want, want_axis0 in ((M.PearsonCorrelation, 0.35608410835266113, 0.3601643443107605),
                                  (M.ConcordanceCorrelation, 0.25308841466903687,
                                   0.3514247536659241)):
        m = cls()
        m.update_state(y[:20], p[:20])
        m.update_state(y[20:], p[20:], sample_weight=sw[20:])
        assert float(m.result()) == pytest.approx(want, rel=1e-6)
        m0 = cls(axis=0)
        m0.update_state(y, p)
        assert float(m0.result()) == pytest.approx(want_axis0, rel=1e-6)
        assert cls().get_config() == {"name": cls().name, "dtype": "float32", "axis": -1}
        assert type(M.get(cls().name)) is cls
    # perfectly correlated rows: 1
    np.testing.assert_allclose(M.pearson_correlation(y, 3 * y + 1), 1.0, rtol=1e-5)
