"""Functional models with branches: Keras's merge layers (Add, Subtract,
Multiply, Average, Maximum, Minimum, Concatenate) and layers reading any
earlier output, run natively as a graph of engine stages (cpp/merge.cpp).
The merge maps against numpy, float64 finite-difference gradients through
every mode and through branches that meet again, the same bits at any thread
count; then the Keras API (layer order, summary, configs, files, errors)
and, where Keras is installed, the same training and files side by side."""
import json
import os

import numpy as np
import pytest

import fastdense as fd
from _engine_checks import assert_grads_match, at_thread_counts, one_step, stage_net
from _keras_side import assert_files_load
from fastdense import layers

# The engine's merge modes and their numpy references (Keras's left-to-right folds)
MODES = {
    0: lambda xs: _fold(np.add, xs),
    1: lambda xs: xs[0] - xs[1],
    2: lambda xs: _fold(np.multiply, xs),
    3: lambda xs: _fold(np.add, xs) / len(xs),
    4: lambda xs: _fold(np.maximum, xs),
    5: lambda xs: _fold(np.minimum, xs),
    6: lambda xs: np.concatenate(xs, axis=1),
}
CLASSES = {0: layers.Add, 1: layers.Subtract, 2: layers.Multiply, 3: layers.Average,
           4: layers.Maximum, 5: layers.Minimum, 6: layers.Concatenate}


def _fold(op, xs):
    out = xs[0]
    for x in xs[1:]:
        out = op(out, x)
    return out


def _relu(z):
    return np.maximum(z, 0)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _graph(mode, n_in):
    """Stages: branch i = Dense(4 or 2+i) on the input (relu / sigmoid in
    turn), the merge of the n_in branches, then Dense(3) on the merge."""
    stages = []
    for i in range(n_in):
        stages.append({"kind": 0, "units": 2 + i if mode == 6 else 4,
                       "activation": 1 if i % 2 == 0 else 2, "inputs": [-1]})
    stages.append({"kind": 5, "merge": mode, "inputs": list(range(n_in))})
    stages.append({"kind": 0, "units": 3})
    return stages


def _graph_ref(q, x, mode, n_in):
    x = np.asarray(x, np.float64)
    hs = [(_relu if i % 2 == 0 else _sigmoid)(x @ q[2 * i] + q[2 * i + 1])
          for i in range(n_in)]
    return MODES[mode](hs) @ q[2 * n_in] + q[2 * n_in + 1]


def _randomize(net, rng, scale=0.5):
    net.params[:] = (rng.standard_normal(net.params.size) * scale).astype(np.float32)


def _vars(net):
    p = net.params
    return [p[off:off + int(np.prod(shape))].reshape(shape).astype(np.float64)
            for _, off, shape, _ in net.variables()]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_merge_forward_matches_numpy(rng, mode):
    n_in = 2 if mode == 1 else 3
    net = stage_net(5, _graph(mode, n_in))
    _randomize(net, rng)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x, 7), _graph_ref(_vars(net), x, mode, n_in),
                               rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_gradients_match_float64_finite_differences(rng, mode):
    n_in = 2 if mode == 1 else 3
    net = stage_net(5, _graph(mode, n_in))
    _randomize(net, rng)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    t = rng.standard_normal((6, 3)).astype(np.float32)
    one_step(net, x, t)
    assert_grads_match(net, lambda q: np.mean(np.sum((_graph_ref(q, x, mode, n_in) - t) ** 2,
                                                     axis=1) / 3))


def test_ties_split_the_gradient_as_jax_does():
    # max(a, a): each side gets half (lax.max); min likewise; the sum is the whole
    for mode in (4, 5):
        stages = [{"kind": 0, "units": 2, "inputs": [-1]},
                  {"kind": 5, "merge": mode, "inputs": [0, 0]},
                  {"kind": 0, "units": 1}]
        net = stage_net(3, stages)
        net.params[:] = np.arange(net.params.size, dtype=np.float32) / 10
        x = np.ones((2, 3), np.float32)
        ref = stage_net(3, [{"kind": 0, "units": 2}, {"kind": 0, "units": 1}])
        ref.params[:] = net.params
        t = np.zeros((2, 1), np.float32)
        one_step(net, x, t)
        one_step(ref, x, t)
        np.testing.assert_allclose(net.grads, ref.grads, rtol=1e-6)


