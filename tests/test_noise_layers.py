"""GaussianNoise, GaussianDropout, AlphaDropout and ActivityRegularization:
the engine's noise kinds (cpp/dropout.cpp) against their distributions, the
same bits at any thread count, float64 finite-difference gradients through a
fixed draw; the model layout that places them on the stages; Keras 3's
configs, errors and files; and, where Keras is installed, the same inference,
losses and (noise off) training as Keras side by side."""
import os

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_grads_match, at_thread_counts, one_step, stage_net
from fastdense import _core, layers, models

GAUSSIAN, GAUSSIAN_DROPOUT, ALPHA_DROPOUT = 1, 2, 3
ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def _alpha_ab(rate):
    a = ((1 - rate) * (1 + rate * ALPHA_P ** 2)) ** -0.5
    return a, -a * ALPHA_P * rate


def _draw(kind, param, x, seed=5):
    """The engine's training output of one Identity stage with that noise."""
    net = _core.Network(x.shape[1], [{"kind": 2, "noise": kind, "noise_param": param}])
    net.set_seed(seed)
    return net.forward_train(np.ascontiguousarray(x, np.float32))


def test_gaussian_noise_is_additive_with_that_stddev(rng):
    x = rng.normal(size=(400, 501)).astype(np.float32)  # (an odd width: the last pair's half)
    noise = _draw(GAUSSIAN, 0.3, x).astype(np.float64) - x
    assert abs(noise.mean()) < 3e-3 and noise.std() == pytest.approx(0.3, rel=5e-3)
    # standard normal quantiles (Box-Muller): ~68.3% within one stddev
    assert np.mean(np.abs(noise) < 0.3) == pytest.approx(0.6827, abs=4e-3)
    np.testing.assert_array_equal(_draw(GAUSSIAN, 0.0, x), x)


def test_gaussian_dropout_multiplies_by_mean_one_noise(rng):
    x = np.full((400, 500), 2.0, np.float32)
    for rate in (0.1, 0.5):
        m = _draw(GAUSSIAN_DROPOUT, rate, x) / 2.0
        assert m.mean() == pytest.approx(1.0, abs=3e-3)
        assert m.std() == pytest.approx(np.sqrt(rate / (1 - rate)), rel=5e-3)


def test_alpha_dropout_values_rate_and_moments(rng):
    x = rng.normal(size=(400, 500)).astype(np.float32)
    rate = 0.2
    y = _draw(ALPHA_DROPOUT, rate, x)
    a, b = _alpha_ab(rate)
    dropped_value = np.float32(a) * np.float32(ALPHA_P) + np.float32(b)
    dropped = y == dropped_value
    assert dropped.mean() == pytest.approx(rate, abs=3e-3)
    np.testing.assert_allclose(y[~dropped], np.float32(a) * x[~dropped] + np.float32(b),
                               rtol=1e-6, atol=1e-6)
    # the point of it: zero mean and unit variance in, the same out
    assert abs(y.mean()) < 5e-3 and y.std() == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("kind,param", [(GAUSSIAN, 0.5), (GAUSSIAN_DROPOUT, 0.3),
                                        (ALPHA_DROPOUT, 0.25)])
def test_same_bits_at_any_thread_count_and_seed_decides(rng, kind, param):
    x = rng.normal(size=(300, 333)).astype(np.float32)  # (~50k pairs: several tasks)
    outs = at_thread_counts(lambda: _draw(kind, param, x))
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])
    assert not np.array_equal(_draw(kind, param, x, seed=6), outs[0])


def _fixed_map(kind, param, B, H, seed):
    """The draw as out = in * M + C (from inputs of ones and zeros)."""
    one = _draw(kind, param, np.ones((B, H), np.float32), seed).astype(np.float64)
    zero = _draw(kind, param, np.zeros((B, H), np.float32), seed).astype(np.float64)
    return one - zero, zero


@pytest.mark.parametrize("kind,param", [(GAUSSIAN, 0.5), (GAUSSIAN_DROPOUT, 0.3),
                                        (ALPHA_DROPOUT, 0.25)])
def test_gradients_match_float64_finite_differences(rng, kind, param):
    B, din, H, U = 7, 4, 6, 3
    net = stage_net(din, [{"kind": 0, "units": H, "activation": 3, "noise": kind,
                           "noise_param": param}, {"kind": 0, "units": U}])
    net.params[:] = rng.normal(size=net.num_params).astype(np.float32) * 0.7
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, U)).astype(np.float32)
    net.set_seed(11)
    one_step(net, x, t)
    M, C = _fixed_map(kind, param, B, H, 11)

    def loss(q):
        h = np.tanh(x.astype(np.float64) @ q[0] + q[1]) * M + C
        return np.mean(np.mean((h @ q[2] + q[3] - t) ** 2, axis=1))

    assert_grads_match(net, loss)


