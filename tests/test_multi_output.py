"""Models with several outputs (Keras's ``Model(inputs, [out_1, out_2])`` or a
dict of outputs): one loss, loss weight and set of metrics per output
(python/fastdense/_multi.py). Without Keras: the total loss against numpy on
the predictions, training against the same network with one output, the
names and order of the results, predictions split per output, files, errors.
Where Keras is installed: the same training side by side (histories,
evaluate, predictions) and files in both directions."""
import json
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    labels = rng.integers(0, 3, n)
    values = rng.standard_normal((n, 2)).astype("float32")
    return x, labels, values


def _model(lib=fd, structure="list"):
    """x -> h (16, relu) -> cls (3, softmax) and reg (2, linear)."""
    inp = lib.Input((8,), name="x")
    h = lib.layers.Dense(16, activation="relu", name="h")(inp)
    a = lib.layers.Dense(3, activation="softmax", name="cls")(h)
    b = lib.layers.Dense(2, name="reg")(h)
    if structure == "dict":
        return lib.Model(inp, {"zz": a, "reg": b})
    return lib.Model(inp, [a, b])


def _cce(labels, p):
    p = np.clip(p / p.sum(1, keepdims=True), 1e-7, 1 - 1e-7)
    return -np.log(p[np.arange(len(labels)), labels])


def test_layers_outputs_and_predictions_per_output():
    m = _model()
    assert [l.name for l in m.layers] == ["x", "h", "cls", "reg"]  # (no hidden join)
    assert m.output_names == ["cls", "reg"]
    assert [tuple(t.shape) for t in m.outputs] == [(None, 3), (None, 2)]
    assert m.compute_output_shape((None, 8)) == [(None, 3), (None, 2)]
    x, _, _ = _data()
    wh, bh, wa, ba, wb, bb = m.get_weights()
    h = np.maximum(x @ wh + bh, 0)
    za = h @ wa + ba
    ea = np.exp(za - za.max(1, keepdims=True))
    want = [ea / ea.sum(1, keepdims=True), h @ wb + bb]
    for got in (m.predict(x, verbose=0), m.predict_on_batch(x), m(x),
                m.predict(x, batch_size=5, verbose=0)):
        assert isinstance(got, list) and len(got) == 2
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    d = _model(structure="dict")
    out = d.predict(x, verbose=0)
    assert isinstance(out, dict) and {k: v.shape for k, v in out.items()} == \
        {"zz": (64, 3), "reg": (64, 2)}
    assert list(d.output) == ["zz", "reg"]  # (the dict's own order, as Keras keeps it)


def test_loss_is_the_weighted_sum_of_each_outputs_loss():
    x, labels, values = _data()
    m = _model()
    m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"],
              loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]])
    sw = np.linspace(0.5, 1.5, 64).astype("float32")
    res = m.evaluate(x, [labels, values], sample_weight=sw, verbose=0, return_dict=True)
    p, r = m.predict(x, verbose=0)
    cls_loss = np.sum(sw * _cce(labels, p)) / 64
    reg_loss = np.sum(sw * np.mean((r - values) ** 2, axis=1)) / 64
    np.testing.assert_allclose(res["cls_loss"], cls_loss, rtol=1e-5)
    np.testing.assert_allclose(res["reg_loss"], reg_loss, rtol=1e-5)
    np.testing.assert_allclose(res["loss"], cls_loss + 0.5 * reg_loss, rtol=1e-5)
    # (metrics: not weighted; weighted_metrics are)
    np.testing.assert_allclose(res["cls_accuracy"], np.mean(p.argmax(1) == labels), rtol=1e-6)
    np.testing.assert_allclose(res["reg_mae"], np.mean(np.abs(r - values)), rtol=1e-5)
    # evaluate's list: the loss, each output's loss, then the rest by name (Keras's order)
    assert m.evaluate(x, [labels, values], sample_weight=sw, verbose=0) == pytest.approx(
        [res[k] for k in ("loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae")])


