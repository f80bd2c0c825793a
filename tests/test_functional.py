"""The functional API for chains of layers: ``Model(inputs, outputs)`` built
from layer calls on ``Input()`` tensors runs as the Sequential stack of
those layers, with Keras 3's layer list, weight paths, configs and files;
graphs fastdense cannot run raise clear errors; and, where Keras is
installed, the same training, configs and files as Keras side by side."""
import json
import os
import pickle

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers, models


def _mlp(lib=fd, name=None):
    L = lib.layers
    inputs = lib.Input(shape=(6,))
    x = L.Dense(8, activation="relu")(inputs)
    x = L.BatchNormalization()(x)
    x = L.Dropout(0.0)(x)
    x = L.LayerNormalization()(x)
    outputs = L.Dense(3, activation="softmax")(x)
    return lib.Model(inputs=inputs, outputs=outputs, name=name)


def test_chain_becomes_a_functional_model():
    m = _mlp()
    assert type(m).__name__ == "Functional" and isinstance(m, models.Model)
    assert isinstance(m, models.Sequential)  # (it runs as one)
    assert m.name == "functional"
    assert [l.name for l in m.layers] == ["input_layer", "dense", "batch_normalization",
                                          "dropout", "layer_normalization", "dense_1"]
    assert m.get_layer(index=0) is m.layers[0] and m.get_layer("dense") is m.layers[1]
    assert m.get_layer("input_layer") is m.layers[0]
    # (layers built when called, outside any model: Keras's paths have no model prefix)
    assert [w.path for w in m.weights][:2] == ["dense/kernel", "dense/bias"]
    assert m.input_shape == (None, 6) and m.output_shape == (None, 3)
    assert m.inputs[0].shape == (None, 6) and m.outputs[0].shape == (None, 3)
    assert m.input is m.inputs[0] and m.output is m.outputs[0]
    assert m.count_params() == 6 * 8 + 8 + 4 * 8 + 2 * 8 + 8 * 3 + 3
    lines = []
    m.summary(print_fn=lines.append)
    assert 'Model: "functional"' in lines[0] and "input_layer (InputLayer)" in lines[0]


def test_positional_arguments_names_and_images():
    inputs = fd.Input(shape=(4, 4))
    x = layers.Flatten()(inputs)
    outputs = layers.Dense(2)(x)
    m = fd.models.Model(inputs, outputs, name="tiny")
    assert m.name == "tiny" and m.input_shape == (None, 4, 4)
    assert m.predict(np.ones((3, 4, 4), np.float32), verbose=0).shape == (3, 2)


def test_trains_as_the_same_sequential(rng):
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    f = _mlp()
    s = models.Sequential([layers.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                           layers.BatchNormalization(), layers.Dropout(0.0),
                           layers.LayerNormalization(), layers.Dense(3, activation="softmax")])
    s.set_weights(f.get_weights())
    for m in (f, s):
        m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hf = f.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False).history
    hs = s.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=False).history
    assert hf == hs
    for a, b in zip(f.get_weights(), s.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(f.predict(x, verbose=0), s.predict(x, verbose=0))


def test_config_json_clone_and_pickle(rng):
    m = _mlp()
    m.compile("adam", "mse")
    cfg = m.get_config()
    assert cfg["input_layers"] == ["input_layer", 0, 0]
    assert cfg["output_layers"] == ["dense_1", 0, 0]
    dense = cfg["layers"][1]
    assert dense["name"] == "dense" and dense["inbound_nodes"][0]["args"][0]["config"][
        "keras_history"] == ["input_layer", 0, 0]
    assert cfg["layers"][3]["inbound_nodes"][0]["kwargs"] == {"training": False}
    for again in (models.Model.from_config(cfg), models.Functional.from_config(cfg),
                  models.model_from_json(m.to_json()), models.clone_model(m)):
        assert type(again).__name__ == "Functional"
        assert json.dumps(again.get_config()) == json.dumps(cfg)
    back = pickle.loads(pickle.dumps(m))
    x = rng.normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_save_and_load(tmp_path, rng, ext):
    pytest.importorskip("h5py")
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    m = _mlp(name="net")
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / f"m{ext}")
    m.save(path)
    back = models.load_model(path)
    assert type(back).__name__ == "Functional" and back.name == "net"
    assert [l.name for l in back.layers] == [l.name for l in m.layers]
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    assert back.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)


