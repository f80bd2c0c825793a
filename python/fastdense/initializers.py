"""Weight initializers with Keras's names, defaults and fan computations.

Without a seed they draw from numpy's global generator, which
``fastdense.utils.set_random_seed`` seeds.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
    "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal",
    "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal", "Identity", "get",
    "serialize", "deserialize",
    # Keras's lowercase aliases of the classes (keras.initializers.he_normal(seed=1))
    "zeros", "ones", "constant", "random_uniform", "random_normal", "truncated_normal",
    "variance_scaling", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "identity", "OrthogonalInitializer",
    "IdentityInitializer",
]


def compute_fans(shape: Sequence[int], input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None) -> Tuple[float, float]:
    """Keras's fan_in / fan_out for a weight shape (the products of the sizes
    of ``input_axes`` / ``output_axes`` when both are given)."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        fan_in, fan_out = 1, 1
        for axis in input_axes:
            fan_in *= shape[axis]
        for axis in output_axes:
            fan_out *= shape[axis]
        return float(fan_in), float(fan_out)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape, dtype=None)`` returns a float32 numpy array."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Initializer":
        return cls(**config)


class _Seeded(Initializer):
    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    def _rng(self) -> Any:
        return np.random.default_rng(self.seed) if self.seed is not None else np.random


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return np.zeros(tuple(shape), dtype=dtype or np.float32)


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return np.ones(tuple(shape), dtype=dtype or np.float32)


class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(tuple(shape), self.value, dtype=dtype or np.float32)

    def get_config(self):
        return {"value": self.value}


class RandomUniform(_Seeded):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Optional[int] = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        v = self._rng().uniform(self.minval, self.maxval, size=tuple(shape))
        return v.astype(dtype or np.float32)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(_Seeded):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        v = self._rng().normal(self.mean, self.stddev, size=tuple(shape))
        return v.astype(dtype or np.float32)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(rng: Any, mean: float, stddev: float, shape: Tuple[int, ...]) -> np.ndarray:
    """Normal samples redrawn until within two standard deviations."""
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return mean + stddev * out


