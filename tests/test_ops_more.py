"""The keras.ops added after the first set (rsqrt, sort, top_k, quantile,
split, tril, the newer activations ...): values against numpy or the formula,
gradients against float64 central differences (test_ops's check), and, where
Keras is installed, values, dtypes and gradients side by side with keras.ops on
JAX."""

from __future__ import annotations

import numpy as np
import pytest

from test_ops import K, X, Y, ad, check_vjp

P = np.abs(X) + 0.3          # positive
U = np.tanh(X) * 0.9         # in (-1, 1)
G1 = np.abs(X) + 1.2         # > 1 (arccosh)

# name: (fn(y_true, y_pred), y_pred): each a differentiable use of the op
CASES = {
    "rsqrt": (lambda yt, yp: K.rsqrt(yp), P),
    "arcsinh": (lambda yt, yp: K.arcsinh(yp), X),
    "arccosh": (lambda yt, yp: K.arccosh(yp), G1),
    "arctanh": (lambda yt, yp: K.arctanh(yp), U),
    "exp2": (lambda yt, yp: K.exp2(yp), X),
    "cbrt": (lambda yt, yp: K.cbrt(yp), P),
    "fabs": (lambda yt, yp: K.fabs(yp), X),
    "trunc": (lambda yt, yp: K.trunc(yp * 3) * yp, X),
    "deg_rad": (lambda yt, yp: K.deg2rad(yp) + K.rad2deg(yp), X),
    "arctan2": (lambda yt, yp: K.arctan2(yp, yt + 0.1), X),
    "hypot": (lambda yt, yp: K.hypot(yp, yt), X),
    "logaddexp2": (lambda yt, yp: K.logaddexp2(yp, yt), X),
    "fmod": (lambda yt, yp: K.fmod(yp * 3, 0.7), X),
    "fmax_fmin": (lambda yt, yp: K.fmax(yp, yt) + K.fmin(yt, yp) * 2, X),
    "amax_amin_ptp": (lambda yt, yp: K.amax(yp, axis=0) + K.amin(yp, axis=-1).sum() + K.ptp(yp, axis=1).sum(), X),
    "average": (lambda yt, yp: K.average(yp, axis=1, weights=np.array([1.0, 2.0, 0.5, 3.0])), X),
    "average_full_weights": (lambda yt, yp: K.average(yp, axis=0, weights=np.abs(yt) + 0.1), X),
    "moments": (lambda yt, yp: K.moments(yp, axes=[0])[0] + K.moments(yp, axes=[0, 1], keepdims=True)[1], X),
    "normalize_l2": (lambda yt, yp: K.normalize(yp, axis=-1), X),
    "normalize_l1": (lambda yt, yp: K.normalize(yp, axis=0, order=1), X),
    "ravel_copy": (lambda yt, yp: K.ravel(K.copy(yp)) * np.arange(12), X),
    "split": (lambda yt, yp: K.split(yp, [1, 3], axis=1)[1] * 2 + K.split(yp, 3)[2].sum(), X),
    "unstack": (lambda yt, yp: K.unstack(yp, axis=1)[2] * K.unstack(yp)[0][1], X),
    "hstack_vstack": (lambda yt, yp: K.hstack([yp, yt]).sum(0) + K.vstack([yp[0], yp[1]]).sum(), X),
    "outer_vdot": (lambda yt, yp: K.outer(yp[0], yp[1]) * K.vdot(yp, yt), X),
    "tril_triu": (lambda yt, yp: K.tril(yp, -1) * 2 + K.triu(yp, 1) * 3, X),
    "diagonal_trace": (lambda yt, yp: K.diagonal(yp, 1) * 2 + K.trace(yp, -1), X),
    "diag": (lambda yt, yp: K.diag(yp[0], 1) * np.arange(25).reshape(5, 5) + K.diag(yp).sum(), X),
    "repeat": (lambda yt, yp: K.repeat(yp, [1, 2, 0], axis=0) * 1.5 + K.repeat(yp, 2).sum(), X),
    "roll": (lambda yt, yp: K.roll(yp, 1, axis=1) * np.arange(4) + K.roll(yp, -5).reshape(3, 4) * yt, X),
    "nan_to_num": (lambda yt, yp: K.nan_to_num(yp * 2), X),
    "select": (lambda yt, yp: K.select([yt > 0.5, yt < -0.5], [yp, K.square(yp)], 0.25), X),
    "sort": (lambda yt, yp: K.sort(yp) * np.arange(4) + K.sort(yp, axis=0).sum(0), X),
    "top_k": (lambda yt, yp: K.top_k(yp, 2)[0] * np.array([2.0, 1.0]), X),
    "quantile": (lambda yt, yp: K.quantile(yp, 0.3, axis=1) + K.quantile(yp, [0.1, 0.9]).sum(), X),
    "quantile_methods": (lambda yt, yp: sum(K.quantile(yp, 0.4, axis=0, method=m) for m in ("lower", "higher", "midpoint", "nearest")), X),
    "percentile_median": (lambda yt, yp: K.percentile(yp, 70, axis=-1, keepdims=True) * K.median(yp), X),
    "celu": (lambda yt, yp: K.celu(yp * 2, alpha=0.7), X),
    "hard_tanh": (lambda yt, yp: K.hard_tanh(yp * 1.7), X),
    "hard_silu": (lambda yt, yp: K.hard_silu(yp * 4) + K.hard_swish(yp), X),
    "squareplus": (lambda yt, yp: K.squareplus(yp, b=2), X),
    "soft_shrink": (lambda yt, yp: K.soft_shrink(yp * 2, threshold=0.3), X),
    "tanh_shrink": (lambda yt, yp: K.tanh_shrink(yp), X),
    "sparse_plus": (lambda yt, yp: K.sparse_plus(yp * 2), X),
    "sparse_sigmoid": (lambda yt, yp: K.sparse_sigmoid(yp * 2), X),
    "glu": (lambda yt, yp: K.glu(yp), X),
    "threshold": (lambda yt, yp: K.threshold(yp, 0.2, -1.0), X),
    "sparsemax": (lambda yt, yp: K.sparsemax(yp * 3), X),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_against_central_differences(name: str) -> None:
    fn, x = CASES[name]
    check_vjp(fn, Y, x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_forward_equals_plain_float32(name: str) -> None:
    fn, x = CASES[name]
    yt, yp = Y.astype(np.float32), np.asarray(x, dtype=np.float32)
    ref = fn(yt, yp)
    out = fn(yt, ad.trace(yp))
    assert np.asarray(ad._v(out)).dtype == np.asarray(ref).dtype
    np.testing.assert_array_equal(np.asarray(ad._v(out)), ref)


NUMPY_SAME = {
    "rsqrt": (lambda x: K.rsqrt(x), lambda x: 1 / np.sqrt(x), P),
    "arcsinh": (K.arcsinh, np.arcsinh, X), "arccosh": (K.arccosh, np.arccosh, G1),
    "arctanh": (K.arctanh, np.arctanh, U), "exp2": (K.exp2, np.exp2, X),
    "cbrt": (K.cbrt, np.cbrt, X), "trunc": (K.trunc, np.trunc, X * 3),
    "deg2rad": (K.deg2rad, np.deg2rad, X), "rad2deg": (K.rad2deg, np.rad2deg, X),
    "arctan2": (lambda x: K.arctan2(x, x[::-1] + 0.5), lambda x: np.arctan2(x, x[::-1] + 0.5), X),
    "logaddexp2": (lambda x: K.logaddexp2(x, 1.5), lambda x: np.logaddexp2(x, np.float32(1.5)), X),
    "ptp": (lambda x: K.ptp(x, axis=0), lambda x: np.ptp(x, axis=0), X),
    "average": (lambda x: K.average(x, 1, [1.0, 2, 3, 4]), lambda x: np.average(x, 1, np.float32([1, 2, 3, 4])), X),
    "tril": (lambda x: K.tril(x, 1), lambda x: np.tril(x, 1), X),
    "triu": (lambda x: K.triu(x, -1), lambda x: np.triu(x, -1), X),
    "diagonal": (lambda x: K.diagonal(x, -1), lambda x: np.diagonal(x, -1), X),
    "trace": (lambda x: K.trace(x, 1), lambda x: np.trace(x, 1), X),
    "diag": (lambda x: K.diag(x[1], -2), lambda x: np.diag(x[1], -2), X),
    "repeat": (lambda x: K.repeat(x, 3, axis=1), lambda x: np.repeat(x, 3, axis=1), X),
    "roll": (lambda x: K.roll(x, (1, -2), axis=(0, 1)), lambda x: np.roll(x, (1, -2), axis=(0, 1)), X),
    "sort": (lambda x: K.sort(x, axis=0), lambda x: np.sort(x, axis=0), X),
    "median": (lambda x: K.median(x, axis=0), lambda x: np.median(x, axis=0), X),
    "quantile": (lambda x: K.quantile(x, [0.2, 0.5, 0.95], axis=1, keepdims=True),
                 lambda x: np.quantile(x, [0.2, 0.5, 0.95], axis=1, keepdims=True), X),
    "percentile": (lambda x: K.percentile(x, 37, method="nearest"), lambda x: np.percentile(x, 37, method="nearest"), X),
    "outer": (lambda x: K.outer(x[0], x[1]), lambda x: np.outer(x[0], x[1]), X),
    "vdot": (lambda x: K.vdot(x, x * 2), lambda x: np.vdot(x, x * 2), X),
    "hstack": (lambda x: K.hstack([x, x]), lambda x: np.hstack([x, x]), X),
    "vstack": (lambda x: K.vstack([x[0], x]), lambda x: np.vstack([x[0], x]), X),
}


@pytest.mark.parametrize("name", sorted(NUMPY_SAME))
def test_values_as_numpy(name: str) -> None:
    ours, ref, x = NUMPY_SAME[name]
    x = np.asarray(x, np.float32)
    got, want = np.asarray(ours(x)), np.asarray(ref(x))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_top_k_and_argsort() -> None:
    x = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, -1.0, 5.0, 5.0]], np.float32)
    v, i = K.top_k(x, 3)
    np.testing.assert_array_equal(i, [[0, 2, 3], [2, 3, 0]])  # (ties: lower index first)
    np.testing.assert_array_equal(v, [[3, 3, 2], [5, 5, 0]])
    assert i.dtype == np.int32 and v.dtype == np.float32
    np.testing.assert_array_equal(K.argsort(x), np.argsort(x, kind="stable"))
    with pytest.raises(ValueError, match="k=5"):
        K.top_k(x, 5)


