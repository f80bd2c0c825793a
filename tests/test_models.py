"""The DEVELOPERS.md workflows and the Sequential / compile / fit / evaluate /
predict surface, with Keras's conventions."""
import numpy as np
import pytest

import fastdense
import fastdense as keras
from fastdense import callbacks, layers, losses, metrics, models, optimizers
from fastdense.utils import set_random_seed, to_categorical


def small_data(rng, n=256, d=20, k=4):
    x = rng.normal(size=(n, d)).astype("float32")
    w = rng.normal(size=(d, k))
    y = np.argmax(x @ w, axis=1)
    return x, y


# ---------------------------------------------------------------- MNIST workflows
def test_mnist_workflow_reaches_keras_accuracy(mnist_data):
    """The DEVELOPERS.md script, unchanged apart from the import line."""
    from fastdense import layers, models

    x, y, xt, yt = mnist_data
    set_random_seed(0)
    model = models.Sequential()
    model.add(layers.Dense(512, activation="relu", input_shape=(784,)))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, to_categorical(y), epochs=5, batch_size=128, verbose=0,
                        validation_data=(xt, to_categorical(yt)))
    test_loss, test_acc = model.evaluate(xt, to_categorical(yt), verbose=0)
    assert test_acc >= 0.975
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 5 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    # evaluate agrees with the last validation pass (same weights, same data)
    assert test_loss == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    probs = model.predict(xt[:10], verbose=0)
    assert probs.shape == (10, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs.argmax(1) == yt[:10]).mean() >= 0.9


