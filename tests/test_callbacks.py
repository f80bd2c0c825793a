"""Callbacks with Keras 3's semantics (cases ported from Keras's docstrings and
callbacks tests, public API only)."""
import csv

import numpy as np
import pytest

import fastdense as fd

from fastdense import callbacks, layers, models, optimizers
from fastdense.utils import set_random_seed


def _model(opt=None, loss="mse", metrics=None, d=20, units=10):
    set_random_seed(0)
    m = models.Sequential([layers.Dense(units, input_shape=(d,))])
    m.compile(opt or optimizers.SGD(), loss=loss, metrics=metrics)
    return m


@pytest.mark.filterwarnings("ignore:Epoch .* the training loss is")
def test_early_stopping_docstring_example():
    # keras/src/callbacks/early_stopping.py docstring: only 4 epochs are run
    cb = callbacks.EarlyStopping(monitor="loss", patience=3)
    m = _model()
    h = m.fit(np.arange(100).reshape(5, 20), np.zeros(5), epochs=10, batch_size=1,
              callbacks=[cb], verbose=0)
    assert len(h.history["loss"]) == 4
    assert cb.stopped_epoch == 3


def test_early_stopping_restore_best_weights_and_baseline(rng):
    x = rng.normal(size=(64, 20)).astype("float32")
    y = rng.normal(size=(64, 10)).astype("float32")
    # a learning rate that makes the loss rise after the first epoch
    m = _model(optimizers.SGD(0.3))
    snapshots = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(
        (logs["loss"], m.get_weights())))
    es = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    h = m.fit(x, y * 100, epochs=20, batch_size=8, callbacks=[rec, es], verbose=0)
    losses = h.history["loss"]
    best = int(np.argmin(losses))
    assert es.best_epoch == best
    for a, b in zip(m.get_weights(), snapshots[best][1]):
        np.testing.assert_array_equal(a, b)
    # a baseline never reached: stops after `patience` epochs
    m2 = _model(optimizers.SGD(0.0))
    es2 = callbacks.EarlyStopping(monitor="loss", patience=3, baseline=-1.0)
    h2 = m2.fit(x, y, epochs=20, batch_size=8, callbacks=[es2], verbose=0)
    assert len(h2.history["loss"]) == 3


def test_early_stopping_start_from_epoch_and_mode_auto(rng):
    x = rng.normal(size=(32, 20)).astype("float32")
    y = rng.normal(size=(32, 10)).astype("float32")
    m = _model(optimizers.SGD(0.0))  # nothing changes, so nothing improves
    es = callbacks.EarlyStopping(monitor="loss", patience=1, start_from_epoch=3)
    h = m.fit(x, y, epochs=10, callbacks=[es], verbose=0)
    assert len(h.history["loss"]) == 5
    m = _model(optimizers.SGD(0.0))
    es = callbacks.EarlyStopping(monitor="val_foo")
    with pytest.raises(ValueError, match="mode='max'"):
        m.fit(x, y, epochs=1, callbacks=[es], verbose=0, validation_data=(x, y))


def test_early_stopping_accuracy_is_maximised(rng):
    x = rng.normal(size=(64, 20)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    set_random_seed(1)
    m = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(20,))])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    es = callbacks.EarlyStopping(monitor="accuracy", patience=50)
    m.fit(x, y, epochs=3, verbose=0, callbacks=[es])
    assert es.monitor_op(2, 1)  # "up": greater is better