def test_activations_formulas() -> None:
    x = np.linspace(-3, 3, 25, dtype=np.float32)
    np.testing.assert_allclose(K.celu(x, 0.5), np.maximum(x, 0) + 0.5 * np.expm1(np.minimum(x, 0) / 0.5), rtol=1e-6)
    np.testing.assert_allclose(K.hard_tanh(x), np.clip(x, -1, 1))
    np.testing.assert_allclose(K.hard_silu(x), x * np.clip(x + 3, 0, 6) / 6, rtol=1e-6)
    np.testing.assert_allclose(K.squareplus(x), (x + np.sqrt(x * x + 4)) / 2, rtol=1e-6)
    np.testing.assert_allclose(K.soft_shrink(x), np.sign(x) * np.maximum(np.abs(x) - 0.5, 0), atol=1e-7)
    np.testing.assert_allclose(K.tanh_shrink(x), x - np.tanh(x), atol=1e-7)
    np.testing.assert_allclose(K.sparse_plus(x), np.where(x <= -1, 0, np.where(x < 1, (x + 1) ** 2 / 4, x)))
    np.testing.assert_allclose(K.sparse_sigmoid(x), np.clip((x + 1) / 2, 0, 1))
    np.testing.assert_allclose(K.threshold(x, 1.0, 7.0), np.where(x > 1, x, 7))
    s = K.sparsemax(np.array([[0.1, 1.5, 1.2, -2.0]], np.float32))
    np.testing.assert_allclose(s, [[0, 0.65, 0.35, 0]], atol=1e-6)
    np.testing.assert_allclose(np.sum(K.sparsemax(X.astype(np.float32) * 4), -1), 1, rtol=1e-6)
    g = K.glu(np.arange(8, dtype=np.float32).reshape(2, 4))
    np.testing.assert_allclose(g, np.array([[0, 1], [4, 5]]) / (1 + np.exp(-np.array([[2, 3], [6, 7]]))), rtol=1e-6)
    with pytest.raises(ValueError, match="axis size must be divisible by 2"):
        K.glu(np.ones((2, 3)))


