"""The Keras MNIST workflow, end to end, on fastdense.

    python -m fastdense.examples.mnist [--epochs 5] [--batch-size 128] [--verbose 1]
                                       [--seed N]

Unseeded by default, as the Keras script: each run draws its own initial
weights and shuffles. --seed N (keras.utils.set_random_seed) makes a run
repeat bit for bit on the same kernels and thread count.

MNIST is looked for in $FASTDENSE_DATA, Keras's cache (~/.keras/datasets)
and fastdense's cache (~/.fastdense/datasets); see fastdense.datasets.mnist.
"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional

from fastdense import get_num_threads, layers, models
from fastdense._core import kernel_isa
from fastdense.callbacks import Callback
from fastdense.datasets import mnist
from fastdense.utils import set_random_seed, to_categorical


class _EpochTimer(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)

    def __init__(self) -> None:
        super().__init__()
        self.times: List[float] = []


def main(argv: Optional[List[str]] = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--verbose", type=int, default=1)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args(argv)
    if args.seed is not None:
        set_random_seed(args.seed)

    (x, y), (xt, yt) = mnist.load_data()
    x = x.reshape((60000, 784)).astype("float32") / 255
    xt = xt.reshape((10000, 784)).astype("float32") / 255

    model = models.Sequential()
    model.add(layers.Dense(512, activation="relu", input_shape=(784,)))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    timer = _EpochTimer()
    model.fit(x, to_categorical(y), epochs=args.epochs, batch_size=args.batch_size,
              validation_data=(xt, to_categorical(yt)), callbacks=[timer], verbose=args.verbose)
    test_loss, test_acc = model.evaluate(xt, to_categorical(yt), verbose=args.verbose)
    probs = model.predict(xt[:10], verbose=0)
    print(f"test loss: {test_loss:.4f}  test accuracy: {test_acc:.4f}")
    print(f"predicted digits for the first 10 test images: {probs.argmax(axis=1).tolist()}")
    print(f"true digits:                                   {yt[:10].tolist()}")
    print("time per epoch (s): " + ", ".join(f"{t:.3f}" for t in timer.times)
          + f"  [kernels: {kernel_isa()}, threads: {get_num_threads()}]")
    return float(test_acc)


if __name__ == "__main__":
    main()
