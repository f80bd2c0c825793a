"""LayerNormalization / RMSNormalization: the engine's row normalization
(cpp/layernorm.cpp) against a numpy reference in its three modes, float64
finite-difference gradients through the row statistics, the same bits at any
thread count; then the layers' Keras 3 semantics (weights, config, errors,
files) and, where Keras is installed, training and files side by side with it."""
import os
import warnings

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_grads_match, at_thread_counts, one_step, stage_net, stats
from fastdense import _core, layers, models

MODES = {0: "layer", 1: "variance_scale", 2: "rms", 3: "unit"}


def _ln_ref(x, gamma, beta, eps, mode):
    """float64 reference of layernorm.h's three modes."""
    x = np.asarray(x, np.float64)
    if mode == 3:  # (eps unused: 1/norm capped at 1e12)
        with np.errstate(divide="ignore"):
            r = 1.0 / np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
        return x * np.minimum(r, 1e12)
    if mode == 2:
        r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    else:
        r = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    y = (x - x.mean(axis=-1, keepdims=True)) * r if mode == 0 else x * r
    if gamma is not None:
        y = y * gamma
    if beta is not None and mode == 0:
        y = y + beta
    return y


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False),
                                          (False, False)])
def test_forward_matches_numpy_in_training_and_inference(rng, mode, center, scale):
    B, C = 37, 13
    x = (rng.normal(size=(B, C)) * 3 + 2).astype(np.float32)
    net = stage_net(C, [{"kind": 3, "norm_mode": mode, "use_bias": center, "scale": scale,
                    "epsilon": 1e-3}])
    vars_ = net.variables()
    has_beta = center and mode == 0  # (the other modes have no beta, as Keras)
    scale = scale and mode != 3  # (nor has the unit mode a gamma)
    assert len(vars_) == scale + has_beta and all(v[3] for v in vars_)
    p = net.params
    np.testing.assert_array_equal(p[:C] if scale else p[:0], np.ones(C if scale else 0))
    gamma = rng.normal(size=C).astype(np.float32) if scale else None
    beta = rng.normal(size=C).astype(np.float32) if has_beta else None
    for (_, off, _, _), v in zip(vars_, [v for v in (gamma, beta) if v is not None]):
        p[off:off + C] = v
    ref = _ln_ref(x, gamma, beta, 1e-3, mode)
    ypred = np.empty((B, C), np.float32)
    net.train_batches(x, np.zeros((B, C), np.float32), None, None, B, 0, 1, 3, stats(), ypred)
    np.testing.assert_allclose(ypred, ref, rtol=1e-5, atol=2e-6)
    np.testing.assert_array_equal(net.predict(x, 8), ypred)  # (no running statistics)


def test_rows_of_one_value_and_large_offsets_stay_finite(rng):
    C = 64
    x = np.full((3, C), 7.0, np.float32)
    x[1] = 1e4 + rng.normal(size=C).astype(np.float32)  # (sums in double)
    x[2] = 0.0
    for mode in MODES:
        y = stage_net(C, [{"kind": 3, "norm_mode": mode}]).predict(x, 3)
        assert np.isfinite(y).all()
        # (Keras's form x * inv - mean * inv cancels in float32 when the mean
        # dwarfs the spread: 1e4 * 2^-24 is ~6e-4 per term)
        np.testing.assert_allclose(y, _ln_ref(x, None, None, 1e-3, mode), rtol=1e-4,
                                   atol=2e-3 if mode == 0 else 1e-5)
    y = stage_net(C, [{"kind": 3}]).predict(x, 3)
    np.testing.assert_array_equal(y[0], 0.0)


def _mlp_ref(params, x, t, mode, act, center, scale):
    """float64 loss of Dense(W1, b1) -> LN(gamma, beta, act) -> Dense(W2, b2), MSE."""
    it = iter(params)
    W1, b1 = next(it), next(it)
    g = next(it) if scale and mode != 3 else None
    be = next(it) if center and mode == 0 else None
    W2, b2 = next(it), next(it)
    h = _ln_ref(x @ W1 + b1, g, be, 1e-3, mode)
    h = np.tanh(h) if act == 3 else h
    y = h @ W2 + b2
    return np.mean(np.mean((y - t) ** 2, axis=1))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("act,center,scale", [(3, True, True), (0, True, True),
                                              (3, False, True), (0, True, False)])