# ------------------------------------------------------------------ the model
def _layout(*stack):
    m = models.Sequential([layers.Input(shape=(5,)), *stack])
    stages, owners, activity, input_dropout = m._engine_layout()
    return [{k: v for k, v in st.items() if k in ("kind", "dropout", "noise", "noise_param",
                                                     "activation")} for st in stages], \
        [o.name for o in owners], activity, input_dropout


def test_layout_puts_each_change_on_a_stage_in_order():
    stages, owners, _, _ = _layout(layers.GaussianNoise(0.1, name="gn"),
                                   layers.Dense(4, name="d"), layers.GaussianDropout(0.2),
                                   layers.Dropout(0.5, name="drop"),
                                   layers.AlphaDropout(0.1, name="ad"), layers.Dense(2))
    assert stages[0] == {"kind": 2, "activation": 0, "dropout": 0.0, "noise": 1,
                         "noise_param": 0.1}  # (input noise: an Identity stage)
    assert stages[1]["noise"] == 2 and stages[1]["dropout"] == 0.0
    assert stages[2] == {"kind": 2, "activation": 0, "dropout": 0.5}  # (after the noise)
    assert stages[2].get("noise") is None
    assert stages[3] == {"kind": 2, "activation": 0, "dropout": 0.0, "noise": 3,
                         "noise_param": 0.1}
    assert owners == ["gn", "d", "drop", "ad", "dense"]
    # a zero rate or stddev adds nothing, as in Keras; noise after a Dropout (or an
    # activation after noise) gets a stage of its own
    stages, _, _, keep = _layout(layers.Dropout(0.5), layers.GaussianNoise(0.0),
                                 layers.Dense(4), layers.Dropout(0.2), layers.GaussianNoise(0.3),
                                 layers.Activation("relu"), layers.Dense(2))
    assert keep == 0.5 and stages[0]["dropout"] == 0.2 and "noise" not in stages[0]
    assert stages[1] == {"kind": 2, "activation": 0, "dropout": 0.0, "noise": 1,
                         "noise_param": 0.3}
    assert stages[2] == {"kind": 2, "activation": 1, "dropout": 0.0}


def test_activity_regularization_joins_the_stage_before_it():
    _, _, activity, _ = _layout(layers.Dense(4), layers.ActivityRegularization(l1=0.1),
                                layers.Dense(2))
    assert activity[0]._factors() == (0.1, 0.0) and activity[1] is None
    stages, _, activity, _ = _layout(layers.Dense(4), layers.Dropout(0.2),
                                     layers.ActivityRegularization(l2=0.3), layers.Dense(2))
    assert stages[1] == {"kind": 2, "activation": 0, "dropout": 0.0}  # (sees the dropped output)
    assert activity[0] is None and activity[1]._factors() == (0.0, 0.3)


def test_activity_regularization_adds_keras_penalty(rng):
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.normal(size=(40, 2)).astype(np.float32)
    m = models.Sequential([layers.Input(shape=(5,)), layers.Dense(4),
                           layers.ActivityRegularization(l1=0.1, l2=0.2), layers.Dense(2)])
    m.compile("sgd", "mse")
    W1, b1, W2, b2 = [w.astype(np.float64) for w in m.get_weights()]
    h = x @ W1 + b1
    total = 0.0
    for s in range(0, 40, 16):  # (each batch's penalty over its size, weighted by it)
        hb, yb = h[s:s + 16], y[s:s + 16]
        pen = (0.1 * np.abs(hb).sum() + 0.2 * (hb ** 2).sum()) / len(hb)
        total += (np.mean((hb @ W2 + b2 - yb) ** 2) + pen) * len(hb)
    assert m.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(total / 40, rel=1e-5)