def test_constants_and_dtypes() -> None:
    assert K.arange(5).dtype == np.int32 and K.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(K.arange(2, 11, 3), [2, 5, 8])
    assert K.eye(3, 4, 1).dtype == np.float32 and K.identity(2).shape == (2, 2)
    np.testing.assert_array_equal(K.tri(3), np.tri(3))
    np.testing.assert_allclose(K.linspace(0, 1, 5), np.linspace(0, 1, 5))
    assert K.linspace(0, 1, 5).dtype == np.float32
    x = np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)
    np.testing.assert_array_equal(K.nan_to_num(x), np.nan_to_num(x))
    np.testing.assert_array_equal(K.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-2.0), [1, 2, -2, 1.5])
    assert K.isclose(x, x).tolist() == [False, True, True, True] and K.allclose(x[3:], x[3:])
    np.testing.assert_array_equal(K.signbit(np.array([-0.0, 1.0], np.float32)), [True, False])
    assert K.heaviside(np.array([-1, 0, 2]), np.array(5)).dtype == np.float64
    np.testing.assert_array_equal(K.heaviside(np.float32([-1, 0, 2]), 0.5), [0, 0.5, 1])
    m, v = K.moments(X.astype(np.float32), axes=[1])
    np.testing.assert_allclose(m, X.mean(1), rtol=1e-5)
    np.testing.assert_allclose(v, X.var(1), rtol=1e-4, atol=1e-6)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="Received: order=0"):
        K.normalize(X, order=0)
    with pytest.raises(ValueError, match="same length"):
        K.select([X > 0], [X, X])
    with pytest.raises(ValueError, match="Received: method=cubic"):
        K.quantile(X, 0.5, method="cubic")
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        K.quantile(X, 1.5)
    with pytest.raises(ValueError, match="num=3"):
        K.unstack(X, num=3, axis=1)


