"""``Variable``: a named float32 array that a layer or the engine owns.

Once a model is built, a layer's variables are views into the engine's one
flat parameter buffer, so reading them always shows the trained values.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ._naming import unique_name

__all__ = ["Variable"]


class Variable:
    """A mutable float32 array with a name, like ``keras.Variable``."""

    def __init__(self, initializer: Any = None, shape: Optional[Tuple[int, ...]] = None,
                 dtype: Any = "float32", trainable: bool = True, name: Optional[str] = None) -> None:
        if initializer is None:
            raise ValueError("A Variable needs an initial value: an array, an initializer "
                             "or an initializer's name (e.g. 'zeros') with `shape`. "
                             "Received: initializer=None")
        if isinstance(initializer, (str, dict)):  # "zeros", a Keras config dict, as Keras
            from . import initializers as _initializers
            initializer = _initializers.get(initializer)
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
        self._owner: Any = None  # the layer holding it: frozen with that layer, as Keras
        self._engine: Any = None  # the network whose buffer holds the value (told of writes)
        self.trainable = trainable
        # (Keras's default names are unique: "variable", "variable_1", ...)
        self.name = name or unique_name("variable")
        self.path = self.name

    @property
    def trainable(self) -> bool:
        """Whether the optimizer updates it (False once its layer is frozen)."""
        return self._trainable and (self._owner is None or bool(self._owner.trainable))

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)

    # -- storage ---------------------------------------------------------------
    def _bind(self, view: np.ndarray, engine: Any = None) -> None:
        """Moves the value into `view` (a slice of `engine`'s buffer, which
        is told of every later write)."""
        view[...] = self._value.reshape(view.shape)
        self._value = view
        self._engine = engine
        if engine is not None:
            engine.params_changed()

    def _read_only(self, a: np.ndarray) -> np.ndarray:
        """A view of the engine's buffer that cannot be written (writes go
        through assign, as Keras's immutable values require)."""
        if self._engine is None or not isinstance(a, np.ndarray) or a.base is None:
            return a
        v = a.view()
        v.flags.writeable = False
        return v

    def numpy(self) -> np.ndarray:
        """A copy of the current value."""
        return self._value.copy()

    @property
    def value(self) -> np.ndarray:
        return self._read_only(self._value)

    def assign(self, value: Any) -> "Variable":
        value = np.asarray(value, dtype=self._value.dtype)
        if value.shape != self._value.shape:
            raise ValueError(
                f"The shape of the target variable and the shape of the target value in "
                f"`variable.assign(value)` must match. variable.shape={self._value.shape}, "
                f"Received: value.shape={value.shape}. Target variable: {self.path}"
            )
        self._value[...] = value
        if self._engine is not None:
            self._engine.params_changed()
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
        # A snapshot, as numpy gets from a Keras (JAX) variable: later updates
        # do not show through it, and it is read-only (a write would be lost),
        # unless numpy asks for a copy of its own (np.array(v), copy=True).
        if dtype is not None and np.dtype(dtype) != self._value.dtype:
            return self._value.astype(dtype)  # (a conversion: a new, writable array)
        out = self._value.copy()
        if not copy:
            out.flags.writeable = False
        return out

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"

    def __len__(self) -> int:
        return len(self._value)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return self._read_only(self._value[idx])

    # -- arithmetic ------------------------------------------------------------
    # As with Keras's variables, operators read the current value and return a
    # new array (numpy here); they never modify the variable.  ``==`` / ``!=``
    # keep Python's identity semantics (Keras's compare element-wise) so that
    # variables stay hashable and ``var in list`` works; use
    # ``keras.ops.equal`` for element-wise equality.
    def __float__(self) -> float:
        return float(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __index__(self) -> int:
        return self._value.__index__()

    def __bool__(self) -> bool:
        return bool(self._value)

    def __format__(self, spec: str) -> str:
        if not spec:
            return repr(self)
        return format(self._value.item() if self._value.ndim == 0 else self._value, spec)

    def __neg__(self) -> np.ndarray:
        return -self._value

    def __pos__(self) -> np.ndarray:
        return +self._value

    def __abs__(self) -> np.ndarray:
        return np.abs(self._value)

    def __invert__(self) -> np.ndarray:
        return ~self._value

    def __add__(self, other: Any) -> np.ndarray:
        return self._value + _operand(other, self._value)

    def __radd__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) + self._value

    def __sub__(self, other: Any) -> np.ndarray:
        return self._value - _operand(other, self._value)

    def __rsub__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) - self._value

    def __mul__(self, other: Any) -> np.ndarray:
        return self._value * _operand(other, self._value)

    def __rmul__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) * self._value

    def __truediv__(self, other: Any) -> np.ndarray:
        return _true_divide(self._value, _operand(other, self._value))

    def __rtruediv__(self, other: Any) -> np.ndarray:
        return _true_divide(_operand(other, self._value), self._value)

    def __floordiv__(self, other: Any) -> np.ndarray:
        return self._value // _operand(other, self._value)

    def __rfloordiv__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) // self._value

    def __mod__(self, other: Any) -> np.ndarray:
        return self._value % _operand(other, self._value)

    def __rmod__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) % self._value

    def __pow__(self, other: Any) -> np.ndarray:
        return self._value ** _operand(other, self._value)

    def __rpow__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) ** self._value

    def __matmul__(self, other: Any) -> np.ndarray:
        return self._value @ _operand(other, self._value)

    def __rmatmul__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) @ self._value

    def __lt__(self, other: Any) -> np.ndarray:
        return self._value < _operand(other, self._value)

    def __le__(self, other: Any) -> np.ndarray:
        return self._value <= _operand(other, self._value)

    def __gt__(self, other: Any) -> np.ndarray:
        return self._value > _operand(other, self._value)

    def __ge__(self, other: Any) -> np.ndarray:
        return self._value >= _operand(other, self._value)

    def __and__(self, other: Any) -> np.ndarray:
        return self._value & _operand(other, self._value)

    def __rand__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) & self._value

    def __or__(self, other: Any) -> np.ndarray:
        return self._value | _operand(other, self._value)

    def __ror__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) | self._value

    def __xor__(self, other: Any) -> np.ndarray:
        return self._value ^ _operand(other, self._value)

    def __rxor__(self, other: Any) -> np.ndarray:
        return _operand(other, self._value) ^ self._value

    __hash__ = object.__hash__