def test_training_an_output_alone_matches_the_one_output_model():
    """With the second output's loss weight 0, the trunk and the first head
    train exactly as the same network with that one output (SGD, no shuffle),
    and the second head does not move."""
    x, labels, values = _data()
    m = _model()
    inp = fd.Input((8,))
    one = fd.Model(inp, layers.Dense(3, activation="softmax")(
        layers.Dense(16, activation="relu")(inp)))
    w = m.get_weights()
    one.set_weights(w[:4])
    m.compile(optimizer=fd.optimizers.SGD(0.1), loss=["sparse_categorical_crossentropy", "mse"],
              loss_weights=[1.0, 0.0])
    one.compile(optimizer=fd.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    hm = m.fit(x, [labels, values], epochs=3, batch_size=16, shuffle=False, verbose=0).history
    ho = one.fit(x, labels, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    np.testing.assert_allclose(hm["cls_loss"], ho["loss"], rtol=1e-5)
    np.testing.assert_allclose(hm["loss"], ho["loss"], rtol=1e-5)
    for a, b in zip(m.get_weights()[:4], one.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(m.get_weights()[4:], w[4:]):
        np.testing.assert_array_equal(a, b)


def test_gradient_of_each_output_reaches_the_shared_layers():
    """One SGD step: the trunk's update is the sum of both heads' gradients
    (the step with both losses equals the sum of the steps with each alone,
    up to the float32 rounding of the weights, ~6e-8 here)."""
    x, labels, values = _data(16)
    base = _model()
    w0 = base.get_weights()
    deltas = []
    for weights in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]):
        m = _model()
        m.set_weights(w0)
        m.compile(optimizer=fd.optimizers.SGD(1e-3), loss=["sparse_categorical_crossentropy",
                                                           "mse"], loss_weights=weights)
        m.train_on_batch(x, [labels, values])
        deltas.append([a - b for a, b in zip(m.get_weights(), w0)])
    for a, b, both in zip(*deltas):
        np.testing.assert_allclose(a + b, both, rtol=1e-4, atol=3e-7)
    assert np.abs(deltas[1][0]).max() > 0  # (the regression head moved the trunk)


def test_history_keys_and_validation():
    x, labels, values = _data()
    m = _model()
    m.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "huber"},
              metrics={"cls": ["accuracy", "accuracy"]}, weighted_metrics=[[], ["mae"]])
    h = m.fit(x, {"cls": labels, "reg": values}, epochs=2, batch_size=16, verbose=0,
              validation_split=0.25).history
    base = ["cls_accuracy", "cls_accuracy_1", "cls_loss", "loss", "reg_loss", "reg_mae"]
    assert sorted(h) == sorted(base + ["val_" + k for k in base])
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in h.values())


def test_dict_outputs_name_results_by_key():
    x, labels, values = _data()
    m = _model(structure="dict")
    m.compile(optimizer="adam", loss={"zz": "sparse_categorical_crossentropy", "reg": "mse"},
              metrics={"zz": "accuracy"})
    h = m.fit(x, {"zz": labels, "reg": values}, epochs=1, verbose=0).history
    assert sorted(h) == ["loss", "reg_loss", "zz_accuracy", "zz_loss"]
    # (the losses in the loss dict's order, as Keras walks it)
    res = m.evaluate(x, {"zz": labels, "reg": values}, verbose=0, return_dict=True)
    assert m.evaluate(x, {"zz": labels, "reg": values}, verbose=0) == pytest.approx(
        [res["loss"], res["zz_loss"], res["reg_loss"], res["zz_accuracy"]])


def test_targets_of_the_outputs_with_a_loss_only():
    """As Keras: with no loss (nor metrics) on an output, y may leave its
    targets out (a list of the others, one array, None, a dict without it)."""
    x, labels, values = _data()
    results = []
    for y in ([labels, values], [values], values, [None, values], {"reg": values}):
        m = _model()
        m.set_weights(_model(fd).get_weights() if not results else w0)
        w0 = m.get_weights()
        m.compile(optimizer=fd.optimizers.SGD(0.1), loss=[None, "mse"])
        h = m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history
        results.append((h["loss"], m.evaluate(x, y, verbose=0)))
    for r in results[1:]:
        assert r == results[0]
    m = _model()
    m.compile(loss=[None, "mse"], metrics=[["accuracy"], []])
    with pytest.raises(ValueError, match="no targets for output\\(s\\) \\['cls'\\]"):
        m.fit(x, {"reg": values}, verbose=0)  # (cls has metrics)


def test_per_output_sample_weights():
    x, labels, values = _data()
    m = _model()
    m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    w1 = np.linspace(0, 2, 64).astype("float32")
    res = m.evaluate(x, [labels, values], sample_weight=[w1, None], verbose=0,
                     return_dict=True)
    p, r = m.predict(x, verbose=0)
    np.testing.assert_allclose(res["cls_loss"], np.sum(w1 * _cce(labels, p)) / 64, rtol=1e-5)
    np.testing.assert_allclose(res["reg_loss"], np.mean((r - values) ** 2), rtol=1e-5)
    same = m.evaluate(x, [labels, values], sample_weight={"cls": w1, "reg": np.ones(64)},
                      verbose=0, return_dict=True)
    assert same == pytest.approx(res)