def test_custom_loss_with_new_ops_trains() -> None:
    """A custom loss written with the new ops, as a Keras user writes one, fits."""
    import fastdense as keras

    def loss(y_true, y_pred):
        d = keras.ops.sort(keras.ops.abs(y_true - y_pred), axis=-1)
        return keras.ops.mean(keras.ops.hard_tanh(d) + keras.ops.rsqrt(d * d + 1.0), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 3))).astype(np.float32)
    m = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    m.compile(optimizer="adam", loss=loss)
    h = m.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert np.all(np.isfinite(h.history["loss"]))
    assert h.history["loss"][-1] < h.history["loss"][0]


# ------------------------------------------------------------ with Keras

KERAS_SAME = {
    # name: (call with ops module o on x, input)
    "rsqrt": (lambda o, x: o.rsqrt(x), P), "arcsinh": (lambda o, x: o.arcsinh(x), X),
    "arccosh": (lambda o, x: o.arccosh(x), G1), "arctanh": (lambda o, x: o.arctanh(x), U),
    "exp2": (lambda o, x: o.exp2(x), X), "cbrt": (lambda o, x: o.cbrt(x), P),
    "trunc": (lambda o, x: o.trunc(x * 3), X), "deg2rad": (lambda o, x: o.deg2rad(x), X),
    "rad2deg": (lambda o, x: o.rad2deg(x), X), "arctan2": (lambda o, x: o.arctan2(x, x + 0.5), X),
    "hypot": (lambda o, x: o.hypot(x, 2 * x), X), "logaddexp2": (lambda o, x: o.logaddexp2(x, x * x), X),
    "fmod": (lambda o, x: o.fmod(x * 3, 0.7), X), "ptp": (lambda o, x: o.ptp(x, axis=1), X),
    "average": (lambda o, x: o.average(x, axis=1, weights=o.convert_to_tensor(np.float32([1, 2, 3, 4]))), X),
    "moments_m": (lambda o, x: o.moments(x, axes=[0])[0], X),
    "moments_v": (lambda o, x: o.moments(x, axes=[0, 1], keepdims=True)[1], X),
    "normalize": (lambda o, x: o.normalize(x, axis=-1), X),
    "normalize1": (lambda o, x: o.normalize(x, axis=0, order=1), X),
    "tril": (lambda o, x: o.tril(x, -1), X), "triu": (lambda o, x: o.triu(x, 1), X),
    "diagonal": (lambda o, x: o.diagonal(x, 1), X), "trace": (lambda o, x: o.trace(x), X),
    "repeat": (lambda o, x: o.repeat(x, 2, axis=0), X), "roll": (lambda o, x: o.roll(x, 3), X),
    "sort": (lambda o, x: o.sort(x), X), "top_k": (lambda o, x: o.top_k(x, 3)[0], X),
    "quantile": (lambda o, x: o.quantile(x, 0.3, axis=1), X),
    "median": (lambda o, x: o.median(x, axis=0), X),
    "outer": (lambda o, x: o.outer(x[0], x[1]), X), "vdot": (lambda o, x: o.vdot(x, x), X),
    "celu": (lambda o, x: o.celu(x * 2, alpha=0.7), X), "hard_tanh": (lambda o, x: o.hard_tanh(x * 2), X),
    "hard_silu": (lambda o, x: o.hard_silu(x * 4), X), "squareplus": (lambda o, x: o.squareplus(x), X),
    "soft_shrink": (lambda o, x: o.soft_shrink(x * 2), X), "tanh_shrink": (lambda o, x: o.tanh_shrink(x), X),
    "sparse_plus": (lambda o, x: o.sparse_plus(x * 2), X),
    "sparse_sigmoid": (lambda o, x: o.sparse_sigmoid(x * 2), X), "glu": (lambda o, x: o.glu(x), X),
    "threshold": (lambda o, x: o.threshold(x, 0.2, -1.0), X), "sparsemax": (lambda o, x: o.sparsemax(x * 3), X),
}


