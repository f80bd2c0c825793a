"""Reliability at the boundary: layouts and dtypes, bad input, threads."""
import threading

import numpy as np
import pytest

from fastdense import layers, models, optimizers
from fastdense.utils import set_random_seed, to_categorical


def _model(d=12, k=3, seed=0):
    set_random_seed(seed)
    m = models.Sequential([layers.Dense(16, activation="relu", input_shape=(d,)),
                           layers.Dense(k, activation="softmax")])
    m.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy",
              metrics=["accuracy"])
    return m


def _data(rng, n=96, d=12, k=3):
    x = rng.normal(size=(n, d)).astype("float32")
    y = to_categorical(rng.integers(0, k, n), k)
    return x, y


def _fit(x, y):
    m = _model()
    h = m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    return m.get_weights(), h.history


@pytest.mark.parametrize("variant", ["fortran", "strided", "readonly", "float64", "memmap",
                                     "int_labels_as_float64", "list"])
def test_layouts_and_dtypes_train_like_contiguous_float32(rng, variant, tmp_path):
    x, y = _data(rng)
    ref_w, ref_h = _fit(x, y)
    xv, yv = x, y
    if variant == "fortran":
        xv = np.asfortranarray(x)
    elif variant == "strided":
        big = np.zeros((x.shape[0] * 2, x.shape[1] * 3), np.float32)
        big[::2, ::3] = x
        xv = big[::2, ::3]
        assert not xv.flags.c_contiguous
    elif variant == "readonly":
        xv = x.copy()
        xv.setflags(write=False)
        yv = y.copy()
        yv.setflags(write=False)
    elif variant == "float64":
        xv = x.astype(np.float64)
    elif variant == "memmap":
        path = tmp_path / "x.dat"
        mm = np.memmap(path, dtype=np.float32, mode="w+", shape=x.shape)
        mm[:] = x
        mm.flush()
        xv = np.memmap(path, dtype=np.float32, mode="r", shape=x.shape)
    elif variant == "int_labels_as_float64":
        yv = y.astype(np.float64)
    elif variant == "list":
        xv, yv = x.tolist(), y.tolist()
    w, h = _fit(xv, yv)
    for a, b in zip(w, ref_w):
        np.testing.assert_array_equal(a, b)
    assert h == ref_h


def test_contiguous_float32_input_is_not_copied(rng):
    from fastdense import _data as data_checks
    x, _ = _data(rng)
    assert np.shares_memory(data_checks.features(x), x)


@pytest.mark.parametrize("bad, err, match", [
    (np.array([["a", "b"]] * 4), TypeError, "dtype"),
    (np.array([[object()] * 12] * 4, dtype=object), TypeError, "dtype"),
    (np.zeros((0, 12), np.float32), ValueError, "empty"),
    (np.zeros(12, np.float32), ValueError, "2D"),
    (np.full((4, 12), np.inf, np.float32), ValueError, "NaN or infinite"),
])
def test_bad_features(rng, bad, err, match):
    m = _model()
    with pytest.raises(err, match=match):
        m.predict(bad, verbose=0)


def test_bad_targets(rng):
    x, y = _data(rng)
    m = _model()
    with pytest.raises(ValueError, match="NaN or infinite"):
        y2 = y.copy()
        y2[0, 0] = np.nan
        m.fit(x, y2, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(samples, 3\)"):
        m.fit(x, y[:, :2], verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        m.evaluate(x, y[:10], verbose=0)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="outside"):
        m.fit(x, -np.ones(len(x)), verbose=0)
    with pytest.raises(ValueError, match="integer class ids"):
        m.fit(x, y.reshape(len(x), 3, 1), verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(x[:1], np.zeros(1), validation_split=0.5, verbose=0)


def test_models_train_in_parallel_threads_like_sequentially(rng):
    """The GIL is released in the engine: models in threads give the same
    results as one after another."""
    x, y = _data(rng, n=512)
    seq = [_fit(x, y)[0] for _ in range(4)]
    out = [None] * 4
    models_ = [_model() for _ in range(4)]

    def work(i):
        models_[i].fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        out[i] = models_[i].get_weights()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in out:
        for a, b in zip(w, seq[0]):
            np.testing.assert_array_equal(a, b)


def test_many_threads_predict_one_model(rng):
    x, y = _data(rng, n=300)
    m = _model()
    m.fit(x, y, epochs=1, verbose=0)
    expected = m.predict(x, verbose=0)
    errors = []

    def work():
        for _ in range(20):
            if not np.array_equal(m.predict(x, batch_size=7, verbose=0), expected):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_exception_in_callback_propagates_and_model_stays_usable(rng):
    from fastdense import callbacks
    x, y = _data(rng)
    m = _model()

    class Boom(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        m.fit(x, y, epochs=3, verbose=0, callbacks=[Boom()])
    h = m.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


def test_exception_in_custom_loss_propagates(rng):
    x, y = _data(rng)
    m = _model()

    def bad_loss(y_true, y_pred):
        raise ValueError("bad loss")

    m.compile(optimizer="sgd", loss=bad_loss)
    with pytest.raises(ValueError, match="bad loss"):
        m.fit(x, y, verbose=0)
    m.compile(optimizer="sgd", loss="mse")
    assert np.isfinite(m.fit(x, y, verbose=0).history["loss"][0])


def test_diverging_loss_warns_only_when_verbose(rng, capsys):
    x, y = _data(rng)
    m = models.Sequential([layers.Dense(3, input_shape=(12,))])
    m.compile(optimizer=optimizers.SGD(1e20), loss="mse")
    with pytest.warns(RuntimeWarning, match="training loss is"):
        m.fit(x * 1e6, y, epochs=3, verbose=2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verbose=0: nothing printed, as Keras
        m.fit(x * 1e6, y, epochs=3, verbose=0)
