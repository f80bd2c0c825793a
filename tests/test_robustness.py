"""Robustness of the public API: a wide battery of bad arguments, each
refused with a ValueError/TypeError that names the argument, what was
expected and what was received (never a crash, never a silent wrong result);
odd-but-valid inputs that must just work; Ctrl-C during fit; allocation
failures as MemoryError.

(tests/test_reliability.py and tests/test_models.py::test_clear_errors hold
the first, narrower checks; nothing here repeats them.)
"""
import _thread
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastdense import callbacks, layers, models, optimizers
from fastdense.utils import set_random_seed, to_categorical

SANITIZED = bool(os.environ.get("FASTDENSE_SANITIZED"))
N, D, K = 40, 6, 3


def _model(loss="categorical_crossentropy", compiled=True, input_dim=D, metrics=None, seed=0):
    set_random_seed(seed)
    first = (layers.Dense(5, activation="relu", input_shape=(input_dim,)) if input_dim
             else layers.Dense(5, activation="relu"))
    m = models.Sequential([first, layers.Dense(K, activation="softmax")])
    if compiled:
        m.compile(optimizer="sgd", loss=loss, metrics=metrics)
    return m


_rng = np.random.default_rng(7)
X = _rng.normal(size=(N, D)).astype("float32")
YI = _rng.integers(0, K, N)
Y = to_categorical(YI, K)
SCCE = "sparse_categorical_crossentropy"


def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def _fit(**kw):
    def run():
        m = _model(kw.pop("loss", "categorical_crossentropy"))
        x, y = kw.pop("x", X), kw.pop("y", Y)
        return m.fit(x, y, verbose=0, **kw)
    return run