@pytest.mark.parametrize("name", sorted(KERAS_SAME))
def test_side_by_side_with_keras(name: str) -> None:
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the side-by-side gradients use JAX")
    import jax
    fn, x = KERAS_SAME[name]
    x32 = np.asarray(x, np.float32)
    if name == "sparsemax" and not np.allclose(np.sum(keras.ops.sparsemax(x32 * 3), -1), 1):
        pytest.skip("this Keras has the sparsemax threshold bug fixed in keras-team/keras#23469")
    ours = np.asarray(ad._v(fn(K, x32)))
    theirs = np.asarray(fn(keras.ops, x32))
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=3e-6, atol=1e-6)
    w = np.random.default_rng(5).normal(size=ours.shape).astype(np.float32)
    _, g = ad.value_and_grad(lambda yt, yp: fn(K, yp) * w, None, x32)
    jg = jax.grad(lambda v: (fn(keras.ops, v) * w).sum())(x32)
    np.testing.assert_allclose(np.asarray(g), np.asarray(jg), rtol=2e-5, atol=2e-6)


# ---------------------------------------------------- the second set of ops

XN = np.where(np.abs(X) < 0.3, np.nan, X)  # (NaNs in some entries)

CASES2 = {
    "erfc": (lambda yt, yp: K.erfc(yp), X),
    "erfinv": (lambda yt, yp: K.erfinv(yp), U),
    "sinc": (lambda yt, yp: K.sinc(yp * 2), X),
    "hard_shrink": (lambda yt, yp: K.hard_shrink(yp * 2), X),
    "ldexp": (lambda yt, yp: K.ldexp(yp, np.array([1, -2, 0, 3])), X),
    "diff": (lambda yt, yp: K.diff(yp) * 2 + K.diff(yp, n=2, axis=0).sum(), X),
    "flips_rot": (lambda yt, yp: K.fliplr(yp) * np.arange(4) + K.flipud(yp) + K.rot90(yp)[0].sum(), X),
    "nan_reductions": (lambda yt, yp: K.nansum(yp * np.where(np.isnan(XN), np.nan, 1.0), axis=0)
                       + K.nanmean(yp * np.where(np.isnan(XN), np.nan, 1.0), axis=0)
                       + K.nanmax(yp * np.where(np.isnan(XN), np.nan, 1.0), axis=0), X),
    "nanvar": (lambda yt, yp: K.nanvar(yp, axis=1) + K.nanstd(yp, axis=1), X),
    "nanprod": (lambda yt, yp: K.nanprod(yp, axis=1) + K.nanmin(yp, axis=1), X),
    "tensordot": (lambda yt, yp: K.tensordot(yp, yt, axes=([1], [1])) + K.inner(yp, yt), X),
    "kron": (lambda yt, yp: K.kron(yp[:2, :2], yt[:2, :3]), X),
    "splits": (lambda yt, yp: K.array_split(yp, 3, axis=1)[1].sum() + K.hsplit(yp, 2)[0].sum()
               + K.vsplit(yp, 3)[2].sum() + K.dstack([yp, yt])[..., 0], X),
    "slicing": (lambda yt, yp: K.slice(yp, (1, 1), (2, 2)).sum() + K.get_item(yp, (0, 2)), X),
    "saturate_cast": (lambda yt, yp: K.saturate_cast(yp * 3, yp.dtype) * 2, X),
    "layer_norm": (lambda yt, yp: K.layer_normalization(yp, np.arange(4.0), np.ones(4)), X),
    "rms_norm": (lambda yt, yp: K.rms_normalization(yp, np.arange(4.0) + 1), X),
    "batch_norm": (lambda yt, yp: K.batch_normalization(yp, np.arange(4.0), np.arange(4.0) + 1,
                                                        axis=1, offset=np.ones(4), scale=np.full(4, 2.0)), X),
    "control_flow": (lambda yt, yp: K.cond(True, lambda: yp * 2, lambda: yp)
                     + K.switch(1, [lambda a: a, lambda a: a * 3], yp)
                     + K.map(lambda r: r * 2, yp) + K.fori_loop(0, 3, lambda i, v: v + yp, yp)
                     + K.scan(lambda c, r: (c + r, c * r), yp[0], yp)[1].sum(), X),
}


