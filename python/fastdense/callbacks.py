"""Callbacks: ``Callback``, ``History``, ``ProgbarLogger``, ``CallbackList`` and
Keras's others (early stopping, checkpoints, schedules, CSV and TensorBoard logs).

Batch hooks cost a trip to Python per batch, so fit only calls them when a
callback overrides one; otherwise the engine runs whole chunks of batches
natively and the progress bar is updated between chunks.
"""
from __future__ import annotations

import collections
import csv
import json
import math
import os
import shutil
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from ._progbar import Progbar, print_msg

__all__ = ["Callback", "History", "ProgbarLogger", "CallbackList", "EarlyStopping",
           "BackupAndRestore",
           "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger", "LambdaCallback",
           "TerminateOnNaN", "ModelCheckpoint", "TensorBoard", "SwapEMAWeights"]

Logs = Optional[Dict[str, Any]]


class Callback:
    """Base class for callbacks; override the hooks you need."""

    def __init__(self) -> None:
        self.params: Dict[str, Any] = {}
        self._model: Any = None

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self._model = model

    @property
    def model(self) -> Any:
        return self._model

    def on_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """A backwards compatibility alias for `on_train_batch_begin`."""

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        """A backwards compatibility alias for `on_train_batch_end`."""

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None: ...

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None: ...

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None: ...

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None: ...

    def on_train_begin(self, logs: Logs = None) -> None: ...

    def on_train_end(self, logs: Logs = None) -> None: ...

    def on_test_begin(self, logs: Logs = None) -> None: ...

    def on_test_end(self, logs: Logs = None) -> None: ...

    def on_predict_begin(self, logs: Logs = None) -> None: ...

    def on_predict_end(self, logs: Logs = None) -> None: ...

    def _wants_batch_hooks(self, names: Iterable[str]) -> bool:
        """Whether fit must call this callback's batch hooks (per batch, off
        the engine's chunked fast path)."""
        return self._overrides(*names)

    # Which batch hooks a callback really implements (a subclass's method, or
    # one set on the instance as LambdaCallback does).
    def _overrides(self, *names: str) -> bool:
        return any(getattr(type(self), n) is not getattr(Callback, n) or n in self.__dict__
                   for n in names)


_TRAIN_BATCH = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")
_TEST_BATCH = ("on_test_batch_begin", "on_test_batch_end")
_PREDICT_BATCH = ("on_predict_batch_begin", "on_predict_batch_end")


