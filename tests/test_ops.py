"""Tests for fastdense.ops and the reverse-mode autodiff in fastdense._autodiff.

Gradients are checked against float64 central finite differences of the same
function evaluated on plain numpy arrays.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any, Callable, Optional

import numpy as np
import pytest


def _load_modules() -> tuple:
    """Import fastdense.ops/_autodiff; fall back to loading the two files into
    a synthetic package when fastdense/__init__.py is not importable (e.g. the
    compiled engine is not built)."""
    try:
        return importlib.import_module("fastdense.ops"), importlib.import_module("fastdense._autodiff")
    except Exception:  # pragma: no cover - depends on the build state
        pkg_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "fastdense")
        name = "_fastdense_ops_under_test"
        pkg = types.ModuleType(name)
        pkg.__path__ = [pkg_dir]  # type: ignore[attr-defined]
        sys.modules[name] = pkg
        mods = []
        for sub in ("_autodiff", "ops"):
            spec = importlib.util.spec_from_file_location(f"{name}.{sub}", os.path.join(pkg_dir, f"{sub}.py"))
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[f"{name}.{sub}"] = mod
            spec.loader.exec_module(mod)
            setattr(pkg, sub, mod)
            mods.append(mod)
        return mods[1], mods[0]


K, ad = _load_modules()

RNG_SEED = 1234


def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


# ---------------------------------------------------------------------------
# finite-difference helpers
# ---------------------------------------------------------------------------


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f(x.copy())
        x[i] = old - h
        fm = f(x.copy())
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def check_vjp(
    fn: Callable[[Any, Any], Any],
    y_true: Any,
    y_pred: np.ndarray,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    h: float = 1e-6,
) -> None:
    """Check d sum(fn(y_true, y_pred) * seed) / d y_pred for a random seed and
    that the traced forward value equals the plain-numpy one."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    plain = np.asarray(fn(y_true, y_pred.copy()))
    seed = np.random.default_rng(7).normal(size=plain.shape)
    value, grad = ad.value_and_grad(fn, y_true, y_pred, seed)
    np.testing.assert_allclose(value, plain, rtol=1e-12, atol=0)
    assert value.shape == plain.shape
    assert grad.shape == y_pred.shape
    num = numeric_grad(lambda x: float(np.sum(np.asarray(fn(y_true, x)) * seed)), y_pred, h)
    np.testing.assert_allclose(grad, num, rtol=rtol, atol=atol)


