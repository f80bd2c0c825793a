"""Tests for fastdense.activations: the numpy callables against their
definitions (float64 math), the name lookup, and agreement with the native
kernels' fused activations (dense_forward with an identity weight matrix)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fastdense import _core
from fastdense import activations as A

NAMES = ["linear", "relu", "sigmoid", "tanh", "softmax"]


def scalar_def(name, v):
    """The textbook definition, one float64 scalar at a time."""
    if name == "linear":
        return v
    if name == "relu":
        return v if v > 0 else 0.0
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0
    if name == "tanh":
        return math.tanh(v)
    raise ValueError(name)


def softmax_def(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


@pytest.fixture
def data():
    rng = np.random.default_rng(2024)
    x = rng.standard_normal((6, 7)) * 4.0
    x[0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    return x


@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elementwise_definitions(name, dtype, data):
    x = data.astype(dtype)
    y = A.get(name)(x)
    assert np.shape(y) == x.shape
    assert np.asarray(y).dtype == dtype
    want = np.vectorize(lambda v: scalar_def(name, float(v)))(x.astype(np.float64))
    tol = 1e-15 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)


def test_specific_values():
    np.testing.assert_array_equal(A.relu(np.array([-2.0, -0.0, 0.0, 3.5])), [0, 0, 0, 3.5])
    np.testing.assert_allclose(A.sigmoid(np.array([0.0, 1.0, -1.0])),
                               [0.5, 0.7310585786300049, 0.2689414213699951], rtol=1e-15)
    np.testing.assert_allclose(A.tanh(np.array([0.5])), [0.46211715726000974], rtol=1e-15)
    np.testing.assert_allclose(A.softmax(np.array([[1.0, 2.0, 3.0]])),
                               [[0.09003057317038046, 0.24472847105479764,
                                 0.6652409557748219]], rtol=1e-14)
    x = np.array([1.0, 2.0])
    assert A.linear(x) is x


def test_saturation_is_finite():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="ignore"):  # exp(1000) -> inf -> 1/inf == 0, as Keras's numpy backend
        s = A.sigmoid(x)
    np.testing.assert_allclose(s, [0.0, 1.928749847963918e-22, 0.5, 1.0, 1.0], rtol=1e-12)
    np.testing.assert_array_equal(A.tanh(x), [-1.0, -1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(A.softmax(np.array([[1000.0, 0.0, -1000.0]])), [[1, 0, 0]])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_definition_and_axis(axis, data):
    y = A.softmax(data, axis=axis)
    moved = np.moveaxis(data, axis, -1)
    want = np.moveaxis(np.array([softmax_def(list(r)) for r in moved]), -1, axis)
    np.testing.assert_allclose(y, want, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)


def test_softmax_default_axis_is_last_and_shift_invariant():
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    np.testing.assert_allclose(A.softmax(x), A.softmax(x, axis=-1))
    np.testing.assert_allclose(A.softmax(x + 123.0), A.softmax(x), rtol=1e-12)
    assert A.softmax(x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("code,name", list(enumerate(NAMES)))
def test_numpy_callables_agree_with_native_kernels(code, name):
    """dense_forward(x, I, 0, act) = act(x): the native fused activation and the
    numpy callable compute the same function (generic ISA, float32)."""
    x = (np.random.default_rng(code).standard_normal((5, 12)) * 3).astype(np.float32)
    eye = np.eye(12, dtype=np.float32)
    old = _core.kernel_isa()
    try:
        _core.set_isa("generic")
        y = _core.dense_forward(x, eye, np.zeros(12, np.float32), code)
    finally:
        _core.set_isa(old)
    np.testing.assert_allclose(y, A.get(name)(x.astype(np.float64)), rtol=2e-6, atol=1e-7)
    assert A.native_code(A.get(name)) == code


def test_get_by_name_none_and_callable():
    for name in NAMES:
        fn = A.get(name)
        assert fn is getattr(A, name)
        assert A.serialize(fn) == name
    assert A.get(None) is A.linear
    custom = lambda x: x * 2  # noqa: E731
    assert A.get(custom) is custom
    assert A.native_code(custom) is None


@pytest.mark.parametrize("bad", ["swishy", "relu6x", ""])
def test_get_unknown_name_raises_value_error_with_name(bad):
    with pytest.raises(ValueError) as e:
        A.get(bad)
    assert f"identifier: {bad}" in str(e.value)


@pytest.mark.parametrize("bad", [42, 3.5, [1, 2]])
def test_get_non_callable_raises_value_error(bad):
    with pytest.raises(ValueError, match="activation"):
        A.get(bad)


# ---- the engine's activation passes on every ISA (SIMD vexp / vexpm1 / vtanh)
_SELU_A, _SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_C = math.sqrt(2.0 / math.pi)


def _sig64(z):
    return 1.0 / (1.0 + np.exp(-z))


_erfc64 = np.vectorize(math.erfc, otypes=[np.float64])  # (1 + erf(y) = erfc(-y), no cancellation)


def _gelu_tanh64(z):
    t = np.tanh(_C * (z + 0.044715 * z ** 3))
    du = _C * (1 + 3 * 0.044715 * z * z)
    return 0.5 * z * (1 + t), 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du


def _mish_grad64(z):
    t = np.tanh(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))))
    return t + z * (1 - t * t) * _sig64(z)


# code: (f, f') in float64, and whether the forward formula cancels (an
# absolute floor of a float32 ulp of |x| then applies: gelu's tail)
_PASS_REFS = {
    2: (lambda z: _sig64(z), lambda z: _sig64(z) * (1 - _sig64(z)), False),
    3: (np.tanh, lambda z: 1 - np.tanh(z) ** 2, False),
    5: (lambda z: np.where(z > 0, z, np.expm1(z)), lambda z: np.where(z > 0, 1.0, np.exp(z)),
        False),
    6: (lambda z: _SELU_S * np.where(z > 0, z, _SELU_A * np.expm1(z)),
        lambda z: _SELU_S * np.where(z > 0, 1.0, _SELU_A * np.exp(z)), False),
    7: (lambda z: 0.5 * z * _erfc64(-z / math.sqrt(2)),
        lambda z: (0.5 * _erfc64(-z / math.sqrt(2))
                   + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)),
        True),
    8: (lambda z: _gelu_tanh64(z)[0], lambda z: _gelu_tanh64(z)[1], True),
    9: (lambda z: z * _sig64(z), lambda z: _sig64(z) * (1 + z * (1 - _sig64(z))), False),
    11: (lambda z: np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))), _sig64, False),
    18: (lambda z: z * np.tanh(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))),
         lambda z: _mish_grad64(z), False),
    15: (np.exp, np.exp, False),
    20: (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
         lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0))), False),
    21: (lambda z: np.clip(z, -1, 1), lambda z: ((z > -1) & (z < 1)).astype(float), False),
    22: (lambda z: np.where(np.abs(z) > 0.5, z, 0.0),
         lambda z: (np.abs(z) > 0.5).astype(float), False),
    23: (lambda z: np.where(z > 0.5, z - 0.5, np.where(z < -0.5, z + 0.5, 0.0)),
         lambda z: (np.abs(z) > 0.5).astype(float), False),
    # (x - tanh(x) cancels near 0: the ulp-of-|x| floor applies)
    24: (lambda z: z - np.tanh(z), lambda z: np.tanh(z) ** 2, True),
    25: (lambda z: (z + np.sqrt(z * z + 4)) / 2, lambda z: (1 + z / np.sqrt(z * z + 4)) / 2,
         True),
    26: (lambda z: np.where(z <= -1, 0.0, np.where(z >= 1, z, (z + 1) ** 2 / 4)),
         lambda z: np.where(z <= -1, 0.0, np.where(z >= 1, 1.0, (z + 1) / 2)), False),
    27: (lambda z: -(np.maximum(-z, 0) + np.log1p(np.exp(-np.abs(z)))),
         lambda z: _sig64(-z), False),
    28: (lambda z: np.where(z <= -1, 0.0, np.where(z >= 1, 1.0, (z + 1) / 2)),
         lambda z: ((z > -1) & (z < 1)) * 0.5, False),
}


def _pass_points():
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 1e-4, -1e-4, 0.01, -0.01,
               0.3465, -0.3465, 0.34657359, -0.34657359, 0.3467, -0.3467, 0.625, -0.625,
               -17.0, 17.0, -87.3, -88.0, -89.0, 88.0, 89.0]
    return np.concatenate([np.linspace(-100, 100, 4001), np.linspace(-1, 1, 4001),
                           special]).astype(np.float32)


@pytest.mark.parametrize("isa", _core.available_isas().split(","))
@pytest.mark.parametrize("code", sorted(_PASS_REFS))
def test_activation_pass_within_8_ulp_of_float64_on_every_isa(isa, code):
    """activation_forward / activation_backward (the engine's pass for layers
    whose activation the kernels do not fuse) against float64 on every ISA:
    within 8 float32 ulp of the value, plus, where the formula itself cancels
    (a derivative's 1 - t^2, gelu's 1 + tanh), half an ulp of its inputs'
    scale.  Elu near 0 is held to the relative bound (an expm1 computed as
    exp(x) - 1 there would miss it by far)."""
    f, df, cancels = _PASS_REFS[code]
    x = _pass_points()
    z = x.astype(np.float64)
    dy = np.random.default_rng(code).standard_normal(x.shape).astype(np.float32)
    old = _core.kernel_isa()
    try:
        _core.set_isa(isa)
        y = _core.activation_forward(x[None, :], code)[0]
        dz = _core.activation_backward(dy[None, :], x[None, :], y[None, :], code)[0]
    finally:
        _core.set_isa(old)
    ulp = 2.0 ** -24
    # (a factor below float32's smallest normal flushes to 0: silu's x * sigmoid(x))
    floor = 2 * float(np.finfo(np.float32).tiny) * np.maximum(1, np.abs(z))
    want = f(z)
    tol = 8 * ulp * np.abs(want) + floor + (ulp * np.maximum(1, np.abs(z)) if cancels else 0)
    over = np.abs(want) > np.finfo(np.float32).max  # (float32 overflows to inf there)
    assert np.all(y[over] == np.sign(want[over]) * np.inf)
    err = np.where(over, 0, np.abs(y.astype(np.float64) - want))
    assert np.all(err <= tol), (x[err > tol][:5], y[err > tol][:5], want[err > tol][:5])
    want_d = dy.astype(np.float64) * df(z)
    tol_d = 8 * ulp * np.abs(want_d) + floor + 2 * ulp * np.abs(dy) * np.maximum(1, np.abs(z))
    # (f' itself overflowing makes dy * f' inf too: exponential's)
    over_d = np.maximum(np.abs(want_d), np.abs(df(z))) > np.finfo(np.float32).max
    assert np.all(dz[over_d] == np.sign(want_d[over_d]) * np.inf)
    err_d = np.where(over_d, 0, np.abs(dz.astype(np.float64) - want_d))
    assert np.all(err_d <= tol_d), (x[err_d > tol_d][:5], dz[err_d > tol_d][:5])


@pytest.mark.parametrize("isa", _core.available_isas().split(","))
@pytest.mark.parametrize("code", sorted(_PASS_REFS))
def test_activation_pass_keeps_nan_and_infinities(isa, code):
    x = np.array([[np.nan, np.inf, -np.inf, 1.0]], np.float32)
    old = _core.kernel_isa()
    try:
        _core.set_isa(isa)
        y = _core.activation_forward(x, code)
    finally:
        _core.set_isa(old)
    _core.set_isa("generic")
    try:
        ref = _core.activation_forward(x, code)  # (libm's scalar path)
    finally:
        _core.set_isa(old)
    assert np.isnan(y[0, 0])
    np.testing.assert_array_equal(y[0, 1:3], ref[0, 1:3])


def test_elu_alpha_reaches_the_simd_pass():
    """layers.ELU(alpha) through the engine: the same function on every ISA."""
    from fastdense import layers, models
    x = np.linspace(-5, 5, 64, dtype=np.float32).reshape(8, 8)
    outs = {}
    old = _core.kernel_isa()
    try:
        for isa in _core.available_isas().split(","):
            _core.set_isa(isa)
            m = models.Sequential([layers.Dense(8, use_bias=False, input_shape=(8,)),
                                   layers.ELU(alpha=0.5)])
            m.set_weights([np.eye(8, dtype=np.float32)])
            outs[isa] = m.predict(x, verbose=0)
    finally:
        _core.set_isa(old)
    want = np.where(x > 0, x, 0.5 * np.expm1(x.astype(np.float64)))
    for isa, y in outs.items():
        np.testing.assert_allclose(y, want, rtol=8 * 2.0 ** -24, atol=1e-37, err_msg=isa)


# arithmetic only: the SIMD pass computes libm-free formulas in the same order
_EXACT_PASSES = {"relu": 1, "leaky_relu": 10, "softsign": 12, "relu6": 13, "hard_sigmoid": 14,
                 "hard_silu": 17}


@pytest.mark.parametrize("isa", _core.available_isas().split(","))
@pytest.mark.parametrize("name", sorted(_EXACT_PASSES))
def test_arithmetic_activation_passes_equal_the_portable_path(isa, name):
    code = _EXACT_PASSES[name]
    x = np.concatenate([_pass_points(), [-3.0, 3.0, 6.0, np.nan, np.inf, -np.inf]]
                       ).astype(np.float32)[None, :]
    dy = np.random.default_rng(code).standard_normal(x.shape).astype(np.float32)
    old = _core.kernel_isa()
    try:
        out = {}
        for which in ("generic", isa):
            _core.set_isa(which)
            y = _core.activation_forward(x, code)
            out[which] = (y, _core.activation_backward(dy, x, y, code))
    finally:
        _core.set_isa(old)
    for a, b in zip(out["generic"], out[isa]):
        np.testing.assert_array_equal(a, b)


def test_exponential_overflows_where_float32_does():
    x = np.array([[88.7, 88.72, 88.73, 100.0, -100.0, -np.inf, np.inf]], np.float32)
    old = _core.kernel_isa()
    try:
        for isa in _core.available_isas().split(","):
            _core.set_isa(isa)
            y = _core.activation_forward(x, 15)[0]
            assert np.all(np.isfinite(y[:2])) and np.all(np.isinf(y[2:4])), (isa, y)
            assert y[4] == 0 and y[5] == 0 and y[6] == np.inf, (isa, y)
    finally:
        _core.set_isa(old)


def test_deserialize_names_configs_and_custom_objects():
    assert A.deserialize("relu") is A.relu
    assert A.deserialize({"module": "builtins", "class_name": "function", "config": "gelu",
                          "registered_name": "function"}) is A.gelu
    mine = lambda x: x  # noqa: E731
    assert A.deserialize("mine", custom_objects={"mine": mine}) is mine
    layer = A.deserialize({"module": "keras.layers", "class_name": "LeakyReLU",
                           "config": {"negative_slope": 0.1}, "registered_name": None})
    assert type(layer).__name__ == "LeakyReLU" and layer.negative_slope == 0.1
    with pytest.raises(ValueError, match="Could not interpret activation"):
        A.deserialize("nope")