# (id, thunk, exception, regex that must match the message)
BAD = [
    # --- x: dtypes, ranks, sizes, values
    ("x-complex", _fit(x=X.astype(complex)), TypeError, r"`x`.*numbers.*complex128"),
    ("x-datetime", _fit(x=np.zeros((N, D), "datetime64[s]")), TypeError, r"`x`.*datetime64"),
    ("x-bytes", _fit(x=X.astype(bytes)), TypeError, r"`x`.*dtype=\|S"),
    ("x-structured", _fit(x=np.zeros((N, D), [("a", "f4")])), TypeError, r"`x`.*dtype="),
    ("x-dict", _fit(x={"a": X}), TypeError, r"`x`.*dtype=object"),
    # (a generator of batches is taken as Keras takes it: then y must not be given)
    ("x-generator", _fit(x=(r for r in X)), ValueError,
     r"When providing `x` as a generator, `y` should not be passed"),
    ("x-ragged", _fit(x=[[1.0, 2.0], [3.0]]), ValueError, r"`x` could not be converted"),
    ("x-0d", _fit(x=np.float32(1)), ValueError, r"`x` must be a 2D.*Received: x\.shape=\(\)"),
    ("x-scalar", _fit(x=3.0), ValueError, r"`x` must be a 2D.*shape=\(\)"),
    ("x-none", _fit(x=None), ValueError, r"`x` must be provided.*x=None"),
    ("x-no-features", lambda: _model(input_dim=None).predict(np.zeros((N, 0), np.float32),
                                                             verbose=0),
     ValueError, r"`x` has no features.*shape=\(40, 0\)"),
    ("x-overflows-float32", _fit(x=X.astype(np.float64) * 1e300), ValueError,
     r"`x` holds values too large for float32"),
    ("x-neg-inf", _fit(x=np.where(X > 1, -np.inf, X)), ValueError, r"`x` contains NaN or inf"),
    # --- features vs the built input size, in every entry point
    ("x-width-evaluate", lambda: _model().evaluate(X[:, :5], Y, verbose=0), ValueError,
     r"expected axis -1 of `x` to have value 6.*shape \(40, 5\)"),
    ("x-width-train_on_batch", lambda: _model().train_on_batch(X[:, :5], Y), ValueError,
     r"expected axis -1 of `x` to have value 6"),
    ("x-width-test_on_batch", lambda: _model().test_on_batch(X[:, 1:], Y), ValueError,
     r"expected axis -1 of `x` to have value 6"),
    ("x-width-call", lambda: _model()(X[:, :2]), ValueError, r"axis -1 of `x` to have value 6"),
    ("x-width-predict_on_batch", lambda: _model().predict_on_batch(np.ones((2, 7))), ValueError,
     r"axis -1 of `x` to have value 6.*\(2, 7\)"),
    ("x-empty-predict_on_batch", lambda: _model().predict_on_batch(X[:0]), ValueError,
     r"`x` is empty"),
    ("x-empty-test_on_batch", lambda: _model().test_on_batch(X[:0], Y[:0]), ValueError,
     r"`x` is empty"),
    ("x-1d-evaluate", lambda: _model().evaluate(X[:, 0], Y, verbose=0), ValueError,
     r"reshape\(-1, 1\)"),
    ("x-3d-no-flatten", lambda: _model().predict(X.reshape(N, 2, 3), verbose=0), ValueError,
     r"`x` must be a 2D.*\(40, 2, 3\).*Flatten"),
    # --- y: dtypes, lengths, widths, values
    ("y-none", _fit(y=None), ValueError, r"`y` must be provided"),
    ("y-0d", _fit(y=np.float32(1)), ValueError, r"same number of samples.*y\.shape=\(\)"),
    ("y-str", _fit(y=Y.astype(str)), TypeError, r"`y` must hold numbers.*<U"),
    ("y-complex", _fit(y=Y.astype(complex)), TypeError, r"`y`.*complex128"),
    ("y-object", _fit(y=Y.astype(object)), TypeError, r"`y`.*object"),
    ("y-ragged", _fit(y=[[1, 0], [0]] * 20), ValueError, r"`y` could not be converted"),
    ("y-short", _fit(y=Y[:-1]), ValueError, r"x\.shape\[0\]=40, y\.shape=\(39, 3\)"),
    ("y-empty", _fit(y=Y[:0]), ValueError, r"x\.shape\[0\]=40, y\.shape=\(0, 3\)"),
    ("y-inf", _fit(y=np.where(Y > 0, np.inf, Y)), ValueError, r"`y` contains NaN or infinite"),
    ("y-overflows-float32", _fit(y=Y.astype(np.float64) * 1e300, loss="mse"), ValueError,
     r"`y` holds values too large for float32"),
    ("onehot-too-wide", _fit(y=np.zeros((N, 4), np.float32)), ValueError,
     r"`y` must have shape \(samples, 3\).*y\.shape=\(40, 4\)"),
    ("onehot-3d", _fit(y=Y.reshape(N, K, 1)), ValueError, r"\(samples, 3\).*\(40, 3, 1\)"),
    ("bce-width", _fit(y=np.zeros((N, 2)), loss="binary_crossentropy"), ValueError,
     r"`y` must have shape \(samples, 3\).*\(40, 2\)"),
    # (as Keras: binary crossentropy wants the output's shape; one target a
    # sample broadcasts in mse only as (samples, 1), or in one-row batches)
    ("bce-one-column", _fit(y=np.zeros((N, 1)), loss="binary_crossentropy"), ValueError,
     r"same shape for binary_crossentropy: `y` must have shape \(samples, 3\).*"
     r"y\.shape=\(40, 1\), output\.shape=\(40, 3\)"),
    ("bce-1d", _fit(y=np.zeros(N), loss="binary_crossentropy", batch_size=1), ValueError,
     r"binary_crossentropy.*y\.shape=\(40,\)"),
    ("mse-1d", _fit(y=np.zeros(N), loss="mse"), ValueError,
     r"mean_squared_error: `y` must have shape \(samples, 3\) or \(samples, 1\).*\(40,\)"),
    ("mse-1d-evaluate", lambda: _model("mse").evaluate(X, np.zeros(N), batch_size=2, verbose=0),
     ValueError, r"mean_squared_error.*\(40,\)"),
    ("mse-1d-train_on_batch", lambda: _model("mse").train_on_batch(X[:2], np.zeros(2)),
     ValueError, r"mean_squared_error.*\(2,\)"),
    ("mse-1d-validation", _fit(y=np.zeros((N, 1)), loss="mse",
                               validation_data=(X, np.zeros(N))), ValueError,
     r"`validation_data\[1\]` must have shape \(samples, 3\) or \(samples, 1\)"),
    ("scce-equal-units", _fit(y=YI * 0 + K, loss=SCCE), ValueError,
     r"class ids outside \[0, 3\).*min=3, max=3"),
    ("scce-negative", _fit(y=YI - 1, loss=SCCE), ValueError, r"outside \[0, 3\).*min=-1"),
    ("scce-int64-huge", _fit(y=YI + 2**40, loss=SCCE), ValueError, r"max=1099511627778"),
    ("scce-uint64-huge", _fit(y=(YI.astype(np.uint64) + np.uint64(2**63)), loss=SCCE),
     ValueError, r"outside \[0, 3\)"),
    ("scce-int32-wraps", _fit(y=YI.astype(np.int64) + 2**32, loss=SCCE), ValueError,
     r"outside \[0, 3\)"),  # an int32 cast would wrap these back into range
    ("scce-float-big", _fit(y=YI + 2.0**33, loss=SCCE), ValueError, r"outside \[0, 3\)"),
    ("scce-nan", _fit(y=np.where(YI > 1, np.nan, YI), loss=SCCE), ValueError, r"NaN"),
    ("scce-onehot", _fit(y=Y, loss=SCCE), ValueError,
     r"\(samples,\) or \(samples, 1\).*\(40, 3\).*categorical_crossentropy"),
    ("scce-2d-wrong", _fit(y=np.zeros((N, 2)), loss=SCCE), ValueError, r"\(40, 2\)"),
    # --- batch sizes and epochs
    ("batch_size-0", _fit(batch_size=0), ValueError, r"`batch_size` must be a positive.*=0"),
    ("batch_size-neg", _fit(batch_size=-3), ValueError, r"`batch_size`.*=-3"),
    ("batch_size-float", _fit(batch_size=8.0), ValueError, r"`batch_size`.*=8\.0"),
    ("batch_size-str", _fit(batch_size="8"), ValueError, r"`batch_size`.*='8'"),
    ("batch_size-bool", _fit(batch_size=True), ValueError, r"`batch_size`.*=True"),
    ("batch_size-np-float", _fit(batch_size=np.float64(8)), ValueError, r"`batch_size`"),
    ("predict-batch_size-0", lambda: _model().predict(X, batch_size=0, verbose=0), ValueError,
     r"`batch_size`.*=0"),
    ("evaluate-batch_size-neg", lambda: _model().evaluate(X, Y, batch_size=-1, verbose=0),
     ValueError, r"`batch_size`.*=-1"),
    ("validation_batch_size-0",
     _fit(validation_data=(X, Y), validation_batch_size=0), ValueError,
     r"`validation_batch_size`.*=0"),
    ("epochs-neg", _fit(epochs=-1), ValueError, r"`epochs` must be a non-negative.*=-1"),
    ("epochs-float", _fit(epochs=2.0), ValueError, r"`epochs`.*=2\.0"),
    ("epochs-none", _fit(epochs=None), ValueError, r"`epochs`.*=None"),
    ("epochs-str", _fit(epochs="2"), ValueError, r"`epochs`.*='2'"),
    ("verbose-neg", lambda: _model().fit(X, Y, verbose=-1), ValueError, r"`verbose`.*=-1"),
    ("verbose-str", lambda: _model().fit(X, Y, verbose="loud"), ValueError, r"`verbose`.*loud"),
    # --- validation
    ("validation_split-neg", _fit(validation_split=-0.1), ValueError,
     r"`validation_split` must be in \[0, 1\).*=-0\.1"),
    ("validation_split-1", _fit(validation_split=1.0), ValueError, r"`validation_split`.*=1\.0"),
    ("validation_split-nan", _fit(validation_split=float("nan")), ValueError,
     r"`validation_split`.*=nan"),
    ("validation_split-empty-train", _fit(x=X[:3], y=Y[:3], validation_split=0.99), ValueError,
     r"3 samples.*validation_split=0\.99"),
    ("validation_split-empty-val", _fit(validation_split=1e-17), ValueError,
     r"40 samples.*validation_split=1e-17"),
    ("validation_data-array", _fit(validation_data=X), ValueError,
     r"`validation_data` must be a tuple.*Received: ndarray"),
    ("validation_data-1", _fit(validation_data=(X,)), ValueError, r"tuple of length 1"),
    ("validation_data-4", _fit(validation_data=(X, Y, None, None)), ValueError,
     r"tuple of length 4"),
    ("validation_data-dict", _fit(validation_data={"x": X, "y": Y}), ValueError,
     r"Received: dict"),
    ("validation_data-features", _fit(validation_data=(X[:, :5], Y)), ValueError,
     r"`validation_data\[0\]` to have value 6.*\(40, 5\)"),
    ("validation_data-length", _fit(validation_data=(X, Y[:5])), ValueError,
     r"`validation_data\[1\]`.*\(5, 3\)"),
    ("validation_data-width", _fit(validation_data=(X, Y[:, :2])), ValueError,
     r"`validation_data\[1\]` must have shape \(samples, 3\)"),
    ("validation_data-y-none", _fit(validation_data=(X, None)), ValueError,
     r"`validation_data\[1\]` must be provided"),
    ("validation_data-empty", _fit(validation_data=(X[:0], Y[:0])), ValueError,
     r"`validation_data\[0\]` is empty"),
    ("validation_data-nan", _fit(validation_data=(X * np.nan, Y)), ValueError,
     r"`validation_data\[0\]` contains NaN"),
    ("validation_data-str", _fit(validation_data=(X.astype(str), Y)), TypeError,
     r"`validation_data\[0\]` must hold numbers"),
    ("validation_data-weights", _fit(validation_data=(X, Y, np.ones(3))), ValueError,
     r"`sample_weight` must have shape \(40,\).*\(3,\)"),
    ("validation_freq-0", _fit(validation_freq=0), ValueError, r"`validation_freq`.*=0"),
    # --- sample and class weights
    ("sample_weight-length", _fit(sample_weight=np.ones(N - 1)), ValueError,
     r"`sample_weight` must have shape \(40,\).*\(39,\)"),
    ("sample_weight-2d", _fit(sample_weight=np.ones((N, 2))), ValueError, r"\(40, 2\)"),
    ("sample_weight-nan", _fit(sample_weight=np.full(N, np.nan)), ValueError,
     r"`sample_weight` contains NaN"),
    ("sample_weight-str", _fit(sample_weight=np.array(["a"] * N)), TypeError,
     r"`sample_weight` must hold numbers"),
    ("class_weight-list", _fit(class_weight=[1.0, 2.0, 3.0]), ValueError,
     r"`class_weight` must be a dict"),
    ("class_weight-nan", _fit(class_weight={0: float("nan")}), ValueError,
     r"`class_weight` .*finite.*class_weight\[0\]=nan"),
    ("class_weight-str-value", _fit(class_weight={0: "heavy"}), ValueError,
     r"class_weight\[0\]='heavy'"),
    ("class_weight-str-key", _fit(class_weight={"cat": 1.0}), ValueError,
     r"`class_weight` must map integer class ids.*'cat'"),
    ("class_weight-float-key", _fit(class_weight={0.5: 1.0}), ValueError,
     r"integer class ids.*0\.5"),
    ("both-weights", _fit(sample_weight=np.ones(N), class_weight={0: 2.0}), ValueError,
     r"`class_weight` and `sample_weight`"),
    # --- weights
    ("set_weights-count", lambda: _model().set_weights([np.zeros((D, 5))]), ValueError,
     r"weight list of length 1, but the model was expecting 4"),
    ("set_weights-shape", lambda: _model().set_weights(
        [np.zeros((D, 5)), np.zeros(5), np.zeros((5, 4)), np.zeros(3)]), ValueError,
     r"kernel has shape \(5, 3\); received a value of shape \(5, 4\)"),
    ("set_weights-unbuilt", lambda: _model(input_dim=None).set_weights([np.zeros((D, 5))]),
     ValueError, r"expecting 0 weights"),
    ("set_weights-none", lambda: _model().set_weights(None), TypeError, r"NoneType"),
    # --- configuration and names (each lists the valid ones)
    ("unknown-optimizer", lambda: _model(compiled=False).compile(optimizer="sgdd", loss="mse"),
     ValueError, r"optimizer identifier: sgdd.*Supported: \[.*'SGD'"),
    ("unknown-loss", lambda: _model(compiled=False).compile(optimizer="sgd", loss="msee"),
     ValueError, r"loss identifier: msee.*Supported: \[.*'MeanSquaredError'"),
    ("unknown-metric", lambda: _model(compiled=False).compile(loss="mse", metrics=["acc2"]),
     ValueError, r"metric identifier: acc2.*Supported: \[.*'CategoricalAccuracy'"),
    ("unknown-activation", lambda: layers.Dense(3, activation="rellu"), ValueError,
     r"activation function identifier: rellu.*Supported: \[.*'relu'"),
    ("unknown-initializer", lambda: layers.Dense(3, kernel_initializer="glorot"), ValueError,
     r"initializer identifier: glorot.*Supported: \[.*'glorot_uniform'"),
    ("optimizer-int", lambda: _model(compiled=False).compile(optimizer=3, loss="mse"),
     ValueError, r"optimizer identifier: 3"),
    ("no-loss", lambda: (lambda m: (m.compile(optimizer="sgd"), m.fit(X, Y, verbose=0)))(
        _model(compiled=False)), ValueError, r"`loss`"),
    ("dense-units-0", lambda: layers.Dense(0), ValueError, r"`units`.*units=0"),
    # (Keras's texts: names become weight paths, so no `/` and no repeats)
    ("dense-unknown-kwarg", lambda: layers.Dense(2, foo=1), ValueError,
     r"Unrecognized keyword arguments passed to Dense: \{'foo': 1\}"),
    ("layer-name-slash", lambda: layers.Dense(2, name="a/b"), ValueError,
     r"`name` must be a string and cannot contain character `/`.*name=a/b"),
    ("layer-name-int", lambda: layers.Dropout(0.1, name=3), ValueError, r"name=3 \(of type"),
    ("model-name-slash", lambda: models.Sequential(name="m/1"), ValueError, r"name=m/1"),
    ("layer-names-repeat", lambda: models.Sequential([layers.Dense(2, name="h"),
                                                      layers.Dense(2, name="h")]),
     ValueError, r"should have unique names. Name 'h' is already the name of a layer"),
    ("dense-units-float", lambda: layers.Dense(2.5), ValueError, r"units=2\.5"),
    ("dropout-neg", lambda: layers.Dropout(-0.5), ValueError, r"`rate`.*rate=-0\.5"),
    ("dropout-nan", lambda: layers.Dropout(float("nan")), ValueError, r"rate=nan"),
    ("dropout-1", lambda: models.Sequential([layers.Dense(4, input_shape=(3,)),
                                             layers.Dropout(1.0)]), ValueError, r"rate"),
    ("build-none-dims", lambda: _model(input_dim=None).build((None, None)), ValueError,
     r"input_shape=\(None, None\)"),
    ("input-size-0", lambda: models.Sequential([layers.Dense(4, input_shape=(0,))]),
     ValueError, r"positive.*input_shape=\(None, 0\)"),
    ("evaluate-before-compile-no-loss", lambda: (lambda m: (m.compile(optimizer="sgd"),
                                                            m.evaluate(X, Y, verbose=0)))(
        _model(compiled=False)), ValueError, r"`loss`"),
]


