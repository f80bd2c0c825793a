"""metrics.IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU (Keras's): the
confusion matrix against a numpy count, the results against the formula,
names, configs, in compile; side by side with Keras where it is installed."""

import numpy as np
import pytest

import fastdense as fd

M = fd.metrics


def data(seed=0, n=50):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 4, n), rng.integers(-1, 5, n), rng.integers(0, 3, n),
            rng.random((n, 4)).astype(np.float32))


def ref_iou(yt, yp, n, ids, w=None, ignore=None):
    w = np.ones(len(yt), np.int64) if w is None else w
    keep = (yt >= 0) & (yt < n) & (yp >= 0) & (yp < n)
    if ignore is not None:
        keep &= yt != ignore
    cm = np.zeros((n, n), np.int64)
    for t, p, k in zip(yt[keep], yp[keep], w[keep]):
        cm[t, p] += k
    tp = np.diag(cm).astype(np.float64)
    den = cm.sum(0) + cm.sum(1) - np.diag(cm)
    ious = [tp[i] / den[i] for i in ids if den[i] > 0]
    return np.mean(ious) if ious else 0.0


def test_iou_and_mean_iou_against_the_count():
    yt, yp, w, prob = data()
    m = M.IoU(num_classes=4, target_class_ids=[0, 2])
    m.update_state(yt[:20], yp[:20])
    m.update_state(yt[20:], yp[20:])
    assert m.result() == pytest.approx(ref_iou(yt, yp, 4, [0, 2]), rel=1e-6)
    m = M.IoU(4, [1, 3], ignore_class=2)
    m.update_state(yt, yp, sample_weight=w)
    assert m.result() == pytest.approx(ref_iou(yt, yp, 4, [1, 3], w, 2), rel=1e-6)
    m = M.MeanIoU(4, sparse_y_pred=False)
    m.update_state(yt, prob)
    assert m.result() == pytest.approx(ref_iou(yt, prob.argmax(-1), 4, range(4)), rel=1e-6)
    m.reset_state()
    assert m.result() == 0.0
    oh = M.OneHotMeanIoU(4)
    oh.update_state(np.eye(4)[yt], prob)
    assert oh.result() == pytest.approx(ref_iou(yt, prob.argmax(-1), 4, range(4)), rel=1e-6)
    one = M.OneHotIoU(4, [0, 3])
    one.update_state(np.eye(4)[yt], prob)
    assert one.result() == pytest.approx(ref_iou(yt, prob.argmax(-1), 4, [0, 3]), rel=1e-6)


def test_binary_iou_threshold_and_weights():
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 2, 40), rng.random(40).astype(np.float32)
    m = M.BinaryIoU(target_class_ids=[1], threshold=0.3)
    m.update_state(t, p)
    assert m.result() == pytest.approx(ref_iou(t, (p >= 0.3).astype(int), 2, [1]), rel=1e-6)
    with pytest.warns(UserWarning, match="passing weight as `float`"):
        M.BinaryIoU().update_state(t, p, sample_weight=np.full(40, 0.5))
    with pytest.raises(ValueError, match="does not broadcast to the 80 class ids"):
        M.BinaryIoU().update_state(np.ones((40, 2)), np.ones((40, 2)),
                                   sample_weight=np.ones(40, np.int32))


def test_names_configs_errors_and_compile():
    fd.backend.clear_session()
    assert M.MeanIoU(3).name == "mean_io_u" and M.BinaryIoU().name == "binary_io_u"
    cfg = M.IoU(3, [0, 1], name="iou").get_config()
    assert cfg["dtype"] == "int32" and cfg["target_class_ids"] == [0, 1]
    back = M.MeanIoU.from_config(M.MeanIoU(3, name="m3").get_config())
    assert (back.num_classes, back.name) == (3, "m3")
    assert M.BinaryIoU.from_config(M.BinaryIoU(threshold=0.2).get_config()).threshold == 0.2
    with pytest.raises(ValueError, match=r"Target class id 5 is out of range, which is \[0, 3\)"):
        M.IoU(3, [0, 5])
    rng = np.random.default_rng(2)
    m = fd.Sequential([fd.Input((6,)), fd.layers.Dense(4, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy",
              metrics=[M.MeanIoU(4, sparse_y_pred=False, name="miou")])
    h = m.fit(rng.normal(size=(64, 6)).astype(np.float32), rng.integers(0, 4, 64), epochs=2,
              verbose=0)
    assert len(h.history["miou"]) == 2 and 0 <= h.history["miou"][-1] <= 1


def test_side_by_side_with_keras():
    keras = pytest.importorskip("keras")
    yt, yp, w, prob = data(3)
    bt, bp = np.random.default_rng(4).integers(0, 2, (50, 1)), prob[:, :1]
    cases = [("IoU", dict(num_classes=4, target_class_ids=[0, 2]), (yt, yp), {}),
             ("IoU", dict(num_classes=4, target_class_ids=[1, 3], ignore_class=2), (yt, yp),
              {"sample_weight": w}),
             ("MeanIoU", dict(num_classes=4, sparse_y_pred=False), (yt, prob), {}),
             ("BinaryIoU", dict(target_class_ids=[1], threshold=0.3), (bt, bp),
              {"sample_weight": w}),
             ("OneHotIoU", dict(num_classes=4, target_class_ids=[0, 1, 3]), (np.eye(4)[yt], prob),
              {}),
             ("OneHotMeanIoU", dict(num_classes=4, sparse_y_pred=True), (np.eye(4)[yt], yp), {})]
    keras.backend.clear_session()
    fd.backend.clear_session()
    for name, kw, args, ukw in cases:
        k, f = getattr(keras.metrics, name)(**kw), getattr(M, name)(**kw)
        for lo, hi in ((0, 20), (20, 50)):
            part = tuple(a[lo:hi] for a in args)
            extra = {key: v[lo:hi] for key, v in ukw.items()}
            k.update_state(*part, **extra)
            f.update_state(*part, **extra)
        assert float(f.result()) == float(k.result()), name
        assert f.name == k.name and f.get_config() == k.get_config(), name
