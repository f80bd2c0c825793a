"""Activation functions, by name (``"relu"``) or as callables (``activations.relu``).

The callables work on numpy arrays (and on ``fastdense.ops`` traced values);
inside a ``Dense`` layer the same activation runs fused in the native kernels.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import numpy as np

__all__ = ["linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "silu",
           "swish", "leaky_relu", "softplus", "softsign", "relu6", "hard_sigmoid",
           "exponential", "log_softmax", "hard_silu", "hard_swish", "mish", "celu", "hard_tanh",
           "hard_shrink", "soft_shrink", "tanh_shrink", "squareplus", "sparse_plus",
           "log_sigmoid", "sparse_sigmoid", "get", "serialize", "deserialize"]


def linear(x: Any) -> Any:
    """Identity: ``linear(x) = x``."""
    return x


def relu(x: Any, negative_slope: float = 0.0, max_value: Optional[float] = None,
         threshold: float = 0.0) -> Any:
    """Rectified linear unit: ``max(x, 0)``; with Keras's options, a slope
    below the threshold, a ceiling and a threshold (as ``keras.activations.relu``)."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return np.maximum(x, 0)
    x = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return np.where(x >= 0, x, negative_slope * x).astype(x.dtype)
        negative_part = np.maximum(-x + threshold, 0) if threshold != 0 else np.maximum(-x, 0)
    else:
        negative_part = 1
    clip_max = max_value is not None
    if threshold != 0:
        x = x * (x > threshold).astype(x.dtype)
    else:
        x = np.maximum(x, 0)
    if clip_max:
        x = np.clip(x, 0, max_value)
    if negative_slope != 0.0:
        x = x - negative_slope * negative_part
    return x


def sigmoid(x: Any) -> Any:
    """Logistic sigmoid: ``1 / (1 + exp(-x))``."""
    return 1 / (1 + np.exp(-x))


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return np.tanh(x)


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax over ``axis`` (the last one by default), numerically stable."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Any) -> Any:
    """Scaled ELU with Keras's fixed alpha and scale."""
    return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))


def _erf(x: Any) -> Any:
    from math import erf
    return np.vectorize(erf, otypes=[np.float64])(x).astype(np.result_type(x, np.float32))


def gelu(x: Any, approximate: bool = False) -> Any:
    """Gaussian error linear unit (exact erf form; ``approximate=True`` uses tanh)."""
    if approximate:
        return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(np.asarray(x) * 0.7071067811865476))


def silu(x: Any) -> Any:
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``."""
    return x * sigmoid(x)


swish = silu


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Any:
    """``x`` if ``x > 0`` else ``negative_slope * x``."""
    return np.where(x > 0, x, negative_slope * x)


def softplus(x: Any) -> Any:
    """``log(exp(x) + 1)``, computed stably."""
    return np.logaddexp(x, 0)


def softsign(x: Any) -> Any:
    """``x / (abs(x) + 1)``."""
    return x / (np.abs(x) + 1)


def relu6(x: Any) -> Any:
    """``min(max(x, 0), 6)``."""
    return np.clip(x, 0, 6)


def hard_sigmoid(x: Any) -> Any:
    """``clip(x / 6 + 0.5, 0, 1)``."""
    return np.clip(x / 6 + 0.5, 0, 1)


def hard_silu(x: Any) -> Any:
    """``x * hard_sigmoid(x)``."""
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def exponential(x: Any) -> Any:
    """``exp(x)``."""
    return np.exp(x)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x)`` over ``axis``."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))``."""
    return x * np.tanh(softplus(x))


