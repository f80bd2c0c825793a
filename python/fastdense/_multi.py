"""Models with several outputs: Keras 3's per-output losses, loss weights and
metrics (``keras.src.trainers.compile_utils``'s CompileLoss and CompileMetrics).

The engine runs one output array: the outputs' columns side by side (a hidden
concatenation at the end of the graph, see ``layers._OutputJoin``). The
targets are taken the same way, each output's columns side by side as float32,
so that the per-batch training path of Python losses (native forward and
backward, the loss and its gradient in numpy) runs them unchanged:
``loss_and_grad`` splits the columns, runs each output's loss and joins the
gradients; the per-output loss trackers (``<output>_loss``) and metrics
(``<output>_<metric>``) are Metric objects that read their output's columns.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import losses as _losses
from . import metrics as _metrics


class Outputs:
    """A model's outputs as the engine lays them out: their names (the layers
    that compute them, Keras's ``output_names``), widths, dict keys (outputs
    given as a dict; Keras orders them by key) and column ranges."""

    def __init__(self, names: List[str], units: List[int], keys: Optional[List[str]],
                 user_keys: Optional[List[str]] = None) -> None:
        self.names, self.units, self.keys = names, units, keys
        # (False for a subclassed model's list of outputs: Keras knows no output
        # names there, and names the loss trackers after the losses and the
        # metrics without a prefix)
        self.named = True
        # (a dict's keys as given: its config and `output` keep that order)
        self.user_keys: List[str] = user_keys or keys or []
        self.cols: List[slice] = []
        begin = 0
        for u in units:
            self.cols.append(slice(begin, begin + u))
            begin += u

    def __len__(self) -> int:
        return len(self.names)

    @property
    def struct_names(self) -> List[str]:
        """The names the structure of ``loss`` / ``metrics`` / ``y`` dicts uses:
        the dict keys for dict outputs, else the output layers' names."""
        return list(self.keys) if self.keys is not None else list(self.names)

    def split(self, joined: np.ndarray) -> Any:
        """The engine's joined output as the model returns it: a list, or a dict
        for dict outputs."""
        parts = [joined[:, c] for c in self.cols]
        if self.keys is not None:
            return dict(zip(self.keys, parts))
        return parts


class Compiled:
    """compile's arguments for several outputs, resolved per output: loss
    (None: none for that output), loss weight, metrics and weighted metrics;
    the targets' column layout once data is seen."""

    def __init__(self, outs: Outputs, losses: List[Any], weights: List[Optional[float]],
                 metrics: List[List[Any]], weighted: List[List[Any]]) -> None:
        self.outs = outs
        self.loss_args = losses
        self.losses: List[Optional[_losses.Loss]] = [None] * len(outs)
        self.weights = weights
        self.metric_ids, self.weighted_ids = metrics, weighted
        self.true_cols: Optional[List[slice]] = None
        self.true_rank: List[int] = []
        self.order = list(range(len(outs)))  # (the losses' order: see compile_outputs)

    def heads(self) -> List[int]:
        """The outputs with a loss, in the losses' order."""
        return [i for i in self.order if self.loss_args[i] is not None]

    def loss_name(self, i: int) -> str:
        """Output i's loss tracker: ``<output>_loss`` (the dict key for dict
        outputs; the loss's name where the outputs have none)."""
        if not self.outs.named:
            loss = self.losses[i]
            return f"{loss.name if loss is not None else self.loss_args[i]}_loss"
        return f"{self.outs.struct_names[i]}_loss"


def _is_leaf(x: Any) -> bool:
    return not isinstance(x, (list, tuple, dict))


def _by_output(arg: Any, outs: Outputs, what: str, allow_single: bool) -> List[Any]:
    """``loss`` / ``loss_weights`` as one entry per output, by Keras's rules:
    one value for every output, a list with one entry per output, or a dict
    keyed by the output names (missing outputs: None)."""
    n = len(outs)
    names = outs.struct_names
    if _is_leaf(arg):
        if not allow_single:
            raise ValueError(f"`{what}` must match the number of losses: a list of {n} "
                             f"entries or a dict keyed by the outputs' names {names}. "
                             f"Received: {what}={arg!r}")
        return [arg] * n
    if isinstance(arg, dict):
        extra = [k for k in arg if k not in names]
        if extra or (what == "loss" and set(arg) != set(names) and outs.keys is None):
            raise ValueError(f"Expected keys {names} in {what} dict, but found "
                             f"{what}.keys()={list(arg.keys())}")
        return [arg.get(k) for k in names]
    if len(arg) != n:
        raise ValueError(f"`{what}` must have one entry per output: the model has {n} "
                         f"outputs {names}. Received: {what}={arg!r} ({len(arg)} entries)")
    if not all(_is_leaf(a) for a in arg):
        raise ValueError(f"`{what}` entries must be single values, one per output. "
                         f"Received: {what}={arg!r}")
    return list(arg)


