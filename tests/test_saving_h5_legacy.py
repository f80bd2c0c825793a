"""Keras's legacy H5 model format (``model.save("m.h5")``, ``load_model("m.h5")``,
``ModelCheckpoint("best.h5")``), as Keras 3 writes and reads it
(keras/src/legacy/saving/legacy_h5_format.py).

The cross-library tests generate their files with real Keras 3 (JAX backend)
and are skipped without it; the rest needs only h5py (``fastdense[h5]``)."""
import importlib.util
import io
import json
import os
import sys
import warnings
import zipfile

import numpy as np
import pytest

import fastdense as fd
from fastdense import callbacks, saving

needs_h5 = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                              reason="h5py (fastdense[h5]) is not installed")
pytestmark = needs_h5

# Optimizers (fastdense's and Keras's share the API), with non-default options so
# that every slot kind is exercised.
OPTIMIZERS = {
    "sgd_nesterov": lambda lib: lib.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda lib: lib.optimizers.RMSprop(momentum=0.5, centered=True),
    "adam": lambda lib: lib.optimizers.Adam(0.01),
    "adamw_amsgrad": lambda lib: lib.optimizers.AdamW(amsgrad=True),
    "adagrad": lambda lib: lib.optimizers.Adagrad(0.05),
    "adadelta": lambda lib: lib.optimizers.Adadelta(1.0),
    "adamax": lambda lib: lib.optimizers.Adamax(),
    "nadam": lambda lib: lib.optimizers.Nadam(),
    "lion": lambda lib: lib.optimizers.Lion(1e-3),
    "lamb": lambda lib: lib.optimizers.Lamb(1e-3),
    "ftrl": lambda lib: lib.optimizers.Ftrl(0.05, l1_regularization_strength=1e-4),
    "sgd_schedule": lambda lib: lib.optimizers.SGD(
        lib.optimizers.schedules.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.9)),
}


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("these tests compare with Keras on its JAX backend")
    return keras


def _data(seed=0, n=32):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, 3), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


def _model(lib=fd, opt="adam", compile=True, frozen=False, name="seq"):
    """Every layer fastdense saves: Flatten, Dense (regularizer, constraint),
    BatchNormalization, Dropout, Activation. Named as Keras names them in a
    fresh session (automatic names count up across a test session)."""
    model = lib.Sequential([
        lib.Input(shape=(4, 3), name="input_layer"),
        lib.layers.Flatten(name="flatten"),
        lib.layers.Dense(6, activation="relu", kernel_regularizer=lib.regularizers.L2(1e-3),
                         kernel_constraint=lib.constraints.MaxNorm(3.0), name="dense"),
        lib.layers.BatchNormalization(name="batch_normalization"),
        lib.layers.Dropout(0.25, name="dropout"),
        lib.layers.Dense(5, activation="tanh", use_bias=False, trainable=not frozen,
                         name="dense_1"),
        lib.layers.Dense(3, name="dense_2"),
        lib.layers.Activation("softmax", name="activation"),
    ], name=name)
    if compile:
        model.compile(optimizer=OPTIMIZERS[opt](lib), loss="categorical_crossentropy",
                      metrics=["accuracy", lib.metrics.MeanAbsoluteError()])
    return model


def _trained(opt="adam", **kw):
    model = _model(opt=opt, **kw)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return model


def _h5_tree(path):
    """{path: (attributes, shape, dtype)} of every group and dataset."""
    import h5py

    def attrs(obj):
        out = {}
        for key in obj.attrs:
            value = obj.attrs[key]
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    with h5py.File(path, "r") as f:
        tree = {"/": (attrs(f), None, None)}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                tree[name] = (attrs(obj), obj.shape, obj.dtype)
            else:
                tree[name] = (attrs(obj), None, None)
        f.visititems(visit)
    return tree


def _assert_same_model(a, b, x):
    assert [l.name for l in a.layers] == [l.name for l in b.layers]
    assert [type(l) for l in a.layers] == [type(l) for l in b.layers]
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


