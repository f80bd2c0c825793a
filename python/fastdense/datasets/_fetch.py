"""Finding a dataset's files locally, or downloading them once (shared by the loaders).

A file ``name`` of a dataset is looked for, in order:

1. ``$FASTDENSE_DATA``: the file itself, or a directory holding ``name`` directly
   or in a subdirectory named after the dataset (``$FASTDENSE_DATA/imdb/imdb.npz``);
2. Keras's cache, where Keras's own loaders put it: ``$KERAS_HOME/datasets/`` or
   ``~/.keras/datasets/`` (plus the dataset's subdirectory where Keras uses one,
   as for ``fashion-mnist/``);
3. fastdense's cache: ``$FASTDENSE_HOME/datasets/`` or ``~/.fastdense/datasets/``,
   same layout.

Only when none holds it is it downloaded from Keras's public URL into
fastdense's cache, its hash (SHA-256, or MD5 where Keras publishes one)
checked before the file is moved into place.  Local copies are trusted as they
are (no hash check), so a dataset prepared by hand can be used.  Nothing is
printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

__all__ = ["DatasetNotFoundError", "download", "fetch", "keras_cache", "fastdense_cache",
           "KERAS_ORIGIN"]

# Where Keras's loaders download their files from.
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOAD_TIMEOUT = 60.0  # seconds, per blocking socket operation


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's file was found nowhere locally and could not be downloaded."""


def keras_home() -> Path:
    """Keras's home: ``$KERAS_HOME`` or ``~/.keras``."""
    home = os.environ.get("KERAS_HOME")
    return Path(home).expanduser() if home else Path.home() / ".keras"


def keras_cache() -> Path:
    """Keras's dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    return keras_home() / "datasets"


def fastdense_cache() -> Path:
    """fastdense's dataset cache: ``$FASTDENSE_HOME/datasets`` or ``~/.fastdense/datasets``."""
    home = os.environ.get("FASTDENSE_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".fastdense"
    return base / "datasets"


def hasher(file_hash: Optional[str], algorithm: str = "auto") -> "hashlib._Hash":
    """Keras's resolve_hasher: SHA-256 when asked, or for ``"auto"`` when the
    hash has 64 hex digits; MD5 otherwise."""
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None
                                 and len(file_hash) == 64):
        return hashlib.sha256()
    return hashlib.md5(usedforsecurity=False)


def download(url: str, dest: Path, file_hash: Optional[str],
             timeout: float = DOWNLOAD_TIMEOUT) -> None:
    """Download ``url`` to ``dest`` atomically (a temporary file in the same
    directory, renamed once complete), verifying its hash (SHA-256 for 64 hex
    digits, else MD5, as Keras's ``hash_algorithm="auto"``; None: none)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        digest = hasher(file_hash)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
        if file_hash is not None and digest.hexdigest() != file_hash:
            algo = "SHA-256" if len(file_hash) == 64 else "MD5"
            raise OSError(
                f"{algo} mismatch for {url}: got {digest.hexdigest()}, expected {file_hash}"
            )
        os.replace(tmp_name, dest)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


def _candidates(name: str, dataset: str, subdirs: Sequence[str], tried: list[str],
                env_root: bool) -> list[Path]:
    """Where ``name`` is looked for, in order (what is not a candidate goes in tried)."""
    out: list[Path] = []
    env = os.environ.get("FASTDENSE_DATA")
    if not env:
        tried.append("$FASTDENSE_DATA (not set)")
    else:
        d = Path(env).expanduser()
        if d.is_file():  # (a file only stands for a file of that name)
            if d.name == name:
                out.append(d)
            else:
                tried.append(f"{d} ($FASTDENSE_DATA: a file, not {name})")
        else:
            dirs = dict.fromkeys([""] * env_root + [dataset] + [s for s in subdirs if s])
            out.extend(d / s / name if s else d / name for s in dirs)
    for base in (keras_cache(), fastdense_cache()):
        out.extend(base / s / name if s else base / name for s in subdirs)
    return out


def fetch(name: str, *, dataset: str, origin: str, file_hash: Optional[str],
          subdirs: Sequence[str] = ("",), path: Optional[Path] = None,
          env_root: bool = True) -> Path:
    """The local path of one of a dataset's files, downloaded if need be.

    Args:
        name: the file's name (``"imdb.npz"``).
        dataset: the dataset's name, for messages and the ``$FASTDENSE_DATA``
            subdirectory.
        origin: the URL it is downloaded from.
        file_hash: its SHA-256 (or MD5) as Keras publishes it (None: Keras
            checks none).
        subdirs: the cache subdirectories it is looked for in, in order
            (``""``: the cache itself); the first is where it is downloaded to.
        path: an explicit file (absolute, or existing relative to the current
            directory) used as is; an absolute path that does not exist is
            where the download goes.
        env_root: whether ``$FASTDENSE_DATA`` itself may hold the file (False
            for names another dataset uses too, as Fashion-MNIST's IDX files
            MNIST's: then only its subdirectories are searched).

    Raises:
        DatasetNotFoundError: found nowhere and the download failed; the
            message lists where it looked.
    """
    tried: list[str] = []
    if path is not None and (path.is_absolute() or path.exists()):
        if path.is_file():
            return path
        tried.append(str(path))
    subdirs = list(subdirs) or [""]
    for candidate in _candidates(name, dataset, subdirs, tried, env_root):
        tried.append(str(candidate))
        if candidate.is_file():
            return candidate
    first = subdirs[0]
    dest = path if path is not None and path.is_absolute() else (
        fastdense_cache() / first / name if first else fastdense_cache() / name)
    try:
        download(origin, dest, file_hash)
    except (OSError, ValueError) as e:  # URLError, timeouts, HTTP errors are OSErrors
        looked = "\n  ".join(dict.fromkeys(tried))
        raise DatasetNotFoundError(
            f"{dataset}: {name} not found. Looked for it in:\n  {looked}\n"
            f"and downloading {origin} to {dest} failed: {type(e).__name__}: {e}\n"
            f"Put {name} in a directory and set FASTDENSE_DATA to it (or to a directory "
            f"with a {dataset}/ subdirectory holding it), or copy it to "
            f"{keras_cache() / first / name if first else keras_cache() / name}."
        ) from e
    return dest


def word_index(path: "Union[str, os.PathLike[str]]", *, dataset: str,
               file_hash: str) -> Dict[str, int]:
    """A dataset's word -> index JSON file (imdb's, reuters's), found or fetched
    (from Keras's ``<dataset>_word_index.json``, whatever ``path`` names it)."""
    p = Path(os.fspath(path)).expanduser()
    found = fetch(p.name, dataset=dataset, origin=f"{KERAS_ORIGIN}{dataset}_word_index.json",
                  file_hash=file_hash, path=p)
    with open(found, encoding="utf-8") as fh:
        return dict(json.load(fh))
