"""California housing price regression dataset, compatible with
``keras.datasets.california_housing``.

20,640 block groups of the 1990 California census, 8 attributes each; targets
are median house values in $.  The file (Keras's ``california_housing.npz``) is
found as ``fastdense.datasets`` describes or downloaded once from Keras's URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from . import _arrays, _fetch

__all__ = ["load_data"]

FILE_HASH = "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f"


def load_data(version: str = "large",
              path: Union[str, "os.PathLike[str]"] = "california_housing.npz",
              test_split: float = 0.2, seed: int = 113):
    """Load the California housing dataset, like
    ``keras.datasets.california_housing.load_data``.

    Args:
        version: ``"large"`` (all 20,640 rows) or ``"small"`` (the first 600).
        path: the file's name in the caches, or a file.
        test_split: the fraction kept for the test split (``0 <= test_split < 1``).
        seed: the shuffle before the split (``np.random.RandomState(seed)``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: float32 arrays, ``x`` of 8
        columns.
    """
    _arrays.check_test_split(test_split)
    if version not in ("small", "large"):
        raise ValueError(
            f"Argument `version` must be one of 'small', 'large'. Received: version={version}")
    p = _fetch.fetch(Path(os.fspath(path)).name, dataset="california_housing",
                     origin=_fetch.KERAS_ORIGIN + "california_housing.npz", file_hash=FILE_HASH,
                     path=Path(os.fspath(path)).expanduser())
    f = _arrays.load_npz(p, ("x", "y"))
    x, y = f["x"], f["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    x, y = _arrays.shuffled(seed, x, y)
    return _arrays.split(x, y, test_split)
