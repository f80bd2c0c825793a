"""IMDB movie-review sentiment dataset, compatible with ``keras.datasets.imdb``.

25,000 training and 25,000 test reviews, each a sequence of word indices
(words by frequency: index ``i`` is the ``i``-th most frequent word), labelled 0
(negative) or 1 (positive).  The file (Keras's ``imdb.npz``) is found as
``fastdense.datasets`` describes (``$FASTDENSE_DATA``, Keras's cache,
fastdense's cache) or downloaded once from Keras's URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from . import _arrays, _fetch

__all__ = ["load_data", "get_word_index"]

FILE_HASH = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_HASH = "bfafd718b763782e994055a2d397834f"  # (MD5, as Keras publishes it)


def load_data(path: Union[str, "os.PathLike[str]"] = "imdb.npz", num_words: Optional[int] = None,
              skip_top: int = 0, maxlen: Optional[int] = None, seed: int = 113,
              start_char: Optional[int] = 1, oov_char: Optional[int] = 2, index_from: int = 3,
              **kwargs: Any):
    """Load the IMDB dataset, like ``keras.datasets.imdb.load_data``.

    Args:
        path: the file's name in the caches (default ``"imdb.npz"``), or a file
            (absolute, or existing relative to the current directory).
        num_words: keep the words of index below it (the most frequent);
            others become ``oov_char``.  None: the largest index in the data
            (which, as in Keras, is itself then outside).
        skip_top: words of index below it (the most frequent) become
            ``oov_char`` too.
        maxlen: keep only the reviews shorter than it (counting ``start_char``).
        seed: the shuffle of each split (``np.random.RandomState(seed)``,
            the training split first, as Keras).
        start_char: put before each review (None: nothing).
        oov_char: what words left out become (None: they are dropped).
        index_from: added to every word index.
        **kwargs: accepted and ignored, as Keras 3 does.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: ``x`` object arrays of lists
        of Python ints, ``y`` int arrays of 0 and 1.

    Raises:
        DatasetNotFoundError: no local copy and the download failed.
        ValueError: ``maxlen`` leaves no review in a split; a corrupt file.
    """
    p = _fetch.fetch(Path(os.fspath(path)).name, dataset="imdb",
                     origin=_fetch.KERAS_ORIGIN + "imdb.npz", file_hash=FILE_HASH,
                     path=Path(os.fspath(path)).expanduser())
    f = _arrays.load_npz(p, ("x_train", "y_train", "x_test", "y_test"))
    return _finish(p, seed, f, start_char, index_from, maxlen, num_words, skip_top, oov_char)


def _finish(p: Path, seed: int, f: Dict[str, np.ndarray], start_char: Optional[int],
            index_from: int, maxlen: Optional[int], num_words: Optional[int], skip_top: int,
            oov_char: Optional[int]):
    rng = np.random.RandomState(seed)  # (one draw for the training split, then the test's)
    splits = []
    for xk, yk in (("x_train", "y_train"), ("x_test", "y_test")):
        indices = np.arange(len(f[xk]))
        rng.shuffle(indices)
        splits.append((f[xk][indices], f[yk][indices]))
    seqs = _arrays.Sequences([s for x, _ in splits for s in x], str(p))
    seqs.shift(start_char, index_from)
    n_train = len(splits[0][0])
    labels = np.concatenate([splits[0][1], splits[1][1]])
    if maxlen:
        keep = seqs.lengths < maxlen
        if not keep[:n_train].any() or not keep[n_train:].any():
            raise ValueError(
                f"After filtering for sequences shorter than maxlen={maxlen}, no sequence "
                "was kept. Increase maxlen.")
        seqs.keep(keep)
        labels = labels[keep]
        n_train = int(keep[:n_train].sum())
    seqs.limit_words(num_words, skip_top, oov_char)
    x_train = _arrays.object_array(seqs.lists(0, n_train))
    x_test = _arrays.object_array(seqs.lists(n_train))
    return (x_train, labels[:n_train]), (x_test, labels[n_train:])


def get_word_index(path: Union[str, "os.PathLike[str]"] = "imdb_word_index.json") -> Dict[str, int]:
    """The word -> index dict of the IMDB dataset (Keras's
    ``imdb_word_index.json``; its indices are before ``index_from``)."""
    return _fetch.word_index(path, dataset="imdb", file_hash=WORD_INDEX_HASH)