def _operand(x: Any, like: np.ndarray) -> Any:
    """The other operand of an operator on `like` (a variable's value): a
    variable's value; Python scalars stay weakly typed (float32 + 1.5 is
    float32, as in Keras). numpy 2 does that itself; numpy 1.x's value-based
    casting would make a 0-d float32 plus 1.5 float64, so a Python number
    takes the variable's dtype here where that dtype can hold it: a float
    variable with any int or float, an integer variable with an int in its
    range."""
    if isinstance(x, Variable):
        return x._value
    if isinstance(x, (list, tuple)):
        from . import ops as _ops
        return _ops.convert_to_tensor(x)
    if type(x) in (int, float):  # (Python's own: numpy scalars keep their dtype)
        kind = like.dtype.kind
        if kind == "f":
            try:
                fx = float(x)
            except OverflowError:  # (an int past float64's range)
                return x
            if abs(fx) <= float(np.finfo(like.dtype).max):  # (False for NaN, inf)
                return like.dtype.type(fx)
        if kind in "iu" and isinstance(x, int):
            info = np.iinfo(like.dtype)
            if info.min <= x <= info.max:
                return like.dtype.type(x)
    return x


def _true_divide(a: Any, b: Any) -> Any:
    """``a / b`` with Keras's dtype rule: integer operands give floatx
    (float32), not numpy's float64."""
    out = np.true_divide(a, b)
    if getattr(out, "dtype", None) == np.float64 and not any(
            getattr(v, "dtype", None) == np.float64 for v in (a, b)):
        out = out.astype(np.float32)
    return out
