"""Optimizers with Keras 3's names, defaults and update formulas.

The update runs natively as one fused pass over the model's flat parameter
buffer; an optimizer object holds its hyperparameters and, once a model is
compiled and built with it, reads and writes the engine's learning rate and
step count.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

from . import _core

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "get", "serialize", "deserialize"]

_SGD, _RMSPROP, _ADAM = 0, 1, 2


def _check_float(name: str, value: Any, low: float = 0.0, high: Optional[float] = None,
                 low_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Argument `{name}` must be a float. Received: {name}={value!r}") from None
    if v != v or (v <= low if low_open else v < low) or (high is not None and v > high):
        bound = f"in [{low}, {high}]" if high is not None else (f"> {low}" if low_open else f">= {low}")
        raise ValueError(f"Argument `{name}` must be {bound}. Received: {name}={value!r}")
    return v


class Optimizer:
    """Base class. Keyword arguments Keras accepts but fastdense does not
    implement yet raise a clear ``NotImplementedError``."""

    _kind = -1

    def __init__(self, learning_rate: float = 0.001, weight_decay: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: Optional[int] = None,
                 loss_scale_factor: Optional[float] = None,
                 gradient_accumulation_steps: Optional[int] = None,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        for arg, value in (("weight_decay", weight_decay), ("clipnorm", clipnorm),
                           ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm),
                           ("ema_overwrite_frequency", ema_overwrite_frequency),
                           ("loss_scale_factor", loss_scale_factor),
                           ("gradient_accumulation_steps", gradient_accumulation_steps)):
            if value is not None:
                raise NotImplementedError(
                    f"{type(self).__name__}(`{arg}`=...) is not supported by fastdense yet. "
                    f"Received: {arg}={value!r}")
        if use_ema:
            raise NotImplementedError("use_ema=True is not supported by fastdense yet.")
        if callable(learning_rate):
            raise NotImplementedError(
                "Learning-rate schedules are not supported by fastdense yet. "
                f"Received: learning_rate={learning_rate!r}")
        self._learning_rate = _check_float("learning_rate", learning_rate)
        self.name = name or type(self).__name__.lower()
        self._net: Any = None
        self._iterations = 0

    # -- engine binding ---------------------------------------------------------------
    def _spec(self) -> "_core.OptimizerSpec":
        spec = _core.OptimizerSpec()
        spec.kind = self._kind
        spec.learning_rate = self._learning_rate
        self._fill_spec(spec)
        return spec

    def _fill_spec(self, spec: "_core.OptimizerSpec") -> None:
        raise NotImplementedError

    def _attach(self, net: Any) -> None:
        """Installs this optimizer in a network (fresh state, like a new Keras build)."""
        net.set_optimizer(self._spec())
        net.iterations = self._iterations
        self._net = net

    @property
    def learning_rate(self) -> float:
        return float(self._net.learning_rate) if self._net is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _check_float("learning_rate", value)
        if self._net is not None:
            self._net.learning_rate = self._learning_rate

    @property
    def iterations(self) -> int:
        """Number of update steps applied so far."""
        return int(self._net.iterations) if self._net is not None else self._iterations

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "learning_rate": self.learning_rate, "weight_decay": None,
                "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                "loss_scale_factor": None, "gradient_accumulation_steps": None}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Optimizer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={self.learning_rate}>"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum.

    ``velocity = momentum * velocity - learning_rate * g``; then
    ``w += velocity`` (or ``w += momentum * velocity - learning_rate * g``
    with ``nesterov=True``); without momentum ``w -= learning_rate * g``.
    """

    _kind = _SGD

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, name: str = "SGD", **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not isinstance(momentum, (float, int)) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1]. "
                             f"Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _fill_spec(self, spec):
        spec.momentum = self.momentum
        spec.nesterov = self.nesterov

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class RMSprop(Optimizer):
    """RMSprop: ``v = rho * v + (1 - rho) * g**2``;
    ``w -= learning_rate * g / sqrt(v + epsilon)`` (epsilon inside the root)."""

    _kind = _RMSPROP

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, name: str = "rmsprop",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _check_float("rho", rho, 0.0, 1.0)
        self.momentum = _check_float("momentum", momentum, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon)
        self.centered = bool(centered)

    def _fill_spec(self, spec):
        spec.rho = self.rho
        spec.momentum = self.momentum
        spec.epsilon = self.epsilon
        spec.centered = self.centered

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        return config


class Adam(Optimizer):
    """Adam with Keras's bias correction folded into the step size:
    ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``,
    ``w -= alpha * m / (sqrt(v) + epsilon)``."""

    _kind = _ADAM

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: str = "adam",
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)

    def _fill_spec(self, spec):
        spec.beta_1 = self.beta_1
        spec.beta_2 = self.beta_2
        spec.epsilon = self.epsilon
        spec.amsgrad = self.amsgrad

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "amsgrad": self.amsgrad})
        return config


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}

OptimizerLike = Union[str, Optimizer, Dict[str, Any]]


def get(identifier: OptimizerLike) -> Optimizer:
    """An optimizer instance for a name (case-insensitive), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is not None:
            return cls()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier}. "
                     f"Supported: {sorted(c.__name__ for c in _BY_NAME.values())}")


def serialize(optimizer: Optimizer) -> Dict[str, Any]:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: Dict[str, Any]) -> Optimizer:
    cls = _BY_NAME.get(str(config.get("class_name", "")).lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {config}")
    kwargs = {k: v for k, v in config.get("config", {}).items()
              if v is not None and k not in ("use_ema", "ema_momentum")}
    return cls(**kwargs)
