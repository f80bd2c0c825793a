"""Models nested in models, as Keras allows: ``Sequential([encoder, decoder])``,
``decoder(encoder(inputs))`` in a functional model, a frozen base under a new
head. The nested model is one entry of ``layers``; its layers run natively in
its place and stay shared with it. Keras's summary rows, weight paths, configs
and file layouts; and, where Keras is installed, the same training and files
side by side."""
import json
import os

import numpy as np
import pytest

import fastdense as fd
from fastdense import layers


def _autoencoder(lib=fd):
    L = lib.layers
    enc = lib.Sequential([lib.Input((8,)), L.Dense(4, activation="relu")], name="encoder")
    dec = lib.Sequential([L.Dense(8, activation="sigmoid")], name="decoder")
    return enc, dec, lib.Sequential([enc, dec])


def _x(rng, n=64):
    return rng.random((n, 8), dtype=np.float32)


def test_layers_weights_and_summary():
    enc, dec, ae = _autoencoder()
    assert [l.name for l in ae.layers] == ["encoder", "decoder"]
    assert ae.get_layer("encoder") is enc and ae.get_layer(index=1) is dec
    with pytest.raises(ValueError, match="No such layer: dense"):
        ae.get_layer("dense")  # (as Keras: the top level only)
    assert ae.built and dec.built  # (the outer build builds the nested ones)
    assert [w.path for w in ae.weights] == ["encoder/dense/kernel", "encoder/dense/bias",
                                            "sequential/decoder/dense_1/kernel",
                                            "sequential/decoder/dense_1/bias"]
    assert ae.input_shape == (None, 8) and ae.output_shape == (None, 8)
    assert ae.count_params() == 36 + 40
    lines = []
    ae.summary(print_fn=lines.append)
    text = lines[0]
    assert "encoder (Sequential)" in text and "(None, 4)" in text and "36" in text
    assert "decoder (Sequential)" in text and "40" in text


def test_summary_expand_nested_as_keras_prints_it():
    L = layers
    enc = fd.Sequential([fd.Input((8,)), L.Dense(4, activation="relu"), L.Dense(3)],
                        name="encoder")
    dec = fd.Sequential([L.Dense(8, activation="sigmoid")], name="decoder")
    ae = fd.Sequential([enc, dec])
    lines = []
    ae.summary(expand_nested=True, line_length=76, print_fn=lines.append)
    # (Keras 3.15.1's rows for the same model)
    for row in ("│ encoder (Sequential)            │ (None, 3)              │            51 │",
                "│    └ dense (Dense)              │ (None, 4)              │            36 │",
                "│    └ dense_1 (Dense)            │ (None, 3)              │            15 │",
                "│ decoder (Sequential)            │ (None, 8)              │            32 │",
                "│    └ dense_2 (Dense)            │ (None, 8)              │            32 │"):
        assert row in lines[0], row
    lines = []
    fd.Sequential([fd.Sequential([ae], name="mid"), L.Dense(2)]).summary(
        expand_nested=True, line_length=76, print_fn=lines.append)
    assert "│       └ encoder (Sequential)    │ (None, 3)              │            51 │" in lines[0]
    assert "│          └ dense (Dense)        │ (None, 4)              │            36 │" in lines[0]
    lines = []
    ae.summary(line_length=76, print_fn=lines.append)
    assert "└ dense" not in lines[0]


