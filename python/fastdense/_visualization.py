"""``utils.model_to_dot`` and ``utils.plot_model``: a model's graph as Graphviz
(through pydot, an optional dependency), laid out and labelled as Keras draws it."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["model_to_dot", "plot_model"]


def _pydot() -> Any:
    try:
        import pydot  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    return pydot


def check_graphviz() -> bool:
    """Whether pydot can run Graphviz's ``dot`` program."""
    pydot = _pydot()
    if pydot is None:
        return False
    try:
        pydot.Dot.create(pydot.Dot())
        return True
    except (OSError, getattr(pydot, "PydotException", OSError)):
        return False


def _activation_name(layer: Any) -> str:
    act = layer.activation
    if hasattr(act, "name"):
        return str(act.name)
    if hasattr(act, "__name__"):
        return str(act.__name__)
    return str(act)


def _shapes(layer: Any) -> Tuple[Any, Any]:
    try:
        inp = layer.input
        shape_in = [tuple(t.shape) for t in inp] if isinstance(inp, (list, tuple)) \
            else tuple(inp.shape)
        out = layer.output
        shape_out = [tuple(t.shape) for t in out] if isinstance(out, (list, tuple)) \
            else tuple(out.shape)
        return shape_in, shape_out
    except (AttributeError, ValueError):
        return None, None


def _label(layer: Any, show_layer_names: bool, show_layer_activations: bool, show_dtype: bool,
           show_shapes: bool, show_trainable: bool) -> str:
    """The node's HTML-like label: a black title row (name and class, or
    class), an activation row, then the shape / dtype / trainable cells."""
    cls = type(layer).__name__
    span = max(1, int(show_dtype) + int(show_trainable) + (2 if show_shapes else 0))
    html = '<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
    title = f"<b>{layer.name}</b> ({cls})" if show_layer_names else f"<b>{cls}</b>"
    html += (f'<tr><td colspan="{span}" bgcolor="black"><font point-size="16" color="white">'
             f"{title}</font></td></tr>")
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        html += (f'<tr><td bgcolor="white" colspan="{span}"><font point-size="14">Activation: '
                 f"<b>{_activation_name(layer)}</b></font></td></tr>")
    cols: List[str] = []
    if show_shapes:
        shape_in, shape_out = _shapes(layer)

        def fmt(shape: Any) -> str:
            return "?" if shape is None else f"{shape}"
        if cls != "InputLayer":
            cols.append('<td bgcolor="white"><font point-size="14">Input shape: '
                        f"<b>{fmt(shape_in)}</b></font></td>")
        cols.append('<td bgcolor="white"><font point-size="14">Output shape: '
                    f"<b>{fmt(shape_out)}</b></font></td>")
    if show_dtype:
        dtype = None
        try:
            dtype = layer.output.dtype
        except (AttributeError, ValueError):
            pass
        cols.append('<td bgcolor="white"><font point-size="14">Output dtype: '
                    f"<b>{dtype or '?'}</b></font></td>")
    if show_trainable and getattr(layer, "weights", None):
        if layer.trainable:
            cols.append('<td bgcolor="forestgreen"><font point-size="14" color="white">'
                        "<b>Trainable</b></font></td>")
        else:
            cols.append('<td bgcolor="firebrick"><font point-size="14" color="white">'
                        "<b>Non-trainable</b></font></td>")
    if cols:
        html += f"<tr>{''.join(cols)}</tr>"
    return html + "</table>>"


def _node(pydot: Any, layer: Any, flags: Dict[str, bool]) -> Any:
    node = pydot.Node(str(id(layer)), label=_label(layer, **flags))
    node.set("fontname", "Helvetica")
    node.set("border", "0")
    node.set("margin", "0")
    return node


