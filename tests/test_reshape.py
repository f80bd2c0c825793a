"""Reshape: Keras 3's target shapes (-1 resolved, sizes checked, its error
texts) and, in a model, the same role as Flatten: a one-axis target before
the first Dense layer flattens the samples, a multi-axis one must be
flattened again; configs, files and (where Keras is installed) training side
by side with Keras."""
import json
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers, models


def test_output_shapes_and_the_array_call():
    assert layers.Reshape((-1,)).compute_output_shape((None, 28, 28)) == (None, 784)
    assert layers.Reshape((28, -1)).compute_output_shape((None, 784)) == (None, 28, 28)
    assert layers.Reshape((-1,)).compute_output_shape((None, None)) == (None, None)
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(layers.Reshape((3, 4))(x), x.reshape(2, 3, 4))
    with pytest.raises(ValueError, match="total size of the tensor must be unchanged"):
        layers.Reshape((5,)).compute_output_shape((None, 12))
    with pytest.raises(ValueError, match="cannot by divided"):
        layers.Reshape((5, -1)).compute_output_shape((None, 12))
    with pytest.raises(ValueError, match="at most one unknown dimension"):
        layers.Reshape((-1, -1))
    with pytest.raises(ValueError, match="non-negative integer"):
        layers.Reshape((-2,))
    with pytest.raises(TypeError, match="target_shape"):
        layers.Reshape(5)


def test_flattens_images_like_flatten(rng):
    x = rng.random((40, 4, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    a = models.Sequential([layers.Input(shape=(4, 5)), layers.Reshape((20,)),
                           layers.Dense(6, activation="relu"), layers.Reshape((-1,)),
                           layers.Dense(3, activation="softmax")])
    b = models.Sequential([layers.Input(shape=(4, 5)), layers.Flatten(),
                           layers.Dense(6, activation="relu"), layers.Dense(3, activation="softmax")])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile("adam", "sparse_categorical_crossentropy")
    assert a.fit(x, y, epochs=2, verbose=0, shuffle=False).history == \
        b.fit(x, y, epochs=2, verbose=0, shuffle=False).history
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    # a multi-axis target before a Flatten; lazily built from the data
    c = models.Sequential([layers.Reshape((5, 4)), layers.Flatten(), layers.Dense(2)])
    c.compile("sgd", "mse")
    c.fit(x, np.zeros((40, 2), np.float32), verbose=0)
    assert c.input_shape == (None, 4, 5) and c.output_shape == (None, 2)


def test_shapes_fastdense_cannot_run_raise():
    with pytest.raises(ValueError, match="total size"):
        models.Sequential([layers.Input(shape=(10,)), layers.Reshape((3,)), layers.Dense(2)])
    with pytest.raises(NotImplementedError, match="may only give one axis"):
        models.Sequential([layers.Input(shape=(10,)), layers.Dense(4), layers.Reshape((2, 2))])
    with pytest.raises(ValueError, match="flatten them first"):
        models.Sequential([layers.Input(shape=(10,)), layers.Reshape((2, 5)), layers.Dense(2)])


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_config_and_files(tmp_path, rng, ext):
    pytest.importorskip("h5py")
    m = models.Sequential([layers.Input(shape=(4, 5)), layers.Reshape((-1,)), layers.Dense(3)])
    cfg = m.get_config()["layers"][1]
    assert cfg["class_name"] == "Reshape" and cfg["config"]["target_shape"] == [-1]
    assert "build_config" not in cfg  # (as Keras writes it)
    assert layers.Reshape.from_config(m.layers[0].get_config()).target_shape == (-1,)
    path = str(tmp_path / f"m{ext}")
    m.save(path)
    back = models.load_model(path)
    x = rng.random((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_side_by_side_with_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x = rng.normal(size=(64, 7, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)

    def stack(lib):
        L = lib.layers
        return lib.Sequential([L.Input(shape=(7, 4)), L.Reshape((-1,)),
                               L.Dense(8, activation="relu"), L.Reshape((8,)),
                               L.Dense(3, activation="softmax")])

    km, fm = stack(keras), stack(fd)
    fm.set_weights(km.get_weights())
    assert json.loads(json.dumps(fm.get_config())) == json.loads(json.dumps(km.get_config()))
    for m in (km, fm):
        m.compile("adam", "sparse_categorical_crossentropy")
    args = dict(epochs=2, verbose=0, shuffle=False)
    np.testing.assert_allclose(fm.fit(x, y, **args).history["loss"],
                               km.fit(x, y, **args).history["loss"], rtol=2e-6)
