"""MNIST handwritten digits dataset, compatible with ``keras.datasets.mnist``.

The data is looked up locally first (an explicit path, ``$FASTDENSE_DATA``,
Keras's own cache, fastdense's cache) and only downloaded from Keras's public
URL when no local copy exists.  Both the Keras ``mnist.npz`` layout and the
original IDX files (optionally gzip-compressed) are understood.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import _fetch

__all__ = ["load_data", "MNISTNotFoundError"]

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
# SHA-256 of the file served at ORIGIN (the ``file_hash`` used by Keras).
FILE_HASH = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DOWNLOAD_TIMEOUT = _fetch.DOWNLOAD_TIMEOUT

NPZ_NAME = "mnist.npz"
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# (images, labels) base names of the IDX files, for the train and test splits.
_IDX_FILES = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

PathLike = Union[str, "os.PathLike[str]"]
Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class MNISTNotFoundError(_fetch.DatasetNotFoundError):
    """No local copy of MNIST was found and it could not be downloaded."""


# --------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------

def _load_npz(path: Path) -> Arrays:
    """Read a Keras-layout ``mnist.npz`` (keys x_train, y_train, x_test, y_test)."""
    try:
        obj = np.load(path, allow_pickle=False)
        if not hasattr(obj, "files"):  # a bare .npy array, not an .npz archive
            raise ValueError(f"{path}: not a Keras MNIST .npz file (a single .npy array)")
        with obj as f:
            missing = [k for k in _NPZ_KEYS if k not in f.files]
            if missing:
                raise ValueError(
                    f"{path}: not a Keras MNIST .npz file (missing keys {missing}; "
                    f"found {sorted(f.files)})"
                )
            x_train, y_train, x_test, y_test = (f[k] for k in _NPZ_KEYS)
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: corrupt or invalid MNIST .npz file ({e})") from e
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"{path}: corrupt or invalid MNIST .npz file ({e})") from e
    _check_split(path, x_train, y_train, "train")
    _check_split(path, x_test, y_test, "test")
    return (x_train, y_train), (x_test, y_test)


def _check_split(path: Path, x: np.ndarray, y: np.ndarray, split: str) -> None:
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{path}: inconsistent {split} arrays: x_{split} shape {x.shape}, "
            f"y_{split} shape {y.shape} (expected (n, rows, cols) and (n,))"
        )


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently decompressing gzip (detected by content)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: corrupt or truncated file ({e})") from e
    return data


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzipped or not) with the given magic."""
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated IDX file ({len(data)} bytes, header needs {header})"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{found:08x} (expected 0x{magic:08x})"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "oversized"
        raise ValueError(
            f"{path}: {what} IDX file: header declares dimensions {dims} "
            f"({expected} bytes) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _load_idx(files: list[tuple[Path, Path]]) -> Arrays:
    """Read the (images, labels) IDX file pairs for the train and test splits."""
    out = []
    for images_path, labels_path in files:
        x = _read_idx(images_path, _IDX_IMAGES_MAGIC)
        y = _read_idx(labels_path, _IDX_LABELS_MAGIC)
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{images_path} holds {x.shape[0]} images but {labels_path} "
                f"holds {y.shape[0]} labels"
            )
        out.append((x, y))
    return out[0], out[1]


# --------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------

def _find_idx(directory: Path) -> Optional[list[tuple[Path, Path]]]:
    """The four IDX files in ``directory`` (plain or ``.gz``), or None."""
    pairs = []
    for names in _IDX_FILES:
        pair = []
        for name in names:
            for candidate in (directory / name, directory / (name + ".gz")):
                if candidate.is_file():
                    pair.append(candidate)
                    break
            else:
                return None
        pairs.append(tuple(pair))
    return pairs  # type: ignore[return-value]


def _search_dir(directory: Path, npz_name: str, tried: list[str]):
    """Look for ``npz_name`` then the IDX files in ``directory`` and ``directory/mnist``."""
    for d in (directory, directory / "mnist"):
        npz = d / npz_name
        tried.append(str(npz))
        if npz.is_file():
            return npz
        tried.append(str(d / "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"))
        idx = _find_idx(d)
        if idx is not None:
            return idx
    return None


