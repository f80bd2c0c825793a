"""kernel_regularizer / bias_regularizer: the penalty joins the loss and its
gradient the update, as in Keras 3 (values recorded from Keras 3.15.1 on JAX
with the same weights agree to 6e-8; see tests/test_keras_parity.py)."""
import numpy as np
import pytest

from fastdense import layers, models, optimizers, regularizers


def _model(kr=None, br=None):
    m = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(5,),
                                        kernel_regularizer=kr, bias_regularizer=br)])
    m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("kr,br", [(regularizers.L2(0.01), None), (None, regularizers.L1(0.02)),
                                   (regularizers.L1L2(0.01, 0.005), regularizers.L2(0.03))])
def test_one_sgd_step_matches_numpy(rng, kr, br):
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.integers(0, 3, 16)
    m = _model(kr, br)
    w, b = [a.astype(np.float64) for a in m.get_weights()]
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[y]
    data_loss = -np.mean(np.log(p[np.arange(16), y]))

    def pen(r, v):
        if r is None:
            return 0.0, np.zeros_like(v)
        l1, l2 = r._factors()
        # d|v|/dv = +1 at 0, as JAX's abs (zero-initialised biases move)
        return l1 * np.abs(v).sum() + l2 * (v ** 2).sum(), l1 * np.where(v >= 0, 1, -1) + 2 * l2 * v

    pk, gk = pen(kr, w)
    pb, gb = pen(br, b)
    h = m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert h.history["loss"][0] == pytest.approx(data_loss + pk + pb, rel=1e-5)
    g = (p - onehot) / 16
    np.testing.assert_allclose(m.get_weights()[0], w - 0.1 * (x.T @ g + gk), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.get_weights()[1], b - 0.1 * (g.sum(0) + gb), rtol=1e-5, atol=1e-6)
    # evaluate adds the penalty of the current weights too
    w2, b2 = m.get_weights()
    assert m.evaluate(x, y, verbose=0) == pytest.approx(
        float(np.mean(-np.log(m.predict(x, verbose=0)[np.arange(16), y])))
        + pen(kr, w2.astype(np.float64))[0] + pen(br, b2.astype(np.float64))[0], rel=1e-5)


def test_frozen_layers_are_not_regularized(rng):
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.integers(0, 3, 16)
    a, b = _model(regularizers.L2(1.0)), _model()
    b.set_weights(a.get_weights())
    a.layers[0].trainable = False
    b.layers[0].trainable = False
    assert a.evaluate(x, y, verbose=0) == pytest.approx(b.evaluate(x, y, verbose=0))


def test_regularizer_objects_and_errors():
    assert regularizers.get("l2").get_config() == {"l2": 0.01}
    # (Keras 3.15 gives L1's factor back through float32, L2's as given)
    assert regularizers.get("l1").get_config() == {"l1": 0.009999999776482582}
    assert regularizers.L1(0.5).get_config() == {"l1": 0.5}
    assert regularizers.get({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}}).l2 == 0.2
    assert float(regularizers.L2(0.5)(np.array([1.0, -2.0]))) == pytest.approx(2.5)
    assert float(regularizers.L1(0.5)(np.array([1.0, -2.0]))) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="regularizer identifier: foo"):
        layers.Dense(2, kernel_regularizer="foo")
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(-1)
    assert layers.Dense(2, activity_regularizer="l2").get_config()["activity_regularizer"][
        "config"] == {"l2": 0.01}
    assert "activity_regularizer" not in layers.Dense(2).get_config()  # as Keras 3
