"""Optimizers' loss_scale_factor (Keras 3): scale_loss multiplies the loss,
apply / apply_gradients divide the gradients by the factor before the update
(so a standalone apply with unscaled gradients takes a step of grads / factor,
as in Keras), and in fit the two cancel (the engine computes the unscaled
gradients: the same bits as without a factor where it is a power of 2);
configs and files keep it; side by side with Keras where it is installed."""

import numpy as np
import pytest

import fastdense as fd
from _keras_side import assert_optimizer_like_keras

F32 = np.float32


def data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6)).astype(F32), rng.normal(size=(n, 2)).astype(F32))


def build(lib):
    return lib.Sequential([lib.Input((6,)), lib.layers.Dense(16, activation="relu"),
                           lib.layers.Dense(8, activation="tanh"), lib.layers.Dense(2)])


@pytest.mark.parametrize("opt,kw", [("RMSprop", {}), ("Adam", {"clipnorm": 0.5}),
                                     ("SGD", {"momentum": 0.9})])
def test_fit_with_a_power_of_two_factor_gives_the_same_bits(opt, kw):
    x, y = data()
    plain, scaled = build(fd), build(fd)
    scaled.set_weights(plain.get_weights())
    plain.compile(getattr(fd.optimizers, opt)(**kw), "mse")
    scaled.compile(getattr(fd.optimizers, opt)(loss_scale_factor=1024.0, **kw), "mse")
    hp = plain.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    hs = scaled.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    assert hp == hs  # (the reported loss is the unscaled one, as Keras's)
    for a, b in zip(plain.get_weights(), scaled.get_weights()):
        np.testing.assert_array_equal(a, b)
    scaled.train_on_batch(x[:8], y[:8])
    plain.train_on_batch(x[:8], y[:8])
    for a, b in zip(plain.get_weights(), scaled.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt", ["SGD", "Adam", "RMSprop"])
def test_apply_gradients_divides_by_the_factor(opt):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 4)).astype(F32)
    g = rng.normal(size=(3, 4)).astype(F32)
    factor = 3.0
    a, b = fd.Variable(w0.copy()), fd.Variable(w0.copy())
    oa = getattr(fd.optimizers, opt)(learning_rate=0.1, loss_scale_factor=factor)
    ob = getattr(fd.optimizers, opt)(learning_rate=0.1)
    for _ in range(3):
        oa.apply_gradients([(g, a)])
        ob.apply_gradients([(g / F32(factor), b)])  # (float32 division, as Keras's)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), w0)


def test_scale_loss_and_config():
    opt = fd.optimizers.Adam(loss_scale_factor=8.0)
    assert opt.loss_scale_factor == 8.0
    assert opt.scale_loss(2.5) == 20.0
    assert fd.optimizers.Adam().scale_loss(2.5) == 2.5
    cfg = opt.get_config()
    assert cfg["loss_scale_factor"] == 8.0
    back = fd.optimizers.Adam.from_config(cfg)
    assert back.loss_scale_factor == 8.0
    again = fd.optimizers.deserialize(fd.optimizers.serialize(opt))
    assert again.loss_scale_factor == 8.0
    assert fd.optimizers.Adam().get_config()["loss_scale_factor"] is None


def test_saved_model_keeps_the_factor(tmp_path):
    pytest.importorskip("h5py")
    x, y = data()
    m = build(fd)
    m.compile(fd.optimizers.RMSprop(loss_scale_factor=64.0), "mse")
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    m.save(tmp_path / "m.keras")
    back = fd.models.load_model(tmp_path / "m.keras")
    assert back.optimizer.loss_scale_factor == 64.0


@pytest.mark.parametrize("bad", [0, -2.0, float("nan"), float("inf"), "abc", True])
def test_bad_factors_raise(bad):
    with pytest.raises(ValueError, match="loss_scale_factor"):
        fd.optimizers.Adam(loss_scale_factor=bad)


# ------------------------------------------------------------ with Keras

@pytest.mark.parametrize("opt,kw", [
    ("RMSprop", {"loss_scale_factor": 1000.0}),
    ("Adam", {"loss_scale_factor": 128.0, "clipnorm": 0.5}),
    ("SGD", {"loss_scale_factor": 3.0, "momentum": 0.9, "learning_rate": 0.05}),
])
def test_side_by_side_with_keras(tmp_path, opt, kw):
    x, y = data(10)
    assert_optimizer_like_keras(build, lambda lib: getattr(lib.optimizers, opt)(**kw), x, y,
                                tmp_path)


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_standalone_apply_like_keras(opt):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(5, 3)).astype(F32)
    grads = [rng.normal(size=(5, 3)).astype(F32) for _ in range(4)]
    kv, fv = keras.Variable(w0.copy()), fd.Variable(w0.copy())
    ko = getattr(keras.optimizers, opt)(learning_rate=0.05, loss_scale_factor=3.0)
    fo = getattr(fd.optimizers, opt)(learning_rate=0.05, loss_scale_factor=3.0)
    for g in grads:
        ko.apply_gradients([(keras.ops.convert_to_tensor(g), kv)])
        fo.apply_gradients([(g, fv)])
    np.testing.assert_allclose(np.asarray(fv), np.asarray(kv), rtol=1e-6, atol=1e-7)
