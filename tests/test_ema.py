"""Optimizers' use_ema (Keras's moving averages of the trainable variables):
the averages against a float32 numpy statement of Keras's formula, the
overwrite every ema_overwrite_frequency steps, fit's finalization, the
SwapEMAWeights callback, files and configs; side by side with Keras where it
is installed."""

import io

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_same_bits_at_thread_counts
from _keras_side import assert_optimizer_like_keras

F32 = np.float32


def data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6)).astype(F32), rng.normal(size=(n, 2)).astype(F32))


def build(lib, bn=False, frozen=False):
    layers = [lib.Input((6,)), lib.layers.Dense(16, activation="relu")]
    if bn:
        layers.append(lib.layers.BatchNormalization())
    layers += [lib.layers.Dense(8, activation="tanh"), lib.layers.Dense(2)]
    m = lib.Sequential(layers)
    if frozen:
        m.layers[-2].trainable = False
    return m


def ema_reference(snapshots, momentum):
    """Keras's average after each step, in float32: m = 0 at the first step."""
    avg = None
    for i, w in enumerate(snapshots):
        m = F32(0.0) if i == 0 else F32(momentum)
        avg = [F32(0) * x if avg is None else a for a, x in zip(avg or [None] * len(w), w)]
        avg = [m * a + (F32(1.0) - m) * x for a, x in zip(avg, w)]
    return avg


class Snap(fd.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


@pytest.mark.parametrize("opt,kw", [("RMSprop", {}), ("Adam", {"ema_momentum": 0.9}),
                                     ("SGD", {"momentum": 0.9, "learning_rate": 0.05})])
def test_fit_ends_with_the_averages(opt, kw):
    """Without overwrites the averages do not change training: the plain run's
    weights after each step give the averages, which fit leaves in the model."""
    x, y = data()
    plain, ema = build(fd), build(fd)
    ema.set_weights(plain.get_weights())
    momentum = kw.pop("ema_momentum", 0.99)
    plain.compile(getattr(fd.optimizers, opt)(**kw), "mse")
    ema.compile(getattr(fd.optimizers, opt)(use_ema=True, ema_momentum=momentum, **kw), "mse")
    snap = Snap()
    hp = plain.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0, callbacks=[snap])
    he = ema.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    assert hp.history["loss"] == he.history["loss"]
    # (BatchNorm-free: every weight trainable, each with its average)
    for got, want in zip(ema.get_weights(), ema_reference(snap.weights, momentum)):
        np.testing.assert_array_equal(got, want)
    averages = [v for v in ema.optimizer.variables if v.path.endswith("_average")]
    assert len(averages) == len(ema.trainable_weights)


def test_overwrite_every_n_steps_standalone():
    """apply_gradients: SGD steps by hand, the averages and the overwrite
    every 3 steps as Keras's apply does them."""
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 2)).astype(F32)
    v = fd.Variable(w0.copy())
    opt = fd.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3)
    w, avg = w0.copy(), np.zeros_like(w0)
    for it in range(7):
        g = rng.normal(size=w0.shape).astype(F32)
        opt.apply_gradients([(g, v)])
        w = w - F32(0.1) * g
        m = F32(0) if it == 0 else F32(0.5)
        avg = m * avg + (F32(1) - m) * w
        if (it + 1) % 3 == 0:
            w = avg.copy()
        np.testing.assert_allclose(np.asarray(v.numpy()), w, rtol=1e-6, atol=1e-7)
    opt.finalize_variable_values([v])
    np.testing.assert_allclose(np.asarray(v.numpy()), avg, rtol=1e-6, atol=1e-7)


def test_overwrite_in_fit_changes_training():
    x, y = data(2)
    runs = []
    for freq in (None, 2):
        fd.utils.set_random_seed(3)
        m = build(fd, bn=True)
        m.compile(fd.optimizers.Adam(use_ema=True, ema_overwrite_frequency=freq), "mse")
        runs.append(m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
                    .history["loss"])
    assert runs[0][0] != runs[1][0]


def test_same_bits_at_any_thread_count():
    x, y = data(4, n=512)

    def run():
        fd.utils.set_random_seed(7)
        m = fd.Sequential([fd.Input((6,)), fd.layers.Dense(300, activation="relu"),
                           fd.layers.Dense(2)])
        m.compile(fd.optimizers.RMSprop(use_ema=True, ema_overwrite_frequency=5), "mse")
        m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        return m.get_weights() + [np.asarray(v) for v in m.optimizer.variables]

    assert_same_bits_at_thread_counts(run)