def test_training_updates_the_shared_layers(rng):
    x = _x(rng)
    enc, dec, ae = _autoencoder()
    ae.compile("adam", "mse")
    before = enc.predict(x, verbose=0)
    h = ae.fit(x, x, epochs=3, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    d = enc.layers[0]
    got = enc.predict(x, verbose=0)
    assert not np.allclose(got, before)
    np.testing.assert_allclose(got, np.maximum(x @ d.kernel.numpy() + d.bias.numpy(), 0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dec.predict(got, verbose=0), ae.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_frozen_base_under_a_new_head(rng):
    x, y = _x(rng), rng.integers(0, 3, 64)
    base = fd.Sequential([fd.Input((8,)), layers.Dense(16, activation="relu"),
                          layers.Dense(8, activation="relu")], name="base")
    base.trainable = False
    model = fd.Sequential([base, layers.Dense(3, activation="softmax")])
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 4
    frozen = [w.numpy() for w in base.weights]
    head = model.layers[1].kernel.numpy()
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    for w, v in zip(base.weights, frozen):
        np.testing.assert_array_equal(w.numpy(), v)
    assert not np.array_equal(model.layers[1].kernel.numpy(), head)
    base.trainable = True  # (fine-tuning: the base trains too)
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(base.weights[0].numpy(), frozen[0])


def test_functional_nesting_and_lazy_build(rng):
    x = _x(rng)
    enc, dec, ae = _autoencoder()
    inputs = fd.Input((8,))
    h = layers.Dense(8)(inputs)
    out = layers.Dense(2)(dec(enc(h)))
    fm = fd.Model(inputs, out)
    assert [l.name for l in fm.layers][2:4] == ["encoder", "decoder"]
    assert fm.output_shape == (None, 2) and fm.predict(x, verbose=0).shape == (64, 2)
    inner = fd.Sequential([layers.Dense(3)], name="inner")
    outer = fd.Sequential([inner, layers.Dense(1)], name="outer")
    assert not outer.built and not inner.built
    outer.predict(np.zeros((2, 5), np.float32), verbose=0)
    assert inner.built and inner.input_shape == (None, 5)
    assert [w.path for w in outer.weights][:2] == ["outer/inner/dense_4/kernel",
                                                   "outer/inner/dense_4/bias"]
    deep = fd.Sequential([fd.Sequential([outer], name="mid"), layers.Dense(2)])
    assert deep.predict(np.zeros((2, 5), np.float32), verbose=0).shape == (2, 2)
    assert [l.name for l in deep.layers[0].layers] == ["outer"]


def test_pop_and_errors():
    enc, dec, ae = _autoencoder()
    assert ae.pop() is dec and [l.name for l in ae.layers] == ["encoder"]
    assert ae.output_shape == (None, 4)
    with pytest.raises(ValueError, match="unique names"):
        ae.add(enc)
    with pytest.raises(ValueError, match="already in model 'sequential' \\(fastdense runs each "
                                         "layer once"):
        ae.add(fd.Sequential([enc.layers[0]], name="again"))
    assert [l.name for l in ae.layers] == ["encoder"] and len(ae._layers) == 1
    with pytest.raises(ValueError, match="nested in itself"):
        ae.add(ae)
    with pytest.raises(ValueError, match="unique names"):
        ae.add(fd.Sequential([layers.Dense(2)], name="encoder"))
    with pytest.raises(ValueError, match="has no layers"):
        ae.add(fd.Sequential(name="empty"))
    wrong = fd.Sequential([fd.Input((5,)), layers.Dense(2)], name="wrong")
    with pytest.raises(ValueError, match='"wrong" is incompatible.*expected shape=\\(None, 5\\), '
                                         'found shape=\\(None, 4\\)'):
        ae.add(wrong)
    with pytest.raises(NotImplementedError, match="first layers"):
        fd.Sequential([layers.Dense(3, input_shape=(3,)),
                       fd.Sequential([layers.Rescaling(2.0), layers.Dense(2)])])


@pytest.mark.parametrize("ext", [".keras", ".h5", ".weights.h5"])
def test_files_round_trip(tmp_path, rng, ext):
    pytest.importorskip("h5py")
    x = _x(rng)
    enc, dec, ae = _autoencoder()
    ae.compile("adam", "mse")
    ae.fit(x, x, epochs=2, verbose=0)
    path = str(tmp_path / f"ae{ext}")
    if ext == ".weights.h5":
        ae.save_weights(path)
        _, _, back = _autoencoder()
        back.load_weights(path)
    else:
        ae.save(path)
        back = fd.models.load_model(path)
        assert [type(l).__name__ for l in back.layers] == ["Sequential", "Sequential"]
        assert [l.name for l in back.layers] == ["encoder", "decoder"]
        assert int(back.optimizer.iterations) == int(ae.optimizer.iterations)
    np.testing.assert_array_equal(back.predict(x, verbose=0), ae.predict(x, verbose=0))
    if ext == ".keras":  # Keras's nesting in the weights file
        import h5py
        import zipfile
        with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as f, \
                h5py.File(f) as h:
            names = []
            h.visit(names.append)
        assert "layers/sequential/layers/dense/vars/0" in names
        assert "layers/sequential_1/layers/dense/vars/1" in names
        assert "layers/sequential/vars" in names


def test_config_clone_and_copy(rng):
    import copy
    x = _x(rng)
    enc, dec, ae = _autoencoder()
    cfg = ae.get_config()
    assert [e["class_name"] for e in cfg["layers"]] == ["InputLayer", "Sequential",
                                                        "Sequential"]
    assert cfg["layers"][1]["config"]["name"] == "encoder"
    assert cfg["layers"][1]["build_config"] == {"input_shape": [None, 8]}
    again = fd.Sequential.from_config(json.loads(json.dumps(cfg)))
    assert [l.name for l in again.layers] == ["encoder", "decoder"]
    assert again.count_params() == ae.count_params()
    clone = fd.models.clone_model(ae)
    assert clone.layers[0] is not enc
    twin = copy.deepcopy(ae)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), ae.predict(x, verbose=0))


def test_side_by_side_with_keras(tmp_path, rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    x = _x(rng, 96)
    y = rng.integers(0, 3, 96)
    results = {}
    for lib in (keras, fd):
        if lib is fd:
            fd.backend.clear_session()
        enc, dec, ae = _autoencoder(lib)
        base = lib.Sequential([lib.Input((8,)), lib.layers.Dense(6, activation="tanh")],
                              name="base")
        clf = lib.Sequential([base, lib.layers.Dense(3, activation="softmax")])
        results[lib] = (enc, dec, ae, base, clf)
    (kenc, kdec, kae, kbase, kclf), (fenc, fdec, fae, fbase, fclf) = results[keras], results[fd]
    fae.set_weights(kae.get_weights())
    fclf.set_weights(kclf.get_weights())
    assert [w.path for w in fae.weights] == [w.path for w in kae.weights]
    assert json.loads(json.dumps(fae.get_config())) == json.loads(json.dumps(kae.get_config()))
    args = dict(epochs=3, batch_size=16, verbose=0, shuffle=False)
    for m in (kae, fae):
        m.compile("adam", "mse")
    kh, fh = kae.fit(x, x, **args).history, fae.fit(x, x, **args).history
    np.testing.assert_allclose(fh["loss"], kh["loss"], rtol=2e-6)
    np.testing.assert_allclose(fenc.predict(x, verbose=0), kenc.predict(x, verbose=0),
                               atol=2e-6)
    for b in (kbase, fbase):
        b.trainable = False
    for m in (kclf, fclf):
        m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    kh = kclf.fit(x, y, validation_split=0.25, **args).history
    fh = fclf.fit(x, y, validation_split=0.25, **args).history
    for key in kh:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-6, err_msg=key)
    for a, b in zip(fbase.get_weights(), kbase.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)
    for writer, reader, model in ((keras, fd, kae), (fd, keras, fae)):
        for ext in (".keras", ".h5"):
            path = str(tmp_path / f"{writer.__name__}{ext}")
            model.save(path)
            back = reader.models.load_model(path, compile=ext == ".keras")
            assert [l.name for l in back.layers] == ["encoder", "decoder"]
            np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                                       atol=2e-6)
    inputs = keras.Input((8,))
    kfm = keras.Model(inputs, kdec(kenc(inputs)))
    inputs = fd.Input((8,))
    ffm = fd.Model(inputs, fdec(fenc(inputs)))
    for writer, reader, model in ((keras, fd, kfm), (fd, keras, ffm)):
        path = str(tmp_path / f"{writer.__name__}_functional.keras")
        model.save(path)
        back = reader.models.load_model(path)
        assert [l.name for l in back.layers][1:] == ["encoder", "decoder"]
        np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                                   atol=2e-6)
