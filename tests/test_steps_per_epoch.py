"""fit(steps_per_epoch=...), fit(validation_steps=...) and evaluate(steps=...)
with Keras 3's semantics for array inputs (keras/src/trainers/epoch_iterator.py
and data_adapters/array_data_adapter.py):

* an epoch of ``steps_per_epoch`` batches goes on where the previous epoch
  stopped, in the same pass over the data (same shuffle); a new pass, with a
  new shuffle, starts once every batch has been used;
* an epoch that reaches the end of the pass before ``steps_per_epoch``
  batches ends early with Keras's "Your input ran out of data" warning
  (training goes on with the next epoch, from a new pass);
* without ``batch_size``, the batch size is ``ceil(samples / steps)``;
* the progress bar's target and ``callback.params["steps"]`` are
  ``steps_per_epoch``; History holds each epoch's averages over its batches;
* ``validation_steps`` / ``evaluate(steps=...)`` use the first batches only,
  the same ones every time.

The side-by-side checks against real Keras (``test_keras_parity_*``) skip when
keras is not installed.
"""
import os
import warnings

import numpy as np
import pytest

import fastdense as fd
from fastdense import ops

N = 10
X = np.arange(N, dtype="float32").reshape(-1, 1)  # sample i has loss i**2 below
Y = np.zeros((N, 1), "float32")
RAN_OUT = "Your input ran out of data"


def _identity_model(lib=fd, loss="mse", lr=0.0, metrics=None):
    """Dense(1) with kernel 1 and no bias, never updated (lr=0): the mse of
    sample i is i**2, so each logged loss tells which samples were seen."""
    m = lib.Sequential([lib.Input((1,)), lib.layers.Dense(1, use_bias=False,
                                                         kernel_initializer="ones")])
    m.compile(lib.optimizers.SGD(lr), loss, metrics=metrics)
    return m


def _py_mse(y_true, y_pred):  # a custom loss: the per-batch Python path
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def _mean_sq(idx):
    return float(np.mean(np.square(np.asarray(idx, dtype=np.float64))))


def _fit(m, *args, **kwargs):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        h = m.fit(*args, **kwargs)
    return h, [x for x in w if RAN_OUT in str(x.message)]


class _Recorder(fd.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.epochs = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, list(self.batches)))
        self.batches.clear()


@pytest.mark.parametrize("loss", ["mse", _py_mse], ids=["native", "python"])
def test_epochs_continue_where_the_previous_stopped(loss):
    # 5 batches of 2; 2 per epoch: [0, 1], [2, 3], [4] + warning, then a new pass
    m = _identity_model(loss=loss)
    h, ran_out = _fit(m, X, Y, batch_size=2, epochs=4, steps_per_epoch=2, shuffle=False,
                      verbose=0)
    expected = [_mean_sq(range(0, 4)), _mean_sq(range(4, 8)), _mean_sq(range(8, 10)),
                _mean_sq(range(0, 4))]
    assert expected == [3.5, 31.5, 72.5, 3.5]
    np.testing.assert_allclose(h.history["loss"], expected, rtol=1e-6)
    assert len(ran_out) == 1  # only the epoch that reached the end of the data
    assert ran_out[0].category is UserWarning
    assert ran_out[0].filename == __file__  # points at the fit call


@pytest.mark.parametrize("loss", ["mse", _py_mse], ids=["native", "python"])
def test_more_steps_than_batches_warns_every_epoch_and_trains_every_batch(loss):
    m = _identity_model(loss=loss)
    rec = _Recorder()
    h, ran_out = _fit(m, X, Y, batch_size=2, epochs=3, steps_per_epoch=7, shuffle=False,
                      verbose=0, callbacks=[rec])
    np.testing.assert_allclose(h.history["loss"], [28.5] * 3, rtol=1e-6)
    assert len(ran_out) == 3
    assert rec.epochs == [(e, [0, 1, 2, 3, 4]) for e in range(3)]
    assert rec.params["steps"] == 7


def test_batch_numbers_restart_at_zero_each_epoch_and_params_steps():
    m = _identity_model()
    rec = _Recorder()
    _fit(m, X, Y, batch_size=2, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0,
         callbacks=[rec])
    assert rec.params["steps"] == 2
    assert rec.epochs == [(0, [0, 1]), (1, [0, 1]), (2, [0])]