def test_frozen_and_batchnorm_variables():
    """Averages for the trainable variables only (not BatchNorm's moving
    statistics, not a frozen layer's weights), as Keras's optimizer."""
    x, y = data(5)
    m = build(fd, bn=True, frozen=True)
    m.compile(fd.optimizers.Adam(use_ema=True), "mse")
    frozen = [w.copy() for w in m.layers[-2].get_weights()]
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    names = [v.path.split("/")[-1] for v in m.optimizer.variables]
    assert sum(n.endswith("_average") for n in names) == len(m.trainable_weights) == 6
    for a, b in zip(m.layers[-2].get_weights(), frozen):
        np.testing.assert_array_equal(a, b)


def test_swap_callback_and_errors():
    x, y = data(6)
    m = build(fd)
    m.compile(fd.optimizers.Adam(use_ema=True, ema_momentum=0.5), "mse")
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)  # (ends holding the averages)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Snap()])
    held = [w.copy() for w in m.get_weights()]
    avg = [np.asarray(v) for v in m.optimizer.variables if v.path.endswith("_average")]
    for a, b in zip(held, avg):
        np.testing.assert_array_equal(a, b)
    plain = build(fd)
    plain.compile("adam", "mse")
    with pytest.raises(ValueError, match="Received: use_ema=False"):
        plain.evaluate(x, y, verbose=0, callbacks=[fd.callbacks.SwapEMAWeights()])
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"Received: ema_momentum={bad}"):
            fd.optimizers.Adam(use_ema=True, ema_momentum=bad)
    for bad in (-2, 1.5):
        with pytest.raises(ValueError, match="`ema_overwrite_frequency` must be an integer"):
            fd.optimizers.Adam(use_ema=True, ema_overwrite_frequency=bad)
    fd.optimizers.Adam(use_ema=False, ema_momentum=7)  # (Keras checks only with use_ema)


def test_swap_for_validation():
    """SwapEMAWeights: validation sees the averages, training goes on with
    the trained values (val_loss differs from a run without it, loss does
    not)."""
    x, y = data(7)
    hist = []
    for cbs in ([], [fd.callbacks.SwapEMAWeights()]):
        fd.utils.set_random_seed(1)
        m = build(fd)
        m.compile(fd.optimizers.Adam(use_ema=True, ema_momentum=0.5), "mse")
        hist.append(m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0,
                          validation_data=(x[:30], y[:30]), callbacks=cbs).history)
    assert hist[0]["loss"] == hist[1]["loss"]
    assert hist[0]["val_loss"] != hist[1]["val_loss"]


def test_files_and_configs(tmp_path):
    pytest.importorskip("h5py")
    x, y = data(8)
    m = build(fd, bn=True)
    m.compile(fd.optimizers.RMSprop(use_ema=True, ema_overwrite_frequency=4), "mse")
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    cfg = m.optimizer.get_config()
    assert (cfg["use_ema"], cfg["ema_momentum"], cfg["ema_overwrite_frequency"]) == (True, 0.99, 4)
    back = fd.optimizers.deserialize(fd.optimizers.serialize(m.optimizer))
    assert back.use_ema and back.ema_overwrite_frequency == 4
    m.save(tmp_path / "m.keras")
    r = fd.models.load_model(tmp_path / "m.keras")
    for a, b in zip(m.optimizer.variables, r.optimizer.variables):
        assert a.path == b.path
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    h1 = m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    h2 = r.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    assert h1 == h2
    out = io.StringIO()
    m.summary(print_fn=lambda s, **k: out.write(s + "\n"))
    n_train = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert f"Optimizer params: {2 + 2 * n_train:,}" in out.getvalue()  # (velocities, averages)


