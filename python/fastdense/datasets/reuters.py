"""Reuters newswire topic dataset, compatible with ``keras.datasets.reuters``.

11,228 newswires from Reuters, each a sequence of word indices (by frequency),
labelled with one of 46 topics.  The file (Keras's ``reuters.npz``) is found as
``fastdense.datasets`` describes or downloaded once from Keras's URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from . import _arrays, _fetch

__all__ = ["load_data", "get_word_index", "get_label_names"]

FILE_HASH = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
WORD_INDEX_HASH = "4d44cc38712099c9e383dc6e5f11a921"  # (MD5, as Keras publishes it)


def load_data(path: Union[str, "os.PathLike[str]"] = "reuters.npz",
              num_words: Optional[int] = None, skip_top: int = 0, maxlen: Optional[int] = None,
              test_split: float = 0.2, seed: int = 113, start_char: Optional[int] = 1,
              oov_char: Optional[int] = 2, index_from: int = 3):
    """Load the Reuters dataset, like ``keras.datasets.reuters.load_data``.

    The arguments are ``imdb.load_data``'s (the newswires are shuffled once,
    then maxlen, num_words, skip_top and oov_char apply), plus ``test_split``:
    the last ``test_split`` of the newswires are the test split (the first
    ``int(n * (1 - test_split))`` the training split, as Keras).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: ``x`` object arrays of lists
        of Python ints, ``y`` int arrays of topic indices (0-45).
    """
    p = _fetch.fetch(Path(os.fspath(path)).name, dataset="reuters",
                     origin=_fetch.KERAS_ORIGIN + "reuters.npz", file_hash=FILE_HASH,
                     path=Path(os.fspath(path)).expanduser())
    f = _arrays.load_npz(p, ("x", "y"))
    x, labels = _arrays.shuffled(seed, f["x"], f["y"])
    seqs = _arrays.Sequences(x, str(p))
    seqs.shift(start_char, index_from)
    if maxlen:
        keep = seqs.lengths < maxlen
        seqs.keep(keep)
        labels = labels[keep]
    seqs.limit_words(num_words, skip_top, oov_char)
    n = len(seqs.lengths)
    idx = int(n * (1 - test_split))
    x_train = _arrays.object_array(seqs.lists(0, idx))
    x_test = _arrays.object_array(seqs.lists(idx))
    return (x_train, np.array(labels[:idx])), (x_test, np.array(labels[idx:]))


def get_word_index(path: Union[str, "os.PathLike[str]"] = "reuters_word_index.json") -> Dict[str, int]:
    """The word -> index dict of the Reuters dataset (Keras's
    ``reuters_word_index.json``; its indices are before ``index_from``)."""
    return _fetch.word_index(path, dataset="reuters", file_hash=WORD_INDEX_HASH)


def get_label_names() -> Tuple[str, ...]:
    """The 46 topics' names, in label order (as Keras gives them)."""
    return LABEL_NAMES


LABEL_NAMES: Tuple[str, ...] = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
)