def test_graphs_it_cannot_run_raise():
    inputs = fd.Input(shape=(5,))
    norm = layers.LayerNormalization()  # (a Dense layer applied twice: test_repeated_calls.py)
    with pytest.raises(NotImplementedError, match="applied more than once"):
        fd.Model(inputs, norm(norm(inputs)))
    other = fd.Input(shape=(5,))
    out = layers.Dense(2)(inputs)
    with pytest.raises(ValueError, match="not computed from the model's input"):
        fd.Model(other, out)
    with pytest.raises(ValueError, match="does not depend on its input"):
        fd.Model([inputs, other], out)  # (several inputs: see test_graphs.py)
    with pytest.raises(NotImplementedError, match="same tensor more than once"):
        fd.Model(inputs, [out, out])  # (several outputs: see test_multi_output.py)
    with pytest.raises(ValueError, match="must come from `keras.Input"):
        fd.Model(out, layers.Dense(1)(out))
    with pytest.raises(NotImplementedError, match="take one input"):
        layers.Dense(2)([inputs, other])
    m = fd.Model(inputs, out)
    with pytest.raises(ValueError, match="`add` is for Sequential"):
        m.add(layers.Dense(1))
    with pytest.raises(ValueError, match="`pop` is for Sequential"):
        m.pop()
    with pytest.raises(NotImplementedError, match="subclassing"):
        fd.Model()
    with pytest.raises(ValueError, match="is incompatible with the layer"):
        m(fd.Input(shape=(6,)))  # (a model called on a tensor nests it: see test_nested.py)
    square = fd.Model(inputs, layers.Dense(5)(inputs))
    other = fd.Input(shape=(5,))
    with pytest.raises(NotImplementedError, match="applied more than once"):
        fd.Model(other, square(square(other)))


def test_loading_rejects_non_chain_graphs(tmp_path):
    m = _mlp()
    cfg = json.loads(m.to_json())
    cfg["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = \
        ["dense_9", 0, 0]
    with pytest.raises(ValueError, match="names a layer 'dense_9' it does not hold"):
        models.model_from_json(json.dumps(cfg))
    cfg = json.loads(m.to_json())
    cfg["config"]["input_layers"] = [["input_layer", 0, 0], ["input_layer_1", 0, 0]]
    with pytest.raises(ValueError, match="'input_layer_1' is not an InputLayer"):
        models.model_from_json(json.dumps(cfg))
    cfg = json.loads(m.to_json())
    cfg["config"]["output_layers"] = [["dense", 0, 0], ["dense_9", 0, 0]]
    with pytest.raises(ValueError, match="names an output 'dense_9' it does not hold"):
        models.model_from_json(json.dumps(cfg))


def test_side_by_side_with_keras(tmp_path, rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    km, fm = _mlp(keras), _mlp(fd)
    fm.set_weights(km.get_weights())
    assert [w.path for w in fm.weights] == [w.path for w in km.weights]
    assert [l.name for l in fm.layers] == [l.name for l in km.layers]
    assert json.loads(json.dumps(fm.get_config())) == json.loads(
        json.dumps(_strip_shared(km.get_config())))
    for m in (km, fm):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    args = dict(epochs=3, batch_size=32, verbose=0, shuffle=False, validation_split=0.25)
    kh, fh = km.fit(x, y, **args).history, fm.fit(x, y, **args).history
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=key)
    for writer, reader, model in ((keras, fd, km), (fd, keras, fm)):
        path = str(tmp_path / f"{writer.__name__}.keras")
        model.save(path)
        back = reader.models.load_model(path)
        assert type(back).__name__ == "Functional"
        np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                                   atol=2e-6)


def _strip_shared(obj):
    """Keras's config without its ``shared_object_id`` bookkeeping."""
    if isinstance(obj, dict):
        return {k: _strip_shared(v) for k, v in obj.items() if k != "shared_object_id"}
    if isinstance(obj, (list, tuple)):
        return [_strip_shared(v) for v in obj]
    return obj


def test_layer_output_for_feature_extraction(rng):
    # Keras's pattern: a model from another's input to one of its layers' outputs,
    # sharing the layers (and so their training)
    x = rng.random((16, 6), dtype=np.float32)
    m = _mlp()
    feat = m.get_layer("dense")
    assert m.get_layer("dense_1").input is m.get_layer("layer_normalization").output
    fe = fd.Model(inputs=m.input, outputs=feat.output)
    assert [l.name for l in fe.layers] == ["input_layer", "dense"]
    np.testing.assert_allclose(fe.predict(x, verbose=0),
                               np.maximum(x @ feat.kernel.numpy() + feat.bias.numpy(), 0),
                               rtol=1e-5, atol=1e-6)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, rng.integers(0, 3, 16), epochs=2, verbose=0)
    np.testing.assert_allclose(fe.predict(x, verbose=0),
                               np.maximum(x @ feat.kernel.numpy() + feat.bias.numpy(), 0),
                               rtol=1e-5, atol=1e-6)
    # a built Sequential's layers have their symbolic inputs and outputs too
    s = fd.Sequential([fd.Input((6,)), layers.Dense(4, name="f"), layers.Dense(2)])
    sub = fd.Model(inputs=s.inputs, outputs=s.get_layer("f").output)
    assert [l.name for l in sub.layers] == ["input_layer_1", "f"]
    assert sub.get_config()["input_layers"] == [["input_layer_1", 0, 0]]
    assert s.output.shape == (None, 2) and s.layers[1].input.shape == (None, 4)
    with pytest.raises(AttributeError, match="has never been called and thus has no defined "
                                             "output"):
        layers.Dense(3).output
