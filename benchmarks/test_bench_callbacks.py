"""fit timed with and without a callback that has no batch hooks.

A callback that only overrides epoch hooks (or a built-in one such as
EarlyStopping) must leave the native batch loop alone, so the rows "none" and
"epoch hooks only" of each group should time the same; the row "batch hook"
shows the cost of the per-batch Python path that a callback with
``on_train_batch_end`` asks for.

    python -m pytest benchmarks/test_bench_callbacks.py --benchmark-only
"""
import numpy as np
import pytest

import fastdense


class EpochOnly(fastdense.callbacks.Callback):
    """Only epoch hooks: fit keeps its native batch loop."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(logs["loss"])


class BatchEnd(fastdense.callbacks.Callback):
    """A batch hook: fit returns to Python after every batch."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


CALLBACKS = {
    "none": lambda: None,
    "epoch hooks only": lambda: [EpochOnly()],
    "EarlyStopping": lambda: [fastdense.callbacks.EarlyStopping(monitor="loss", patience=5)],
    "batch hook": lambda: [BatchEnd()],
}


def _small_batches_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16384, 32)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 16384)]
    return x, y


@pytest.mark.parametrize("callback", list(CALLBACKS))
@pytest.mark.benchmark(group="fit 32-64-4 adam, 16384 samples, batch 16 (1024 batches)")
def test_fit_small_batches_callbacks(benchmark, threads, callback):
    fastdense.set_num_threads(threads)
    x, y = _small_batches_data()
    m = fastdense.Sequential([fastdense.Input((32,)),
                              fastdense.layers.Dense(64, activation="relu"),
                              fastdense.layers.Dense(4, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    benchmark.pedantic(lambda: m.fit(x, y, epochs=1, batch_size=16, verbose=0,
                                     callbacks=CALLBACKS[callback]()),
                       rounds=10, warmup_rounds=1)


@pytest.mark.parametrize("callback", list(CALLBACKS))
@pytest.mark.benchmark(group="MNIST epoch 784-512-10 rmsprop b128, callbacks")
def test_mnist_epoch_callbacks(benchmark, mnist_xy, threads, callback):
    x, y, _, _ = mnist_xy
    fastdense.set_num_threads(threads)
    yc = fastdense.utils.to_categorical(y, 10)
    m = fastdense.Sequential([fastdense.layers.Dense(512, activation="relu", input_shape=(784,)),
                              fastdense.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    benchmark.pedantic(lambda: m.fit(x, yc, epochs=1, batch_size=128, verbose=0,
                                     callbacks=CALLBACKS[callback]()),
                       rounds=3, warmup_rounds=1)
