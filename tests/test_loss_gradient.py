"""A ``losses.Loss`` subclass may supply its own gradient.

``gradient(y_true, y_pred)`` returns the gradient of the per-sample losses
(``d sum(call(y_true, y_pred)) / d y_pred``); fastdense applies the sample
weights and the reduction to it exactly as its automatic differentiation of
``call`` does. Without the method, ``call`` is differentiated automatically.
"""
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import losses, ops
from fastdense.losses import reduce_values, value_and_gradient

REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none", None, "mean"]


class HandMSE(losses.Loss):
    """MSE with a hand-written gradient."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gradient_calls = 0

    def call(self, y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1)

    def gradient(self, y_true, y_pred):
        self.gradient_calls += 1
        return 2.0 * (y_pred - y_true) / y_pred.shape[-1]


class AutoMSE(losses.Loss):
    """The same loss without a gradient: differentiated automatically."""

    def call(self, y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1)


class PseudoHuber(losses.Loss):
    """delta**2 * (sqrt(1 + (e / delta)**2) - 1), summed over the units."""

    def __init__(self, delta=0.7, **kwargs):
        super().__init__(**kwargs)
        self.delta = delta

    def call(self, y_true, y_pred):
        e = (y_pred - y_true) / self.delta
        return np.sum(self.delta ** 2 * (np.sqrt(1.0 + e * e) - 1.0), axis=-1)

    def gradient(self, y_true, y_pred):
        e = (y_pred - y_true) / self.delta
        return self.delta * e / np.sqrt(1.0 + e * e)


def _reduced(loss, y_true, y_pred, sw):
    """The reduced loss in float64 (the rule fit uses: 'none' is averaged)."""
    t = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64)
    v = loss.call(t, p)
    if sw is not None:
        v = v * np.asarray(sw, np.float64).reshape((-1,) + (1,) * (np.ndim(v) - 1))
    if loss.reduction == "sum":
        return float(np.sum(v))
    if loss.reduction == "mean_with_sample_weight" and sw is not None:
        return float(np.sum(v) / np.sum(sw))
    return float(np.mean(v))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cls", [HandMSE, PseudoHuber])
def test_gradient_matches_finite_differences(rng, cls, reduction, weighted):
    loss = cls(reduction=reduction)
    t = rng.normal(size=(7, 3))
    p = rng.normal(size=(7, 3))
    sw = rng.uniform(0.1, 2.0, 7) if weighted else None
    value, grad = value_and_gradient(loss, t, p, sw)
    assert grad.shape == p.shape and grad.dtype == np.float32
    assert value == pytest.approx(_reduced(loss, t, p, sw), rel=1e-5)
    eps = 1e-4
    fd_grad = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        hi, lo = p.copy(), p.copy()
        hi[idx] += eps
        lo[idx] -= eps
        fd_grad[idx] = (_reduced(loss, t, hi, sw) - _reduced(loss, t, lo, sw)) / (2 * eps)
    np.testing.assert_allclose(grad, fd_grad, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_supplied_gradient_equals_autodiff(rng, reduction, weighted):
    # the same value and gradient as fastdense's differentiation of `call`
    t = rng.normal(size=(6, 4)).astype("float32")
    p = rng.normal(size=(6, 4)).astype("float32")
    sw = rng.uniform(0.1, 2.0, 6).astype("float32") if weighted else None
    if reduction in ("none", None):
        # an unreduced loss has no gradient to train with (Keras-JAX raises too)
        m = fd.Sequential([fd.Input((3,)), fd.layers.Dense(4)])
        m.compile("sgd", AutoMSE(reduction=reduction))
        with pytest.raises(TypeError, match="scalar-output"):
            m._python_loss_and_grad(t, p, sw)
        return
    results = []
    for loss in (HandMSE(reduction=reduction), AutoMSE(reduction=reduction)):
        m = fd.Sequential([fd.Input((3,)), fd.layers.Dense(4)])
        m.compile("sgd", loss)
        results.append(m._python_loss_and_grad(t, p, sw))
    (v1, g1), (v2, g2) = results
    assert v1 == pytest.approx(v2, rel=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-8)


def _train(loss, x, y, w0=None, **fit_kwargs):
    fd.utils.set_random_seed(0)
    m = fd.Sequential([fd.Input((x.shape[1],)), fd.layers.Dense(16, activation="tanh"),
                       fd.layers.Dense(y.shape[1] if y.ndim > 1 else 1)])
    if w0 is not None:
        m.set_weights(w0)
    m.compile(fd.optimizers.SGD(0.05, momentum=0.9), loss)
    h = m.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0, **fit_kwargs)
    return m, h.history["loss"]


@pytest.mark.parametrize("kind", ["plain", "sample_weight", "class_weight", "rank1_targets",
                                  "validation"])
def test_hand_written_mse_trains_like_builtin_mse(rng, kind):
    x = rng.normal(size=(200, 8)).astype("float32")
    y = rng.normal(size=(200, 3)).astype("float32")
    kwargs = {}
    if kind == "sample_weight":
        kwargs["sample_weight"] = rng.uniform(0.1, 2.0, 200).astype("float32")
    if kind == "class_weight":
        y = np.eye(3, dtype="float32")[rng.integers(0, 3, 200)]
        kwargs["class_weight"] = {0: 0.5, 1: 2.0, 2: 1.0}
    if kind == "rank1_targets":
        y = rng.normal(size=(200,)).astype("float32")
    if kind == "validation":
        kwargs["validation_split"] = 0.25
    base, base_loss = _train("mse", x, y, **kwargs)
    hand = HandMSE()
    m, hand_loss = _train(hand, x, y, w0=None, **kwargs)
    n_train = 150 if kind == "validation" else 200
    assert hand.gradient_calls == 3 * -(-n_train // 32)  # once per batch, never autodiff
    np.testing.assert_allclose(hand_loss, base_loss, rtol=1e-5)
    for a, b in zip(m.get_weights(), base.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if kind == "validation":
        assert m.history.history["val_loss"] == pytest.approx(
            base.history.history["val_loss"], rel=1e-5)


def test_plain_loss_subclass_without_gradient_uses_autodiff(rng):
    x = rng.normal(size=(128, 8)).astype("float32")
    y = rng.normal(size=(128, 3)).astype("float32")
    base, base_loss = _train("mse", x, y)
    auto, auto_loss = _train(AutoMSE(), x, y)
    np.testing.assert_allclose(auto_loss, base_loss, rtol=1e-5)
    for a, b in zip(auto.get_weights(), base.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_supplied_gradient_replaces_autodiff(rng):
    # call is not traceable (it leaves numpy through float()), and the
    # gradient is deliberately zero: training must not move the weights
    class Opaque(losses.Loss):
        def call(self, y_true, y_pred):
            return np.array([float(v) for v in np.mean((y_pred - y_true) ** 2, axis=-1)],
                            dtype="float32")

        def gradient(self, y_true, y_pred):
            return np.zeros_like(y_pred)

    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 2)).astype("float32")
    m = fd.Sequential([fd.Input((4,)), fd.layers.Dense(2)])
    m.compile(fd.optimizers.SGD(0.1), Opaque())
    w0 = m.get_weights()
    h = m.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for a, b in zip(m.get_weights(), w0):
        np.testing.assert_array_equal(a, b)
    expected = float(np.mean((m.predict(x, verbose=0) - y) ** 2))
    assert h.history["loss"][-1] == pytest.approx(expected, rel=1e-5)
    # without the gradient the same call cannot be differentiated
    class OpaqueNoGrad(losses.Loss):
        call = Opaque.call

    m.compile(fd.optimizers.SGD(0.1), OpaqueNoGrad())
    with pytest.raises(TypeError, match=r"not connected to y_pred.*define gradient\(y_true, "
                                        r"y_pred\)"):
        m.fit(x, y, batch_size=16, epochs=1, verbose=0)


def test_train_on_batch_and_evaluate_use_the_loss(rng):
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")
    models = []
    for loss in ("mse", HandMSE()):
        fd.utils.set_random_seed(5)
        m = fd.Sequential([fd.Input((4,)), fd.layers.Dense(2)])
        m.compile(fd.optimizers.Adam(0.01), loss)
        out = [m.train_on_batch(x, y) for _ in range(3)]
        models.append((m, out, m.evaluate(x, y, verbose=0)))
    (m1, o1, e1), (m2, o2, e2) = models
    np.testing.assert_allclose(o2, o1, rtol=1e-5)
    assert e2 == pytest.approx(e1, rel=1e-5)
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_builtin_subclass_with_gradient_or_call_leaves_the_native_kernel(rng):
    class Scaled(losses.MeanSquaredError):
        def gradient(self, y_true, y_pred):
            return 2.0 * 2.0 * (y_pred - y_true) / y_pred.shape[-1]  # twice mse's

    class Doubled(losses.MeanSquaredError):
        def call(self, y_true, y_pred):
            return 2.0 * super().call(y_true, y_pred)

    assert losses.MeanSquaredError()._native() is not None
    assert Scaled()._native() is None and Doubled()._native() is None
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 2)).astype("float32")
    w = []
    for loss in (Scaled(), Doubled()):
        fd.utils.set_random_seed(2)
        m = fd.Sequential([fd.Input((4,)), fd.layers.Dense(2)])
        m.compile(fd.optimizers.SGD(0.05), loss)
        h = m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        w.append(m.get_weights())
    # both train with twice mse's gradient
    for a, b in zip(*w):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert h.history["loss"][0] > 0


def test_gradient_of_wrong_shape_is_rejected(rng):
    class Bad(losses.Loss):
        def call(self, y_true, y_pred):
            return np.mean((y_pred - y_true) ** 2, axis=-1)

        def gradient(self, y_true, y_pred):
            return np.mean(y_pred - y_true, axis=-1)

    class NotNumeric(Bad):
        def gradient(self, y_true, y_pred):
            return "grad"

    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    m = fd.Sequential([fd.Input((4,)), fd.layers.Dense(2)])
    m.compile("sgd", Bad())
    with pytest.raises(ValueError, match=r"Bad.gradient\(y_true, y_pred\) must return an array "
                                         r"of y_pred's shape \(8, 2\).*Received: an array of "
                                         r"shape \(8,\)"):
        m.fit(x, y, verbose=0)
    m.compile("sgd", NotNumeric())
    with pytest.raises(ValueError, match="must return a numeric array"):
        m.train_on_batch(x, y)


def test_call_must_give_per_sample_values_with_a_gradient(rng):
    class Flat(losses.Loss):
        def call(self, y_true, y_pred):
            return np.reshape((y_pred - y_true) ** 2, (-1,))

        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true)

    with pytest.raises(ValueError, match=r"must return one loss value per sample"):
        value_and_gradient(Flat(), np.zeros((4, 3)), np.ones((4, 3)))


def test_scalar_call_result(rng):
    # a call that already reduces to a scalar: its gradient is the scalar's
    class Mean(losses.Loss):
        def call(self, y_true, y_pred):
            return np.mean((y_pred - y_true) ** 2)

        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true) / y_pred.size

    t = rng.normal(size=(5, 2))
    p = rng.normal(size=(5, 2))
    v, g = value_and_gradient(Mean(), t, p)
    assert v == pytest.approx(float(np.mean((p - t) ** 2)), rel=1e-5)
    np.testing.assert_allclose(g, 2 * (p - t) / p.size, rtol=1e-5)


def test_is_documented():
    assert "gradient(y_true, y_pred)" in losses.Loss.__doc__
    assert "per-sample" in losses.Loss.__doc__


# ------------------------------------------------------ side by side with Keras
def test_keras_parity_custom_loss_with_gradient():
    """The pseudo-Huber loss written with keras.ops (Keras differentiates it)
    and as a fastdense Loss with a hand-written gradient train alike."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")

    class KerasPseudoHuber(keras.losses.Loss):
        def call(self, y_true, y_pred):
            e = (y_pred - y_true) / 0.7
            return keras.ops.sum(0.49 * (keras.ops.sqrt(1.0 + e * e) - 1.0), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype("float32")
    y = rng.normal(size=(96, 2)).astype("float32") * 2
    sw = rng.uniform(0.2, 2.0, 96).astype("float32")
    w0, out = None, []
    for lib, loss in ((keras, KerasPseudoHuber()), (fd, PseudoHuber(0.7))):
        m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(8, activation="relu"),
                            lib.layers.Dense(2)])
        if w0 is None:
            w0 = [np.array(v) for v in m.get_weights()]
        m.set_weights(w0)
        m.compile(lib.optimizers.Adam(0.01), loss)
        h = m.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, sample_weight=sw)
        out.append((h.history["loss"], [np.array(v) for v in m.get_weights()]))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-4)
    for a, b in zip(out[1][1], out[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
