"""Tests for the native dense kernels (fastdense._core.dense_forward / dense_backward).

Every test runs for every kernel table this CPU supports (``_core.available_isas()``:
generic, avx2, avx512) and for 1 and 2 threads.  References are computed in
float64 with numpy from the same float32 inputs; float32 tolerances scale with
the magnitude of the accumulated products (sum_k |x_k w_k|), so a wrong index,
a missing bias, a skipped tail row/column or a wrong activation derivative is
caught while rounding differences between summation orders are not.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from fastdense import _core

ISAS = _core.available_isas().split(",")
ACTS = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}

# (B, in, out): edge sizes around the kernels' register tiles (AVX2 6x16,
# AVX-512 8x32), the narrow-layer path (out <= 16), the K block (AVX-512 192,
# AVX2 800: in = 1000 splits the forward's K, B = 820 dW's and out = 1000
# dX's), the N block (512) and the M block (192); plus the MNIST hidden layer
# 784x512 once.
SHAPES = [
    (1, 1, 1),
    (1, 5, 10),
    (3, 1, 17),
    (3, 10, 5),
    (17, 16, 16),
    (17, 17, 17),
    (3, 64, 100),
    (17, 100, 64),
    (128, 64, 10),
    (128, 17, 1),
    (1, 100, 33),
    (128, 100, 100),
    (200, 300, 520),
    (128, 784, 512),
    (40, 1000, 40),
    (820, 24, 1000),
]


# (the `isa` and `threads` fixtures: conftest.py)


# ------------------------------------------------------------------- references
@functools.lru_cache(maxsize=None)
def make_inputs(B, n_in, n_out, seed=0):
    """Deterministic float32 inputs (read-only so a test cannot alter the cache)."""
    rng = np.random.default_rng([B, n_in, n_out, seed])
    x = rng.standard_normal((B, n_in)).astype(np.float32)
    w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    dy = rng.standard_normal((B, n_out)).astype(np.float32)
    for a in (x, w, b, dy):
        a.setflags(write=False)
    return x, w, b, dy


def act_ref(z, act):
    if act == 0:
        return z
    if act == 1:
        return np.maximum(z, 0.0)
    if act == 2:
        return 1.0 / (1.0 + np.exp(-z))
    if act == 3:
        return np.tanh(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def act_backward_ref(dy, y, act):
    """dL/dz from dL/dy, written from the activation's derivative (float64)."""
    if act == 0:
        return dy
    if act == 1:
        return np.where(y > 0, dy, 0.0)
    if act == 2:
        return dy * y * (1.0 - y)
    if act == 3:
        return dy * (1.0 - y * y)
    return y * (dy - np.sum(dy * y, axis=1, keepdims=True))


def forward_ref(x, w, b, act):
    z = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        z = z + b.astype(np.float64)
    return act_ref(z, act)


def err_scale(x, w, b):
    """Elementwise magnitude of what the forward sums: sum_k |x w| + |b|."""
    s = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64))
    if b is not None:
        s = s + np.abs(b)
    return s


def fwd_tolerance(x, w, b, act):
    """Elementwise bound on |y - y_ref| for float32 accumulation of x.w + b.

    Linear error of z is bounded by ~K*eps*sum|x w|; with K up to 784 and random
    signs the observed error is far smaller, so use 8*sqrt(K)*eps*scale + tiny.
    Activation derivatives are <= 1 (softmax: a row's errors mix, so use the row
    maximum)."""
    K = max(x.shape[1], 1)
    eps = np.finfo(np.float32).eps
    tol = 8.0 * np.sqrt(K) * eps * err_scale(x, w, b) + 4 * eps
    if act == 4:
        tol = 2.0 * tol.max(axis=1, keepdims=True) * np.ones_like(tol)
    return tol


def check_forward(x, w, b, act):
    y = _core.dense_forward(x, w, b, act)
    assert y.dtype == np.float32 and y.shape == (x.shape[0], w.shape[1])
    assert y.flags.c_contiguous
    want = forward_ref(x, w, b, act)
    tol = fwd_tolerance(x, w, b, act)
    diff = np.abs(y.astype(np.float64) - want)
    bad = diff > tol
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"forward act={act} shape={x.shape}x{w.shape} bias={b is not None}: "
            f"{int(bad.sum())}/{bad.size} bad; first {i}: got {y[i]!r} want {want[i]!r} "
            f"tol {tol[i]:.3g}")
    return y