def _metrics_by_output(arg: Any, outs: Outputs, what: str) -> List[List[Any]]:
    """``metrics`` / ``weighted_metrics`` as a list of metrics per output, by
    Keras's CompileMetrics rules: a list with one entry (a metric or a list
    of them) per output, or a dict keyed by the output names."""
    n = len(outs)
    if not arg:
        return [[] for _ in range(n)]
    if isinstance(arg, dict):
        names = outs.struct_names
        if not set(arg) <= set(names):
            raise ValueError(
                f"Invalid `{what}`. `{what}` should contain metrics objects and either be a "
                f"dict or a list matching the output names of the functional model {names} "
                f"or match the output structure of the model: {['X'] * n}.\n"
                f"Received: {what}={arg}")
        entries = [arg.get(k) for k in names]
    elif isinstance(arg, (list, tuple)) and len(arg) == n:
        entries = list(arg)
    else:
        raise ValueError(
            f"Invalid `{what}`. `{what}` should contain metrics objects and either be a dict "
            f"or a list matching the output names of the functional model "
            f"{outs.struct_names} or match the output structure of the model: "
            f"{['X'] * n}.\nReceived: {what}={arg}")
    out: List[List[Any]] = []
    for e in entries:
        if e is None:
            out.append([])
        elif isinstance(e, (list, tuple)):
            out.append([m for m in e if m is not None])
        else:
            out.append([e])
    for ms in out:
        for m in ms:
            if not (isinstance(m, str) and m.lower() in ("accuracy", "acc")):
                _metrics.check(m)
    return out


def compile_outputs(outs: Outputs, loss: Any, loss_weights: Any, metrics: Any,
                    weighted_metrics: Any) -> Compiled:
    """compile's arguments for a model with several outputs, checked."""
    losses = _by_output(loss, outs, "loss", allow_single=True)
    if loss_weights is None:
        weights: List[Optional[float]] = [None] * len(outs)
    else:
        if _is_leaf(loss) != _is_leaf(loss_weights):  # (Keras packs them together first)
            n_w = 1 if _is_leaf(loss_weights) else len(loss_weights)
            raise ValueError(f"`loss_weights` must match the number of losses, got "
                             f"{1 if _is_leaf(loss) else len(loss)} losses and {n_w} weights.")
        if _is_leaf(loss_weights):
            raise ValueError(f"`loss_weights` must match the number of losses: a list of "
                             f"{len(outs)} weights, or a dict keyed by the outputs' names. "
                             f"Received: loss_weights={loss_weights!r}")
        weights = _by_output(loss_weights, outs, "loss_weights", allow_single=False)
        for w in weights:
            if w is not None and (isinstance(w, bool) or not isinstance(
                    w, (int, float, np.integer, np.floating)) or not np.isfinite(w)):
                raise ValueError(f"`loss_weights` must be finite numbers. Received: "
                                 f"loss_weights={loss_weights!r}")
    for l in losses:
        if l is not None and not (isinstance(l, str) and l.lower() in ("crossentropy", "ce")):
            _losses.to_loss_object(l)  # (fails early on an unknown name)
    c = Compiled(outs, losses, [None if w is None else float(w) for w in weights],
                 _metrics_by_output(metrics, outs, "metrics"),
                 _metrics_by_output(weighted_metrics, outs, "weighted_metrics"))
    if isinstance(loss, dict) and outs.keys is not None:
        # (Keras walks a dict of losses for dict outputs in the dict's order:
        # its loss trackers, and evaluate's list, follow it)
        names = outs.struct_names
        c.order = [names.index(k) for k in loss] + [i for i, k in enumerate(names)
                                                     if k not in loss]
    return c


