"""Optimizers with Keras 3's names, defaults and update formulas.

The update runs natively as one fused pass over the model's flat parameter
buffer; an optimizer object holds its hyperparameters and, once a model is
compiled and built with it, reads and writes the engine's learning rate and
step count.

Every optimizer takes Keras's generic arguments ``weight_decay`` (``w -= w *
weight_decay * lr`` before the update, on the trainable variables not
excluded with ``exclude_from_weight_decay``), ``clipnorm`` (per variable),
``global_clipnorm`` and ``clipvalue``, all applied natively, and a learning
rate that is a float, a ``schedules.LearningRateSchedule`` or a callable
(evaluated at ``iterations``, the step count before the update, in float32).

Standalone use as in Keras: ``opt.apply_gradients(zip(grads, variables))`` or
``opt.apply(grads, variables)`` on ``fastdense.Variable`` objects runs the
same native step and updates the variables in place.
"""
from __future__ import annotations

import inspect
import math
import re
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from . import schedules
from .schedules import LearningRateSchedule
from .variables import Variable
from ._naming import unique_name

# ``from fastdense.optimizers.schedules import ...`` works like Keras's.
sys.modules[__name__ + ".schedules"] = schedules

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax",
           "Nadam", "Lion", "Lamb", "Ftrl", "schedules", "get", "serialize", "deserialize"]

# Engine codes (cpp/optimizers.h OptimizerKind); AdamW runs as Adam.
_SGD, _RMSPROP, _ADAM, _ADAGRAD, _ADADELTA, _ADAMAX, _NADAM, _LION, _LAMB, _FTRL = range(10)

F32 = np.float32


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


def _optional_float(name: str, value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"Argument `{name}` must be a float. Received: {name}={value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Argument `{name}` must be a float. Received: {name}={value!r}") from None
    if v != v:
        raise ValueError(f"Argument `{name}` must be a float. Received: {name}={value!r}")
    return value


