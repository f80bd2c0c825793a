"""The default path calls no Python per batch.

``sys.setprofile`` (available on every supported Python, 3.10-3.12 and later)
counts the Python-level function calls made while ``fit`` runs an epoch of 10
batches and an epoch of 1000 batches of the same model: on the default path
(built-in loss, native metrics, callbacks without batch hooks, verbose 0, 1
or 2) the batch loop runs in C++, so the count must not grow with the number
of batches. The engine returns to Python between chunks of batches whose size
grows geometrically (for Ctrl-C and the progress bar), which allows a small
difference; per-batch Python would add at least 990 calls.

The opposite is checked too: a callback that overrides a batch hook is called
once per batch.
"""
import os
import sys
from collections import Counter

import numpy as np
import pytest

import fastdense as fd
from fastdense import callbacks as C

PKG = os.path.dirname(os.path.abspath(fd.__file__))
SAMPLES = 4000
# Allowed growth from 10 to 1000 batches: a few calls per native chunk, with
# about log4(1000) more chunks; per-batch Python would be >= 990 calls. The
# progress bar (verbose=1) returns to Python every ~50 ms of native work, so
# a slow machine sees a few more chunks there.
SLACK = 100
SLACK_PROGBAR = 300


class CallCounter:
    """Counts Python function calls (all, and those in fastdense's code)."""

    def __init__(self):
        self.total = 0
        self.fastdense = 0
        self.names = Counter()

    def _profile(self, frame, event, arg):
        if event == "call":
            self.total += 1
            code = frame.f_code
            if code.co_filename.startswith(PKG):
                self.fastdense += 1
                self.names[code.co_name] += 1

    def run(self, fn):
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            return fn()
        finally:
            sys.setprofile(previous)


def _count(fn):
    c = CallCounter()
    c.run(fn)
    return c


def _data(kind, rng):
    x = rng.normal(size=(SAMPLES, 12)).astype("float32")
    labels = rng.integers(0, 4, SAMPLES)
    if kind == "sparse":
        return x, labels
    if kind == "binary":
        return x, (labels % 2).astype("float32")
    return x, np.eye(4, dtype="float32")[labels]


CONFIGS = {
    "adam_cce_accuracy": (lambda: fd.optimizers.Adam(1e-3), "categorical_crossentropy",
                          "softmax", 4, "onehot", ["accuracy"]),
    "rmsprop_sparse": (lambda: fd.optimizers.RMSprop(1e-3), "sparse_categorical_crossentropy",
                       "softmax", 4, "sparse", ["accuracy"]),
    "sgd_schedule_mse": (lambda: fd.optimizers.SGD(fd.optimizers.schedules.ExponentialDecay(
                             0.01, 100, 0.9), momentum=0.9), "mse", "linear", 4, "onehot", []),
    "adamw_bce": (lambda: fd.optimizers.AdamW(1e-3), "binary_crossentropy", "sigmoid", 1,
                  "binary", ["accuracy"]),
}


def _model(config, dropout=False):
    make_opt, loss, act, units, _, metrics = CONFIGS[config]
    fd.utils.set_random_seed(0)
    layers = [fd.Input((12,)), fd.layers.Dense(16, activation="relu")]
    if dropout:
        layers.append(fd.layers.Dropout(0.2))
    m = fd.Sequential(layers + [fd.layers.Dense(units, activation=act)])
    m.compile(make_opt(), loss, metrics=metrics)
    return m


def _fit_counts(config, callbacks_factory=lambda: None, dropout=False, **fit_kwargs):
    rng = np.random.default_rng(0)
    x, y = _data(CONFIGS[config][4], rng)
    counts = {}
    for batches in (10, 1000):
        m = _model(config, dropout)
        m.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)  # build, first-use costs
        cbs = callbacks_factory()
        counts[batches] = _count(lambda: m.fit(x, y, batch_size=SAMPLES // batches, epochs=1,
                                              callbacks=cbs, **fit_kwargs))
    return counts