# ------------------------------------------------------------------ targets
def _as_list(value: Any, outs: Outputs, name: str, what: str = "targets") -> List[Any]:
    """``y`` (or a validation ``y``, or ``sample_weight``) as one array per
    output, in order."""
    n = len(outs)
    if isinstance(value, dict):
        names = outs.struct_names
        alt = outs.names  # (Keras takes a dict keyed by the output layers' names too)
        keys = names if all(k in value for k in names) else alt
        missing = [k for k in keys if k not in value]
        if missing:
            raise ValueError(f"`{name}` is a dict without the {what} of output(s) {missing}: "
                             f"the model's outputs are {names}. Received keys: "
                             f"{sorted(map(str, value))}")
        return [value[k] for k in keys]
    if isinstance(value, (list, tuple)) and len(value) == n and not np.isscalar(value[0]):
        return list(value)
    got = f"a {type(value).__name__} of {len(value)}" if isinstance(value, (list, tuple)) \
        else f"{type(value).__name__} of shape {np.shape(value)}"
    raise ValueError(f"The model has {n} outputs {outs.struct_names}: pass `{name}` as a list "
                     f"or tuple of {n} arrays, in that order, or a dict keyed by those names. "
                     f"Received: {got}")


def _target_list(c: Compiled, y: Any, name: str) -> List[Any]:
    """``y`` as one array (or None) per output, as Keras takes it: a list or
    dict of every output's targets, or only of those with a loss or metrics
    (a list of those, in order; one array when there is one; None entries and
    missing dict keys for the others)."""
    n = len(c.outs)
    needed = [i for i in range(n) if c.loss_args[i] is not None or c.metric_ids[i]
              or c.weighted_ids[i]]
    names = c.outs.struct_names
    parts: List[Any]
    if isinstance(y, dict):
        keys = names if any(k in y for k in names) else c.outs.names
        parts = [y.get(k) for k in keys]
    elif isinstance(y, (list, tuple)) and len(y) == n and len(y) > 0 and not np.isscalar(y[0]):
        parts = list(y)
    elif isinstance(y, (list, tuple)) and len(y) == len(needed) < n:
        parts = [None] * n
        for i, part in zip(needed, y):
            parts[i] = part
    elif not isinstance(y, (list, tuple)) and len(needed) == 1 and n > 1:
        parts = [None] * n
        parts[needed[0]] = y
    else:
        parts = _as_list(y, c.outs, name)  # (raises: the structures Keras takes)
    missing = [names[i] for i in needed if parts[i] is None]
    if missing:
        raise ValueError(f"`{name}` has no targets for output(s) {missing}, which have a loss "
                         f"or metrics: the model's outputs are {names}.")
    return parts


def targets(c: Compiled, y: Any, n: int, name: str) -> Tuple[np.ndarray, List[Tuple[int, ...]]]:
    """The targets of each output side by side (float32 columns; a 1-D
    array takes one), and each array's shape; the layout is fixed by the
    first data and checked on later data."""
    from . import _data
    if y is None:
        raise ValueError(f"Argument `{name}` is missing: the model has {len(c.outs)} outputs "
                         f"{c.outs.struct_names}, each needs its targets.")
    parts = _target_list(c, y, name)
    cols: List[np.ndarray] = []
    shapes: List[Tuple[int, ...]] = []
    for k, part in enumerate(parts):
        if part is None:  # (an output without loss or metrics: no target columns)
            shapes.append((n, 0))
            cols.append(np.zeros((n, 0), np.float32))
            continue
        what = f"{name}[{c.outs.struct_names[k]!r}]"
        arr = _data._array(part, what)
        if arr.ndim == 0 or arr.ndim > 2:
            raise ValueError(f"The targets of output {c.outs.struct_names[k]!r} must be a 1-D "
                             f"or 2-D array (samples[, units]). Received: {what} of shape "
                             f"{arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(f"Data cardinality is ambiguous. Make sure all arrays contain the "
                             f"same number of samples. Received: x sizes: {n}, {what} sizes: "
                             f"{arr.shape[0]}")
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"The targets must be numbers. Received: {what} of dtype "
                             f"{arr.dtype}")
        shapes.append(tuple(arr.shape))
        cols.append(np.asarray(arr, np.float32).reshape(n, -1))
    widths = [a.shape[1] for a in cols]
    if c.true_cols is None:
        c.true_cols, begin = [], 0
        for w in widths:
            c.true_cols.append(slice(begin, begin + w))
            begin += w
        c.true_rank = [len(s) for s in shapes]
    elif widths != [s.stop - s.start for s in c.true_cols]:
        raise ValueError(f"The targets' widths {widths} differ from the first data's "
                         f"{[s.stop - s.start for s in c.true_cols]} (outputs "
                         f"{c.outs.struct_names}): give each output the same form of targets "
                         "(one-hot or labels) throughout.")
    return np.ascontiguousarray(np.concatenate(cols, axis=1)), shapes