@pytest.mark.parametrize("style", ["import_as_keras", "models_layers", "sequential_import"])
def test_mnist_import_styles_lazy_build_sparse(mnist_data, style):
    x, y, xt, yt = mnist_data
    x, y = x[:12000], y[:12000]
    set_random_seed(1)
    if style == "import_as_keras":
        import fastdense as keras
        model = keras.Sequential([keras.layers.Dense(512, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
    elif style == "models_layers":
        from fastdense import layers, models
        model = models.Sequential([layers.Dense(512, activation="relu"),
                                   layers.Dense(10, activation="softmax")])
    else:
        from fastdense.layers import Dense
        from fastdense.models import Sequential
        model = Sequential([Dense(512, activation="relu"), Dense(10, activation="softmax")])
    assert not model.built
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    assert model.built and model.count_params() == 784 * 512 + 512 + 512 * 10 + 10
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert acc > 0.9
    # "accuracy" resolved to sparse categorical accuracy from the label shape
    assert isinstance(model.metrics[0], metrics.SparseCategoricalAccuracy)
    assert model.metrics[0].name == "accuracy"


# ---------------------------------------------------------------- small models
def test_tiny_sigmoid_model_learns_small_large():
    """1-64-64-64-64-1 sigmoid net, binary crossentropy, adam, 10 samples,
    100 epochs at batch 10."""
    x = np.array([[0.1], [0.2], [0.3], [0.4], [0.5], [1.5], [2.0], [2.5], [3.0], [3.5]],
                 dtype="float32")
    y = (x[:, 0] > 1).astype("float32")
    set_random_seed(3)
    model = models.Sequential([layers.Dense(64, activation="sigmoid", input_shape=(1,))]
                              + [layers.Dense(64, activation="sigmoid") for _ in range(3)]
                              + [layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=100, batch_size=10, verbose=0)
    assert h.history["accuracy"][-1] == 1.0
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    p = model.predict(x, verbose=0)[:, 0]
    assert np.all((p > 0.5) == (y > 0.5))
    assert isinstance(model.metrics[0], metrics.BinaryAccuracy)


def test_objects_and_custom_callables(rng):
    x, y = small_data(rng)
    yc = to_categorical(y, 4)

    def my_loss(y_true, y_pred):
        return np.mean(np.square(y_true - y_pred), axis=-1)

    def mean_pred(y_true, y_pred):
        return np.mean(y_pred, axis=-1)

    set_random_seed(5)
    m1 = models.Sequential([layers.Dense(16, activation="relu", input_shape=(20,)),
                            layers.Dense(4, activation="softmax")])
    w0 = m1.get_weights()
    m1.compile(optimizer=optimizers.RMSprop(learning_rate=1e-3), loss=my_loss,
               metrics=[metrics.BinaryAccuracy(), mean_pred])
    h1 = m1.fit(x, yc, epochs=3, batch_size=32, shuffle=False, verbose=0)
    assert list(h1.history) == ["binary_accuracy", "loss", "mean_pred"]
    np.testing.assert_allclose(h1.history["mean_pred"], 0.25, rtol=1e-5)

    # the same loss built in ("mse" / MeanSquaredError object) trains identically
    m2 = models.Sequential([layers.Dense(16, activation="relu", input_shape=(20,)),
                            layers.Dense(4, activation="softmax")])
    m2.set_weights(w0)
    m2.compile(optimizer=optimizers.RMSprop(learning_rate=1e-3),
               loss=losses.MeanSquaredError(), metrics=[metrics.BinaryAccuracy(), mean_pred])
    h2 = m2.fit(x, yc, epochs=3, batch_size=32, shuffle=False, verbose=0)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(h1.history["binary_accuracy"], h2.history["binary_accuracy"])
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # evaluate: [loss, *metrics] in compile order; dict sorted like Keras logs
    res = m2.evaluate(x, yc, verbose=0)
    assert isinstance(res, list) and len(res) == 3
    d = m2.evaluate(x, yc, verbose=0, return_dict=True)
    assert list(d) == ["binary_accuracy", "loss", "mean_pred"]
    assert res == [d["loss"], d["binary_accuracy"], d["mean_pred"]]
    assert d["loss"] == pytest.approx(float(losses.MeanSquaredError()(yc, m2.predict(x, verbose=0))), rel=1e-5)


def test_evaluate_scalar_when_only_loss(rng):
    x, y = small_data(rng)
    m = models.Sequential([layers.Dense(4, activation="softmax", input_shape=(20,))])
    m.compile(loss="sparse_categorical_crossentropy")
    r = m.evaluate(x, y, verbose=0)
    assert isinstance(r, float)
    expected = losses.SparseCategoricalCrossentropy()(y, m.predict(x, verbose=0))
    assert r == pytest.approx(float(expected), rel=1e-5)


def test_history_params_epochs_and_model_history(rng):
    x, y = small_data(rng)
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["acc"])
    h = m.fit(x, y, epochs=3, batch_size=100, verbose=0, validation_split=0.25,
              initial_epoch=1)
    assert h.epoch == [1, 2]
    assert h.params == {"verbose": 0, "epochs": 3, "steps": 2}
    assert list(h.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert m.history is h
    assert all(isinstance(v, float) for vals in h.history.values() for v in vals)


def test_validation_split_takes_the_last_fraction(rng):
    x, y = small_data(rng, n=100)
    m = models.Sequential([layers.Dense(4, activation="softmax", input_shape=(20,))])
    m.compile(optimizer=optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
    h = m.fit(x, y, epochs=1, batch_size=7, validation_split=0.2, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(x[80:], y[80:], verbose=0), rel=1e-6)
    assert h.history["loss"][0] == pytest.approx(m.evaluate(x[:80], y[:80], verbose=0), rel=1e-6)


def test_predict_batch_size_and_direct_calls(rng):
    x, _ = small_data(rng, n=300)
    m = models.Sequential([keras.Input(shape=(20,)), layers.Dense(8, activation="tanh"),
                           layers.Dense(3)])
    assert m.built
    p1 = m.predict(x, verbose=0)
    p2 = m.predict(x, batch_size=7, verbose=0)
    np.testing.assert_allclose(p1, p2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(m(x), p1, rtol=1e-6, atol=1e-6)
    h = m.layers[0](x)
    np.testing.assert_allclose(m.layers[1](h), p1, rtol=1e-5, atol=1e-6)
    k, b = m.layers[0].get_weights()
    np.testing.assert_allclose(h, np.tanh(x @ k + b), rtol=1e-5, atol=1e-6)
    assert k.shape == (20, 8) and b.shape == (8,)


def test_get_set_weights_roundtrip_and_views(rng):
    m = models.Sequential([layers.Dense(5, input_dim=3), layers.Dense(2, use_bias=False)])
    ws = m.get_weights()
    assert [w.shape for w in ws] == [(3, 5), (5,), (5, 2)]
    new = [rng.normal(size=w.shape).astype("float32") for w in ws]
    m.set_weights(new)
    for a, b in zip(m.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    x = rng.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(m.predict(x, verbose=0), (x @ new[0] + new[1]) @ new[2], rtol=1e-5)
    assert [w.path for w in m.weights][0].endswith("/kernel")
    with pytest.raises(ValueError, match="expecting 3 weights"):
        m.set_weights(new[:2])
    with pytest.raises(ValueError, match="shape"):
        m.set_weights([new[0].T, new[1], new[2]])


def test_pop_and_add_after_build(rng):
    m = models.Sequential([layers.Dense(8, input_shape=(4,)), layers.Dense(3)])
    first = m.layers[0].get_weights()
    m.pop()
    m.add(layers.Dense(2, activation="softmax"))
    assert m.output_shape == (None, 2)
    for a, b in zip(first, m.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_weights(rng):
    x, y = small_data(rng)

    def train():
        set_random_seed(42)
        m = models.Sequential([layers.Dense(32, activation="relu"),
                               layers.Dense(4, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return m.get_weights()

    for a, b in zip(train(), train()):
        np.testing.assert_array_equal(a, b)


def test_shuffle_false_is_the_keras_batch_order(rng):
    """shuffle=False batches rows in order; equal to manual per-batch SGD."""
    x, y = small_data(rng, n=40, d=3, k=2)
    yc = to_categorical(y, 2)
    m = models.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
    w, b = [a.astype(np.float64) for a in m.get_weights()]
    m.fit(x, yc, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for s in range(0, 40, 16):
        xb, yb = x[s:s + 16].astype(np.float64), yc[s:s + 16]
        z = xb @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - yb) / len(xb)
        w -= 0.1 * xb.T @ g
        b -= 0.1 * g.sum(0)
    np.testing.assert_allclose(m.get_weights()[0], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.get_weights()[1], b, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- callbacks
class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


class BatchRecorder(callbacks.Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.batches = []
        self.stop_at = stop_at

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((batch, dict(logs)))
        if self.stop_at is not None and len(self.batches) >= self.stop_at:
            self.model.stop_training = True


def test_callback_hooks_and_batch_hooks(rng):
    x, y = small_data(rng, n=100)
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rec, brec = Recorder(), BatchRecorder()
    m.fit(x, y, epochs=2, batch_size=30, callbacks=[rec, brec], verbose=0)
    assert rec.model is m and rec.params["steps"] == 4
    assert [e[0] for e in rec.events] == ["train_begin", "epoch_begin", "epoch_end",
                                          "epoch_begin", "epoch_end", "train_end"]
    assert rec.events[2][2] == ["accuracy", "loss"]
    assert [b for b, _ in brec.batches] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert set(brec.batches[0][1]) == {"accuracy", "loss"}


def test_stop_training_from_batch_hook(rng):
    x, y = small_data(rng, n=100)
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    brec = BatchRecorder(stop_at=2)
    h = m.fit(x, y, epochs=5, batch_size=10, callbacks=[brec], verbose=0)
    assert len(brec.batches) == 2 and len(h.epoch) == 1
    assert m.optimizer.iterations == 2


def test_no_batch_hooks_means_no_per_batch_python(rng, monkeypatch):
    """Without batch hooks the engine runs whole chunks: far fewer calls than batches."""
    x, y = small_data(rng, n=2000)
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x[:10], y[:10], verbose=0)
    calls = []
    real = m._net.train_batches

    class Spy:
        def __getattr__(self, name):
            return getattr(m._net_real, name)

        def train_batches(self, *a, **k):
            calls.append(a[6])
            return real(*a, **k)

    m._net_real = m._net
    monkeypatch.setattr(m, "_net", Spy())
    m.fit(x, y, epochs=1, batch_size=1, verbose=0, callbacks=[Recorder()])
    assert sum(calls) == 2000 and len(calls) < 200


def test_verbose_output(rng, capsys):
    x, y = small_data(rng, n=64)
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=2, batch_size=32, verbose=0)
    m.evaluate(x, y, verbose=0)
    m.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    m.fit(x, y, epochs=2, batch_size=32, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "2/2 - " in out and "accuracy: " in out and "loss: " in out
    m.fit(x, y, epochs=1, batch_size=32, verbose=1)
    out = capsys.readouterr().out
    assert "2/2" in out and "━" in out and "/step - accuracy: " in out


# ---------------------------------------------------------------- errors
def test_clear_errors(rng):
    x, y = small_data(rng, n=50)
    with pytest.raises(ValueError, match="units=-1"):
        layers.Dense(-1)
    with pytest.raises(ValueError, match="activation.*foo"):
        layers.Dense(3, activation="foo")
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    with pytest.raises(ValueError, match="compile"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="optimizer identifier: foo"):
        m.compile(optimizer="foo", loss="mse")
    with pytest.raises(ValueError, match="loss identifier: foo"):
        m.compile(optimizer="adam", loss="foo")
    with pytest.raises(ValueError, match="metric identifier: foo"):
        m.compile(optimizer="adam", loss="mse", metrics=["foo"])
    with pytest.raises(ValueError, match="Expected `metrics` argument to be a list"):
        m.compile(optimizer="adam", loss="mse", metrics="accuracy")
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit(x, to_categorical(y, 4)[:-1], verbose=0)
    with pytest.raises(ValueError, match="to_categorical"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, to_categorical(y, 4), batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        m.fit(x, to_categorical(y, 4), epochs=-1, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(x, to_categorical(y, 4), validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(x, to_categorical(y, 4), validation_data=x, verbose=0)
    with pytest.raises(ValueError, match="2D array"):
        m.fit(x.reshape(50, 4, 5), to_categorical(y, 4), verbose=0)
    with pytest.raises(TypeError, match="dtype"):
        m.fit(x.astype(str), to_categorical(y, 4), verbose=0)
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(bad, to_categorical(y, 4), verbose=0)
    m.fit(x, to_categorical(y, 4), verbose=0)
    with pytest.raises(ValueError, match="expected axis -1"):
        m.predict(x[:, :5], verbose=0)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        m.fit(x, y + 4, verbose=0)
    with pytest.raises(ValueError, match="fractional"):
        m.fit(x, y + 0.5, verbose=0)


def test_execution_mode_arguments_accepted(rng):
    x, y = small_data(rng, n=50)
    m = models.Sequential([layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True,
              jit_compile=False, steps_per_execution=8)
    m.fit(x, y, verbose=0)


def test_public_surface():
    assert isinstance(fastdense.__version__, str)
    assert fastdense.get_num_threads() >= 1
    cfg = fastdense.config()
    assert cfg["isa"] in cfg["available_isas"]
    assert keras.models.Sequential is keras.Sequential
    assert to_categorical([0, 2, 1]).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert to_categorical(np.array([[1], [0]]), 3).shape == (2, 3)


def test_sample_and_class_weights(rng):
    x, y = small_data(rng, n=120)
    m = models.Sequential([layers.Dense(4, activation="softmax", input_shape=(20,))])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    p = m.predict(x, verbose=0)
    per_sample = losses.sparse_categorical_crossentropy(y, p)
    w = rng.uniform(0, 2, len(x)).astype("float32")
    # Keras's reduction: sum(w * loss) / number of samples, not / sum(w)
    got = m.evaluate(x, y, sample_weight=w, verbose=0, batch_size=32)[0]
    assert got == pytest.approx(float(np.sum(w * per_sample) / len(x)), rel=1e-5)
    # class_weight is sample_weight looked up from the labels (missing classes weigh 1)
    cw = {0: 2.0, 2: 0.5}
    m2 = models.Sequential([layers.Dense(4, activation="softmax", input_shape=(20,))])
    m2.set_weights(m.get_weights())
    m2.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    m.fit(x, y, class_weight=cw, epochs=2, shuffle=False, verbose=0)
    m2.fit(x, y, sample_weight=np.array([cw.get(int(c), 1.0) for c in y]), epochs=2,
           shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="class_weight` and `sample_weight"):
        m.fit(x, y, class_weight=cw, sample_weight=w, verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        m.fit(x, y, sample_weight=w[:-1], verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        m.fit(x, y, sample_weight=np.full(len(x), np.nan), verbose=0)


def test_custom_loss_with_sample_weights_matches_builtin(rng):
    x, y = small_data(rng, n=64)
    yc = to_categorical(y, 4)
    w = rng.uniform(0, 2, len(x)).astype("float32")

    def my_mse(t, p):
        return np.mean((t - p) ** 2, axis=-1)

    out = []
    for loss in (my_mse, "mse"):
        set_random_seed(2)
        m = models.Sequential([layers.Dense(4, activation="softmax", input_shape=(20,))])
        m.compile(optimizer="adam", loss=loss)
        h = m.fit(x, yc, sample_weight=w, epochs=2, batch_size=16, shuffle=False, verbose=0)
        out.append((h.history["loss"], m.get_weights(),
                    m.evaluate(x, yc, sample_weight=w, verbose=0)))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5)
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert out[0][2] == pytest.approx(out[1][2], rel=1e-5)


def test_weighted_metrics_crossentropy_alias_and_duplicate_names(rng):
    """Names and values recorded from Keras 3.15.1 on the same setup."""
    x, y = small_data(rng, n=64, d=5, k=3)
    sw = rng.uniform(0, 2, 64).astype("float32")
    m = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(5,))])
    m.compile(optimizer="sgd", loss="crossentropy", metrics=["accuracy", "accuracy"],
              weighted_metrics=["accuracy", "sparse_categorical_crossentropy"])
    h = m.fit(x, y, sample_weight=sw, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert list(h.history) == ["accuracy", "accuracy_1", "loss",
                               "sparse_categorical_crossentropy", "weighted_accuracy"]
    d = m.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    p = m.predict(x, verbose=0)
    hit = (p.argmax(1) == y).astype(np.float64)
    assert d["accuracy"] == pytest.approx(hit.mean(), rel=1e-6)
    assert d["weighted_accuracy"] == pytest.approx(np.sum(sw * hit) / np.sum(sw), rel=1e-5)
    ce = losses.sparse_categorical_crossentropy(y, p)
    assert d["sparse_categorical_crossentropy"] == pytest.approx(
        float(np.sum(sw * ce) / np.sum(sw)), rel=1e-5)
    assert d["loss"] == pytest.approx(float(np.sum(sw * ce) / len(x)), rel=1e-5)
    # "crossentropy" picked sparse categorical crossentropy from the integer labels
    assert m._loss_native[0] == losses.SCCE
    b = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(5,))])
    b.compile(loss="ce")
    b.evaluate(x, (y > 0).astype("float32"), verbose=0)
    assert b._loss_native[0] == losses.BCE


@pytest.mark.parametrize("targets", ["onehot", "labels"])
def test_shuffled_dense_rows_gathered_by_the_pool_same_bits(targets):
    """Dense inputs (no column selection): the pool copies each shuffled
    batch's input rows, targets and sample weights, each thread a share of the
    rows. One thread copies them all itself. Both must train to the same bits,
    the last, partial batch (too small to split) included."""
    rng = np.random.default_rng(21)
    n, d = 1050, 300
    x = rng.standard_normal((n, d)).astype("float32")
    labels = rng.integers(0, 4, n)
    y = to_categorical(labels, 4) if targets == "onehot" else labels
    loss = "categorical_crossentropy" if targets == "onehot" else "sparse_categorical_crossentropy"
    sw = rng.uniform(0.2, 2.0, n).astype("float32")
    old = fastdense.get_num_threads()
    out = []
    try:
        for nt in (1, 2):
            fastdense.set_num_threads(nt)
            set_random_seed(4)
            m = models.Sequential([layers.Dense(64, activation="relu", input_shape=(d,)),
                                   layers.Dense(4, activation="softmax")])
            m.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
            h = m.fit(x, y, sample_weight=sw, epochs=2, batch_size=100, verbose=0)
            out.append((m.get_weights(), h.history))
    finally:
        fastdense.set_num_threads(old)
    for a, b in zip(out[0][0], out[1][0]):
        np.testing.assert_array_equal(a, b)
    assert out[0][1] == out[1][1]
    assert out[0][1]["loss"][1] < out[0][1]["loss"][0]


def test_weight_paths_are_kerass():
    # Keras 3: weights created while a model builds are named under it; a
    # layer built on its own keeps its own name as the prefix
    from fastdense import layers, models
    m = models.Sequential([layers.Input((4,)), layers.Dense(3, name="h"),
                           layers.BatchNormalization(name="bn"), layers.Dense(2, name="o")],
                          name="net")
    assert [w.path for w in m.weights] == [
        "net/h/kernel", "net/h/bias", "net/bn/gamma", "net/bn/beta", "net/bn/moving_mean",
        "net/bn/moving_variance", "net/o/kernel", "net/o/bias"]
    assert [w.name for w in m.weights][:2] == ["kernel", "bias"]
    d = layers.Dense(5, name="solo")
    d.build((None, 3))
    m2 = models.Sequential([layers.Input((3,)), d], name="m2")
    assert d.kernel.path == "solo/kernel" and m2.weights[0].path == "solo/kernel"


def test_numpy_views_of_variables_behave_as_kerass():
    # np.asarray(variable): a read-only snapshot (a write raises instead of
    # being lost; later updates do not show through); np.array(variable),
    # a dtype conversion, .numpy() and get_weights(): writable copies
    import numpy as np
    from fastdense import layers, models
    m = models.Sequential([layers.Input((4,)), layers.Dense(3)])
    k = m.layers[0].kernel
    snap = np.asarray(k)
    assert not snap.flags.writeable
    with pytest.raises(ValueError):
        snap += 1
    before = snap.copy()
    k.assign(np.zeros((4, 3)))
    np.testing.assert_array_equal(snap, before)
    for a in (np.array(k), np.asarray(k, dtype=np.float64), k.numpy(), m.get_weights()[0]):
        assert a.flags.writeable


def test_metrics_result_dtypes_inputs_outputs():
    import numpy as np
    from fastdense import layers, models
    m = models.Sequential([layers.Input((4,)), layers.Dense(5), layers.Dropout(0.1),
                           layers.Dense(3, activation="softmax")])
    assert m.get_metrics_result() == {}
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    y = np.eye(3)[np.arange(20) % 3]
    h = m.fit(x, y, verbose=0)
    assert m.get_metrics_result() == {k: v[-1] for k, v in h.history.items()}
    r = m.evaluate(x, y, verbose=0, return_dict=True)
    assert m.get_metrics_result() == r
    assert m.dtype == "float32" and m.layers[0].dtype == "float32"
    assert m.layers[0].compute_dtype == m.layers[0].variable_dtype == "float32"
    # (shapes with the batch axis, as Keras's KerasTensors)
    assert [i.shape for i in m.inputs] == [(None, 4)]
    assert [o.shape for o in m.outputs] == [(None, 3)]
    with pytest.raises(AttributeError, match="no defined inputs"):
        models.Sequential([layers.Dense(2)]).inputs


def test_loss_weights_scale_the_loss_as_kerass():
    """compile(loss_weights=w) for the one output (a number, [w] or {output
    name: w}): the loss, its gradient and val_loss are w times the loss;
    metrics and regularization penalties are not scaled. Same numbers as a fit
    whose sample weights are all w, and saved with the model."""
    import numpy as np
    from fastdense import layers, models, optimizers, regularizers, saving
    r = np.random.default_rng(0)
    x = r.normal(size=(64, 4)).astype(np.float32)
    y = r.normal(size=(64, 2)).astype(np.float32)

    def run(lw=None, sw=None, reg=None):
        m = models.Sequential([layers.Input((4,)), layers.Dense(
            2, name="out", kernel_initializer="ones", kernel_regularizer=reg)])
        m.compile(optimizer=optimizers.SGD(0.01), loss="mse", metrics=["mae"],
                  loss_weights=lw)
        h = m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0, sample_weight=sw,
                  validation_data=(x, y))
        return m, h.history

    base_m, base = run()
    for lw in (2.5, [2.5], {"out": 2.5}, np.float32(2.5)):
        m, h = run(lw)
        ref_m, ref = run(sw=np.full(64, 2.5, np.float32))
        np.testing.assert_allclose(h["loss"], ref["loss"], rtol=1e-6)
        np.testing.assert_allclose(h["mae"], ref["mae"], rtol=1e-6)
        for a, b in zip(m.get_weights(), ref_m.get_weights()):
            np.testing.assert_array_equal(a, b)
        # val_loss is evaluate's (weighted) loss on the final weights
        np.testing.assert_allclose(h["val_loss"][-1], m.evaluate(x, y, verbose=0)[0],
                                   rtol=1e-6)
        plain = models.Sequential([layers.Input((4,)), layers.Dense(2)])
        plain.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        plain.set_weights(m.get_weights())
        lp, mp = plain.evaluate(x, y, verbose=0)
        l2, m2 = m.evaluate(x, y, verbose=0)
        np.testing.assert_allclose(l2, 2.5 * lp, rtol=1e-6)
        np.testing.assert_allclose(m2, mp, rtol=1e-6)
    # a regularization penalty is added unscaled: loss = w * data loss + penalty
    m, h = run(2.0, reg=regularizers.L2(0.1))
    data = models.Sequential([layers.Input((4,)), layers.Dense(2)])
    data.compile(optimizer="sgd", loss="mse")
    data.set_weights(m.get_weights())
    penalty = 0.1 * float(np.sum(m.get_weights()[0].astype(np.float64) ** 2))
    np.testing.assert_allclose(m.evaluate(x, y, verbose=0)[0],
                               2.0 * data.evaluate(x, y, verbose=0) + penalty, rtol=1e-5)
    # saved in the compile config, with weighted_metrics
    m = models.Sequential([layers.Input((4,)), layers.Dense(2, name="out")])
    m.compile(optimizer="sgd", loss="mse", loss_weights={"out": 0.5}, weighted_metrics=["mae"])
    cfg = saving.model_to_config(m)["compile_config"]
    assert cfg["loss_weights"] == {"out": 0.5} and cfg["weighted_metrics"]
    back = saving.model_from_config(saving.model_to_config(m))
    assert back._loss_weight == 0.5 and len(back._weighted_ids) == 1
    for bad in ([1.0, 2.0], {"other": 1.0}, "x", float("nan")):
        with pytest.raises(ValueError, match="loss_weights"):
            models.Sequential([layers.Input((4,)), layers.Dense(2, name="out")]).compile(
                "sgd", "mse", loss_weights=bad)


def test_validation_freq_list_validates_after_those_epochs():
    import numpy as np
    from fastdense import callbacks, layers, models
    m = models.Sequential([layers.Input((4,)), layers.Dense(2)])
    m.compile("sgd", "mse")
    x = np.ones((16, 4), np.float32)
    y = np.zeros((16, 2), np.float32)
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(("val_loss" in logs, e)))
    h = m.fit(x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 3], verbose=0,
              callbacks=[cb])
    assert len(h.history["val_loss"]) == 2 and len(h.history["loss"]) == 4
    assert seen == [(True, 0), (False, 1), (True, 2), (False, 3)]
    with pytest.raises(ValueError, match="validation_freq"):
        m.fit(x, y, validation_data=(x, y), validation_freq=[1.5], verbose=0)


def test_compile_again_with_the_same_optimizer_keeps_its_state():
    """compile(optimizer=model.optimizer, ...) (e.g. to add a metric) keeps the
    optimizer's iterations and moments, as Keras's built optimizer does: two
    fits around the recompile give one uninterrupted run's weights. A new
    optimizer object starts fresh."""
    import numpy as np
    from fastdense import layers, models, optimizers
    r = np.random.default_rng(0)
    x = r.normal(size=(100, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[r.integers(0, 3, 100)]

    def model():
        m = models.Sequential([layers.Input((5,)), layers.Dense(4, activation="relu"),
                               layers.Dense(3, activation="softmax")])
        m.set_weights([(r2 * 0.3).astype(np.float32) for r2 in
                       [np.ones((5, 4)), np.zeros(4), np.ones((4, 3)), np.zeros(3)]])
        return m

    one = model()
    one.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    one.fit(x, y, epochs=2, batch_size=20, shuffle=False, verbose=0)
    two = model()
    two.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    two.fit(x, y, epochs=1, batch_size=20, shuffle=False, verbose=0)
    two.compile(optimizer=two.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    assert int(two.optimizer.iterations) == 5
    two.fit(x, y, epochs=1, batch_size=20, shuffle=False, verbose=0)
    assert int(two.optimizer.iterations) == 10
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_array_equal(a, b)
    two.compile(optimizers.Adam(0.01), "categorical_crossentropy")  # a new one: fresh
    assert int(two.optimizer.iterations) == 0


def test_clone_of_a_compiled_model_is_compiled_with_its_own_state():
    import numpy as np
    from fastdense import layers, metrics, models, optimizers
    m = models.Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax", name="o")])
    m.compile(optimizers.Adam(0.02), "categorical_crossentropy",
              metrics=["accuracy", metrics.AUC()], loss_weights={"o": 2.0})
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(32) % 3]
    m.fit(x, y, verbose=0)
    c = models.clone_model(m)
    assert c.compiled and c.optimizer is not m.optimizer
    assert float(c.optimizer.learning_rate) == float(m.optimizer.learning_rate)
    assert int(c.optimizer.iterations) == 0 and c._loss_weight == 2.0
    h = c.fit(x, y, verbose=0)
    assert sorted(h.history) == sorted(m.history.history)
    assert c._metric_ids[1] is not m._metric_ids[1]  # (its own metric state)
    assert not models.clone_model(models.Sequential([layers.Input((4,)),
                                                     layers.Dense(2)])).compiled


# ---------------------------------------------------------------- Keras details
def _binary_model(seed=0):
    set_random_seed(seed)
    m = models.Sequential([keras.Input((20,)), layers.Dense(8, activation="relu"),
                           layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return m


def test_validation_split_rows_are_not_class_weighted():
    """Keras applies class_weight to the training rows only: the validation
    loss of a validation_split is the plain loss of those rows (sample
    weights, though, are split with the rows)."""
    x, y = small_data(np.random.default_rng(0), n=200, k=2)
    m = _binary_model()
    h = m.fit(x, y, validation_split=0.25, class_weight={0: 1.0, 1: 7.0}, epochs=2,
              batch_size=32, verbose=0)
    val = m.evaluate(x[150:], y[150:], verbose=0, return_dict=True)
    assert h.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-5)
    sw = np.linspace(0.1, 3.0, 200).astype(np.float32)
    m = _binary_model()
    h = m.fit(x, y, validation_split=0.25, sample_weight=sw, epochs=2, batch_size=32,
              verbose=0)
    val = m.evaluate(x[150:], y[150:], sample_weight=sw[150:], verbose=0, return_dict=True)
    assert h.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-5)


def test_float_class_weight_keys_are_class_ids():
    """Keys from np.unique of float labels (0.0, 1.0) weigh classes 0 and 1."""
    x, y = small_data(np.random.default_rng(1), n=128, k=2)
    losses_ = []
    for cw in ({0: 1.0, 1: 4.0}, {0.0: 1.0, 1.0: 4.0}, {np.float64(0): 1.0, np.float64(1): 4.0}):
        m = _binary_model()
        losses_.append(m.fit(x, y, class_weight=cw, epochs=1, batch_size=32, shuffle=False,
                             verbose=0).history["loss"])
    assert losses_[0] == losses_[1] == losses_[2]
    m = _binary_model()
    with pytest.raises(ValueError, match="class_weight"):
        m.fit(x, y, class_weight={0.5: 1.0}, epochs=1, verbose=0)


def test_compile_again_without_loss_or_metrics_keeps_them():
    """As Keras: compile(optimizer=...) again (e.g. to fine-tune with a lower
    learning rate) keeps the loss and metrics compiled before."""
    x, y = small_data(np.random.default_rng(2), n=64, k=2)
    m = _binary_model()
    m.fit(x, y, epochs=1, verbose=0)
    m.compile(optimizer=optimizers.SGD(1e-3))
    assert m.loss == "binary_crossentropy"
    h = m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert sorted(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert isinstance(m.optimizer, optimizers.SGD)
    m.compile(optimizer="adam", metrics=["mae"])  # new metrics, same loss
    h = m.fit(x, y, epochs=1, verbose=0)
    assert sorted(h.history) == ["loss", "mae"]
    m.compile(optimizer="adam", loss="mse")  # a new loss; the metrics stay
    assert m.loss == "mse"
    assert sorted(m.fit(x, y, epochs=1, verbose=0).history) == ["loss", "mae"]


def test_logs_are_float32_values_and_reset_metrics_zeroes_results():
    x, y = small_data(np.random.default_rng(3), n=100, k=2)
    m = _binary_model()
    h = m.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.2)
    for key, values in h.history.items():
        for v in values:
            assert float(np.float32(v)) == v, key  # (Keras's float32 metric results)
    r = m.evaluate(x, y, verbose=0, return_dict=True)
    assert float(np.float32(r["loss"])) == r["loss"]
    assert m.get_metrics_result()["loss"] > 0
    m.reset_metrics()
    assert m.get_metrics_result() == {"accuracy": 0.0, "loss": 0.0}


class _SparseLike:
    """Duck-types a scipy.sparse matrix (scipy is not a dependency)."""

    def __init__(self, dense):
        self._dense = dense
        self.nnz = int(np.count_nonzero(dense))
        self.shape = dense.shape

    def toarray(self):
        return self._dense.copy()


def test_sparse_inputs_are_densified():
    """scipy.sparse features (e.g. TF-IDF) train, evaluate and predict as
    their dense array does, as with Keras's JAX and torch backends."""
    rng = np.random.default_rng(4)
    xd = (rng.random((64, 20)) < 0.2).astype("float32") * rng.random((64, 20)).astype("float32")
    y = rng.integers(0, 3, 64)
    sparse_types = [_SparseLike]
    try:
        import scipy.sparse as sp
        sparse_types += [sp.csr_matrix, sp.csr_array, sp.coo_matrix]
    except ImportError:
        pass
    results = []
    for make in [np.asarray] + sparse_types:
        m = models.Sequential([keras.Input((20,)), layers.Dense(8, activation="relu"),
                               layers.Dense(3, activation="softmax")])
        if results:
            m.set_weights(w0)
        else:
            w0 = m.get_weights()
        m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        h = m.fit(make(xd), y, epochs=2, batch_size=16, shuffle=False, verbose=0).history
        results.append((h["loss"], m.evaluate(make(xd), y, verbose=0),
                        m.predict(make(xd[:5]), verbose=0).tolist()))
    assert all(r == results[0] for r in results[1:])