def test_subclassed_model_with_several_outputs():
    class TwoHeads(fd.Model):
        def __init__(self):
            super().__init__()
            self.h = layers.Dense(16, activation="relu")
            self.a = layers.Dense(3, activation="softmax")
            self.b = layers.Dense(2)

        def call(self, x):
            h = self.h(x)
            return [self.a(h), self.b(h)]

    x, labels, values = _data()
    m = TwoHeads()
    m.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"],
              metrics=[["accuracy"], ["mae"]])
    h = m.fit(x, [labels, values], epochs=1, verbose=0).history
    # (Keras names these after the losses and metrics: a subclassed model's
    # outputs have no names)
    assert sorted(h) == ["accuracy", "loss", "mae", "mse_loss",
                         "sparse_categorical_crossentropy_loss"]
    assert [p.shape for p in m.predict(x, verbose=0)] == [(64, 3), (64, 2)]


def test_errors_name_the_argument():
    x, labels, values = _data()
    m = _model()
    with pytest.raises(ValueError, match="Expected keys \\['cls', 'reg'\\] in loss dict"):
        m.compile(loss={"cls": "mse"})
    with pytest.raises(ValueError, match="one entry per output"):
        m.compile(loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match="got 1 losses and 2 weights"):
        m.compile(loss="mse", loss_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="Invalid `metrics`"):
        m.compile(loss="mse", metrics=["mae"])
    m.compile(loss=["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(ValueError, match="2 outputs \\['cls', 'reg'\\]: pass `y`"):
        m.fit(x, labels, verbose=0)
    with pytest.raises(ValueError, match="no targets for output\\(s\\) \\['reg'\\]"):
        m.fit(x, {"cls": labels}, verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        m.fit(x, [labels[:10], values], verbose=0)
    with pytest.raises(ValueError, match="only supported for Models with a single output"):
        m.fit(x, [labels, values], class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="one scalar score per sample"):
        m.fit(x, [labels, values], sample_weight=np.ones((64, 2)), verbose=0)
    inp = fd.Input((8,))
    out = layers.Dense(2)(inp)
    with pytest.raises(NotImplementedError, match="same tensor more than once"):
        fd.Model(inp, [out, out])
    with pytest.raises(NotImplementedError, match="several inputs or outputs"):
        fd.Sequential([m, layers.Dense(1)]).build((None, 8))
    with pytest.raises(NotImplementedError, match="nests models with one output"):
        m(fd.Input((8,)))


def test_files_and_configs_round_trip(tmp_path):
    pytest.importorskip("h5py")
    x, labels, values = _data()
    for structure in ("list", "dict"):
        m = _model(structure=structure)
        names = ["cls", "reg"] if structure == "list" else ["zz", "reg"]
        m.compile(optimizer="adam", loss=dict(zip(names, ["sparse_categorical_crossentropy",
                                                           fd.losses.Huber()])),
                  loss_weights=dict(zip(names, [1.0, 0.5])),
                  metrics={names[0]: ["accuracy"]})
        y = dict(zip(names, [labels, values]))
        m.fit(x, y, epochs=1, verbose=0)
        cfg = json.loads(m.to_json())
        refs = [["cls", 0, 0], ["reg", 0, 0]]
        assert cfg["config"]["output_layers"] == (refs if structure == "list" else
                                                  {"zz": refs[0], "reg": refs[1]})
        path = str(tmp_path / f"{structure}.keras")
        m.save(path)
        back = fd.models.load_model(path)
        for a, b in zip(_flat(m.predict(x, verbose=0)), _flat(back.predict(x, verbose=0))):
            np.testing.assert_array_equal(a, b)
        assert back.evaluate(x, y, verbose=0) == pytest.approx(m.evaluate(x, y, verbose=0),
                                                                rel=1e-6)
        clone = fd.models.clone_model(m)
        assert sorted(clone.fit(x, y, epochs=1, verbose=0).history) == \
            sorted(m.fit(x, y, epochs=1, verbose=0).history)


def _flat(out):
    return [out[k] for k in sorted(out)] if isinstance(out, dict) else list(out)


def test_batch_streams_with_several_outputs():
    x, labels, values = _data()

    class Batches(fd.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            s = slice(16 * i, 16 * (i + 1))
            return x[s], [labels[s], values[s]]

    m = _model()
    m.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
    assert sorted(m.fit(Batches(), epochs=1, verbose=0).history) == \
        ["cls_loss", "loss", "reg_loss"]
    assert m.evaluate(Batches(), verbose=0) == pytest.approx(
        m.evaluate(x, [labels, values], batch_size=16, verbose=0), rel=1e-6)
    assert [p.shape for p in m.predict(Batches(), verbose=0)] == [(64, 3), (64, 2)]


# ------------------------------------------------------------------ Keras side by side
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


CASES = {
    "list": ("list", dict(loss=["sparse_categorical_crossentropy", "mse"],
                          loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]]), False),
    "one_loss_for_all": ("list", dict(loss="mse", metrics=["mae", "mse"]), True),
    "dict": ("dict", dict(loss={"zz": "sparse_categorical_crossentropy", "reg": "huber"},
                          loss_weights={"zz": 2.0, "reg": 1.0},
                          metrics={"zz": ["accuracy", "sparse_top_k_categorical_accuracy"]},
                          weighted_metrics={"reg": "mae"}), True),
    "no_loss_on_one": ("list", dict(loss=[None, "mse"], metrics=[["accuracy"], []]), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_matches_keras(case):
    keras = _keras()
    structure, compile_args, weighted = CASES[case]
    x, labels, values = _data()
    sw = np.linspace(0.2, 1.8, 64).astype("float32") if weighted else None
    one_hot = np.eye(3, dtype="float32")[labels]
    first = one_hot if case == "one_loss_for_all" else labels
    names = ["zz", "reg"] if structure == "dict" else None
    y = dict(zip(names, [first, values])) if names else [first, values]
    km, fm = _model(keras, structure), _model(fd, structure)
    fm.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.05), **compile_args)
    fm.compile(optimizer=fd.optimizers.SGD(0.05), **compile_args)
    fit = dict(epochs=3, batch_size=16, shuffle=False, verbose=0, sample_weight=sw,
               validation_data=(x, y) if sw is None else (x, y, sw))
    hk, hf = km.fit(x, y, **fit).history, fm.fit(x, y, **fit).history
    assert sorted(hk) == sorted(hf)
    for k in hk:
        np.testing.assert_allclose(hf[k], hk[k], rtol=2e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(fm.evaluate(x, y, sample_weight=sw, verbose=0),
                               km.evaluate(x, y, sample_weight=sw, verbose=0), rtol=2e-5,
                               atol=1e-6)
    for a, b in zip(_flat(fm.predict(x, verbose=0)), _flat(km.predict(x, verbose=0))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_files_load_both_ways_with_keras(tmp_path):
    keras = _keras()
    pytest.importorskip("h5py")
    x, labels, values = _data()
    for structure in ("list", "dict"):
        names = ["cls", "reg"] if structure == "list" else ["zz", "reg"]
        y = dict(zip(names, [labels, values]))
        for src, dst in ((fd, keras), (keras, fd)):
            m = _model(src, structure)
            # (a loss object: Keras 3.15 cannot read back its own legacy .h5 of a
            # loss dict holding "mse", which its loader takes for a metric)
            m.compile(optimizer="adam", loss=dict(zip(names, ["sparse_categorical_crossentropy",
                                                               src.losses.MeanSquaredError()])),
                      metrics={names[0]: ["accuracy"]})
            m.fit(x, y, epochs=1, verbose=0)
            for ext in (".keras", ".h5"):
                path = str(tmp_path / f"{structure}_{src.__name__}{ext}")
                m.save(path)
                back = dst.models.load_model(path)
                for a, b in zip(_flat(m.predict(x, verbose=0)), _flat(back.predict(x, verbose=0))):
                    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(back.evaluate(x, y, verbose=0),
                                           m.evaluate(x, y, verbose=0), rtol=1e-5, atol=1e-7)


def test_configs_match_keras():
    keras = _keras()
    for structure in ("list", "dict"):
        k, f = _model(keras, structure), _model(fd, structure)
        ck, cf = k.get_config(), f.get_config()
        ck.pop("name"), cf.pop("name")
        assert json.dumps(ck, sort_keys=True) == json.dumps(cf, sort_keys=True)


def test_native_losses_match_the_python_path():
    """Outputs whose losses all have kernels train in the engine's loop (a loss
    head per output); the same losses as plain callables take the per-batch
    Python path: the same histories and weights, with and without sample
    weights (one array, or one per output)."""
    x, labels, values = _data()
    w1 = np.linspace(0.2, 1.8, 64).astype("float32")
    for sw in (None, w1, [w1, w1[::-1].copy()]):
        runs = []
        for wrap in (False, True):
            m = _model()
            m.set_weights(_model().get_weights() if not runs else runs[0][2])
            losses = ["sparse_categorical_crossentropy", "mse"]
            if wrap:
                losses = [lambda t, p: fd.losses.sparse_categorical_crossentropy(t, p),
                          lambda t, p: fd.losses.mean_squared_error(t, p)]
            m.compile(optimizer=fd.optimizers.Adam(0.01), loss=losses, loss_weights=[1.0, 0.3],
                      metrics=[["accuracy"], []])
            w0 = m.get_weights()
            h = m.fit(x, [labels, values], sample_weight=sw, epochs=3, batch_size=16,
                      shuffle=False, verbose=0).history
            assert (m._loss_native is not None) == (not wrap)  # (the path each took)
            runs.append((h, m.get_weights(), w0))
        (ha, wa, _), (hb, wb, _) = runs
        assert sorted(ha) == sorted(hb)
        for k in ha:
            np.testing.assert_allclose(ha[k], hb[k], rtol=2e-5, err_msg=k)
        for a, b in zip(wa, wb):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ the engine's loss heads
EPS = 1e-7


def _heads_net():
    """Three heads on one input (softmax 3, linear 2, sigmoid 1) joined side
    by side, with loss heads sparse crossentropy (weight 1), mean squared
    error (0.5) and binary crossentropy (2); targets: the class id, 2 values,
    1 label (4 columns)."""
    from _engine_checks import stage_net
    stages = [{"kind": 0, "units": 3, "activation": 4, "inputs": [-1]},
              {"kind": 0, "units": 2, "activation": 0, "inputs": [-1]},
              {"kind": 0, "units": 1, "activation": 2, "inputs": [-1]},
              {"kind": 5, "merge": 6, "inputs": [0, 1, 2]}]
    net = stage_net(5, stages)
    net.set_heads([(1, False, 0, 3, 0, 1.0, 0), (3, False, 3, 2, 1, 0.5, 1),
                   (2, False, 5, 1, 3, 2.0, 2)], 4)
    return net


def _heads_ref(params, x, t, sw=None):
    """float64 reference: the three losses (Keras's formulas: probabilities
    normalised and clipped to [1e-7, 1 - 1e-7]) per sample, weighted."""
    (w0, b0, w1, b1, w2, b2) = params
    x = x.astype(np.float64)
    z = x @ w0 + b0
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    q = np.clip(p / p.sum(1, keepdims=True), EPS, 1 - EPS)
    labels = t[:, 0].astype(int)
    l_cls = -np.log(q[np.arange(len(x)), labels])
    r = x @ w1 + b1
    l_reg = np.mean((r - t[:, 1:3]) ** 2, axis=1)
    s = np.clip(1 / (1 + np.exp(-(x @ w2 + b2))), EPS, 1 - EPS)
    l_bin = -np.mean(t[:, 3:] * np.log(s) + (1 - t[:, 3:]) * np.log(1 - s), axis=1)
    heads = np.stack([l_cls, l_reg, l_bin])
    if sw is not None:
        heads = heads * (sw if sw.ndim == 1 else sw.T)
    return heads


def _heads_data(n=7, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    t = np.concatenate([rng.integers(0, 3, (n, 1)), rng.standard_normal((n, 2)),
                        rng.integers(0, 2, (n, 1))], axis=1).astype(np.float32)
    return x, t


def _net_params(net):
    p = net.params
    return [p[off:off + int(np.prod(shape))].reshape(shape).astype(np.float64)
            for _, off, shape, _ in net.variables()]


def test_engine_heads_values_against_numpy():
    net = _heads_net()
    x, t = _heads_data()
    sw1 = np.linspace(0.5, 2, 7).astype(np.float32)
    sw3 = np.random.default_rng(1).random((7, 3)).astype(np.float32)
    for sw in (None, sw1, sw3):
        out = net.evaluate(x, t, None, 3, 3, None, sw)
        heads = _heads_ref(_net_params(net), x, t, sw)
        np.testing.assert_allclose(out["metric_sums"], heads.sum(1), rtol=2e-5)
        np.testing.assert_allclose(out["loss_sum"], (np.array([1, 0.5, 2]) @ heads).sum(),
                                   rtol=2e-5)


def test_engine_heads_gradients_against_central_differences():
    from _engine_checks import assert_grads_match, one_step
    x, t = _heads_data()
    sw3 = np.random.default_rng(1).random((7, 3)).astype(np.float32)
    for sw in (None, sw3):
        net = _heads_net()
        if sw is None:
            one_step(net, x, t)
        else:
            net.train_batches(x, t, None, None, len(x), 0, 1, 3,
                              {"loss_sum": 0.0, "seen": 0, "metric_sums": []}, None, False, sw)
        assert_grads_match(net, lambda q: float(
            (np.array([1, 0.5, 2]) @ _heads_ref(q, x, t, sw)).sum() / len(x)))


def test_engine_heads_reject_bad_input():
    net = _heads_net()
    x, t = _heads_data()
    with pytest.raises(ValueError, match="columns are out of range"):
        net.set_heads([(3, False, 4, 3, 0, 1.0, 0)], 4)
    with pytest.raises(ValueError, match="no native metrics with several losses"):
        net.set_metrics([0], 0.5)
    bad = t.copy()
    bad[2, 0] = 3  # (a class id out of range)
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        net.evaluate(x, bad, None, 7, 3, None)
    bad[2, 0] = 0.5
    with pytest.raises(ValueError, match="class ids"):
        net.evaluate(x, bad, None, 7, 3, None)
    with pytest.raises(ValueError, match="columns; a loss reads column 2"):
        net.evaluate(x, t, None, 7, 3, None, np.ones((7, 2), np.float32))
    with pytest.raises(ValueError):
        net.evaluate(x, t[:, :3].copy(), None, 7, 3, None)  # (4 target columns expected)


def test_same_bits_at_any_thread_count():
    """The engine's heads (rows split over the pool) give the same weights
    bit for bit at 1, 2 and 3 threads, as the one-output path does."""
    from _engine_checks import assert_same_bits_at_thread_counts
    rng = np.random.default_rng(5)
    x = rng.random((600, 40)).astype("float32")
    labels = rng.integers(0, 7, 600)
    values = rng.standard_normal((600, 3)).astype("float32")

    def run():
        fd.utils.set_random_seed(11)
        inp = fd.Input((40,))
        h = layers.Dense(256, activation="relu")(inp)
        m = fd.Model(inp, [layers.Dense(7, activation="softmax")(h), layers.Dense(3)(h)])
        m.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[1.0, 0.2])
        m.fit(x, [labels, values], epochs=2, batch_size=64, verbose=0)
        assert m._loss_native is not None
        return [w.copy() for w in m.get_weights()]

    assert_same_bits_at_thread_counts(run)


def test_compile_again_keeps_the_losses_and_one_loss_for_a_subclassed_model():
    """As Keras: compiling again with only an optimizer keeps the losses and
    metrics; a subclassed model compiled with one loss before its call() is
    traced applies it to each output (the outputs show at the first data)."""
    x, labels, values = _data()
    m = _model()
    m.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"],
              metrics=[["accuracy"], []])
    m.compile(optimizer=fd.optimizers.SGD(0.01))
    assert sorted(m.fit(x, [labels, values], verbose=0).history) == \
        ["cls_accuracy", "cls_loss", "loss", "reg_loss"]
    m.compile(optimizer="sgd", loss=[None, None])
    with pytest.raises(ValueError, match="No loss to compute"):
        m.fit(x, [labels, values], verbose=0)

    class TwoHeads(fd.Model):
        def __init__(self):
            super().__init__()
            self.h = layers.Dense(16, activation="relu")
            self.a = layers.Dense(3)
            self.b = layers.Dense(2)

        def call(self, inputs):
            h = self.h(inputs)
            return [self.a(h), self.b(h)]

    s = TwoHeads()
    s.compile(optimizer="sgd", loss="mse")
    one_hot = np.eye(3, dtype=np.float32)[labels]
    s.fit(x, [one_hot, values], verbose=0)
    a, b = s.predict(x, verbose=0)
    res = s.evaluate(x, [one_hot, values], verbose=0)
    want = np.mean((a - one_hot) ** 2) + np.mean((b - values) ** 2)
    np.testing.assert_allclose(res[0], want, rtol=1e-5)
