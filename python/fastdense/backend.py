"""``keras.backend`` for fastdense: session state and global settings.

``import fastdense as keras`` scripts call these as with Keras 3::

    keras.backend.clear_session()    # names start again: "dense", "sequential", ...
    keras.backend.epsilon()          # 1e-07
    keras.backend.floatx()           # "float32"

``backend()`` returns ``"numpy"``: fastdense's tensors (what ``keras.ops``,
``predict`` and ``Variable.numpy()`` give) are numpy arrays, exactly as with
Keras's own numpy backend, so code that branches on the backend name takes
its generic (numpy) path instead of calling into TensorFlow, JAX or PyTorch.

fastdense computes in float32 only: ``set_floatx`` accepts ``"float32"``
alone, and ``set_image_data_format`` ``"channels_last"`` alone.

``set_epsilon`` changes what ``epsilon()`` returns and the clipping of the
``keras.ops`` cross-entropies (``ops.binary_crossentropy`` and
``ops.categorical_crossentropy`` on probabilities), which read it as
Keras's do.  The built-in losses, metrics and constraints keep Keras's
default 1e-7: their native kernels are compiled with it, and the Python
paths match them.
"""
from __future__ import annotations

import gc
from typing import Any

import numpy as np

from . import _naming

__all__ = [
    "backend", "clear_session", "epsilon", "set_epsilon", "floatx", "set_floatx",
    "image_data_format", "set_image_data_format", "get_uid", "standardize_dtype",
    "is_float_dtype", "is_int_dtype", "is_keras_tensor",
]

_DEFAULT_EPSILON = 1e-7
_epsilon = _DEFAULT_EPSILON
_FLOATX = "float32"
_IMAGE_DATA_FORMAT = "channels_last"


def backend() -> str:
    """The backend's name: ``"numpy"`` (see the module's docstring)."""
    return "numpy"


def clear_session(free_memory: bool = True) -> None:
    """Resets fastdense's global state, as Keras's ``clear_session``: the
    counters behind automatic names start again, so the next ``Dense()`` is
    named ``dense``, the next ``Sequential()`` ``sequential`` and so on
    (metrics too: ``auc``, ``precision``...). Existing models keep working.
    With ``free_memory`` (Keras's default) it also runs the garbage
    collector, which frees the native buffers of unreferenced models."""
    with _naming._lock:
        _naming._counters.clear()
    if free_memory:
        gc.collect()


def get_uid(prefix: str = "") -> int:
    """Keras's ``get_uid``: 1, 2, 3, ... for each call with ``prefix``,
    sharing the counter that names layers (after one ``Dense()``,
    ``get_uid("dense")`` is 2); ``clear_session`` resets it."""
    with _naming._lock:
        return next(_naming._counters[prefix]) + 1


def epsilon() -> float:
    """The fuzz factor used in numeric expressions (default 1e-7)."""
    return _epsilon


def set_epsilon(value: float) -> None:
    """Sets ``epsilon()`` (see the module's docstring for what reads it)."""
    global _epsilon
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected a float for `epsilon`. Received: value={value!r}") from None
    _epsilon = v
    from . import ops as _ops
    _ops._EPSILON = v


def floatx() -> str:
    """The default float type: always ``"float32"`` in fastdense."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Accepts ``"float32"`` only: fastdense's kernels compute in float32."""
    accepted = {"float16", "bfloat16", "float32", "float64"}
    name = str(value)
    if name not in accepted:  # Keras's own check and message
        raise ValueError(f"Unknown `floatx` value: {value}. Expected one of {accepted}")
    if name != "float32":
        raise ValueError(f"fastdense computes in float32 only: set_floatx({value!r}) is not "
                         "supported. Expected 'float32'.")


def image_data_format() -> str:
    """The image data format: always ``"channels_last"`` in fastdense."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format: str) -> None:
    """Accepts ``"channels_last"`` only (fastdense has no convolution layers;
    ``Flatten`` flattens channels-last)."""
    fmt = str(data_format).lower() if data_format is not None else data_format
    if fmt not in {"channels_first", "channels_last"}:
        raise ValueError("The `data_format` argument must be one of "
                         "{'channels_first', 'channels_last'}. "
                         f"Received: data_format={data_format}")
    if fmt != "channels_last":
        raise ValueError("fastdense supports data_format='channels_last' only. "
                         f"Received: data_format={data_format}")


_PYTHON_DTYPES = {bool: "bool", int: "int32", float: "float32", "int": "int32"}


def standardize_dtype(dtype: Any) -> str:
    """A dtype's name as Keras spells it: ``None`` -> ``floatx()``, Python's
    ``int`` -> ``"int32"``, ``float`` -> ``"float32"``, numpy dtypes by name."""
    if dtype is None:
        return floatx()
    if isinstance(dtype, str) and dtype == "bfloat16":
        return dtype
    try:
        dtype = _PYTHON_DTYPES.get(dtype, dtype)
    except TypeError:  # unhashable
        pass
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise ValueError(f"Invalid dtype: {dtype}") from None


def is_float_dtype(dtype: Any) -> bool:
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype: Any) -> bool:
    return standardize_dtype(dtype).startswith(("int", "uint"))


def is_keras_tensor(x: Any) -> bool:
    """True for a symbolic input (``keras.Input(...)``)."""
    from .layers import InputSpec
    return isinstance(x, InputSpec)
