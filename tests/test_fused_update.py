"""The RMSprop step fused into the first layer's dW (kernels: dense_backward
with rmsprop=...; engine: fit / train_on_batch), against the separate step:
the same bits, on every ISA path and thread count."""
from __future__ import annotations

import numpy as np
import pytest

import fastdense as fd
from fastdense import _core, layers, models, optimizers


def rmsprop_ref(p, v, g, lr, rho, eps):
    """Keras's RMSprop step in float32, one rounding per operation (numpy's
    float32 arithmetic): v = rho*v + (1-rho)*g^2; p -= lr*g/sqrt(v + eps)."""
    f = np.float32
    rho32, one_rho = f(rho), f(1.0 - rho)
    v_new = rho32 * v + one_rho * (g * g)
    p_new = p - (f(lr) * g) / np.sqrt(v_new + f(eps))
    return p_new, v_new


# (B, in, out): packed GEMM, narrow output (out <= 16), small batch, two K blocks
# of the batch (B > 256), edge tiles
SHAPES = [(128, 784, 512), (40, 100, 10), (9, 64, 40), (300, 70, 33), (33, 600, 37)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("selection", [False, True], ids=["whole", "rows"])
def test_kernel_fused_step_is_the_separate_step(isa, threads, shape, selection):
    B, n_in, n_out = shape
    rng = np.random.default_rng(list(shape))
    x = rng.standard_normal((B, n_in)).astype(np.float32)
    x[rng.random((B, n_in)) < 0.6] = 0.0
    x[:, rng.random(n_in) < 0.3] = 0.0
    w = (rng.standard_normal((n_in, n_out)) * 0.1).astype(np.float32)
    b = np.zeros(n_out, np.float32)
    y = _core.dense_forward(x, w, b, 1)
    dy = rng.standard_normal((B, n_out)).astype(np.float32)
    v0 = (rng.random((n_in, n_out)) * 0.01).astype(np.float32)
    lr, rho, eps = 1e-3, 0.9, 1e-7
    _, dw, db_want, dz_want = _core.dense_backward(dy, y, x, w, 1, True, False)
    p_want, v_want = rmsprop_ref(w, v0, dw, lr, rho, eps)
    p, v = w.copy(), v0.copy()
    if selection:
        rows = np.flatnonzero(x.any(axis=0)).astype(np.int64)
        xs = np.ascontiguousarray(x[:, rows])
        out = _core.dense_backward(dy, y, xs, w, 1, True, False, rows, (p, v, lr, rho, eps))
        keep = np.zeros(n_in, bool)
        keep[rows] = True
        # rows outside the selection are the caller's (the engine's) to step
        p_want[~keep], v_want[~keep] = w[~keep], v0[~keep]
    else:
        out = _core.dense_backward(dy, y, x, w, 1, True, False, None, (p, v, lr, rho, eps))
    assert out[0] is None and out[1] is None
    np.testing.assert_array_equal(out[2], db_want)
    np.testing.assert_array_equal(out[3], dz_want)
    np.testing.assert_array_equal(v, v_want)
    np.testing.assert_array_equal(p, p_want)


def test_kernel_fused_step_validation():
    x = np.ones((4, 3), np.float32)
    w = np.ones((3, 5), np.float32)
    y = np.ones((4, 5), np.float32)
    p, v = w.copy(), np.zeros_like(w)
    with pytest.raises(ValueError, match="need_dx"):
        _core.dense_backward(y, y, x, w, 0, True, True, None, (p, v, 1e-3, 0.9, 1e-7))
    with pytest.raises(ValueError, match="rmsprop"):
        _core.dense_backward(y, y, x, w, 0, True, False, None, (p, v, 1e-3))
    with pytest.raises(ValueError, match="`v`"):
        _core.dense_backward(y, y, x, w, 0, True, False, None, (p, v[:2], 1e-3, 0.9, 1e-7))
    with pytest.raises(ValueError, match="share memory"):
        _core.dense_backward(y, y, x, w, 0, True, False, None, (p, p, 1e-3, 0.9, 1e-7))


def _mlp(opt, first_kwargs=None, bias=True):
    m = models.Sequential([layers.Dense(40, activation="relu", input_shape=(30,),
                                        use_bias=bias, **(first_kwargs or {})),
                           layers.Dense(5, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(sparse):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 30)).astype(np.float32)
    if sparse:  # image-like: borders always zero, most pixels zero
        x[:, :6] = 0.0
        x[rng.random(x.shape) < 0.7] = 0.0
    y = rng.integers(0, 5, 300)
    return x, y


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_fit_with_fused_step_matches_separate_step(isa, threads, sparse, bias):
    # clipvalue=1e30 clips nothing but needs every gradient first, so that
    # model takes the separate update: the weights must agree to the bit
    x, y = _data(sparse)
    runs = []
    for opt in (optimizers.RMSprop(), optimizers.RMSprop(clipvalue=1e30)):
        fd.utils.set_random_seed(3)
        m = _mlp(opt, bias=bias)
        h = m.fit(x, y, epochs=3, batch_size=64, verbose=0)
        m.train_on_batch(x[:50], y[:50])
        runs.append(([w.copy() for w in m.get_weights()], h.history["loss"]))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_fused_step_with_a_schedule_and_zero_epsilon():
    x, y = _data(True)
    sched = optimizers.schedules.ExponentialDecay(1e-2, decay_steps=3, decay_rate=0.5)
    for kw in ({"learning_rate": sched}, {"epsilon": 0.0}):
        runs = []
        for extra in ({}, {"clipvalue": 1e30}):
            fd.utils.set_random_seed(4)
            m = _mlp(optimizers.RMSprop(**kw, **extra))
            m.fit(x, y, epochs=2, batch_size=50, verbose=0)
            runs.append(m.get_weights())
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)