def test_steps_without_batch_size_sets_the_batch_size():
    # Keras: batch_size = ceil(10 / 3) = 4 -> batches of 4, 4, 2
    m = _identity_model()
    seen = []
    cb = fd.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["loss"]))
    h, ran_out = _fit(m, X, Y, epochs=2, steps_per_epoch=3, shuffle=False, verbose=0,
                      callbacks=[cb])
    assert not ran_out
    np.testing.assert_allclose(seen[:3], [_mean_sq(range(4)), _mean_sq(range(8)),
                                          _mean_sq(range(10))], rtol=1e-6)
    np.testing.assert_allclose(h.history["loss"], [28.5, 28.5], rtol=1e-6)


@pytest.mark.parametrize("spe", [0, 5, None])
def test_zero_or_a_full_pass_is_the_default(spe):
    m = _identity_model()
    h, ran_out = _fit(m, X, Y, batch_size=2, epochs=2, steps_per_epoch=spe, shuffle=False,
                      verbose=0)
    assert not ran_out
    np.testing.assert_allclose(h.history["loss"], [28.5, 28.5], rtol=1e-6)


@pytest.mark.parametrize("arg", ["steps_per_epoch", "validation_steps"])
@pytest.mark.parametrize("value", [-1, 2.0, "3", True])
def test_invalid_steps_are_rejected(arg, value):
    m = _identity_model()
    with pytest.raises(ValueError, match=f"Argument `{arg}` must be a positive integer or "
                                         f"None. Received: {arg}="):
        m.fit(X, Y, epochs=1, verbose=0, validation_data=(X, Y), **{arg: value})
    with pytest.raises(ValueError, match="Argument `steps` must be"):
        m.evaluate(X, Y, steps=value, verbose=0)


def test_numpy_integer_steps_are_accepted():
    m = _identity_model()
    h, _ = _fit(m, X, Y, batch_size=2, epochs=1, steps_per_epoch=np.int64(2), shuffle=False,
                verbose=0)
    assert h.history["loss"] == [pytest.approx(3.5)]


@pytest.mark.parametrize("loss", ["mse", _py_mse], ids=["native", "python"])
def test_shuffled_epochs_share_one_permutation_per_pass(loss):
    # 5 batches of 2 samples, 2 per epoch: epochs 1-3 and 4-6 are each one
    # pass, so each covers every sample exactly once
    fd.utils.set_random_seed(3)
    m = _identity_model(loss=loss)
    h, ran_out = _fit(m, X, Y, batch_size=2, epochs=6, steps_per_epoch=2, shuffle=True,
                      verbose=0)
    losses = np.asarray(h.history["loss"])
    total = float(np.sum(np.square(np.arange(N))))  # 285
    assert losses[0] * 4 + losses[1] * 4 + losses[2] * 2 == pytest.approx(total)
    assert losses[3] * 4 + losses[4] * 4 + losses[5] * 2 == pytest.approx(total)
    assert len(ran_out) == 2
    # and the two passes are shuffled differently (probability ~1 for this seed)
    assert not np.allclose(losses[:3], losses[3:])


