"""Keras 3 surface: custom Metric subclasses with add_variable / add_weight,
serialized initializer / regularizer / constraint dicts and layer
from_config, and the keras.backend / keras.config modules.  Numpy references
throughout; the side-by-side checks with real Keras (JAX backend) are skipped
without keras."""
import json
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import _naming

os.environ.setdefault("KERAS_BACKEND", "jax")


def _keras():
    return pytest.importorskip("keras")


def _maybe_keras():
    try:
        import keras
    except ImportError:
        return None
    return keras


@pytest.fixture
def restore_names():
    """clear_session() resets the global name counters: give the other tests
    theirs back."""
    saved = dict(_naming._counters)
    yield
    with _naming._lock:
        _naming._counters.clear()
        _naming._counters.update(saved)


# --------------------------------------------------------------------------
# 1. custom metrics
# --------------------------------------------------------------------------
def _f1_class(lib):
    ops = lib.ops

    class F1(lib.metrics.Metric):
        def __init__(self, name="f1", threshold=0.5, **kw):
            super().__init__(name=name, **kw)
            self.threshold = threshold
            self.tp = self.add_variable(shape=(), initializer="zeros", name="tp")
            self.fp = self.add_weight(name="fp", initializer="zeros")  # the older spelling
            self.fn = self.add_weight(name="fn", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_true = ops.cast(ops.reshape(y_true, (-1,)), "float32")
            y_pred = ops.cast(ops.greater(ops.reshape(y_pred, (-1,)), self.threshold),
                              "float32")
            self.tp.assign_add(ops.sum(y_true * y_pred))
            self.fp.assign(self.fp + ops.sum((1 - y_true) * y_pred))
            self.fn.assign_add(ops.sum(y_true * (1 - y_pred)))

        def result(self):
            p = self.tp / (self.tp + self.fp + lib.backend.epsilon())
            r = ops.divide_no_nan(self.tp, self.tp + self.fn)
            return 2 * p * r / (p + r + lib.backend.epsilon())

        def get_config(self):
            return {**super().get_config(), "threshold": self.threshold}

    return F1


def _f1_reference(y_true, y_pred, threshold=0.5):
    t = np.asarray(y_true, np.float64).reshape(-1)
    p = (np.asarray(y_pred).reshape(-1) > threshold).astype(np.float64)
    tp, fp, fn = (t * p).sum(), ((1 - t) * p).sum(), (t * (1 - p)).sum()
    prec = tp / (tp + fp + 1e-7)
    rec = tp / (tp + fn) if tp + fn else 0.0
    return 2 * prec * rec / (prec + rec + 1e-7)


def _binary_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return rng, x, y


def test_custom_metric_standalone_matches_numpy():
    F1 = _f1_class(fd)
    rng, _, y = _binary_data()
    p1, p2 = rng.random(50).astype("float32"), rng.random(50).astype("float32")
    m = F1()
    m.update_state(y[:50], p1)
    assert float(m.result()) == pytest.approx(_f1_reference(y[:50], p1), rel=1e-6)
    m.update_state(y[50:100], p2)
    assert float(m.result()) == pytest.approx(
        _f1_reference(y[:100], np.concatenate([p1, p2])), rel=1e-6)
    assert [v.name for v in m.variables] == ["tp", "fp", "fn"]
    assert all(isinstance(v, fd.Variable) and not v.trainable for v in m.variables)
    assert m.tp.path == "f1/tp" and m.tp.shape == () and m.tp.dtype == "float32"
    m.reset_state()
    assert [float(v) for v in m.variables] == [0.0, 0.0, 0.0]
    assert float(m.result()) == 0.0
    assert float(m(y[:50], p1)) == pytest.approx(_f1_reference(y[:50], p1), rel=1e-6)
    m2 = F1.from_config(m.get_config())
    assert m2.name == "f1" and m2.threshold == 0.5 and float(m2.result()) == 0.0


def test_custom_metric_in_compile_fit_evaluate():
    F1 = _f1_class(fd)
    _, x, y = _binary_data()
    fd.utils.set_random_seed(1)
    model = fd.Sequential([fd.Input(shape=(6,)), fd.layers.Dense(
        1, activation="sigmoid", kernel_initializer=fd.initializers.Constant(0.1))])
    f1 = F1()
    model.compile(optimizer=fd.optimizers.SGD(0.1), loss="binary_crossentropy",
                  metrics=[f1, "accuracy"])
    h = model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False,
                  validation_split=0.25).history
    assert set(h) == {"accuracy", "f1", "loss", "val_accuracy", "val_f1", "val_loss"}
    assert model.metrics[0] is f1
    # evaluate: the metric over all batches equals the F1 of the predictions
    logs = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=16)
    assert logs["f1"] == pytest.approx(_f1_reference(y, model.predict(x, verbose=0)),
                                       rel=1e-5)
    # and the validation value of the last epoch is that of the weights then
    assert h["val_f1"][-1] == pytest.approx(
        _f1_reference(y[150:], model.predict(x[150:], verbose=0)), rel=1e-5)