class History(Callback):
    """Records each epoch's logs in ``history`` (a dict of lists of floats)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_train_begin(self, logs: Logs = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints Keras's progress bar (``verbose=1``) or one line per epoch (``2``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0
        self.progbar: Optional[Progbar] = None
        self.target: Optional[int] = None
        self.verbose: int = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params: Dict[str, Any]) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs: Logs = None) -> None:
        self._called_in_fit = True

    def on_test_begin(self, logs: Logs = None) -> None:
        if not self._called_in_fit:
            self._reset()
            self._init()

    def on_predict_begin(self, logs: Logs = None) -> None:
        self._reset()
        self._init()

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._reset()
        self._init()
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._update(batch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._update(batch, None)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._finalize(logs)

    def on_test_end(self, logs: Logs = None) -> None:
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_end(self, logs: Logs = None) -> None:
        self._finalize(logs)

    def _reset(self) -> None:
        self.seen = 0
        self.progbar = None

    def _init(self) -> None:
        if self.progbar is None:
            self.progbar = Progbar(target=self.target, verbose=self.verbose, unit_name="step")

    def _update(self, batch: int, logs: Logs) -> None:
        self._init()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)  # type: ignore[union-attr]

    def _finalize(self, logs: Logs) -> None:
        self._init()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target  # type: ignore[union-attr]
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)  # type: ignore[union-attr]


class CallbackList(Callback):
    """Dispatches hooks to a list of callbacks, adding History and
    ProgbarLogger as Keras does (after the user's callbacks)."""

    def __init__(self, callbacks: Optional[Iterable[Callback]] = None, add_history: bool = False,
                 add_progbar: bool = False, model: Any = None, **params: Any) -> None:
        super().__init__()
        if isinstance(callbacks, Callback):  # (Keras flattens what it is given)
            callbacks = [callbacks]
        self.callbacks: List[Callback] = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Expected `callbacks` to be a list of Callback instances. "
                                f"Received: {cb!r} of type {type(cb)}")
        self.history: Optional[History] = next(
            (c for c in self.callbacks if isinstance(c, History)), None)
        self.progbar: Optional[ProgbarLogger] = next(
            (c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if self.progbar is None and add_progbar:
            self.progbar = ProgbarLogger()
            self.callbacks.append(self.progbar)
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model: Any) -> None:
        self._model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def needs_batch_hooks(self, kind: str = "train") -> bool:
        """True when a callback overrides a batch hook, other than the progress
        bar and TerminateOnNaN (which the engine's chunked loop serves)."""
        names = {"train": _TRAIN_BATCH, "test": _TEST_BATCH, "predict": _PREDICT_BATCH}[kind]
        return any(cb._wants_batch_hooks(names) for cb in self.callbacks
                   if not isinstance(cb, ProgbarLogger) and type(cb) is not TerminateOnNaN)

    def nan_terminators(self) -> List[Callback]:
        """TerminateOnNaN callbacks: the engine stops a chunk at the first
        non-finite batch loss and fit calls these with that batch's logs."""
        return [cb for cb in self.callbacks if type(cb) is TerminateOnNaN]

    def _call(self, hook: str, *args: Any) -> None:
        # Keras's CallbackList hands every hook a dict (`logs or {}`), begin
        # hooks included: positionally to the epoch, begin and end hooks,
        # as `logs=` to the batch hooks (`hook(batch, logs=logs)`).
        if args[-1] is None:
            args = args[:-1] + ({},)
        if "batch" in hook:
            batch, logs = args
            for cb in self.callbacks:
                getattr(cb, hook)(batch, logs=logs)
        else:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

    def on_batch_begin(self, batch, logs=None): self._call("on_train_batch_begin", batch, logs)
    def on_batch_end(self, batch, logs=None): self._call("on_train_batch_end", batch, logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_train_batch_begin(self, batch, logs=None): self._call("on_train_batch_begin", batch, logs)
    def on_train_batch_end(self, batch, logs=None): self._call("on_train_batch_end", batch, logs)
    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs)
    def on_predict_batch_begin(self, batch, logs=None): self._call("on_predict_batch_begin", batch, logs)
    def on_predict_batch_end(self, batch, logs=None): self._call("on_predict_batch_end", batch, logs)
    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs)


def _direction(model: Any, metric_name: str) -> Optional[str]:
    """"up" / "down" for a monitored quantity, from the compiled metrics."""
    if metric_name == "loss":
        return "down"
    for m in getattr(model, "metrics", []) or []:
        if m.name == metric_name:
            return getattr(m, "_direction", None)
    return None


def _monitor_direction(callback: Callback, monitor: str, mode: str, purpose: str) -> str:
    """Keras's MonitorCallback rule: "min" / "max" modes, else the metric's own
    direction ("down" for losses, "up" for accuracies)."""
    if mode == "min":
        return "down"
    if mode == "max":
        return "up"
    direction = _direction(callback.model, monitor.removeprefix("val_"))
    if direction is None:
        raise ValueError(
            f"{type(callback).__name__} callback received monitor={monitor}, but Keras isn't "
            "able to automatically determine whether that metric should be maximized or "
            f"minimized. Pass `mode='max'` in order to {purpose} based on the highest metric "
            "value, or pass `mode='min'` in order to use the lowest value.")
    return direction