# ---------------------------------------------------------------------- forward
@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_matches_float64_reference(isa, threads, shape, use_bias, act):
    x, w, b, _ = make_inputs(*shape)
    y = check_forward(x, w, b if use_bias else None, act)
    if act == 4:  # rows of a softmax sum to one
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    if act == 1:
        assert (y >= 0).all()


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
def test_forward_large_magnitudes_saturate_cleanly(isa, threads, act):
    # z of +-80: sigmoid/tanh saturate, softmax must subtract the row max.
    x = np.array([[1.0], [-1.0], [0.0]], np.float32)
    w = np.array([[80.0, -80.0, 0.5, 40.0, -3.0]], np.float32)
    b = np.zeros(5, np.float32)
    y = _core.dense_forward(x, w, b, act)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, forward_ref(x, w, b, act), rtol=1e-6, atol=1e-7)


def test_forward_zero_rows(isa, threads):
    x = np.zeros((0, 7), np.float32)
    w = np.ones((7, 20), np.float32)
    y = _core.dense_forward(x, w, np.ones(20, np.float32), 1)
    assert y.shape == (0, 20)


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
def test_forward_zero_inputs_gives_activation_of_bias(isa, threads, act):
    # in == 0: y = act(b) for every row.
    x = np.zeros((5, 0), np.float32)
    w = np.zeros((0, 20), np.float32)
    b = np.linspace(-2, 2, 20).astype(np.float32)
    y = _core.dense_forward(x, w, b, act)
    np.testing.assert_allclose(y, forward_ref(x, w, b, act), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------- backward
# The bias only changes db in the backward pass: the large shapes run with it only.
BACKWARD_CASES = [(s, ub) for s in SHAPES for ub in (True, False)
                  if ub or s[0] * s[1] * s[2] <= 1_000_000]


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("shape,use_bias", BACKWARD_CASES,
                         ids=["x".join(map(str, s)) + ("-bias" if ub else "-nobias")
                              for s, ub in BACKWARD_CASES])
def test_backward_matches_float64_reference(isa, threads, shape, use_bias, act):
    x, w, b, dy = make_inputs(*shape)
    y = _core.dense_forward(x, w, b, act)
    dx, dw, db, dz = _core.dense_backward(dy, y, x, w, act, use_bias, True)

    dz_ref = act_backward_ref(dy.astype(np.float64), y.astype(np.float64), act)
    eps = np.finfo(np.float32).eps
    if act == 4:
        dz_tol = 8 * eps * (np.abs(y) * (np.abs(dy) + np.sum(np.abs(dy * y), axis=1,
                                                             keepdims=True))) + 1e-30
    else:
        # 1 - y*y and y*(1 - y) lose relative precision near saturation: scale
        # by |dy| (1 + |y|)^2, the size of the terms before cancellation.
        dz_tol = 4 * eps * np.abs(dy) * (1.0 + np.abs(y)) ** 2 + 1e-30
    assert dz.shape == dy.shape and dz.dtype == np.float32
    assert (np.abs(dz - dz_ref) <= dz_tol).all(), "dz"

    dz64 = dz.astype(np.float64)  # products below are checked given the kernel's dz
    B, K = x.shape
    N = w.shape[1]
    dw_ref = x.astype(np.float64).T @ dz64
    dw_tol = 8 * np.sqrt(max(B, 1)) * eps * (np.abs(x.T).astype(np.float64) @ np.abs(dz64)) + 1e-30
    assert dw.shape == (K, N) and dw.dtype == np.float32
    assert (np.abs(dw - dw_ref) <= dw_tol).all(), "dw"

    if use_bias:
        db_ref = dz64.sum(axis=0)
        db_tol = 8 * np.sqrt(max(B, 1)) * eps * np.abs(dz64).sum(axis=0) + 1e-30
        assert db.shape == (N,) and db.dtype == np.float32
        assert (np.abs(db - db_ref) <= db_tol).all(), "db"
    else:
        assert db is None

    dx_ref = dz64 @ w.astype(np.float64).T
    dx_tol = 8 * np.sqrt(max(N, 1)) * eps * (np.abs(dz64) @ np.abs(w.T).astype(np.float64)) + 1e-30
    assert dx.shape == (B, K) and dx.dtype == np.float32
    assert (np.abs(dx - dx_ref) <= dx_tol).all(), "dx"


@pytest.mark.parametrize("act", [0, 2, 4], ids=["linear", "sigmoid", "softmax"])
def test_backward_need_dx_false_skips_dx_only(isa, threads, act):
    x, w, b, dy = make_inputs(17, 64, 100)
    y = _core.dense_forward(x, w, b, act)
    full = _core.dense_backward(dy, y, x, w, act, True, True)
    part = _core.dense_backward(dy, y, x, w, act, True, False)
    assert part[0] is None
    for a, c in zip(full[1:], part[1:]):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("shape", [(17, 17, 17), (3, 64, 100)], ids=["17x17x17", "3x64x100"])
def test_kernels_do_not_modify_inputs(isa, threads, shape):
    x, w, b, dy = (a.copy() for a in make_inputs(*shape))
    copies = [a.copy() for a in (x, w, b, dy)]
    y = _core.dense_forward(x, w, b, 4)
    y_copy = y.copy()
    _core.dense_backward(dy, y, x, w, 4, True, True)
    for a, c in zip((x, w, b, dy, y), copies + [y_copy]):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("shape", [(17, 17, 17), (128, 64, 10), (3, 100, 33), (128, 784, 512)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "nodx"])
def test_linear_backward_reads_dy_in_place(isa, threads, shape, need_dx, tmp_path):
    """With a linear activation dense_backward passes dy to the kernels
    uncopied (they only read it) and returns it as dz: a dy in read-only
    memory (a mode='r' memmap: any write would fault) gives the same bits as
    a writable copy, on the full, the narrow and the column-selection paths."""
    x, w, b, dy = make_inputs(*shape)
    y = _core.dense_forward(x, w, b, 0)
    f = tmp_path / "dy.bin"
    dy.tofile(f)
    ro = np.memmap(f, dtype=np.float32, mode="r", shape=dy.shape)
    assert not ro.flags.writeable
    got = _core.dense_backward(ro, y, x, w, 0, True, need_dx)
    want = _core.dense_backward(dy.copy(), y, x, w, 0, True, need_dx)
    for g, e in zip(got[:3], want[:3]):
        if e is None:
            assert g is None
        else:
            np.testing.assert_array_equal(g, e)
    assert np.shares_memory(got[3], ro)
    np.testing.assert_array_equal(np.asarray(ro), dy)
    if not need_dx:  # the column-selection (rows) path too
        rows = np.arange(0, shape[1], 2, dtype=np.int64)
        xs = np.ascontiguousarray(x[:, rows])
        got = _core.dense_backward(ro, y, xs, w, 0, True, False, rows)
        want = _core.dense_backward(dy.copy(), y, xs, w, 0, True, False, rows)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])
    # (another activation still copies: dy's memory is left alone)
    _core.dense_backward(ro, y, x, w, 1, True, need_dx)