@pytest.mark.parametrize("name", sorted(CASES2))
def test_second_set_grad_against_central_differences(name: str) -> None:
    fn, x = CASES2[name]
    check_vjp(fn, Y, x)


@pytest.mark.parametrize("name", sorted(CASES2))
def test_second_set_traced_forward_equals_plain(name: str) -> None:
    fn, x = CASES2[name]
    yt, yp = Y.astype(np.float32), np.asarray(x, dtype=np.float32)
    ref, out = fn(yt, yp), fn(yt, ad.trace(yp))
    np.testing.assert_array_equal(np.asarray(ad._v(out)), ref)


def test_second_set_values_as_numpy() -> None:
    x = X.astype(np.float32)
    xn = XN.astype(np.float32)
    for ours, ref in ((K.nansum(xn, axis=0), np.nansum(xn, axis=0)),
                      (K.nanmean(xn, axis=1), np.nanmean(xn, axis=1)),
                      (K.nanvar(xn), np.nanvar(xn)), (K.nanstd(xn, axis=0), np.nanstd(xn, axis=0)),
                      (K.nanmax(xn, axis=1), np.nanmax(xn, axis=1)),
                      (K.nanprod(xn), np.nanprod(xn)), (K.diff(x, 2), np.diff(x, 2)),
                      (K.rot90(x, 3), np.rot90(x, 3)), (K.kron(x[:2], x[1:]), np.kron(x[:2], x[1:])),
                      (K.tensordot(x, x.T, 1), np.tensordot(x, x.T, 1)),
                      (K.inner(x, x), np.inner(x, x)), (K.sinc(x), np.sinc(x)),
                      (K.erfinv(np.float32([-0.999, -0.5, 0.0, 0.3, 0.99])),
                       np.float32([-2.3267537, -0.4769363, 0.0, 0.27246272, 1.8213864]))):
        np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(ref, np.float64),
                                   rtol=2e-6, atol=1e-6)
    assert K.isneginf(np.float32([-np.inf, 1])).tolist() == [True, False]
    assert K.searchsorted(np.float32([1, 3, 5]), np.float32([0, 3, 6])).tolist() == [0, 1, 3]
    assert K.digitize(np.float32([0.5, 2.5]), np.float32([1, 2, 3])).tolist() == [0, 2]
    assert K.in_top_k(np.array([1, 0]), np.float32([[0.1, 0.5, 0.4], [0.2, 0.7, 0.1]]), 1).tolist() \
        == [True, False]
    np.testing.assert_array_equal(K.multi_hot(np.array([[0, 2], [1, 1]]), 3), [[1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(K.bincount(np.array([0, 2, 2])), [1, 0, 2])
    assert K.dtype(x) == "float32" and K.saturate_cast(np.float32([300, -5]), "uint8").tolist() == [255, 0]
    assert K.while_loop(lambda i: i < 10, lambda i: i + 3, 0) == 12
    assert K.while_loop(lambda a, b: a < 5, lambda a, b: (a + 1, b * 2), (0, 1)) == (5, 32)


KERAS_SAME2 = {
    "erfc": (lambda o, x: o.erfc(x), X), "erfinv": (lambda o, x: o.erfinv(x), U),
    "sinc": (lambda o, x: o.sinc(x * 2), X), "hard_shrink": (lambda o, x: o.hard_shrink(x * 2), X),
    "diff": (lambda o, x: o.diff(x, n=2), X), "rot90": (lambda o, x: o.rot90(x, 3), X),
    "fliplr": (lambda o, x: o.fliplr(x), X),
    "nansum": (lambda o, x: o.nansum(x, axis=0), X), "nanmean": (lambda o, x: o.nanmean(x, axis=1), X),
    "nanvar": (lambda o, x: o.nanvar(x, axis=0), X), "nanstd": (lambda o, x: o.nanstd(x), X),
    "nanmax": (lambda o, x: o.nanmax(x, axis=1), X), "nanprod": (lambda o, x: o.nanprod(x, axis=0), X),
    "tensordot": (lambda o, x: o.tensordot(x, x, axes=([0], [0])), X),
    "inner": (lambda o, x: o.inner(x, x), X), "kron": (lambda o, x: o.kron(x[:2, :2], x[1:, :3]), X),
    "layer_norm": (lambda o, x: o.layer_normalization(x, o.convert_to_tensor(np.float32([1, 2, 3, 4])),
                                                      o.convert_to_tensor(np.float32([0, 1, 0, 1]))), X),
    "rms_norm": (lambda o, x: o.rms_normalization(x, o.convert_to_tensor(np.float32([1, 2, 3, 4]))), X),
    "batch_norm": (lambda o, x: o.batch_normalization(
        x, o.convert_to_tensor(np.float32([0, 1, 2, 3])), o.convert_to_tensor(np.float32([1, 2, 3, 4])),
        axis=1, offset=o.convert_to_tensor(np.float32([1, 1, 1, 1])),
        scale=o.convert_to_tensor(np.float32([2, 2, 2, 2]))), X),
    "slice": (lambda o, x: o.slice(x, (1, 1), (2, 2)), X),
}


@pytest.mark.parametrize("name", sorted(KERAS_SAME2))
def test_second_set_side_by_side_with_keras(name: str) -> None:
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the side-by-side gradients use JAX")
    import jax
    fn, x = KERAS_SAME2[name]
    x32 = np.asarray(x, np.float32)
    if name.startswith("nan"):
        x32 = np.where(np.abs(x32) < 0.3, np.float32(np.nan), x32)
    ours = np.asarray(ad._v(fn(K, x32)))
    theirs = np.asarray(fn(keras.ops, x32))
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=3e-6, atol=1e-6)
    if name.startswith("nan"):
        return  # (JAX's gradients through NaN entries are NaN; fastdense's zero)
    w = np.random.default_rng(5).normal(size=ours.shape).astype(np.float32)
    _, g = ad.value_and_grad(lambda yt, yp: fn(K, yp) * w, None, x32)
    jg = jax.grad(lambda v: (fn(keras.ops, v) * w).sum())(x32)
    np.testing.assert_allclose(np.asarray(g), np.asarray(jg), rtol=2e-5, atol=2e-6)