@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
@pytest.mark.parametrize("loss", ["mse", _py_mse], ids=["native", "python"])
def test_steps_per_epoch_splits_one_pass_over_epochs(opt, loss):
    # 10 batches, 2 per epoch, 5 epochs, no shuffle: the same updates in the
    # same order (optimizer state carried over) as one plain epoch
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5)).astype("float32")
    y = rng.normal(size=(80, 2)).astype("float32")
    weights = []
    for kwargs in (dict(epochs=5, steps_per_epoch=2), dict(epochs=1)):
        fd.utils.set_random_seed(1)
        m = fd.Sequential([fd.Input((5,)), fd.layers.Dense(8, activation="tanh"),
                           fd.layers.Dense(2)])
        o = fd.optimizers.SGD(0.05, momentum=0.9) if opt == "sgd_momentum" else \
            fd.optimizers.Adam(0.01)
        m.compile(o, loss)
        h, ran_out = _fit(m, x, y, batch_size=8, shuffle=False, verbose=0, **kwargs)
        assert not ran_out
        weights.append(m.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_python_metrics_follow_the_epoch_batches():
    # a metric without a native kernel is updated from the recorded predictions
    m = _identity_model(metrics=["mae", fd.metrics.MeanAbsoluteError(name="mae2")])
    h, _ = _fit(m, X, Y, batch_size=2, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h.history["mae"], [1.5, 5.5, 8.5], rtol=1e-6)
    np.testing.assert_allclose(h.history["mae2"], [1.5, 5.5, 8.5], rtol=1e-6)


def test_stop_training_in_the_last_batch_does_not_warn():
    m = _identity_model()

    class Stop(fd.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    h, ran_out = _fit(m, X, Y, batch_size=4, epochs=3, steps_per_epoch=5, shuffle=False,
                      verbose=0, callbacks=[Stop()])
    assert not ran_out and len(h.history["loss"]) == 1


def test_progress_bar_target_is_steps_per_epoch(capsys):
    m = _identity_model()
    _fit(m, X, Y, batch_size=2, epochs=2, steps_per_epoch=2, shuffle=False, verbose=1)
    out = capsys.readouterr().out
    assert "2/2" in out and "5/5" not in out
    _fit(m, X, Y, batch_size=2, epochs=1, steps_per_epoch=2, shuffle=False, verbose=2)
    assert "2/2" in capsys.readouterr().out


# ---------------------------------------------------------------- validation
XV = np.arange(10, 20, dtype="float32").reshape(-1, 1)
YV = np.zeros((10, 1), "float32")


@pytest.mark.parametrize("loss", ["mse", _py_mse], ids=["native", "python"])
@pytest.mark.parametrize("vsteps,vbs,bs,expected,warns", [
    (2, None, 2, _mean_sq(range(10, 14)), 0),     # the first 2 batches of 2, every epoch
    (7, None, 2, _mean_sq(range(10, 20)), 2),     # fewer batches: all, and a warning
    (3, None, None, _mean_sq(range(10, 20)), 0),  # batch size ceil(10 / 3) = 4
    (2, 3, 2, _mean_sq(range(10, 16)), 0),        # validation_batch_size
    (1, None, None, _mean_sq(range(10, 20)), 0),  # batch size 10
    (None, None, 4, _mean_sq(range(10, 20)), 0),
])
def test_validation_steps(loss, vsteps, vbs, bs, expected, warns):
    m = _identity_model(loss=loss)
    h, ran_out = _fit(m, X, Y, batch_size=bs, epochs=2, validation_data=(XV, YV),
                      validation_steps=vsteps, validation_batch_size=vbs, shuffle=False,
                      verbose=0)
    np.testing.assert_allclose(h.history["val_loss"], [expected] * 2, rtol=1e-6)
    np.testing.assert_allclose(h.history["loss"], [28.5, 28.5], rtol=1e-6)
    assert len(ran_out) == warns


def test_validation_steps_with_split_and_sample_weights():
    x = np.arange(20, dtype="float32").reshape(-1, 1)
    y = np.zeros((20, 1), "float32")
    sw = np.where(np.arange(20) % 2 == 0, 2.0, 0.5).astype("float32")
    m = _identity_model()
    h, _ = _fit(m, x, y, batch_size=2, epochs=1, validation_split=0.5, validation_steps=2,
                sample_weight=sw, shuffle=False, verbose=0)
    vals = np.arange(10, 14)  # the last half, first 2 batches of 2
    expected = float(np.mean(np.square(vals) * sw[10:14]))
    assert h.history["val_loss"] == [pytest.approx(expected, rel=1e-6)]


@pytest.mark.parametrize("loss", ["mse", _py_mse], ids=["native", "python"])
@pytest.mark.parametrize("steps,bs,expected,warns", [
    (2, 2, 3.5, 0), (3, None, 28.5, 0), (7, 2, 28.5, 1), (0, 2, 28.5, 0), (None, None, 28.5, 0),
    (1, None, 28.5, 0), (2, None, 28.5, 0), (1, 3, _mean_sq(range(3)), 0),
])
def test_evaluate_steps(loss, steps, bs, expected, warns):
    m = _identity_model(loss=loss, metrics=["mae"])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = m.evaluate(X, Y, batch_size=bs, steps=steps, verbose=0, return_dict=True)
    assert out["loss"] == pytest.approx(expected, rel=1e-6)
    assert len([x for x in w if RAN_OUT in str(x.message)]) == warns


def test_evaluate_steps_progress_bar(capsys):
    m = _identity_model()
    m.evaluate(X, Y, batch_size=2, steps=2, verbose=1)
    out = capsys.readouterr().out
    assert "2/2" in out and "5/5" not in out


# ------------------------------------------------------ side by side with Keras
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("spe,bs,epochs", [(2, 2, 4), (7, 2, 3), (3, None, 2), (0, 2, 2),
                                           (5, 2, 2), (3, 2, 5), (4, 3, 3)])
def test_keras_parity_steps_per_epoch_history(spe, bs, epochs):
    keras = _keras()
    results = []
    for lib in (keras, fd):
        m = _identity_model(lib)
        seen, steps = [], []

        class Rec(lib.callbacks.Callback):
            def on_train_begin(self, logs=None):
                steps.append(self.params["steps"])

            def on_train_batch_end(self, batch, logs=None):
                seen.append((batch, float(logs["loss"])))

        h, ran_out = _fit(m, X, Y, batch_size=bs, epochs=epochs, steps_per_epoch=spe,
                          shuffle=False, verbose=0, callbacks=[Rec()])
        results.append((h.history["loss"], seen, steps, len(ran_out)))
    (kh, ks, kst, kw), (fh, fs, fst, fw) = results
    np.testing.assert_allclose(fh, kh, rtol=1e-6)
    assert [b for b, _ in fs] == [b for b, _ in ks]
    np.testing.assert_allclose([v for _, v in fs], [v for _, v in ks], rtol=1e-6)
    assert fst == kst and fw == kw


@pytest.mark.parametrize("opt", ["adam", "sgd_momentum"])
def test_keras_parity_steps_per_epoch_training(opt):
    # a real network, 7 batches per pass and 3 per epoch (3 + 3 + 1 + warning, ...)
    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 100)]
    xv = rng.normal(size=(40, 6)).astype("float32")
    yv = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    w0, out = None, []
    for lib in (keras, fd):
        m = lib.Sequential([lib.Input((6,)), lib.layers.Dense(16, activation="relu"),
                            lib.layers.Dense(3, activation="softmax")])
        if w0 is None:
            w0 = [np.array(v) for v in m.get_weights()]
        m.set_weights(w0)
        o = lib.optimizers.Adam(0.01) if opt == "adam" else lib.optimizers.SGD(0.1, momentum=0.9)
        m.compile(o, "categorical_crossentropy", metrics=["accuracy"])
        h, ran_out = _fit(m, x, y, batch_size=16, epochs=6, steps_per_epoch=3, shuffle=False,
                          verbose=0, validation_data=(xv, yv), validation_steps=2)
        ev = m.evaluate(xv, yv, batch_size=8, steps=3, verbose=0)
        out.append((h.history, [np.array(v) for v in m.get_weights()], len(ran_out), ev))
    (kh, kw, kn, ke), (fh, fw, fn, fe) = out
    assert sorted(kh) == sorted(fh) and kn == fn == 2
    for k in kh:
        np.testing.assert_allclose(fh[k], kh[k], rtol=2e-4, atol=1e-5, err_msg=k)
    for a, b in zip(fw, kw):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fe, ke, rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("vsteps,vbs,bs", [(2, None, 2), (7, None, 2), (3, None, None),
                                           (2, 3, 2), (None, None, None)])
