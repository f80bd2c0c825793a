"""Fashion-MNIST, compatible with ``keras.datasets.fashion_mnist``.

60,000 training and 10,000 test 28x28 grayscale images of 10 kinds of
clothing (0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot): a drop-in replacement for MNIST.
Its four IDX files (``train-images-idx3-ubyte.gz`` ...) are found as
``fastdense.datasets`` describes, in a ``fashion-mnist/`` directory (Keras's
cache layout: ``~/.keras/datasets/fashion-mnist/``; with ``$FASTDENSE_DATA``,
its ``fashion-mnist/`` subdirectory, since MNIST's files have the same names),
or downloaded once from Keras's URL.
"""

from __future__ import annotations

from . import _fetch
from .mnist import _IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC, _read_idx

__all__ = ["load_data", "CLASS_NAMES"]

SUBDIR = "fashion-mnist"
# The files Keras downloads.  Keras checks no hash for them, and neither does
# this loader (their published MD5s are Zalando's originals', which the copies
# at Keras's URL could not be checked against here); a corrupt or truncated
# download fails the IDX reader's checks of magic number and size instead.
FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


def _path(name: str):
    return _fetch.fetch(name, dataset=SUBDIR, origin=_fetch.KERAS_ORIGIN + name,
                        file_hash=None, subdirs=(SUBDIR,), env_root=False)


def load_data():
    """Load Fashion-MNIST, like ``keras.datasets.fashion_mnist.load_data``.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes
        ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``.

    Raises:
        DatasetNotFoundError: a file has no local copy and its download failed.
        ValueError: a file is corrupt or truncated, or the images and labels
            of a split do not match in number.
    """
    out = []
    for prefix in ("train", "t10k"):
        labels_path = _path(f"{prefix}-labels-idx1-ubyte.gz")
        images_path = _path(f"{prefix}-images-idx3-ubyte.gz")
        y = _read_idx(labels_path, _IDX_LABELS_MAGIC)
        x = _read_idx(images_path, _IDX_IMAGES_MAGIC)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{images_path} holds {x.shape[0]} images but {labels_path} "
                             f"holds {y.shape[0]} labels")
        out.append((x, y))
    return out[0], out[1]