class _MonitorCallback(Callback):
    """Keras's MonitorCallback: the comparison for ``self.monitor`` (set once
    the model's metrics exist, at the first epoch's end), with the callback's
    ``min_delta``, where it has one, signed to the direction."""

    _purpose = "monitor"  # (the error text's "in order to ...")
    monitor: str
    mode: str
    min_delta: float
    monitor_op: Optional[Callable[[float, float], bool]]

    def _set_monitor_op(self) -> None:
        direction = _monitor_direction(self, self.monitor, self.mode, self._purpose)
        self.monitor_op = (lambda a, b: a < b) if direction == "down" else (lambda a, b: a > b)
        if hasattr(self, "min_delta"):
            self.min_delta = -abs(self.min_delta) if direction == "down" else abs(self.min_delta)

    def _is_improvement(self, value, reference):
        if reference is None:  # (the first value is the best so far)
            return True
        return self.monitor_op(value - self.min_delta, reference)  # type: ignore[misc]


def _batch_save_due(cb: Any, batch: int) -> bool:
    """Keras's ``save_freq=<int>`` count (ModelCheckpoint, BackupAndRestore):
    whether ``save_freq`` batches have passed since the last save."""
    if batch <= cb._last_batch_seen:  # a new epoch
        add = batch + 1
    else:
        add = batch - cb._last_batch_seen
    cb._batches_seen_since_last_saving += add
    cb._last_batch_seen = batch
    if cb._batches_seen_since_last_saving >= cb.save_freq:
        cb._batches_seen_since_last_saving = 0
        return True
    return False


class EarlyStopping(_MonitorCallback):
    """Stops training when a monitored quantity has stopped improving
    (Keras 3's semantics: ``patience``, ``min_delta``, ``baseline``,
    ``restore_best_weights``, ``start_from_epoch``)."""

    _purpose = "do early stopping"

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights: Optional[List[np.ndarray]] = None
        self.start_from_epoch = start_from_epoch
        self.best_epoch = 0
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"EarlyStopping mode {mode} is unknown, fallback to auto mode.",
                          stacklevel=2)
            mode = "auto"
        self.mode = mode
        self.monitor_op: Optional[Callable[[float, float], bool]] = None
        self.best: Optional[float] = None

    def on_train_begin(self, logs=None):
        # (Keras: an instance is reused across fit calls; the first epoch's
        # value is the best so far)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg("Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(list(logs.keys()))}",
                          stacklevel=2)
        return value


class ReduceLROnPlateau(_MonitorCallback):
    """Multiplies the learning rate by ``factor`` when the monitored quantity
    has not improved for ``patience`` epochs; adds ``learning_rate`` to the logs."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs: Any) -> None:
        super().__init__()
        self.monitor = monitor
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.min_delta = min_delta
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0
        self.best: Optional[float] = None
        if mode not in {"auto", "min", "max"}:
            warnings.warn(f"Learning rate reduction mode {mode} is unknown, "
                          "fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.mode = mode
        self.monitor_op: Optional[Callable[[float, float], bool]] = None
        self._reset()

    def _reset(self) -> None:
        """Resets the wait and cooldown counters and the best value (Keras)."""
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(list(logs.keys()))}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing "
                                  f"learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Sets the learning rate at each epoch's start from
    ``schedule(epoch, lr)`` (or ``schedule(epoch)``); adds ``learning_rate`` to the logs."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:  # the older one-argument form
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr}")
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file (``epoch`` then sorted keys)."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer: Any = None
        self.keys: Optional[List[str]] = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, "r") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def handle_value(k):
            if isinstance(k, str):
                return k
            if isinstance(k, collections.abc.Iterable) and not (
                    isinstance(k, np.ndarray) and k.ndim == 0):
                return f'"[{", ".join(map(str, k))}]"'
            if isinstance(k, (float, np.floating)):
                return float(np.float32(k))  # (Keras logs float32 values: same digits)
            return k

        if self.keys is None:
            self.keys = sorted(logs.keys())
            # as Keras: with validation_freq > 1 the first epoch has no `val_`
            # keys; the columns get them anyway (NA until validation runs)
            if not any(key.startswith("val_") for key in self.keys):
                self.keys.extend(["val_" + key for key in self.keys])
        if not self.writer:
            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((key, handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class LambdaCallback(Callback):
    """A callback from plain functions: ``on_epoch_begin(epoch, logs)``,
    ``on_train_batch_end(batch, logs)``, ``on_train_begin(logs)``, ...
    Only the hooks given are installed (so no batch hook costs anything
    unless you pass one)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs: Any) -> None:
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not hasattr(Callback, name):
                raise ValueError(f"Unrecognized callback hook: {name}")
            setattr(self, name, fn)