def test_custom_metric_fit_matches_keras():
    keras = _keras()
    _, x, y = _binary_data()
    out = []
    for lib in (fd, keras):
        lib.utils.set_random_seed(1)
        model = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(
            1, activation="sigmoid", kernel_initializer=lib.initializers.Constant(0.1))])
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="binary_crossentropy",
                      metrics=[_f1_class(lib)(), "accuracy"])
        h = model.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False,
                      validation_split=0.25).history
        ev = model.evaluate(x, y, verbose=0, return_dict=True)
        out.append((h, ev))
    (fh, fe), (kh, ke) = out
    assert sorted(fh) == sorted(kh)
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for key in ke:
        assert fe[key] == pytest.approx(ke[key], rel=2e-5), key
    # standalone, state for state
    rng = np.random.default_rng(3)
    p = rng.random(60).astype("float32")
    fm, km = _f1_class(fd)(), _f1_class(keras)()
    for m in (fm, km):
        m.update_state(y[:60], p)
    assert float(fm.result()) == pytest.approx(float(km.result()), rel=1e-6)
    for a, b in zip(fm.variables, km.variables):
        assert a.name == b.name and a.path == b.path
        np.testing.assert_allclose(a.numpy(), np.asarray(b.numpy()))


def _state_metric_class(lib):
    class Counts(lib.metrics.Metric):
        """Variables of other shapes / dtypes / initializers, a nested metric
        and a variable assigned directly."""

        def __init__(self, **kw):
            super().__init__(**kw)
            self.hist = self.add_variable(shape=(3,), initializer="ones", name="hist")
            self.n = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="n")
            self.inner = lib.metrics.Mean(name="inner_mean")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_true = np.asarray(y_true)
            self.hist.assign_add(np.bincount(y_true.astype(int), minlength=3).astype("float32"))
            self.n.assign_add(len(y_true))
            self.inner.update_state(y_pred)

        def result(self):
            return self.hist / lib.ops.sum(self.hist)

    return Counts


