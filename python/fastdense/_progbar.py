"""Keras-3-compatible progress bar.

Reproduces the text emitted by ``keras.utils.Progbar`` (Keras 3) so that
training logs from fastdense look identical to those of Keras:

    verbose=1:  ``469/469 ━━━━━━━━━━━━━━━━━━━━ 1s 2ms/step - accuracy: 0.9266``
                (wrapped in ANSI bold/colour codes exactly like Keras)
    verbose=2:  ``469/469 - 1s - 2ms/step - accuracy: 0.9266``

The clock is read through ``time.time`` of this module, so tests can
monkeypatch ``fastdense._progbar.time.time``.  Output goes to ``file`` if
given, otherwise to ``sys.stdout`` looked up at write time.
"""

import math
import os
import sys
import time

import numpy as np

__all__ = ["Progbar", "print_msg"]

_BAR_CHAR = "\u2501"  # '━' (BOX DRAWINGS HEAVY HORIZONTAL)
_BOLD = "\x1b[1m"
_GREEN = "\x1b[32m"
_GREY = "\x1b[37m"
_RESET = "\x1b[0m"


def print_msg(message, line_break=True, file=None):
    """Write ``message`` (plus a newline unless ``line_break=False``) and flush.

    Mirrors ``keras.src.utils.io_utils.print_msg`` in interactive mode; used
    e.g. for the ``Epoch 1/10`` header that Keras' ProgbarLogger prints before
    each epoch when ``epochs > 1``.
    """
    stream = sys.stdout if file is None else file
    stream.write(message + "\n" if line_break else message)
    try:
        stream.flush()
    except (AttributeError, ValueError):
        pass


def _detect_dynamic_display(stream):
    # Same heuristic as Keras.  Note that the "posix" module is loaded on
    # every POSIX system, so Keras (and therefore we) effectively always use
    # the "\b...\r" redraw style there.
    return bool(
        (hasattr(stream, "isatty") and stream.isatty())
        or "ipykernel" in sys.modules
        or "posix" in sys.modules
        or "PYCHARM_HOSTED" in os.environ
    )


def _format_avg(entry, signed_threshold):
    total, count = entry
    if not isinstance(total, float):
        total = np.mean(total)
    avg = total / max(1, count)
    big = abs(avg) > 1e-3 if signed_threshold else avg > 1e-3
    return f" {avg:.4f}" if big else f" {avg:.4e}"


