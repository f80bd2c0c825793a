"""Training and inference, fastdense vs PyTorch and Keras when installed,
each written the way its own users write it, same thread count, one run."""
import os

import numpy as np
import pytest

import fastdense
from fastdense import bench


@pytest.mark.benchmark(group="MNIST epoch 784-512-10 rmsprop b128", min_rounds=3, warmup=True)
def test_mnist_epoch_fastdense(benchmark, mnist_xy, threads):
    x, y, _, _ = mnist_xy
    fastdense.set_num_threads(threads)
    yc = fastdense.utils.to_categorical(y, 10)
    m = fastdense.Sequential([fastdense.layers.Dense(512, activation="relu", input_shape=(784,)),
                              fastdense.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    benchmark.pedantic(lambda: m.fit(x, yc, epochs=1, batch_size=128, verbose=0), rounds=3,
                       warmup_rounds=1)


@pytest.mark.benchmark(group="MNIST epoch 784-512-10 rmsprop b128")
def test_mnist_epoch_fastdense_one_thread(benchmark, mnist_xy, threads):
    # (beside test_mnist_epoch_fastdense: the thread scaling; target >= 1.8x at 2)
    x, y, _, _ = mnist_xy
    fastdense.set_num_threads(1)
    try:
        benchmark.pedantic(bench.fastdense_epoch(x, y), rounds=3, warmup_rounds=1)
    finally:
        fastdense.set_num_threads(threads)


@pytest.mark.benchmark(group="MNIST epoch 784-512-10 rmsprop b128")
def test_mnist_epoch_pytorch(benchmark, mnist_xy, threads):
    pytest.importorskip("torch")
    x, y, _, _ = mnist_xy
    benchmark.pedantic(bench.torch_epoch(x, y, threads), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="MNIST epoch 784-512-10 rmsprop b128")
def test_mnist_epoch_keras(benchmark, mnist_xy):
    os.environ.setdefault("KERAS_BACKEND", "jax")  # (as fastdense.bench: TensorFlow is rarely here)
    pytest.importorskip("keras")
    import keras
    x, y, _, _ = mnist_xy
    yc = keras.utils.to_categorical(y, 10)
    m = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    benchmark.pedantic(lambda: m.fit(x, yc, epochs=1, batch_size=128, verbose=0), rounds=3,
                       warmup_rounds=1)


@pytest.mark.benchmark(group="tiny 1-64x4-1 sigmoid, 100 epochs")
def test_tiny_fit(benchmark):
    x = np.linspace(0, 3.5, 10, dtype=np.float32).reshape(-1, 1)
    y = (x[:, 0] > 1).astype(np.float32)

    def setup():
        m = fastdense.Sequential(
            [fastdense.layers.Dense(64, activation="sigmoid", input_shape=(1,))]
            + [fastdense.layers.Dense(64, activation="sigmoid") for _ in range(3)]
            + [fastdense.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return (m,), {}

    benchmark.pedantic(lambda m: m.fit(x, y, epochs=100, batch_size=10, verbose=0),
                       setup=setup, rounds=20)


@pytest.mark.benchmark(group="predict one MNIST sample")
def test_predict_one(benchmark, mnist_xy):
    _, _, xt, _ = mnist_xy
    m = fastdense.Sequential([fastdense.layers.Dense(512, activation="relu", input_shape=(784,)),
                              fastdense.layers.Dense(10, activation="softmax")])
    benchmark(lambda: m.predict(xt[:1], verbose=0))