def test_default_reset_state_zeros_every_variable_and_resets_held_metrics():
    Counts = _state_metric_class(fd)
    m = Counts()
    np.testing.assert_array_equal(m.hist.numpy(), [1, 1, 1])  # the initializer's values
    m.update_state([0, 2, 2], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(m.result(), np.array([2, 1, 3]) / 6, rtol=1e-6)
    assert int(m.n) == 3 and m.n.dtype == "int32"
    assert float(m.inner.result()) == pytest.approx(2.0)
    m.reset_state()
    # Keras's default reset_state sets every variable to zeros (not back to
    # its initializer), and resets the metrics held in attributes.
    np.testing.assert_array_equal(m.hist.numpy(), [0, 0, 0])
    assert int(m.n) == 0
    assert float(m.inner.result()) == 0.0


def test_default_reset_state_matches_keras():
    keras = _keras()
    got = []
    for lib in (fd, keras):
        m = _state_metric_class(lib)()
        m.update_state(np.array([0, 2, 2]), np.array([1.0, 2.0, 3.0], "float32"))
        before = np.asarray(m.result())
        m.reset_state()
        got.append((before, np.asarray(m.hist.numpy()), int(np.asarray(m.n.numpy())),
                    float(m.inner.result()), m.hist.path))
    (fb, fh, fn, fi, fp), (kb, kh, kn, ki, kp) = got
    np.testing.assert_allclose(fb, kb, rtol=1e-6)
    np.testing.assert_array_equal(fh, kh)
    assert (fn, fi) == (kn, ki)
    assert fp.endswith("/hist") and kp.endswith("/hist")


def test_metric_default_names_are_unique_snake_case_as_keras(restore_names):
    class MyCustomScore(fd.metrics.Metric):
        def update_state(self, *a, **k):
            pass

        def result(self):
            return 0.0

    fd.backend.clear_session()
    assert [MyCustomScore().name, MyCustomScore().name] == ["my_custom_score",
                                                            "my_custom_score_1"]
    assert MyCustomScore(name="explicit").name == "explicit"
    keras = _maybe_keras()
    if keras is not None:
        class MyCustomScore(keras.metrics.Metric):  # noqa: F811
            def update_state(self, *a, **k):
                pass

            def result(self):
                return 0.0

        keras.backend.clear_session()
        assert [MyCustomScore().name, MyCustomScore().name] == ["my_custom_score",
                                                                "my_custom_score_1"]


def test_add_variable_errors_and_initializer_forms():
    class NoSuper(fd.metrics.Metric):
        def __init__(self):
            self.v = self.add_variable(shape=(), initializer="zeros")

    with pytest.raises(RuntimeError, match="super"):
        NoSuper()

    class NoInit(fd.metrics.Metric):
        def __init__(self):
            super().__init__()
            self.v = self.add_weight(name="v")

    with pytest.raises(ValueError, match="initializer"):
        NoInit()

    class Forms(fd.metrics.Metric):
        def __init__(self):
            super().__init__(name="forms")
            self.a = self.add_variable((2, 2), fd.initializers.Constant(3.0), name="a")
            self.b = self.add_variable(2, lambda shape, dtype=None: np.full(shape, 5.0, dtype),
                                       name="b")
            self.c = self.add_variable((2,), {"class_name": "Ones", "config": {}}, name="c")

    f = Forms()
    np.testing.assert_array_equal(f.a.numpy(), np.full((2, 2), 3.0))
    np.testing.assert_array_equal(f.b.numpy(), [5.0, 5.0])
    np.testing.assert_array_equal(f.c.numpy(), [1.0, 1.0])
    assert [v.path for v in f.variables] == ["forms/a", "forms/b", "forms/c"]


def test_variable_arithmetic_and_conversions():
    v = fd.Variable(np.float32(3.0), name="v")
    w = fd.Variable(np.array([1.0, 2.0], "float32"))
    assert float(v) == 3.0 and int(v) == 3 and bool(v)
    assert f"{v:.2f}" == "3.00"
    for got, want in [(v + 1.5, 4.5), (1.5 + v, 4.5), (v - 1, 2.0), (10 - v, 7.0),
                      (v * 2, 6.0), (2 * v, 6.0), (v / 2, 1.5), (6 / v, 2.0), (v ** 2, 9.0),
                      (2 ** v, 8.0), (-v, -3.0), (abs(-v), 3.0), (v // 2, 1.0), (v % 2, 1.0),
                      (v + v, 6.0)]:
        assert isinstance(got, (np.ndarray, np.generic))
        assert got.dtype == np.float32 and float(got) == want
    np.testing.assert_array_equal(w * v, [3.0, 6.0])
    np.testing.assert_array_equal(w > 1.5, [False, True])
    np.testing.assert_array_equal(np.asarray(w) @ w, 5.0)
    np.testing.assert_array_equal(fd.ops.divide_no_nan(w, fd.ops.convert_to_tensor([0., 4.])),
                                  [0.0, 0.5])
    i = fd.Variable(np.int32(3), dtype="int32")
    assert (i / 2).dtype == np.float32 and float(i / 2) == 1.5  # Keras's int / int -> float32
    w.assign_add(1.0)  # a scalar broadcasts, as in Keras
    np.testing.assert_array_equal(w.numpy(), [2.0, 3.0])
    assert {v: 1}[v] == 1 and v in [w, v]  # hashable; `in` by identity
    z = fd.Variable("zeros", shape=(2,))
    np.testing.assert_array_equal(z.numpy(), [0.0, 0.0])
    with pytest.raises(ValueError, match="initializer=None"):
        fd.Variable(None, shape=(2,))


# --------------------------------------------------------------------------
# 2. serialized initializers, regularizers, constraints; layer configs
# --------------------------------------------------------------------------
INIT_NAMES = ["Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal", "TruncatedNormal",
              "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
              "LecunUniform", "LecunNormal", "Orthogonal", "Identity"]


@pytest.mark.parametrize("name", INIT_NAMES)
def test_initializers_get_accepts_keras_dicts(name):
    I = fd.initializers
    cls = getattr(I, name)
    obj = cls()
    short = {"class_name": name, "config": obj.get_config()}
    full = {"module": "keras.initializers", "class_name": name, "config": obj.get_config(),
            "registered_name": None}
    for ident in (short, full, json.loads(json.dumps(full)), I.serialize(obj)):
        got = I.get(ident)
        assert type(got) is cls
        assert got.get_config() == obj.get_config()
    assert type(I.get(cls)) is cls  # a class gives an instance, as in Keras


def test_initializers_get_dict_configs_and_errors():
    I = fd.initializers
    g = I.get({"class_name": "GlorotUniform", "config": {"seed": None}})
    assert isinstance(g, I.GlorotUniform) and g.seed is None
    g = I.get({"module": "keras.initializers", "class_name": "GlorotUniform",
               "config": {"seed": 7, "input_axes": None, "output_axes": None},
               "registered_name": None})
    np.testing.assert_array_equal(g((4, 3)), I.GlorotUniform(seed=7)((4, 3)))
    c = I.get({"class_name": "Constant", "config": {"value": 2.5}})
    np.testing.assert_array_equal(c((2,)), [2.5, 2.5])
    assert I.get({"class_name": "glorot_uniform", "config": {}}).__class__ is I.GlorotUniform
    assert I.get(None) is None  # as Keras 3
    np.testing.assert_array_equal(I.get(np.eye(2))((2, 2)), np.eye(2))
    with pytest.raises(ValueError, match="Could not interpret"):
        I.get({"class_name": "NoSuchInit", "config": {}})
    with pytest.raises(ValueError, match="custom_objects"):
        I.get({"module": "my_package", "class_name": "Zeros", "config": {},
               "registered_name": "MyZeros"})

    class MyInit(I.Initializer):
        def __init__(self, value=1.0):
            self.value = value

        def __call__(self, shape, dtype=None):
            return np.full(shape, self.value, dtype or "float32")

        def get_config(self):
            return {"value": self.value}

    ser = I.serialize(MyInit(4.0))
    assert ser["class_name"] == "MyInit" and ser["registered_name"] == "MyInit"
    got = I.deserialize(ser, custom_objects={"MyInit": MyInit})
    assert isinstance(got, MyInit) and got.value == 4.0


def test_initializer_configs_match_keras():
    keras = _keras()
    for name in INIT_NAMES:
        if name == "Identity":  # Keras's get_config drops `gain`; fastdense keeps it
            continue
        k = getattr(keras.initializers, name)()
        f = getattr(fd.initializers, name)()
        assert f.get_config() == k.get_config(), name
        assert fd.initializers.serialize(f) == keras.initializers.serialize(k), name
        # each reads the other's serialized form
        assert type(fd.initializers.get(keras.initializers.serialize(k))).__name__ == name
        assert type(keras.initializers.get(fd.initializers.serialize(f))).__name__ == name


def test_variance_scaling_fan_axes_as_keras():
    I = fd.initializers
    assert I.compute_fans((3, 4, 5), input_axes=[0], output_axes=[1, 2]) == (3.0, 20.0)
    assert I.compute_fans((3, 4, 5)) == (12.0, 15.0)
    init = I.VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform",
                             input_axes=[0], output_axes=[1, 2], seed=1)
    v = init((3, 40, 50))
    limit = np.sqrt(3.0 * 2.0 / 3.0)
    assert np.abs(v).max() <= limit and np.abs(v).max() > 0.99 * limit
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"


def test_regularizers_and_constraints_get_accept_keras_dicts():
    R, C = fd.regularizers, fd.constraints
    for ident in ({"class_name": "L2", "config": {"l2": 0.1}},
                  {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.1},
                   "registered_name": None}):
        r = R.get(ident)
        assert isinstance(r, R.L2) and r.l2 == pytest.approx(0.1)
    r = R.get(R.serialize(R.L1L2(l1=0.01, l2=0.02)))
    assert isinstance(r, R.L1L2) and (r.l1, r.l2) == (0.01, 0.02)
    assert isinstance(R.get(R.L1), R.L1) and R.deserialize({"class_name": "l1", "config": {}})
    for ident in ({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 0}},
                  {"module": "keras.constraints", "class_name": "MaxNorm",
                   "config": {"max_value": 3, "axis": 0}, "registered_name": None}):
        c = C.get(ident)
        assert isinstance(c, C.MaxNorm) and c.get_config() == {"max_value": 3, "axis": 0}
    assert isinstance(C.get(C.NonNeg), C.NonNeg)
    with pytest.raises(ValueError):
        R.get({"module": "my_package", "class_name": "L2", "config": {}})
    with pytest.raises(ValueError):
        C.get({"module": "my_package", "class_name": "MaxNorm", "config": {}})


