"""``keras.random``: random tensors (numpy arrays here) with Keras's seeding rules.

* ``seed=None`` draws from the global stream, which ``utils.set_random_seed``
  makes reproducible;
* an ``int`` seed gives the same values at every call;
* a ``SeedGenerator`` gives a new draw at each call, reproducible from its seed.

The distributions, shapes, dtypes and arguments are Keras's; the values are
numpy's (PCG64), not JAX's or TensorFlow's: the same seed gives other numbers
than in Keras.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

__all__ = ["SeedGenerator", "normal", "uniform", "truncated_normal", "randint", "shuffle",
           "dropout", "categorical", "gamma", "beta", "binomial"]

_FLOATX = "float32"


class SeedGenerator:
    """A seed that advances at every draw, as ``keras.random.SeedGenerator``:
    the draws of two generators made with the same seed are equal, one draw
    after another."""

    def __init__(self, seed: Optional[int] = None, name: Optional[str] = None,
                 **kwargs: Any) -> None:
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        elif not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed}")
        self.seed = int(seed)
        self.name = name or "seed_generator"
        self._count = 0

    def next(self) -> np.random.Generator:
        """A generator for the next draw (the state advances by one)."""
        gen = np.random.default_rng([self.seed & 0xFFFFFFFF, self._count])
        self._count += 1
        return gen

    def get_config(self) -> dict:
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> "SeedGenerator":
        return cls(**config)


Seed = Union[None, int, SeedGenerator]


def _rng(seed: Seed) -> np.random.Generator:
    if seed is None:  # (the global stream: set_random_seed seeds it)
        return np.random.default_rng(int(np.random.randint(0, 2**63 - 1, dtype=np.int64)))
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)
    raise ValueError("Argument `seed` must be either an integer or an instance of "
                     f"`SeedGenerator`. Received: seed={seed} (of type {type(seed)})")


def _float_dtype(dtype: Any, fn: str) -> np.dtype:
    dt = np.dtype(dtype or _FLOATX)
    if dt.kind != "f":
        raise ValueError(f"`keras.random.{fn}` requires a floating point `dtype`. "
                         f"Received: dtype={dtype} ")
    return dt


def _shape(shape: Any) -> tuple:
    return tuple(int(d) for d in (shape if isinstance(shape, (list, tuple)) else [shape]))


def normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
           seed: Seed = None) -> np.ndarray:
    dt = _float_dtype(dtype, "normal")
    return (_rng(seed).standard_normal(_shape(shape)) * stddev + mean).astype(dt)


def uniform(shape: Sequence[int], minval: float = 0.0, maxval: float = 1.0, dtype: Any = None,
            seed: Seed = None) -> np.ndarray:
    dt = _float_dtype(dtype, "uniform")
    return _rng(seed).uniform(minval, maxval, _shape(shape)).astype(dt)


def truncated_normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0,
                     dtype: Any = None, seed: Seed = None) -> np.ndarray:
    """Normal values more than two standard deviations from the mean drawn again."""
    dt = _float_dtype(dtype, "truncated_normal")
    gen = _rng(seed)
    out = gen.standard_normal(_shape(shape))
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (out * stddev + mean).astype(dt)


def randint(shape: Sequence[int], minval: int, maxval: int, dtype: Any = "int32",
            seed: Seed = None) -> np.ndarray:
    """Integers in [minval, maxval)."""
    dt = np.dtype(dtype)
    if dt.kind not in "iu":
        raise ValueError("`keras.random.randint` requires an integer `dtype`. "
                         f"Received: dtype={dtype} ")
    return _rng(seed).integers(minval, maxval, _shape(shape)).astype(dt)


def shuffle(x: Any, axis: int = 0, seed: Seed = None) -> np.ndarray:
    """x with its entries along ``axis`` in a random order."""
    arr = np.asarray(x)
    return np.take(arr, _rng(seed).permutation(arr.shape[axis]), axis=axis)


def dropout(inputs: Any, rate: float, noise_shape: Optional[Sequence[int]] = None,
            seed: Seed = None) -> np.ndarray:
    """Each entry kept with probability 1 - rate and scaled by 1 / (1 - rate),
    else 0 (the draw broadcast over noise_shape)."""
    x = np.asarray(inputs)
    shape = x.shape if noise_shape is None else tuple(
        x.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))
    keep = _rng(seed).uniform(size=shape) >= rate
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(_FLOATX)
    return np.where(keep, x / dt.type(1.0 - rate), dt.type(0)).astype(dt)


def categorical(logits: Any, num_samples: int, dtype: Any = "int32",
                seed: Seed = None) -> np.ndarray:
    """num_samples class indices per row of logits [batch, classes], drawn
    with probabilities softmax(logits)."""
    lg = np.asarray(logits, np.float64)
    if lg.ndim != 2:
        raise ValueError("`logits` should be a 2-D tensor with shape [batch_size, num_classes]. "
                         f"Received: logits={logits}")
    p = np.exp(lg - lg.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    gen = _rng(seed)
    u = gen.uniform(size=(lg.shape[0], int(num_samples), 1))
    idx = (np.cumsum(p, axis=1)[:, None, :] < u).sum(axis=-1)
    return np.minimum(idx, lg.shape[1] - 1).astype(dtype)


def gamma(shape: Sequence[int], alpha: float, dtype: Any = None, seed: Seed = None) -> np.ndarray:
    dt = _float_dtype(dtype, "gamma")
    return _rng(seed).gamma(alpha, 1.0, _shape(shape)).astype(dt)


def beta(shape: Sequence[int], alpha: float, beta: float, dtype: Any = None,  # noqa: F811
         seed: Seed = None) -> np.ndarray:
    dt = _float_dtype(dtype, "beta")
    return _rng(seed).beta(alpha, beta, _shape(shape)).astype(dt)


def binomial(shape: Sequence[int], counts: Any, probabilities: Any, dtype: Any = None,
             seed: Seed = None) -> np.ndarray:
    dt = _float_dtype(dtype, "binomial")
    return _rng(seed).binomial(np.asarray(counts, np.int64), np.asarray(probabilities),
                               _shape(shape)).astype(dt)
