"""Subclassed models (``class MyModel(keras.Model)`` with layers as
attributes and a ``call()``): fastdense traces ``call`` once on a symbolic
input of the data's shape and runs the chain of layer calls natively, with
Keras 3's layer list, weight paths and results; calls it cannot trace raise
a clear error; and, where Keras is installed, training matches Keras side by
side."""
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers, models


def _classes(lib):
    L = lib.layers

    class MLP(lib.Model):
        def __init__(self, units=8, **kwargs):
            super().__init__(**kwargs)
            self.dense1 = L.Dense(units, activation="relu")
            self.dropout = L.Dropout(0.0)
            self.dense2 = L.Dense(3, activation="softmax")

        def call(self, inputs, training=False):
            x = self.dense1(inputs)
            x = self.dropout(x, training=training)
            return self.dense2(x)

    return MLP


def _data(rng, n=96):
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n)


def test_traced_on_first_data_and_trains_as_its_chain(rng):
    x, y = _data(rng)
    m = _classes(fd)(name="my_model")
    assert [l.name for l in m.layers] == ["dense", "dropout", "dense_1"] and not m.built
    m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    s = models.Sequential([layers.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                           layers.Dropout(0.0), layers.Dense(3, activation="softmax")])
    s.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.build((None, 6))
    assert [w.path for w in m.weights] == ["my_model/dense/kernel", "my_model/dense/bias",
                                          "my_model/dense_1/kernel", "my_model/dense_1/bias"]
    s.set_weights(m.get_weights())
    args = dict(epochs=2, batch_size=16, verbose=0, shuffle=False)
    assert m.fit(x, y, **args).history == s.fit(x, y, **args).history
    np.testing.assert_array_equal(m.predict(x, verbose=0), s.predict(x, verbose=0))
    np.testing.assert_array_equal(m(x[:3]), s(x[:3]))
    lines = []
    m.summary(print_fn=lines.append)
    assert 'Model: "my_model"' in lines[0]


def test_lazy_build_from_fit_and_weights_files(tmp_path, rng):
    pytest.importorskip("h5py")
    x, y = _data(rng)
    MLP = _classes(fd)
    m = MLP()
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    assert m.built and m.input_shape == (None, 6)
    with pytest.raises(NotImplementedError, match="save_weights"):
        m.save(str(tmp_path / "m.keras"))
    m.save_weights(str(tmp_path / "m.weights.h5"))
    other = MLP()
    other.build((None, 6))
    other.load_weights(str(tmp_path / "m.weights.h5"))
    np.testing.assert_array_equal(other.predict(x, verbose=0), m.predict(x, verbose=0))


def test_calls_it_cannot_trace_raise(rng):
    x, y = _data(rng, 8)

    class Arithmetic(fd.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(3)

        def call(self, inputs):  # (x + 1 runs: test_scalar_ops.py; x ** 2 does not)
            return self.d(inputs) ** 2

    class Twice(fd.Model):  # (a Dense layer applied twice runs: test_repeated_calls.py)
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(6)
            self.n = layers.BatchNormalization()

        def call(self, inputs):
            return self.n(self.n(self.d(inputs)))

    for cls, match in ((Arithmetic, "Tracing Arithmetic.call"), (Twice, "more than once")):
        m = cls()
        m.compile("sgd", "mse")
        with pytest.raises(NotImplementedError, match=match):
            m.fit(x, np.zeros((8, 3 if cls is Arithmetic else 6), np.float32), verbose=0)


def test_side_by_side_with_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x, y = _data(rng, 200)
    km, fm = _classes(keras)(name="my_model"), _classes(fd)(name="my_model")
    km(x[:2])  # (Keras builds a subclassed model's weights on its first call)
    fm(x[:2])
    fm.set_weights(km.get_weights())
    assert [w.path for w in fm.weights] == [w.path for w in km.weights]
    assert [l.name for l in fm.layers] == [l.name for l in km.layers]
    for m in (km, fm):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    args = dict(epochs=3, batch_size=32, verbose=0, shuffle=False, validation_split=0.25)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=key)