def check_loss(fn: Callable[[Any, Any], Any], y_true: Any, y_pred: np.ndarray, sample_weight: Any = None,
               rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """loss_and_grad in float64 against finite differences of itself."""
    loss, grad = ad.loss_and_grad(fn, y_true, y_pred, sample_weight, dtype="float64")
    assert isinstance(loss, float)
    assert grad.shape == np.shape(y_pred) and grad.dtype == np.float64
    num = numeric_grad(
        lambda x: ad.loss_and_grad(fn, y_true, x, sample_weight, dtype="float64")[0], np.asarray(y_pred)
    )
    np.testing.assert_allclose(grad, num, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# elementwise ufuncs through numpy (__array_ufunc__)
# ---------------------------------------------------------------------------

UNARY_UFUNCS = [
    ("negative", np.negative, "any"), ("positive", np.positive, "any"), ("square", np.square, "any"),
    ("sqrt", np.sqrt, "pos"), ("cbrt", np.cbrt, "pos"), ("absolute", np.absolute, "any"),
    ("fabs", np.fabs, "any"), ("exp", np.exp, "any"), ("exp2", np.exp2, "any"),
    ("expm1", np.expm1, "any"), ("log", np.log, "pos"), ("log2", np.log2, "pos"),
    ("log10", np.log10, "pos"), ("log1p", np.log1p, "pos"), ("reciprocal", np.reciprocal, "pos"),
    ("sin", np.sin, "any"), ("cos", np.cos, "any"), ("tan", np.tan, "unit"),
    ("arcsin", np.arcsin, "unit"), ("arccos", np.arccos, "unit"), ("arctan", np.arctan, "any"),
    ("sinh", np.sinh, "any"), ("cosh", np.cosh, "any"), ("tanh", np.tanh, "any"),
    ("arcsinh", np.arcsinh, "any"), ("arccosh", np.arccosh, "gt1"), ("arctanh", np.arctanh, "unit"),
]


def _domain(kind: str, shape: tuple = (3, 4)) -> np.ndarray:
    r = rng()
    if kind == "pos":
        return r.uniform(0.3, 2.0, size=shape)
    if kind == "unit":
        return r.uniform(-0.8, 0.8, size=shape)
    if kind == "gt1":
        return r.uniform(1.3, 3.0, size=shape)
    x = r.uniform(0.2, 1.5, size=shape) * r.choice([-1.0, 1.0], size=shape)
    return x


@pytest.mark.parametrize("name,uf,kind", UNARY_UFUNCS, ids=[u[0] for u in UNARY_UFUNCS])
def test_unary_ufunc_grad(name: str, uf: np.ufunc, kind: str) -> None:
    check_vjp(lambda yt, yp: uf(yp), None, _domain(kind))


@pytest.mark.parametrize("name,uf,kind", UNARY_UFUNCS, ids=[u[0] for u in UNARY_UFUNCS])
def test_unary_ufunc_forward_float32(name: str, uf: np.ufunc, kind: str) -> None:
    x = _domain(kind).astype(np.float32)
    t = ad.trace(x)
    out = uf(t)
    ref = uf(x)
    assert isinstance(out, ad.Tensor)
    assert out.dtype == ref.dtype == np.float32
    np.testing.assert_array_equal(out.value, ref)


BINARY_UFUNCS = [
    ("add", np.add, "any"), ("subtract", np.subtract, "any"), ("multiply", np.multiply, "any"),
    ("divide", np.divide, "pos"), ("true_divide", np.true_divide, "pos"), ("power", np.power, "pos"),
    ("float_power", np.float_power, "pos"), ("maximum", np.maximum, "any"),
    ("minimum", np.minimum, "any"), ("fmax", np.fmax, "any"), ("fmin", np.fmin, "any"),
    ("logaddexp", np.logaddexp, "any"), ("hypot", np.hypot, "any"), ("arctan2", np.arctan2, "any"),
    ("remainder", np.remainder, "pos"),
]


@pytest.mark.parametrize("name,uf,kind", BINARY_UFUNCS, ids=[u[0] for u in BINARY_UFUNCS])
@pytest.mark.parametrize("other_shape", [(3, 4), (4,), (3, 1), ()])
def test_binary_ufunc_grad_both_sides_with_broadcast(name: str, uf: np.ufunc, kind: str, other_shape: tuple) -> None:
    x = _domain(kind, (3, 4))
    other = np.random.default_rng(5).uniform(0.4, 1.7, size=other_shape)
    if name == "remainder":  # keep away from discontinuities
        x = np.random.default_rng(3).uniform(0.05, 0.45, size=(3, 4)) + 1.0
        other = np.full(other_shape, 0.5)
    check_vjp(lambda yt, yp: uf(yp, yt), other, x)
    if name == "remainder":
        return
    check_vjp(lambda yt, yp: uf(yt, yp), other, x)
    # traced operand that is the *smaller* one: gradient is un-broadcast
    big = _domain(kind, (2, 3, 4))
    small = np.abs(np.random.default_rng(9).uniform(0.4, 1.7, size=other_shape)) if kind == "pos" else \
        np.random.default_rng(9).uniform(-1.7, 1.7, size=other_shape)
    check_vjp(lambda yt, yp: uf(yt, yp), big, small)
    check_vjp(lambda yt, yp: uf(yp, yt), big, small)


def test_power_traced_exponent_and_negative_base() -> None:
    base = np.array([[0.5, 1.5, 2.0]])
    check_vjp(lambda yt, yp: np.power(yt, yp), base, np.array([1.2, -0.7, 2.5]))
    check_vjp(lambda yt, yp: yp ** 3, None, np.array([-1.5, 0.3, 2.0]))
    check_vjp(lambda yt, yp: 2.0 ** yp, None, np.array([-1.5, 0.3, 2.0]))


def test_dunders() -> None:
    yt = _domain("any")
    x = _domain("pos")
    check_vjp(lambda a, b: (b + a) * (a - b) / (b + 1.0) - (-b) + 3.0 * b - 1.0 / b, yt, x)
    check_vjp(lambda a, b: abs(a - b) ** 2 + (a @ b.T).sum() + b.T.mean(), yt, x)
    check_vjp(lambda a, b: 2.0 - b + (b % 0.7), yt, x * 0.5 + 0.05)


def test_zero_gradient_ufuncs_stay_traced() -> None:
    x = _domain("any")
    for uf in (np.sign, np.floor, np.ceil, np.rint, np.trunc):
        out = uf(ad.trace(x))
        assert isinstance(out, ad.Tensor)
        np.testing.assert_array_equal(out.value, uf(x))
        _, g = ad.value_and_grad(lambda yt, yp: uf(yp) * yp, None, x)
        np.testing.assert_allclose(g, uf(x))


# ---------------------------------------------------------------------------
# numpy functions (__array_function__)
# ---------------------------------------------------------------------------

X = _domain("any", (3, 4))
Y = np.random.default_rng(99).normal(size=(3, 4))

NUMPY_FUNCS = {
    "sum": lambda yt, yp: np.sum(yp),
    "sum_axis": lambda yt, yp: np.sum(yp, axis=-1),
    "sum_keepdims": lambda yt, yp: np.sum(yp, axis=0, keepdims=True) * yt,
    "sum_tuple_axis": lambda yt, yp: np.sum(yp[None] * yt, axis=(0, 2)),
    "mean": lambda yt, yp: np.mean(yp),
    "mean_axis": lambda yt, yp: np.mean(np.square(yt - yp), axis=-1),
    "mean_keepdims": lambda yt, yp: yp - np.mean(yp, axis=-1, keepdims=True),
    "max": lambda yt, yp: np.max(yp, axis=-1),
    "amax_keepdims": lambda yt, yp: np.amax(yp, axis=0, keepdims=True),
    "min": lambda yt, yp: np.min(yp, axis=1),
    "max_all": lambda yt, yp: np.max(yp) + np.min(yp),
    "prod": lambda yt, yp: np.prod(yp, axis=-1),
    "prod_all": lambda yt, yp: np.prod(yp),
    "cumsum": lambda yt, yp: np.cumsum(yp, axis=1),
    "cumsum_flat": lambda yt, yp: np.cumsum(yp),
    "clip": lambda yt, yp: np.clip(yp, -0.5, 0.9),
    "clip_none": lambda yt, yp: np.clip(yp, None, 0.4),
    "clip_traced_bounds": lambda yt, yp: np.clip(yt, yp, yp + 0.3),
    "where": lambda yt, yp: np.where(yt > 0, yp, np.square(yp)),
    "where_scalar": lambda yt, yp: np.where(yp > 0, yp, 0.0),
    "abs": lambda yt, yp: np.abs(yp - yt),
    "reshape": lambda yt, yp: np.reshape(yp, (4, 3)) * np.arange(3),
    "reshape_method": lambda yt, yp: yp.reshape(2, 6) * np.arange(6),
    "ravel": lambda yt, yp: np.ravel(yp) * np.arange(12),
    "expand_dims": lambda yt, yp: np.expand_dims(yp, 1) * np.ones((3, 2, 4)),
    "squeeze": lambda yt, yp: np.squeeze(yp[:, :1], axis=1),
    "broadcast_to": lambda yt, yp: np.broadcast_to(yp[:1], (5, 4)) * np.arange(5)[:, None],
    "transpose": lambda yt, yp: np.transpose(yp) * np.arange(3),
    "transpose_axes": lambda yt, yp: np.transpose(yp[None] * yt[:, None], (2, 0, 1)),
    "T": lambda yt, yp: yp.T @ yt,
    "swapaxes": lambda yt, yp: np.swapaxes(yp, 0, 1) * np.arange(3),
    "moveaxis": lambda yt, yp: np.moveaxis(yp[None] * yt[:, None], 0, -1),
    "flip": lambda yt, yp: np.flip(yp, axis=1) * yt,
    "concatenate": lambda yt, yp: np.concatenate([yp, yt, np.square(yp)], axis=1),
    "concatenate_axis0": lambda yt, yp: np.concatenate([yp[:1], yp], axis=0),
    "stack": lambda yt, yp: np.stack([yp, yt * yp], axis=-1),
    "tile": lambda yt, yp: np.tile(yp, (2, 1)) * np.arange(6)[:, None],
    "take": lambda yt, yp: np.take(yp, [0, 2, 2], axis=1),
    "take_flat": lambda yt, yp: np.take(yp, [0, 5, 5, 11]),
    "take_along_axis": lambda yt, yp: np.take_along_axis(yp, np.array([[0], [3], [1]]), axis=1),
    "dot": lambda yt, yp: np.dot(yp, yt.T),
    "dot_vec": lambda yt, yp: np.dot(yp, np.arange(4.0)),
    "matmul": lambda yt, yp: np.matmul(yt.T, yp),
    "matmul_batched": lambda yt, yp: np.matmul(yp[None] * np.ones((2, 1, 1)), yt.T[None]),
    "matmul_vec": lambda yt, yp: yp[0] @ yt.T,
    "var": lambda yt, yp: np.var(yp, axis=-1),
    "std": lambda yt, yp: np.std(yp, axis=0, ddof=1),
    "norm": lambda yt, yp: np.linalg.norm(yp - yt, axis=-1),
    "norm_all": lambda yt, yp: np.linalg.norm(yp),
    "norm_l1": lambda yt, yp: np.linalg.norm(yp, ord=1, axis=1),
    "astype": lambda yt, yp: yp.astype(np.float64) * 1.0 + np.astype(yp, yp.dtype) if hasattr(np, "astype") else yp.astype(np.float64),
    "methods": lambda yt, yp: yp.mean(axis=0) + yp.sum(axis=0) + yp.max(axis=0) + yp.min(axis=0),
    "getitem_basic": lambda yt, yp: yp[1:, ::2] * 2,
    "getitem_fancy_repeat": lambda yt, yp: yp[[0, 0, 2], [1, 1, 3]],
    "getitem_bool": lambda yt, yp: yp[yt > 0],
    "getitem_ellipsis": lambda yt, yp: yp[..., -1],
    "iter": lambda yt, yp: np.stack([row * i for i, row in enumerate(yp)]),
    "add_reduce": lambda yt, yp: np.add.reduce(yp, axis=1) + np.maximum.reduce(yp, axis=1),
    "round": lambda yt, yp: np.round(yp) * yp,
    "ones_like": lambda yt, yp: np.ones_like(yp) * yp + np.zeros_like(yp),
}


@pytest.mark.parametrize("name", sorted(NUMPY_FUNCS))
def test_numpy_function_grad(name: str) -> None:
    check_vjp(NUMPY_FUNCS[name], Y, X)


@pytest.mark.parametrize("name", sorted(NUMPY_FUNCS))
def test_numpy_function_forward_matches_numpy_float32(name: str) -> None:
    fn = NUMPY_FUNCS[name]
    yt, yp = Y.astype(np.float32), X.astype(np.float32)
    ref = np.asarray(fn(yt, yp))
    out = fn(yt, ad.trace(yp))
    val = out.value if isinstance(out, ad.Tensor) else np.asarray(out)
    assert val.dtype == ref.dtype
    np.testing.assert_array_equal(val, ref)


def test_prod_with_zeros() -> None:
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5], [1.0, 2.0, 4.0]])
    _, g = ad.value_and_grad(lambda yt, yp: np.prod(yp, axis=-1), None, x)
    np.testing.assert_allclose(g, [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]])