def test_gradients_match_float64_finite_differences(rng, mode, act, center, scale):
    B, din, H, U = 9, 5, 7, 3
    net = stage_net(din, [{"kind": 0, "units": H},
                          {"kind": 3, "norm_mode": mode, "activation": act, "use_bias": center,
                           "scale": scale},
                          {"kind": 0, "units": U}])
    net.params[:] = rng.normal(size=net.num_params).astype(np.float32) * 0.7
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, U)).astype(np.float32)
    one_step(net, x, t)
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    assert_grads_match(net, lambda q: _mlp_ref(q, x64, t64, mode, act, center, scale))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_same_bits_at_any_thread_count(rng, mode):
    B, din, H = 96, 40, 300  # (several row tasks and column slabs)
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, 4)).astype(np.float32)

    def run():
        net = stage_net(din, [{"kind": 0, "units": H}, {"kind": 3, "norm_mode": mode},
                              {"kind": 0, "units": 4}])
        net.params[:] = np.random.default_rng(1).normal(size=net.num_params) * 0.1
        net.train_batches(x, t, None, None, 32, 0, 3, 3, stats(), None)
        return net.grads.copy()

    out = at_thread_counts(run)
    for g in out[1:]:
        np.testing.assert_array_equal(g, out[0])


def test_bad_stage_arguments_raise():
    with pytest.raises(ValueError, match="epsilon"):
        _core.Network(4, [{"kind": 3, "epsilon": 0.0}])
    with pytest.raises(ValueError, match="norm_mode"):
        _core.Network(4, [{"kind": 3, "norm_mode": 4}])


# ------------------------------------------------------------------- the layers
def _model(*norms, din=6):
    return models.Sequential([layers.Input(shape=(din,)), layers.Dense(8), *norms,
                              layers.Dense(3)])


def test_weights_names_order_and_defaults():
    m = _model(layers.LayerNormalization(), layers.RMSNormalization(),
               layers.LayerNormalization(center=False, scale=False), layers.UnitNormalization())
    m.build((None, 6))
    assert [w.path for w in m.weights] == [
        "sequential/dense/kernel", "sequential/dense/bias",
        "sequential/layer_normalization/gamma", "sequential/layer_normalization/beta",
        "sequential/rms_normalization/scale", "sequential/dense_1/kernel",
        "sequential/dense_1/bias"]
    ln, rms, bare, unit = m.layers[1:5]
    assert unit.weights == [] and unit.get_config()["axis"] == -1  # (Keras keeps it an int)
    np.testing.assert_array_equal(ln.gamma.numpy(), np.ones(8))
    np.testing.assert_array_equal(ln.beta.numpy(), np.zeros(8))
    np.testing.assert_array_equal(rms.scale.numpy(), np.ones(8))
    assert bare.weights == [] and bare.count_params() == 0
    assert (ln.epsilon, rms.epsilon) == (1e-3, 1e-6)
    assert ln.axis == [-1] and layers.LayerNormalization().axis == -1  # (a list once built)
    assert m.count_params() == 6 * 8 + 8 + 16 + 8 + 8 * 3 + 3


def test_rms_scaling_warns_and_keeps_gamma_only():
    with pytest.warns(UserWarning, match="rms_scaling=True"):
        ln = layers.LayerNormalization(rms_scaling=True, scale=False)
    m = _model(ln)
    m.build((None, 6))
    assert [w.name for w in ln.weights] == ["gamma"]
    assert ln.get_config()["rms_scaling"] is True