def test_residual_and_skip_gradients(rng):
    # x -> d0 -> d1; add(x-width d1, x) -> d2 ; concat(d0, add) -> d3: a stage read
    # by several later ones accumulates all their gradients
    stages = [{"kind": 0, "units": 4, "activation": 1},
              {"kind": 0, "units": 5, "activation": 3},
              {"kind": 5, "merge": 0, "inputs": [1, -1]},
              {"kind": 1, "inputs": [2]},
              {"kind": 5, "merge": 6, "inputs": [0, 3, 2]},
              {"kind": 2, "activation": 1, "dropout": 0.0},
              {"kind": 0, "units": 2}]
    net = stage_net(5, stages)
    _randomize(net, rng)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    t = rng.standard_normal((8, 2)).astype(np.float32)

    def ref(q):
        xx = x.astype(np.float64)
        h0 = _relu(xx @ q[0] + q[1])
        h1 = np.tanh(h0 @ q[2] + q[3])
        s = h1 + xx
        mu, var = s.mean(0), s.var(0)
        bn = (s - mu) / np.sqrt(var + 1e-3) * q[4] + q[5]
        h = _relu(np.concatenate([h0, bn, s], axis=1))
        return np.mean(np.sum((h @ q[8] + q[9] - t) ** 2, axis=1) / 2)

    one_step(net, x, t)
    assert_grads_match(net, ref)


def test_same_bits_at_any_thread_count(rng):
    x = rng.standard_normal((300, 40)).astype(np.float32)
    t = rng.standard_normal((300, 3)).astype(np.float32)

    def run():
        net = stage_net(40, [{"kind": 0, "units": 64, "activation": 1},
                             {"kind": 0, "units": 64, "activation": 1, "inputs": [-1]},
                             {"kind": 5, "merge": 0, "inputs": [0, 1]},
                             {"kind": 5, "merge": 6, "inputs": [-1, 2]},
                             {"kind": 0, "units": 3}])
        _randomize(net, np.random.default_rng(3), 0.1)
        spec = fd._core.OptimizerSpec()
        spec.learning_rate = 0.01
        net.set_optimizer(spec)
        for _ in range(3):
            one_step(net, x, t)
        return net.params.copy()

    a, b, c = at_thread_counts(run)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_bad_stages_raise():
    with pytest.raises(ValueError, match="earlier stages"):
        fd._core.Network(4, [{"kind": 0, "units": 2, "inputs": [0]}])
    with pytest.raises(ValueError, match="two or more"):
        fd._core.Network(4, [{"kind": 0, "units": 2}, {"kind": 5, "inputs": [0]}])
    with pytest.raises(ValueError, match="widths \\[2, 3\\]"):
        fd._core.Network(4, [{"kind": 0, "units": 2}, {"kind": 0, "units": 3, "inputs": [-1]},
                             {"kind": 5, "merge": 0, "inputs": [0, 1]}])
    with pytest.raises(ValueError, match="Subtract"):
        fd._core.Network(4, [{"kind": 5, "merge": 1, "inputs": [-1, -1, -1]}])
    with pytest.raises(ValueError, match="unknown `merge`"):
        fd._core.Network(4, [{"kind": 5, "merge": 9, "inputs": [-1, -1]}])


# ---------------------------------------------------------------------------- the Keras API
def _wide_deep(lib=fd, merge="add"):
    L = lib.layers
    inp = lib.Input((8,))
    a = L.Dense(4, activation="relu")(inp)
    b = L.Dense(4, activation="tanh")(inp)
    c = getattr(L, merge)([a, b])
    d = L.Dense(6, activation="relu")(c)
    d = L.Dropout(0.0)(d)
    e = L.concatenate([inp, d])
    out = L.Dense(3, activation="softmax")(e)
    return lib.Model(inp, out)