def _dense_kwargs():
    return dict(units=3, activation="relu", kernel_initializer=fd.initializers.HeNormal(seed=3),
                bias_initializer=fd.initializers.Constant(0.5), kernel_regularizer="l2",
                bias_regularizer=fd.regularizers.L1L2(0.01, 0.02), kernel_constraint="max_norm",
                bias_constraint="non_neg", name="d")


def test_dense_and_batchnorm_from_config_round_trip():
    L = fd.layers
    d = L.Dense(**_dense_kwargs())
    cfg = d.get_config()
    assert cfg["kernel_initializer"] == {
        "module": "keras.initializers", "class_name": "HeNormal",
        "config": {"seed": 3, "input_axes": None, "output_axes": None},
        "registered_name": None}
    assert cfg["bias_initializer"] == {"module": "keras.initializers", "class_name": "Constant",
                                       "config": {"value": 0.5}, "registered_name": None}
    for config in (cfg, json.loads(json.dumps(cfg))):
        d2 = L.Dense.from_config(config)
        assert d2.get_config() == cfg
        d.build((None, 4))
        d2.build((None, 4))
        np.testing.assert_array_equal(d2.kernel.numpy(), d.kernel.numpy())  # same seed
        np.testing.assert_array_equal(d2.bias.numpy(), [0.5, 0.5, 0.5])
    assert L.Dense.from_config(L.Dense(3).get_config()).units == 3
    assert L.Dense(**L.Dense(3).get_config()).units == 3  # the config is also kwargs

    bn = L.BatchNormalization(momentum=0.9, epsilon=1e-4, center=False,
                              gamma_initializer=fd.initializers.Constant(2.0),
                              gamma_regularizer="l2", beta_constraint="non_neg")
    bcfg = bn.get_config()
    bn2 = L.BatchNormalization.from_config(json.loads(json.dumps(bcfg)))
    assert bn2.get_config() == bcfg
    bn2.build((None, 3))
    np.testing.assert_array_equal(bn2.gamma.numpy(), [2.0, 2.0, 2.0])
    for cls, kw in ((L.Dropout, {"rate": 0.3, "seed": 1}), (L.Flatten, {}),
                    (L.Activation, {"activation": "tanh"})):
        layer = cls(**kw)
        assert cls.from_config(layer.get_config()).get_config() == layer.get_config()


