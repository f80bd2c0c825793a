"""Optimizers' gradient_accumulation_steps (Keras's): a step adds its
gradients to an accumulator, every N-th step updates with their mean; the
optimizer's iterations count updates. Against numpy statements of the rule,
against plain training on batches N times larger (SGD), and side by side with
Keras where it is installed."""

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_same_bits_at_thread_counts
from _keras_side import assert_optimizer_like_keras

F32 = np.float32


def data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype(F32), rng.normal(size=(n, 2)).astype(F32)


def build(lib, bn=False):
    layers = [lib.Input((6,)), lib.layers.Dense(16, activation="relu")]
    if bn:
        layers.append(lib.layers.BatchNormalization())
    layers += [lib.layers.Dense(8, activation="tanh"), lib.layers.Dense(2)]
    return lib.Sequential(layers)


def test_two_half_batches_make_one_batch():
    """SGD: the mean of two 16-sample batches' gradients is the 32-sample
    batch's (mse's mean over equal halves): the same weights, to rounding."""
    x, y = data()
    big, acc = build(fd), build(fd)
    acc.set_weights(big.get_weights())
    big.compile(fd.optimizers.SGD(0.1), "mse")
    acc.compile(fd.optimizers.SGD(0.1, gradient_accumulation_steps=2), "mse")
    big.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
    acc.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(acc.get_weights(), big.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(acc.optimizer.iterations) == int(big.optimizer.iterations) == 9
    assert int(acc.optimizer.variables[0].numpy()) == 18  # (the steps, as Keras keeps them)


def test_standalone_apply_rule():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 2)).astype(F32)
    v = fd.Variable(w0.copy())
    opt = fd.optimizers.SGD(0.5, gradient_accumulation_steps=3)
    w, acc = w0.copy(), np.zeros_like(w0)
    for it in range(7):
        g = rng.normal(size=w0.shape).astype(F32)
        opt.apply_gradients([(g, v)])
        if (it + 1) % 3 == 0:
            w = w - F32(0.5) * ((g + acc) / F32(3))
            acc = np.zeros_like(acc)
        else:
            acc = g + acc
        np.testing.assert_array_equal(np.asarray(v.numpy()), w)
    assert int(opt.iterations) == 7 // 3


