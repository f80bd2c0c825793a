"""utils.model_to_dot / plot_model: Keras's errors without pydot or Graphviz,
the graph's nodes, labels and edges with pydot, and side by side with
keras.utils.model_to_dot where Keras and pydot are installed."""

import os
import re

import pytest

import fastdense as fd


def seq(lib):
    return lib.Sequential([lib.Input((784,)), lib.layers.Dense(512, activation="relu"),
                           lib.layers.Dropout(0.2), lib.layers.Dense(10, activation="softmax")])


def func(lib):
    a, b = lib.Input((8,), name="a"), lib.Input((4,), name="b")
    h = lib.layers.Dense(16, activation="relu", name="h")(a)
    g = lib.layers.Dense(16, name="g")(b)
    s = lib.layers.Add(name="add")([h, g])
    c = lib.layers.Concatenate(name="cat")([s, h])
    m = lib.Model([a, b], lib.layers.Dense(1, activation="sigmoid", name="out")(c))
    m.layers[-1].trainable = False
    return m


def nested(lib):
    inner = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, name="i1"),
                            lib.layers.Dense(2, name="i2")], name="inner")
    x = lib.Input((4,), name="x")
    return lib.Model(x, lib.layers.Dense(1, name="o")(inner(x)))


OPTIONS = [{}, dict(show_shapes=True, show_dtype=True, show_layer_activations=True,
                    show_trainable=True),
           dict(show_layer_names=False, rankdir="LR"), dict(expand_nested=True, show_shapes=True)]


def _nodes(dot):
    out = {n.get_name(): n for n in dot.get_nodes() if n.get_name() not in ("node", "graph", "edge")}
    for sub in dot.get_subgraphs():
        out.update(_nodes(sub))
    return out


def summary(dot):
    """The drawing as data: (title, label) per node, edges by title,
    subgraphs, graph attributes (node ids, which are id()s, left out)."""
    nodes = _nodes(dot)
    title = {}
    for k, n in nodes.items():
        m = re.search(r"<b>([^<]*)</b>", n.get("label") or "")
        title[k] = m.group(1) if m else k
    return (sorted((title[k], n.get("label")) for k, n in nodes.items()),
            sorted((title.get(e.get_source()), title.get(e.get_destination()))
                   for e in dot.get_edges()),
            [summary(s) for s in dot.get_subgraphs()], sorted(dot.get_attributes().items()))


def test_without_pydot(monkeypatch):
    import fastdense._visualization as vis
    monkeypatch.setattr(vis, "_pydot", lambda: None)
    m = seq(fd)
    with pytest.raises(ImportError, match=r"You must install pydot \(`pip install pydot`\) for "
                                          "model_to_dot to work."):
        fd.utils.model_to_dot(m)
    with pytest.raises(ImportError, match="for `plot_model` to work"):
        fd.utils.plot_model(m)
    with pytest.raises(ValueError, match="This model has not yet been built"):
        fd.utils.model_to_dot(fd.Sequential([fd.layers.Dense(2)]))


def test_graph_with_pydot(tmp_path):
    pytest.importorskip("pydot")
    nodes, edges, subs, attrs = summary(fd.utils.model_to_dot(func(fd), show_shapes=True,
                                                              show_trainable=True))
    assert [n for n, _ in nodes] == ["a", "add", "b", "cat", "g", "h", "out"]
    assert edges == sorted([("a", "h"), ("b", "g"), ("h", "add"), ("g", "add"), ("add", "cat"),
                            ("h", "cat"), ("cat", "out")])
    labels = dict(nodes)
    assert "Output shape: <b>(None, 32)</b>" in labels["cat"]
    assert "Input shape: <b>[(None, 16), (None, 16)]</b>" in labels["add"]
    assert "Non-trainable" in labels["out"] and "Trainable" in labels["h"]
    assert ("rankdir", "TB") in attrs and not subs
    _, edges, subs, _ = summary(fd.utils.model_to_dot(nested(fd), expand_nested=True))
    assert len(subs) == 1 and ("x", "i1") in edges and ("i2", "o") in edges
    _, edges, _, _ = summary(fd.utils.model_to_dot(seq(fd)))
    assert len(edges) == 2
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        fd.utils.model_to_dot(seq(fd), colour=True)
    from fastdense._visualization import check_graphviz
    if check_graphviz():
        fd.utils.plot_model(seq(fd), str(tmp_path / "m.png"), show_shapes=True)
        assert (tmp_path / "m.png").stat().st_size > 0
    else:
        with pytest.raises(ImportError, match="You must install graphviz"):
            fd.utils.plot_model(seq(fd), str(tmp_path / "m.png"))


@pytest.mark.parametrize("build", [seq, func, nested])
@pytest.mark.parametrize("kw", OPTIONS)
def test_side_by_side_with_keras(build, kw):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    pytest.importorskip("pydot")
    keras.backend.clear_session()
    fd.backend.clear_session()
    assert summary(fd.utils.model_to_dot(build(fd), **kw)) == \
        summary(keras.utils.model_to_dot(build(keras), **kw))