def test_layer_from_config_rejects_what_fastdense_lacks():
    L = fd.layers
    cfg = L.Dense(3).get_config()
    with pytest.raises(NotImplementedError, match="quantization_config"):
        L.Dense.from_config(dict(cfg, quantization_config={"mode": "int8"}))
    with pytest.raises(ValueError, match="float32"):
        L.Dense.from_config(dict(cfg, dtype={"module": "keras", "class_name": "DTypePolicy",
                                             "config": {"name": "float16"},
                                             "registered_name": None}))


def test_layer_configs_match_keras_and_load_from_keras_configs():
    keras = _keras()
    kw = dict(units=3, activation="relu", kernel_regularizer="l2",
              bias_regularizer=keras.regularizers.L1L2(0.01, 0.02),
              kernel_constraint="max_norm", bias_constraint="non_neg", name="d")
    fkw = dict(kw, bias_regularizer=fd.regularizers.L1L2(0.01, 0.02))
    kc, fc = keras.layers.Dense(**kw).get_config(), fd.layers.Dense(**fkw).get_config()
    # Keras's keys and values, the dtype as its DTypePolicy dict and
    # quantization_config (always None here) included; the constructor takes
    # the config as it is
    assert list(fc) == list(kc)
    for key in fc:
        assert fc[key] == kc[key], key
    assert fd.layers.Dense(**fc).get_config() == fc
    d = fd.layers.Dense.from_config(kc)
    assert d.get_config() == fc
    k2 = keras.layers.Dense.from_config(fc)  # and Keras reads fastdense's
    assert k2.get_config() == kc

    bkw = dict(momentum=0.9, epsilon=1e-4, center=False, gamma_regularizer="l2",
               beta_constraint="non_neg", name="bn")
    kb = keras.layers.BatchNormalization(**bkw).get_config()
    fb = fd.layers.BatchNormalization(**bkw).get_config()
    assert set(kb) == set(fb)
    assert {k: v for k, v in fb.items() if k != "dtype"} == {
        k: v for k, v in kb.items() if k != "dtype"}
    assert fd.layers.BatchNormalization.from_config(kb).get_config() == fb
    assert keras.layers.BatchNormalization.from_config(fb).get_config() == kb
    for name, kwargs in (("Dropout", {"rate": 0.25}), ("Flatten", {}),
                         ("Activation", {"activation": "tanh"})):
        kcfg = getattr(keras.layers, name)(**kwargs).get_config()
        layer = getattr(fd.layers, name).from_config(kcfg)
        assert {k: v for k, v in layer.get_config().items() if k != "dtype"} == {
            k: v for k, v in kcfg.items() if k != "dtype"}
    ki = keras.layers.InputLayer(shape=(4,)).get_config()
    assert fd.layers.InputLayer.from_config(ki)._batch_input_shape == (None, 4)


