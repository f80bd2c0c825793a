"""The flows of the "basic regression" tutorials: one feature given as a
vector to a model whose input is (None, 1), a Normalization adapted on it
(axis=None), and Normalization's ``mean`` / ``variance``; pandas frames and
series where pandas is installed; side by side with Keras where installed."""

import numpy as np
import pytest

import fastdense as fd


def data(seed=0, n=120):
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 20, size=n)
    return x, (x * 0.3 + rng.normal(size=n)).astype(np.float32)


def one_feature_model(lib, x):
    norm = lib.layers.Normalization(input_shape=[1], axis=None)
    norm.adapt(np.array(x))
    return lib.Sequential([norm, lib.layers.Dense(units=1)]), norm


def test_vector_for_one_feature():
    x, y = data()
    m, norm = one_feature_model(fd, x)
    m.compile(optimizer=fd.optimizers.Adam(learning_rate=0.1), loss="mean_absolute_error")
    h = m.fit(x, y, epochs=3, verbose=0, validation_split=0.2)
    assert len(h.history["val_loss"]) == 3
    assert m.predict(np.linspace(0, 250, 5), verbose=0).shape == (5, 1)
    same = m.predict(np.linspace(0, 250, 5).reshape(-1, 1), verbose=0)
    np.testing.assert_array_equal(m.predict(np.linspace(0, 250, 5), verbose=0), same)
    assert np.isfinite(m.evaluate(x, y, verbose=0))
    # (adapted on a vector with axis=None: built for (n,), stats of shape (1,), as Keras)
    np.testing.assert_allclose(np.asarray(norm.mean), [np.mean(x)], rtol=1e-6)
    assert norm.mean.numpy().shape == (1,)


def test_vectors_refused_elsewhere():
    x, y = data()
    m = fd.Sequential([fd.Input((3,)), fd.layers.Dense(1)])
    m.compile("adam", "mse")
    with pytest.raises(ValueError, match="must be a 2D array"):
        m.fit(x, y, verbose=0)


def test_normalization_mean_and_variance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)).astype(np.float32) * [1, 2, 3, 4] + [0, 1, 2, 3]
    norm = fd.layers.Normalization(axis=-1)
    with pytest.raises(AttributeError):
        norm.mean
    norm.adapt(x)
    np.testing.assert_allclose(norm.mean.numpy(), x.mean(0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(norm.variance.numpy(), x.var(0, keepdims=True), rtol=1e-5)
    fixed = fd.layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    fixed.build((None, 2))
    np.testing.assert_array_equal(fixed.mean.numpy(), [[1.0, 2.0]])
    np.testing.assert_array_equal(fixed.variance.numpy(), [[4.0, 9.0]])


def test_pandas_frames_and_series():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])
    labels = df.pop("a") * 2 + 1
    norm = fd.layers.Normalization(axis=-1)
    norm.adapt(np.array(df))
    m = fd.Sequential([norm, fd.layers.Dense(8, activation="relu"), fd.layers.Dense(1)])
    m.compile(loss="mean_absolute_error", optimizer=fd.optimizers.Adam(0.001))
    h = m.fit(df, labels, validation_split=0.2, verbose=0, epochs=2)
    assert list(pd.DataFrame(h.history).columns) == ["loss", "val_loss"]
    assert m.predict(df, verbose=0).flatten().shape == (100,)
    m2, _ = one_feature_model(fd, df["b"])
    m2.compile(optimizer="adam", loss="mse")
    m2.fit(df["b"], labels, epochs=1, verbose=0)


def test_side_by_side_with_keras():
    keras = pytest.importorskip("keras")
    x, y = data(3)
    keras.backend.clear_session()
    fd.backend.clear_session()
    (km, kn), (fm, fn) = one_feature_model(keras, x), one_feature_model(fd, x)
    assert np.asarray(fn.mean).shape == np.asarray(kn.mean).shape
    np.testing.assert_allclose(np.asarray(fn.mean), np.asarray(kn.mean), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fn.variance), np.asarray(kn.variance), rtol=1e-6)
    fm.set_weights(km.get_weights())
    hs = []
    for m, lib in ((km, keras), (fm, fd)):
        m.compile(optimizer=lib.optimizers.Adam(learning_rate=0.1), loss="mean_absolute_error")
        hs.append(m.fit(x, y, epochs=4, verbose=0, validation_split=0.2, shuffle=False).history)
    for k in hs[0]:
        np.testing.assert_allclose(hs[1][k], hs[0][k], rtol=1e-5)
    grid = np.linspace(0, 250, 7)
    np.testing.assert_allclose(fm.predict(grid, verbose=0), km.predict(grid, verbose=0),
                               rtol=1e-5, atol=1e-5)