def _assert_same_training_state(a, b):
    assert b.compiled
    assert type(a.optimizer) is type(b.optimizer)
    # (but the names: default names are unique, as Keras's -- adam, adam_1, ...)
    assert ({k: v for k, v in a.optimizer.get_config().items() if k != "name"}
            == {k: v for k, v in b.optimizer.get_config().items() if k != "name"})
    assert b.optimizer.iterations == a.optimizer.iterations
    assert b.optimizer.learning_rate == a.optimizer.learning_rate
    assert saving.model_to_config(a)["compile_config"] == \
        saving.model_to_config(b)["compile_config"]
    np.testing.assert_array_equal(a._net.optimizer_state, b._net.optimizer_state)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_round_trip_resumes_training_exactly(tmp_path, opt):
    model = _trained(opt)
    path = tmp_path / "m.h5"
    model.save(str(path))
    loaded = fd.models.load_model(str(path))
    x, y = _data(1)
    _assert_same_model(model, loaded, x)
    _assert_same_training_state(model, loaded)
    assert loaded.optimizer.iterations == 8
    # one more epoch on each: identical, so the optimizer's state came back whole
    for m in (model, loaded):
        fd.utils.set_random_seed(7)  # the same dropout masks for both
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    _assert_same_model(model, loaded, x)
    _assert_same_training_state(model, loaded)


def test_round_trip_hdf5_extension_pathlike_and_file_object(tmp_path):
    model = _trained("adam")
    x, _ = _data(1)
    saving.save_model(model, tmp_path / "m.hdf5")  # a PathLike and `.hdf5`
    loaded = saving.load_model(tmp_path / "m.hdf5")
    _assert_same_model(model, loaded, x)
    _assert_same_training_state(model, loaded)
    with open(tmp_path / "m.hdf5", "rb") as f:  # a file object: recognized by its signature
        from_object = saving.load_model(f)
    _assert_same_model(model, from_object, x)
    _assert_same_training_state(model, from_object)


def test_round_trip_frozen_layer_and_custom_names(tmp_path):
    model = _trained("rmsprop_centered", frozen=True, name="my_model")
    model.save(str(tmp_path / "m.h5"))
    loaded = fd.models.load_model(str(tmp_path / "m.h5"))
    assert loaded.name == "my_model"
    assert loaded.layers[4].trainable is False
    x, y = _data(2)
    _assert_same_model(model, loaded, x)
    _assert_same_training_state(model, loaded)
    for m in (model, loaded):
        fd.utils.set_random_seed(7)  # the same dropout masks for both
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    _assert_same_model(model, loaded, x)


def test_compiled_but_untrained_and_uncompiled(tmp_path):
    x, y = _data()
    fresh = _model(opt="adam")
    fresh.save(str(tmp_path / "fresh.h5"))
    loaded = fd.models.load_model(str(tmp_path / "fresh.h5"))
    _assert_same_model(fresh, loaded, x)
    assert loaded.compiled and loaded.optimizer.iterations == 0
    for m in (fresh, loaded):
        fd.utils.set_random_seed(7)
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    _assert_same_model(fresh, loaded, x)

    plain = _model(compile=False)
    plain.save(str(tmp_path / "plain.h5"))
    tree = _h5_tree(tmp_path / "plain.h5")
    assert "training_config" not in tree["/"][0] and "optimizer_weights" not in tree
    loaded = fd.models.load_model(str(tmp_path / "plain.h5"))
    assert not loaded.compiled
    _assert_same_model(plain, loaded, x)


def test_include_optimizer_false_and_compile_false(tmp_path):
    model = _trained("adam")
    x, _ = _data(1)
    saving.save_model(model, tmp_path / "no_opt.h5", include_optimizer=False)
    tree = _h5_tree(tmp_path / "no_opt.h5")
    assert "training_config" not in tree["/"][0] and "optimizer_weights" not in tree
    loaded = saving.load_model(tmp_path / "no_opt.h5")
    assert not loaded.compiled  # as Keras: no training config, no compile
    _assert_same_model(model, loaded, x)

    model.save(str(tmp_path / "full.h5"))
    loaded = saving.load_model(tmp_path / "full.h5", compile=False)
    assert not loaded.compiled
    _assert_same_model(model, loaded, x)


