"""CIFAR-10 small images, compatible with ``keras.datasets.cifar10``.

50,000 training and 10,000 test 32x32 colour images in 10 classes (0 airplane,
1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck).
The extracted ``cifar-10-batches-py/`` directory is found in ``$FASTDENSE_DATA``
(or its ``cifar10/``), in Keras's cache (where Keras 3 and older Keras put it)
or fastdense's, else the archive ``cifar-10-python.tar.gz`` found there or
downloaded once from the dataset's home (SHA-256 checked) is extracted into
fastdense's cache.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from . import _cifar

__all__ = ["load_data"]

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILE_HASH = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def load_data():
    """Load CIFAR-10, like ``keras.datasets.cifar10.load_data``.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays, ``x`` of shape
        ``(n, 32, 32, 3)`` (``(n, 3, 32, 32)`` when
        ``backend.image_data_format()`` is ``"channels_first"``), ``y`` of
        shape ``(n, 1)``.
    """
    path = _cifar.batches_dir(dataset="cifar10", top="cifar-10-batches-py", needed=_BATCHES,
                              archive="cifar-10-python.tar.gz",
                              keras_target="cifar-10-batches-py-target", origin=ORIGIN,
                              file_hash=FILE_HASH)
    xs, ys = [], []
    for i in range(1, 6):
        data, labels = _cifar.load_batch(path / f"data_batch_{i}")
        if data.shape[0] != len(labels):
            raise ValueError(f"{path / f'data_batch_{i}'}: holds {data.shape[0]} images but "
                             f"{len(labels)} labels")
        xs.append(data)
        ys.append(np.asarray(labels).astype("uint8"))
    # (Keras fills arrays of 50,000; the real batches hold 10,000 each)
    x_train = np.concatenate(xs).astype("uint8", copy=False)
    y_train = np.concatenate(ys)
    x_test, y_test = _cifar.load_batch(path / "test_batch")
    y_train = np.reshape(y_train, (len(y_train), 1))
    y_test = np.reshape(y_test, (len(y_test), 1))
    if backend.image_data_format() == "channels_last":
        x_train = x_train.transpose(0, 2, 3, 1)
        x_test = x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test.astype(x_train.dtype), y_test.astype(y_train.dtype))
