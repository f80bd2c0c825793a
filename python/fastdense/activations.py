"""Activation functions, by name (``"relu"``) or as callables (``activations.relu``).

The callables work on numpy arrays (and on ``fastdense.ops`` traced values);
inside a ``Dense`` layer the same activation runs fused in the native kernels.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import numpy as np

__all__ = ["linear", "relu", "sigmoid", "softmax", "tanh", "get", "serialize"]


def linear(x: Any) -> Any:
    """Identity: ``linear(x) = x``."""
    return x


def relu(x: Any) -> Any:
    """Rectified linear unit: ``max(x, 0)``."""
    return np.maximum(x, 0)


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


# Native activation codes (cpp/kernels.h, enum Activation).
_CODES: Dict[str, int] = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}
_FUNCTIONS: Dict[str, Callable[..., Any]] = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
}

ActivationLike = Union[None, str, Callable[..., Any]]


def get(identifier: ActivationLike) -> Callable[..., Any]:
    """Returns the activation function for a name, ``None`` (linear) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _FUNCTIONS.get(identifier.lower())
        if fn is None:
            raise ValueError(
                f"Could not interpret activation function identifier: {identifier}. "
                f"Supported: {sorted(_FUNCTIONS)}"
            )
        return fn
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier}")


def serialize(fn: Callable[..., Any]) -> str:
    """The name of an activation function."""
    return getattr(fn, "__name__", str(fn))


def native_code(fn: Callable[..., Any]) -> Optional[int]:
    """The engine's code for a built-in activation, or None for other callables."""
    for name, f in _FUNCTIONS.items():
        if f is fn:
            return _CODES[name]
    return None