def test_layer_order_summary_and_shapes():
    m = _wide_deep()
    assert [l.name for l in m.layers] == ["input_layer", "dense", "dense_1", "add", "dense_2",
                                          "dropout", "concatenate", "dense_3"]
    assert m.output_shape == (None, 3) and m.count_params() == 36 * 2 + 30 + 15 * 3
    lines = []
    m.summary(print_fn=lines.append, line_length=76)
    text = lines[0]
    assert "┃ Connected to" in text
    assert "│ add (Add)           │ (None, 4)         │          0 │ dense[0][0],      │" in text
    assert "│ concatenate         │ (None, 14)        │          0 │ input_layer[0][0… │" in text


def test_trains_and_predicts_as_numpy_computes(rng):
    m = _wide_deep(merge="multiply")
    x = rng.random((64, 8), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    w = m.get_weights()
    a = np.maximum(x @ w[0] + w[1], 0)
    b = np.tanh(x @ w[2] + w[3])
    d = np.maximum((a * b) @ w[4] + w[5], 0)
    z = np.concatenate([x, d], axis=1) @ w[6] + w[7]
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(m.predict(x, verbose=0), p / p.sum(1, keepdims=True),
                               rtol=1e-4, atol=1e-6)


def test_merge_layers_on_arrays_and_their_errors():
    a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)
    np.testing.assert_array_equal(layers.Add()([a, b]), a + b)
    np.testing.assert_array_equal(layers.subtract([a, b]), a - b)
    np.testing.assert_array_equal(layers.Average()([a, b]), (a + b) / 2)
    np.testing.assert_array_equal(layers.concatenate([a, b]), np.concatenate([a, b], 1))
    inp = fd.Input((4,))
    with pytest.raises(ValueError, match="incompatible shapes. Received shapes \\(4,\\) and "
                                         "\\(6,\\)"):
        layers.Add()([inp, layers.Dense(6)(inp)])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([inp, inp, inp])
    with pytest.raises(ValueError, match="should be called on a list of inputs"):
        layers.Add()(inp)
    shared = layers.BatchNormalization()  # (Dense applied twice: test_repeated_calls.py)
    x = shared(inp)
    with pytest.raises(NotImplementedError, match="applied more than once"):
        fd.Model(inp, layers.add([x, shared(x)]))
    with pytest.raises(NotImplementedError, match="on the model's input only"):
        fd.Model(inp, layers.add([layers.Rescaling(2.0)(x), x]))
    y = layers.Dense(4)(inp)
    with pytest.raises(NotImplementedError, match="Concatenate 'concatenate_1' with axis=0"):
        fd.Model(inp, layers.Dense(1)(layers.Concatenate(axis=0)([y, layers.Dense(4)(inp)])))


def test_config_clone_copy_and_files(tmp_path, rng):
    import copy
    pytest.importorskip("h5py")
    m = _wide_deep(merge="maximum")
    x = rng.random((32, 8), dtype=np.float32)
    cfg = json.loads(json.dumps(m.get_config()))
    add_entry = cfg["layers"][3]
    assert add_entry["class_name"] == "Maximum"
    history = [a["config"]["keras_history"][0] for a in add_entry["inbound_nodes"][0]["args"][0]]
    assert history == ["dense", "dense_1"]
    assert add_entry["build_config"] == {"input_shape": [[None, 4], [None, 4]]}
    again = fd.Model.from_config(cfg)
    assert [l.name for l in again.layers] == [l.name for l in m.layers]
    twin = copy.deepcopy(m)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), m.predict(x, verbose=0))
    assert fd.models.clone_model(m).count_params() == m.count_params()
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, rng.integers(0, 3, 32), epochs=1, verbose=0)
    for ext in (".keras", ".h5"):
        path = str(tmp_path / f"g{ext}")
        m.save(path)
        back = fd.models.load_model(path)
        np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_nested_chain_in_a_graph(rng):
    block = fd.Sequential([fd.Input((6,)), layers.Dense(6, activation="relu"),
                           layers.Dense(6)], name="block")
    inp = fd.Input((6,))
    out = layers.Dense(2)(layers.add([inp, block(inp)]))  # a residual block
    m = fd.Model(inp, out)
    assert [l.name for l in m.layers] == ["input_layer_1", "block", "add", "dense_2"]
    x = rng.random((16, 6), dtype=np.float32)
    w = m.get_weights()
    h = np.maximum(x @ w[0] + w[1], 0) @ w[2] + w[3]
    np.testing.assert_allclose(m.predict(x, verbose=0), (x + h) @ w[4] + w[5], rtol=1e-5,
                               atol=1e-6)
    m.compile("sgd", "mse")
    m.fit(x, x[:, :2], epochs=2, verbose=0)
    np.testing.assert_allclose(block.predict(x, verbose=0),
                               np.maximum(x @ block.layers[0].kernel.numpy()
                                          + block.layers[0].bias.numpy(), 0)
                               @ block.layers[1].kernel.numpy() + block.layers[1].bias.numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge", ["add", "subtract", "multiply", "average", "maximum",
                                   "minimum"])
