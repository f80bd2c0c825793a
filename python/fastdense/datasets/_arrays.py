"""Reading and preparing the arrays of Keras's dataset files (shared by the loaders)."""

from __future__ import annotations

import io
import itertools
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Optional, Sequence, Tuple

import numpy as np

# The only globals an object array of sequences needs to be rebuilt from a
# pickle (both numpy 1's and numpy 2's module names); anything else in a
# dataset file is refused rather than run.
_NUMPY_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
})


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a dataset file (only numpy arrays "
            "are expected there: the file may be corrupt or tampered with)")


def _read_member(fp: BinaryIO) -> np.ndarray:
    """One .npy stream: numeric arrays without pickle, object arrays through
    NumpyOnlyUnpickler."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version in ((2, 0), (3, 0)):
        # (3.0 differs from 2.0 only in the header's text encoding)
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype.hasobject:
        arr = NumpyOnlyUnpickler(fp).load()
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"an object member holds {type(arr).__name__}, not an array")
        return arr
    fp.seek(0)
    return np.lib.format.read_array(fp, allow_pickle=False)


def load_npz(path: Path, keys: Sequence[str]) -> Dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz file (object arrays of sequences allowed,
    rebuilt without running anything but numpy's constructors)."""
    out: Dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n[:-4]: n for n in archive.namelist() if n.endswith(".npy")}
            missing = [k for k in keys if k not in names]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing} (found {sorted(names)})")
            for k in keys:
                with archive.open(names[k]) as raw:
                    out[k] = _read_member(io.BytesIO(raw.read()))
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: corrupt or invalid .npz file ({e})") from e
    except (zipfile.BadZipFile, EOFError, OSError, pickle.UnpicklingError) as e:
        raise ValueError(f"{path}: corrupt or invalid .npz file ({e})") from e
    return out


def shuffled(seed: int, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """x and y in one order drawn as Keras's loaders draw it
    (``np.random.RandomState(seed).shuffle`` of ``arange(len(x))``)."""
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    return x[indices], y[indices]


def check_test_split(test_split: float) -> None:
    if not 0 <= test_split < 1:
        raise ValueError(
            f"Invalid `test_split` argument: {test_split}. It must be between 0 and 1 "
            "(exclusive of 1).")


def split(x: np.ndarray, y: np.ndarray, test_split: float):
    """(x_train, y_train), (x_test, y_test): the first 1 - test_split of the rows
    for training (``int(len(x) * (1 - test_split))`` of them, as Keras)."""
    n = int(len(x) * (1 - test_split))
    return (np.array(x[:n]), np.array(y[:n])), (np.array(x[n:]), np.array(y[n:]))


class Sequences:
    """Word-index sequences held flat: ``flat`` the words one after another,
    ``lengths`` each sequence's count (the loaders' list comprehensions, done
    on arrays)."""

    def __init__(self, seqs: Any, name: str) -> None:
        self.lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        total = int(self.lengths.sum())
        try:
            self.flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64,
                                    count=total)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: the sequences must hold integer word indices ({e})") from e

    def shift(self, start_char: Optional[int], index_from: int) -> None:
        """Each word + index_from, start_char (if not None) before each sequence."""
        flat = self.flat + index_from if index_from else self.flat
        if start_char is not None:
            n = len(self.lengths)
            # (sequence i's start_char lands where its words began, moved
            # right by the i start_chars before it)
            firsts = np.cumsum(self.lengths) - self.lengths + np.arange(n)
            out = np.empty(flat.size + n, dtype=np.int64)
            is_start = np.zeros(out.size, dtype=bool)
            is_start[firsts] = True
            out[is_start] = start_char
            out[~is_start] = flat
            flat = out
            self.lengths = self.lengths + 1
        self.flat = flat

    def keep(self, rows: np.ndarray) -> None:
        """Only the sequences where rows (a bool per sequence) is true."""
        self.flat = self.flat[np.repeat(rows, self.lengths)]
        self.lengths = self.lengths[rows]

    def limit_words(self, num_words: Optional[int], skip_top: int,
                    oov_char: Optional[int]) -> None:
        """Words outside [skip_top, num_words) become oov_char, or are dropped
        where oov_char is None.  num_words None (or 0): the largest word index
        (which is then outside, as in Keras)."""
        if not num_words:
            if not self.flat.size:
                raise ValueError("max() arg is an empty sequence")
            num_words = int(self.flat.max())
        inside = (self.flat >= skip_top) & (self.flat < num_words)
        if oov_char is not None:
            self.flat = np.where(inside, self.flat, oov_char)
        else:
            owner = np.repeat(np.arange(len(self.lengths)), self.lengths)
            self.lengths = np.bincount(owner[inside], minlength=len(self.lengths)).astype(np.int64)
            self.flat = self.flat[inside]

    def lists(self, lo: int = 0, hi: Optional[int] = None) -> list:
        """Sequences [lo, hi) as lists of Python ints."""
        ends = np.cumsum(self.lengths)
        hi = len(self.lengths) if hi is None else hi
        out = []
        for i in range(lo, hi):
            e = int(ends[i])
            out.append(self.flat[e - int(self.lengths[i]):e].tolist())
        return out


def object_array(lists: list) -> np.ndarray:
    """np.array(lists, dtype="object"), as Keras's loaders build it."""
    return np.array(lists, dtype="object")
