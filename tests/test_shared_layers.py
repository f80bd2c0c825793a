"""A layer in several models (Keras allows it): every model computes with the
latest weights, whichever model trained them last."""
import numpy as np

import fastdense as keras
from fastdense import layers


def _data(n=16, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _dense_ref(layer, x):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def test_predict_sees_weights_another_model_trained():
    x, y = _data()
    d = layers.Dense(4, input_shape=(3,))
    m1 = keras.Sequential([d])
    m2 = keras.Sequential([d, layers.Dense(1)])
    before = m1.predict(x, verbose=0)
    m2.compile("sgd", "mse")
    m2.fit(x, y, epochs=3, verbose=0)
    after = m1.predict(x, verbose=0)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _dense_ref(d, x), rtol=1e-5, atol=1e-6)
    # every way of running m1
    np.testing.assert_allclose(m1(x), after, rtol=1e-6)
    np.testing.assert_allclose(m1.predict_on_batch(x), after, rtol=1e-6)
    np.testing.assert_allclose(m1.predict(x[:1], verbose=0, batch_size=1), after[:1], rtol=1e-6)


def test_training_alternates_between_models():
    x, y = _data()
    d = layers.Dense(4, input_shape=(3,))
    m1 = keras.Sequential([d, layers.Dense(1)])
    m2 = keras.Sequential([d, layers.Dense(1)])
    for m in (m1, m2):
        m.compile("sgd", "mse")
    m1.fit(x, y, epochs=1, verbose=0, shuffle=False)
    k1 = d.kernel.numpy()
    m2.predict(x, verbose=0)  # (m2 takes the values: they are m1's)
    np.testing.assert_array_equal(d.kernel.numpy(), k1)
    m2.fit(x, y, epochs=1, verbose=0, shuffle=False)
    start = [w.numpy() for w in m1.weights]  # (d as m2 left it, m1's own head)
    assert not np.array_equal(start[0], k1)
    m1.fit(x, y, epochs=1, verbose=0, shuffle=False)
    # m1 went on from m2's values: the same as a fresh model started there
    ref = keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(1)])
    ref.set_weights(start)
    ref.compile("sgd", "mse")
    ref.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m1.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_evaluate_and_get_weights_follow():
    x, y = _data()
    d = layers.Dense(1, input_shape=(3,))
    m1 = keras.Sequential([d])
    m2 = keras.Sequential([d])
    for m in (m1, m2):
        m.compile("sgd", "mse")
    m2.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(m1.get_weights()[0], m2.get_weights()[0])
    assert m1.evaluate(x, y, verbose=0) == m2.evaluate(x, y, verbose=0)


def test_callback_running_another_model_during_fit():
    x, y = _data()
    d = layers.Dense(4, input_shape=(3,))
    probe = keras.Sequential([d])
    m = keras.Sequential([d, layers.Dense(1)])
    m.compile("sgd", "mse")
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(probe.predict(x[:2], verbose=0))

    m.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[Probe()])
    # the last probe ran before the last update; the weights after fit are m's
    np.testing.assert_allclose(probe.predict(x, verbose=0), _dense_ref(d, x), rtol=1e-5,
                               atol=1e-6)
    # and training went on through the probes: 8 steps moved the kernel each time
    assert len({s.tobytes() for s in seen}) == len(seen)