def _true(c: Compiled, y: np.ndarray, i: int) -> np.ndarray:
    assert c.true_cols is not None
    t = y[:, c.true_cols[i]]
    return t[:, 0] if c.true_rank[i] == 1 else t


# ------------------------------------------------------------------ losses
def resolve(c: Compiled, shapes: List[Tuple[int, ...]]) -> None:
    """The loss objects (Keras's "crossentropy" picked from the shapes)."""
    for i, arg in enumerate(c.loss_args):
        if arg is None or c.losses[i] is not None:
            continue
        if isinstance(arg, str) and arg.lower() in ("crossentropy", "ce"):
            units = c.outs.units[i]
            ys = shapes[i]
            is_sparse = len(ys) < 2 or (ys[-1] == 1 and units > 1)
            fn = (_losses.binary_crossentropy if units == 1 else
                  _losses.sparse_categorical_crossentropy if is_sparse else
                  _losses.categorical_crossentropy)
            c.losses[i] = _losses.LossFunctionWrapper(fn, name=arg)
        else:
            c.losses[i] = _losses.to_loss_object(arg)


def native_heads(c: Compiled) -> Optional[List[Tuple[int, bool, int, int, int, float, int]]]:
    """The engine's loss heads (``Network.set_heads``: code, from_logits, output
    columns, target column, loss weight, sample-weight column) when every
    output's loss has a native kernel and its targets' width fits it; None
    otherwise (the per-batch Python path then runs the losses)."""
    assert c.true_cols is not None
    heads = []
    for i in c.heads():
        loss = c.losses[i]
        spec = loss._native() if loss is not None else None
        if spec is None:
            return None
        width = c.true_cols[i].stop - c.true_cols[i].start
        if width != (1 if spec[0] == _losses.SCCE else c.outs.units[i]):
            return None
        w = c.weights[i]
        heads.append((spec[0], spec[1], c.outs.cols[i].start, c.outs.units[i],
                      c.true_cols[i].start, 1.0 if w is None else w, i))
    return heads


def loss_and_grad(c: Compiled, one: Any, y: np.ndarray, y_pred: np.ndarray,
                  sw: Optional[np.ndarray]) -> Tuple[float, np.ndarray]:
    """The total loss (each output's, times its weight, summed) and its
    gradient with respect to the joined outputs; ``one(loss, y_true, y_pred,
    sw)`` gives one loss's value and gradient."""
    grad = np.zeros(y_pred.shape, np.float32)
    total = 0.0
    for i in c.heads():
        loss = c.losses[i]
        assert loss is not None
        cols = c.outs.cols[i]
        value, g = one(loss, _true(c, y, i), y_pred[:, cols], _weights(sw, i))
        w = c.weights[i]
        if w is not None:
            value, g = float(value) * w, np.asarray(g) * w
        total += float(value)
        grad[:, cols] = np.asarray(g, np.float32).reshape(y_pred.shape[0], -1)
    return total, grad


def head_value(c: Compiled, i: int, y: np.ndarray, y_pred: np.ndarray,
               sw: Optional[np.ndarray]) -> float:
    """Output i's loss on a batch, unweighted (Keras's ``<output>_loss``)."""
    loss = c.losses[i]
    assert loss is not None
    return float(loss(_true(c, y, i), y_pred[:, c.outs.cols[i]],
                      sample_weight=_weights(sw, i)))


def loss_value(c: Compiled, y: np.ndarray, y_pred: np.ndarray, sw: Optional[np.ndarray]) -> float:
    """The total loss of a batch (each output's times its weight, summed)."""
    total = 0.0
    for i in c.heads():
        v = head_value(c, i, y, y_pred, sw)
        w = c.weights[i]
        total += v * w if w is not None else v
    return total


# ------------------------------------------------------------------ metrics
class OutputLoss(_metrics.Metric):
    """Keras's ``<output>_loss`` tracker: the mean over batches of one output's
    unweighted loss, each batch weighted by its size."""

    _weighted = True  # (gets the sample weights: the loss uses them)

    def __init__(self, c: Compiled, i: int) -> None:
        super().__init__(name=c.loss_name(i))
        self._c, self._i = c, i
        self.total, self.count = 0.0, 0.0

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        v = head_value(self._c, self._i, y_true, y_pred, sample_weight)
        n = np.shape(y_pred)[0]
        self.total += float(np.float32(v)) * n
        self.count += float(n)

    def result(self) -> Any:
        return np.float32(self.total / self.count) if self.count else np.float32(0.0)

    def reset_state(self) -> None:
        self.total, self.count = 0.0, 0.0

    def _native(self) -> None:
        return None