def test_backward_zero_rows_gives_zero_gradients(isa, threads):
    x = np.zeros((0, 20), np.float32)
    w = np.ones((20, 40), np.float32)
    e = np.zeros((0, 40), np.float32)
    dx, dw, db, dz = _core.dense_backward(e, e, x, w, 1, True, True)
    assert dx.shape == (0, 20) and dz.shape == (0, 40)
    np.testing.assert_array_equal(dw, np.zeros((20, 40), np.float32))
    np.testing.assert_array_equal(db, np.zeros(40, np.float32))


# ------------------------------------------------- finite-difference gradients
def loss64(x, w, b, r, act):
    return float(np.sum(r * forward_ref(x, w, b, act)))


def fd_grad(f, p, h):
    """Central differences of scalar f at float64 array p (all entries)."""
    g = np.zeros_like(p)
    flat, gf = p.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * h)
    return g


FD_SHAPES = [(1, 1, 1), (3, 5, 4), (4, 3, 17), (5, 17, 3)]


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("shape", FD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gradients_match_finite_differences(isa, threads, shape, act):
    """L = sum(r * act(x.w + b)): the kernel's dx, dw, db vs float64 central
    differences of the numpy forward (the kernel's own y feeds its backward)."""
    B, K, N = shape
    for seed in range(100):
        rng = np.random.default_rng([7, B, K, N, act, seed])
        x = rng.standard_normal((B, K)).astype(np.float32)
        w = rng.standard_normal((K, N)).astype(np.float32) * np.float32(0.7)
        b = rng.standard_normal(N).astype(np.float32)
        r = rng.standard_normal((B, N)).astype(np.float32)
        # keep ReLU away from its kink (a perturbation h = 1e-6 moves z by < 1e-5)
        if act != 1 or np.abs(x.astype(np.float64) @ w + b).min() > 1e-3:
            break
    else:
        raise AssertionError("no kink-free ReLU inputs found")

    y = _core.dense_forward(x, w, b, act)
    dx, dw, db, _ = _core.dense_backward(r, y, x, w, act, True, True)

    x64, w64, b64, r64 = (a.astype(np.float64) for a in (x, w, b, r))
    f = lambda: loss64(x64, w64, b64, r64, act)  # noqa: E731
    h = 1e-6
    for name, got, p in (("dx", dx, x64), ("dw", dw, w64), ("db", db, b64)):
        want = fd_grad(f, p, h)
        scale = np.abs(want).max() + 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * scale,
                                   err_msg=f"{name} act={act} shape={shape}")


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
def test_gradients_directional_finite_difference_large(isa, threads, act):
    """Directional FD on a bigger layer: <grad, v> vs (L(p+hv) - L(p-hv)) / 2h."""
    B, K, N = 33, 70, 40
    rng = np.random.default_rng([11, act])
    x = rng.standard_normal((B, K)).astype(np.float32)
    w = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    r = rng.standard_normal((B, N)).astype(np.float32)
    y = _core.dense_forward(x, w, b, act)
    dx, dw, db, _ = _core.dense_backward(r, y, x, w, act, True, True)
    x64, w64, b64, r64 = (a.astype(np.float64) for a in (x, w, b, r))
    vx, vw, vb = (rng.standard_normal(a.shape) for a in (x, w, b))
    h = 1e-6
    lp = loss64(x64 + h * vx, w64 + h * vw, b64 + h * vb, r64, act)
    lm = loss64(x64 - h * vx, w64 - h * vw, b64 - h * vb, r64, act)
    fd = (lp - lm) / (2 * h)
    an = float(np.sum(dx * vx) + np.sum(dw * vw) + np.sum(db * vb))
    mag = float(np.sum(np.abs(dx * vx)) + np.sum(np.abs(dw * vw)) + np.sum(np.abs(db * vb)))
    assert abs(an - fd) <= 1e-5 * mag + 1e-6, (an, fd)