def test_load_weights_from_legacy_file(tmp_path):
    model = _trained("adam")
    model.save(str(tmp_path / "m.h5"))
    other = _model(opt="sgd_nesterov")
    other.load_weights(str(tmp_path / "m.h5"))
    x, _ = _data(1)
    _assert_same_model(model, other, x)
    assert other.optimizer.iterations == 0  # as Keras: no optimizer state from .h5 weights


def _my_loss(y_true, y_pred):
    return fd.ops.mean(fd.ops.square(y_true - y_pred), axis=-1)


class _MyDense(fd.layers.Dense):
    def __init__(self, units, extra=1, **kwargs):
        super().__init__(units, **kwargs)
        self.extra = extra

    def get_config(self):
        return {**super().get_config(), "extra": self.extra}


def test_custom_objects(tmp_path):
    model = fd.Sequential([fd.Input(shape=(3,)), _MyDense(4, extra=5, name="mine"),
                           fd.layers.Dense(2)])
    model.compile("adam", loss=_my_loss, metrics=[_my_loss])
    x = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    model.fit(x, x[:, :2], verbose=0)
    model.save(str(tmp_path / "custom.h5"))
    training = json.loads(_h5_tree(tmp_path / "custom.h5")["/"][0]["training_config"])
    assert training["loss"] == "_my_loss" and training["metrics"] == ["_my_loss"]
    with pytest.raises(ValueError, match=r"custom\.h5.*'mine' is a _MyDense"):
        fd.models.load_model(str(tmp_path / "custom.h5"))
    loaded = fd.models.load_model(str(tmp_path / "custom.h5"),
                                  custom_objects={"_my_loss": _my_loss, "_MyDense": _MyDense})
    assert type(loaded.layers[0]) is _MyDense and loaded.layers[0].extra == 5
    assert loaded.loss is _my_loss
    _assert_same_model(model, loaded, x)
    _assert_same_training_state(model, loaded)


def test_nothing_printed_no_warnings(tmp_path, capsys):
    model = _trained("nadam")
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras only *logs* its deprecation notice
        model.save(str(tmp_path / "m.h5"))
        fd.models.load_model(str(tmp_path / "m.h5"))
        saving.save_model(_model(compile=False), tmp_path / "u.h5")
        fd.models.load_model(str(tmp_path / "u.h5"))
    assert capsys.readouterr() == ("", "")


def test_unbuilt_model(tmp_path):
    model = fd.Sequential([fd.layers.Dense(3), fd.layers.Dense(2)], name="lazy")
    model.save(str(tmp_path / "lazy.h5"))
    loaded = fd.models.load_model(str(tmp_path / "lazy.h5"))
    assert [l.units for l in loaded.layers] == [3, 2] and not loaded.built


