"""Idioms of real Keras scripts (found by running Keras-written scripts with
`import fastdense as keras`): boolean verbose, dict logs in every hook, a
single callback, predict batch hooks, get_layer, model.losses, Keras-JAX's
sorted log keys, CSVLogger's columns, the optimizer's learning_rate and
iterations answering variable calls."""
from __future__ import annotations

import csv

import numpy as np
import pytest

import fastdense as keras


def _data(n=40):
    rng = np.random.default_rng(0)
    x = rng.random((n, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(n) % 3]
    return x, y


def _model():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def test_boolean_and_high_verbose_levels(capsys):
    x, y = _data()
    m = _model()
    m.fit(x, y, epochs=1, verbose=False)
    m.evaluate(x, y, verbose=False)
    m.predict(x.tolist(), verbose=False)
    assert capsys.readouterr().out == ""
    m.fit(x, y, epochs=2, verbose=3)  # (above 2, as Keras: the epoch headers only)
    out = capsys.readouterr().out
    assert out == "Epoch 1/2\nEpoch 2/2\n"
    m.evaluate(x, y, verbose=4)
    m.predict(x, verbose=3)
    assert capsys.readouterr().out == ""
    m.evaluate(x, y, verbose=True)
    assert "accuracy" in capsys.readouterr().out


def test_every_hook_receives_a_dict():
    seen = {}

    class Probe(keras.callbacks.Callback):
        pass

    hooks = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
             "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
             "on_predict_batch_begin", "on_predict_batch_end"]
    for h in hooks:
        def f(self, *args, _h=h, **kw):  # (batch hooks get logs=, as in Keras)
            logs = kw["logs"] if "batch" in _h else args[-1]
            assert isinstance(logs, dict) and set(kw) <= {"logs"}, (_h, args, kw)
            seen[_h] = True
        setattr(Probe, h, f)
    x, y = _data()
    m = _model()
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y), callbacks=[Probe()])
    m.predict(x, batch_size=16, verbose=0, callbacks=[Probe()])
    assert sorted(seen) == sorted(hooks)
    cb = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: seen.update(tb=list(logs)))
    m.fit(x, y, epochs=1, verbose=0, callbacks=cb)  # a single callback, not in a list
    assert seen["tb"] == []


def test_predict_batch_hooks_get_each_batch_outputs():
    outs = []

    class P(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            outs.append((batch, logs["outputs"].shape))

    x, _ = _data(40)
    m = _model()
    p = m.predict(x, batch_size=16, verbose=0, callbacks=[P()])
    assert outs == [(0, (16, 3)), (1, (16, 3)), (2, (8, 3))]
    np.testing.assert_array_equal(p, m.predict(x, verbose=0))


def test_get_layer_and_losses():
    m = keras.Sequential([keras.Input((4,)),
                          keras.layers.Dense(3, kernel_regularizer=keras.regularizers.l2(0.1),
                                             name="d1"),
                          keras.layers.Dense(2, bias_regularizer="l1", name="d2")])
    assert m.get_layer("d2") is m.layers[1] and m.get_layer(index=0) is m.layers[0]
    with pytest.raises(ValueError, match="No such layer: nope"):
        m.get_layer("nope")
    with pytest.raises(ValueError, match="only has 2 layers"):
        m.get_layer(index=5)
    with pytest.raises(ValueError, match="Provide either"):
        m.get_layer()
    k = m.layers[0].get_weights()[0]
    assert len(m.losses) == 2
    assert float(m.losses[0]) == pytest.approx(0.1 * np.sum(k.astype(np.float64) ** 2), rel=1e-6)
    assert float(m.losses[1]) == 0.0  # (zero biases)


def test_log_keys_sorted_as_keras_jax():
    x, y = _data()
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile("sgd", "categorical_crossentropy",
              metrics=[keras.metrics.CategoricalAccuracy(name="zz_acc"), "mae"])
    h = m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert list(h.history) == ["loss", "mae", "val_loss", "val_mae", "val_zz_acc", "zz_acc"]


def test_csv_logger_columns_with_sparse_validation(tmp_path):
    x, y = _data()
    m = _model()
    f = tmp_path / "log.csv"
    m.fit(x, y, epochs=3, verbose=0, validation_data=(x, y), validation_freq=2,
          callbacks=[keras.callbacks.CSVLogger(str(f))])
    rows = list(csv.reader(open(f)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert rows[1][3:] == ["NA", "NA"] and rows[2][3] != "NA" and rows[3][3:] == ["NA", "NA"]
    # values as Keras writes them: float32 numbers printed as Python floats
    assert float(rows[1][2]) == float(np.float32(float(rows[1][2])))


def test_learning_rate_and_iterations_answer_variable_calls():
    x, y = _data()
    m = _model()
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    opt = m.optimizer
    assert opt.learning_rate == pytest.approx(0.01) and isinstance(opt.learning_rate, float)
    assert opt.learning_rate.numpy().dtype == np.float32
    assert opt.iterations == 5 and opt.iterations.numpy() == 5
    opt.learning_rate.assign(0.5)
    assert float(opt.learning_rate) == 0.5 and opt.get_config()["learning_rate"] == 0.5
    before = m.get_weights()
    m.fit(x[:8], y[:8], epochs=1, batch_size=8, verbose=0, shuffle=False)
    assert opt.iterations == 6
    grads_step = [a - b for a, b in zip(before, m.get_weights())]
    assert max(np.abs(g).max() for g in grads_step) > 0
    opt.iterations.assign(0)
    assert int(opt.iterations) == 0
    sched = keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5))
    with pytest.raises(TypeError, match="not settable"):
        sched.learning_rate.assign(0.3)


def test_csv_logger_matches_keras_byte_for_byte(tmp_path):
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    K = pytest.importorskip("keras")
    x, y = _data(32)
    files = []
    for lib in (K, keras):
        m = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])
        m.set_weights([np.full((4, 3), 0.1, "f"), np.zeros(3, "f")])
        m.compile(lib.optimizers.SGD(0.1), "categorical_crossentropy", metrics=["accuracy"])
        f = tmp_path / f"{lib.__name__}.csv"
        m.fit(x, y, epochs=3, verbose=0, shuffle=False, validation_data=(x, y),
              validation_freq=2, callbacks=[lib.callbacks.CSVLogger(str(f))])
        files.append(f.read_text())
    assert files[0] == files[1]