def test_noise_runs_only_in_training_and_seeds_reproduce(rng):
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.normal(size=(64, 2)).astype(np.float32)

    def build(noisy):
        extra = [layers.GaussianNoise(0.3), layers.GaussianDropout(0.2)] if noisy else []
        return models.Sequential([layers.Input(shape=(5,)), *extra[:1], layers.Dense(8),
                                  *extra[1:], layers.Dense(2)])

    plain, noisy = build(False), build(True)
    plain.build((None, 5))
    noisy.build((None, 5))
    noisy.set_weights(plain.get_weights())
    np.testing.assert_array_equal(noisy.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert not np.allclose(noisy(x, training=True), noisy(x))
    weights = []
    for _ in range(2):
        fd.utils.set_random_seed(3)
        m = build(True)
        m.compile("adam", "mse")
        m.fit(x, y, epochs=2, verbose=0)
        weights.append(m.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_configs_round_trip():
    for layer in (layers.GaussianNoise(0.2, seed=3), layers.GaussianDropout(0.4),
                  layers.AlphaDropout(0.1, seed=1), layers.ActivityRegularization(0.1, 0.2)):
        cfg = layer.get_config()
        again = type(layer).from_config(cfg)
        assert again.get_config() == cfg
        assert type(layers.deserialize(layers.serialize(layer))) is type(layer)
    assert layers.GaussianNoise(0.2).get_config()["stddev"] == 0.2
    assert "activity_regularizer" not in layers.ActivityRegularization(0.1).get_config()


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_save_and_load(tmp_path, rng, ext):
    pytest.importorskip("h5py")  # (.keras files hold an HDF5 weights file too)
    x = rng.normal(size=(32, 5)).astype(np.float32)
    m = models.Sequential([layers.Input(shape=(5,)), layers.GaussianNoise(0.1),
                           layers.Dense(8, activation="selu"), layers.AlphaDropout(0.1),
                           layers.ActivityRegularization(l2=0.01), layers.Dense(8),
                           layers.GaussianDropout(0.3), layers.Dense(2)])
    m.compile("adam", "mse")
    m.fit(x, x[:, :2], epochs=1, verbose=0)
    path = str(tmp_path / f"m{ext}")
    m.save(path)
    back = models.load_model(path)
    assert [l.get_config() for l in back.layers] == [l.get_config() for l in m.layers]
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    assert back.evaluate(x, x[:, :2], verbose=0) == m.evaluate(x, x[:, :2], verbose=0)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"`stddev`.*Received: stddev=1.5"):
        layers.GaussianNoise(1.5)
    with pytest.raises(ValueError, match=r"`rate`.*Received: rate=-0.1"):
        layers.GaussianDropout(-0.1)
    with pytest.raises(ValueError, match="`rate`"):
        layers.AlphaDropout("0.1")
    with pytest.raises(NotImplementedError, match="noise_shape"):
        layers.AlphaDropout(0.1, noise_shape=(None, 1))
    with pytest.raises(NotImplementedError, match="activity_regularizer"):
        models.Sequential([layers.Input(shape=(3,)), layers.Dense(2),
                           layers.GaussianNoise(0.1, activity_regularizer="l1")]).build((None, 3))
    with pytest.raises(ValueError, match="rate of 1"):
        models.Sequential([layers.Input(shape=(3,)), layers.Dense(2),
                           layers.GaussianDropout(1.0), layers.Dense(1)]).build((None, 3))
    with pytest.raises(ValueError, match="not both"):
        _core.Network(3, [{"kind": 2, "dropout": 0.1, "noise": 1, "noise_param": 0.1}])
    with pytest.raises(ValueError, match="noise_param"):
        _core.Network(3, [{"kind": 2, "noise": 2, "noise_param": 1.0}])


# ------------------------------------------------- side by side with real Keras
def _keras_stack(lib, off):
    L = lib.layers
    return [L.Input(shape=(12,)), L.GaussianNoise(0.0 if off else 0.2),
            L.Dense(16, activation="selu"), L.AlphaDropout(0.0 if off else 0.1), L.Dense(16),
            L.ActivityRegularization(l1=0.01, l2=0.02), L.GaussianDropout(0.0 if off else 0.3),
            L.Activation("relu"), L.Dense(3)]


@pytest.mark.parametrize("off", [True, False])
def test_side_by_side_with_keras(rng, off):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = rng.normal(size=(300, 3)).astype(np.float32)
    km, fm = keras.Sequential(_keras_stack(keras, off)), models.Sequential(_keras_stack(fd, off))
    fm.build((None, 12))
    fm.set_weights(km.get_weights())
    assert [l.get_config() for l in fm.layers] == [l.get_config() for l in km.layers]
    np.testing.assert_allclose(fm.predict(x, verbose=0), km.predict(x, verbose=0), atol=2e-6)
    km.compile("adam", "mse")
    fm.compile("adam", "mse")
    assert fm.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0),
                                                         rel=1e-6)
    if off:  # (with the noise on, the draws differ: the distributions are tested above)
        args = dict(epochs=3, batch_size=32, verbose=0, shuffle=False)
        np.testing.assert_allclose(fm.fit(x, y, **args).history["loss"],
                                   km.fit(x, y, **args).history["loss"], rtol=2e-6)


def test_gaussian_draws_follow_the_normal_distribution():
    # 2M draws against the standard normal's CDF at 13 points (each within ~5
    # standard errors), its tails, and the pair's independence; the sincos and
    # log the draws use are the engine's own (vectorized) approximations
    from math import erf, sqrt
    x = np.zeros((2000, 1000), np.float32)
    z = _draw(GAUSSIAN, 1.0, x).astype(np.float64).ravel()
    for q in (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        p = 0.5 * (1 + erf(q / sqrt(2)))
        se = sqrt(p * (1 - p) / z.size)
        assert abs(np.mean(z < q) - p) < 5 * se + 1e-7, q
    assert abs(z.mean()) < 5 / sqrt(z.size) and z.std() == pytest.approx(1.0, abs=3e-3)
    assert np.mean(np.abs(z) > 4) == pytest.approx(6.3e-5, rel=0.4)
    assert np.abs(z).max() < 6.0
    pairs = z.reshape(-1, 2)
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 5 / sqrt(len(pairs))
    assert abs(np.corrcoef(pairs[:, 0] ** 2, pairs[:, 1] ** 2)[0, 1]) < 5 / sqrt(len(pairs))
