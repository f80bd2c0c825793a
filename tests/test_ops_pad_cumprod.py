"""ops.pad, ops.cumprod and ops.einsum: values against numpy, gradients
against central differences in float64 (cumprod with zeros, where a
division-based gradient fails; einsum for every operand of each expression),
Keras's argument forms and errors, and side by side with keras.ops on JAX
(values and jax.grad) where Keras is installed."""

import numpy as np
import pytest

import fastdense as fd
from fastdense import ops
from fastdense._autodiff import value_and_grad

F64 = np.float64


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def grad(fn, x, weights):
    """d sum(fn(x) * weights) / dx through fastdense's autodiff (float64)."""
    return value_and_grad(lambda _t, v: fn(v), None, np.asarray(x, F64), weights)[1]


def check_grad(fn, x, weights):
    g = grad(fn, x, weights)
    want = numeric_grad(lambda v: float(np.sum(np.asarray(fn(v)) * weights)), x)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_cumprod_values_and_gradient_with_zeros(axis):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5))
    x[1, 2] = 0.0
    x[2, 0] = 0.0
    x[2, 3] = 0.0  # (two zeros in one row: every gradient but one is 0 there)
    np.testing.assert_array_equal(ops.cumprod(x, axis=axis), np.cumprod(x, axis=axis))
    out_shape = np.cumprod(x, axis=axis).shape
    w = rng.normal(size=out_shape)
    check_grad(lambda v: ops.cumprod(v, axis=axis), x, w)


def test_cumprod_dtype_and_numpy_dispatch():
    x = np.array([1, 2, 3], np.int32)
    assert ops.cumprod(x, dtype="float32").dtype == np.float32
    g = grad(lambda v: np.cumprod(v), np.array([2.0, 3.0, 4.0]), np.ones(3))
    np.testing.assert_allclose(g, [1 + 3 + 12, 2 + 8, 6])


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@pytest.mark.parametrize("pw", [1, (1, 2), ((0, 2), (3, 1)), [(2,), (1,)]])
def test_pad_values_and_gradients(mode, pw):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    got = ops.pad(x, pw, mode=mode)
    npw = {1: 1, (1, 2): (1, 2)}.get(pw, None) if not isinstance(pw, list) else ((2, 2), (1, 1))
    if npw is None:
        npw = pw
    np.testing.assert_array_equal(got, np.pad(x, npw, mode=mode))
    w = rng.normal(size=got.shape)
    check_grad(lambda v: ops.pad(v, pw, mode=mode), x, w)


def test_pad_constant_values_and_errors():
    x = np.ones((2, 2), np.float32)
    np.testing.assert_array_equal(ops.pad(x, 1, constant_values=7.0),
                                  np.pad(x, 1, constant_values=7.0))
    with pytest.raises(ValueError, match="constant_values"):
        ops.pad(x, 1, mode="edge", constant_values=1.0)
    with pytest.raises(ValueError, match="same length as `x.shape`"):
        ops.pad(np.ones((2, 2, 2)), ((1, 1), (1, 1)))
    with pytest.raises(ValueError, match="length 1 or 2"):
        ops.pad(x, ((1, 1), (1,)))
    # (the statistic modes give values; their gradients are refused)
    np.testing.assert_array_equal(ops.pad(x, 1, mode="mean"), np.pad(x, 1, mode="mean"))
    with pytest.raises(TypeError, match="not differentiable"):
        grad(lambda v: ops.pad(v, 1, mode="maximum"), np.ones((2, 2)), np.ones((4, 4)))


def test_pad_in_a_custom_loss_trains():
    """A loss written with ops.pad and ops.cumprod trains through fit."""
    def loss(y_true, y_pred):
        d = ops.pad(y_true - y_pred, ((0, 0), (1, 1)), mode="edge")
        return ops.mean(ops.square(d), axis=-1) + 0.0 * ops.sum(ops.cumprod(y_pred, axis=-1))

    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = rng.normal(size=(64, 2)).astype(np.float32)
    m = fd.Sequential([fd.Input((4,)), fd.layers.Dense(2)])
    m.compile("adam", loss)
    h = m.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"]
    assert h[-1] < h[0]


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij->i", [(3, 4)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),  # (implicit output: ik)
    ("i,j->ij", [(3,), (4,)]),
    ("ijk,k->", [(2, 3, 4), (4,)]),
    ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 2)]),
]


@pytest.mark.parametrize("expr,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_values_and_gradients(expr, shapes):
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=s) for s in shapes]
    want = np.einsum(expr, *xs)
    np.testing.assert_allclose(ops.einsum(expr, *xs), want, rtol=1e-12)
    w = rng.normal(size=np.shape(want))
    for i in range(len(xs)):
        def f(v, i=i):
            args = list(xs)
            args[i] = v
            return ops.einsum(expr, *args)
        check_grad(f, xs[i], w)


def test_einsum_dtypes_and_limits():
    a = np.ones((2, 3), np.float32)
    assert ops.einsum("ij->j", a).dtype == np.float32
    assert ops.einsum("ij->", np.ones((2, 2), np.int8)).dtype == np.int32  # (Keras's)
    # values for any subscripts; gradients refused where not supported
    np.testing.assert_allclose(ops.einsum("ii->i", np.eye(3)), np.ones(3))
    np.testing.assert_allclose(ops.einsum("...ij,...jk", np.ones((2, 2, 3)), np.ones((3, 4))),
                               np.full((2, 2, 4), 3.0))
    with pytest.raises(TypeError, match="diagonal"):
        grad(lambda v: ops.einsum("ii->i", v), np.eye(3), np.ones(3))
    with pytest.raises(TypeError, match="'...'"):
        grad(lambda v: ops.einsum("...i->...", v), np.ones((2, 3)), np.ones(2))


# ------------------------------------------------------------ with Keras

@pytest.mark.parametrize("case", ["cumprod0", "cumprod_none", "pad_reflect", "pad_const",
                                  "pad_wrap", "einsum", "einsum_sum"])
def test_side_by_side_with_keras_ops(case):
    from _keras_side import keras_or_skip
    keras = keras_or_skip()
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    x[1, 1] = 0.0
    fns = {
        "cumprod0": lambda lib, v: lib.ops.cumprod(v, axis=0),
        "cumprod_none": lambda lib, v: lib.ops.cumprod(v),
        "pad_reflect": lambda lib, v: lib.ops.pad(v, ((1, 2), (2, 1)), mode="reflect"),
        "pad_const": lambda lib, v: lib.ops.pad(v, 2, constant_values=0.5),
        "pad_wrap": lambda lib, v: lib.ops.pad(v, [(1,), (3,)], mode="wrap"),
        "einsum": lambda lib, v: lib.ops.einsum("ij,kj->ik", v, v * 2.0 + 1.0),
        "einsum_sum": lambda lib, v: lib.ops.einsum("ij->j", v),
    }
    f = fns[case]
    kv = np.asarray(f(keras, x))
    fv = np.asarray(f(fd, x))
    assert fv.dtype == kv.dtype and fv.shape == kv.shape
    np.testing.assert_allclose(fv, kv, rtol=1e-6)
    w = rng.normal(size=kv.shape).astype(np.float32)
    kg = np.asarray(jax.grad(lambda v: (f(keras, v) * w).sum())(x))
    fg = grad(lambda v: f(fd, v), x, w)
    np.testing.assert_allclose(fg, kg, rtol=1e-5, atol=1e-6)
