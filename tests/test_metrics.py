"""Tests for the native metric sums (fastdense._core.metric_sum) and fastdense.metrics.

Goldens marked "Keras accuracy_metrics_test.py" come from Keras 3.15.1,
keras/src/metrics/accuracy_metrics_test.py (keras-team/keras), compared with
the tolerance Keras uses there (atol=1e-3).  Goldens marked "real Keras" were
produced by running Keras 3.15.1 (JAX backend) here; see tests/goldens/README.
Nothing here imports keras.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastdense import _core
from fastdense import metrics as M

CAT, SPARSE, BINARY = 0, 1, 2
F32 = np.float32


def metric_sum(kind, y_pred, y_true=None, labels=None, threshold=0.5):
    y_pred = np.ascontiguousarray(y_pred, F32)
    if y_true is not None:
        y_true = np.ascontiguousarray(y_true, F32)
    if labels is not None:
        labels = np.ascontiguousarray(labels, np.int32)
    return _core.metric_sum(kind, y_pred, y_true, labels, threshold)


# ----------------------------------------------------- native: Keras goldens
def test_core_binary_accuracy_keras_goldens():
    # Keras accuracy_metrics_test.py BinaryAccuracyTest.test_unweighted
    yt, yp = [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]
    assert metric_sum(BINARY, yp, yt) / 4 == pytest.approx(0.75, abs=1e-3)
    # test_threshold: 0.3 -> 1.0, 0.9 -> 0.75
    yp = [[0.98], [0.5], [0.1], [0.2]]
    assert metric_sum(BINARY, yp, yt, threshold=0.3) / 4 == pytest.approx(1.0, abs=1e-3)
    assert metric_sum(BINARY, yp, yt, threshold=0.9) / 4 == pytest.approx(0.75, abs=1e-3)
    # 2-D targets: per-sample mean over the outputs (y_true [[1,1],[0,0]]: 1 and 1/2)
    assert metric_sum(BINARY, [[0.98, 1], [0, 0.6]], [[1, 1], [0, 0]]) == pytest.approx(1.5)


def test_core_categorical_accuracy_keras_golden():
    # Keras accuracy_metrics_test.py CategoricalAccuracyTest.test_unweighted
    s = metric_sum(CAT, [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], [[0, 0, 1], [0, 1, 0]])
    assert s / 2 == pytest.approx(0.5, abs=1e-3)


def test_core_sparse_categorical_accuracy_keras_goldens():
    # Keras accuracy_metrics_test.py SparseCategoricalAccuracyTest.test_unweighted
    s = metric_sum(SPARSE, [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], labels=[2, 1])
    assert s / 2 == pytest.approx(0.5, abs=1e-3)
    # test_squeeze_y_true / test_matching_shapes_without_squeeze: 100% accurate
    assert metric_sum(SPARSE, [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
                      labels=[0, 1, 2]) == 3.0
    assert metric_sum(SPARSE, [[0, 0, 1], [0, 1, 0], [1, 0, 0]], labels=[2, 1, 0]) == 3.0


# --------------------------------------------- native vs numpy references
@pytest.mark.parametrize("B,U", [(1, 1), (1, 5), (7, 2), (64, 10), (33, 1)])
def test_core_metrics_match_numpy(B, U):
    rng = np.random.default_rng([B, U])
    y = rng.random((B, U)).astype(F32)
    labels = rng.integers(0, U, B).astype(np.int32)
    onehot = np.eye(U, dtype=F32)[labels]
    want_cat = np.sum(np.argmax(onehot, 1) == np.argmax(y, 1))
    assert metric_sum(CAT, y, onehot) == want_cat
    assert metric_sum(SPARSE, y, labels=labels) == want_cat
    assert metric_sum(CAT, y, onehot) == pytest.approx(
        float(M.categorical_accuracy(onehot, y).sum()))
    assert metric_sum(SPARSE, y, labels=labels) == pytest.approx(
        float(M.sparse_categorical_accuracy(labels, y).sum()))
    t = rng.integers(0, 2, (B, U)).astype(F32)
    for thr in (0.1, 0.5, 0.77):
        want = np.mean(t == (y > thr), axis=1).sum()
        assert metric_sum(BINARY, y, t, threshold=thr) == pytest.approx(want, rel=1e-6)
        assert metric_sum(BINARY, y, t, threshold=thr) == pytest.approx(
            float(M.binary_accuracy(t, y, threshold=thr).mean(axis=-1).sum()), rel=1e-6)


def test_core_argmax_ties_pick_first_index_like_numpy():
    y = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [1.0, 1.0, 1.0]], F32)
    assert metric_sum(SPARSE, y, labels=[0, 1, 0]) == 3.0
    assert metric_sum(SPARSE, y, labels=[1, 2, 2]) == 0.0
    # the target's argmax also takes the first maximum
    assert metric_sum(CAT, y, [[1, 1, 0], [0, 1, 1], [1, 1, 1]]) == 3.0


def test_core_binary_threshold_is_strict():
    # y_pred > threshold (not >=): a prediction equal to the threshold is class 0.
    assert metric_sum(BINARY, [[0.5], [0.5]], [[0], [1]]) == 1.0
    assert metric_sum(BINARY, [[0.3]], [[0]], threshold=0.3) == 1.0
    # soft targets never match the 0/1 prediction
    assert metric_sum(BINARY, [[0.9], [0.1]], [[0.9], [0.1]]) == 0.0


def test_core_metric_argument_validation():
    y = np.full((2, 3), 0.3, F32)
    with pytest.raises(ValueError, match="labels"):
        _core.metric_sum(SPARSE, y, None, np.array([0, 3], np.int32), 0.5)
    with pytest.raises(ValueError, match="targets"):
        _core.metric_sum(SPARSE, y, y, None, 0.5)
    with pytest.raises(ValueError, match="targets"):
        _core.metric_sum(CAT, y, None, np.array([0, 1], np.int32), 0.5)
    with pytest.raises(ValueError, match="metric code"):
        _core.metric_sum(3, y, y, None, 0.5)
    with pytest.raises(ValueError, match="shape"):
        _core.metric_sum(BINARY, y, np.zeros((3, 3), F32), None, 0.5)


# --------------------------------------------- metric objects: Keras goldens
# Keras accuracy_metrics_test.py: (metric factory, y_true, y_pred, sample_weight, expected)
OBJECT_GOLDENS = {
    "accuracy_unweighted": (M.Accuracy, [[1], [2], [3], [4]], [[0], [2], [3], [4]], None, 0.75),
    "accuracy_weighted": (M.Accuracy, [[1], [2], [3], [4]], [[0], [2], [3], [4]],
                          [1, 1, 0, 0], 0.5),
    "accuracy_weighted_rank_1": (M.Accuracy, [1, 2, 3, 4], [0, 2, 3, 4], [1, 1, 0, 0], 0.5),
    "binary_unweighted": (M.BinaryAccuracy, [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]],
                          None, 0.75),
    "binary_unweighted_broadcast": (M.BinaryAccuracy, [1, 1, 0, 0],
                                    [[0.98], [1], [0], [0.6]], None, 0.75),
    "binary_weighted": (M.BinaryAccuracy, [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]],
                        [1, 0, 0, 1], 0.5),
    "binary_threshold_0.3": (lambda: M.BinaryAccuracy(threshold=0.3), [[1], [1], [0], [0]],
                             [[0.98], [0.5], [0.1], [0.2]], None, 1.0),
    "binary_threshold_0.9": (lambda: M.BinaryAccuracy(threshold=0.9), [[1], [1], [0], [0]],
                             [[0.98], [0.5], [0.1], [0.2]], None, 0.75),
    "categorical_unweighted": (M.CategoricalAccuracy, [[0, 0, 1], [0, 1, 0]],
                               [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], None, 0.5),
    "categorical_weighted": (M.CategoricalAccuracy, [[0, 0, 1], [0, 1, 0]],
                             [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], [0.7, 0.3], 0.3),
    "sparse_unweighted": (M.SparseCategoricalAccuracy, [[2], [1]],
                          [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], None, 0.5),
    "sparse_weighted": (M.SparseCategoricalAccuracy, [[2], [1]],
                        [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], [0.7, 0.3], 0.3),
    "sparse_squeeze_y_true": (M.SparseCategoricalAccuracy, [[0], [1], [2]],
                              [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
                              None, 1.0),
    "sparse_cast_y_pred_dtype": (M.SparseCategoricalAccuracy, np.array([0, 1], np.int64),
                                 np.array([[0.9, 0.1], [0.1, 0.9]], F32), None, 1.0),
    "sparse_float64_pred": (M.SparseCategoricalAccuracy, np.array([0, 1, 2], np.int32),
                            np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.1, 0.0, 0.9]]),
                            None, 1.0),
    "sparse_matching_shapes": (M.SparseCategoricalAccuracy, np.array([2, 1, 0], np.int32),
                               np.eye(3, dtype=F32)[::-1], None, 1.0),
}


@pytest.mark.parametrize("case", list(OBJECT_GOLDENS))
def test_metric_objects_keras_goldens(case):
    make, yt, yp, sw, want = OBJECT_GOLDENS[case]
    m = make()
    m.update_state(np.array(yt), np.array(yp),
                   sample_weight=None if sw is None else np.array(sw))
    np.testing.assert_allclose(m.result(), want, atol=1e-3)


# Keras accuracy_metrics_test.py cases with element-wise (rank-2) and rank-1
# sample weights (these once failed: Mean.update_state could not take them, and
# binary_accuracy averaged over the last axis where Keras 3 is element-wise).
ND_WEIGHT_GOLDENS = {
    "accuracy_weighted_nd_weights": (M.Accuracy, [[1, 2], [3, 4]], [[0, 2], [3, 4]],
                                     [[1, 0], [0, 1]], 0.5),
    "accuracy_weighted_nd_broadcast_weights": (M.Accuracy, [[1, 2], [3, 4]], [[0, 2], [3, 4]],
                                               [[1, 0]], 0.5),
    "binary_weighted_rank_1": (M.BinaryAccuracy, [1, 1, 0, 0], [0.98, 1, 0, 0.6],
                               [1, 0, 0, 1], 0.5),
    "binary_weighted_nd_weights": (M.BinaryAccuracy, [[1, 1], [0, 0]], [[0.98, 1], [0, 0.6]],
                                   [[1, 0], [0, 1]], 0.5),
    "binary_weighted_nd_broadcast_weights": (M.BinaryAccuracy, [[1, 1], [0, 0]],
                                             [[0.98, 1], [0, 0.6]], [[1, 0]], 1.0),
}


@pytest.mark.parametrize("case", list(ND_WEIGHT_GOLDENS))
def test_metric_objects_keras_goldens_nd_weights(case):
    make, yt, yp, sw, want = ND_WEIGHT_GOLDENS[case]
    m = make()
    m.update_state(np.array(yt), np.array(yp), sample_weight=np.array(sw))
    np.testing.assert_allclose(m.result(), want, atol=1e-3)


def test_binary_accuracy_rank1_batches_accumulate_per_sample():
    # real Keras: BinaryAccuracy().update_state([1,1,0,0], [0.98,1,0,0.6]) -> 0.75;
    # then update_state([1], [1.0]) -> 0.800000011920929 (4 of 5 samples)
    m = M.BinaryAccuracy()
    m.update_state(np.array([1, 1, 0, 0]), np.array([0.98, 1, 0, 0.6]))
    np.testing.assert_allclose(m.result(), 0.75, rtol=1e-6)
    m.update_state(np.array([1]), np.array([1.0]))
    np.testing.assert_allclose(m.result(), 0.800000011920929, rtol=1e-6)


def test_accuracy_rank1_batches_accumulate_per_sample():
    # real Keras: Accuracy() over [1,2,3,4]/[0,2,3,4] then [1]/[1] -> 0.8
    m = M.Accuracy()
    m.update_state(np.array([1, 2, 3, 4]), np.array([0, 2, 3, 4]))
    m.update_state(np.array([1]), np.array([1]))
    np.testing.assert_allclose(m.result(), 0.800000011920929, rtol=1e-6)


# --------------------------------------------------- Mean and sample_weight
def test_mean_with_sample_weight_and_reset():
    # Keras reduction_metrics.Mean docstring / real Keras (tests/goldens/README)
    m = M.Mean()
    m.update_state([1.0, 3.0, 5.0, 7.0], sample_weight=[1, 1, 0, 0])
    np.testing.assert_allclose(m.result(), 2.0)
    # 2-D values are averaged per sample first: (1.5*0.5 + 3.5*2 + 2) / (2 + 2.5)
    m.update_state(np.array([[1.0, 2.0], [3.0, 4.0]]), sample_weight=np.array([0.5, 2.0]))
    np.testing.assert_allclose(m.result(), 2.6111111640930176, rtol=1e-6)
    assert m.result().dtype == np.float32
    m.reset_state()
    assert m.result() == 0.0 and m.total == 0.0 and m.count == 0.0
    m.update_state([4.0])
    np.testing.assert_allclose(m.result(), 4.0)


def test_mean_scalar_values_and_scalar_weights():
    # real Keras 3.15.1: Mean(); update_state(5.0); update_state([1., 2.], sample_weight=2.0)
    # -> total 8, count 3, result 2.6666667 (the scalar weight counts once)
    m = M.Mean()
    m.update_state(5.0)
    np.testing.assert_allclose(m.result(), 5.0)
    m.update_state([1.0, 2.0], sample_weight=2.0)
    np.testing.assert_allclose(m.result(), 2.6666667, rtol=1e-6)


def test_mean_metric_wrappers_with_sample_weight_real_keras():
    # real Keras (tests/goldens/README):
    m = M.BinaryAccuracy()
    m.update_state(np.array([[1, 0, 1], [0, 0, 1]]),
                   np.array([[0.7, 0.6, 0.2], [0.1, 0.4, 0.9]]), sample_weight=np.array([2.0, 1.0]))
    np.testing.assert_allclose(m.result(), 0.5555555820465088, rtol=1e-6)
    m = M.SparseCategoricalAccuracy()
    m.update_state(np.array([2, 1, 0]),
                   np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0], [0.5, 0.5, 0.0]]),
                   sample_weight=np.array([[0.7], [0.3], [1.0]]))
    np.testing.assert_allclose(m.result(), 0.6499999761581421, rtol=1e-6)
    m = M.CategoricalAccuracy()
    m.update_state(np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]]),
                   np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0], [0.4, 0.4, 0.2]]),
                   sample_weight=np.array([[0.7], [0.3], [2.0]]))
    np.testing.assert_allclose(m.result(), 0.7666666507720947, rtol=1e-6)
    m = M.MeanSquaredError()
    m.update_state(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 5.0]]),
                   sample_weight=np.array([1.0, 3.0]))
    np.testing.assert_allclose(m.result(), 0.5, rtol=1e-6)


def test_accumulation_across_batches_and_reset():
    m = M.SparseCategoricalAccuracy()
    m.update_state(np.array([2, 1]), np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0]]))
    m.update_state(np.array([0, 0, 0]), np.eye(3))
    np.testing.assert_allclose(m.result(), 2 / 5)
    m.reset_state()
    assert m.result() == 0.0
    m.update_state(np.array([[1]]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(m.result(), 1.0)
    # __call__ updates and returns the running result
    assert M.CategoricalAccuracy()(np.eye(2), np.eye(2)) == 1.0


def test_metric_config_and_native_codes():
    m = M.BinaryAccuracy(threshold=0.3)
    assert m.name == "binary_accuracy" and m.get_config()["threshold"] == 0.3
    assert m._native() == (BINARY, 0.3)
    assert M.CategoricalAccuracy()._native() == (CAT, 0.5)
    assert M.SparseCategoricalAccuracy()._native() == (SPARSE, 0.5)
    assert M.Accuracy()._native() is None
    assert M.MeanSquaredError()._native() is None
    cfg = M.SparseCategoricalAccuracy(name="sca").get_config()
    assert cfg["name"] == "sca" and cfg["dtype"] == "float32"
    assert M.SparseCategoricalAccuracy.from_config(cfg).name == "sca"


# ------------------------------------------------------ resolve("accuracy")
# real Keras: keras.src.trainers.compile_utils.get_metric(identifier,
# np.zeros(y_true_shape), np.zeros(y_pred_shape)) -> (class name, .name)
RESOLVE_CASES = [
    ("accuracy", (32,), (32, 1), "BinaryAccuracy", "accuracy"),
    ("accuracy", (32, 1), (32, 1), "BinaryAccuracy", "accuracy"),
    ("acc", (32, 1), (32, 10), "SparseCategoricalAccuracy", "acc"),
    ("accuracy", (32,), (32, 10), "SparseCategoricalAccuracy", "accuracy"),
    ("ACC", (32, 10), (32, 10), "CategoricalAccuracy", "ACC"),
    ("Accuracy", (8, 3), (8, 3), "CategoricalAccuracy", "Accuracy"),
    ("accuracy", (8, 5, 1), (8, 5, 4), "SparseCategoricalAccuracy", "accuracy"),
    ("accuracy", (8, 5), (8, 5, 4), "SparseCategoricalAccuracy", "accuracy"),
    ("accuracy", (8, 5, 4), (8, 5, 4), "CategoricalAccuracy", "accuracy"),
]


@pytest.mark.parametrize("ident,ts,ps,cls,name", RESOLVE_CASES)
def test_resolve_accuracy_like_keras_get_metric(ident, ts, ps, cls, name):
    m = M.resolve(ident, ts, ps)
    assert type(m).__name__ == cls
    assert m.name == name


def test_resolve_other_identifiers():
    # real Keras get_metric("mse") gives a MeanSquaredError named "mse"; fastdense
    # wraps the function instead -- same values, same name.
    m = M.resolve("mse", (3, 1), (3, 1))
    assert isinstance(m, M.MeanMetricWrapper) and m.name == "mse"
    m.update_state(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [4.0], [3.0]]))
    np.testing.assert_allclose(m.result(), 4 / 3, rtol=1e-6)
    m = M.resolve("binary_accuracy", (3, 1), (3, 1))
    assert m.name == "binary_accuracy" and m._native() == (BINARY, 0.5)
    obj = M.BinaryAccuracy(threshold=0.3, name="ba")
    r = M.resolve(obj, (3, 1), (3, 1))
    assert r is obj and r.name == "ba"

    def my_metric(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred)).mean(axis=-1)

    r = M.resolve(my_metric, (2, 1), (2, 1))
    assert isinstance(r, M.MeanMetricWrapper) and r.name == "my_metric"
    r.update_state(np.array([[1.0], [2.0]]), np.array([[0.0], [2.0]]))
    np.testing.assert_allclose(r.result(), 0.5)
    with pytest.raises(ValueError, match="no_such_metric"):
        M.resolve("no_such_metric", (2,), (2, 1))


def test_get_errors_and_lookup():
    assert M.get("categorical_accuracy") is M.categorical_accuracy
    assert isinstance(M.get("BinaryAccuracy"), M.BinaryAccuracy)
    with pytest.raises(ValueError, match="bogus"):
        M.get("bogus")