def _assert_flat(counts, slack=SLACK):
    few, many = counts[10], counts[1000]
    detail = (f"10 batches: {few.total} calls ({few.fastdense} in fastdense); 1000 batches: "
              f"{many.total} ({many.fastdense}); fastdense calls growing: "
              f"{(many.names - few.names).most_common(8)}")
    assert many.fastdense - few.fastdense <= slack, detail
    assert many.total - few.total <= slack, detail
    assert few.total < 2000, detail


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_default_fit_calls_no_python_per_batch(config):
    _assert_flat(_fit_counts(config, verbose=0))


@pytest.mark.parametrize("fit_kwargs", [
    dict(verbose=0, shuffle=False),
    dict(verbose=0, validation_split=0.2),
    dict(verbose=0, sample_weight=np.linspace(0.5, 1.5, SAMPLES).astype("float32")),
    dict(verbose=0, class_weight={0: 1.0, 1: 2.0, 2: 0.5, 3: 1.0}),
    dict(verbose=0, steps_per_epoch=None),
], ids=["no_shuffle", "validation_split", "sample_weight", "class_weight", "steps_none"])
def test_fit_options_call_no_python_per_batch(fit_kwargs):
    _assert_flat(_fit_counts("adam_cce_accuracy", **fit_kwargs))


def test_dropout_calls_no_python_per_batch():
    _assert_flat(_fit_counts("adam_cce_accuracy", dropout=True, verbose=0))


def test_steps_per_epoch_calls_no_python_per_batch():
    # 1000 batches per pass, 1000 (resp. 10) per epoch
    rng = np.random.default_rng(0)
    x, y = _data("onehot", rng)
    counts = {}
    for steps in (10, 1000):
        m = _model("adam_cce_accuracy")
        m.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
        counts[steps] = _count(lambda: m.fit(x, y, batch_size=4, epochs=1,
                                             steps_per_epoch=steps, verbose=0))
    _assert_flat(counts)


@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_bar_calls_no_python_per_batch(verbose, capsys):
    _assert_flat(_fit_counts("adam_cce_accuracy", verbose=verbose), SLACK_PROGBAR)
    capsys.readouterr()