def celu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` if ``x > 0`` else ``alpha * expm1(x / alpha)``."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / alpha))


def hard_tanh(x: Any) -> Any:
    """``clip(x, -1, 1)``."""
    return np.clip(x, -1, 1)


def hard_shrink(x: Any, threshold: float = 0.5) -> Any:
    """``x`` where ``|x| > threshold``, else 0."""
    return np.where(np.abs(x) > threshold, x, 0)


def soft_shrink(x: Any, threshold: float = 0.5) -> Any:
    """``x - threshold`` above it, ``x + threshold`` below ``-threshold``, else 0."""
    return np.where(x > threshold, x - threshold, np.where(x < -threshold, x + threshold, 0))


def tanh_shrink(x: Any) -> Any:
    """``x - tanh(x)``."""
    return x - np.tanh(x)


def squareplus(x: Any, b: float = 4) -> Any:
    """``(x + sqrt(x**2 + b)) / 2``."""
    return (x + np.sqrt(x * x + b)) / 2


def sparse_plus(x: Any) -> Any:
    """0 for ``x <= -1``, ``x`` for ``x >= 1``, ``(x + 1)**2 / 4`` between."""
    return np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4))


def log_sigmoid(x: Any) -> Any:
    """``-softplus(-x)``."""
    return -softplus(-x)


def sparse_sigmoid(x: Any) -> Any:
    """0 for ``x <= -1``, 1 for ``x >= 1``, ``(x + 1) / 2`` between."""
    return np.where(x <= -1, 0, np.where(x >= 1, 1, (x + 1) * 0.5))


# Native activation codes (cpp/kernels.h, enum Activation): 0-4 are fused
# into the dense kernels, the others run in their own native pass.
_CODES: Dict[str, int] = {
    "linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4, "elu": 5, "selu": 6,
    "gelu": 7, "silu": 9, "leaky_relu": 10, "softplus": 11, "softsign": 12, "relu6": 13,
    "hard_sigmoid": 14, "exponential": 15, "log_softmax": 16, "hard_silu": 17, "mish": 18,
    "celu": 20, "hard_tanh": 21, "hard_shrink": 22, "soft_shrink": 23, "tanh_shrink": 24,
    "squareplus": 25, "sparse_plus": 26, "log_sigmoid": 27, "sparse_sigmoid": 28,
}
_FUNCTIONS: Dict[str, Callable[..., Any]] = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "elu": elu, "selu": selu, "gelu": gelu, "silu": silu, "leaky_relu": leaky_relu,
    "softplus": softplus, "softsign": softsign, "relu6": relu6, "hard_sigmoid": hard_sigmoid,
    "exponential": exponential, "log_softmax": log_softmax, "hard_silu": hard_silu,
    "mish": mish, "celu": celu, "hard_tanh": hard_tanh, "hard_shrink": hard_shrink,
    "soft_shrink": soft_shrink, "tanh_shrink": tanh_shrink, "squareplus": squareplus,
    "sparse_plus": sparse_plus, "log_sigmoid": log_sigmoid, "sparse_sigmoid": sparse_sigmoid,
}
# Keras's other spellings of the same functions.
_ALIASES: Dict[str, str] = {"swish": "silu", "hard_swish": "hard_silu"}

ActivationLike = Union[None, str, Callable[..., Any]]


def get(identifier: ActivationLike) -> Callable[..., Any]:
    """Returns the activation function for a name, ``None`` (linear) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        name = identifier.lower()
        fn = _FUNCTIONS.get(_ALIASES.get(name, name))
        if fn is None:
            raise ValueError(
                f"Could not interpret activation function identifier: {identifier}. "
                f"Supported: {sorted(set(_FUNCTIONS) | set(_ALIASES))}"
            )
        return fn
    if isinstance(identifier, dict):  # a serialized activation, as Keras's get() takes
        cls = identifier.get("class_name")
        config = identifier.get("config")
        if cls == "function" and isinstance(config, str):
            return get(config)
        from . import layers as _layers
        layer_cls = getattr(_layers, str(cls), None)
        if cls in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax") and layer_cls is not None:
            return layer_cls.from_config(dict(config or {}))  # type: ignore[no-any-return]
        raise ValueError(f"Could not interpret activation function identifier: {identifier}")
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier}")


def serialize(fn: Callable[..., Any]) -> Any:
    """The name of an activation function; an activation layer (the activation
    of a Dense layer, as Keras allows) as Keras serializes a layer."""
    if hasattr(fn, "_act_code") and hasattr(fn, "get_config"):
        return {"module": "keras.layers", "class_name": type(fn).__name__,
                "config": fn.get_config(), "registered_name": None}
    return getattr(fn, "__name__", str(fn))


def deserialize(config: Any, custom_objects: Optional[Dict[str, Any]] = None) -> Any:
    """Keras's ``activations.deserialize``: the activation of a name (from
    ``custom_objects`` or the registry first) or of a serialized config."""
    from ._registry import get_registered_object
    if isinstance(config, str):
        found = get_registered_object(config, custom_objects)
        if found is not None:
            return found
    elif isinstance(config, dict) and config.get("class_name") == "function":
        name = config.get("config")
        found = get_registered_object(str(name), custom_objects)
        if found is not None:
            return found
    return get(config)


def native_code(fn: Callable[..., Any]) -> Optional[int]:
    """The engine's code for a built-in activation, or None for other callables."""
    for name, f in _FUNCTIONS.items():
        if f is fn:
            return _CODES[name]
    return None