def test_side_by_side_with_keras(tmp_path, rng, merge):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    km = _wide_deep(keras, merge)
    fd.backend.clear_session()
    fm = _wide_deep(fd, merge)
    fm.set_weights(km.get_weights())
    assert [l.name for l in fm.layers] == [l.name for l in km.layers]
    assert json.loads(json.dumps(fm.get_config())) == json.loads(json.dumps(km.get_config()))
    x = rng.random((96, 8), dtype=np.float32)
    y = rng.integers(0, 3, 96)
    for m in (km, fm):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    args = dict(epochs=3, batch_size=16, verbose=0, shuffle=False, validation_split=0.25)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, atol=1e-7, err_msg=key)
    assert_files_load([(m, reader, ext) for m, reader in ((km, fd), (fm, keras))
                       for ext in (".keras", ".h5")], x, tmp_path, atol=2e-6, compile_h5=False)


# ---------------------------------------------------------------------------- several inputs
def test_slice_stage_gradients(rng):
    # two inputs side by side; a slice of a stage's output feeding a merge
    stages = [{"kind": 6, "units": 3, "begin": 0, "inputs": [-1]},
              {"kind": 6, "units": 4, "begin": 3, "inputs": [-1]},
              {"kind": 0, "units": 5, "activation": 1, "inputs": [1]},
              {"kind": 6, "units": 2, "begin": 1, "inputs": [2]},
              {"kind": 5, "merge": 6, "inputs": [0, 3, 2]},
              {"kind": 0, "units": 2}]
    net = stage_net(7, stages)
    _randomize(net, rng)
    x = rng.standard_normal((6, 7)).astype(np.float32)
    t = rng.standard_normal((6, 2)).astype(np.float32)

    def ref(q, out=False):
        xx = x.astype(np.float64)
        h = _relu(xx[:, 3:7] @ q[0] + q[1])
        y = np.concatenate([xx[:, :3], h[:, 1:3], h], axis=1) @ q[2] + q[3]
        return y if out else np.mean(np.sum((y - t) ** 2, axis=1) / 2)

    np.testing.assert_allclose(net.predict(x, 6), ref(_vars(net), True), rtol=2e-5, atol=2e-6)
    one_step(net, x, t)
    assert_grads_match(net, ref)
    with pytest.raises(ValueError, match="a Slice takes `units` > 0 columns"):
        fd._core.Network(4, [{"kind": 6, "units": 3, "begin": 2}])


def _two_inputs(lib=fd, xw=None, xd=None, struct="list"):
    """Keras's wide & deep model with two inputs, each normalized."""
    L = lib.layers
    iw, idp = lib.Input(shape=[5], name="wide"), lib.Input(shape=[6], name="deep")
    nw, nd = L.Normalization(), L.Normalization()
    nw.adapt(xw)
    nd.adapt(xd)
    h = L.Dense(8, activation="relu")(nd(idp))
    h = L.Dense(8, activation="relu")(h)
    out = L.Dense(1)(L.concatenate([nw(iw), h]))
    ins = {"wide": iw, "deep": idp} if struct == "dict" else [iw, idp]
    return lib.Model(inputs=ins, outputs=[out])