def test_saving_round_trip_with_seeded_initializers(tmp_path):
    pytest.importorskip("h5py")
    m = fd.Sequential([fd.Input(shape=(4,)), fd.layers.Dense(**_dense_kwargs()),
                       fd.layers.BatchNormalization(),
                       fd.layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = str(tmp_path / "m.keras")
    m.save(path)
    back = fd.saving.load_model(path)
    assert back.layers[0].get_config() == m.layers[0].get_config()
    for a, b in zip(back.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    clone = fd.Sequential.from_config(m.get_config())
    assert clone.get_config() == m.get_config()


# --------------------------------------------------------------------------
# 3. keras.backend and keras.config
# --------------------------------------------------------------------------
def test_backend_module_values():
    B = fd.backend
    assert B.epsilon() == 1e-7 and B.floatx() == "float32"
    assert B.image_data_format() == "channels_last"
    assert B.backend() == "numpy"
    B.set_floatx("float32")
    with pytest.raises(ValueError, match="float32 only"):
        B.set_floatx("float64")
    with pytest.raises(ValueError, match="Unknown `floatx`"):
        B.set_floatx("float99")
    B.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="channels_last"):
        B.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match="data_format"):
        B.set_image_data_format("nchw")
    assert B.standardize_dtype(None) == "float32" and B.standardize_dtype(int) == "int32"
    assert B.standardize_dtype(np.float64) == "float64"
    assert B.is_float_dtype("float16") and B.is_int_dtype("uint8")
    assert B.is_keras_tensor(fd.Input(shape=(3,))) and not B.is_keras_tensor(np.zeros(3))
    import fastdense.backend as B2
    assert B2 is B


def test_set_epsilon_reaches_ops_crossentropies():
    B = fd.backend
    t, o = np.array([1.0], "float32"), np.array([0.0], "float32")  # -log(clip(0, eps, 1))
    try:
        assert float(np.mean(fd.ops.binary_crossentropy(t, o))) == pytest.approx(
            -np.log(1e-7), rel=1e-3)
        B.set_epsilon(1e-2)
        assert B.epsilon() == 1e-2 and fd.config.epsilon() == 1e-2
        assert float(np.mean(fd.ops.binary_crossentropy(t, o))) == pytest.approx(
            -np.log(1e-2), rel=1e-4)
        with pytest.raises(ValueError):
            B.set_epsilon("tiny")
    finally:
        B.set_epsilon(1e-7)
    assert fd.ops._EPSILON == 1e-7


def test_set_epsilon_matches_keras_ops():
    keras = _keras()
    t, o = np.array([1.0, 0.0], "float32"), np.array([0.0, 1.0], "float32")
    try:
        for lib in (fd, keras):
            lib.config.set_epsilon(1e-3)
        f = np.asarray(fd.ops.binary_crossentropy(t, o))
        k = np.asarray(keras.ops.binary_crossentropy(t, o))
        np.testing.assert_allclose(f, k, rtol=1e-5)
    finally:
        fd.config.set_epsilon(1e-7)
        keras.config.set_epsilon(1e-7)


def test_clear_session_resets_names_as_keras(restore_names):
    def names(lib):
        lib.backend.clear_session()
        out = [lib.layers.Dense(2).name, lib.layers.Dense(2).name,
               lib.layers.BatchNormalization().name, lib.Sequential().name,
               lib.metrics.AUC().name, lib.metrics.Precision().name,
               lib.backend.get_uid("dense"), lib.layers.Dense(2).name,
               lib.backend.get_uid("fresh_prefix")]
        lib.backend.clear_session()
        out += [lib.layers.Dense(2).name, lib.Sequential().name, lib.metrics.AUC().name]
        return out

    got = names(fd)
    assert got == ["dense", "dense_1", "batch_normalization", "sequential", "auc",
                   "precision", 3, "dense_3", 1, "dense", "sequential", "auc"]
    keras = _maybe_keras()
    if keras is not None:
        assert names(keras) == got


def test_clear_session_keeps_existing_models_working(restore_names):
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    m = fd.Sequential([fd.Input(shape=(3,)), fd.layers.Dense(2)])
    before = m.predict(x, verbose=0)
    fd.backend.clear_session()
    np.testing.assert_array_equal(m.predict(x, verbose=0), before)
    m2 = fd.Sequential([fd.Input(shape=(3,)), fd.layers.Dense(2)])
    assert m2.layers[0].name == "dense"


def test_config_is_a_module_and_stays_callable(capsys, monkeypatch):
    import types

    import fastdense.config as C
    assert C is fd.config and isinstance(fd.config, types.ModuleType)
    native = fd.config()  # the native configuration, as before
    assert native["isa"] in native["available_isas"] and native["num_threads"] >= 1
    assert fd.config.native_config() == native
    assert fd.config.backend() == "numpy" and fd.config.floatx() == "float32"
    assert fd.config.epsilon() == 1e-7 and fd.config.image_data_format() == "channels_last"
    with pytest.raises(ValueError):
        fd.config.set_floatx("float16")
    monkeypatch.setattr(fd.config, "_unsafe_deserialization", False)  # (restored after)
    fd.config.enable_unsafe_deserialization()  # lifts safe mode; file code still never runs
    assert fd.config._unsafe_deserialization
    from fastdense.config import floatx
    assert floatx() == "float32"
    fd.show_config()
    out = capsys.readouterr().out
    assert "isa:" in out and "num_threads:" in out
    import platform
    if platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        assert fd._core.flushes_subnormals()
        assert native["subnormals"] == "flushed to zero in native computation"
    assert "backend" in fd.__all__ and "config" in fd.__all__


def test_config_and_backend_names_exist_in_keras():
    keras = _keras()
    for mod, names in ((fd.backend, fd.backend.__all__), (fd.config, fd.config.__all__)):
        kmod = keras.backend if mod is fd.backend else keras.config
        for name in names:
            if name == "native_config":
                continue
            assert hasattr(kmod, name), name
    for name in ("epsilon", "floatx", "image_data_format"):
        assert getattr(fd.config, name)() == getattr(keras.config, name)()