def test_keras_parity_validation_steps(vsteps, vbs, bs):
    keras = _keras()
    res = []
    for lib in (keras, fd):
        m = _identity_model(lib)
        h, ran_out = _fit(m, X, Y, batch_size=bs, epochs=2, validation_data=(XV, YV),
                          validation_steps=vsteps, validation_batch_size=vbs, shuffle=False,
                          verbose=0)
        res.append((h.history, len(ran_out)))
    (kh, kn), (fh, fn) = res
    assert kn == fn
    for k in kh:
        np.testing.assert_allclose(fh[k], kh[k], rtol=1e-6, err_msg=k)


@pytest.mark.parametrize("steps,bs", [(2, 2), (3, None), (7, 2), (0, 2), (None, None), (1, 3)])
def test_keras_parity_evaluate_steps(steps, bs):
    keras = _keras()
    res = []
    for lib in (keras, fd):
        m = _identity_model(lib)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            v = m.evaluate(X, Y, batch_size=bs, steps=steps, verbose=0)
        res.append((v, len([x for x in w if RAN_OUT in str(x.message)])))
    assert res[1][0] == pytest.approx(res[0][0], rel=1e-6)
    assert res[1][1] == res[0][1]


def test_predict_steps_takes_the_first_batches_as_keras():
    # Keras's array adapter: `steps` batches of batch_size (default: ceil(n / steps)),
    # all the data with the "ran out of data" warning when there are fewer
    import warnings
    from fastdense import layers, models
    m = models.Sequential([layers.Input((4,)), layers.Dense(3)])
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    full = m.predict(x, verbose=0)
    np.testing.assert_array_equal(m.predict(x, steps=2, batch_size=10, verbose=0), full[:20])
    assert m.predict(x, steps=3, verbose=0).shape == (100, 3)  # batches of 34
    assert m.predict(x, steps=0, verbose=0).shape == (100, 3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = m.predict(x, steps=20, batch_size=10, verbose=0)
    assert out.shape == (100, 3) and any("ran out of data" in str(i.message) for i in w)
    with pytest.raises(ValueError, match="`steps`"):
        m.predict(x, steps=-1, verbose=0)