# ------------------------------------------------------------------ layout
def test_layout_is_keras_legacy_layout(tmp_path):
    model = _trained("adam")
    path = tmp_path / "m.h5"
    model.save(str(path))
    tree = _h5_tree(path)
    root = tree["/"][0]
    assert set(root) == {"keras_version", "backend", "model_config", "training_config"}
    assert root["keras_version"] == saving.KERAS_VERSION
    config = json.loads(root["model_config"])
    assert list(config) == ["class_name", "config"] and config["class_name"] == "Sequential"
    assert config["config"]["name"] == "seq"
    for entry in config["config"]["layers"]:  # Keras's legacy layer entries
        assert list(entry) == ["class_name", "config"]
    assert [e["class_name"] for e in config["config"]["layers"]] == [
        "InputLayer", "Flatten", "Dense", "BatchNormalization", "Dropout", "Dense", "Dense",
        "Activation"]
    # the layer configs themselves are model_to_config's
    full = saving.model_to_config(model)["config"]["layers"]
    assert [e["config"] for e in config["config"]["layers"]] == [e["config"] for e in full]
    training = json.loads(root["training_config"])
    assert list(training) == ["loss", "loss_weights", "metrics", "weighted_metrics",
                              "run_eagerly", "steps_per_execution", "jit_compile",
                              "optimizer_config"]
    assert training["loss"] == "categorical_crossentropy"
    assert training["metrics"] == ["accuracy", {"class_name": "MeanAbsoluteError",
                                                "config": {"name": "mean_absolute_error",
                                                           "dtype": "float32"}}]
    assert training["optimizer_config"] == {
        "class_name": "Adam",
        "config": saving.model_to_config(model)["compile_config"]["optimizer"]["config"]}
    assert training["optimizer_config"]["config"]["learning_rate"] == float(np.float32(0.01))

    names = [l.name for l in model.layers]
    mw = tree["model_weights"][0]
    assert mw["layer_names"] == names and mw["keras_version"] == saving.KERAS_VERSION
    for layer in model.layers:
        expected = [f"seq/{layer.name}/{w.name}" for w in layer.weights]
        assert tree[f"model_weights/{layer.name}"][0]["weight_names"] == expected
        for w in layer.weights:
            attrs, shape, dtype = tree[f"model_weights/{layer.name}/seq/{layer.name}/{w.name}"]
            assert shape == tuple(w.shape) and dtype == np.float32
    assert tree["model_weights/top_level_model_weights"][0]["weight_names"] == []
    opt_names = tree["optimizer_weights"][0]["weight_names"]
    assert opt_names[:2] == ["adam/iteration", "adam/learning_rate"]
    assert opt_names[2:6] == ["adam/seq_dense_kernel_momentum", "adam/seq_dense_kernel_velocity",
                              "adam/seq_dense_bias_momentum", "adam/seq_dense_bias_velocity"]
    variables = model.optimizer.variables
    assert len(opt_names) == len(variables)
    import h5py
    with h5py.File(path, "r") as f:
        group = f["optimizer_weights"]
        assert int(group["adam/iteration"][()]) == 8
        for name, var in zip(opt_names, variables):
            np.testing.assert_array_equal(group[name][()], np.asarray(var.numpy()))


def test_nadam_u_product_is_named_as_keras_names_it(tmp_path):
    model = _trained("nadam")
    model.save(str(tmp_path / "m.h5"))
    names = _h5_tree(tmp_path / "m.h5")["optimizer_weights"][0]["weight_names"]
    assert names[-1] == "variable"  # Keras 3.15 creates u_product unnamed
    assert len(names) == len(model.optimizer.variables)


def test_long_attribute_lists_are_chunked_as_keras_does(tmp_path):
    import h5py
    layers = [fd.Input(shape=(2,))] + [
        fd.layers.Dense(2, name=f"a_rather_long_layer_name_to_fill_the_object_header_{i:04d}"
                        + "_" * 40)
        for i in range(800)]
    model = fd.Sequential(layers)
    model.save(str(tmp_path / "big.h5"))
    with h5py.File(tmp_path / "big.h5", "r") as f:
        attrs = f["model_weights"].attrs
        assert "layer_names" not in attrs and "layer_names0" in attrs and "layer_names1" in attrs
    loaded = fd.models.load_model(str(tmp_path / "big.h5"))
    x = np.ones((3, 2), np.float32)
    _assert_same_model(model, loaded, x)


# ------------------------------------------------------------------ ModelCheckpoint
@pytest.mark.filterwarnings("ignore:Epoch .* the training loss is")
def test_model_checkpoint_best_h5(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 20)).astype("float32") * 100
    y = rng.normal(size=(64, 10)).astype("float32")
    fd.utils.set_random_seed(0)
    model = fd.Sequential([fd.Input(shape=(20,)), fd.layers.Dense(10)])
    model.compile(fd.optimizers.SGD(5.0), loss="mse")  # diverges: the first epoch is best
    best = tmp_path / "ckpt" / "best.h5"
    first = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: first.append(
        (model.get_weights(), model.optimizer.iterations)) if e == 0 else None)
    ckpt = callbacks.ModelCheckpoint(str(best), monitor="loss", save_best_only=True)
    assert not ckpt.save_weights_only
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[rec, ckpt])
    assert os.listdir(tmp_path / "ckpt") == ["best.h5"]
    assert "model_config" in _h5_tree(best)["/"][0]  # the legacy whole-model format
    loaded = fd.models.load_model(str(best))
    weights, iterations = first[0]
    for a, b in zip(loaded.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert loaded.compiled and loaded.optimizer.iterations == iterations == 4


def test_model_checkpoint_h5_every_epoch(tmp_path):
    x, y = _data()
    model = _model(opt="adam")
    pattern = str(tmp_path / "ckpt-{epoch:02d}.h5")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(pattern, monitor="loss")])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.h5", "ckpt-02.h5"]
    last = fd.models.load_model(str(tmp_path / "ckpt-02.h5"))
    _assert_same_model(model, last, x)
    _assert_same_training_state(model, last)