@pytest.mark.parametrize("make", [
    lambda: layers.LayerNormalization(epsilon=1e-2),
    lambda: layers.LayerNormalization(center=False),
    lambda: layers.RMSNormalization(),
    lambda: layers.UnitNormalization(),
])
def test_standalone_call_matches_the_engine(rng, make):
    m = _model(make())
    m.build((None, 6))
    for w in m.layers[1].weights:
        w.assign(rng.normal(size=w.shape))
    x = rng.normal(size=(20, 6)).astype(np.float32)
    dense, norm, out = m.layers
    h = dense(x)
    np.testing.assert_allclose(out(norm(h)), m.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    gamma = norm.weights[0].numpy() if norm.weights else None
    beta = norm.beta.numpy() if getattr(norm, "beta", None) is not None else None
    np.testing.assert_allclose(norm(h), _ln_ref(h, gamma, beta, norm.epsilon, norm._mode),
                               rtol=1e-5, atol=1e-5)


def test_training_moves_gamma_and_beta_and_freezing_keeps_them(rng):
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    m = _model(layers.LayerNormalization(), layers.Activation("tanh"))
    m.compile("adam", "mse")
    m.fit(x, y, epochs=2, verbose=0)
    ln = m.layers[1]
    assert not np.allclose(ln.gamma.numpy(), 1) and not np.allclose(ln.beta.numpy(), 0)
    ln.trainable = False
    m.compile("adam", "mse")
    before = [w.numpy() for w in m.weights]
    m.fit(x, y, epochs=2, verbose=0)
    after = [w.numpy() for w in m.weights]
    np.testing.assert_array_equal(after[2], before[2])
    np.testing.assert_array_equal(after[3], before[3])
    assert not np.array_equal(after[0], before[0])  # (gradients still flow through it)
    assert [w.name for w in m.trainable_weights] == ["kernel", "bias", "kernel", "bias"]


def test_regularizers_and_constraints_run_natively(rng):
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.normal(size=(32, 3)).astype(np.float32)
    m = _model(layers.LayerNormalization(gamma_regularizer=fd.regularizers.L2(0.5),
                                         beta_constraint=fd.constraints.NonNeg()))
    m.compile("sgd", "mse")
    m.build((None, 6))
    ln = m.layers[1]
    ln.gamma.assign(np.full(8, 2.0))
    mse = float(np.mean((m.predict(x, verbose=0) - y) ** 2))
    assert m.evaluate(x, y, verbose=0) == pytest.approx(mse + 0.5 * 4.0 * 8, rel=1e-5)
    assert ln.losses[0] == pytest.approx(16.0)
    m.fit(x, y, epochs=3, verbose=0)
    assert (ln.beta.numpy() >= 0).all()


def test_config_round_trip_and_serialize():
    ln = layers.LayerNormalization(epsilon=1e-4, center=False, gamma_initializer="zeros",
                                   beta_regularizer="l1", name="ln")
    cfg = ln.get_config()
    assert cfg["axis"] == -1 and cfg["epsilon"] == 1e-4 and cfg["center"] is False
    back = layers.LayerNormalization.from_config(cfg)
    assert back.get_config() == cfg
    rms = layers.RMSNormalization(epsilon=1e-5, name="r")
    assert {k: rms.get_config()[k] for k in ("axis", "epsilon", "name")} == {
        "axis": -1, "epsilon": 1e-5, "name": "r"}
    again = layers.deserialize(layers.serialize(rms))
    assert type(again) is layers.RMSNormalization and again.epsilon == 1e-5


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_save_and_load(tmp_path, rng, ext):
    pytest.importorskip("h5py")  # (.keras files hold an HDF5 weights file too)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.normal(size=(32, 3)).astype(np.float32)
    m = _model(layers.LayerNormalization(beta_initializer="random_normal"),
               layers.Activation("relu"), layers.RMSNormalization())
    m.compile("adam", "mse")
    m.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / f"m{ext}")
    m.save(path)
    back = models.load_model(path)
    assert [type(l).__name__ for l in back.layers] == [type(l).__name__ for l in m.layers]
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    assert back.layers[1].get_config() == m.layers[1].get_config()


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="epsilon"):
        layers.LayerNormalization(epsilon=0)
    with pytest.raises(ValueError, match="epsilon"):
        layers.RMSNormalization(epsilon=float("nan"))
    with pytest.raises(TypeError, match="axis"):
        layers.LayerNormalization(axis="last")
    with pytest.raises(NotImplementedError, match="axis=0"):
        _model(layers.LayerNormalization(axis=0)).build((None, 6))
    with pytest.raises(NotImplementedError, match=r"axis=\[0, 1\]"):
        _model(layers.LayerNormalization(axis=[0, 1])).build((None, 6))
    with pytest.raises(ValueError, match="Unrecognized keyword"):
        layers.RMSNormalization(center=True)