class EpochOnly(C.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


@pytest.mark.parametrize("make", [
    EpochOnly,
    lambda: C.LambdaCallback(on_epoch_end=lambda epoch, logs: None),
    lambda: C.EarlyStopping(monitor="loss", patience=2),
    lambda: C.ReduceLROnPlateau(monitor="loss"),
    lambda: C.LearningRateScheduler(lambda epoch, lr: lr),
    C.TerminateOnNaN,
    C.History,
], ids=["epoch_only", "lambda_epoch_end", "early_stopping", "reduce_lr", "lr_scheduler",
        "terminate_on_nan", "history"])
def test_callbacks_without_batch_hooks_call_no_python_per_batch(make):
    _assert_flat(_fit_counts("adam_cce_accuracy", callbacks_factory=lambda: [make()],
                             verbose=0))


def test_epoch_only_callback_is_still_called_per_epoch():
    rng = np.random.default_rng(0)
    x, y = _data("onehot", rng)
    m = _model("adam_cce_accuracy")
    cb = EpochOnly()
    m.fit(x, y, batch_size=4, epochs=3, callbacks=[cb], verbose=0)
    assert cb.epochs == 3


class BatchEnd(C.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)


class LegacyBatchEnd(C.Callback):  # Keras's on_batch_end alias
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_batch_end(self, batch, logs=None):
        self.batches.append(batch)


@pytest.mark.parametrize("cls", [BatchEnd, LegacyBatchEnd])
@pytest.mark.parametrize("batches", [10, 1000])
def test_batch_hooks_are_called_once_per_batch(cls, batches):
    rng = np.random.default_rng(0)
    x, y = _data("onehot", rng)
    m = _model("adam_cce_accuracy")
    cb = cls()
    counter = CallCounter()
    counter.run(lambda: m.fit(x, y, batch_size=SAMPLES // batches, epochs=1, callbacks=[cb],
                              verbose=0))
    assert cb.batches == list(range(batches))
    hook = "on_train_batch_end" if cls is BatchEnd else "on_batch_end"
    assert counter.names[hook] >= batches  # the counter sees them (and the base's alias)
    assert counter.total >= batches


def test_lambda_batch_hook_is_called_once_per_batch():
    rng = np.random.default_rng(0)
    x, y = _data("onehot", rng)
    m = _model("adam_cce_accuracy")
    seen = []
    cb = C.LambdaCallback(on_train_batch_begin=lambda batch, logs: seen.append(batch))
    m.fit(x, y, batch_size=40, epochs=2, callbacks=[cb], verbose=0)
    assert seen == list(range(100)) * 2


def test_evaluate_and_predict_call_no_python_per_batch():
    rng = np.random.default_rng(0)
    x, y = _data("onehot", rng)
    m = _model("adam_cce_accuracy")
    m.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    for fn in (lambda bs: m.evaluate(x, y, batch_size=bs, verbose=0),
               lambda bs: m.predict(x, batch_size=bs, verbose=0)):
        _assert_flat({10: _count(lambda: fn(SAMPLES // 10)),
                      1000: _count(lambda: fn(SAMPLES // 1000))})


def test_the_check_detects_per_batch_python():
    # the same measurement with a batch hook grows by more than a call per batch
    counts = _fit_counts("adam_cce_accuracy", callbacks_factory=lambda: [BatchEnd()],
                         verbose=0)
    assert counts[1000].total - counts[10].total > 990
    with pytest.raises(AssertionError):
        _assert_flat(counts, SLACK_PROGBAR)


class _EpochListener(C.Callback):
    """A callback with an epoch hook: fit then returns to Python every epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.mark.parametrize("case", ["shuffle", "no_shuffle", "dropout_schedule", "sparse_labels"])
def test_whole_epochs_natively_match_the_per_epoch_loop(case):
    # With only History listening, fit runs several epochs per engine call;
    # the seeds, shuffles, dropout masks and learning rates must be those of
    # the per-epoch loop: same weights and history to the bit
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 5)).astype(np.float32)
    y = rng.integers(0, 3, 90)
    results = []
    for listener in (None, _EpochListener()):
        np.random.seed(7)
        fd.utils.set_random_seed(7)
        layers = [fd.layers.Dense(16, activation="relu", input_shape=(5,))]
        if case == "dropout_schedule":
            layers.append(fd.layers.Dropout(0.3))
        layers.append(fd.layers.Dense(3, activation="softmax"))
        m = fd.Sequential(layers)
        lr = (fd.optimizers.schedules.ExponentialDecay(0.01, 5, 0.7)
              if case == "dropout_schedule" else 0.01)
        m.compile(optimizer=fd.optimizers.Adam(lr),
                  loss=("sparse_categorical_crossentropy" if case == "sparse_labels"
                        else "categorical_crossentropy"), metrics=["accuracy"])
        yy = y if case == "sparse_labels" else fd.utils.to_categorical(y, 3)
        h = m.fit(x, yy, epochs=37, batch_size=16, verbose=0,
                  shuffle=case != "no_shuffle", callbacks=[listener] if listener else None)
        if listener is not None:
            assert listener.epochs == list(range(37))
        results.append((m.get_weights(), h.history, h.epoch, int(m.optimizer.iterations)))
    (w0, h0, e0, i0), (w1, h1, e1, i1) = results
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    assert h0 == h1 and e0 == e1 == list(range(37)) and i0 == i1 == 37 * 6
    assert sorted(h0) == ["accuracy", "loss"]


def test_whole_epochs_natively_make_few_python_calls():
    x = np.random.default_rng(1).standard_normal((20, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    m = fd.Sequential([fd.layers.Dense(4, activation="relu", input_shape=(3,)),
                       fd.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.fit(x, y, epochs=2, verbose=0)
    fast = _count(lambda: m.fit(x, y, epochs=500, batch_size=20, verbose=0))
    loop = _count(lambda: m.fit(x, y, epochs=500, batch_size=20, verbose=0,
                                callbacks=[_EpochListener()]))
    # only History listening: a handful of engine calls for the 500 epochs
    # (chunks growing 4x), History's bookkeeping per epoch, no per-epoch
    # permutation, seeding or chunk logic
    assert fast.names["_fit_epochs_native"] == 1 and loop.names["_fit_epochs_native"] == 0
    assert loop.names["_run_epoch_native"] == 500
    assert fast.fastdense < loop.fastdense / 2
