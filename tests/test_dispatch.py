"""Runtime ISA dispatch and thread settings: every path the CPU supports trains
to the same accuracy; FASTDENSE_ISA / FASTDENSE_NUM_THREADS are honoured."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdense
from fastdense import _core, layers, models
from fastdense.utils import set_random_seed

ISAS = _core.available_isas().split(",")


@pytest.fixture
def restore():
    isa, threads = _core.kernel_isa(), fastdense.get_num_threads()
    yield
    _core.set_isa(isa)
    fastdense.set_num_threads(threads)


def _train(x, y, isa, threads):
    _core.set_isa(isa)
    fastdense.set_num_threads(threads)
    set_random_seed(7)
    m = models.Sequential([layers.Dense(128, activation="relu", input_shape=(x.shape[1],)),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return m.get_weights(), h.history


def test_every_isa_trains_the_same(mnist_data, restore):
    x, y, _, _ = mnist_data
    x, y = x[:6000], y[:6000]
    results = {isa: _train(x, y, isa, 2) for isa in ISAS}
    ref_w, ref_h = results["generic"]
    for isa, (w, h) in results.items():
        assert h["accuracy"][0] > 0.75, isa
        assert h["accuracy"][0] == pytest.approx(ref_h["accuracy"][0], abs=0.01), isa
        assert h["loss"][0] == pytest.approx(ref_h["loss"][0], rel=0.02), isa


@pytest.mark.parametrize("isa", ISAS)
def test_same_seed_same_threads_bitwise_identical(isa, restore, rng):
    x = rng.normal(size=(500, 30)).astype("float32")
    y = rng.integers(0, 10, 500)
    for threads in (1, 2):
        w1, _ = _train(x, y, isa, threads)
        w2, _ = _train(x, y, isa, threads)
        for a, b in zip(w1, w2):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("isa", ISAS)
def test_mid_sized_steps_same_bits_however_they_run(isa, restore, rng):
    """Steps between ~3 and 40 MFLOP run serially or on the pool, as the first
    steps of that size measure faster (alternating blocks of each way): the
    weights and losses are those of one thread throughout, through the
    measuring steps, the decided ones, a last partial batch, a new batch size
    (measured again) and another thread count."""
    x = rng.normal(size=(1000, 200)).astype("float32")
    x[rng.random(x.shape) < 0.5] = 0.0
    y = rng.integers(0, 10, 1000)

    def run(threads):
        _core.set_isa(isa)
        fastdense.set_num_threads(threads)
        set_random_seed(5)
        m = models.Sequential([layers.Dense(96, activation="relu", input_shape=(200,)),
                               layers.Dropout(0.1), layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        # (a step of batch 48 is ~5.9 MFLOP, of 64 ~7.8: both measured; 20
        # and 15 full steps per epoch, so the first fit measures, then decides)
        losses = m.fit(x, y, epochs=2, batch_size=48, verbose=0).history["loss"]
        losses += m.fit(x, y, epochs=1, batch_size=64, verbose=0).history["loss"]
        fastdense.set_num_threads(1 if threads == 1 else 3)
        losses += m.fit(x, y, epochs=1, batch_size=64, verbose=0).history["loss"]
        return m.get_weights(), losses

    w1, l1 = run(1)
    w2, l2 = run(2)
    assert l1 == l2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_set_isa_and_threads_errors(restore):
    with pytest.raises(ValueError, match="nonsense"):
        _core.set_isa("nonsense")
    with pytest.raises(ValueError, match="n=0"):
        fastdense.set_num_threads(0)
    fastdense.set_num_threads(1)
    assert fastdense.get_num_threads() == 1


def test_env_variables_are_honoured():
    code = ("import fastdense, json; c = fastdense.config(); "
            "print(json.dumps([c['isa'], c['num_threads']]))")
    env = dict(os.environ, FASTDENSE_ISA="generic", FASTDENSE_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == '["generic", 1]'
    assert out.stderr == ""


def test_fork_after_training(rng):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    x = rng.normal(size=(256, 16)).astype("float32")
    y = rng.integers(0, 3, 256)
    m = models.Sequential([layers.Dense(64, activation="relu"), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=2, verbose=0)
    expected = m.predict(x, verbose=0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: train and predict with a fresh pool
        os.close(r)
        ok = 0
        try:
            m.fit(x, y, epochs=1, verbose=0)
            ok = int(np.isfinite(m.predict(x, verbose=0)).all())
        finally:
            os.write(w, bytes([ok]))
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    assert got == b"\x01"
    np.testing.assert_array_equal(m.predict(x, verbose=0), expected)
