"""``model.summary()``: Keras 3's table, drawn with the same box characters."""
from __future__ import annotations

import shutil
from typing import Any, List, Tuple

import numpy as np


def readable_memory_size(size: float) -> str:
    """Keras's readable_memory_size: 1.55 MB, 15.31 KB, 0.00 B."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _row(cells: List[str], widths: List[int], sep: str, right: Tuple[Any, ...]) -> str:
    parts = []
    for text, w, r in zip(cells, widths, right):  # r: right, left, or None: centered
        parts.append(" " + (text.center(w) if r is None else text.rjust(w) if r
                            else text.ljust(w)) + " ")
    return sep + sep.join(parts) + sep


def _rule(widths: List[int], left: str, mid: str, right: str, fill: str) -> str:
    return left + mid.join(fill * (w + 2) for w in widths) + right


def _wrap(text: str, width: int) -> List[str]:
    """Rich's cell wrapping as Keras's table shows it: at spaces, a word
    longer than the cell cut with an ellipsis."""
    lines: List[str] = []
    cur = ""
    indent = text[:len(text) - len(text.lstrip(" "))]  # (a nested row's "   └ ")
    text = text[len(indent):]
    width = max(1, width - len(indent))
    for word in text.split(" "):
        if len(word) > width:
            word = word[:width - 1] + "…"
        if cur and len(cur) + 1 + len(word) <= width:
            cur += " " + word
        else:
            if cur:
                lines.append(cur)
            cur = word
    lines.append(cur)
    lines[0] = indent + lines[0]
    return lines


def column_widths(line_length: Any = None, positions: Any = None,
                  show_trainable: bool = False, graph: bool = False) -> List[int]:
    """The text width of each column, as Keras sizes its rich table: the
    line is min(88, terminal columns - 4) unless given (108 for a graph's
    four columns; 12 more with the Trainable column), split at ``positions``
    (fractions; with the Trainable column scaled by 0.9 and 1.0 appended),
    less each cell's share of the padding and borders (rich's even
    reduction)."""
    if line_length is None:
        line_length = min((108 if graph else 88) + (12 if show_trainable else 0),
                          shutil.get_terminal_size().columns - 4)
    positions = list(positions or ([0.3, 0.56, 0.74, 1.0] if graph else [0.45, 0.80, 1.0]))
    if len(positions) != (4 if graph else 3):
        raise ValueError(f"`positions` needs {4 if graph else 3} values for a "
                         f"{'functional' if graph else 'Sequential'} summary. Received: "
                         f"positions={positions}")
    if show_trainable:
        positions = [p * 0.90 for p in positions] + [1.0]
    widths, current = [], 0
    for pos in positions:
        w = int(pos * line_length) - current
        if w < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(w)
        current += w
    # (rich: each column's width plus its padding of 2, reduced evenly to fit
    # the borders and padding, 3n + 1, into the line; halves round to even)
    excess, left, shave = 3 * len(widths) + 1, len(widths), []
    for _ in widths:
        d = round(excess / left)
        shave.append(d)
        excess -= d
        left -= 1
    return [max(1, w - d) for w, d in zip(widths, shave)]


def _param_count(layer: Any) -> int:
    """A row's parameter count: a layer's, or a nested model's (all its layers')."""
    if hasattr(layer, "_layers"):
        return sum(int(np.prod(w.shape)) for w in layer.weights)
    return int(layer.count_params())


def summary_text(model: Any, line_length: Any = None, positions: Any = None,
                 show_trainable: bool = False, expand_nested: bool = False) -> str:
    rows = []
    traced = getattr(model, "_graph", None)
    # (a subclassed model's graph: Keras lists its layers without connections;
    # so does a graph that is one chain, e.g. of layers and x * 0.5 ops, its
    # ops included)
    chain = traced is not None and model._sequential_like()
    graph = traced is not None and not model._subclassed() and not chain
    outs = {id(c[0]): tuple(c[2].shape) for c in traced} if traced is not None else {}
    if graph:
        for layer, out_shape, connected in model._graph_rows():
            kind = getattr(layer, "_class_name", "") or type(layer).__name__  # (an op: "Add")
            row = [f"{layer.name} ({kind})", str(tuple(out_shape)),
                   f"{_param_count(layer):,}", connected]
            if show_trainable:
                row.append(("Y" if layer.trainable and model.trainable else "N")
                           if layer.weights else "-")
            rows.append(tuple(row))
    def add_rows(layers: Any, shape: Any, level: int) -> None:
        # (expand_nested: a nested model's layers under its row, as Keras's
        # "   └ " prefix per level)
        prefix = "   " * level + "└ " if level else ""
        for layer in layers:
            before = shape
            if shape is not None and model.built:
                if type(layer).__name__ == "InputLayer":
                    shape = tuple(layer._batch_input_shape)
                else:
                    shape = (outs.get(id(layer)) if level == 0 else None) or \
                        layer.compute_output_shape(shape)
                out = str(tuple(shape)) if len(shape) > 1 else f"({shape[0]},)"
                params = f"{_param_count(layer):,}"
            else:
                out, params = "?", "0 (unbuilt)"
                if layer.built and layer.weights:
                    params = f"{_param_count(layer):,}"
            kind = getattr(layer, "_class_name", "") or type(layer).__name__  # (an op)
            row = [f"{prefix}{layer.name} ({kind})", out, params]
            if show_trainable:  # Y / N for a layer with weights, - without
                row.append(("Y" if layer.trainable and model.trainable else "N")
                           if layer.weights else "-")
            rows.append(tuple(row))
            if expand_nested and hasattr(layer, "_layers") and layer.layers:
                add_rows(layer.layers, before, level + 1)

    add_rows([] if graph else [c[0] for c in model._graph_order] if chain else model.layers,
             model._input_shape, 0)
    widths = column_widths(line_length, positions, show_trainable, graph)
    right = (False, False, True) + ((False,) if graph else ()) + (None,)
    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if graph else []) + (
        [_wrap("Trainable", widths[-1])[0]] if show_trainable else [])
    lines = [f'Model: "{model.name}"',
             _rule(widths, "┏", "┳", "┓", "━"),
             _row(header, widths, "┃", right),
             _rule(widths, "┡", "╇", "┩", "━")]
    for i, r in enumerate(rows):
        cells = [_wrap(c, w) for c, w in zip(r, widths)]
        for k in range(max(len(c) for c in cells)):
            lines.append(_row([c[k] if k < len(c) else "" for c in cells], widths, "│", right))
        if i + 1 < len(rows):
            lines.append(_rule(widths, "├", "┼", "┤", "─"))
    lines.append(_rule(widths, "└", "┴", "┘", "─"))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    opt_params = 0
    net = getattr(model, "_net", None)
    if net is not None and model.optimizer is not None and \
            model.optimizer._raw_iterations() > 0:
        # iterations and learning_rate, then the slot variables of trainable weights
        slots = net.optimizer_state.size // max(net.num_params, 1)
        slots += 1 if getattr(model.optimizer, "use_ema", False) else 0  # (the averages)
        slots += 1 if getattr(model.optimizer, "gradient_accumulation_steps", None) else 0
        opt_params = 2 + slots * trainable
    total = trainable + non_trainable + opt_params
    lines.append(f" Total params: {total:,} ({readable_memory_size(total * 4)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_memory_size(trainable * 4)})")
    lines.append(f" Non-trainable params: {non_trainable:,} "
                 f"({readable_memory_size(non_trainable * 4)})")
    if opt_params:
        lines.append(f" Optimizer params: {opt_params:,} ({readable_memory_size(opt_params * 4)})")
    return "\n".join(lines) + "\n"