# ------------------------------------------------------------------ determinism
DET_SHAPES = [(17, 17, 17), (128, 100, 10), (200, 300, 520)]


@pytest.mark.parametrize("act", [1, 4], ids=["relu", "softmax"])
@pytest.mark.parametrize("shape", DET_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bitwise_deterministic_run_to_run(isa, threads, shape, act):
    x, w, b, dy = make_inputs(*shape)
    y1 = _core.dense_forward(x, w, b, act)
    g1 = _core.dense_backward(dy, y1, x, w, act, True, True)
    for _ in range(3):
        y2 = _core.dense_forward(x, w, b, act)
        assert y2.tobytes() == y1.tobytes()
        g2 = _core.dense_backward(dy, y1, x, w, act, True, True)
        for a, c in zip(g1, g2):
            assert a.tobytes() == c.tobytes()


@pytest.mark.parametrize("shape", DET_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bitwise_identical_across_thread_counts(isa, shape):
    """kernels.h / dense_simd.inc: each output element is computed by one task
    in a fixed order, so results do not depend on the thread count."""
    x, w, b, dy = make_inputs(*shape)
    old = _core.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            _core.set_num_threads(n)
            y = _core.dense_forward(x, w, b, 3)
            outs.append([y.tobytes()] + [a.tobytes() for a in
                                          _core.dense_backward(dy, y, x, w, 3, True, True)])
    finally:
        _core.set_num_threads(old)
    assert outs[0] == outs[1] == outs[2]


def test_isa_tables_agree_closely():
    """All ISAs compute the same function (up to float32 summation order)."""
    x, w, b, dy = make_inputs(128, 100, 100)
    old = _core.kernel_isa()
    ys = {}
    try:
        for name in ISAS:
            _core.set_isa(name)
            ys[name] = _core.dense_forward(x, w, b, 3)
    finally:
        _core.set_isa(old)
    for name in ISAS[1:]:
        np.testing.assert_allclose(ys[name], ys[ISAS[0]], rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------- argument checks
def test_isa_selection_api():
    names = _core.available_isas().split(",")
    assert names[0] == "generic"
    assert set(names) <= {"generic", "avx2", "avx512"}
    assert _core.kernel_isa() in names
    with pytest.raises(ValueError, match="sse9"):
        _core.set_isa("sse9")


def test_num_threads_api():
    old = _core.get_num_threads()
    try:
        _core.set_num_threads(3)
        assert _core.get_num_threads() == 3
        with pytest.raises(ValueError):
            _core.set_num_threads(0)
        assert _core.get_num_threads() == 3
    finally:
        _core.set_num_threads(old)


def test_forward_argument_validation():
    x = np.ones((2, 3), np.float32)
    w = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="dtype"):
        _core.dense_forward(x.astype(np.float64), w, None, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.dense_forward(np.ones((3, 2), np.float32).T, w, None, 0)
    with pytest.raises(ValueError, match="shape"):
        _core.dense_forward(x, np.ones((4, 4), np.float32), None, 0)
    with pytest.raises(ValueError, match="shape"):
        _core.dense_forward(x, w, np.ones(5, np.float32), 0)
    with pytest.raises(ValueError, match="activation"):
        _core.dense_forward(x, w, None, 5)
    with pytest.raises(ValueError, match="activation"):
        _core.dense_forward(x, w, None, -1)


def test_backward_argument_validation():
    x = np.ones((2, 3), np.float32)
    w = np.ones((3, 4), np.float32)
    dy = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match="dy"):
        _core.dense_backward(np.ones((2, 5), np.float32), dy, x, w, 0, True, True)
    with pytest.raises(ValueError, match="`y`"):
        _core.dense_backward(dy, np.ones((3, 4), np.float32), x, w, 0, True, True)
    with pytest.raises(ValueError, match="activation"):
        _core.dense_backward(dy, dy, x, w, 9, True, True)


@pytest.mark.parametrize("act", list(ACTS.values()), ids=list(ACTS))
@pytest.mark.parametrize("B", [1, 16, 40])
@pytest.mark.parametrize("out", [10, 40])
def test_nan_and_inf_weights_propagate_as_keras(isa, act, B, out):
    """0 * inf is NaN and NaN passes through every activation (relu and the
    exp-based ones included), as in Keras; a NaN never turns into a number."""
    x = np.ones((B, 64), np.float32)
    x[:, 10] = 0.0
    w = np.ones((64, out), np.float32)
    w[10, 7] = np.inf   # meets a zero input: NaN
    w[11, 3] = np.nan
    y = _core.dense_forward(x, w, None, act)
    if act == 4:  # softmax: the whole row
        assert np.isnan(y).all()
    else:
        assert np.isnan(y[:, [3, 7]]).all()
        assert np.isfinite(np.delete(y, [3, 7], axis=1)).all()


@pytest.mark.parametrize("B", [3, 40, 300])
def test_tanh_within_two_ulp_of_float64(isa, B):
    """The fused tanh (vectorised on the SIMD paths, Cephes-style) against
    float64 tanh on a dense grid, tiny values, the switch at |z| = 0.625 and
    saturation; +-inf give +-1 and NaN stays NaN."""
    z = np.concatenate([np.linspace(-12, 12, 60001), np.geomspace(1e-30, 0.7, 2000),
                        -np.geomspace(1e-30, 0.7, 2000),
                        np.nextafter(np.float32(0.625), np.float32([0, 1]))]).astype(np.float32)
    cols = 16  # (an identity kernel: z passes the GEMM exactly, in rows of 16 lanes)
    zz = np.resize(z, (-(-len(z) // cols), cols))
    eye = np.eye(cols, dtype=np.float32)
    y = np.concatenate([_core.dense_forward(np.ascontiguousarray(zz[i:i + B]), eye, None,
                                            ACTS["tanh"]) for i in range(0, len(zz), B)])
    ref = np.tanh(zz.astype(np.float64))
    ulp = np.abs(y - ref) / np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert ulp.max() <= 2.0, (ulp.max(), zz.ravel()[ulp.argmax()])
    s = np.resize(np.float32([np.inf, -np.inf, np.nan, 20.0, -20.0]), (B, 1))
    ys = _core.dense_forward(np.ascontiguousarray(s), np.ones((1, 1), np.float32), None,
                             ACTS["tanh"])
    want = np.tanh(s.astype(np.float64))
    np.testing.assert_array_equal(ys, want.astype(np.float32))
