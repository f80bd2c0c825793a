"""The side-by-side check the graph tests share: a Keras model and the same
fastdense model (built by the same function) have equal configs and
summaries, train to the same losses from the same weights (Adam, mse, no
shuffle), and their .keras files load in the other library."""
import io
import json
import os

import numpy as np
import pytest

import fastdense as fd


def keras_or_skip():
    """Real Keras (JAX backend), or the test skips."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def assert_same_as_keras(build, x, y, tmp_path, epochs=5):
    """``build(lib)`` made with Keras and with fastdense, names counted from
    zero in both (clear_session), checked side by side."""
    keras = keras_or_skip()
    keras.backend.clear_session()
    fd.backend.clear_session()
    km, fm = build(keras), build(fd)
    assert [l.name for l in km.layers] == [l.name for l in fm.layers]
    assert json.dumps(km.get_config(), sort_keys=True) == json.dumps(fm.get_config(),
                                                                     sort_keys=True)
    texts = []
    for m in (km, fm):
        out = io.StringIO()
        m.summary(print_fn=lambda s, **k: out.write(s + "\n"))
        texts.append(out.getvalue())
    assert texts[0] == texts[1]
    fm.set_weights(km.get_weights())
    for m, lib in ((km, keras), (fm, fd)):
        m.compile(optimizer=lib.optimizers.Adam(0.01), loss="mse")
    hk = km.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0).history["loss"]
    hf = fm.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(hf, hk, rtol=2e-6)
    np.testing.assert_allclose(fm.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    pytest.importorskip("h5py")
    assert_files_load([(fm, keras, ".keras"), (km, fd, ".keras")], x, tmp_path, rtol=1e-5,
                      atol=1e-6)


def assert_files_load(cases, x, tmp_path, rtol=1e-7, atol=0.0, compile_h5=True):
    """Each (model, reader library, extension): the model saved, loaded by
    the reader (legacy .h5 without its compile config when not
    ``compile_h5``), predicting as the model does."""
    for model, reader, ext in cases:
        path = str(tmp_path / f"{type(model).__module__.split('.')[0]}{ext}")
        model.save(path)
        back = reader.models.load_model(path, **({} if compile_h5 else
                                                 {"compile": ext == ".keras"}))
        np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=rtol, atol=atol)