class Progbar:
    """Displays a progress bar (output-compatible with Keras 3).

    Args:
        target: Total number of steps expected, ``None`` if unknown.
        width: Progress bar width in characters.
        verbose: 0 (silent), 1 (progress bar), 2 (one line when finished).
        interval: Minimum time (seconds) between two redraws at verbose=1.
        stateful_metrics: Names of metrics displayed as-is; all others are
            averaged over steps by the progress bar (weighted by the number
            of steps between updates), exactly like Keras.
        stateless_metrics: Alternative to ``stateful_metrics``: names of the
            metrics that *are* averaged; all others are shown as-is.
        unit_name: Display name for step counts ("step", "sample", ...).
        file: Optional stream to write to instead of ``sys.stdout``.
        dynamic_display: Force (True/False) the redraw style; ``None`` uses
            Keras' detection (TTY / notebook / POSIX / PyCharm).
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
        file=None,
        dynamic_display=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Only one of `stateful_metrics` or `stateless_metrics` "
                "can be provided."
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.file = file
        if stateful_metrics is not None:
            self.stateful_metrics = set(stateful_metrics)
            self.stateless_metrics = None
        elif stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set()
            self.stateless_metrics = None

        if dynamic_display is None:
            stream = sys.stdout if file is None else file
            dynamic_display = _detect_dynamic_display(stream)
        self._dynamic_display = bool(dynamic_display)

        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = time.time()
        self._last_update = 0
        self._time_at_epoch_start = self._start
        self._time_after_first_step = None
        self._prev_total_width = 0

    # ------------------------------------------------------------------ #
    def _is_averaged(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _accumulate(self, current, values, finalize):
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
            if self._is_averaged(name) and not finalize:
                # Weight the value by the number of steps it covers (at
                # least one, so repeated updates at the same step count).
                weight = max(current - self._seen_so_far, 1)
                slot = self._values.get(name)
                if slot is None:
                    self._values[name] = [value * weight, weight]
                else:
                    slot[0] += value * weight
                    slot[1] += weight
            else:
                # Stateful metrics, and every metric on the final update,
                # are displayed as given.
                self._values[name] = [value, 1]
        self._seen_so_far = current

    def update(self, current, values=None, finalize=None):
        """Update the bar to step ``current``.

        Args:
            current: Index of the current step.
            values: List of ``(name, value)`` tuples.
            finalize: Whether this is the last update; defaults to
                ``current >= target`` (``False`` when target is unknown).
        """
        if finalize is None:
            finalize = False if self.target is None else current >= self.target

        self._accumulate(current, values or [], finalize)

        now = time.time()
        per_unit = self._estimate_step_duration(current, now)

        if self.verbose == 1:
            if not finalize and now - self._last_update < self.interval:
                return
            self._draw(current, now, per_unit, finalize)
        elif self.verbose == 2:
            if finalize and self.target is not None and self.target > 0:
                self._write(self._summary_line(current, now, per_unit))

        self._last_update = now

    def add(self, n, values=None):
        """Advance the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    # ------------------------------------------------------------------ #
    def _write(self, message):
        print_msg(message, line_break=False, file=self.file)

    def _has_target(self):
        return self.target is not None and self.target > 0

    def _counter(self, current):
        digits = int(math.log10(self.target)) + 1
        return ("%" + str(digits) + "d/%d") % (current, self.target)

    def _draw(self, current, now, per_unit, finalize):
        # Invisible ANSI bytes are excluded from the width bookkeeping.
        hidden = 0
        if self._has_target():
            bar = f"{_BOLD}{self._counter(current)}{_RESET} "
            hidden += len(_BOLD) + len(_RESET)
            filled = int(self.width * (float(current) / self.target))
            if filled > 0:
                bar += f"{_GREEN}{_BAR_CHAR * filled}{_RESET}"
                hidden += len(_GREEN) + len(_RESET)
            bar += f"{_GREY}{_BAR_CHAR * (self.width - filled)}{_RESET}"
            hidden += len(_GREY) + len(_RESET)
        else:
            bar = "%7d/Unknown" % current

        if self._has_target() and not finalize:
            timing = self._format_eta(per_unit * (self.target - current))
        else:
            timing = f"{now - self._start:.0f}s"
        info = f" {_BOLD}{timing}{_RESET}"
        hidden += len(_BOLD) + len(_RESET)
        info += self._format_time(per_unit, self.unit_name)
        for name in self._values_order:
            info += f" - {name}:"
            entry = self._values[name]
            if isinstance(entry, list):
                info += _format_avg(entry, signed_threshold=True)
            else:  # pragma: no cover - not produced by update()
                info += f" {entry}"

        if self._dynamic_display:
            prefix = "\b" * self._prev_total_width + "\r"
        else:
            prefix = "\n"
        message = prefix + bar + info

        total_width = len(bar) + len(info) - hidden
        if self._prev_total_width > total_width:
            message += " " * (self._prev_total_width - total_width)
        if finalize:
            message += "\n"
        self._write(message)
        self._prev_total_width = total_width

    def _summary_line(self, current, now, per_unit):
        line = f"{self._counter(current)} - {now - self._start:.0f}s"
        line += " -" + self._format_time(per_unit, self.unit_name)
        for name in self._values_order:
            # Keras compares the signed value here (negatives -> %.4e).
            line += f" - {name}:" + _format_avg(
                self._values[name], signed_threshold=False
            )
        return line + "\n"

    @staticmethod
    def _format_eta(eta):
        if eta > 3600:
            return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
        if eta > 60:
            return "%d:%02d" % (eta // 60, eta % 60)
        return "%ds" % eta

    @staticmethod
    def _format_time(per_unit, unit_name):
        if per_unit >= 1 or per_unit == 0:
            return f" {per_unit:.0f}s/{unit_name}"
        if per_unit >= 1e-3:
            return f" {per_unit * 1e3:.0f}ms/{unit_name}"
        return f" {per_unit * 1e6:.0f}us/{unit_name}"

    def _estimate_step_duration(self, current, now):
        # The first step is usually slow (compilation, warm-up), so once it
        # has been seen, later estimates exclude it.
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit
