"""The RMSprop, Adam and SGD steps fused into the first layer's dW (kernels:
dense_backward with rmsprop=..., adam=... or sgd=...; engine: fit /
train_on_batch),
against the separate step: the same bits, on every ISA path and thread
count."""
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


# (B, in, out): packed GEMM (at 2 threads: dW in row chunks), narrow output
# (out <= 16), small batch, two K blocks of the batch (B > 256), edge tiles,
# few rows and several column panels (at 2 threads: one task per panel; Adam's
# step then runs after the product)
SHAPES = [(128, 784, 512), (40, 100, 10), (9, 64, 40), (300, 70, 33), (33, 600, 37),
          (64, 200, 160)]


def adam_ref(p, m, v, g, alpha, beta_1, beta_2, eps):
    """Keras's Adam step (no amsgrad) in float32, one rounding per operation:
    m += (g - m)*(1-beta_1); v += (g^2 - v)*(1-beta_2);
    p -= (m*alpha) / (sqrt(v) + eps)."""
    f = np.float32
    m_new = m + (g - m) * f(1.0 - beta_1)
    v_new = v + (g * g - v) * f(1.0 - beta_2)
    p_new = p - (m_new * f(alpha)) / (np.sqrt(v_new) + f(eps))
    return p_new, m_new, v_new


def sgd_ref(p, m, g, lr, momentum, nesterov):
    """Keras's SGD step in float32: p -= g*lr, or with momentum
    m = -g*lr + m*momentum; p += m (nesterov: p += -g*lr + m*momentum)."""
    f = np.float32
    if m is None:
        return (p - g * f(lr),)
    m_new = -g * f(lr) + m * f(momentum)
    step = -g * f(lr) + m_new * f(momentum) if nesterov else m_new
    return p + step, m_new


def _step_case(kind, rng, shape):
    """(the kernel's step argument's extra items, its state arrays, a
    function of (p, state, dw) giving the wanted (p, *state))."""
    n_in, n_out = shape
    v0 = (rng.random((n_in, n_out)) * 0.01).astype(np.float32)
    if kind == "rmsprop":
        lr, rho, eps = 1e-3, 0.9, 1e-7
        return ((lr, rho, eps), [v0],
                lambda p, st, g: rmsprop_ref(p, st[0], g, lr, rho, eps))
    m0 = (rng.standard_normal((n_in, n_out)) * 0.01).astype(np.float32)
    if kind == "sgd":
        return ((None, 0.01, 0.0, False), [],
                lambda p, st, g: sgd_ref(p, None, g, 0.01, 0.0, False))
    if kind.startswith("sgd_"):
        nesterov = kind == "sgd_nesterov"
        return ((0.01, 0.9, nesterov), [m0],
                lambda p, st, g: sgd_ref(p, st[0], g, 0.01, 0.9, nesterov))
    b1, b2, eps = 0.9, 0.999, 1e-7
    alpha = float(np.float32(1e-3) * np.sqrt(np.float32(1) - np.float32(b2) ** 3)
                  / (np.float32(1) - np.float32(b1) ** 3))
    return ((alpha, b1, b2, eps), [m0, v0],
            lambda p, st, g: adam_ref(p, st[0], st[1], g, alpha, b1, b2, eps))