def test_two_inputs_train_and_predict(rng):
    xw = rng.random((120, 5), dtype=np.float32) * 4 + 2
    xd = rng.random((120, 6), dtype=np.float32) * 3 - 1
    y = rng.random((120, 1), dtype=np.float32)
    m = _two_inputs(fd, xw, xd)
    assert [l.name for l in m.layers] == ["deep", "normalization_1", "wide", "dense",
                                          "normalization", "dense_1", "concatenate", "dense_2"]
    assert m.input_shape == [(None, 5), (None, 6)]
    assert m.get_layer("deep") is m.layers[0] and m.get_layer("wide") is m.layers[2]
    assert isinstance(m.input, list) and isinstance(m.output, list)
    m.compile("adam", "mse")
    h = m.fit((xw, xd), y, epochs=3, batch_size=16, verbose=0,
              validation_data=([xw[:20], xd[:20]], y[:20]))
    assert set(h.history) == {"loss", "val_loss"}
    # the adapted statistics are the ones the model uses
    w = m.get_weights()
    nw, nd = m.get_layer("normalization"), m.get_layer("normalization_1")
    np.testing.assert_allclose(np.asarray(nw.adapt_mean), xw.mean(0), rtol=1e-5)
    zw = (xw - np.asarray(nw.adapt_mean)) / np.sqrt(np.asarray(nw.adapt_variance))
    zd = (xd - np.asarray(nd.adapt_mean)) / np.sqrt(np.asarray(nd.adapt_variance))
    dense = [l for l in m.layers if isinstance(l, layers.Dense)]
    hd = _relu(_relu(zd @ dense[0].kernel.numpy() + dense[0].bias.numpy())
               @ dense[1].kernel.numpy() + dense[1].bias.numpy())
    ref = np.concatenate([zw, hd], 1) @ dense[2].kernel.numpy() + dense[2].bias.numpy()
    np.testing.assert_allclose(m.predict([xw, xd], verbose=0), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(m.predict({"wide": xw, "deep": xd}, verbose=0),
                                  m.predict((xw, xd), verbose=0))
    assert len(w) == len(m.weights)
    with pytest.raises(ValueError, match="2 inputs \\['wide', 'deep'\\]"):
        m.predict(np.concatenate([xw, xd], 1), verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        m.predict((xw, xd[:10]), verbose=0)
    with pytest.raises(ValueError, match="Missing data for input"):
        m.predict({"wide": xw}, verbose=0)
    with pytest.raises(ValueError, match='Input 1 of layer "functional" is incompatible with '
                                         "the layer: expected shape=\\(None, 6\\), found "
                                         "shape=\\(120, 5\\)"):
        m.predict((xw, xw), verbose=0)


def test_two_inputs_files(tmp_path, rng):
    pytest.importorskip("h5py")
    xw, xd = rng.random((40, 5), dtype=np.float32), rng.random((40, 6), dtype=np.float32)
    for struct in ("list", "dict"):
        m = _two_inputs(fd, xw, xd, struct)
        cfg = m.get_config()
        assert cfg["output_layers"] == [["dense_2", 0, 0]]
        assert cfg["input_layers"] == ([["wide", 0, 0], ["deep", 0, 0]] if struct == "list"
                                       else {"wide": ["wide", 0, 0], "deep": ["deep", 0, 0]})
        x = {"wide": xw, "deep": xd} if struct == "dict" else [xw, xd]
        for ext in (".keras", ".h5"):
            path = str(tmp_path / f"{struct}{ext}")
            m.save(path)
            back = fd.models.load_model(path)
            np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
        fd.backend.clear_session()


def test_adapted_normalization_keeps_its_statistics_in_a_functional_model(rng):
    x = rng.random((50, 3), dtype=np.float32) * 10 + 5
    norm = layers.Normalization()
    norm.adapt(x)
    inputs = fd.Input((3,))
    m = fd.Model(inputs, layers.Dense(1)(norm(inputs)))
    np.testing.assert_allclose(np.asarray(norm.adapt_mean), x.mean(0), rtol=1e-5)
    d = m.layers[-1]
    z = (x - x.mean(0)) / x.std(0)
    np.testing.assert_allclose(m.predict(x, verbose=0), z @ d.kernel.numpy() + d.bias.numpy(),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match='layer "dense_1" is incompatible'):
        dense = layers.Dense(2)
        dense(fd.Input((3,)))
        dense(fd.Input((4,)))


@pytest.mark.parametrize("struct", ["list", "dict"])
def test_two_inputs_side_by_side_with_keras(tmp_path, rng, struct):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    xw, xd = rng.random((200, 5), dtype=np.float32), rng.random((200, 6), dtype=np.float32)
    y = rng.random((200, 1), dtype=np.float32)
    keras.backend.clear_session()
    km = _two_inputs(keras, xw, xd, struct)
    fd.backend.clear_session()
    fm = _two_inputs(fd, xw, xd, struct)
    fm.set_weights(km.get_weights())
    assert [l.name for l in fm.layers] == [l.name for l in km.layers]
    assert json.loads(json.dumps(fm.get_config())) == json.loads(json.dumps(km.get_config()))
    x = {"wide": xw, "deep": xd} if struct == "dict" else (xw, xd)
    for m in (km, fm):
        m.compile(loss="mse", optimizer="adam", metrics=["RootMeanSquaredError"])
    args = dict(epochs=3, batch_size=32, verbose=0, shuffle=False, validation_split=0.2)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=key)
    np.testing.assert_allclose(fm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0),
                               rtol=2e-6)
    assert_files_load([(m, reader, ext) for m, reader in ((km, fd), (fm, keras))
                       for ext in (".keras", ".h5")], x, tmp_path, atol=2e-6, compile_h5=False)