def test_reduce_lr_on_plateau(rng):
    x = rng.normal(size=(32, 20)).astype("float32")
    y = rng.normal(size=(32, 10)).astype("float32")
    m = _model(optimizers.SGD(1e-12))  # no real progress: a plateau from the start
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.0)
    h = m.fit(x, y, epochs=6, callbacks=[cb], verbose=0)
    np.testing.assert_allclose(h.history["learning_rate"],
                               [1e-12, 1e-12, 1e-12, 5e-13, 5e-13, 2.5e-13], rtol=1e-6)
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_learning_rate_scheduler_drives_the_engine(rng):
    x = rng.normal(size=(32, 20)).astype("float32")
    y = rng.normal(size=(32, 10)).astype("float32")
    m = _model(optimizers.SGD(0.1))
    cb = callbacks.LearningRateScheduler(lambda epoch, lr: 0.0 if epoch >= 1 else lr)
    w_hist = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: w_hist.append(m.get_weights()))
    h = m.fit(x, y, epochs=3, callbacks=[cb, rec], verbose=0)
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.0, 0.0], rtol=1e-7)
    for a, b in zip(w_hist[1], w_hist[2]):  # lr 0: the weights stop moving
        np.testing.assert_array_equal(a, b)
    cb_old = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    h = m.fit(x, y, epochs=2, callbacks=[cb_old], verbose=0)
    np.testing.assert_allclose(h.history["learning_rate"], [0.01, 0.02], rtol=1e-6)
    with pytest.raises(ValueError, match="should be a float"):
        m.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(lambda e, lr: "x")])


def test_csv_logger(rng, tmp_path):
    x = rng.normal(size=(32, 20)).astype("float32")
    y = rng.normal(size=(32, 10)).astype("float32")
    path = tmp_path / "log.csv"
    m = _model()
    m.fit(x, y, epochs=2, callbacks=[callbacks.CSVLogger(str(path))], verbose=0,
          validation_data=(x, y))
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    m.fit(x, y, epochs=1, callbacks=[callbacks.CSVLogger(str(path), append=True)], verbose=0,
          validation_data=(x, y))
    rows = list(csv.reader(open(path)))
    assert len(rows) == 4 and rows[3][0] == "0"


def test_lambda_callback_batch_hooks_only_when_given(rng):
    x = rng.normal(size=(40, 20)).astype("float32")
    y = rng.normal(size=(40, 10)).astype("float32")
    m = _model()
    seen = []
    epoch_only = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))
    assert not callbacks.CallbackList([epoch_only]).needs_batch_hooks()
    batches = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(("b", b)))
    assert callbacks.CallbackList([batches]).needs_batch_hooks()
    m.fit(x, y, epochs=1, batch_size=10, callbacks=[epoch_only, batches], verbose=0)
    assert seen == [("b", 0), ("b", 1), ("b", 2), ("b", 3), 0]


def test_terminate_on_nan_stops_at_the_first_bad_batch(rng, capsys):
    x = rng.normal(size=(200, 20)).astype("float32") * 1e3
    y = rng.normal(size=(200, 10)).astype("float32")
    m = _model(optimizers.SGD(1e10))
    seen = []
    h = m.fit(x, y, epochs=5, batch_size=10, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    first_bad = m.optimizer.iterations
    out = capsys.readouterr().out
    assert "Invalid loss, terminating training" in out
    assert len(h.history["loss"]) == 1 and not np.isfinite(h.history["loss"][0])
    # the same run with batch hooks (per-batch path) stops at the same step
    m2 = _model(optimizers.SGD(1e10))
    rec = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    m2.fit(x, y, epochs=5, batch_size=10, verbose=0, callbacks=[rec, callbacks.TerminateOnNaN()])
    assert m2.optimizer.iterations == first_bad == len(seen)


def test_model_checkpoint_formats_and_best_only(rng, tmp_path):
    pytest.importorskip("h5py")
    from fastdense.models import load_model
    x = rng.normal(size=(64, 20)).astype("float32")
    y = rng.normal(size=(64, 10)).astype("float32")
    m = _model(optimizers.SGD(0.01))
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.2f}.keras")
    h = m.fit(x, y, epochs=3, callbacks=[callbacks.ModelCheckpoint(pattern, monitor="loss")],
              verbose=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"ckpt-{e + 1:02d}-{loss:.2f}.keras"
                     for e, loss in enumerate(h.history["loss"])]
    last = load_model(str(tmp_path / names[-1]))
    np.testing.assert_array_equal(last.predict(x, verbose=0), m.predict(x, verbose=0))
    # save_best_only: a diverging run keeps the first (best) weights
    best = tmp_path / "best.weights.h5"
    m2 = _model(optimizers.SGD(5.0))
    first = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: first.append(m2.get_weights())
                                   if e == 0 else None)
    # (the loss diverges to NaN; with verbose=0 fit stays quiet, as Keras)
    m2.fit(x * 100, y, epochs=6, verbose=0, callbacks=[
        rec, callbacks.ModelCheckpoint(str(best), monitor="loss", save_best_only=True,
                                       save_weights_only=True)])
    m3 = _model()
    m3.load_weights(str(best))
    for a, b in zip(m3.get_weights(), first[0]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="must end in `.keras`"):
        callbacks.ModelCheckpoint(str(tmp_path / "x.txt"))
    with pytest.raises(ValueError, match=".weights.h5"):
        callbacks.ModelCheckpoint(str(tmp_path / "x.keras"), save_weights_only=True)
    assert not callbacks.CallbackList([callbacks.ModelCheckpoint(pattern)]).needs_batch_hooks()
    assert callbacks.CallbackList([callbacks.ModelCheckpoint(pattern, save_freq=2)]).needs_batch_hooks()


