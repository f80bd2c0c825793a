"""What CIFAR-10's and CIFAR-100's loaders share: finding the extracted
``cifar-*-python`` batches (or their archive, extracted once), and reading a batch."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Sequence, Tuple

import numpy as np

from . import _arrays, _fetch


def _extract(archive: Path, top: str, dest_parent: Path) -> Path:
    """Extract the members under ``top/`` of a .tar.gz into dest_parent/top
    (regular files only, names checked: nothing lands outside), atomically."""
    dest_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=top + ".", suffix=".part", dir=dest_parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for m in tar:
                    parts = PurePosixPath(m.name).parts
                    if not parts or parts[0] != top or ".." in parts or m.name.startswith("/"):
                        continue
                    if not m.isfile():
                        continue
                    out = tmp.joinpath(*parts)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    if src is None:
                        continue
                    with src, open(out, "wb") as fh:
                        shutil.copyfileobj(src, fh)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ValueError(f"{archive}: corrupt or invalid archive ({e})") from e
        if not (tmp / top).is_dir():
            raise ValueError(f"{archive}: holds no {top}/ directory")
        final = dest_parent / top
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / top, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def batches_dir(*, dataset: str, top: str, needed: Sequence[str], archive: str,
                keras_target: str, origin: str, file_hash: str) -> Path:
    """The directory ``top`` holding the batch files ``needed``: extracted
    already (in ``$FASTDENSE_DATA``, its ``dataset`` subdirectory, Keras 3's
    cache ``keras_target/top``, the older ``top`` there, fastdense's cache), or
    extracted into fastdense's cache from the archive found in those places or
    downloaded (hash checked) from ``origin``."""
    keras, mine = _fetch.keras_cache(), _fetch.fastdense_cache()
    roots = []
    env = os.environ.get("FASTDENSE_DATA")
    if env and Path(env).expanduser().is_dir():
        d = Path(env).expanduser()
        roots += [d, d / dataset]
    roots += [keras / keras_target, keras, mine]
    for r in roots:
        if all((r / top / n).is_file() for n in needed):
            return r / top
    archives = [r / archive for r in roots] + [keras / (keras_target + "_archive"),
                                               keras / (top + ".tar.gz")]
    for a in archives:
        if a.is_file():
            return _extract(a, top, mine)
    path = _fetch.fetch(archive, dataset=dataset, origin=origin, file_hash=file_hash)
    return _extract(path, top, mine)


def load_batch(path: Path, label_key: str = "labels") -> Tuple[np.ndarray, list]:
    """(data [n, 3, 32, 32] uint8, labels list) of one pickled CIFAR batch."""
    try:
        with open(path, "rb") as fh:
            d = _arrays.NumpyOnlyUnpickler(fh, encoding="bytes").load()
        d = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in d.items()}
        data, labels = d["data"], d[label_key]
        return data.reshape(data.shape[0], 3, 32, 32), labels
    except FileNotFoundError:
        raise
    except Exception as e:  # (pickle, key, shape errors: a corrupt batch)
        raise ValueError(f"{path}: corrupt or invalid CIFAR batch ({type(e).__name__}: {e})") from e