def _edge(pydot: Any, dot: Any, src: Any, dst: Any) -> None:
    a, b = str(id(src)), str(id(dst))
    if not dot.get_edge(a, b):
        edge = pydot.Edge(a, b)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _is_model(obj: Any) -> bool:
    from .models import Model
    return isinstance(obj, Model)


def _calls(model: Any) -> Tuple[List[Any], List[Tuple[Any, Any]]]:
    """(layers to draw, (source, destination) edges): a graph's operations
    and connections, or a chain's layers one after another."""
    order = getattr(model, "_graph_order", None)
    if order:
        nodes: List[Any] = []
        seen = set()
        edges: List[Tuple[Any, Any]] = []
        for layer, srcs, _out in order:
            if id(layer) not in seen:
                seen.add(id(layer))
                nodes.append(layer)
            for t in srcs:
                hist = t._history
                src = hist[0] if hist is not None else getattr(t, "_layer", None)
                if src is not None:
                    edges.append((src, layer))
        return nodes, edges
    layers = list(model.layers)
    return layers, list(zip(layers, layers[1:]))


def model_to_dot(model: Any, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB", expand_nested: bool = False,
                 dpi: int = 200, subgraph: bool = False, show_layer_activations: bool = False,
                 show_trainable: bool = False, splines: str = "ortho", **kwargs: Any) -> Any:
    """The model as a ``pydot.Dot`` (a ``pydot.Cluster`` with ``subgraph``):
    a node per layer, labelled as Keras labels it, an edge per connection;
    ``expand_nested`` draws a nested model's layers in a dashed cluster.
    Needs pydot (``pip install pydot``)."""
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    pydot = _pydot()
    if pydot is None:
        raise ImportError("You must install pydot (`pip install pydot`) for model_to_dot to "
                          "work.")
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name)
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    flags = {"show_layer_names": show_layer_names,
             "show_layer_activations": show_layer_activations, "show_dtype": show_dtype,
             "show_shapes": show_shapes, "show_trainable": show_trainable}
    nodes, edges = _calls(model)
    # (an expanded nested model: its edges enter at its first layer, leave at its last)
    entry: Dict[int, Any] = {}
    leave: Dict[int, Any] = {}
    for layer in nodes:
        if expand_nested and _is_model(layer):
            dot.add_subgraph(model_to_dot(layer, show_shapes, show_dtype, show_layer_names,
                                          rankdir, expand_nested, subgraph=True,
                                          show_layer_activations=show_layer_activations,
                                          show_trainable=show_trainable))
            inner, _ = _calls(layer)
            entry[id(layer)], leave[id(layer)] = inner[0], inner[-1]
        else:
            dot.add_node(_node(pydot, layer, flags))
    for src, dst in edges:
        _edge(pydot, dot, leave.get(id(src), src), entry.get(id(dst), dst))
    return dot


def plot_model(model: Any, to_file: Any = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = False, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False, splines: str = "ortho", **kwargs: Any) -> Any:
    """Draws the model (``model_to_dot``) into ``to_file`` (its extension the
    format: png, pdf, svg, ...; none: png); in IPython, returns the image.
    Needs pydot and Graphviz; without them it raises ImportError, or in a
    notebook prints why and returns, as Keras."""
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    in_notebook = "IPython.core.magics.namespace" in sys.modules
    for ok, message in ((_pydot() is not None,
                         "You must install pydot (`pip install pydot`) for `plot_model` to "
                         "work."),
                        (check_graphviz(),
                         "You must install graphviz (see instructions at "
                         "https://graphviz.gitlab.io/download/) for `plot_model` to work.")):
        if not ok:
            if in_notebook:
                print(message)
                return None
            raise ImportError(message)
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, splines=splines)
    path = os.fspath(to_file)
    extension = os.path.splitext(path)[1][1:] or "png"
    dot.write(path, format=extension)
    if extension != "pdf":
        try:
            from IPython import display  # type: ignore[import-not-found, unused-ignore]
            return display.Image(filename=path)
        except ImportError:
            pass
    return None
