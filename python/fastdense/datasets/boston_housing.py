"""Boston housing price regression dataset, compatible with ``keras.datasets.boston_housing``.

506 samples of 13 attributes of houses in Boston suburbs in the late 1970s;
targets are median values in k$.  The file (Keras's ``boston_housing.npz``) is
found as ``fastdense.datasets`` describes or downloaded once from Keras's URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from . import _arrays, _fetch

__all__ = ["load_data"]

FILE_HASH = "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5"


def load_data(path: Union[str, "os.PathLike[str]"] = "boston_housing.npz",
              test_split: float = 0.2, seed: int = 113):
    """Load the Boston housing dataset, like ``keras.datasets.boston_housing.load_data``.

    Args:
        path: the file's name in the caches, or a file.
        test_split: the fraction kept for the test split (``0 <= test_split < 1``).
        seed: the shuffle before the split (``np.random.RandomState(seed)``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: float64 arrays, ``x`` of 13
        columns (404 training and 102 test rows at the default split).
    """
    _arrays.check_test_split(test_split)
    p = _fetch.fetch(Path(os.fspath(path)).name, dataset="boston_housing",
                     origin=_fetch.KERAS_ORIGIN + "boston_housing.npz", file_hash=FILE_HASH,
                     path=Path(os.fspath(path)).expanduser())
    f = _arrays.load_npz(p, ("x", "y"))
    x, y = _arrays.shuffled(seed, f["x"], f["y"])
    return _arrays.split(x, y, test_split)