# ---------------------------------------------------------------------------- x + y, x - y, x * y
def _with_ops(lib=fd):
    L = lib.layers
    inp = lib.Input((8,))
    h = L.Dense(8, activation="relu")(inp)
    r = h + inp  # (a residual connection, as Keras users write it)
    g = L.Dense(8, activation="sigmoid")(r)
    return lib.Model(inp, L.Dense(3, activation="softmax")(r * g - h))


def test_tensor_operators_run_as_ops(rng):
    m = _with_ops()
    assert [l.name for l in m.layers] == ["input_layer", "dense", "dense_1", "dense_2"]
    x = rng.random((32, 8), dtype=np.float32)
    w = m.get_weights()
    h = _relu(x @ w[0] + w[1])
    r = h + x
    z = (r * _sigmoid(r @ w[2] + w[3]) - h) @ w[4] + w[5]
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(m.predict(x, verbose=0), p / p.sum(1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    cfg = m.get_config()
    ops = [e for e in cfg["layers"] if e["module"] == "keras.src.ops.numpy"]
    assert [(e["class_name"], e["name"]) for e in ops] == [("Add", "add"),
                                                          ("Multiply", "multiply"),
                                                          ("Subtract", "subtract")]
    assert len(ops[0]["inbound_nodes"][0]["args"]) == 2
    lines = []
    m.summary(print_fn=lines.append, line_length=76)
    assert "│ add (Add)           │ (None, 8)         │          0 │ dense[0][0],      │" in lines[0]
    again = fd.Model.from_config(json.loads(json.dumps(cfg)))
    assert [l.name for l in again.layers] == [l.name for l in m.layers]
    again.set_weights(w)
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))
    inp = fd.Input((4,))
    with pytest.raises(NotImplementedError, match="between two symbolic tensors"):
        inp * "2"  # (a number works: test_scalar_ops.py)
    with pytest.raises(NotImplementedError, match="same shape \\(no broadcasting\\)"):
        inp + layers.Dense(1)(inp)


def test_tensor_operators_side_by_side_with_keras(tmp_path, rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    km = _with_ops(keras)
    fd.backend.clear_session()
    fm = _with_ops(fd)
    fm.set_weights(km.get_weights())
    assert json.loads(json.dumps(fm.get_config())) == json.loads(json.dumps(km.get_config()))
    klines, flines = [], []
    km.summary(print_fn=klines.append, line_length=76)
    fm.summary(print_fn=flines.append, line_length=76)
    assert "".join(flines).strip() == "".join(klines).strip()
    x = rng.random((96, 8), dtype=np.float32)
    y = rng.integers(0, 3, 96)
    for m in (km, fm):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    args = dict(epochs=3, batch_size=16, verbose=0, shuffle=False)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=key)
    # (Keras cannot read back its own legacy .h5 of a model with ops: .keras both ways,
    # and Keras's .h5 into fastdense)
    assert_files_load([(km, fd, ".keras"), (km, fd, ".h5"), (fm, keras, ".keras")], x,
                      tmp_path, atol=2e-6, compile_h5=False)


