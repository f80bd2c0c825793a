"""LayerNormalization / RMSNormalization: the engine's row normalization
(cpp/layernorm.cpp) against a numpy reference in its three modes, float64
finite-difference gradients through the row statistics, the same bits at any
thread count; then the layers' Keras 3 semantics (weights, config, errors)."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import _core, layers, models

MODES = {0: "layer", 1: "variance_scale", 2: "rms"}


def _ln_ref(x, gamma, beta, eps, mode):
    """float64 reference of layernorm.h's three modes."""
    x = np.asarray(x, np.float64)
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


def _net(din, stages, loss=3):
    net = _core.Network(din, stages)
    net.set_loss(loss, False)  # 3: mean squared error
    spec = _core.OptimizerSpec()
    spec.learning_rate = 0.0
    net.set_optimizer(spec)
    return net


def _stats():
    return {"loss_sum": 0.0, "seen": 0, "metric_sums": []}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False),
                                          (False, False)])
def test_forward_matches_numpy_in_training_and_inference(rng, mode, center, scale):
    B, C = 37, 13
    x = (rng.normal(size=(B, C)) * 3 + 2).astype(np.float32)
    net = _net(C, [{"kind": 3, "norm_mode": mode, "use_bias": center, "scale": scale,
                    "epsilon": 1e-3}])
    vars_ = net.variables()
    has_beta = center and mode == 0  # (the other modes have no beta, as Keras)
    assert len(vars_) == scale + has_beta and all(v[3] for v in vars_)
    p = net.params
    np.testing.assert_array_equal(p[:C] if scale else p[:0], np.ones(C if scale else 0))
    gamma = rng.normal(size=C).astype(np.float32) if scale else None
    beta = rng.normal(size=C).astype(np.float32) if has_beta else None
    for (_, off, _, _), v in zip(vars_, [v for v in (gamma, beta) if v is not None]):
        p[off:off + C] = v
    ref = _ln_ref(x, gamma, beta, 1e-3, mode)
    ypred = np.empty((B, C), np.float32)
    net.train_batches(x, np.zeros((B, C), np.float32), None, None, B, 0, 1, 3, _stats(), ypred)
    np.testing.assert_allclose(ypred, ref, rtol=1e-5, atol=2e-6)
    np.testing.assert_array_equal(net.predict(x, 8), ypred)  # (no running statistics)


def test_rows_of_one_value_and_large_offsets_stay_finite(rng):
    C = 64
    x = np.full((3, C), 7.0, np.float32)
    x[1] = 1e4 + rng.normal(size=C).astype(np.float32)  # (sums in double)
    x[2] = 0.0
    for mode in MODES:
        y = _net(C, [{"kind": 3, "norm_mode": mode}]).predict(x, 3)
        assert np.isfinite(y).all()
        # (Keras's form x * inv - mean * inv cancels in float32 when the mean
        # dwarfs the spread: 1e4 * 2^-24 is ~6e-4 per term)
        np.testing.assert_allclose(y, _ln_ref(x, None, None, 1e-3, mode), rtol=1e-4,
                                   atol=2e-3 if mode == 0 else 1e-5)
    y = _net(C, [{"kind": 3}]).predict(x, 3)
    np.testing.assert_array_equal(y[0], 0.0)


def _mlp_ref(params, x, t, mode, act, center, scale):
    """float64 loss of Dense(W1, b1) -> LN(gamma, beta, act) -> Dense(W2, b2), MSE."""
    it = iter(params)
    W1, b1 = next(it), next(it)
    g = next(it) if scale else None
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
    net = _net(din, [{"kind": 0, "units": H},
                     {"kind": 3, "norm_mode": mode, "activation": act, "use_bias": center,
                      "scale": scale},
                     {"kind": 0, "units": U}])
    p = net.params
    p[:] = rng.normal(size=p.size).astype(np.float32) * 0.7
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, U)).astype(np.float32)
    net.train_batches(x, t, None, None, B, 0, 1, 3, _stats(), None)
    g = net.grads.copy()
    vars_ = net.variables()
    params = [p[off:off + int(np.prod(shape))].reshape(shape).astype(np.float64)
              for _, off, shape, _ in vars_]
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    for k, (_, off, shape, _) in enumerate(vars_):
        num = np.zeros(params[k].size)
        for i in range(params[k].size):
            for sgn in (1, -1):
                q = [a.copy() for a in params]
                q[k].flat[i] += sgn * 1e-6
                num[i] += sgn * _mlp_ref(q, x64, t64, mode, act, center, scale) / 2e-6
        np.testing.assert_allclose(g[off:off + params[k].size], num, rtol=2e-3, atol=2e-5,
                                   err_msg=f"variable {k} {shape}")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_same_bits_at_any_thread_count(rng, mode):
    B, din, H = 96, 40, 300  # (several row tasks and column slabs)
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, 4)).astype(np.float32)
    out = []
    before = fd.get_num_threads()
    try:
        for nt in (1, 2, 3):
            fd.set_num_threads(nt)
            net = _net(din, [{"kind": 0, "units": H}, {"kind": 3, "norm_mode": mode},
                             {"kind": 0, "units": 4}])
            net.params[:] = np.random.default_rng(1).normal(size=net.num_params) * 0.1
            net.train_batches(x, t, None, None, 32, 0, 3, 3, _stats(), None)
            out.append(net.grads.copy())
    finally:
        fd.set_num_threads(before)
    for g in out[1:]:
        np.testing.assert_array_equal(g, out[0])


def test_bad_stage_arguments_raise():
    with pytest.raises(ValueError, match="epsilon"):
        _core.Network(4, [{"kind": 3, "epsilon": 0.0}])
    with pytest.raises(ValueError, match="norm_mode"):
        _core.Network(4, [{"kind": 3, "norm_mode": 3}])