def test_file_mid_accumulation_resumes_exactly(tmp_path):
    pytest.importorskip("h5py")
    x, y = data(2)
    m = build(fd, bn=True)
    m.compile(fd.optimizers.Adam(gradient_accumulation_steps=4), "mse")
    m.fit(x[:48], y[:48], epochs=1, batch_size=16, shuffle=False, verbose=0)  # (3 of 4 steps)
    m.save(tmp_path / "m.keras")
    r = fd.models.load_model(tmp_path / "m.keras")
    names = [v.path.split("/")[-1] for v in r.optimizer.variables]
    assert sum(n.endswith("_gradient_accumulator") for n in names) == len(m.trainable_weights)
    for a, b in zip(m.optimizer.variables, r.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    h1 = m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    h2 = r.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    assert h1 == h2
    assert r.optimizer.get_config()["gradient_accumulation_steps"] == 4


def test_same_bits_at_any_thread_count():
    x, y = data(3, n=512)

    def run():
        fd.utils.set_random_seed(5)
        m = fd.Sequential([fd.Input((6,)), fd.layers.Dense(300, activation="relu"),
                           fd.layers.Dense(2)])
        m.compile(fd.optimizers.RMSprop(gradient_accumulation_steps=3, use_ema=True), "mse")
        m.fit(x, y, epochs=2, batch_size=32, verbose=0)
        return m.get_weights() + [np.asarray(v) for v in m.optimizer.variables]

    assert_same_bits_at_thread_counts(run)


def test_sparse_inputs_take_the_unfused_path():
    """MNIST-like sparse inputs (the column selection) with accumulation: the
    skipped columns' gradients are zeros in the accumulator too."""
    rng = np.random.default_rng(4)
    x = (rng.random((256, 100)) * (rng.random((256, 100)) > 0.7)).astype(F32)
    x[:, :30] = 0.0
    y = np.eye(3, dtype=F32)[rng.integers(0, 3, 256)]
    ref, acc = [fd.Sequential([fd.Input((100,)), fd.layers.Dense(64, activation="relu"),
                               fd.layers.Dense(3, activation="softmax")]) for _ in range(2)]
    acc.set_weights(ref.get_weights())
    ref.compile(fd.optimizers.SGD(0.1), "categorical_crossentropy")
    acc.compile(fd.optimizers.SGD(0.1, gradient_accumulation_steps=2), "categorical_crossentropy")
    ref.fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
    acc.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(acc.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_argument_errors():
    for bad in (1, 0.5, -3):
        with pytest.raises(ValueError, match="`gradient_accumulation_steps` must be an integer "
                                             ">= 2"):
            fd.optimizers.Adam(gradient_accumulation_steps=bad)


@pytest.mark.parametrize("name,kw,bn", [
    ("Adam", {"gradient_accumulation_steps": 2}, False),
    ("RMSprop", {"gradient_accumulation_steps": 3, "clipnorm": 0.5}, True),
    ("SGD", {"gradient_accumulation_steps": 2, "momentum": 0.9, "use_ema": True,
             "ema_overwrite_frequency": 2}, False),
    ("Adam", {"gradient_accumulation_steps": 4, "learning_rate": "schedule"}, False),
])
def test_side_by_side_with_keras(tmp_path, name, kw, bn):
    x, y = data(5)

    def make(lib):
        args = dict(kw)
        if args.get("learning_rate") == "schedule":
            args["learning_rate"] = lib.optimizers.schedules.ExponentialDecay(0.01, 3, 0.5)
        return getattr(lib.optimizers, name)(**args)

    assert_optimizer_like_keras(lambda lib: build(lib, bn), make, x, y, tmp_path,
                                same_config=False)


def _graph(lib):
    a = lib.Input((6,), name="a")
    d = lib.layers.Dense(8, activation="relu", name="shared")
    h1, h2 = d(a), lib.layers.Dense(8, name="p")(a)
    s = lib.layers.Add(name="add")([h1, h2])
    h3 = d(lib.layers.Dense(6, name="q")(s))
    o1 = lib.layers.Dense(2, name="o1")(lib.layers.Concatenate(name="cat")([s, h3]))
    return lib.Model(a, [o1, lib.layers.Dense(1, name="o2")(h3)])


@pytest.mark.parametrize("kw", [dict(use_ema=True, ema_overwrite_frequency=3),
                                dict(gradient_accumulation_steps=2, use_ema=True)])
def test_graph_with_a_shared_layer_and_two_outputs_side_by_side_with_keras(kw):
    keras = pytest.importorskip("keras")
    x, y = data(6)
    y2 = y[:, :1] * 2
    keras.backend.clear_session()
    fd.backend.clear_session()
    km, fm = _graph(keras), _graph(fd)
    fm.set_weights(km.get_weights())
    km.compile(keras.optimizers.Adam(**kw), ["mse", "mse"])
    fm.compile(fd.optimizers.Adam(**kw), ["mse", "mse"])
    hk = km.fit(x, [y, y2], epochs=3, batch_size=16, shuffle=False, verbose=0).history
    hf = fm.fit(x, [y, y2], epochs=3, batch_size=16, shuffle=False, verbose=0).history
    assert sorted(hk) == sorted(hf)
    for k in hk:
        np.testing.assert_allclose(hf[k], hk[k], rtol=1e-6)
    for a, b in zip(fm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [v.path for v in km.optimizer.variables] == [v.path for v in fm.optimizer.variables]


def test_engine_setters_raise_value_error():
    """The engine's own checks (std::invalid_argument) reach Python as
    ValueError with their messages."""
    m = build(fd)
    m.compile(fd.optimizers.SGD(0.1), "mse")
    m.fit(*data(), epochs=1, batch_size=32, verbose=0)
    with pytest.raises(ValueError, match="`ema_momentum` must be in the range"):
        m._net.set_ema(True, 2.0, 1)
    with pytest.raises(ValueError, match="`gradient_accumulation_steps` must be an integer"):
        m._net.set_grad_accumulation(1)
