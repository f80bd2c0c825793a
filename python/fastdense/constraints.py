"""Weight constraints (``kernel_constraint=`` / ``bias_constraint=`` on Dense,
``gamma_constraint=`` / ``beta_constraint=`` on BatchNormalization): Keras's
MaxNorm, NonNeg, UnitNorm and MinMaxNorm. The engine applies them to each
trainable variable right after every optimizer step, as Keras's optimizer
does. Calling a constraint on an array returns the constrained array."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Type, Union

import numpy as np

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg",
           "unit_norm", "min_max_norm", "get", "serialize", "deserialize"]

_EPSILON = np.float32(1e-7)  # Keras's backend epsilon

# Engine codes (cpp/constraints.h)
_NONE, _MAX_NORM, _NON_NEG, _UNIT_NORM, _MIN_MAX_NORM = range(5)
_AXIS_ROWS, _AXIS_COLS, _AXIS_ALL = range(3)


def _axis_code(axis: Any, ndim: int) -> int:
    """The engine's code for Keras's ``axis`` on a variable of ``ndim`` (1 or 2)."""
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    norm = set()
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"Constraint axis {axis!r} is out of range for a {ndim}-D weight.")
        norm.add(int(a) % ndim)
    if norm == set(range(ndim)):
        return _AXIS_ALL if ndim == 2 else _AXIS_ROWS
    return _AXIS_ROWS if norm == {0} else _AXIS_COLS


class Constraint:
    """Base class: ``constraint(w)`` returns the projected weights."""

    def __call__(self, w: Any) -> Any:
        return w

    def _native(self, ndim: int) -> Tuple[int, float, float, float, int]:
        """(kind, min_value, max_value, rate, axis) for the engine."""
        raise NotImplementedError(
            f"Constraint {type(self).__name__} has no native kernel in fastdense; use "
            "MaxNorm, NonNeg, UnitNorm or MinMaxNorm.")

    def get_config(self) -> Dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Constraint":
        return cls(**config)


def _norms(w: np.ndarray, axis: Any) -> np.ndarray:
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True, dtype=np.float64)
                   ).astype(np.float32)


def _check_axis(axis: Any) -> Any:
    if isinstance(axis, (list, tuple)):
        return [int(a) for a in axis]
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"Invalid value for argument `axis`: expected an int or a list of "
                         f"ints. Received: axis={axis!r}")
    return int(axis)


class MaxNorm(Constraint):
    """Rescales each group of weights along ``axis`` whose norm exceeds
    ``max_value`` down to it: ``w * clip(norm, 0, max_value) / (eps + norm)``.
    For a Dense kernel ``(input_dim, units)``, ``axis=0`` constrains each
    unit's incoming weight vector."""

    def __init__(self, max_value: float = 2, axis: Any = 0) -> None:
        self.max_value = max_value
        self.axis = _check_axis(axis)

    def __call__(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=np.float32)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, np.float32(self.max_value))
        return (w * (desired / (_EPSILON + norms))).astype(np.float32)

    def _native(self, ndim: int) -> Tuple[int, float, float, float, int]:
        return (_MAX_NORM, 0.0, float(self.max_value), 1.0, _axis_code(self.axis, ndim))

    def get_config(self) -> Dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero."""

    def __call__(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=np.float32)
        return (w * (w >= 0).astype(np.float32)).astype(np.float32)

    def _native(self, ndim: int) -> Tuple[int, float, float, float, int]:
        return (_NON_NEG, 0.0, 0.0, 1.0, _AXIS_ROWS)


class UnitNorm(Constraint):
    """Divides each group of weights along ``axis`` by its norm."""

    def __init__(self, axis: Any = 0) -> None:
        self.axis = _check_axis(axis)

    def __call__(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=np.float32)
        return (w / (_EPSILON + _norms(w, self.axis))).astype(np.float32)

    def _native(self, ndim: int) -> Tuple[int, float, float, float, int]:
        return (_UNIT_NORM, 0.0, 0.0, 1.0, _axis_code(self.axis, ndim))

    def get_config(self) -> Dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Keeps each group's norm between ``min_value`` and ``max_value``,
    moving it there at ``rate``: ``desired = rate * clip(norm, min, max) +
    (1 - rate) * norm``, ``w * desired / (eps + norm)``."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: Any = 0) -> None:
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = _check_axis(axis)

    def __call__(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=np.float32)
        norms = _norms(w, self.axis)
        rate = np.float32(self.rate)
        desired = (rate * np.clip(norms, np.float32(self.min_value), np.float32(self.max_value))
                   + (np.float32(1) - rate) * norms)
        return (w * (desired / (_EPSILON + norms))).astype(np.float32)

    def _native(self, ndim: int) -> Tuple[int, float, float, float, int]:
        return (_MIN_MAX_NORM, float(self.min_value), float(self.max_value), float(self.rate),
                _axis_code(self.axis, ndim))

    def get_config(self) -> Dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_BY_NAME: Dict[str, Type[Constraint]] = {
    "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm, "MaxNorm": MaxNorm, "NonNeg": NonNeg,
    "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm}

ConstraintLike = Union[None, str, Constraint, Dict[str, Any]]


def get(identifier: ConstraintLike) -> Optional[Constraint]:
    """A constraint for a name, a Keras config dict (``{'class_name': 'MaxNorm',
    'config': {...}}``, with or without ``'module'`` / ``'registered_name'``), a
    Constraint class or instance, or None."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_NAME:
        module = str(identifier.get("module") or "")
        if not module or module.startswith("keras") or module.startswith("fastdense"):
            cls = _BY_NAME[identifier["class_name"]]
            return cls.from_config(dict(identifier.get("config") or {}))
        raise ValueError(f"Could not interpret constraint identifier: {identifier}. The class "
                         f"{identifier['class_name']!r} of module {module!r} is not fastdense's.")
    if callable(identifier):
        raise NotImplementedError(
            "fastdense applies constraints natively: use MaxNorm, NonNeg, UnitNorm or "
            f"MinMaxNorm (a Constraint subclass with a native kernel). Received: {identifier!r}")
    raise ValueError(f"Could not interpret constraint identifier: {identifier}")


def serialize(constraint: Optional[Constraint]) -> Any:
    if constraint is None:
        return None
    return {"module": "keras.constraints", "class_name": type(constraint).__name__,
            "config": constraint.get_config(), "registered_name": None}


def deserialize(config: Any) -> Optional[Constraint]:
    return get(config)


def native(constraint: Optional[Constraint], ndim: int) -> Tuple[int, float, float, float, int]:
    """The engine's description of ``constraint`` on a ``ndim``-D variable."""
    if constraint is None:
        return (_NONE, 0.0, 0.0, 1.0, _AXIS_ROWS)
    return constraint._native(ndim)
