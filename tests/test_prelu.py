"""PReLU: the engine's stage (cpp/activations.cpp prelu_forward / backward)
against numpy, float64 finite-difference gradients (alpha per feature and
shared), the same bits at any thread count; Keras 3's weights, config, files
and errors; and, where Keras is installed, training side by side with it."""
import os

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_grads_match, at_thread_counts, one_step, stage_net, stats
from fastdense import _core, layers, models


def _prelu_ref(x, alpha):
    x = np.asarray(x, np.float64)
    return np.maximum(x, 0) - alpha * np.maximum(-x, 0)


@pytest.mark.parametrize("shared", [False, True])
def test_forward_matches_numpy(rng, shared):
    B, C = 33, 17
    x = rng.normal(size=(B, C)).astype(np.float32)
    x[0, :3] = [0.0, -0.0, np.nan]
    net = _core.Network(C, [{"kind": 4, "shared": shared}])
    (_, off, shape, trainable), = net.variables()
    assert shape == ((1,) if shared else (C,)) and trainable
    np.testing.assert_array_equal(net.params, 0.0)  # (Keras's zeros)
    alpha = rng.normal(size=shape).astype(np.float32)
    net.params[off:off + alpha.size] = alpha
    y = net.predict(x, 8)
    np.testing.assert_allclose(y[1:], _prelu_ref(x[1:], alpha), rtol=1e-6, atol=1e-7)
    assert y[0, 0] == 0 and y[0, 1] == 0 and np.isnan(y[0, 2])


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("act", [0, 3])
def test_gradients_match_float64_finite_differences(rng, shared, act):
    B, din, H, U = 9, 5, 7, 3
    net = stage_net(din, [{"kind": 0, "units": H},
                          {"kind": 4, "shared": shared, "activation": act},
                          {"kind": 0, "units": U}])
    net.params[:] = rng.normal(size=net.num_params).astype(np.float32) * 0.7
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, U)).astype(np.float32)
    one_step(net, x, t)
    x64, t64 = x.astype(np.float64), t.astype(np.float64)

    def loss(q):
        h = _prelu_ref(x64 @ q[0] + q[1], q[2])
        h = np.tanh(h) if act == 3 else h
        return np.mean(np.mean((h @ q[3] + q[4] - t64) ** 2, axis=1))

    assert_grads_match(net, loss)


@pytest.mark.parametrize("shared", [False, True])
def test_same_bits_at_any_thread_count(rng, shared):
    x = rng.normal(size=(128, 40)).astype(np.float32)
    t = rng.normal(size=(128, 4)).astype(np.float32)

    def run():
        net = stage_net(40, [{"kind": 0, "units": 300}, {"kind": 4, "shared": shared},
                             {"kind": 0, "units": 4}])
        net.params[:] = np.random.default_rng(1).normal(size=net.num_params) * 0.1
        net.train_batches(x, t, None, None, 64, 0, 2, 3, stats(), None)
        return net.grads.copy()

    grads = at_thread_counts(run)
    for g in grads[1:]:
        np.testing.assert_array_equal(g, grads[0])


def _model(prelu, din=6):
    return models.Sequential([layers.Input(shape=(din,)), layers.Dense(8), prelu,
                              layers.Dense(3)])


def test_weights_config_and_standalone_call(rng):
    m = _model(layers.PReLU(alpha_initializer=fd.initializers.Constant(0.25)))
    m.build((None, 6))
    prelu = m.layers[1]
    assert [w.path for w in m.weights][2] == "sequential/p_re_lu/alpha"
    np.testing.assert_array_equal(prelu.alpha.numpy(), np.full(8, 0.25, np.float32))
    x = rng.normal(size=(10, 6)).astype(np.float32)
    np.testing.assert_allclose(m.layers[2](prelu(m.layers[0](x))), m.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    cfg = prelu.get_config()
    assert cfg["shared_axes"] is None and cfg["alpha_initializer"]["class_name"] == "Constant"
    assert layers.PReLU.from_config(cfg).get_config() == cfg
    shared = _model(layers.PReLU(shared_axes=1))
    shared.build((None, 6))
    assert shared.layers[1].alpha.shape == (1,) and shared.layers[1].shared_axes == [1]
    assert shared.count_params() == 6 * 8 + 8 + 1 + 8 * 3 + 3


def test_regularizer_constraint_and_freezing(rng):
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    m = _model(layers.PReLU(alpha_initializer=fd.initializers.Constant(-0.5),
                            alpha_regularizer=fd.regularizers.L1(0.1),
                            alpha_constraint=fd.constraints.NonNeg()))
    m.compile("sgd", "mse")
    m.build((None, 6))
    mse = float(np.mean((m.predict(x, verbose=0) - y) ** 2))
    assert m.evaluate(x, y, verbose=0) == pytest.approx(mse + 0.1 * 0.5 * 8, rel=1e-5)
    m.fit(x, y, epochs=2, verbose=0)
    assert (m.layers[1].alpha.numpy() >= 0).all()
    m.layers[1].trainable = False
    m.compile("adam", "mse")
    before = m.layers[1].alpha.numpy()
    m.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(m.layers[1].alpha.numpy(), before)


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_save_and_load(tmp_path, rng, ext):
    pytest.importorskip("h5py")  # (.keras files hold an HDF5 weights file too)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    m = _model(layers.PReLU(alpha_initializer="random_normal", shared_axes=[1]))
    m.compile("adam", "mse")
    m.fit(x, x[:, :3], epochs=1, verbose=0)
    path = str(tmp_path / f"m{ext}")
    m.save(path)
    back = models.load_model(path)
    assert back.layers[1].get_config() == m.layers[1].get_config()
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_errors():
    with pytest.raises(TypeError, match="shared_axes"):
        layers.PReLU(shared_axes="1")
    with pytest.raises(ValueError, match="shared_axes"):
        _model(layers.PReLU(shared_axes=[2])).build((None, 6))


@pytest.mark.parametrize("variant", ["plain", "shared_regularized", "activity"])
def test_training_matches_keras(rng, variant):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = rng.normal(size=(300, 3)).astype(np.float32)

    def stack(lib):
        L = lib.layers
        if variant == "plain":
            return [L.Dense(16), L.PReLU()]
        if variant == "shared_regularized":
            return [L.PReLU(alpha_initializer=lib.initializers.Constant(0.25)), L.Dense(16),
                    L.PReLU(shared_axes=[1], alpha_regularizer="l2",
                            alpha_constraint="non_neg"), L.Activation("tanh")]
        return [L.Dense(16), L.PReLU(alpha_initializer="random_normal",
                                     activity_regularizer="l2")]

    km = keras.Sequential([keras.Input(shape=(12,)), *stack(keras), keras.layers.Dense(3)])
    fm = models.Sequential([layers.Input(shape=(12,)), *stack(fd), layers.Dense(3)])
    fm.build((None, 12))
    fm.set_weights(km.get_weights())
    assert [w.path for w in fm.weights] == [w.path for w in km.weights]
    assert [l.get_config() for l in fm.layers] == [l.get_config() for l in km.layers]
    for opt in ("adam", "sgd"):
        km.compile(opt, "mse")
        fm.compile(opt, "mse")
        args = dict(epochs=2, batch_size=32, verbose=0, shuffle=False, validation_split=0.2)
        kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
        for key in kh:
            np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=f"{opt} {key}")
        for a, b in zip(fm.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