def test_model_checkpoint_extensions():
    callbacks.ModelCheckpoint("best.h5")
    callbacks.ModelCheckpoint("best.keras")
    with pytest.raises(ValueError, match=r"must end in `\.keras`.*or `\.h5`.*best\.hdf5"):
        callbacks.ModelCheckpoint("best.hdf5")  # as Keras 3's ModelCheckpoint
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        callbacks.ModelCheckpoint("best.h5", save_weights_only=True)


# ------------------------------------------------------------------ errors
def test_missing_h5py(tmp_path, monkeypatch):
    model = _model()
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"fastdense\[h5\]"):
        model.save(str(tmp_path / "m.h5"))
    with pytest.raises(ImportError, match=r"fastdense\[h5\]"):
        fd.models.load_model(str(tmp_path / "m.h5"))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file", b"\x89HDF\r\n\x1a\n", "zip",
                                     "truncated"])
def test_not_a_legacy_h5_file(tmp_path, content):
    if content == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("config.json", "{}")
        content = buf.getvalue()
    elif content == "truncated":
        _trained("adam").save(str(tmp_path / "good.h5"))
        data = (tmp_path / "good.h5").read_bytes()
        content = data[: len(data) // 2]
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.h5.*(legacy H5|truncated or corrupt)"):
        saving.load_model(path)
    if content.startswith(b"PK"):
        with pytest.raises(ValueError, match=r"zip archive: a `\.keras` file"):
            saving.load_model(path)


def test_hdf5_files_that_hold_no_model(tmp_path):
    import h5py
    model = _trained("adam")
    model.save_weights(str(tmp_path / "m.weights.h5"))
    with pytest.raises(ValueError, match=r"m\.weights\.h5.*No model config found.*"
                                         r"`\.weights\.h5` file.*load_weights"):
        saving.load_model(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.attrs["something"] = "else"
    with pytest.raises(ValueError, match=r"empty\.h5.*No model config found"):
        saving.load_model(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "bad_json.h5", "w") as f:
        f.attrs["model_config"] = b"{nope"
    with pytest.raises(ValueError, match=r"bad_json\.h5.*model_config.*not valid JSON"):
        saving.load_model(tmp_path / "bad_json.h5")
    with h5py.File(tmp_path / "no_weights.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": {"name": "s", "layers": []}}).encode()
    with pytest.raises(ValueError, match=r"no_weights\.h5.*no 'model_weights' group"):
        saving.load_model(tmp_path / "no_weights.h5")


def _edit(src, dst, edit):
    import h5py
    data = open(src, "rb").read()
    with open(dst, "wb") as out:
        out.write(data)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return str(dst)


def test_mismatched_weights_are_refused_and_nothing_is_loaded(tmp_path):
    model = _trained("adam")
    src = tmp_path / "m.h5"
    model.save(str(src))

    def drop_layer(f):
        names = [n for n in f["model_weights"].attrs["layer_names"] if n != "dense_1"]
        f["model_weights"].attrs["layer_names"] = names
    path = _edit(src, tmp_path / "fewer.h5", drop_layer)
    with pytest.raises(ValueError, match=r"fewer\.h5.*Layer count mismatch.*expected 4 layers, "
                                         r"found 3 saved layers"):
        saving.load_model(path)

    def wrong_shape(f):
        del f["model_weights/dense/seq/dense/bias"]
        f["model_weights/dense/seq/dense"].create_dataset("bias", data=np.zeros(7, np.float32))
    path = _edit(src, tmp_path / "shape.h5", wrong_shape)
    with pytest.raises(ValueError, match=r"shape\.h5.*Shape mismatch in layer #0.*\(6,\).*\(7,\)"):
        saving.load_model(path)

    def missing_dataset(f):
        del f["model_weights/dense/seq/dense/kernel"]
    path = _edit(src, tmp_path / "missing.h5", missing_dataset)
    with pytest.raises(ValueError, match=r"missing\.h5.*has no 'model_weights/dense/seq/dense/"
                                         r"kernel'"):
        saving.load_model(path)

    # load_weights assigns nothing when a layer does not match
    other = _model()
    before = other.get_weights()
    with pytest.raises(ValueError, match="Shape mismatch"):
        other.load_weights(str(tmp_path / "shape.h5"))
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_links_to_other_files_are_refused(tmp_path):
    import h5py
    model = _trained("adam")
    src = tmp_path / "m.h5"
    model.save(str(src))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("kernel", data=np.zeros((12, 6), np.float32))

    def external(f):
        del f["model_weights/dense/seq/dense/kernel"]
        f["model_weights/dense/seq/dense/kernel"] = h5py.ExternalLink(
            str(tmp_path / "other.h5"), "kernel")
    path = _edit(src, tmp_path / "ext.h5", external)
    with pytest.raises(ValueError, match=r"ext\.h5.*refusing the ExternalLink"):
        saving.load_model(path)

    def soft(f):
        del f["model_weights/dense/seq/dense/kernel"]
        f["model_weights/dense/seq/dense/kernel"] = h5py.SoftLink("/model_weights/dense_2")
    path = _edit(src, tmp_path / "soft.h5", soft)
    with pytest.raises(ValueError, match=r"soft\.h5.*refusing the SoftLink"):
        saving.load_model(path)


def test_foreign_optimizer_layout_is_skipped_with_a_warning(tmp_path):
    """Keras 2 ordered and named its optimizer state differently; such state
    is skipped (with Keras's warning) rather than loaded into the wrong slots."""
    model = _trained("adam")
    src = tmp_path / "m.h5"
    model.save(str(src))

    def keras2_names(f):
        group = f["optimizer_weights"]
        names = list(group.attrs["weight_names"])
        renamed = names[:2] + [n.replace("_momentum", "_m").replace("_velocity", "_v")
                               for n in names[2:]]
        for old, new in zip(names[2:], renamed[2:]):
            group.move(old, new)
        group.attrs["weight_names"] = renamed
    path = _edit(src, tmp_path / "keras2.h5", keras2_names)
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer 'adam'"):
        loaded = saving.load_model(path)
    x, _ = _data(1)
    _assert_same_model(model, loaded, x)
    assert loaded.optimizer.iterations == 0

    def fewer(f):
        group = f["optimizer_weights"]
        group.attrs["weight_names"] = list(group.attrs["weight_names"])[:-1]
    path = _edit(src, tmp_path / "fewer_opt.h5", fewer)
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer 'adam'"):
        saving.load_model(path)


def test_save_errors(tmp_path):
    model = _model()
    model.save(str(tmp_path / "m.h5"))
    with pytest.raises(FileExistsError):
        saving.save_model(model, tmp_path / "m.h5", overwrite=False)
    with pytest.raises(ValueError, match=r"expected a `\.keras` extension.*`\.h5`"):
        saving.save_model(model, tmp_path / "m.txt")
    with pytest.raises(FileNotFoundError, match=r"nope\.h5.*legacy H5"):
        saving.load_model(tmp_path / "nope.h5")
    with pytest.raises(ValueError, match="File not found"):
        saving.load_model(tmp_path / "nope.hdf5")
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]  # no temporary file left behind