@pytest.mark.parametrize("kind", ["rmsprop", "adam", "sgd", "sgd_momentum", "sgd_nesterov"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("selection", [False, True], ids=["whole", "rows"])
def test_kernel_fused_step_is_the_separate_step(isa, threads, shape, selection, kind):
    B, n_in, n_out = shape
    rng = np.random.default_rng(list(shape))
    x = rng.standard_normal((B, n_in)).astype(np.float32)
    x[rng.random((B, n_in)) < 0.6] = 0.0
    x[:, rng.random(n_in) < 0.3] = 0.0
    w = (rng.standard_normal((n_in, n_out)) * 0.1).astype(np.float32)
    b = np.zeros(n_out, np.float32)
    y = _core.dense_forward(x, w, b, 1)
    dy = rng.standard_normal((B, n_out)).astype(np.float32)
    extra, state0, ref = _step_case(kind, rng, (n_in, n_out))
    _, dw, db_want, dz_want = _core.dense_backward(dy, y, x, w, 1, True, False)
    want = list(ref(w, state0, dw))
    p, state = w.copy(), [a.copy() for a in state0]
    arg = {kind.split("_")[0]: (p, *state, *extra)}
    if selection:
        rows = np.flatnonzero(x.any(axis=0)).astype(np.int64)
        xs = np.ascontiguousarray(x[:, rows])
        out = _core.dense_backward(dy, y, xs, w, 1, True, False, rows, **arg)
        keep = np.zeros(n_in, bool)
        keep[rows] = True
        # rows outside the selection are the caller's (the engine's) to step
        for got, before in zip(want, [w] + state0):
            got[~keep] = before[~keep]
    else:
        out = _core.dense_backward(dy, y, x, w, 1, True, False, None, **arg)
    assert out[0] is None and out[1] is None
    np.testing.assert_array_equal(out[2], db_want)
    np.testing.assert_array_equal(out[3], dz_want)
    for got, exp in zip([p] + state, want):
        np.testing.assert_array_equal(got, exp)
    assert not np.array_equal(p, w)


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
    m = np.zeros_like(w)
    adam = (p, m, v, 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(ValueError, match="`adam`"):
        _core.dense_backward(y, y, x, w, 0, True, False, None, None, adam[:6])
    with pytest.raises(ValueError, match="Only one of"):
        _core.dense_backward(y, y, x, w, 0, True, False, None, (p, v, 1e-3, 0.9, 1e-7), adam)
    with pytest.raises(ValueError, match="Only one of"):
        _core.dense_backward(y, y, x, w, 0, True, False, adam=adam, sgd=(p, None, 0.1, 0.0, False))
    with pytest.raises(ValueError, match="needs m"):
        _core.dense_backward(y, y, x, w, 0, True, False, sgd=(p, None, 0.1, 0.9, False))
    with pytest.raises(ValueError, match="`sgd` must be"):
        _core.dense_backward(y, y, x, w, 0, True, False, sgd=(p, None, 0.1))
    with pytest.raises(ValueError, match="need_dx.*sgd"):
        _core.dense_backward(y, y, x, w, 0, True, True, sgd=(p, None, 0.1, 0.0, False))
    with pytest.raises(ValueError, match="need_dx.*adam"):
        _core.dense_backward(y, y, x, w, 0, True, True, None, adam=adam)
    with pytest.raises(ValueError, match="`m`"):
        _core.dense_backward(y, y, x, w, 0, True, False, adam=(p, m[:1], v, 1e-3, 0.9, 0.999, 1e-7))
    with pytest.raises(ValueError, match="share memory"):
        _core.dense_backward(y, y, x, w, 0, True, False, adam=(p, m, m, 1e-3, 0.9, 0.999, 1e-7))


def _mlp(opt, first_kwargs=None, bias=True):
    # (48 inputs: the engine selects a sparse batch's nonzero columns from 32)
    m = models.Sequential([layers.Dense(40, activation="relu", input_shape=(48,),
                                        use_bias=bias, **(first_kwargs or {})),
                           layers.Dense(5, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(sparse):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 48)).astype(np.float32)
    if sparse:  # image-like: borders always zero, most pixels zero
        x[:, :6] = 0.0
        x[rng.random(x.shape) < 0.7] = 0.0
    y = rng.integers(0, 5, 300)
    return x, y


def _sgd_momentum(**kw):
    return optimizers.SGD(momentum=0.9, **kw)


def _sgd_nesterov(**kw):
    kw.setdefault("learning_rate", 0.05)
    return optimizers.SGD(momentum=0.5, nesterov=True, **kw)


OPTS = [optimizers.RMSprop, optimizers.Adam, optimizers.SGD, _sgd_momentum, _sgd_nesterov]
OPT_IDS = ["rmsprop", "adam", "sgd", "sgd_momentum", "sgd_nesterov"]


@pytest.mark.parametrize("opt_cls", OPTS, ids=OPT_IDS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_fit_with_fused_step_matches_separate_step(isa, threads, sparse, bias, opt_cls):
    # clipvalue=1e30 clips nothing but needs every gradient first, so that
    # model takes the separate update: the weights must agree to the bit
    x, y = _data(sparse)
    runs = []
    for opt in (opt_cls(), opt_cls(clipvalue=1e30)):
        fd.utils.set_random_seed(3)
        m = _mlp(opt, bias=bias)
        h = m.fit(x, y, epochs=3, batch_size=64, verbose=0)
        m.train_on_batch(x[:50], y[:50])
        runs.append(([w.copy() for w in m.get_weights()], h.history["loss"]))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("opt_cls", OPTS, ids=OPT_IDS)
def test_fused_step_with_a_schedule_and_zero_epsilon(opt_cls):
    x, y = _data(True)
    sched = optimizers.schedules.ExponentialDecay(1e-2, decay_steps=3, decay_rate=0.5)
    # (SGD has no epsilon: a zero learning rate instead, which steps nothing)
    last = {"learning_rate": 0.0} if opt_cls in OPTS[2:] else {"epsilon": 0.0}
    for kw in ({"learning_rate": sched}, last):
        runs = []
        for extra in ({}, {"clipvalue": 1e30}):
            fd.utils.set_random_seed(4)
            m = _mlp(opt_cls(**kw, **extra))
            m.fit(x, y, epochs=2, batch_size=50, verbose=0)
            runs.append(m.get_weights())
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw", [{}, {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3},
                                {"amsgrad": True}], ids=["default", "betas", "amsgrad"])
def test_adam_fit_across_fits_and_batches(isa, threads, kw):
    # Adam's step scalars change every iteration (alpha from beta^t): several
    # fits, train_on_batch between them, a last partial batch; amsgrad is
    # not fused (the comparison then checks two separate steps)
    x, y = _data(True)
    runs = []
    for extra in ({}, {"clipvalue": 1e30}):
        fd.utils.set_random_seed(6)
        m = _mlp(optimizers.Adam(learning_rate=3e-3, **kw, **extra))
        m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        m.train_on_batch(x[:7], y[:7])
        m.fit(x[:130], y[:130], epochs=1, batch_size=32, verbose=0)
        runs.append([w.copy() for w in m.get_weights()] +
                    [np.array(v) for v in m.optimizer.variables])
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_adam_zero_columns_still_step():
    """Adam moves a weight whose gradient is zero (by its decayed momentum):
    the rows of input columns that are zero in a batch, which the fused
    kernel skips, get that step too (RMSprop leaves them as they are)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 48)).astype(np.float32)
    x[rng.random(x.shape) < 0.7] = 0.0  # (sparse: the engine selects columns)
    y = rng.integers(0, 5, 64)
    fd.utils.set_random_seed(1)
    m = _mlp(optimizers.Adam(learning_rate=1e-2))
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)  # (every row gets momentum)
    w_before = m.get_weights()[0].copy()
    x0 = x.copy()
    x0[:, :6] = 0.0  # columns 0-5: zero gradient rows this step
    m.fit(x0, y, epochs=1, batch_size=64, verbose=0)
    w_after = m.get_weights()[0]
    assert (w_after[:6] != w_before[:6]).all()
    # ... by exactly Adam's step with g = 0, from the optimizer's own state
    it = np.float32(2)  # (t of this second step; float32, so that numpy 1.x's
    # value-based casting does not take alpha to float64)
    mom, vel = (np.array(v) for v in m.optimizer.variables[2:4])  # (the first kernel's)
    alpha = np.float32(1e-2) * np.sqrt(np.float32(1) - np.float32(0.999) ** it) / (
        np.float32(1) - np.float32(0.9) ** it)
    assert alpha.dtype == np.float32
    want = w_before[:6] - (mom[:6] * np.float32(alpha)) / (np.sqrt(vel[:6]) + np.float32(1e-7))
    np.testing.assert_allclose(w_after[:6], want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("opt_cls", OPTS, ids=OPT_IDS)
def test_zero_columns_after_momentum_match_separate_step(isa, threads, opt_cls):
    """Rows of input columns a batch leaves out (zero gradients) after steps
    that gave them momentum: Adam's and SGD-with-momentum's steps still move
    them, RMSprop's and plain SGD's do not; fused as the separate step."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((128, 48)).astype(np.float32)
    x[rng.random(x.shape) < 0.7] = 0.0
    y = rng.integers(0, 5, 128)
    x0 = x.copy()
    x0[:, 10:20] = 0.0
    runs = []
    for extra in ({}, {"clipvalue": 1e30}):
        fd.utils.set_random_seed(2)
        m = _mlp(opt_cls(**extra))
        m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        m.fit(x0, y, epochs=2, batch_size=64, verbose=0)
        runs.append([w.copy() for w in m.get_weights()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def _adamw_no_bias_decay(**kw):
    o = optimizers.AdamW(weight_decay=0.05, **kw)
    o.exclude_from_weight_decay(var_names=["bias"])
    return o


@pytest.mark.parametrize("make", [
    lambda **kw: optimizers.AdamW(**kw),
    _adamw_no_bias_decay,
    lambda **kw: optimizers.Adam(weight_decay=0.05, **kw),
    lambda **kw: optimizers.RMSprop(weight_decay=0.02, **kw),
    lambda **kw: optimizers.SGD(learning_rate=0.05, weight_decay=0.02, **kw),
    lambda **kw: optimizers.SGD(momentum=0.9, weight_decay=0.02, **kw),
], ids=["adamw", "adamw_no_bias_decay", "adam_wd", "rmsprop_wd", "sgd_wd", "sgd_momentum_wd"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_fused_step_with_weight_decay(isa, threads, make, sparse):
    """Keras's weight decay (p -= p*wd*lr before the update, on the variables
    not excluded) inside the fused step, on every layer: the bits of the
    separate step, the rows of a batch's all-zero inputs included (decay
    moves them even where the update alone would not)."""
    x, y = _data(sparse)
    runs = []
    for extra in ({}, {"clipvalue": 1e30}):
        fd.utils.set_random_seed(8)
        m = models.Sequential([layers.Dense(40, activation="relu", input_shape=(48,)),
                               layers.Dense(24, activation="tanh"),
                               layers.Dense(5, activation="softmax")])
        m.compile(optimizer=make(**extra), loss="sparse_categorical_crossentropy")
        w0 = m.get_weights()[0].copy()
        m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        runs.append([w.copy() for w in m.get_weights()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    # (sparse: inputs 0-5 are always zero, so only the decay moves those rows)
    assert (runs[0][0][:6] != w0[:6]).all()


@pytest.mark.parametrize("reg", ["l1", "l2", "l1_l2"])
@pytest.mark.parametrize("opt_cls", OPTS, ids=OPT_IDS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_fused_step_with_kernel_regularizer(isa, threads, reg, opt_cls, sparse):
    """The first kernel's regularizer gradient (l1 * sign(w) + 2 * l2 * w, from
    the weights before the step) added inside the fused step: the bits of the
    separate step, the rows of a batch's all-zero inputs included (their
    gradient is the regularizer's alone), and the same reported losses."""
    from fastdense import regularizers
    make = {"l1": lambda: regularizers.l1(1e-3), "l2": lambda: regularizers.l2(1e-2),
            "l1_l2": lambda: regularizers.l1_l2(1e-3, 1e-2)}[reg]
    x, y = _data(sparse)
    runs = []
    for extra in ({}, {"clipvalue": 1e30}):
        fd.utils.set_random_seed(11)
        m = models.Sequential([
            layers.Dense(40, activation="relu", input_shape=(48,), kernel_regularizer=make(),
                         bias_regularizer=regularizers.l2(1e-3)),
            layers.Dense(5, activation="softmax", kernel_regularizer=regularizers.l1(1e-4))])
        m.compile(optimizer=opt_cls(**extra), loss="sparse_categorical_crossentropy")
        w0 = m.get_weights()[0].copy()
        h = m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        runs.append(([w.copy() for w in m.get_weights()], h.history["loss"]))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    # (sparse: inputs 0-5 are always zero, so only the regularizer moves those rows)
    assert (runs[0][0][0][:6] != w0[:6]).any()