def test_unreduced_loss_in_compile_as_keras():
    """reduction="none": evaluate / test_on_batch report the mean (Keras's
    loss tracker); fit / train_on_batch refuse, as Keras-JAX's gradient does."""
    x, _ = _data(10)
    y = np.random.default_rng(1).random((10, 1)).astype("float32")
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    m.compile("sgd", keras.losses.MeanSquaredError(reduction="none"))
    want = float(np.mean((m.predict(x, verbose=0).astype(np.float64) - y) ** 2))
    assert m.evaluate(x, y, verbose=0) == pytest.approx(want, rel=1e-5)
    assert m.test_on_batch(x, y) == pytest.approx(want, rel=1e-5)
    for call in (lambda: m.fit(x, y, verbose=0), lambda: m.train_on_batch(x, y)):
        with pytest.raises(TypeError, match=r"scalar-output functions. Output had shape: \(10,\)"):
            call()


@pytest.mark.parametrize("kw", [{}, {"negative_slope": 0.1}, {"max_value": 6.0},
                                {"threshold": 1.0}, {"negative_slope": 0.1, "max_value": 6.0,
                                                     "threshold": 1.0},
                                {"max_value": 2.0, "negative_slope": 0.2}])
def test_relu_options(kw):
    x = np.array([-3.0, -0.5, 0.5, 1.0, 3.0, 10.0], np.float32)
    slope, top, thr = kw.get("negative_slope", 0.0), kw.get("max_value"), kw.get("threshold", 0.0)
    # Keras's definition, elementwise
    want = []
    for v in x.astype(np.float64):
        if slope and top is None and not thr:
            want.append(v if v >= 0 else slope * v)
            continue
        neg = max(-v + thr, 0.0) if slope else 0.0
        r = (v if v > thr else 0.0) if thr else max(v, 0.0)
        if top is not None:
            r = min(max(r, 0.0), top)
        want.append(r - slope * neg)
    np.testing.assert_allclose(keras.activations.relu(x, **kw), want, rtol=1e-6)


def test_trainable_flags_as_keras():
    """layer.trainable reaches its variables; model.trainable sets every
    layer's; BatchNormalization's moving statistics are never trainable."""
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
                          keras.layers.BatchNormalization(name="bn"),
                          keras.layers.Dense(2, name="b")])

    def state():
        return ([v.trainable for v in m.weights], [la.trainable for la in m.layers],
                len(m.trainable_weights), len(m.non_trainable_weights))

    # (the values real Keras 3.15 prints for the same steps)
    assert state() == ([True, True, True, True, False, False, True, True],
                       [True, True, True], 6, 2)
    m.layers[0].trainable = False
    assert state() == ([False, False, True, True, False, False, True, True],
                       [False, True, True], 4, 4)
    m.trainable = False
    assert state() == ([False] * 8, [False, False, False], 0, 8)
    m.trainable = True
    assert state() == ([True, True, True, True, False, False, True, True],
                       [True, True, True], 6, 2)
    # and training honours it
    x, _ = _data(16)
    y = np.ones((16, 2), np.float32)
    m.compile("sgd", "mse")
    m.layers[2].trainable = False
    before = m.layers[2].get_weights()
    m.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, m.layers[2].get_weights()):
        np.testing.assert_array_equal(a, b)
