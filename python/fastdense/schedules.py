"""Learning-rate schedules with Keras 3's names, arguments and formulas
(``keras.optimizers.schedules``), available as ``fastdense.optimizers.schedules``.

A schedule maps the optimizer's step count (``iterations`` before the
update) to a learning rate.  Each one here computes in float32 with the
operations of Keras's ``__call__`` in the same order, and accepts a scalar
step or an array of steps (the trainer evaluates a chunk of steps at once and
hands the values to the native loop).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

import numpy as np

__all__ = [
    "LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay",
    "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize",
]

F32 = np.float32


def _steps(step: Any) -> np.ndarray:
    """The step(s) as float32 (Keras: ops.cast(step, float32))."""
    return np.asarray(step).astype(F32)


def _out(value: np.ndarray) -> Any:
    value = np.asarray(value, dtype=F32)
    return value[()] if value.ndim == 0 else value


class LearningRateSchedule:
    """Base class: subclasses define ``__call__(self, step)`` and ``get_config()``."""

    def __call__(self, step: Any) -> Any:
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' "
            "must override `__call__(self, step)`.")

    def get_config(self) -> Dict[str, Any]:
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' "
            "must override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "LearningRateSchedule":
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


def _check_decay_steps(value: Any, name: str = "decay_steps") -> None:
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``
    (the exponent floored with ``staircase=True``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_decay_steps(self.decay_steps)

    def __call__(self, step: Any) -> Any:
        init = F32(self.initial_learning_rate)
        p = _steps(step) / F32(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return _out(init * np.power(F32(self.decay_rate), p))

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after."""

    def __init__(self, boundaries: Any, values: Any, name: str = "PiecewiseConstant") -> None:
        super().__init__()
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of "
                f"values. Received: boundaries={boundaries} of length "
                f"{len(boundaries)}, and values={values} "
                f"of length {len(values)}.")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step: Any) -> Any:
        step = np.asarray(step)
        if step.dtype.kind not in "iuf":
            step = step.astype(np.int64)
        # Keras casts the boundaries to the step's dtype (the int step count)
        bounds = [np.asarray(b).astype(step.dtype) for b in self.boundaries]
        values = [F32(v) for v in self.values]
        result = np.zeros(step.shape, F32)
        result = result + (step <= bounds[0]).astype(F32) * values[0]
        result = result + (step > bounds[-1]).astype(F32) * values[-1]
        for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1]):
            result = result + ((step > low) & (step <= high)).astype(F32) * value
        return _out(result)

    def get_config(self) -> Dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, the step
    held at ``decay_steps`` (or, with ``cycle=True``, ``decay_steps`` grown to
    the next multiple above the step)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay") -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name
        _check_decay_steps(self.decay_steps)

    def __call__(self, step: Any) -> Any:
        init = F32(self.initial_learning_rate)
        end = F32(self.end_learning_rate)
        power = F32(self.power)
        gs = _steps(step)
        ds: Any = F32(self.decay_steps)  # (an array of them when cycling)
        if self.cycle:
            multiplier = np.where(gs == 0, F32(1.0), np.ceil(gs / F32(self.decay_steps)))
            ds = ds * multiplier.astype(F32)
        else:
            gs = np.minimum(gs, ds)
        p = gs / ds
        return _out((init - end) * np.power(F32(1) - p, power) + end)

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``
    (the ratio floored with ``staircase=True``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay") -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_decay_steps(self.decay_steps)

    def __call__(self, step: Any) -> Any:
        init = F32(self.initial_learning_rate)
        p = _steps(step) / F32(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return _out(init / (F32(1) + F32(self.decay_rate) * p))

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` (or, after a linear warmup of
    ``warmup_steps`` to ``warmup_target``, from ``warmup_target``) down to
    ``alpha`` times it over ``decay_steps``."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: Optional[float] = None,
                 warmup_steps: int = 0) -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_steps = warmup_steps
        self.warmup_target = warmup_target
        _check_decay_steps(self.decay_steps)

    def _decay_function(self, step: np.ndarray, decay_steps: Any, decay_from_lr: Any) -> Any:
        completed_fraction = step / decay_steps
        pi = F32(math.pi)
        cosine_decayed = F32(0.5) * (F32(1.0) + np.cos(pi * completed_fraction))
        decayed = F32(1 - self.alpha) * cosine_decayed + F32(self.alpha)
        return decay_from_lr * decayed

    @staticmethod
    def _warmup_function(step: np.ndarray, warmup_steps: Any, warmup_target: Any,
                         initial_learning_rate: Any) -> Any:
        completed_fraction = step / warmup_steps
        total_step_delta = warmup_target - initial_learning_rate
        return total_step_delta * completed_fraction + initial_learning_rate

    def __call__(self, step: Any) -> Any:
        init = F32(self.initial_learning_rate)
        ds = F32(self.decay_steps)
        gs = _steps(step)
        if self.warmup_target is None:
            gs = np.minimum(gs, ds)
            return _out(self._decay_function(gs, ds, init))
        target = F32(self.warmup_target)
        ws = F32(self.warmup_steps)
        gs = np.minimum(gs, ds + ws)
        with np.errstate(divide="ignore", invalid="ignore"):
            warm = self._warmup_function(gs, ws, target, init)
        return _out(np.where(gs < ws, warm, self._decay_function(gs - ws, ds, target)))

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods grow by ``t_mul``, each
    restart's amplitude is scaled by ``m_mul``."""

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 2.0,
                 m_mul: float = 1.0, alpha: float = 0.0, name: str = "SGDRDecay") -> None:
        super().__init__()
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name
        _check_decay_steps(self.first_decay_steps, "first_decay_steps")

    def __call__(self, step: Any) -> Any:
        init = F32(self.initial_learning_rate)
        first = F32(self.first_decay_steps)
        alpha = F32(self.alpha)
        t_mul = F32(self._t_mul)
        m_mul = F32(self._m_mul)
        frac = _steps(step) / first
        if t_mul == F32(1.0):
            i_restart = np.floor(frac)
            frac = frac - i_restart
        else:
            i_restart = np.floor(np.log(F32(1.0) - frac * (F32(1.0) - t_mul)) / np.log(t_mul))
            sum_r = (F32(1.0) - np.power(t_mul, i_restart)) / (F32(1.0) - t_mul)
            frac = (frac - sum_r) / np.power(t_mul, i_restart)
        m_fac = np.power(m_mul, i_restart)
        cosine_decayed = F32(0.5) * m_fac * (F32(1.0) + np.cos(F32(math.pi) * frac))
        decayed = (F32(1) - alpha) * cosine_decayed + alpha
        return _out(init * decayed)

    def get_config(self) -> Dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_BUILTIN = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                    InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule: LearningRateSchedule) -> Dict[str, Any]:
    """Keras's ``serialize_keras_object`` form of a schedule."""
    cls = type(learning_rate_schedule)
    builtin = _BUILTIN.get(cls.__name__) is cls
    return {"module": "keras.optimizers.schedules" if builtin else cls.__module__,
            "class_name": cls.__name__, "config": learning_rate_schedule.get_config(),
            "registered_name": None if builtin else cls.__name__}


def deserialize(config: Mapping[str, Any],
                custom_objects: Optional[Mapping[str, Any]] = None) -> LearningRateSchedule:
    """A schedule from ``serialize``'s (or Keras's) dict."""
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"Could not interpret decay config: {config!r}")
    name = config["class_name"]
    custom = dict(custom_objects or {})
    cls = custom.get(config.get("registered_name") or "") or custom.get(name) \
        or _BUILTIN.get(name)
    if cls is None:
        raise ValueError(f"Could not interpret decay identifier: {name!r}. Supported: "
                         f"{sorted(_BUILTIN)} (pass others in custom_objects)")
    return cls.from_config(dict(config.get("config") or {}))