def _keras_cache() -> Path:
    return _fetch.keras_cache()


def _fastdense_cache() -> Path:
    return _fetch.fastdense_cache()


def _download(url: str, dest: Path, sha256: str, timeout: float = DOWNLOAD_TIMEOUT) -> None:
    """Download ``url`` to ``dest`` atomically, verifying its SHA-256."""
    _fetch.download(url, dest, sha256, timeout)


def _load(found) -> Arrays:
    if isinstance(found, Path):
        return _load_npz(found)
    return _load_idx(found)


def load_data(path: Union[str, "os.PathLike[str]"] = "mnist.npz") -> Arrays:
    """Load the MNIST dataset, like ``keras.datasets.mnist.load_data``.

    Args:
        path: an ``.npz`` file (Keras layout) or a directory holding
            ``mnist.npz`` or the four IDX files.  Used directly if it is an
            absolute path or exists relative to the current directory;
            otherwise it names the ``.npz`` file looked for in the caches
            (default ``"mnist.npz"``).

    Lookup order:
        1. ``path`` (file or directory), if absolute or existing.
        2. ``$FASTDENSE_DATA`` (a file, or a directory searched for
           ``mnist.npz`` then the IDX files ``train-images-idx3-ubyte``,
           ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
           ``t10k-labels-idx1-ubyte``, each optionally ``.gz``; also in its
           ``mnist/`` subdirectory).
        3. Keras's cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``.
        4. fastdense's cache: ``$FASTDENSE_HOME/datasets`` or
           ``~/.fastdense/datasets`` (npz or IDX files).
        5. Download of Keras's ``mnist.npz`` (SHA-256 verified) into
           fastdense's cache (or to ``path`` itself if it is absolute).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes
        ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``.

    Raises:
        MNISTNotFoundError: (a ``FileNotFoundError``) no local copy exists and
            the download failed; the message lists where to put the data.
        ValueError: a file that was found is corrupt or truncated.
    """
    p = Path(os.fspath(path)).expanduser()
    tried: list[str] = []

    # 1. The explicit path.
    if p.is_absolute() or p.exists():
        tried.append(str(p))
        if p.is_dir():
            found = _search_dir(p, NPZ_NAME, tried)
            if found is not None:
                return _load(found)
        elif p.exists():
            return _load_npz(p)
    npz_name = p.name if p.suffix == ".npz" else NPZ_NAME

    # 2. $FASTDENSE_DATA.
    env = os.environ.get("FASTDENSE_DATA")
    if env:
        d = Path(env).expanduser()
        if d.is_file():
            tried.append(str(d))
            return _load_npz(d)
        found = _search_dir(d, npz_name, tried)
        if found is not None:
            return _load(found)
    else:
        tried.append("$FASTDENSE_DATA (not set)")

    # 3. Keras's cache.
    keras_npz = _keras_cache() / npz_name
    tried.append(str(keras_npz))
    if keras_npz.is_file():
        return _load_npz(keras_npz)

    # 4. fastdense's cache.
    cache = _fastdense_cache()
    cache_npz = cache / npz_name
    tried.append(str(cache_npz))
    if cache_npz.is_file():
        return _load_npz(cache_npz)
    tried.append(str(cache / "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"))
    idx = _find_idx(cache)
    if idx is not None:
        return _load_idx(idx)

    # 5. Download.
    dest = p if p.is_absolute() and not p.is_dir() else cache_npz
    try:
        _download(ORIGIN, dest, FILE_HASH)
    except (OSError, ValueError) as e:  # URLError, timeouts, HTTP errors are OSErrors
        looked = "\n  ".join(tried)
        raise MNISTNotFoundError(
            "MNIST data not found. Looked for it in:\n  "
            f"{looked}\n"
            f"and downloading {ORIGIN} to {dest} failed: {type(e).__name__}: {e}\n"
            "Put mnist.npz (Keras layout) or the four IDX files "
            "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a directory "
            "and set FASTDENSE_DATA to it, or copy mnist.npz to "
            f"{cache_npz} or {keras_npz}."
        ) from e
    return _load_npz(dest)
