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


def assert_trains_like_keras(keras, km, fm, x, y, tmp_path):
    """Keras's ``km`` and fastdense's ``fm`` (same weights, compiled alike)
    fit 3 epochs with the same losses and end with the same weights and
    optimizer variables (names and values); each library loads the other's
    .keras file with those optimizer variables."""
    hk = km.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    hf = fm.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(hf, hk, rtol=1e-6)
    for a, b in zip(fm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(fm.optimizer.iterations) == int(km.optimizer.iterations)
    kv, fv = km.optimizer.variables, fm.optimizer.variables
    assert [v.path for v in kv] == [v.path for v in fv]
    for a, b in zip(kv, fv):
        np.testing.assert_allclose(np.asarray(b, np.float64), np.asarray(a, np.float64),
                                   rtol=1e-5, atol=1e-6)
    fm.save(tmp_path / "f.keras")
    km.save(tmp_path / "k.keras")
    for saved, reader, ref in ((tmp_path / "f.keras", keras, fm), (tmp_path / "k.keras", fd, km)):
        back = reader.models.load_model(saved)
        for a, b in zip(back.optimizer.variables, ref.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def assert_optimizer_like_keras(build, make_optimizer, x, y, tmp_path, same_config=True):
    """``build(lib)`` made with Keras and with fastdense from the same weights,
    each compiled with ``make_optimizer(lib)`` and mse: equal optimizer
    configs (unless not ``same_config``), then assert_trains_like_keras."""
    keras = keras_or_skip()
    pytest.importorskip("h5py")
    keras.backend.clear_session()
    fd.backend.clear_session()
    km, fm = build(keras), build(fd)
    fm.set_weights(km.get_weights())
    km.compile(make_optimizer(keras), "mse")
    fm.compile(make_optimizer(fd), "mse")
    if same_config:
        assert json.dumps(km.optimizer.get_config(), sort_keys=True) == \
            json.dumps(fm.optimizer.get_config(), sort_keys=True)
    assert_trains_like_keras(keras, km, fm, x, y, tmp_path)