class OutputMetric(_metrics.Metric):
    """A compiled metric of one output: it reads that output's columns of the
    joined targets and predictions; named ``<output>_<metric>`` as Keras."""

    def __init__(self, c: Compiled, i: int, inner: _metrics.Metric, name: str,
                 weighted: bool) -> None:
        super().__init__(name=name)
        self._c, self._i, self.inner = c, i, inner
        if weighted:
            self._weighted = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        p = np.asarray(y_pred)[:, self._c.outs.cols[self._i]]
        t = _true(self._c, np.asarray(y_true), self._i)
        if getattr(self, "_weighted", False):
            self.inner.update_state(t, p, sample_weight=_weights(sample_weight, self._i))
        else:
            self.inner.update_state(t, p)

    def result(self) -> Any:
        return self.inner.result()

    def reset_state(self) -> None:
        self.inner.reset_state()

    def _native(self) -> None:
        return None


def build_metrics(c: Compiled, shapes: List[Tuple[int, ...]]) -> List[_metrics.Metric]:
    """The loss trackers (when more than one output has a loss), then each
    output's metrics, then its weighted metrics, named as Keras's
    CompileMetrics.result names them."""
    out: List[_metrics.Metric] = []
    heads = c.heads()
    if len(heads) > 1:
        out.extend(OutputLoss(c, i) for i in heads)
    prefixes = c.outs.struct_names
    seen: Dict[str, int] = {}
    for weighted, ids in ((False, c.metric_ids), (True, c.weighted_ids)):
        for i, ms in enumerate(ids):
            pred_shape = (shapes[i][0], c.outs.units[i])
            for m in ms:
                inner = _metrics.resolve(m, shapes[i], pred_shape)
                prefix = f"{prefixes[i]}_" if c.outs.named else ""
                name = f"{prefix}{inner.name}"
                if name not in seen:
                    seen[name] = 1
                elif not weighted:
                    seen[name] += 1
                    name = f"{name}_{seen[name] - 1}"
                else:
                    name = f"{prefix}weighted_{inner.name}"
                    if name not in seen:
                        seen[name] = 1
                    else:
                        seen[name] += 1
                        name = f"{name}_{seen[name] - 1}"
                out.append(OutputMetric(c, i, inner, name, weighted))
    return out


def ordered(c: Compiled, logs: Dict[str, Any]) -> List[Any]:
    """evaluate's list, in Keras's order: the loss, each output's loss, then
    the other entries sorted by name (Keras's _flatten_metrics_in_order)."""
    first = ["loss"] + ([c.loss_name(i) for i in c.heads()]
                        if len(c.heads()) > 1 else [])
    first = [k for k in first if k in logs]
    return [logs[k] for k in first] + [logs[k] for k in sorted(logs) if k not in first]


_NO_TARGETS = np.empty(0, np.float32)  # (_data.sample_weights reads them for class weights only)


def sample_weights(outs: Outputs, sample_weight: Any, class_weight: Any, n: int
                   ) -> Optional[np.ndarray]:
    """fit's / evaluate's sample weights for several outputs, with Keras's
    checks: one array for all the outputs (None when not given), or one per
    output (a list, or a dict keyed by the outputs' names) as the columns of
    an (n, outputs) array; each output's loss and weighted metrics use its
    column (``_weights``)."""
    from . import _data
    if class_weight is not None:
        raise ValueError("`class_weight` is only supported for Models with a single output.")
    if isinstance(sample_weight, (list, tuple, dict)):
        parts = _as_list(sample_weight, outs, "sample_weight", "weights")
        cols: List[np.ndarray] = []
        for p in parts:
            w = None if p is None else _data.sample_weights(p, None, _NO_TARGETS, n)
            cols.append(np.ones(n, np.float32) if w is None else w)
        return np.ascontiguousarray(np.stack(cols, axis=1))
    if sample_weight is not None:
        shape = np.shape(sample_weight)
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise ValueError(
                "For a model with multiple outputs, when providing a single `sample_weight` "
                "array, it should only have one scalar score per sample (i.e. shape "
                "`(num_samples,)`). If you want to use non-scalar sample weights, pass a "
                "`sample_weight` argument with one array per model output.")
    return _data.sample_weights(sample_weight, None, _NO_TARGETS, n)


def _weights(sw: Optional[np.ndarray], i: int) -> Optional[np.ndarray]:
    """Output i's sample weights (a column of per-output weights)."""
    return sw[:, i] if sw is not None and sw.ndim == 2 else sw

