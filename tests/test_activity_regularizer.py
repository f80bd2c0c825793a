"""activity_regularizer: Keras 3 adds ``regularizer(output) / batch_size`` of
each layer's output to the batch's loss (training and evaluation); its
gradient flows into every layer below. Checked against a float64 numpy
reference of the loss and its finite-difference gradient."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import layers, models, regularizers


def _ref_loss(params, x, t, l1, l2):
    W1, b1, W2, b2 = params
    h = np.maximum(x @ W1 + b1, 0)
    y = h @ W2 + b2
    B = x.shape[0]
    act = (l1 * np.abs(h).sum() + l2 * (h ** 2).sum()) / B
    return np.mean((y - t) ** 2) + act


def _model(l1, l2):
    return models.Sequential([layers.Input(shape=(5,)),
                              layers.Dense(6, activation="relu",
                                           activity_regularizer=regularizers.L1L2(l1, l2)),
                              layers.Dense(1)])


def test_loss_value_and_gradient(rng):
    x = rng.normal(size=(12, 5)).astype(np.float32)
    t = rng.normal(size=(12, 1)).astype(np.float32)
    m = _model(0.03, 0.05)
    w = [w.astype(np.float64) for w in m.get_weights()]
    expected = _ref_loss(w, x.astype(np.float64), t.astype(np.float64), 0.03, 0.05)
    m.compile(optimizer=fd.optimizers.SGD(0.0), loss="mse")
    assert m.evaluate(x, t, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert m.train_on_batch(x, t) == pytest.approx(expected, rel=1e-5)
    # one SGD step with lr=1 moves each weight by minus its gradient
    m.compile(optimizer=fd.optimizers.SGD(1.0), loss="mse")
    m.train_on_batch(x, t)
    after = m.get_weights()
    for k in range(4):
        num = np.zeros(w[k].size)
        for i in range(w[k].size):
            for s in (1, -1):
                q = [a.copy() for a in w]
                q[k].flat[i] += s * 1e-6
                num[i] += s * _ref_loss(q, x.astype(np.float64), t.astype(np.float64), 0.03,
                                        0.05) / 2e-6
        np.testing.assert_allclose((w[k] - after[k]).ravel(), num, rtol=2e-3, atol=2e-5)


def test_custom_loss_path_and_evaluate_include_the_penalty(rng):
    x = rng.normal(size=(20, 5)).astype(np.float32)
    t = rng.normal(size=(20, 1)).astype(np.float32)
    m1, m2 = _model(0.1, 0.0), _model(0.1, 0.0)
    m2.set_weights(m1.get_weights())
    m1.compile(optimizer="sgd", loss="mse")
    m2.compile(optimizer="sgd", loss=lambda a, b: fd.ops.mean(fd.ops.square(a - b), axis=-1))
    h1 = m1.fit(x, t, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    h2 = m2.fit(x, t, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5)
    assert m1.evaluate(x, t, verbose=0) == pytest.approx(m2.evaluate(x, t, verbose=0), rel=1e-5)
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_last_layer_and_activation_layer_regularizers(rng):
    """On the output layer (the loss's fused gradient is then not used) and on
    the pre-activation of a Dense followed by an Activation layer."""
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    m = models.Sequential([layers.Input(shape=(5,)), layers.Dense(4, activity_regularizer="l2"),
                           layers.Activation("tanh"),
                           layers.Dense(3, activation="softmax", activity_regularizer="l1")])
    W1, b1, W2, b2 = [w.astype(np.float64) for w in m.get_weights()]
    z = x @ W1 + b1
    p = np.exp(np.tanh(z) @ W2 + b2)
    p /= p.sum(1, keepdims=True)
    ce = -np.mean(np.log(p[np.arange(16), y]))
    expected = ce + 0.01 * (z ** 2).sum() / 16 + 0.01 * np.abs(p).sum() / 16
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert m.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_config():
    d = layers.Dense(3, activity_regularizer="l1")
    assert d.get_config()["activity_regularizer"] == {
        "module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.009999999776482582},
        "registered_name": None}
    with pytest.raises(NotImplementedError):
        models.Sequential([layers.Input(shape=(3,)), layers.Dense(2),
                           layers.Dropout(0.1, activity_regularizer="l1")]).build((None, 3))
