"""Weight regularizers (``kernel_regularizer=`` / ``bias_regularizer=`` on Dense):
Keras's L1, L2 and L1L2. The engine adds ``l1 * sum(|w|) + l2 * sum(w**2)`` of
the current weights to each batch's loss and its gradient to the weights'."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


def _factor(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid value for argument {name}: expected a float. "
                         f"Received: {name}={value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"Value for argument {name} must be a finite float >= 0. "
                         f"Received: {name}={value!r}")
    return v


class Regularizer:
    """Base class: ``regularizer(weights)`` returns the penalty."""

    def __call__(self, x: Any) -> Any:
        return 0.0

    def _factors(self) -> Tuple[float, float]:
        """(l1, l2) for the engine; other regularizers are not supported natively."""
        raise NotImplementedError(f"{type(self).__name__} has no native kernel in fastdense.")

    def get_config(self) -> Dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Regularizer":
        return cls(**config)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _factor("l1", l1)
        self.l2 = _factor("l2", l2)

    def __call__(self, x: Any) -> Any:
        x = np.asarray(x, dtype=np.float32)
        return np.float32(self.l1 * np.sum(np.abs(x)) + self.l2 * np.sum(np.square(x)))

    def _factors(self) -> Tuple[float, float]:
        return self.l1, self.l2

    def get_config(self) -> Dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)`` (Keras's default l1=0.01)."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1, l2=0.0)

    def get_config(self) -> Dict[str, Any]:
        # (Keras 3 keeps L1's factor as a float32 tensor: 0.01 reads back as
        # 0.009999999776482582; L2's and L1L2's stay Python floats)
        return {"l1": float(np.float32(self.l1))}


class L2(L1L2):
    """``l2 * sum(x**2)`` (Keras's default l2=0.01)."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l1=0.0, l2=l2)

    def get_config(self) -> Dict[str, Any]:
        return {"l2": self.l2}


l1 = L1
l2 = L2
l1_l2 = L1L2

_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}

RegularizerLike = Union[None, str, Regularizer, Dict[str, Any]]


def get(identifier: RegularizerLike) -> Optional[Regularizer]:
    """A regularizer for a name, a Keras config dict (``{'class_name': 'L2',
    'config': {'l2': 0.01}}``, with or without ``'module'`` /
    ``'registered_name'``), a Regularizer class or instance, or None."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_NAME:
        module = str(identifier.get("module") or "")
        if not module or module.startswith("keras") or module.startswith("fastdense"):
            cls = _BY_NAME[identifier["class_name"]]
            return cls.from_config(dict(identifier.get("config") or {}))
    raise ValueError(f"Could not interpret regularizer identifier: {identifier}. "
                     f"Supported: {sorted(_BY_NAME)} or a Regularizer instance")


def deserialize(config: Any) -> Optional[Regularizer]:
    """A regularizer from Keras's serialized form (see ``get``)."""
    return get(config)


def serialize(reg: Optional[Regularizer]) -> Any:
    if reg is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(reg).__name__,
            "config": reg.get_config(), "registered_name": None}