@pytest.mark.parametrize("thunk, exc, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_argument_is_refused_clearly(thunk, exc, match):
    with pytest.raises(exc, match=match) as info:
        thunk()
    assert type(info.value) in (ValueError, TypeError)


# Gaps in files owned elsewhere (models.py): strict, so fixing one flips it to
# XPASS and fails, a reminder to drop the marker.
def test_fit_before_compile_is_a_value_error_like_keras():
    with pytest.raises(ValueError, match="compile"):
        _model(compiled=False).fit(X, Y, verbose=0)


def test_fit_before_compile_is_refused_in_every_entry_point():
    m = _model(compiled=False)
    for call in (lambda: m.fit(X, Y, verbose=0), lambda: m.evaluate(X, Y, verbose=0),
                 lambda: m.train_on_batch(X, Y), lambda: m.test_on_batch(X, Y)):
        with pytest.raises((ValueError, RuntimeError), match=r"compile\(\)"):
            call()
    assert m.predict(X, verbose=0).shape == (N, K)  # predicting needs no compile


@pytest.mark.parametrize("value", [-1, 1.5, "0"])
def test_initial_epoch_is_checked(value):
    with pytest.raises(ValueError, match="initial_epoch"):
        _model().fit(X, Y, epochs=2, initial_epoch=value, verbose=0)


@pytest.mark.parametrize("value", ["0.2", [0.2]])
def test_validation_split_type_is_checked(value):
    with pytest.raises(ValueError, match="validation_split"):
        _model().fit(X, Y, validation_split=value, verbose=0)
    # None is falsy, so Keras trains without a split: so does fastdense
    assert "val_loss" not in _model().fit(X, Y, validation_split=None, verbose=0).history


# ------------------------------------------------------------------ odd but valid
@pytest.mark.parametrize("variant", ["bool", "float16", "longdouble", "int8", "unaligned",
                                     "negative-strides", "broadcast", "uint8-image"])
def test_odd_inputs_predict_like_float32(variant):
    m = _model()
    x = (X > 0) if variant == "bool" else X
    ref = m.predict(x.astype(np.float32), verbose=0)
    if variant == "bool":
        xv = x
    elif variant == "float16":
        xv = X.astype(np.float16)
        ref = m.predict(xv.astype(np.float32), verbose=0)
    elif variant == "longdouble":
        xv = X.astype(np.longdouble)
    elif variant == "int8":
        xv = (X * 10).astype(np.int8)
        ref = m.predict(xv.astype(np.float32), verbose=0)
    elif variant == "unaligned":
        xv = _unaligned(X)
    elif variant == "negative-strides":
        xv = X[::-1, ::-1]
        ref = m.predict(np.ascontiguousarray(xv), verbose=0)
    elif variant == "broadcast":
        xv = np.broadcast_to(X[:1], (N, D))
        ref = m.predict(np.repeat(X[:1], N, axis=0), verbose=0)
    else:
        xv = (np.abs(X) * 40).astype(np.uint8)
        ref = m.predict(xv.astype(np.float32), verbose=0)
    np.testing.assert_array_equal(m.predict(xv, verbose=0), ref)


def test_unaligned_targets_and_weights_train_like_aligned():
    a, b = _model(), _model()
    ha = a.fit(X, Y, sample_weight=np.linspace(0.5, 1.5, N), shuffle=False, verbose=0)
    hb = b.fit(_unaligned(X), _unaligned(Y), sample_weight=_unaligned(np.linspace(0.5, 1.5, N)),
               shuffle=False, verbose=0)
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("batch_size", [N, N + 1, 10**9, 2**62, 2**70])
def test_batch_size_beyond_the_data_is_one_batch(batch_size):
    m = _model(metrics=["accuracy"])
    ref_p = m.predict(X, batch_size=N, verbose=0)
    ref_e = m.evaluate(X, Y, batch_size=N, verbose=0)
    np.testing.assert_array_equal(m.predict(X, batch_size=batch_size, verbose=0), ref_p)
    assert m.evaluate(X, Y, batch_size=batch_size, verbose=0) == ref_e
    a, b = _model(), _model()
    a.fit(X, Y, batch_size=N, shuffle=False, verbose=0)
    b.fit(X, Y, batch_size=batch_size, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_predict_and_evaluate_before_build_build_from_the_data():
    m = _model(input_dim=None, compiled=False)
    assert not m.built
    assert m.predict(X, verbose=0).shape == (N, K)
    assert m.built and m.input_shape == (None, D)
    m2 = _model(input_dim=None)
    assert np.isfinite(m2.evaluate(X, Y, verbose=0))
    with pytest.raises(ValueError, match="axis -1 of `x` to have value 6"):
        m2.predict(X[:, :4], verbose=0)


def test_failed_calls_leave_the_model_usable():
    m = _model(metrics=["accuracy"])
    before = [w.copy() for w in m.get_weights()]
    for bad in (lambda: m.fit(X, Y[:-1], verbose=0), lambda: m.fit(X * np.nan, Y, verbose=0),
                lambda: m.fit(X, Y, batch_size=0, verbose=0),
                lambda: m.fit(X, Y, validation_data=(X[:, :2], Y), verbose=0),
                lambda: m.set_weights([np.zeros(3)] * 4)):
        with pytest.raises((ValueError, TypeError)):
            bad()
    for a, b in zip(m.get_weights(), before):  # nothing was half-applied
        np.testing.assert_array_equal(a, b)
    h = m.fit(X, Y, epochs=2, verbose=0)
    assert np.isfinite(h.history["loss"]).all() and m.optimizer.iterations == 4


# ------------------------------------------------------------------ Ctrl-C
def _interrupt_after(seconds):
    t = threading.Timer(seconds, _thread.interrupt_main)
    t.daemon = True
    t.start()
    return t


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_process_stops_fit_promptly_with_consistent_weights():
    """KeyboardInterrupt lands between native chunks (<= ~0.25 s of work);
    the weights are exactly those of the whole steps applied so far (one
    step per epoch here, so an identical model trained for that many epochs
    must match bit for bit), and the model trains on afterwards."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2048, 64)).astype(np.float32)
    y = rng.integers(0, 10, 2048)

    def make():
        set_random_seed(11)
        m = models.Sequential([layers.Dense(128, activation="relu", input_shape=(64,)),
                               layers.Dense(10, activation="softmax")])
        m.compile(optimizer=optimizers.SGD(0.01, momentum=0.9), loss=SCCE)
        return m

    class Deadline(callbacks.Callback):  # a lost interrupt fails, not hangs
        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - t0 > 20:
                self.model.stop_training = True

    m = make()
    _interrupt_after(0.5)
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, batch_size=len(x), epochs=10**7, shuffle=False, verbose=0,
              callbacks=[Deadline()])
    latency = time.perf_counter() - t0 - 0.5
    assert latency < 1.0, f"fit took {latency:.2f} s to stop after Ctrl-C"
    steps = m.optimizer.iterations
    assert steps > 0
    ref = make()
    ref.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    h = m.fit(x, y, epochs=1, verbose=0)  # usable: trains and predicts on
    assert np.isfinite(h.history["loss"][0]) and np.isfinite(m.predict(x, verbose=0)).all()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_to_a_training_process_stops_it_promptly(tmp_path):
    """A real SIGINT to a process in fit (many small batches, so the engine
    runs them in chunks): KeyboardInterrupt within a chunk, the model still
    predicts and trains, and the process exits normally."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        import numpy as np
        from fastdense import callbacks, layers, models
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20000, 100)).astype("float32")
        y = rng.integers(0, 10, 20000)
        m = models.Sequential([layers.Dense(256, activation="relu", input_shape=(100,)),
                               layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x[:64], y[:64], verbose=0)

        class Ready(callbacks.Callback):  # no batch hooks: the engine runs chunks
            def on_train_begin(self, logs=None):
                print("ready", flush=True)

        try:
            m.fit(x, y, batch_size=32, epochs=100000, verbose=0, callbacks=[Ready()])
        except KeyboardInterrupt:
            t = time.perf_counter()
            print("interrupted", repr(t), flush=True)
        else:
            sys.exit("fit finished without an interrupt")
        assert all(np.isfinite(w).all() for w in m.get_weights())
        assert np.isfinite(m.predict(x[:100], verbose=0)).all()
        m.fit(x[:256], y[:256], epochs=1, verbose=0)
        print("usable", flush=True)
    """))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(60, proc.kill)  # a lost SIGINT fails the test, not hangs it
    watchdog.start()
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(1.0)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().split()
        got = time.perf_counter()
        # (read through the same buffered pipe objects as readline did:
        # communicate() would skip what readline has already buffered)
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert line and line[0] == "interrupted", err
    # (a chunk is ~0.25 s of work; the rest is slack for a loaded machine)
    assert got - sent < 1.5, f"{got - sent:.2f} s from SIGINT to KeyboardInterrupt"
    assert "usable" in out and proc.returncode == 0, (proc.returncode, line, out, err)


# ------------------------------------------------------------------ allocation failures
# Sizes are impossible everywhere (>= 2**47 bytes exceeds a 47-bit address
# space), not merely large: a feasible request would be honoured and exhaust
# memory instead of failing.
@pytest.mark.parametrize("units, inputs", [(2**24, 2**24), (2**31, 2**31)])
def test_absurd_dense_layer_is_a_memory_error(units, inputs):
    with pytest.raises((MemoryError, ValueError)) as info:
        models.Sequential([layers.Dense(units, input_shape=(inputs,))])
    if units == 2**24:  # representable: a failed allocation, not an overflow
        assert isinstance(info.value, MemoryError)


@pytest.mark.skipif(SANITIZED, reason="ASan aborts on an impossible operator new")
def test_engine_allocation_failure_is_a_memory_error():
    from fastdense import _core
    with pytest.raises(MemoryError):
        _core.Network([2**24, 2**24], [0], [True])  # 2**48 floats: bad_alloc


@pytest.mark.skipif(SANITIZED, reason="ASan aborts on an impossible operator new")
def test_giant_batch_workspace_is_a_memory_error_and_the_model_survives():
    """fit with a batch_size covering 2**25 rows of a 2**20-unit layer needs a
    128 TiB workspace: MemoryError, weights untouched; then the model still
    works with a sensible batch size.  predict and evaluate run their forward
    in chunks of at most 1024 rows whatever the batch_size (the workspace of
    this model's 1024 rows alone would be 4 GiB: here 128-row chunks)."""
    set_random_seed(0)
    m = models.Sequential([layers.Dense(2**20, input_shape=(1,)),
                           layers.Dense(2, activation="softmax")])
    m.compile(optimizer="sgd", loss=SCCE)
    x = np.zeros((2**25, 1), np.float32)
    y = np.zeros(2**25, np.int32)
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(MemoryError):
        m.fit(x, y, batch_size=2**30, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    del x, y
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1500, 1)).astype(np.float32)
    y = rng.integers(0, 2, 1500).astype(np.int32)
    p = m.predict(x, batch_size=2**25, verbose=0)
    np.testing.assert_allclose(p, m.predict(x, batch_size=100, verbose=0), rtol=1e-5)
    assert m.evaluate(x, y, batch_size=2**30, verbose=0) == pytest.approx(
        m.evaluate(x, y, batch_size=100, verbose=0), rel=1e-5)
    xs = np.ones((8, 1), np.float32)
    h = m.fit(xs, np.zeros(8, np.int32), batch_size=4, verbose=0)
    assert np.isfinite(h.history["loss"][0])
    assert np.isfinite(m.predict(xs, verbose=0)).all()


def test_one_target_per_sample_broadcasts_where_keras_does():
    # mse broadcasts a (samples, 1) target across the outputs in any batch,
    # and a (samples,) one in one-row batches (Keras's EarlyStopping docstring
    # example: Dense(10), np.zeros(5), batch_size=1): the same losses as the
    # (samples, outputs) target repeated.
    y1 = np.linspace(-1, 1, N).astype(np.float32)
    full = np.repeat(y1[:, None], K, axis=1)
    for y, bs in ((y1[:, None], 8), (y1, 1)):
        a = _model("mse", seed=3)
        b = _model("mse", seed=3)
        ha = a.fit(X, y, batch_size=bs, epochs=2, shuffle=False, verbose=0)
        hb = b.fit(X, full, batch_size=bs, epochs=2, shuffle=False, verbose=0)
        np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    # one sample: a (1,) target is a one-row batch whatever the batch size
    m = _model("mse")
    m.train_on_batch(X[:1], y1[:1])
    m.evaluate(X[:1], y1[:1], verbose=0)