# ------------------------------------------------------------------ real Keras
def _keras_model(keras, opt, frozen=False):
    keras.backend.clear_session()  # Keras's automatic names (optimizers') count up
    keras.utils.set_random_seed(0)
    return _model(lib=keras, opt=opt, frozen=frozen)


def _fit(model):
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JAX/numpy deprecation chatter
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)


def _keras_save(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(path))


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_loads_files_written_by_keras(tmp_path, opt):
    keras = _keras()
    km = _keras_model(keras, opt, frozen=(opt == "rmsprop_centered"))
    _fit(km)
    path = tmp_path / "keras.h5"
    _keras_save(km, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = fd.models.load_model(str(path))
    x, y = _data(1)
    kw = [np.asarray(w) for w in km.get_weights()]
    assert len(model.get_weights()) == len(kw)
    for a, b in zip(model.get_weights(), kw):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert model.compiled and type(model.optimizer).__name__ == type(km.optimizer).__name__
    assert model.optimizer.iterations == int(km.optimizer.iterations) == 8
    # the optimizer's whole state came in: saved again, it is Keras's, variable
    # for variable, under Keras's names and in Keras's order
    model.save(str(tmp_path / "again.h5"))
    import h5py
    with h5py.File(tmp_path / "again.h5", "r") as f:
        group = f["optimizer_weights"]
        names = [str(n) for n in group.attrs["weight_names"]]
        assert names == [v.path for v in km.optimizer.variables]
        for name, var in zip(names, km.optimizer.variables):
            np.testing.assert_array_equal(group[name][()], np.asarray(var), err_msg=name)
    # load_weights reads the same file's layer weights
    other = _model(opt="adam", frozen=(opt == "rmsprop_centered"))
    other.load_weights(str(path))
    _assert_same_model(model, other, x)


@pytest.mark.parametrize("opt", ["adam", "nadam", "rmsprop_centered", "sgd_schedule"])
def test_keras_loads_files_written_by_fastdense(tmp_path, opt):
    keras = _keras()
    model = _trained(opt, frozen=(opt == "rmsprop_centered"))
    path = tmp_path / "fastdense.h5"
    model.save(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = keras.models.load_model(str(path))
        x, _ = _data(1)
        np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)
    for a, b in zip(km.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert km.name == model.name and [l.name for l in km.layers] == [l.name for l in model.layers]
    assert km.compiled and type(km.optimizer).__name__ == type(model.optimizer).__name__
    assert int(km.optimizer.iterations) == model.optimizer.iterations == 8
    written = saving.model_to_config(model)["compile_config"]["optimizer"]["config"]
    assert json.loads(json.dumps(km.optimizer.get_config(), default=float)) == written
    # (Keras 3.15's legacy loader builds the optimizer on no variables, so it
    # restores iterations and the learning rate but not the slots, for its own
    # files as for these.)


def test_same_file_as_keras_writes(tmp_path):
    """For the same model, fastdense writes what Keras writes: the same
    configs, groups, attributes, dataset names, shapes and dtypes (but the
    backend attribute, and the iteration count's integer width)."""
    keras = _keras()
    km = _keras_model(keras, "nadam")
    _fit(km)
    _keras_save(km, tmp_path / "keras.h5")
    model = _trained("nadam")
    model.save(str(tmp_path / "ours.h5"))
    theirs, ours = _h5_tree(tmp_path / "keras.h5"), _h5_tree(tmp_path / "ours.h5")
    assert sorted(theirs) == sorted(ours)
    for key in theirs:
        (a_attrs, a_shape, a_dtype), (b_attrs, b_shape, b_dtype) = theirs[key], ours[key]
        a_attrs = {k: v for k, v in a_attrs.items() if k != "backend"}
        b_attrs = {k: v for k, v in b_attrs.items() if k != "backend"}
        for k in ("model_config", "training_config"):
            if k in a_attrs:
                a_attrs[k], b_attrs[k] = json.loads(a_attrs[k]), json.loads(b_attrs[k])
        assert a_attrs == b_attrs, key
        assert a_shape == b_shape, key
        if key.endswith("/iteration"):
            assert a_dtype.kind == b_dtype.kind == "i", key
        else:
            assert a_dtype == b_dtype, key
    assert theirs["/"][0]["backend"] == "jax" and ours["/"][0]["backend"] == "numpy"