class TruncatedNormal(_Seeded):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        v = _truncated_normal(self._rng(), self.mean, self.stddev, tuple(shape))
        return v.astype(dtype or np.float32)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_Seeded):
    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(seed)
        if isinstance(distribution, str):
            distribution = distribution.lower()
            if distribution == "normal":  # Keras's alias
                distribution = "truncated_normal"
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        if mode not in {"fan_in", "fan_out", "fan_avg"}:
            raise ValueError(f"Invalid `mode` argument: expected one of "
                             f"{{'fan_in', 'fan_out', 'fan_avg'}}. Received: mode={mode}")
        if distribution not in {"uniform", "truncated_normal", "untruncated_normal"}:
            raise ValueError("Invalid `distribution` argument: expected one of "
                             "{'uniform', 'truncated_normal', 'untruncated_normal'}. "
                             f"Received: distribution={distribution}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes = input_axes
        self.output_axes = output_axes

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, denom)
        rng = self._rng()
        shape = tuple(shape)
        if self.distribution == "truncated_normal":
            v = _truncated_normal(rng, 0.0, math.sqrt(scale) / 0.87962566103423978, shape)
        elif self.distribution == "untruncated_normal":
            v = rng.normal(0.0, math.sqrt(scale), size=shape)
        else:
            limit = math.sqrt(3.0 * scale)
            v = rng.uniform(-limit, limit, size=shape)
        return np.asarray(v).astype(dtype or np.float32)

    def get_config(self):
        return {"seed": self.seed, "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotUniform(VarianceScaling):
    def __init__(self, seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class HeUniform(VarianceScaling):
    def __init__(self, seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(2.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class HeNormal(VarianceScaling):
    def __init__(self, seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class LecunUniform(VarianceScaling):
    def __init__(self, seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(1.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class LecunNormal(VarianceScaling):
    def __init__(self, seed: Optional[int] = None,
                 input_axes: Optional[Sequence[int]] = None,
                 output_axes: Optional[Sequence[int]] = None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class Orthogonal(_Seeded):
    """Keras's Orthogonal: ``gain`` times the Q of the QR decomposition of a
    normal matrix (signs fixed by ``diag(R)``), transposed when the shape
    has fewer rows than columns; shapes of rank > 2 are flattened to
    ``(prod(shape[:-1]), shape[-1])``.  Values differ from Keras's for the same
    seed (numpy's generator, not JAX's)."""

    def __init__(self, gain: float = 1.0, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        num_rows = int(np.prod(shape[:-1]))
        num_cols = shape[-1]
        flat_shape = (max(num_cols, num_rows), min(num_cols, num_rows))
        a = self._rng().normal(0.0, 1.0, size=flat_shape)
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if num_rows < num_cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype or np.float32)

    def get_config(self):
        return {"seed": self.seed, "gain": self.gain}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only; rectangular ones
    get ones on the main diagonal, like ``np.eye``)."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        return (self.gain * np.eye(*shape)).astype(dtype or np.float32)

    def get_config(self):
        # Keras's own get_config() returns {} (losing `gain`); Identity(gain=...)
        # is what both libraries accept back.
        return {"gain": self.gain}


_BY_NAME: Dict[str, Callable[[], Initializer]] = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "random_normal": RandomNormal,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity,
}
for _cls in list(_BY_NAME.values()):
    _BY_NAME[_cls.__name__.lower()] = _cls  # type: ignore[assignment]
    _BY_NAME[_cls.__name__] = _cls  # type: ignore[assignment]
# Keras 3's aliases (keras/src/initializers/__init__.py)
_BY_NAME.update({
    "IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal,
    "normal": RandomNormal, "uniform": RandomUniform, "one": Ones, "zero": Zeros,
})

InitializerLike = Union[None, str, Dict[str, Any], Initializer, Callable[..., Any]]

# Keras 3.15's config keys of the variance-scaling family: ``input_axes`` /
# ``output_axes`` (fan axes for einsum kernels) must be None in fastdense.
_AXES_KEYS = ("input_axes", "output_axes")


def _supported_names() -> List[str]:
    return sorted(k for k in _BY_NAME if k.islower())


def _lookup(name: str) -> Any:
    cls = _BY_NAME.get(name) or _BY_NAME.get(name.lower())
    if cls is None:
        raise ValueError(f"Could not interpret initializer identifier: {name}. "
                         f"Supported: {_supported_names()}")
    return cls


def deserialize(config: Any, custom_objects: Optional[Dict[str, Any]] = None) -> Any:
    """An initializer from Keras's serialized form: ``{'class_name':
    'GlorotUniform', 'config': {'seed': None}}``, optionally with ``'module'``
    and ``'registered_name'`` keys (what ``serialize`` and Keras 3 write), or a
    name.  ``custom_objects`` maps class names to your own classes."""
    if isinstance(config, str):
        custom = (custom_objects or {}).get(config)
        return (custom() if isinstance(custom, type) else custom) if custom is not None \
            else _lookup(config)()
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret initializer identifier: {config}")
    cls_name = config["class_name"]
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"Could not interpret initializer identifier: {config}")
    custom = None
    for key in (config.get("registered_name"), cls_name):
        if isinstance(key, str) and key in (custom_objects or {}):
            custom = (custom_objects or {})[key]
            break
    if custom is not None:
        if isinstance(custom, type):
            return custom.from_config(dict(inner)) if hasattr(custom, "from_config") \
                else custom(**inner)
        return custom
    if cls_name in ("function", "__lambda__"):
        raise ValueError(f"Cannot deserialize the initializer function {inner!r} from a "
                         "config: pass the function itself (or `custom_objects`).")
    module = str(config.get("module") or "")
    if module and not (module.startswith("keras") or module.startswith("fastdense")):
        raise ValueError(f"Could not interpret initializer identifier: {config}. The class "
                         f"{cls_name!r} (module {module!r}) is not a built-in initializer; "
                         "pass your class in `custom_objects`.")
    if not isinstance(cls_name, str):
        raise ValueError(f"Could not interpret initializer identifier: {config}")
    return _lookup(cls_name).from_config(dict(inner))


def serialize(initializer: Any) -> Any:
    """Keras 3's serialized form of an initializer: ``{'module':
    'keras.initializers', 'class_name': ..., 'config': ..., 'registered_name':
    None}`` for the built-in ones (a user subclass keeps its own module and
    is registered under its class name); a function serializes to its name."""
    if initializer is None or isinstance(initializer, str):
        return initializer
    if isinstance(initializer, Initializer):
        cls = type(initializer)
        config = initializer.get_config()
        if cls.__module__ == __name__:
            return {"module": "keras.initializers", "class_name": cls.__name__,
                    "config": config, "registered_name": None}
        return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
                "registered_name": cls.__name__}
    return getattr(initializer, "__name__", repr(initializer))


def get(identifier: InitializerLike) -> Any:
    """An initializer for a name, a Keras config dict (``{'class_name': ...,
    'config': ...}``, with or without ``'module'`` / ``'registered_name'``), a
    class, an instance, a callable ``fn(shape, dtype=None)`` or an array of
    the initial values; ``None`` gives ``None``, as in Keras 3."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type):
        if not callable(identifier):
            raise ValueError(f"Could not interpret initializer identifier: {identifier}")
        return identifier()
    if isinstance(identifier, (np.ndarray, np.generic)):
        values = np.asarray(identifier)

        def initialize_fn(shape: Sequence[int], dtype: Any = None) -> np.ndarray:
            if tuple(shape) != values.shape:
                raise ValueError(f"Expected `shape` to be {values.shape} for direct tensor "
                                 f"as initializer. Received shape={tuple(shape)}")
            return values.astype(dtype or np.float32)

        return initialize_fn
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier}")


# Keras's lowercase aliases: the classes themselves under their function names
zeros, ones, constant = Zeros, Ones, Constant
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
variance_scaling, glorot_uniform, glorot_normal = VarianceScaling, GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal
orthogonal, identity = Orthogonal, Identity
OrthogonalInitializer, IdentityInitializer = Orthogonal, Identity  # (Keras's other names)