def test_max_ties_split_gradient() -> None:
    _, g = ad.value_and_grad(lambda yt, yp: np.max(yp, axis=-1), None, np.array([[1.0, 3.0, 3.0]]))
    np.testing.assert_allclose(g, [[0.0, 0.5, 0.5]])


def test_like_functions_are_constants() -> None:
    t = ad.trace(X.astype(np.float32))
    for f in (np.ones_like, np.zeros_like):
        out = f(t)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert np.shape(t) == (3, 4) and np.ndim(t) == 2 and np.size(t) == 12
    assert t.shape == (3, 4) and t.ndim == 2 and t.dtype == np.float32 and len(t) == 3
    np.testing.assert_array_equal(np.argmax(t, axis=-1), np.argmax(X, axis=-1))


# ---------------------------------------------------------------------------
# fastdense.ops (keras.ops names)
# ---------------------------------------------------------------------------

P = _domain("pos", (3, 4))
U = _domain("unit", (3, 4))

OPS_FUNCS = {
    "add": (lambda yt, yp: K.add(yp, yt), X),
    "subtract": (lambda yt, yp: K.subtract(yt, yp), X),
    "multiply": (lambda yt, yp: K.multiply(yp, yt[0]), X),
    "divide": (lambda yt, yp: K.divide(yt, yp), P),
    "true_divide": (lambda yt, yp: K.true_divide(yp, 2.0), X),
    "divide_no_nan": (lambda yt, yp: K.divide_no_nan(yp, np.where(yt > 0, yt, 0.0)), X),
    "negative": (lambda yt, yp: K.negative(yp), X),
    "power": (lambda yt, yp: K.power(yp, 3) + K.power(2.0, yp), X),
    "power_traced_exp": (lambda yt, yp: K.power(np.abs(yt) + 0.5, yp), X),
    "square": (lambda yt, yp: K.square(yp), X),
    "sqrt": (lambda yt, yp: K.sqrt(yp), P),
    "abs": (lambda yt, yp: K.abs(yp), X),
    "absolute": (lambda yt, yp: K.absolute(yp - yt), X),
    "exp": (lambda yt, yp: K.exp(yp), X),
    "log": (lambda yt, yp: K.log(yp), P),
    "log1p": (lambda yt, yp: K.log1p(yp), P),
    "log2": (lambda yt, yp: K.log2(yp), P),
    "log10": (lambda yt, yp: K.log10(yp), P),
    "expm1": (lambda yt, yp: K.expm1(yp), X),
    "reciprocal": (lambda yt, yp: K.reciprocal(yp), P),
    "sign": (lambda yt, yp: K.sign(yp) * yp, X),
    "trig": (lambda yt, yp: K.sin(yp) + K.cos(yp) + K.tan(yp) + K.arctan(yp), U),
    "arc": (lambda yt, yp: K.arcsin(yp) + K.arccos(yp), U),
    "hyperbolic": (lambda yt, yp: K.sinh(yp) + K.cosh(yp) + K.tanh(yp), X),
    "erf": (lambda yt, yp: K.erf(yp), X),
    "clip": (lambda yt, yp: K.clip(yp, -0.5, 0.9), X),
    "maximum": (lambda yt, yp: K.maximum(yp, yt), X),
    "maximum_scalar": (lambda yt, yp: K.maximum(yp, 0.0), X),
    "minimum": (lambda yt, yp: K.minimum(yt, yp), X),
    "logaddexp": (lambda yt, yp: K.logaddexp(yp, yt), X),
    "mod": (lambda yt, yp: K.mod(yp, 0.7), P),
    "where": (lambda yt, yp: K.where(K.greater(yt, 0), yp, K.square(yp)), X),
    "mean": (lambda yt, yp: K.mean(yp, axis=-1), X),
    "mean_keepdims": (lambda yt, yp: K.mean(yp, axis=[0], keepdims=True) * yt, X),
    "sum": (lambda yt, yp: K.sum(yp, axis=0), X),
    "sum_all": (lambda yt, yp: K.sum(yp * yt), X),
    "max": (lambda yt, yp: K.max(yp, axis=-1, keepdims=True), X),
    "min": (lambda yt, yp: K.min(yp, axis=0), X),
    "prod": (lambda yt, yp: K.prod(yp, axis=-1), X),
    "var_std": (lambda yt, yp: K.var(yp, axis=-1, keepdims=True) + K.std(yp, axis=0), X),
    "cumsum": (lambda yt, yp: K.cumsum(yp, axis=0), X),
    "logsumexp": (lambda yt, yp: K.logsumexp(yp, axis=-1), X),
    "logsumexp_all": (lambda yt, yp: K.logsumexp(yp * 30.0), X),
    "norm": (lambda yt, yp: K.norm(yp, axis=-1), X),
    "softmax": (lambda yt, yp: K.softmax(yp), X),
    "softmax_axis0": (lambda yt, yp: K.softmax(yp * 50.0, axis=0), X),
    "log_softmax": (lambda yt, yp: K.log_softmax(yp, axis=-1), X),
    "sigmoid": (lambda yt, yp: K.sigmoid(yp * 10.0), X),
    "log_sigmoid": (lambda yt, yp: K.log_sigmoid(yp * 10.0), X),
    "relu": (lambda yt, yp: K.relu(yp), X),
    "relu6": (lambda yt, yp: K.relu6(yp * 5.0), X),
    "tanh": (lambda yt, yp: K.tanh(yp), X),
    "softplus": (lambda yt, yp: K.softplus(yp * 10.0), X),
    "softsign": (lambda yt, yp: K.softsign(yp), X),
    "silu": (lambda yt, yp: K.silu(yp) + K.swish(yp), X),
    "elu_selu": (lambda yt, yp: K.elu(yp) + K.selu(yp), X),
    "leaky_relu": (lambda yt, yp: K.leaky_relu(yp), X),
    "hard_sigmoid": (lambda yt, yp: K.hard_sigmoid(yp * 4.0), X),
    "gelu": (lambda yt, yp: K.gelu(yp) + K.gelu(yp, approximate=False), X),
    "cast": (lambda yt, yp: K.cast(yp, yp.dtype) * 1.0, X),
    "convert_to_tensor": (lambda yt, yp: K.convert_to_tensor(yp) * 2.0, X),
    "reshape": (lambda yt, yp: K.reshape(yp, (2, 6)) * np.arange(6), X),
    "expand_squeeze": (lambda yt, yp: K.squeeze(K.expand_dims(yp, -1), axis=-1) * yt, X),
    "transpose": (lambda yt, yp: K.transpose(yp) * np.arange(3), X),
    "transpose_axes": (lambda yt, yp: K.transpose(K.stack([yp, yt]), (1, 2, 0)) * np.arange(2), X),
    "swap_move_flip": (lambda yt, yp: K.swapaxes(yp, 0, 1) + K.moveaxis(yp, 1, 0) + K.flip(yp.T, 0), X),
    "broadcast_tile": (lambda yt, yp: K.broadcast_to(yp, (2, 3, 4)) + K.tile(yp, (2, 1, 1)), X),
    "matmul": (lambda yt, yp: K.matmul(yp, yt.T), X),
    "dot": (lambda yt, yp: K.dot(yt.T, yp), X),
    "stack": (lambda yt, yp: K.stack([yp, yt, K.square(yp)], axis=1), X),
    "concatenate": (lambda yt, yp: K.concatenate([yp, yt, K.exp(yp)], axis=-1), X),
    "take": (lambda yt, yp: K.take(yp, np.array([1, 1, 0]), axis=0), X),
    "take_along_axis": (lambda yt, yp: K.take_along_axis(yp, np.array([[0, 0], [3, 1], [2, 2]]), axis=-1), X),
    "bce": (lambda yt, yp: K.binary_crossentropy((yt > 0).astype(yp.dtype), yp), U * 0.5 + 0.5),
    "bce_logits": (lambda yt, yp: K.binary_crossentropy((yt > 0).astype(yp.dtype), yp, from_logits=True), X),
    "cce": (lambda yt, yp: K.categorical_crossentropy(K.one_hot(np.array([0, 3, 2]), 4), yp), P),
    "cce_logits": (lambda yt, yp: K.categorical_crossentropy(K.one_hot([1, 2, 0], 4), yp, from_logits=True), X),
    "scce": (lambda yt, yp: K.sparse_categorical_crossentropy(np.array([[0], [3], [2]]), yp), P),
    "scce_logits": (lambda yt, yp: K.sparse_categorical_crossentropy(np.array([1, 2, 0]), yp, from_logits=True), X),
}


