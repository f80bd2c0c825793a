"""``Variable``: a named float32 array that a layer or the engine owns.

Once a model is built, a layer's variables are views into the engine's one
flat parameter buffer, so reading them always shows the trained values.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["Variable"]


class Variable:
    """A mutable float32 array with a name, like ``keras.Variable``."""

    def __init__(self, initializer: Any = None, shape: Optional[Tuple[int, ...]] = None,
                 dtype: Any = "float32", trainable: bool = True, name: Optional[str] = None) -> None:
        if callable(initializer) and not isinstance(initializer, np.ndarray):
            if shape is None:
                raise ValueError("When creating a Variable from an initializer, "
                                 "the `shape` argument should be specified.")
            value = np.asarray(initializer(tuple(shape), dtype=dtype))
        else:
            value = np.array(initializer, dtype=dtype)
            if shape is not None and tuple(value.shape) != tuple(shape):
                raise ValueError(f"Initial value has shape {value.shape}, "
                                 f"expected shape={tuple(shape)}")
        # (np.asarray keeps a scalar's shape (); ascontiguousarray would make it (1,))
        self._value: np.ndarray = np.asarray(value, dtype=np.dtype(dtype), order="C")
        self.trainable = trainable
        self.name = name or "variable"
        self.path = self.name

    # -- storage ---------------------------------------------------------------
    def _bind(self, view: np.ndarray) -> None:
        """Moves the value into `view` (a slice of the engine's buffer)."""
        view[...] = self._value.reshape(view.shape)
        self._value = view

    def numpy(self) -> np.ndarray:
        """A copy of the current value."""
        return self._value.copy()

    @property
    def value(self) -> np.ndarray:
        return self._value

    def assign(self, value: Any) -> "Variable":
        value = np.asarray(value, dtype=self._value.dtype)
        if value.shape != self._value.shape:
            raise ValueError(
                f"The shape of the target variable and the shape of the target value in "
                f"`variable.assign(value)` must match. variable.shape={self._value.shape}, "
                f"Received: value.shape={value.shape}. Target variable: {self.path}"
            )
        self._value[...] = value
        return self

    def assign_add(self, delta: Any) -> "Variable":
        return self.assign(self._value + np.asarray(delta, self._value.dtype))

    def assign_sub(self, delta: Any) -> "Variable":
        return self.assign(self._value - np.asarray(delta, self._value.dtype))

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self._value.shape)

    @property
    def dtype(self) -> str:
        return str(self._value.dtype)

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._value.astype(dtype) if dtype is not None else self._value.copy()

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"

    def __len__(self) -> int:
        return len(self._value)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return self._value[idx]