# ------------------------------------------------- side by side with real Keras
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()  # (its name counters, as conftest resets fastdense's)
    return keras


def _keras_stack(lib, variant):
    L = lib.layers
    if variant == "ln_tanh":
        return [L.Dense(16), L.LayerNormalization(), L.Activation("tanh")]
    if variant == "ln_bare":
        return [L.Dense(16), L.LayerNormalization(center=False, scale=False, epsilon=1e-5)]
    if variant == "rms_scaling":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return [L.Dense(16), L.LayerNormalization(rms_scaling=True)]
    if variant == "rms_relu":
        return [L.Dense(16), L.RMSNormalization(), L.Activation("relu")]
    if variant == "unit":
        return [L.Dense(16), L.UnitNormalization(), L.Activation("elu")]
    if variant == "regularized":
        return [L.Dense(16), L.LayerNormalization(gamma_regularizer="l2",
                                                  beta_regularizer=lib.regularizers.L1(0.01),
                                                  gamma_constraint="non_neg")]
    return [L.LayerNormalization(), L.Dense(16, activation="relu")]  # "first"


@pytest.mark.parametrize("opt", ["adam", "sgd"])
@pytest.mark.parametrize("variant", ["ln_tanh", "ln_bare", "rms_scaling", "rms_relu",
                                     "unit", "regularized", "first"])
def test_training_matches_keras(rng, variant, opt):
    keras = _keras()
    x = (rng.normal(size=(300, 12)) * 2 + 0.5).astype(np.float32)
    y = rng.normal(size=(300, 3)).astype(np.float32)
    km = keras.Sequential([keras.Input(shape=(12,)), *_keras_stack(keras, variant),
                           keras.layers.Dense(3)])
    fm = models.Sequential([layers.Input(shape=(12,)), *_keras_stack(fd, variant),
                            layers.Dense(3)])
    fm.build((None, 12))
    fm.set_weights(km.get_weights())
    assert [w.path for w in fm.weights] == [w.path for w in km.weights]
    km.compile(opt, "mse")
    fm.compile(opt, "mse")
    args = dict(epochs=3, batch_size=32, verbose=0, shuffle=False, validation_split=0.2)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    assert sorted(kh) == sorted(fh)
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=key)
    for a, b in zip(fm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fm.predict(x, verbose=0), km.predict(x, verbose=0), atol=5e-6)
    k_norm = next(l for l in km.layers if "Normalization" in type(l).__name__)
    f_norm = next(l for l in fm.layers if "Normalization" in type(l).__name__)
    assert f_norm.get_config() == k_norm.get_config()


@pytest.mark.parametrize("writer", ["keras", "fastdense"])
def test_keras_files_load_both_ways(tmp_path, rng, writer):
    keras = _keras()
    x = rng.normal(size=(64, 12)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)

    def build(lib):
        L = lib.layers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return lib.models.Sequential([
                L.Input(shape=(12,)), L.LayerNormalization(beta_initializer="random_normal"),
                L.Dense(16), L.LayerNormalization(gamma_regularizer="l2", center=False),
                L.Activation("relu"), L.Dense(16), L.RMSNormalization(epsilon=1e-5),
                L.Dense(8), L.LayerNormalization(rms_scaling=True), L.UnitNormalization(),
                L.Dense(3)])

    src, dst = (keras, fd) if writer == "keras" else (fd, keras)
    m = build(src)
    m.compile("adam", "mean_squared_error")
    m.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "m.keras")
    m.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        back = dst.models.load_model(path)
    np.testing.assert_allclose(back.predict(x, verbose=0), m.predict(x, verbose=0), atol=5e-6)
    for a, b in zip(back.layers, m.layers):
        assert a.get_config() == b.get_config()
    assert [v.shape for v in back.optimizer.variables] == \
        [v.shape for v in m.optimizer.variables]