def test_custom_loss_path_updates_the_averages():
    """A Python loss (the per-batch path) keeps the averages too."""
    x, y = data(9)

    def loss(yt, yp):
        return fd.ops.mean(fd.ops.abs(yt - yp), axis=-1)

    plain, ema = build(fd), build(fd)
    ema.set_weights(plain.get_weights())
    plain.compile(fd.optimizers.SGD(0.05), loss)
    ema.compile(fd.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.7), loss)
    snap = Snap()
    plain.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0, callbacks=[snap])
    ema.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    for got, want in zip(ema.get_weights(), ema_reference(snap.weights, 0.7)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------ with Keras

@pytest.mark.parametrize("opt,kw,bn,frozen", [
    ("RMSprop", {"use_ema": True}, False, False),
    ("Adam", {"use_ema": True, "ema_overwrite_frequency": 3, "ema_momentum": 0.9}, True, False),
    ("SGD", {"use_ema": True, "momentum": 0.9, "learning_rate": 0.05}, False, True),
])
def test_side_by_side_with_keras(tmp_path, opt, kw, bn, frozen):
    x, y = data(10)
    assert_optimizer_like_keras(lambda lib: build(lib, bn, frozen),
                                lambda lib: getattr(lib.optimizers, opt)(**kw), x, y, tmp_path)


@pytest.mark.parametrize("swap_on_epoch", [False, True])
def test_swap_callback_side_by_side_with_keras(swap_on_epoch):
    keras = pytest.importorskip("keras")
    x, y = data(11)
    keras.backend.clear_session()
    fd.backend.clear_session()
    km, fm = build(keras, True), build(fd, True)
    fm.set_weights(km.get_weights())
    hs = []
    for m, lib in ((km, keras), (fm, fd)):
        m.compile(lib.optimizers.Adam(use_ema=True, ema_momentum=0.8), "mse", metrics=["mae"])
        hs.append(m.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0,
                        validation_data=(x[:40], y[:40]),
                        callbacks=[lib.callbacks.SwapEMAWeights(swap_on_epoch)]).history)
    assert sorted(hs[0]) == sorted(hs[1])
    for k in hs[0]:
        np.testing.assert_allclose(hs[1][k], hs[0][k], rtol=2e-6, atol=1e-7)
    for a, b in zip(fm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ek = km.evaluate(x, y, verbose=0, callbacks=[keras.callbacks.SwapEMAWeights()])
    ef = fm.evaluate(x, y, verbose=0, callbacks=[fd.callbacks.SwapEMAWeights()])
    np.testing.assert_allclose(ef, ek, rtol=2e-6)


def test_standalone_apply_side_by_side_with_keras():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(12)
    w0 = rng.normal(size=(4, 3)).astype(F32)
    kv, fv = keras.Variable(w0.copy()), fd.Variable(w0.copy())
    ko = keras.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.6, ema_overwrite_frequency=2)
    fo = fd.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.6, ema_overwrite_frequency=2)
    for _ in range(5):
        g = rng.normal(size=w0.shape).astype(F32)
        ko.apply_gradients([(g, kv)])
        fo.apply_gradients([(g, fv)])
        np.testing.assert_allclose(np.asarray(fv.numpy()), np.asarray(kv), rtol=1e-6, atol=1e-7)
    assert [v.path.split("/")[-1] for v in ko.variables][2:] == \
        [v.path.split("/")[-1] for v in fo.variables][2:]


def test_legacy_h5_keeps_the_averages(tmp_path):
    """Legacy .h5: the averages' names (Keras's, before the slots) and values
    round trip; with Keras installed, a Keras file's load as well."""
    h5py = pytest.importorskip("h5py")
    x, y = data(13)
    writers = [fd]
    try:
        import keras
        writers.append(keras)
    except ImportError:
        pass
    names = []
    for lib in writers:
        lib.backend.clear_session()
        m = build(lib)
        m.compile(lib.optimizers.Adam(use_ema=True), lib.losses.MeanSquaredError())
        m.fit(x, y, epochs=2, verbose=0)
        path = tmp_path / f"{lib.__name__}.h5"
        m.save(path)
        with h5py.File(path) as f:
            names.append([n.decode() if isinstance(n, bytes) else str(n)
                          for n in f["optimizer_weights"].attrs["weight_names"]])
        back = fd.models.load_model(path)
        for a, b in zip(m.optimizer.variables, back.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [n for n in names[0] if n.endswith("_average")] == \
        ["adam/sequential_dense_kernel_average", "adam/sequential_dense_bias_average",
         "adam/sequential_dense_1_kernel_average", "adam/sequential_dense_1_bias_average",
         "adam/sequential_dense_2_kernel_average", "adam/sequential_dense_2_bias_average"]
    if len(names) == 2:
        assert names[0] == names[1]


def test_refused_arguments_leave_the_weights_and_a_failing_epoch_finalizes():
    """fit refusing its data trains nothing and leaves the weights (the
    averages, still zeros, must not replace them); an error once training
    began still gives the variables their averages, as Keras's finally."""
    x, y = data(14)
    m = build(fd)
    m.compile(fd.optimizers.Adam(use_ema=True, ema_momentum=0.5), "mse")
    m.build((None, 6))
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError):
        m.fit(x, y[:10], verbose=0)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)

    class Boom(fd.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Boom()])
    avg = [np.asarray(v) for v in m.optimizer.variables if v.path.endswith("_average")]
    for a, b in zip(m.get_weights(), avg):
        np.testing.assert_array_equal(a, b)