@pytest.mark.parametrize("name", sorted(OPS_FUNCS))
def test_ops_grad(name: str) -> None:
    fn, x = OPS_FUNCS[name]
    check_vjp(fn, Y, x)


@pytest.mark.parametrize("name", sorted(OPS_FUNCS))
def test_ops_forward_float32_matches_plain(name: str) -> None:
    fn, x = OPS_FUNCS[name]
    yt, yp = Y.astype(np.float32), np.asarray(x, dtype=np.float32)
    ref = fn(yt, yp)
    assert isinstance(ref, np.ndarray) and not isinstance(ref, ad.Tensor)
    out = fn(yt, ad.trace(yp))
    assert isinstance(out, ad.Tensor)
    assert out.dtype == ref.dtype
    np.testing.assert_array_equal(out.value, ref)


def test_stop_gradient_blocks() -> None:
    _, g = ad.value_and_grad(lambda yt, yp: yp * K.stop_gradient(yp), None, np.array([2.0, 3.0]))
    np.testing.assert_allclose(g, [2.0, 3.0])


def test_ops_dtype_conventions() -> None:
    f32 = np.ones((2, 3), np.float32)
    assert K.mean(np.arange(4)).dtype == np.float32
    assert K.sqrt(np.arange(4, dtype=np.int32)).dtype == np.float32
    assert K.divide(np.arange(4), 2).dtype == np.float32
    assert K.convert_to_tensor([1.0, 2.0]).dtype == np.float32
    assert K.convert_to_tensor([1, 2]).dtype == np.int32
    assert K.add(f32, 1.0).dtype == np.float32
    assert K.multiply(f32, np.float32(2)).dtype == np.float32
    assert K.add(f32, np.ones(3)).dtype == np.float64  # explicit float64 input stays float64
    assert K.one_hot(np.array([0, 2, 5, -1]), 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert K.one_hot(np.array([0, 1]), 3, axis=0).shape == (3, 2)
    assert K.argmax(f32, axis=-1).dtype == np.int32
    assert K.shape(ad.trace(f32)) == (2, 3) and K.ndim(f32) == 2 and K.size(f32) == 6
    assert K.ones((2,)).dtype == np.float32 and K.zeros_like(f32).dtype == np.float32
    np.testing.assert_allclose(K.softmax(np.array([[1.0, 2.0, 3.0]], np.float32)).sum(), 1.0, rtol=1e-6)
    # bce matches Keras' clipped formula
    t, o = np.array([1.0, 0.0], np.float32), np.array([1.0, 0.25], np.float32)
    expect = -np.array([np.log(np.float32(1 - 1e-7)), np.log(np.float32(0.75))], np.float32)
    np.testing.assert_allclose(K.binary_crossentropy(t, o), expect, rtol=1e-6)


def test_comparisons_are_not_differentiable() -> None:
    t = ad.trace(X)
    for r in (t > 0, t >= 0, t < 0, t <= 0, t == X, t != X, np.greater(t, 0), np.isfinite(t),
              np.logical_and(t > 0, t < 1), K.greater(t, 0), K.less_equal(t, X), K.equal(t, 0),
              K.not_equal(t, 0), K.greater_equal(t, 0), K.less(t, 1), K.logical_not(t > 0),
              K.logical_or(t > 0, t < -1), K.logical_and(t > 0, t < 1), K.isnan(t)):
        assert isinstance(r, np.ndarray) and not isinstance(r, ad.Tensor)
        assert r.dtype == np.bool_
    np.testing.assert_array_equal(t > 0, X > 0)
    # a loss whose gradient flows only through the selected branches
    check_vjp(lambda yt, yp: np.where(yp > 0.3, yp * yt, -yp), Y, X)


# ---------------------------------------------------------------------------
# custom losses (numpy style and ops style) through loss_and_grad
# ---------------------------------------------------------------------------


def mse_np(y_true: Any, y_pred: Any) -> Any:
    return np.mean(np.square(y_true - y_pred), axis=-1)


def mse_ops(y_true: Any, y_pred: Any) -> Any:
    return K.mean(K.square(y_pred - y_true), axis=-1)


def mae_np(y_true: Any, y_pred: Any) -> Any:
    return np.mean(np.abs(y_true - y_pred), axis=-1)


def mae_ops(y_true: Any, y_pred: Any) -> Any:
    return K.mean(K.abs(y_pred - y_true), axis=-1)


def cce_clip_np(y_true: Any, y_pred: Any) -> Any:
    y_pred = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
    y_pred = np.clip(y_pred, 1e-7, 1 - 1e-7)
    return -np.sum(y_true * np.log(y_pred), axis=-1)


def cce_clip_ops(y_true: Any, y_pred: Any) -> Any:
    y_pred = K.clip(y_pred, 1e-7, 1.0 - 1e-7)
    return -K.sum(y_true * K.log(y_pred), axis=-1)


def huber_np(y_true: Any, y_pred: Any, delta: float = 0.5) -> Any:
    err = y_true - y_pred
    abs_err = np.abs(err)
    quad = 0.5 * np.square(err)
    lin = delta * abs_err - 0.5 * delta ** 2
    return np.mean(np.where(abs_err <= delta, quad, lin), axis=-1)


def huber_ops(y_true: Any, y_pred: Any, delta: float = 0.5) -> Any:
    err = K.subtract(y_pred, y_true)
    abs_err = K.abs(err)
    half = K.multiply(0.5, K.square(err))
    lin = delta * abs_err - 0.5 * delta ** 2
    return K.mean(K.where(K.less_equal(abs_err, delta), half, lin), axis=-1)


def log_cosh_np(y_true: Any, y_pred: Any) -> Any:
    x = y_pred - y_true
    return np.mean(x + np.log1p(np.exp(-2.0 * x)) - np.log(2.0), axis=-1)


def log_cosh_ops(y_true: Any, y_pred: Any) -> Any:
    x = y_pred - y_true
    return K.mean(x + K.softplus(-2.0 * x) - K.log(np.float64(2.0)), axis=-1)


def keepdims_broadcast_np(y_true: Any, y_pred: Any) -> Any:
    # centred error, per-sample scale from keepdims reductions, returns (B, k)
    centred = y_pred - np.mean(y_pred, axis=-1, keepdims=True)
    scale = np.sqrt(np.sum(np.square(y_true), axis=-1, keepdims=True) + 1.0)
    return np.square(centred - y_true) / scale + 0.1 * np.max(y_pred, axis=0, keepdims=True)


def keepdims_broadcast_ops(y_true: Any, y_pred: Any) -> Any:
    centred = y_pred - K.mean(y_pred, axis=-1, keepdims=True)
    scale = K.sqrt(K.sum(K.square(y_true), axis=-1, keepdims=True) + 1.0)
    return K.square(centred - y_true) / scale + 0.1 * K.max(y_pred, axis=0, keepdims=True)


def scalar_np(y_true: Any, y_pred: Any) -> Any:
    return np.sum(np.square(y_true - y_pred)) / 7.0


def scalar_ops(y_true: Any, y_pred: Any) -> Any:
    return K.mean(K.square(y_true - y_pred))


LOSSES = {
    "mse_np": (mse_np, "any"), "mse_ops": (mse_ops, "any"),
    "mae_np": (mae_np, "any"), "mae_ops": (mae_ops, "any"),
    "cce_clip_np": (cce_clip_np, "prob"), "cce_clip_ops": (cce_clip_ops, "prob"),
    "huber_np": (huber_np, "any"), "huber_ops": (huber_ops, "any"),
    "log_cosh_np": (log_cosh_np, "any"), "log_cosh_ops": (log_cosh_ops, "any"),
    "keepdims_np": (keepdims_broadcast_np, "any"), "keepdims_ops": (keepdims_broadcast_ops, "any"),
    "scalar_np": (scalar_np, "any"), "scalar_ops": (scalar_ops, "any"),
}


def _loss_data(kind: str) -> tuple:
    r = np.random.default_rng(11)
    if kind == "prob":
        yt = np.eye(4)[r.integers(0, 4, size=5)]
        yp = r.uniform(0.05, 1.0, size=(5, 4))
        yp[0, 0] = -0.5  # clipped element: zero gradient after clipping
        return yt, yp
    yt = r.normal(size=(5, 4))
    yp = yt + r.normal(scale=0.8, size=(5, 4))
    return yt, yp


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_custom_loss_grad(name: str) -> None:
    fn, kind = LOSSES[name]
    yt, yp = _loss_data(kind)
    check_vjp(fn, yt, yp)
    check_loss(fn, yt, yp)
    sw = np.random.default_rng(2).uniform(0.0, 2.0, size=(5,))
    check_loss(fn, yt, yp, sample_weight=sw)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_custom_loss_float32_value(name: str) -> None:
    fn, kind = LOSSES[name]
    yt, yp = (a.astype(np.float32) for a in _loss_data(kind))
    loss, grad = ad.loss_and_grad(fn, yt, yp)
    assert grad.dtype == np.float32 and grad.shape == yp.shape
    values = np.asarray(fn(yt, yp)).astype(np.float32)
    expect = values if values.ndim == 0 else np.sum(values) / values.size
    np.testing.assert_allclose(loss, float(expect), rtol=1e-6)
    _, g64 = ad.loss_and_grad(fn, yt.astype(np.float64), yp.astype(np.float64), dtype="float64")
    np.testing.assert_allclose(grad, g64, rtol=2e-3, atol=1e-6)


def test_ops_and_numpy_styles_agree() -> None:
    yt, yp = _loss_data("any")
    for a, b in ((mse_np, mse_ops), (mae_np, mae_ops), (huber_np, huber_ops), (log_cosh_np, log_cosh_ops),
                 (keepdims_broadcast_np, keepdims_broadcast_ops)):
        la, ga = ad.loss_and_grad(a, yt, yp, dtype="float64")
        lb, gb = ad.loss_and_grad(b, yt, yp, dtype="float64")
        np.testing.assert_allclose(la, lb, rtol=1e-9)
        np.testing.assert_allclose(ga, gb, rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------------------
# reduction semantics (Keras "sum_over_batch_size")
# ---------------------------------------------------------------------------


def test_reduction_per_sample_with_sample_weight() -> None:
    yt, yp = _loss_data("any")
    sw = np.array([1.0, 0.0, 2.0, 0.5, 1.0])
    loss, grad = ad.loss_and_grad(mse_np, yt, yp, sw, dtype="float64")
    per = np.mean((yt - yp) ** 2, axis=-1)
    np.testing.assert_allclose(loss, np.sum(per * sw) / 5)
    np.testing.assert_allclose(grad, 2 * (yp - yt) / 4 * sw[:, None] / 5)


def test_reduction_elementwise_output_divides_by_all_elements() -> None:
    yt, yp = _loss_data("any")
    fn = lambda a, b: np.square(a - b)  # noqa: E731  (B, k) output
    loss, grad = ad.loss_and_grad(fn, yt, yp, dtype="float64")
    np.testing.assert_allclose(loss, np.mean((yt - yp) ** 2))
    np.testing.assert_allclose(grad, 2 * (yp - yt) / 20)
    sw = np.arange(5.0)
    loss_w, grad_w = ad.loss_and_grad(fn, yt, yp, sw, dtype="float64")  # sw expanded to (B, 1)
    np.testing.assert_allclose(loss_w, np.sum((yt - yp) ** 2 * sw[:, None]) / 20)
    np.testing.assert_allclose(grad_w, 2 * (yp - yt) * sw[:, None] / 20)
    check_loss(fn, yt, yp, sample_weight=np.arange(20.0).reshape(5, 4))


def test_reduction_scalar_output() -> None:
    yt, yp = _loss_data("any")
    loss, grad = ad.loss_and_grad(scalar_ops, yt, yp, dtype="float64")
    np.testing.assert_allclose(loss, np.mean((yt - yp) ** 2))
    np.testing.assert_allclose(grad, 2 * (yp - yt) / 20)
    # Keras: scalar * sample_weight (B,) -> (B,) -> sum / B
    sw = np.array([1.0, 2.0, 3.0, 0.0, 4.0])
    loss_w, grad_w = ad.loss_and_grad(scalar_ops, yt, yp, sw, dtype="float64")
    np.testing.assert_allclose(loss_w, np.mean((yt - yp) ** 2) * sw.mean())
    np.testing.assert_allclose(grad_w, 2 * (yp - yt) / 20 * sw.mean())


def test_reduction_sample_weight_rank_matching() -> None:
    yt, yp = _loss_data("any")
    per = np.mean((yt - yp) ** 2, axis=-1)
    sw = np.array([[1.0], [0.0], [2.0], [0.5], [1.0]])  # (B, 1) vs values (B,)
    loss, _ = ad.loss_and_grad(mse_np, yt, yp, sw, dtype="float64")
    np.testing.assert_allclose(loss, np.sum(per * sw[:, 0]) / 5)
    check_loss(mse_np, yt, yp, sample_weight=sw)


def test_y_true_rank_matched_to_y_pred() -> None:
    r = np.random.default_rng(3)
    yt = r.normal(size=(6,))  # (B,) labels
    yp = r.normal(size=(6, 1))  # (B, 1) predictions
    loss, grad = ad.loss_and_grad(mse_np, yt, yp, dtype="float64")
    np.testing.assert_allclose(loss, np.mean((yt - yp[:, 0]) ** 2))
    assert grad.shape == (6, 1)
    np.testing.assert_allclose(grad[:, 0], 2 * (yp[:, 0] - yt) / 6)
    check_loss(mse_np, yt, yp)


def test_default_dtype_is_float32() -> None:
    yt, yp = _loss_data("any")
    seen = []

    def spy(a: Any, b: Any) -> Any:
        seen.append((a.dtype, b.dtype))
        return mse_np(a, b)

    loss, grad = ad.loss_and_grad(spy, yt, yp)
    assert seen == [(np.float32, np.float32)]
    assert isinstance(loss, float) and grad.dtype == np.float32


def test_backward_with_seed() -> None:
    x = ad.trace(np.array([1.0, 2.0, 3.0]))
    y = x * x
    (g,) = ad.backward(y, np.array([1.0, 0.0, 2.0]), [x])
    np.testing.assert_allclose(g, [2.0, 0.0, 12.0])
    # shared sub-expressions accumulate
    z = y + y * x
    (g,) = ad.backward(z, None, [x])
    np.testing.assert_allclose(g, 2 * x.value + 3 * x.value ** 2)


# ---------------------------------------------------------------------------
# clear errors
# ---------------------------------------------------------------------------


def test_error_when_loss_drops_the_trace() -> None:
    def my_detached_loss(y_true: Any, y_pred: Any) -> Any:
        y_pred = np.asarray(y_pred)
        return np.mean(np.square(y_true - y_pred), axis=-1)

    yt, yp = _loss_data("any")
    with pytest.raises(TypeError, match="my_detached_loss") as exc:
        ad.loss_and_grad(my_detached_loss, yt, yp)
    assert "fastdense.ops" in str(exc.value)
    with pytest.raises(TypeError, match="not connected"):
        ad.loss_and_grad(lambda a, b: np.mean(a), yt, yp)
    with pytest.raises(TypeError, match="my_detached_loss"):
        ad.value_and_grad(my_detached_loss, yt, yp)


def test_error_for_unsupported_numpy_function() -> None:
    yt, yp = _loss_data("any")
    with pytest.raises(TypeError, match=r"np\.median.*Supported numpy functions:.*np\.mean"):
        ad.loss_and_grad(lambda a, b: np.median(b - a, axis=-1), yt, yp)
    with pytest.raises(TypeError, match="np.sort"):
        np.sort(ad.trace(yp))
    with pytest.raises(TypeError, match="ufunc np.ldexp|np.ldexp"):
        np.ldexp(ad.trace(yp), 2)
    with pytest.raises(TypeError, match="out="):
        np.add(ad.trace(yp), 1.0, out=np.empty_like(yp))
    with pytest.raises(TypeError, match="item assignment"):
        t = ad.trace(yp)
        t[0] = 1.0


def test_plain_numpy_input_returns_numpy() -> None:
    x = X.astype(np.float32)
    for out in (K.mean(x, axis=-1), K.softmax(x), K.clip(x, 0, 1), K.where(x > 0, x, 0.0), K.relu(x)):
        assert type(out) is np.ndarray
        assert out.dtype == np.float32