# ---------------------------------------------------------------------------- subclassed graphs
def _res_model(lib=fd):
    L = lib.layers

    class Res(lib.Model):
        def __init__(self):
            super().__init__()
            self.d1 = L.Dense(8, activation="relu")
            self.d2 = L.Dense(8)
            self.gate = L.Dense(8, activation="sigmoid")
            self.out = L.Dense(1)

        def call(self, x):
            h = self.d1(x)
            r = self.d2(h) + h
            return self.out(L.multiply([r, self.gate(x)]))

    return Res()


def test_subclassed_call_that_branches(rng, tmp_path):
    pytest.importorskip("h5py")
    x = rng.random((32, 4), dtype=np.float32)
    y = rng.random((32, 1), dtype=np.float32)
    m = _res_model()
    m.compile("adam", "mse")
    h = m.fit(x, y, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert [l.name for l in m.layers] == ["dense", "dense_1", "dense_2", "dense_3"]
    assert [w.path for w in m.weights][:2] == ["res/dense/kernel", "res/dense/bias"]
    w = m.get_weights()
    hh = _relu(x @ w[0] + w[1])
    r = hh @ w[2] + w[3] + hh
    ref = (r * _sigmoid(x @ w[4] + w[5])) @ w[6] + w[7]
    np.testing.assert_allclose(m.predict(x, verbose=0), ref, rtol=1e-5, atol=1e-6)
    lines = []
    m.summary(print_fn=lines.append, line_length=76)
    assert "Connected to" not in lines[0] and "│ dense_1 (Dense)" in lines[0]
    path = str(tmp_path / "res.weights.h5")
    m.save_weights(path)
    again = _res_model()
    again.build((None, 4))
    again.load_weights(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))


def test_subclassed_graph_side_by_side_with_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x = rng.random((64, 4), dtype=np.float32)
    y = rng.random((64, 1), dtype=np.float32)
    km, fm = _res_model(keras), _res_model(fd)
    km(x[:1])
    fm(x[:1])
    assert [w.path for w in fm.weights] == [w.path for w in km.weights]
    fm.set_weights(km.get_weights())
    for m in (km, fm):
        m.compile("adam", "mse")
    args = dict(epochs=3, batch_size=16, verbose=0, shuffle=False)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    np.testing.assert_allclose(fh["loss"], kh["loss"], rtol=2e-6)
    np.testing.assert_allclose(fm.predict(x, verbose=0), km.predict(x, verbose=0), atol=2e-6)