def _takes_step(fn: Any) -> bool:
    """Whether a plain callable learning rate takes the step (``lr(step)``);
    otherwise it is called as Keras calls one, with no argument."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(0)
        return True
    except TypeError:
        return False



class ScalarVariable(float):
    """A float read from an optimizer (its learning rate) that also answers
    the calls Keras code makes on the variable it would be there:
    ``assign(value)`` (sets the optimizer's value), ``numpy()``, ``value``."""

    _name: str
    _dtype: str
    _setter: Callable[[Any], None]

    def __new__(cls, value: Any, name: str, dtype: str, setter: Callable[[Any], None]):
        obj = super().__new__(cls, value)
        obj._name, obj._dtype, obj._setter = name, dtype, setter
        return obj

    def assign(self, value: Any) -> "ScalarVariable":
        self._setter(float(np.asarray(value)) if self._dtype.startswith("float")
                     else int(np.asarray(value)))
        return self

    def numpy(self) -> Any:
        return np.asarray(self, dtype=self._dtype)[()]

    @property
    def value(self) -> Any:
        return self.numpy()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def shape(self) -> Tuple[int, ...]:
        return ()

    def __reduce__(self):  # (pickles, copies and configs see a plain number)
        return (float, (float(self),))


class ScalarInt(int):
    """The integer counterpart of ScalarVariable (``optimizer.iterations``)."""

    _name: str
    _dtype: str
    _setter: Callable[[Any], None]

    def __new__(cls, value: Any, name: str, dtype: str, setter: Callable[[Any], None]):
        obj = super().__new__(cls, value)
        obj._name, obj._dtype, obj._setter = name, dtype, setter
        return obj

    assign = ScalarVariable.assign
    numpy = ScalarVariable.numpy
    value = ScalarVariable.value
    name = ScalarVariable.name
    dtype = ScalarVariable.dtype
    shape = ScalarVariable.shape

    def __reduce__(self):
        return (int, (int(self),))

class Optimizer:
    """Base class: Keras's optimizer arguments (learning rate or schedule,
    weight decay, the three clippings, ``use_ema``, ``loss_scale_factor``,
    ``gradient_accumulation_steps``), with the step run natively."""

    _kind = -1

    def __init__(self, learning_rate: Any = 0.001, weight_decay: Optional[float] = None,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 global_clipnorm: Optional[float] = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: Optional[int] = None,
                 loss_scale_factor: Optional[float] = None,
                 gradient_accumulation_steps: Optional[int] = None,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                          stacklevel=2)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if gradient_accumulation_steps:  # (Keras's check)
            if not gradient_accumulation_steps >= 2:
                raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. "
                                 f"Received: gradient_accumulation_steps="
                                 f"{gradient_accumulation_steps}")
        # (gradient accumulation: a step adds its gradients to an accumulator,
        # every gradient_accumulation_steps-th updates with their mean; natively)
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._flat_acc: Optional[np.ndarray] = None  # (standalone apply)
        # Keras's loss_scale_factor: train steps scale the loss by it before
        # the gradients (scale_loss), and apply() divides the gradients by it
        # before clipping, accumulation and the update.  In fit and the
        # *_on_batch methods the two cancel; the engine computes the unscaled
        # gradients directly (the same bits where the factor is a power of 2,
        # within rounding otherwise).  apply / apply_gradients divide what
        # they are given, as Keras's do.
        if loss_scale_factor is not None:
            _optional_float("loss_scale_factor", loss_scale_factor)  # (a number)
            lsf = float(loss_scale_factor)
            if not (math.isfinite(lsf) and lsf > 0):
                raise ValueError("Argument `loss_scale_factor` must be a positive finite number. "
                                 f"Received: loss_scale_factor={loss_scale_factor!r}")
        self.loss_scale_factor = loss_scale_factor
        if use_ema:  # (Keras checks these only with use_ema)
            if ema_momentum > 1 or ema_momentum < 0:
                raise ValueError("`ema_momentum` must be in the range [0, 1]. "
                                 f"Received: ema_momentum={ema_momentum}")
            if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int)
                                            or ema_overwrite_frequency < 1):
                raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. "
                                 f"Received: ema_overwrite_frequency={ema_overwrite_frequency}")
        # Keras's use_ema: a moving average of each trainable variable, updated
        # after every step (natively, in the engine's step); fit's end gives
        # the variables their averages (finalize_variable_values).
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self._flat_ema: Optional[np.ndarray] = None  # (standalone apply)
        self.weight_decay = _optional_float("weight_decay", weight_decay)
        self.clipnorm = _optional_float("clipnorm", clipnorm)
        self.clipvalue = _optional_float("clipvalue", clipvalue)
        self.global_clipnorm = _optional_float("global_clipnorm", global_clipnorm)
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can "
                f"be set. Received: clipnorm={clipnorm}, "
                f"clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        self._learning_rate: Any = self._checked_learning_rate(learning_rate)
        self.name = name or unique_name(_default_name(type(self)))
        self._net: Any = None
        self._iterations = 0
        # standalone use (apply / apply_gradients)
        self.built = False
        self._built_vars: List[Any] = []
        self._var_index: Dict[int, int] = {}
        self._offsets: List[int] = []
        self._flat_state: Optional[np.ndarray] = None
        self._state_spec: Any = None
        # exclude_from_weight_decay
        self._exclude_ids: set = set()
        self._exclude_pattern: Optional["re.Pattern[str]"] = None

    @staticmethod
    def _checked_learning_rate(value: Any) -> Any:
        if isinstance(value, LearningRateSchedule) or callable(value):
            return value
        if isinstance(value, bool):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                f"value and returns the corresponding learning rate value). Received instead: "
                f"learning_rate={value}")
        return _check_float("learning_rate", value)

    # -- learning rate ----------------------------------------------------------------
    def _dynamic_lr(self) -> bool:
        return not isinstance(self._learning_rate, float)

    def _lr_at(self, step: int) -> float:
        """The learning rate of the step with this ``iterations`` value, as the
        float32 the update uses."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            value = lr(np.int64(step))
        elif callable(lr):
            value = lr(step) if _takes_step(lr) else lr()
        else:
            value = lr
        return float(F32(np.asarray(value, dtype=np.float64).reshape(())))

    def _learning_rates(self, count: int) -> Optional[np.ndarray]:
        """float32 learning rates of the next ``count`` steps for the engine
        (``train_batches(learning_rates=...)``), or None when it is constant."""
        if not self._dynamic_lr():
            return None
        first = self._raw_iterations()  # (schedules read the steps, not the updates)
        lr = self._learning_rate
        if type(lr) in schedules._BUILTIN.values():  # vectorized, same float32 ops
            out = np.asarray(lr(np.arange(first, first + count, dtype=np.int64)), dtype=F32)
            return np.ascontiguousarray(out.reshape(count))
        return np.array([self._lr_at(first + k) for k in range(count)], dtype=F32)

    def _sync_step_lr(self) -> None:
        """Sets the engine's learning rate to the next step's (schedules), for
        the per-batch paths (``backward_update``)."""
        if self._net is not None and self._dynamic_lr():
            self._net.learning_rate = self._lr_at(self._raw_iterations())

    @property
    def learning_rate(self) -> "ScalarVariable":
        """The current learning rate (a schedule's value at ``iterations``): a
        float that also answers Keras's variable calls (``.assign(v)``,
        ``.numpy()``); assigning sets the optimizer's rate."""
        if self._dynamic_lr():
            value = float(self._lr_at(self._raw_iterations()))
        else:
            # (a float32 variable's value, as Keras's, before compile too)
            value = float(self._net.learning_rate) if self._net is not None \
                else float(np.float32(self._learning_rate))
        return ScalarVariable(value, "learning_rate", "float32",
                              lambda v: setattr(self, "learning_rate", v))

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule`"
                " object as its `learning_rate` constructor argument, "
                "hence its learning rate is not settable. If you need the"
                " learning rate to be settable, you should instantiate "
                "the optimizer with a float `learning_rate` argument.")
        self._learning_rate = _check_float("learning_rate", value)
        if self._net is not None:
            self._net.learning_rate = self._learning_rate

    @property
    def iterations(self) -> "ScalarInt":
        """Number of update steps applied so far (an int that also answers
        ``.numpy()`` / ``.assign(n)``, as Keras's iterations variable); with
        ``gradient_accumulation_steps``, the steps divided by it (the
        updates), as Keras's property."""
        n = self._raw_iterations()
        if self.gradient_accumulation_steps:
            n //= int(self.gradient_accumulation_steps)
        return ScalarInt(n, "iterations", "int64", self._set_iterations)

    def _raw_iterations(self) -> int:
        """The steps taken (Keras's ``_iterations`` variable, which files keep)."""
        return int(self._net.iterations) if self._net is not None else self._iterations

    def _set_iterations(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"`iterations` must be >= 0. Received: iterations={n}")
        self._iterations = int(n)
        if self._net is not None:
            self._net.iterations = int(n)

    # -- engine binding ---------------------------------------------------------------
    def _spec(self) -> "_core.OptimizerSpec":
        spec = _core.OptimizerSpec()
        spec.kind = self._kind
        spec.learning_rate = self._lr_at(self._raw_iterations()) if self._dynamic_lr() \
            else self._learning_rate
        # Keras: weight decay whenever it is set; each clipping only when > 0
        spec.weight_decay = float(self.weight_decay or 0.0)
        spec.clipnorm = max(float(self.clipnorm or 0.0), 0.0)
        spec.global_clipnorm = max(float(self.global_clipnorm or 0.0), 0.0)
        spec.clipvalue = max(float(self.clipvalue or 0.0), 0.0)
        self._fill_spec(spec)
        return spec

    # The subclass's own hyperparameters, in Keras's config order: each is an
    # attribute of the optimizer and a field of the native OptimizerSpec.
    _hyper: Tuple[str, ...] = ()

    def _fill_spec(self, spec: "_core.OptimizerSpec") -> None:
        for name in self._hyper:
            setattr(spec, name, getattr(self, name))

    def _slot_names(self) -> List[List[str]]:
        """Keras's optimizer variables after ``iterations`` and
        ``learning_rate``: one list per ``add_optimizer_variables`` call (its
        slots interleaved per model variable), in order; each name's engine
        slot is its position in the flattened list."""
        raise NotImplementedError

    def _scalar_names(self) -> List[str]:
        """Keras's scalar optimizer variables after the slots (Nadam's u_product)."""
        return []

    def _attach(self, net: Any) -> None:
        """Installs this optimizer in a network (fresh state, like a new Keras build)."""
        net.set_optimizer(self._spec())
        net.iterations = self._iterations
        net.set_ema(self.use_ema, float(self.ema_momentum),
                    int(self.ema_overwrite_frequency or 0) if self.use_ema else 0)
        if net.ema is not None:
            net.ema[...] = 0.0  # (fresh averages, as Keras's build: zeros)
        net.set_grad_accumulation(int(self.gradient_accumulation_steps or 0))
        if net.grad_acc is not None:
            net.grad_acc[...] = 0.0
        self._net = net

    def finalize_variable_values(self, var_list: Any = None) -> None:
        """With ``use_ema``, the trainable variables take their moving averages
        (Keras calls this at the end of ``fit``)."""
        if not self.use_ema:
            return
        if self._net is not None:
            self._net.finalize_ema()
        elif self._flat_ema is not None:
            self._assign_flat(self._built_vars, self._flat_ema)

    def _assign_flat(self, variables: Sequence[Any], flat: np.ndarray) -> None:
        for v in variables:
            i = self._var_index[id(v)]
            a, b = self._offsets[i], self._offsets[i + 1]
            new = flat[a:b].reshape(np.shape(_value_of(v))).copy()
            if hasattr(v, "assign"):
                v.assign(new)
            else:
                v[...] = new

    def _sync_weight_decay_mask(self, variables: Sequence[Any]) -> None:
        """Tells the engine which of the model's variables (kernel, bias per
        layer, in order) weight decay applies to."""
        if self._net is None:
            return
        mask = [self._use_weight_decay(v) for v in variables]
        self._net.set_weight_decay_mask([] if all(mask) else mask)

    # -- weight decay exclusions (Keras's API) -----------------------------------------
    def exclude_from_weight_decay(self, var_list: Optional[Sequence[Any]] = None,
                                  var_names: Optional[Sequence[str]] = None) -> None:
        """Exclude variables from weight decay: those in ``var_list``, and those
        whose name contains one of ``var_names`` (e.g. ``["bias"]``)."""
        self._exclude_ids = {id(v) for v in var_list} if var_list else set()
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, variable: Any) -> bool:
        if id(variable) in self._exclude_ids:
            return False
        if self._exclude_pattern is not None and re.search(
                self._exclude_pattern, str(getattr(variable, "name", ""))) is not None:
            return False
        return True

    # -- standalone use ---------------------------------------------------------------
    def build(self, variables: Sequence[Any]) -> None:
        """Creates the optimizer state for ``variables`` (as Keras's build)."""
        variables = list(variables)
        self._built_vars = variables
        self._var_index = {id(v): i for i, v in enumerate(variables)}
        sizes = [int(np.prod(np.shape(_value_of(v)))) for v in variables]
        self._offsets = [0]
        for s in sizes:
            self._offsets.append(self._offsets[-1] + s)
        spec = self._spec()
        self._flat_state = _core.optimizer_init_state(spec, self._offsets[-1])
        self._flat_ema = np.zeros(self._offsets[-1], F32) if self.use_ema else None
        self._flat_acc = (np.zeros(self._offsets[-1], F32) if self.gradient_accumulation_steps
                          else None)
        self._state_spec = spec
        self.built = True

    def scale_loss(self, loss: Any) -> Any:
        """Keras's ``scale_loss``: ``loss * loss_scale_factor`` (``loss`` itself
        without one), for training loops that take gradients themselves."""
        if self.loss_scale_factor is not None:
            return loss * self.loss_scale_factor
        return loss

    def apply_gradients(self, grads_and_vars: Any) -> int:
        """Keras's ``apply_gradients(zip(grads, variables))``; returns ``iterations``."""
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables)
        return self.iterations

    def apply(self, grads: Sequence[Any], trainable_variables: Optional[Sequence[Any]] = None
              ) -> None:
        """One step on ``trainable_variables`` (``fastdense.Variable``) with
        ``grads``: clipping, weight decay and the update run natively on the
        variables' concatenated values; the variables are updated in place."""
        grads = list(grads)
        if len(grads) == 0:
            return
        if self._net is not None:
            raise ValueError("This optimizer is attached to a model; use a separate optimizer "
                             "instance for standalone `apply`.")
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer "
                    "must already be built on a list of variables. "
                    "Call `optimizer.build(trainable_variables)` first. ")
            if len(grads) != len(self._built_vars):
                raise ValueError(
                    "When passing `grads` as a list of gradient tensors, the "
                    f"gradients must match `optimizer.variables` one-to-on. "
                    f"Received a list of {len(grads)} gradients, but the "
                    f"optimizer is tracking {len(self._built_vars)} "
                    "trainable variables.")
            variables = list(self._built_vars)
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
            for v in variables:
                if id(v) not in self._var_index:
                    raise ValueError(
                        f"Unknown variable: {v}. This optimizer can only "
                        "be called for the variables it was originally built with. "
                        "When working with a new set of variables, you should "
                        "recreate a new optimizer instance.")
        if len(grads) != len(variables):
            raise ValueError(f"Received {len(grads)} gradients for {len(variables)} variables.")
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        missing = [getattr(v, "path", getattr(v, "name", repr(v)))
                   for g, v in zip(grads, variables) if g is None]
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the "
                          "loss. If using `model.compile()`, did you forget to provide a "
                          "`loss` argument?", stacklevel=2)
        n = self._offsets[-1]
        params = np.zeros(n, F32)
        flat_grads = np.zeros(n, F32)
        segments = []
        for g, v in sorted(pairs, key=lambda p: self._var_index[id(p[1])]):
            i = self._var_index[id(v)]
            a, b = self._offsets[i], self._offsets[i + 1]
            value = np.asarray(_value_of(v), dtype=F32)
            garr = np.asarray(g, dtype=F32)
            if garr.size != b - a or (garr.shape != value.shape and garr.size != 1):
                raise ValueError(f"Gradient of shape {garr.shape} does not match the variable "
                                 f"{getattr(v, 'path', '')} of shape {value.shape}.")
            params[a:b] = value.reshape(-1)
            flat_grads[a:b] = garr.reshape(-1)
            segments.append((a, b, self._use_weight_decay(v)))
        if self.loss_scale_factor is not None:  # (Keras: unscale first, in float32)
            flat_grads /= F32(self.loss_scale_factor)
        spec = self._spec()
        assert self._flat_state is not None  # (built above)
        steps = int(self.gradient_accumulation_steps or 0)
        update = True
        if steps and self._flat_acc is not None:  # (Keras's accumulation)
            update = (self._iterations + 1) % steps == 0
            acc = self._flat_acc
            for a, b, _decay in segments:
                if update:
                    flat_grads[a:b] = (flat_grads[a:b] + acc[a:b]) / F32(steps)
                    acc[a:b] = 0.0
                else:
                    acc[a:b] = flat_grads[a:b] + acc[a:b]
        if update:
            _core.optimizer_apply(spec, self._iterations // steps if steps else self._iterations,
                                  params, self._flat_state, flat_grads, segments)
            self._assign_flat([v for _, v in pairs], params)
        if self.use_ema and self._flat_ema is not None:
            # (Keras: every built variable's average, each step; iterations
            # not yet counting this one)
            for v in self._built_vars:
                i = self._var_index[id(v)]
                a, b = self._offsets[i], self._offsets[i + 1]
                params[a:b] = np.asarray(_value_of(v), dtype=F32).reshape(-1)
            it = self._iterations // steps if steps else self._iterations
            m = F32(0.0) if it == 0 else F32(self.ema_momentum)
            self._flat_ema = m * self._flat_ema + (F32(1.0) - m) * params
            freq = self.ema_overwrite_frequency
            if freq and (it + 1) % freq == 0:
                self._assign_flat(self._built_vars, self._flat_ema)
        self._iterations += 1

    @property
    def variables(self) -> List[Variable]:
        """Copies of the optimizer's variables in Keras's order: iterations,
        learning_rate (unless it is a schedule), the slots, the scalars."""
        def var(value: Any, name: str, **kw: Any) -> Variable:
            v = Variable(value, name=name, trainable=False, **kw)
            v.path = f"{self.name}/{name}"  # (Keras's paths: "adam/iteration", ...)
            return v

        out = [var(np.int64(self._raw_iterations()), "iteration", dtype="int64")]
        if not self._dynamic_lr():
            out.append(var(F32(self.learning_rate), "learning_rate"))
        refs: Sequence[str] = ()
        if self._net is not None:
            refs = getattr(self, "_ref_paths", ())
            state = np.asarray(self._net.optimizer_state)
            layout = _network_var_layout(self._net)
            shapes = [shape for _, shape in layout]
            offsets = [off for off, _ in layout]
            n = int(self._net.num_params)
        elif self.built and self._flat_state is not None:
            state = self._flat_state
            shapes = [tuple(np.shape(_value_of(v))) for v in self._built_vars]
            refs = [str(getattr(v, "path", "")) for v in self._built_vars]
            offsets = [0]
            for s in shapes:
                offsets.append(offsets[-1] + int(np.prod(s)))
            n = offsets[-1]
        else:
            return out
        # (a slot is named after its variable's path, as Keras names it:
        # "sequential_dense_kernel_momentum")
        prefixes = ([f"{r.replace('/', '_')}_" if r else "" for r in refs]
                    if len(refs) == len(shapes) else [""] * len(shapes))
        # (Keras builds the averages, then the gradient accumulators, before the slots)
        for values, suffix in ((self._ema_values(), "average"),
                               (self._acc_values(), "gradient_accumulator")):
            if values is not None:
                for i, shape in enumerate(shapes):
                    size = int(np.prod(shape))
                    out.append(var(values[offsets[i]:offsets[i] + size].reshape(shape),
                                   prefixes[i] + suffix))
        slot = 0
        for group in self._slot_names():
            for i, shape in enumerate(shapes):
                for k, name in enumerate(group):
                    start = (slot + k) * n + offsets[i]
                    out.append(var(state[start:start + int(np.prod(shape))].reshape(shape),
                                   prefixes[i] + name))
            slot += len(group)
        for k, name in enumerate(self._scalar_names()):
            out.append(var(F32(state[slot * n + k]), name))
        return out

    def _acc_values(self) -> Optional[np.ndarray]:
        """The gradient accumulators (laid out as the parameters), or None."""
        return self._extra_values(bool(self.gradient_accumulation_steps), "grad_acc",
                                  self._flat_acc)

    def _ema_values(self) -> Optional[np.ndarray]:
        """The moving averages (laid out as the parameters), or None."""
        return self._extra_values(self.use_ema, "ema", self._flat_ema)

    def _extra_values(self, on: bool, view: str, flat: Optional[np.ndarray]
                      ) -> Optional[np.ndarray]:
        """A buffer laid out as the parameters: the network's ``view`` when
        attached, else the standalone one; None when the option is off."""
        if not on:
            return None
        if self._net is not None:
            values = getattr(self._net, view)
            return None if values is None else np.asarray(values)
        return flat

    # -- Keras's gradient clipping, in numpy (the engine does the same natively) ------
    def _clip_gradients(self, grads: Sequence[Any]) -> List[Any]:
        if self.clipnorm and self.clipnorm > 0:
            out: List[Any] = []
            for g in grads:
                if g is None:
                    out.append(g)
                    continue
                g = np.asarray(g, F32)
                l2sum = F32(np.sum(np.square(g), dtype=np.float64))
                l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
                out.append((g * F32(self.clipnorm)) / np.maximum(l2norm, F32(self.clipnorm)))
            return out
        if self.global_clipnorm and self.global_clipnorm > 0:
            gs = [None if g is None else np.asarray(g, F32) for g in grads]
            norm = np.sqrt(F32(sum(float(np.sum(np.square(g), dtype=np.float64))
                                   for g in gs if g is not None)))
            c = F32(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(F32(1) / norm, F32(1.0 / self.global_clipnorm)) \
                    + (norm - norm)
            return [None if g is None else g * scale for g in gs]
        if self.clipvalue and self.clipvalue > 0:
            v = F32(self.clipvalue)
            return [None if g is None else np.clip(np.asarray(g, F32), -v, v) for g in grads]
        return list(grads)

    # -- config -----------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr_config: Any = schedules.serialize(lr)
        elif callable(lr):
            lr_config = lr
        else:
            lr_config = self.learning_rate
        config = {"name": self.name, "learning_rate": lr_config,
                  "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                  "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                  "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                  "ema_overwrite_frequency": self.ema_overwrite_frequency,
                  "loss_scale_factor": self.loss_scale_factor,
                  "gradient_accumulation_steps": self.gradient_accumulation_steps}
        config.update({name: getattr(self, name) for name in self._hyper})
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "Optimizer":
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"],
                                                            custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={self.learning_rate}>"


def _value_of(v: Any) -> Any:
    return v.value if isinstance(v, Variable) else v


def _network_var_layout(net: Any) -> List[Tuple[int, tuple]]:
    """(offset, shape) of each variable the optimizer updates (not the moving
    statistics, nor frozen layers' weights, which have no slots in Keras), in
    the network's order; its slots sit at the same offsets."""
    return [(int(off), tuple(int(d) for d in shape))
            for _layer, off, shape, trainable in net.variables() if trainable]


def _default_name(cls: type) -> str:
    name = re.sub(r"\W+", "", cls.__name__)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum.

    ``velocity = momentum * velocity - learning_rate * g``; then
    ``w += velocity`` (or ``w += momentum * velocity - learning_rate * g``
    with ``nesterov=True``); without momentum ``w -= learning_rate * g``.
    """

    _hyper = ('momentum', 'nesterov')
    _kind = _SGD

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not isinstance(momentum, (float, int)) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1]. "
                             f"Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _slot_names(self):
        return [["momentum"]] if self.momentum != 0 else []


class RMSprop(Optimizer):
    """RMSprop: ``v = rho * v + (1 - rho) * g**2``;
    ``w -= learning_rate * g / sqrt(v + epsilon)`` (epsilon inside the root)."""

    _hyper = ('rho', 'momentum', 'epsilon', 'centered')
    _kind = _RMSPROP

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, name: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _check_float("rho", rho, 0.0, 1.0)
        self.momentum = _check_float("momentum", momentum, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon)
        self.centered = bool(centered)

    def _slot_names(self):
        return ([["velocity"]] + ([["momentum"]] if self.momentum > 0 else [])
                + ([["average_gradient"]] if self.centered else []))


class Adam(Optimizer):
    """Adam with Keras's bias correction folded into the step size:
    ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``,
    ``w -= alpha * m / (sqrt(v) + epsilon)``."""

    _hyper = ('beta_1', 'beta_2', 'epsilon', 'amsgrad')
    _kind = _ADAM

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)

    def _slot_names(self):
        return [["momentum", "velocity"]] + ([["velocity_hat"]] if self.amsgrad else [])


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras: ``w -= w * weight_decay * lr``
    before the Adam update); ``weight_decay`` defaults to 0.004."""

    def __init__(self, learning_rate: Any = 0.001, weight_decay: Optional[float] = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, name=name or unique_name("adam_w"),
                         weight_decay=weight_decay, **kwargs)
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")


class Adagrad(Optimizer):
    """Adagrad: ``acc += g**2``; ``w -= lr * g / sqrt(acc + epsilon)``, the
    accumulators starting at ``initial_accumulator_value``."""

    _hyper = ('initial_accumulator_value', 'epsilon')
    _kind = _ADAGRAD

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value = _check_float("initial_accumulator_value",
                                                      initial_accumulator_value)
        self.epsilon = _check_float("epsilon", epsilon)

    def _slot_names(self):
        return [["accumulator"]]


class Adadelta(Optimizer):
    """Adadelta: ``E[g²] = rho E[g²] + (1-rho) g²``;
    ``d = -sqrt(E[d²] + eps) / sqrt(E[g²] + eps) * g``;
    ``E[d²] = rho E[d²] + (1-rho) d²``; ``w += lr * d``."""

    _hyper = ('rho', 'epsilon')
    _kind = _ADADELTA

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = _check_float("rho", rho, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon)

    def _slot_names(self):
        return [["accumulated_grad", "accumulated_delta_var"]]


class _Moments(Optimizer):
    """The optimizers whose arguments are Adam's without amsgrad:
    ``beta_1``, ``beta_2`` and ``epsilon`` (Adamax, Nadam, Lamb)."""

    _hyper = ('beta_1', 'beta_2', 'epsilon')

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = _check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon)


class Adamax(_Moments):
    """Adamax (Adam with the infinity norm): ``m += (g - m)(1 - beta_1)``;
    ``u = max(beta_2 u, |g|)``; ``w -= lr m / ((1 - beta_1**t)(u + eps))``."""

    _kind = _ADAMAX

    def _slot_names(self):
        return [["momentum", "norm"]]


class Nadam(_Moments):
    """Adam with Nesterov momentum (Keras's schedule of momentum
    ``u_t = beta_1 (1 - 0.5 * 0.96**t)`` and their running product
    ``u_product``, a scalar of the optimizer state)."""

    _kind = _NADAM

    def _slot_names(self):
        return [["momentum", "velocity"]]

    def _scalar_names(self):
        return ["u_product"]


class Lion(Optimizer):
    """Lion: ``w -= lr * sign(beta_1 m + (1 - beta_1) g)``;
    ``m = beta_2 m + (1 - beta_2) g``."""

    _hyper = ('beta_1', 'beta_2')
    _kind = _LION

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        try:
            bad = beta_1 <= 0 or beta_1 > 1
        except TypeError:
            bad = True
        if bad:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the "
                f"optimizer degenerates to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1 = float(beta_1)
        self.beta_2 = _check_float("beta_2", beta_2, 0.0, 1.0)

    def _slot_names(self):
        return [["momentum"]]


class Lamb(_Moments):
    """Lamb (layer-wise adaptive moments): Adam's moments and bias-corrected
    update ``u = m_hat / (sqrt(v_hat) + epsilon)``, scaled per variable by the
    trust ratio ``||w|| / ||u||`` (1 when either norm is 0):
    ``w -= ratio * lr * u``."""

    _kind = _LAMB

    def _slot_names(self):
        return [["momentum", "velocity"]]


class Ftrl(Optimizer):
    """FTRL-Proximal (Keras ftrl.py): per weight an accumulator of squared
    gradients (starting at ``initial_accumulator_value``) and a linear term;
    ``w = (clip(linear, -l1, l1) - linear) / (acc**-lr_power / lr + 2 * l2)``
    with ``l2 = l2_regularization_strength + beta / (2 lr)``, the gradient
    first shrunk by ``2 * l2_shrinkage_regularization_strength * w``."""

    _hyper = ('learning_rate_power', 'initial_accumulator_value',
              'l1_regularization_strength', 'l2_regularization_strength',
              'l2_shrinkage_regularization_strength', 'beta')
    _kind = _FTRL

    def __init__(self, learning_rate: Any = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1,
                 l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0,
                 name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        checks = (("initial_accumulator_value", initial_accumulator_value, "positive or zero"),
                  ("learning_rate_power", -learning_rate_power, "negative or zero"),
                  ("l1_regularization_strength", l1_regularization_strength, "positive or zero"),
                  ("l2_regularization_strength", l2_regularization_strength, "positive or zero"),
                  ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength,
                   "positive or zero"))
        for arg, value, what in checks:
            if value < 0.0:
                shown = -value if arg == "learning_rate_power" else value
                raise ValueError(f"`{arg}` needs to be {what}. Received: {arg}={shown}.")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def _slot_names(self):
        return [["accumulator", "linear"]]


_BY_NAME = {c.__name__.lower(): c for c in (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta,
                                             Adamax, Nadam, Lion, Lamb, Ftrl)}

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


def deserialize(config: Dict[str, Any], custom_objects: Any = None) -> Optimizer:
    cls = _BY_NAME.get(str(config.get("class_name", "")).lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {config}")
    kwargs = {k: v for k, v in config.get("config", {}).items()
              if v is not None and k != "is_legacy_optimizer"}
    return cls.from_config(kwargs, custom_objects)