def test_test_batch_hooks_in_evaluate_and_fit_validation():
    """As Keras 3: evaluate and fit's validation call on_test_begin, each
    on_test_batch_begin/end (with the running averages) and on_test_end."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    events = []

    class Recorder(fd.callbacks.Callback):
        def on_test_begin(self, logs=None):
            events.append("begin")

        def on_test_batch_begin(self, batch, logs=None):
            events.append(("batch", batch))

        def on_test_batch_end(self, batch, logs=None):
            events.append((batch, logs["loss"], logs["accuracy"]))

        def on_test_end(self, logs=None):
            events.append(("end", sorted(logs)))

    m = fd.models.Sequential([fd.layers.Input(shape=(4,)), fd.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = m.evaluate(x, y, batch_size=16, callbacks=[Recorder()], verbose=0)
    p = m.predict(x, verbose=0)
    per = -np.log(p[np.arange(50), y])
    hit = (p.argmax(1) == y).astype(float)
    assert events[0] == "begin" and events[-1] == ("end", ["accuracy", "loss"])
    ends = [e for e in events if isinstance(e, tuple) and isinstance(e[0], int)]
    assert [e[0] for e in ends] == [0, 1, 2, 3]
    for batch, l, a in ends:
        k = min(50, 16 * (batch + 1))
        assert l == pytest.approx(per[:k].mean(), rel=1e-5)
        assert a == pytest.approx(hit[:k].mean())
    assert (ends[-1][1], ends[-1][2]) == pytest.approx((loss, acc))
    events.clear()
    m.fit(x, y, epochs=2, batch_size=25, validation_data=(x[:20], y[:20]),
          validation_batch_size=8, callbacks=[Recorder()], verbose=0)
    assert events.count("begin") == 2 and len([e for e in events if isinstance(e, tuple)
                                               and isinstance(e[0], int)]) == 6


def test_hooks_get_logs_as_keras_passes_them():
    """Keras's CallbackList calls batch hooks as hook(batch, logs=logs) and the
    epoch, begin and end hooks with logs positionally: a hook written for
    that (``**kwargs``, or a keyword-only ``logs``) must run."""
    seen = []

    class CB(callbacks.Callback):
        def on_train_batch_begin(self, batch, **kw): seen.append(("tbb", sorted(kw)))
        def on_train_batch_end(self, batch, **kw): seen.append(("tbe", sorted(kw)))
        def on_test_batch_end(self, batch, *, logs): seen.append(("ttbe", type(logs)))
        def on_predict_batch_end(self, batch, *args, logs=None):
            seen.append(("pbe", len(args), logs is not None))
        def on_epoch_end(self, epoch, logs, *rest): seen.append(("ee", type(logs), rest))
        def on_train_begin(self, logs, *rest): seen.append(("tb", type(logs), rest))

    m = _model()
    x = np.ones((8, 20), np.float32)
    m.fit(x, np.zeros((8, 10)), batch_size=4, epochs=1, verbose=0, callbacks=[CB()],
          validation_data=(x, np.zeros((8, 10))))
    m.predict(x, batch_size=4, verbose=0, callbacks=[CB()])
    assert ("tbb", ["logs"]) in seen and ("tbe", ["logs"]) in seen
    assert ("ttbe", dict) in seen and ("pbe", 0, True) in seen
    assert ("ee", dict, ()) in seen and ("tb", dict, ()) in seen


def test_reduce_lr_on_plateau_auto_mode_uses_the_metrics_direction():
    """mode="auto" as Keras's MonitorCallback: the metric's own direction
    (AUC, precision: higher is better), not whether its name has "acc"; a
    name with no known direction raises."""
    from fastdense import metrics
    r = np.random.default_rng(0)
    x = r.normal(size=(128, 20)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    m = models.Sequential([layers.Input((20,)), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizers.SGD(0.05), "binary_crossentropy", metrics=[metrics.AUC(name="auc")])
    seen = []
    cb = callbacks.ReduceLROnPlateau(monitor="val_auc", patience=1, factor=0.1)
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        (logs["val_auc"], logs["learning_rate"])))
    m.fit(x, y, epochs=5, batch_size=32, validation_data=(x, y), verbose=0,
          callbacks=[cb, rec], shuffle=False)
    aucs = [a for a, _ in seen]
    assert aucs == sorted(aucs) and aucs[-1] > aucs[0]  # (improving every epoch)
    assert all(lr == np.float32(0.05) for _, lr in seen)  # so never reduced
    with pytest.raises(ValueError, match="isn't able to automatically determine"):
        m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y),
              callbacks=[callbacks.ReduceLROnPlateau(monitor="loss_foo")])


def test_early_stopping_is_reset_by_each_fit():
    # Keras: on_train_begin clears best, wait, best_weights, so one instance
    # serves a k-fold loop; the first epoch's value is always the best so far
    es = callbacks.EarlyStopping(monitor="loss", patience=1)
    x = np.ones((8, 20), np.float32)
    m = _model()
    m.fit(x, np.zeros((8, 10)), epochs=3, verbose=0, callbacks=[es])
    best0 = es.best
    m2 = _model()
    h = m2.fit(x, np.full((8, 10), 100.0), epochs=4, verbose=0, callbacks=[es])
    assert len(h.history["loss"]) == 4 and es.best > best0
    es2 = callbacks.EarlyStopping(monitor="loss")
    es2.on_train_begin()
    assert es2.best is None and es2._is_improvement(float("nan"), None)


def test_terminate_on_nan_can_raise():
    m = _model(optimizers.SGD(1e30))
    x = np.random.default_rng(0).normal(size=(60, 20)).astype(np.float32)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch"):
        m.fit(x, np.ones((60, 10)) * 1e10, epochs=3, batch_size=10, verbose=0,
              callbacks=[callbacks.TerminateOnNaN(raise_error=True)])
    assert not callbacks.TerminateOnNaN().raise_error


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    """Keras's BackupAndRestore: a fit interrupted after epoch 2 (an exception
    from a callback) leaves a backup; the next fit with the same backup_dir
    restores the weights and optimizer state and runs epochs 3-5 only, giving
    the uninterrupted run's weights; the backup is deleted at the end."""
    pytest.importorskip("h5py")
    x = np.random.default_rng(0).normal(size=(64, 20)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(64, 10)).astype(np.float32)
    ref = _model(optimizers.Adam(0.01))
    ref.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0)

    class Crash(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = tmp_path / "backup"
    m = _model(optimizers.Adam(0.01))
    with pytest.raises(RuntimeError, match="interrupted"):
        m.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0,
              callbacks=[callbacks.BackupAndRestore(backup), Crash()])
    assert (backup / "latest.weights.h5").exists()
    m2 = _model(optimizers.Adam(0.01))  # (a fresh process would rebuild the model)
    epochs = []
    h = m2.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0,
               callbacks=[callbacks.BackupAndRestore(backup),
                          callbacks.LambdaCallback(on_epoch_begin=lambda e, l: epochs.append(e))])
    assert epochs == [2, 3, 4] and len(h.history["loss"]) == 3
    for a, b in zip(m2.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not backup.exists()
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.BackupAndRestore(tmp_path, save_freq="batch")