def test_sparse_inputs_take_the_column_selection_in_a_graph(rng):
    # the first stage alone reads the input (a residual after it): sparse rows
    # take the chain's column selection; the gradients are the same as float64's
    x = rng.standard_normal((16, 40)).astype(np.float32)
    x[:, rng.random(40) < 0.6] = 0.0  # (whole zero columns, as MNIST's borders)
    x[rng.random(x.shape) < 0.3] = 0.0
    t = rng.standard_normal((16, 2)).astype(np.float32)
    stages = [{"kind": 0, "units": 6, "activation": 1},
              {"kind": 0, "units": 6, "activation": 3},
              {"kind": 5, "merge": 0, "inputs": [1, 0]},
              {"kind": 0, "units": 2}]
    net = stage_net(40, stages)
    _randomize(net, rng, 0.3)

    def ref(q, out=False):
        h = _relu(x.astype(np.float64) @ q[0] + q[1])
        y = (np.tanh(h @ q[2] + q[3]) + h) @ q[4] + q[5]
        return y if out else np.mean(np.sum((y - t) ** 2, axis=1) / 2)

    np.testing.assert_allclose(net.predict(x, 16), ref(_vars(net), True), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(net.predict(x[:1], 1), ref(_vars(net), True)[:1], rtol=2e-5,
                               atol=2e-6)
    # (a dense batch first, learning rate 0: its gradients fill every row of dW,
    # and the sparse batch's must zero the rows of its all-zero columns)
    one_step(net, rng.standard_normal((16, 40)).astype(np.float32), t)
    one_step(net, x, t)
    assert_grads_match(net, ref)


def _random_graph(lib, seed):
    """A random functional graph: Dense, BatchNormalization, LayerNormalization,
    PReLU and Activation layers, merges and x + y / x * y on earlier tensors of
    one or two inputs, then a softmax Dense on the last tensor (with the
    inputs, so that each counts)."""
    r = np.random.default_rng(seed)
    L = lib.layers
    ins = [lib.Input((int(r.integers(3, 7)),), name=f"in{i}") for i in range(int(r.integers(1, 3)))]
    pool = list(ins)
    for _ in range(int(r.integers(3, 7))):
        kind = r.choice(["dense", "dense", "bn", "ln", "merge", "act", "op", "prelu"])
        a = pool[int(r.integers(0, len(pool)))]
        same = [p for p in pool if p.shape == a.shape and p is not a]
        if kind == "dense":
            t = L.Dense(int(r.choice([4, 4, 6])), activation=str(r.choice(
                ["relu", "tanh", "sigmoid", "linear", "elu"])))(a)
        elif kind == "bn":
            t = L.BatchNormalization()(a)
        elif kind == "ln":
            t = L.LayerNormalization()(a)
        elif kind == "prelu":
            t = L.PReLU()(a)
        elif kind == "act":
            t = L.Activation(str(r.choice(["relu", "softplus", "swish"])))(a)
        elif kind == "op" and same:
            b = same[int(r.integers(0, len(same)))]
            t = a + b if r.random() < 0.5 else a * b
        elif kind == "merge" and same:
            mode = str(r.choice(["Add", "Multiply", "Average", "Maximum", "Minimum", "Subtract"]))
            t = getattr(L, mode)()([a, same[int(r.integers(0, len(same)))]])
        else:
            others = [p for p in pool if p is not a]
            t = L.Concatenate()([a, others[int(r.integers(0, len(others)))]]) if others \
                else L.Dense(4)(a)
        pool.append(t)
    last = pool[-1]
    rest = [p for p in ins if p is not last]
    out = L.Dense(3, activation="softmax")(L.Concatenate()([last] + rest) if rest else last)
    return lib.Model(ins if len(ins) > 1 else ins[0], out)


def test_random_graphs_side_by_side_with_keras(rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    for seed in range(20):
        keras.backend.clear_session()
        km = _random_graph(keras, seed)
        fd.backend.clear_session()
        fm = _random_graph(fd, seed)
        fm.set_weights(km.get_weights())
        assert json.loads(json.dumps(fm.get_config())) == json.loads(
            json.dumps(km.get_config())), seed
        xs = [rng.standard_normal((64, t.shape[1])).astype(np.float32) for t in km.inputs]
        x = xs if len(xs) > 1 else xs[0]
        y = rng.integers(0, 3, 64)
        for m in (km, fm):
            m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        args = dict(epochs=3, batch_size=16, verbose=0, shuffle=False, validation_split=0.25)
        kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
        for key in ("loss", "val_loss"):
            np.testing.assert_allclose(fh[key], kh[key], rtol=1e-5, err_msg=f"{seed} {key}")
        np.testing.assert_allclose(fm.predict(x, verbose=0), km.predict(x, verbose=0),
                                   atol=1e-5, err_msg=str(seed))


def test_a_graph_model_does_not_nest_as_a_chain():
    inp = fd.Input((4,))
    g = fd.Model(inp, layers.add([layers.Dense(4)(inp), inp]))
    with pytest.raises(NotImplementedError, match="is a graph"):
        fd.Sequential([g, layers.Dense(1)])
    other = fd.Input((4,))
    with pytest.raises(NotImplementedError, match="is a graph|is itself a graph"):
        fd.Model(other, layers.Dense(1)(g(other)))
    with pytest.raises(NotImplementedError, match="is a graph|is itself a graph"):
        fd.Model(other, layers.add([g(other), other]))
