"""CIFAR-100 small images, compatible with ``keras.datasets.cifar100``.

50,000 training and 10,000 test 32x32 colour images in 100 fine classes
grouped in 20 coarse ones.  Found or fetched as ``cifar10``'s are: the
extracted ``cifar-100-python/`` directory, else the archive
``cifar-100-python.tar.gz`` (``$FASTDENSE_DATA`` or its ``cifar100/``, Keras's
cache, fastdense's cache, else downloaded once, SHA-256 checked).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from . import _cifar

__all__ = ["load_data"]

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
FILE_HASH = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"


def load_data(label_mode: str = "fine"):
    """Load CIFAR-100, like ``keras.datasets.cifar100.load_data``.

    Args:
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: ``x`` uint8 of shape
        ``(n, 32, 32, 3)`` (channels first where the backend says so), ``y``
        int64 of shape ``(n, 1)``.
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError('`label_mode` must be one of `"fine"`, `"coarse"`. '
                         f"Received: label_mode={label_mode}.")
    path = _cifar.batches_dir(dataset="cifar100", top="cifar-100-python",
                              needed=("train", "test"), archive="cifar-100-python.tar.gz",
                              keras_target="cifar-100-python-target", origin=ORIGIN,
                              file_hash=FILE_HASH)
    x_train, train_labels = _cifar.load_batch(path / "train", label_key=f"{label_mode}_labels")
    x_test, test_labels = _cifar.load_batch(path / "test", label_key=f"{label_mode}_labels")
    y_train = np.reshape(train_labels, (len(train_labels), 1))
    y_test = np.reshape(test_labels, (len(test_labels), 1))
    if backend.image_data_format() == "channels_last":
        x_train = x_train.transpose(0, 2, 3, 1)
        x_test = x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test, y_test)