class BackupAndRestore(Callback):
    """Keras's BackupAndRestore: saves the weights (and optimizer state) and
    the epoch reached in ``backup_dir`` after every epoch (or every
    ``save_freq`` batches); a ``fit`` that starts while a backup is there
    restores it and resumes from that epoch. The backup is deleted when
    training ends normally (``delete_checkpoint``); ``double_checkpoint``
    keeps the previous one too, used when the latest cannot be read.
    Needs h5py."""

    def __init__(self, backup_dir: Any, save_freq: Any = "epoch",
                 double_checkpoint: bool = False, delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, int)):
            raise ValueError(f"Invalid value for argument `save_freq`. Received: "
                             f"save_freq={save_freq}. Expected either 'epoch' or an integer "
                             "value.")
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self.backup_dir = str(backup_dir)
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._prev_weights_path = f"{self._weights_path}.bkp"
        self._prev_training_metadata_path = f"{self._training_metadata_path}.bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except (OSError, ValueError):
            if not os.path.exists(self._prev_weights_path):
                raise
            shutil.copyfile(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_training_metadata_path):
                shutil.copyfile(self._prev_training_metadata_path,
                                self._training_metadata_path)
            elif os.path.exists(self._training_metadata_path):
                os.remove(self._training_metadata_path)
            self._load_model()

    def _load_model(self) -> None:
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, you model must be built "
                             f"before you call `fit()`. Model {self.model} is unbuilt. You can "
                             "build it beforehand by calling it on a batch of data.")
        if os.path.exists(self._weights_path):
            self.model.load_weights(self._weights_path)
        if os.path.exists(self._training_metadata_path):
            with open(self._training_metadata_path) as f:
                self.model._initial_epoch = int(json.loads(f.read())["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model()

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._weights_path):
            shutil.copyfile(self._weights_path, self._prev_weights_path)
        if self.double_checkpoint and os.path.exists(self._training_metadata_path):
            shutil.copyfile(self._training_metadata_path, self._prev_training_metadata_path)
        self.model.save_weights(self._weights_path, overwrite=True)
        with open(self._training_metadata_path, "w") as f:
            f.write(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    def _should_save_on_batch(self, batch: int) -> bool:
        return self.save_freq != "epoch" and _batch_save_due(self, batch)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite: gracefully
    (``model.stop_training``), or with ``raise_error=True`` by raising
    RuntimeError at once, before any other callback's ``on_train_end``."""

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (math.isnan(loss) or math.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                                   f"Loss value: {loss}. Terminating training immediately.")
            print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class SwapEMAWeights(Callback):
    """Puts the optimizer's moving averages (``use_ema=True``) in the model for
    evaluation and prediction, and the trained values back after, as Keras's
    callback; with ``swap_on_epoch=True`` also from each epoch's end to the
    next epoch's start (so that callbacks after it, such as ModelCheckpoint,
    see the averages).  Keras's hooks as they are, on_predict_end included
    (which, as Keras's, leaves the averages in the model)."""

    def __init__(self, swap_on_epoch: bool = False) -> None:
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _net(self) -> Any:
        opt = self.model.optimizer
        if opt is None or not getattr(opt, "use_ema", False):
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the "
                             f"optimizer. Received: use_ema={getattr(opt, 'use_ema', False)}")
        return getattr(self.model, "_net", None)

    def _swap_variables(self) -> None:
        net = self._net()
        if net is not None and net.ema is not None:
            net.swap_ema()

    def _finalize_ema_values(self) -> None:
        """The averages take the model's values (the averages swapped in at
        the last epoch's end), so that fit's finalization keeps them."""
        net = self._net()
        if net is None or net.ema is None:
            return
        from .optimizers import _network_var_layout
        ema, params = net.ema, net.params
        for off, shape in _network_var_layout(net):
            size = int(np.prod(shape))
            ema[off:off + size] = params[off:off + size]

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True
            if epoch == self.params["epochs"] - 1:
                self._finalize_ema_values()

    def on_test_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def on_test_end(self, logs=None):
        if self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_predict_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def on_predict_end(self, logs=None):
        if not self._ema_weights_in_model:  # (Keras's condition, kept)
            self._swap_variables()
            self._ema_weights_in_model = False


class ModelCheckpoint(_MonitorCallback):
    """Saves the model (``.keras``, or Keras's legacy H5 format for a ``.h5``
    name) or its weights (``.weights.h5``) after each epoch or every
    ``save_freq`` batches, optionally only when the monitored quantity
    improves. ``filepath`` may hold ``{epoch:02d}``-style fields and any log
    key, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``.

    A NaN or infinite monitored value never counts as an improvement, so it
    never replaces the best checkpoint."""

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: Any = "epoch",
                 initial_value_threshold: Optional[float] = None) -> None:
        super().__init__()
        self.monitor = monitor
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"ModelCheckpoint mode '{mode}' is unknown, fallback to auto mode.",
                          stacklevel=2)
            mode = "auto"
        self.mode = mode
        self.best = initial_value_threshold
        self.monitor_op: Optional[Callable[[float, float], bool]] = None
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        if self.save_freq != "epoch" and not isinstance(self.save_freq, int):
            raise ValueError(f"Unrecognized save_freq: {self.save_freq}. "
                             "Expected save_freq are 'epoch' or integer values")
        if save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.weights.h5` (Keras weights format). Received: "
                    f"filepath={self.filepath}")
        elif not self.filepath.endswith((".keras", ".h5")):
            # as Keras 3: `.h5` writes the legacy H5 format (`model.save`), `.hdf5` is refused
            raise ValueError("The filepath provided must end in `.keras` (Keras model format) "
                             "or `.h5` (legacy H5 format). "
                             f"Received: filepath={self.filepath}")

    def _wants_batch_hooks(self, names: Iterable[str]) -> bool:
        return self.save_freq != "epoch"

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and _batch_save_due(self, batch):
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only and self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _file_path(self, epoch: int, batch: Optional[int], logs: Dict[str, Any]) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {e}") from None

    def _should_save(self, epoch: int, logs: Dict[str, Any], filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=2)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        finite = math.isfinite(float(current))
        if finite and (self.best is None or self.monitor_op(current, self.best)):  # type: ignore[misc]
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                          f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save(self, epoch: int, batch: Optional[int], logs: Any) -> None:
        logs = dict(logs or {})
        filepath = self._file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        if not self._should_save(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


class TensorBoard(Callback):
    """Logs to TensorBoard as Keras's ``TensorBoard`` does, without needing
    TensorFlow (the event files are written directly, readable by
    ``tensorboard --logdir``): each epoch's ``epoch_<name>`` scalars (the
    learning rate among them) under ``log_dir/train``, the validation ones
    (``val_`` dropped) under ``log_dir/validation``, and each evaluation's
    ``evaluation_<name>_vs_iterations`` there too; with ``update_freq="batch"``
    or an integer N, ``batch_<name>`` every N training batches (fit then
    steps batch by batch). ``write_steps_per_second`` adds
    ``epoch_steps_per_second`` (and ``batch_steps_per_second``);
    ``histogram_freq=N`` writes each weight's histogram
    (``<weight path>/histogram``, TensorBoard's 30 buckets) every N epochs.
    Weight images, embeddings and profiling raise NotImplementedError;
    ``write_graph`` writes nothing (there is no TensorFlow graph)."""

    def __init__(self, log_dir: Any = "logs", histogram_freq: int = 0,
                 write_graph: bool = True, write_images: bool = False,
                 write_steps_per_second: bool = False, update_freq: Any = "epoch",
                 profile_batch: Any = 0, embeddings_freq: int = 0,
                 embeddings_metadata: Any = None) -> None:
        super().__init__()
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, (int, np.integer)) \
                or histogram_freq < 0:
            raise ValueError("`histogram_freq` must be a non-negative integer. Received: "
                             f"histogram_freq={histogram_freq!r}")
        for arg, value in (("write_images", write_images), ("profile_batch", profile_batch),
                           ("embeddings_freq", embeddings_freq),
                           ("embeddings_metadata", embeddings_metadata)):
            if value:
                raise NotImplementedError(
                    f"fastdense's TensorBoard callback writes scalars and weight histograms "
                    f"only. Received: "
                    f"{arg}={value!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(
                update_freq, (int, np.integer)) or update_freq < 1):
            raise ValueError("`update_freq` must be 'epoch', 'batch' or a positive integer. "
                             f"Received: update_freq={update_freq!r}")
        self.log_dir = str(os.fspath(log_dir))
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers: Dict[str, Any] = {}
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0
        self._epoch_start_time = 0.0
        self._batch_start_time = 0.0

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        self._close_writers()

    def _writer(self, kind: str) -> Any:
        from ._tfevents import EventFileWriter
        if kind not in self._writers:
            self._writers[kind] = EventFileWriter(os.path.join(self.log_dir, kind))
        return self._writers[kind]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _iterations(self) -> int:
        opt = getattr(self.model, "optimizer", None)
        return int(opt.iterations) if opt is not None else 0

    def _wants_batch_hooks(self, names: Iterable[str]) -> bool:
        return tuple(names) == _TRAIN_BATCH and self.update_freq != "epoch"

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._previous_epoch_iterations = self._iterations()
            self._epoch_start_time = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        writer, step = self._writer("train"), self._global_train_batch
        if self.write_steps_per_second:
            elapsed = time.time() - self._batch_start_time
            if elapsed > 0:
                writer.scalar("batch_steps_per_second", 1.0 / elapsed, step)
        for name, value in (logs or {}).items():
            writer.scalar(f"batch_{name}", value, step)
        writer.flush()

    def on_test_end(self, logs=None):
        if getattr(self.model, "optimizer", None) is None:
            return
        writer, step = self._writer("validation"), self._iterations()
        for name, value in (logs or {}).items():
            writer.scalar(f"evaluation_{name}_vs_iterations", value, step)
        writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if not logs:
            return
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        opt = getattr(self.model, "optimizer", None)
        if opt is not None:
            train["learning_rate"] = float(np.asarray(opt.learning_rate))
        if self.write_steps_per_second:
            elapsed = time.time() - self._epoch_start_time
            steps = self._iterations() - self._previous_epoch_iterations
            train["steps_per_second"] = float(np.float32(steps) / np.float32(elapsed)) \
                if elapsed > 0 else 0.0
        for kind, values in (("train", train), ("validation", val)):
            if values:
                writer = self._writer(kind)
                for name, value in values.items():
                    writer.scalar(f"epoch_{name}", value, epoch)
                writer.flush()
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer = self._writer("train")
            for layer in self.model.layers:
                for weight in layer.weights:
                    writer.histogram(f"{weight.path.replace(':', '_')}/histogram",
                                     weight.numpy(), epoch)
            writer.flush()
