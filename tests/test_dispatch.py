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
