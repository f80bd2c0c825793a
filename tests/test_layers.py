"""Layers beyond Dense: every activation (native pass vs numpy reference and
float64 finite differences), Dropout, Flatten, Activation."""
import numpy as np
import pytest

from fastdense import _core, activations, layers, models, optimizers
from fastdense.utils import set_random_seed

EXTRA = {name: code for name, code in activations._CODES.items() if code > 4}
ALL = dict(activations._CODES)


@pytest.mark.parametrize("name", sorted(ALL))
def test_activation_forward_matches_numpy(name, rng):
    z = rng.normal(scale=3, size=(7, 13)).astype(np.float32)
    z[0, :5] = [0.0, -3.0, 3.0, 6.0, -6.0]  # kinks of relu6 / hard_sigmoid / hard_silu
    y = _core.activation_forward(z, ALL[name])
    ref = activations.get(name)(z.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=2e-5, atol=2e-6)
    # the public callable keeps float32 for float32 input where numpy does
    assert np.asarray(activations.get(name)(z)).shape == z.shape


@pytest.mark.parametrize("name", sorted(ALL))
def test_activation_backward_finite_differences(name, rng):
    z = rng.normal(scale=2, size=(5, 9))
    z[np.abs(z) < 1e-2] += 0.1          # keep away from kinks
    for k in (-3.0, 3.0, 6.0):
        z[np.abs(z - k) < 1e-2] += 0.1
    f = activations.get(name)
    r = rng.normal(size=z.shape)
    eps = 1e-6
    fd = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += eps
        zm[i] -= eps
        fd[i] = (np.sum(r * f(zp)) - np.sum(r * f(zm))) / (2 * eps)
    z32 = z.astype(np.float32)
    y32 = _core.activation_forward(z32, ALL[name])
    dz = _core.activation_backward(r.astype(np.float32), z32, y32, ALL[name])
    np.testing.assert_allclose(dz, fd, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_dense_with_any_activation_trains_like_numpy_sgd(name, rng):
    """One SGD step through Dense(activation=name) equals the numpy computation."""
    x = rng.normal(size=(16, 6)).astype(np.float32)
    t = rng.normal(size=(16, 4)).astype(np.float32)
    m = models.Sequential([layers.Dense(4, activation=name, input_shape=(6,))])
    m.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    w, b = [a.astype(np.float64) for a in m.get_weights()]
    f = activations.get(name)
    z = x @ w + b
    y = f(z)
    np.testing.assert_allclose(m.predict(x, verbose=0), y, rtol=1e-4, atol=1e-5)
    g = 2 * (y - t) / y.size
    eps = 1e-6
    fp = (f(z + eps) - f(z - eps)) / (2 * eps)
    if name == "log_softmax":
        s = np.exp(y)
        dz = g - s * g.sum(axis=1, keepdims=True)
    else:
        dz = g * fp
    m.fit(x, t, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(m.get_weights()[0], w - 0.1 * x.T @ dz, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.get_weights()[1], b - 0.1 * dz.sum(0), rtol=1e-4, atol=1e-6)


def test_activation_layer_equals_dense_activation(rng):
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    out = []
    for stack in ([layers.Dense(16, activation="elu"), layers.Dense(3, activation="softmax")],
                  [layers.Dense(16), layers.Activation("elu"), layers.Dense(3),
                   layers.Activation(activations.softmax)]):
        set_random_seed(3)
        m = models.Sequential([layers.Input(shape=(8,))] + stack)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        out.append((m.get_weights(), m.predict(x, verbose=0)))
    for a, b in zip(out[0][0], out[1][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out[0][1], out[1][1])
    # an Activation after an activated Dense runs as a stage of its own
    m = models.Sequential([layers.Dense(4, activation="relu", input_shape=(8,)),
                           layers.Activation("tanh")])
    w, b = m.get_weights()
    np.testing.assert_allclose(m.predict(x, verbose=0), np.tanh(np.maximum(x @ w + b, 0)),
                               rtol=1e-5, atol=1e-6)
    assert layers.Activation("relu")(np.array([[-1.0, 2.0]])).tolist() == [[0.0, 2.0]]


def test_flatten_takes_images(rng):
    x = rng.random((50, 4, 5)).astype(np.float32)
    y = rng.integers(0, 2, 50)
    m = models.Sequential([layers.Flatten(input_shape=(4, 5)), layers.Dense(2, activation="softmax")])
    assert m.input_shape == (None, 4, 5)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    m.fit(x, y, verbose=0)
    np.testing.assert_array_equal(m.predict(x, verbose=0), m.predict(x.reshape(50, 20), verbose=0))
    lazy = models.Sequential([layers.Flatten(), layers.Dense(2)])
    assert lazy.predict(x, verbose=0).shape == (50, 2) and lazy.input_shape == (None, 4, 5)
    with pytest.raises(ValueError, match="incompatible"):
        m.predict(x.reshape(50, 5, 4), verbose=0)
    with pytest.raises(ValueError, match="Flatten"):
        models.Sequential([layers.Dense(2)]).predict(x, verbose=0)
    assert layers.Flatten()(x).shape == (50, 20)


def test_dropout_training_only_and_scaled(rng):
    x = np.ones((2000, 50), np.float32)
    set_random_seed(0)
    m = models.Sequential([layers.Input(shape=(50,)), layers.Dropout(0.3),
                           layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    # inference: identity
    np.testing.assert_allclose(m.predict(x, verbose=0), 50.0)
    # training: the first batch's predictions are recorded by a metric
    seen = []

    def record(y_true, y_pred):
        seen.append(np.array(y_pred))
        return np.zeros(len(y_pred))

    m.compile(optimizer=optimizers.SGD(0.0), loss="mse", metrics=[record])
    m.fit(x, np.zeros(2000), batch_size=2000, epochs=1, verbose=0)
    out = seen[0][:, 0]
    kept = out * 0.7  # number of inputs kept per sample
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-3)  # each kept input scaled by 1/0.7
    assert abs(kept.mean() / 50 - 0.7) < 0.01
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.5)
    d = layers.Dropout(0.5, seed=1)
    np.testing.assert_array_equal(d(x[:3]), x[:3])
    assert set(np.unique(d(x[:3], training=True))) <= {0.0, 2.0}


def test_dropout_active_in_training_not_in_inference(rng):
    """Dropout before the output layer changes training outputs, never predictions."""
    x = rng.normal(size=(32, 5)).astype(np.float32)
    set_random_seed(4)
    m = models.Sequential([layers.Input(shape=(5,)), layers.Dense(8, activation="relu"),
                           layers.Dropout(0.5), layers.Dense(1, use_bias=False)])
    m.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    m.fit(x, np.zeros(32), epochs=1, batch_size=32, shuffle=False, verbose=0)
    w1, b1, w2 = [a.astype(np.float64) for a in m.get_weights()]
    h = np.maximum(x @ w1 + b1, 0)
    # train with lr 0 and a probe metric to see the dropped hidden layer's effect
    seen = []
    m.compile(optimizer=optimizers.SGD(0.0), loss="mse",
              metrics=[lambda yt, yp: seen.append(np.array(yp)) or np.zeros(len(yp))])
    m.fit(x, np.zeros(32), epochs=1, batch_size=32, shuffle=False, verbose=0)
    y_drop = seen[0][:, 0]
    assert not np.allclose(y_drop, (h @ w2)[:, 0])  # dropout active in training
    np.testing.assert_allclose(m.predict(x, verbose=0)[:, 0], (h @ w2)[:, 0], rtol=1e-5, atol=1e-6)


def test_dropout_same_seed_reproducible_and_rate_zero_is_identity(rng):
    x = rng.normal(size=(128, 10)).astype(np.float32)
    y = rng.integers(0, 3, 128)

    def run(rate):
        set_random_seed(11)
        m = models.Sequential([layers.Dense(32, activation="relu", input_shape=(10,)),
                               layers.Dropout(rate), layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return m.get_weights()

    for a, b in zip(run(0.4), run(0.4)):
        np.testing.assert_array_equal(a, b)
    set_random_seed(11)
    plain = models.Sequential([layers.Dense(32, activation="relu", input_shape=(10,)),
                               layers.Dense(3, activation="softmax")])
    plain.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    plain.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(run(0.0), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_elementwise_layers_before_flatten(rng):
    """Dropout and elementwise activations may precede Flatten on image-like
    samples (as in Keras); per-axis layers there are refused clearly."""
    x = rng.random((6, 4, 5)).astype(np.float32)
    m = models.Sequential([layers.Input(shape=(4, 5)), layers.Activation("tanh"),
                           layers.Dropout(0.2), layers.Flatten(), layers.Dense(3)])
    w, b = m.get_weights()
    np.testing.assert_allclose(m.predict(x, verbose=0), np.tanh(x.reshape(6, 20)) @ w + b,
                               rtol=1e-5, atol=1e-6)
    m.compile(optimizer="sgd", loss="mse")
    m.fit(x, np.ones((6, 3)), verbose=0)
    for bad in (layers.Activation("softmax"), layers.BatchNormalization()):
        with pytest.raises(ValueError, match=type(bad).__name__):
            models.Sequential([layers.Input(shape=(4, 5)), bad, layers.Flatten(), layers.Dense(3)])


def test_dropout_masks_same_for_any_thread_count(rng):
    """The mask is drawn in chunks on the pool (each element a function of the
    generator's state and its index): masks of several chunks, an odd element
    count and input dropout give the same weights on 1 and 2 threads."""
    import fastdense
    x = rng.normal(size=(301, 120)).astype(np.float32)
    y = rng.integers(0, 3, 301)

    def run(threads):
        old = fastdense.get_num_threads()
        fastdense.set_num_threads(threads)
        try:
            set_random_seed(3)
            m = models.Sequential([layers.Input(shape=(120,)), layers.Dropout(0.2),
                                   layers.Dense(333, activation="relu"), layers.Dropout(0.5),
                                   layers.Dense(3, activation="softmax")])
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            m.fit(x, y, epochs=2, batch_size=101, verbose=0)  # (101 x 333: odd, 3 chunks)
            return m.get_weights()
        finally:
            fastdense.set_num_threads(old)

    for a, b in zip(run(1), run(2)):
        np.testing.assert_array_equal(a, b)


def test_input_arguments_as_keras():
    """Keras 3's Input / InputLayer arguments: batch_shape, batch_size, an
    integer or float64 dtype (the data is computed in float32), and its
    errors; the symbolic tensor's shape includes the batch axis."""
    import fastdense as fd
    assert fd.Input((3,)).shape == (None, 3) and fd.Input(shape=(3,), batch_size=4).shape == (4, 3)
    assert fd.Input(batch_shape=(None, 5)).shape == (None, 5)
    assert fd.Input((3,), dtype="int32").dtype == "int32"
    for inp in (fd.Input(batch_shape=(None, 3)), fd.layers.InputLayer(batch_shape=(2, 3)),
                fd.Input((3,), dtype="int32"), fd.Input((3,), dtype="float64")):
        m = fd.Sequential([inp, fd.layers.Dense(2)])
        assert m.input_shape == (None, 3)
        p = m.predict(np.ones((5, 3), np.int32), verbose=0)
        assert p.shape == (5, 2) and p.dtype == np.float32
    with pytest.raises(ValueError, match="both `shape` and `batch_shape`"):
        fd.Input((3,), batch_shape=(None, 3))
    with pytest.raises(ValueError, match="both `batch_size` and `batch_shape`"):
        fd.Input(batch_size=2, batch_shape=(None, 3))
    with pytest.raises(ValueError, match="You must pass a `shape` argument"):
        fd.Input()
    with pytest.raises(ValueError, match="dtype='string'"):
        fd.Input((3,), dtype="string")


def test_second_input_is_refused_as_keras():
    import fastdense as fd
    msg = ("Sequential model 'twice' has already been configured to use input shape "
           r"\(None, 3\). You cannot add a different Input layer to it.")
    with pytest.raises(ValueError, match=msg):
        fd.Sequential([fd.Input((3,)), fd.Input((3,)), fd.layers.Dense(2)], name="twice")
    m = fd.Sequential(name="twice")
    m.add(fd.Input((3,)))
    m.add(fd.layers.Dense(2))
    with pytest.raises(ValueError, match=msg):
        m.add(fd.Input((3,)))
    assert len(m.layers) == 1


def test_identity_layer():
    """keras.layers.Identity: no work in the model, a Keras config, saved
    and loaded."""
    import fastdense as fd
    r = np.random.default_rng(0)
    x = r.normal(size=(16, 4)).astype(np.float32)
    m = fd.Sequential([fd.Input((4,)), fd.layers.Identity(), fd.layers.Dense(3, activation="relu"),
                       fd.layers.Identity(name="idt"), fd.layers.Dense(2)])
    plain = fd.Sequential([fd.Input((4,)), fd.layers.Dense(3, activation="relu"),
                           fd.layers.Dense(2)])
    plain.set_weights(m.get_weights())
    np.testing.assert_array_equal(m.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert m.layers[2].get_config() == {
        "name": "idt", "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                  "registered_name": None}}
    np.testing.assert_array_equal(m.layers[0](x), x)
    again = fd.models.model_from_json(m.to_json())
    assert [type(layer).__name__ for layer in again.layers] == [
        "Identity", "Dense", "Identity", "Dense"]
    m.compile("sgd", "mse")
    plain.compile("sgd", "mse")
    y = r.normal(size=(16, 2)).astype(np.float32)
    assert (m.fit(x, y, epochs=2, shuffle=False, verbose=0).history
            == plain.fit(x, y, epochs=2, shuffle=False, verbose=0).history)


@pytest.mark.parametrize("name", sorted(ALL))
def test_dense_activation_side_by_side_with_keras(name):
    """Dense(activation=name) in real Keras (JAX) and fastdense: predictions
    and two epochs of SGD from the same weights."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    r = np.random.default_rng(sorted(ALL).index(name))
    x = r.normal(scale=1.5, size=(48, 5)).astype(np.float32)
    y = r.normal(size=(48, 3)).astype(np.float32)
    out, w0 = {}, None
    for lib in (keras, models):
        L = keras.layers if lib is keras else layers
        m = lib.Sequential([L.Input((5,)), L.Dense(6, activation=name), L.Dense(3)])
        if w0 is None:
            w0 = [np.asarray(a) for a in m.get_weights()]
        else:
            m.set_weights(w0)
        opt = keras.optimizers.SGD(0.01) if lib is keras else optimizers.SGD(0.01)
        m.compile(optimizer=opt, loss="mse")
        p0 = np.asarray(m.predict(x, verbose=0))
        h = m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
        out[lib is keras] = (p0, h)
    np.testing.assert_allclose(out[False][0], out[True][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[False][1], out[True][1], rtol=1e-5)


LAYER_CASES = [
    lambda L: L.Dense(3, activation="relu", kernel_regularizer="l2"), lambda L: L.Dropout(0.3),
    lambda L: L.BatchNormalization(momentum=0.9), lambda L: L.LeakyReLU(0.1),
    lambda L: L.Rescaling(0.5, 1.0), lambda L: L.Identity(), lambda L: L.Flatten(),
    lambda L: L.Activation("tanh"), lambda L: L.Dense(2, activation=L.ELU(0.5)),
    lambda L: L.Normalization(mean=[1.0, 2.0], variance=[1.0, 4.0]),
]


def _without_names(d):
    if isinstance(d, dict):
        return {k: _without_names(v) for k, v in d.items() if k != "name"}
    if isinstance(d, (list, tuple)):
        return [_without_names(v) for v in d]
    return d


@pytest.mark.parametrize("k", range(len(LAYER_CASES)))
def test_layers_serialize_and_deserialize(k):
    layer = LAYER_CASES[k](layers)
    s = layers.serialize(layer)
    assert s["module"] == "keras.layers" and s["class_name"] == type(layer).__name__
    back = layers.deserialize(s)
    assert type(back) is type(layer) and back.get_config() == layer.get_config()
    d = layers.Dense(3)
    d.build((None, 4))
    again = layers.deserialize(layers.serialize(d))
    assert again.built and again.kernel.shape == (4, 3)


@pytest.mark.parametrize("k", range(len(LAYER_CASES) - 1))
def test_layers_serialize_as_keras(k):
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    kl, fl = LAYER_CASES[k](keras.layers), LAYER_CASES[k](layers)
    ks, fs = keras.layers.serialize(kl), layers.serialize(fl)
    assert _without_names(fs) == _without_names(ks)
    assert type(layers.deserialize(ks)) is type(fl)
    assert type(keras.layers.deserialize(fs)) is type(kl)
