"""``utils.get_file``: a file downloaded once into a cache, as ``keras.utils.get_file``."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .datasets import _fetch

__all__ = ["get_file", "hash_file", "validate_file"]


def _file_digest(fpath: Union[str, "os.PathLike[str]"], h: Any, chunk_size: int) -> str:
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return str(h.hexdigest())


def hash_file(fpath: Union[str, "os.PathLike[str]"], algorithm: str = "sha256",
              chunk_size: int = 65535) -> str:
    """The file's SHA-256 (or MD5) as hex digits, as ``keras.utils`` computes it."""
    return _file_digest(fpath, _fetch.hasher(None, algorithm), chunk_size)


def validate_file(fpath: Union[str, "os.PathLike[str]"], file_hash: str, algorithm: str = "auto",
                  chunk_size: int = 65535) -> bool:
    """Whether the file's hash is ``file_hash`` (``"auto"``: SHA-256 for 64
    hex digits, else MD5)."""
    return _file_digest(fpath, _fetch.hasher(file_hash, algorithm), chunk_size) == str(file_hash)


def _inside(base: Path, name: str) -> Optional[Path]:
    """base/name resolved, or None where it leaves base."""
    target = (base / name).resolve()
    return target if target == base or base in target.parents else None


def _extract(archive: Path, dest: Path, formats: Sequence[str]) -> bool:
    """Extract the archive into dest if it is one of formats ("tar", "zip"):
    members that would land outside dest, and links that point outside it,
    are skipped with a warning (as Keras does)."""
    for kind in formats:
        if kind == "tar":
            if not tarfile.is_tarfile(archive):
                continue
            dest.mkdir(parents=True, exist_ok=True)
            base = dest.resolve()
            try:
                with tarfile.open(archive) as tar:
                    keep = []
                    for m in tar.getmembers():
                        ok = _inside(base, m.name) is not None
                        if ok and (m.issym() or m.islnk()):
                            link = (m.linkname if m.islnk() else
                                    os.path.join(os.path.dirname(m.name), m.linkname))
                            ok = _inside(base, link) is not None
                        if ok and not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                            ok = False  # (devices, FIFOs)
                        if ok:
                            keep.append(m)
                        else:
                            warnings.warn("Skipping invalid path during archive extraction: "
                                          f"'{m.name}'.", stacklevel=3)
                    kwargs: dict = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    tar.extractall(dest, members=keep, **kwargs)
            except (tarfile.TarError, OSError, EOFError):
                shutil.rmtree(dest, ignore_errors=True)
                raise
            return True
        if kind == "zip":
            if not zipfile.is_zipfile(archive):
                continue
            dest.mkdir(parents=True, exist_ok=True)
            base = dest.resolve()
            with zipfile.ZipFile(archive) as zf:
                keep_z = []
                for info in zf.infolist():
                    if _inside(base, info.filename) is not None:
                        keep_z.append(info)
                    else:
                        warnings.warn("Skipping invalid path during archive extraction: "
                                      f"'{info.filename}'.", stacklevel=3)
                zf.extractall(dest, members=keep_z)
            return True
        raise NotImplementedError(kind)
    return False


def get_file(fname: Optional[Union[str, "os.PathLike[str]"]] = None, origin: Optional[str] = None,
             untar: bool = False, md5_hash: Optional[str] = None, file_hash: Optional[str] = None,
             cache_subdir: str = "datasets", hash_algorithm: str = "auto", extract: bool = False,
             archive_format: Union[str, Sequence[str], None] = "auto",
             cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
             force_download: bool = False) -> str:
    """Download a file from a URL unless it is in the cache already, like
    ``keras.utils.get_file``; returns its path (or, with ``extract``, the
    folder the archive was extracted into).

    The cache is ``cache_dir/cache_subdir`` (``cache_dir`` defaults to
    ``$KERAS_HOME`` or ``~/.keras``, Keras's own, so files Keras fetched are
    found; it is created if missing, where Keras takes a missing one for
    unwritable; an unwritable one is replaced by ``/tmp/.keras``, as Keras).  A cached file
    whose hash does not match ``file_hash`` is downloaded again; a download
    whose hash does not match raises ``ValueError`` (and is not kept).
    ``extract`` (or the deprecated ``untar``) extracts a tar or zip archive
    (``archive_format``: ``"auto"``, ``"tar"``, ``"zip"`` or a list), skipping
    members that would land outside the folder.  Keras's naming: with
    ``extract``, a ``fname`` with a dot is the archive's name and the folder is
    ``<fname up to its first dot>_extracted``; a ``fname`` without one is the
    folder's name and the archive is ``<fname>_archive``.  Unlike Keras, it
    prints nothing (no progress bar).
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    base = os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None \
        else str(_fetch.keras_home())
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if not os.access(base, os.W_OK):
        try:
            os.makedirs(base, exist_ok=True)
        except OSError:
            pass
        if not os.access(base, os.W_OK):
            base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(),
                                ".keras")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)
    provided = fname is not None and os.fspath(fname) != ""
    name = os.fspath(fname) if fname is not None else ""
    if not name:
        name = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not name:
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'."
                             "Please specify the `fname` argument.")
    elif os.sep in name:
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify the "
                         "file's parent directory, use the `cache_dir` argument. "
                         f"Received: fname={name}")
    if extract or untar:
        if provided and "." in name:
            target = os.path.join(datadir, name)
            extraction_dir = os.path.join(datadir, name[: name.find(".")] + "_extracted")
        else:
            extraction_dir = os.path.join(datadir, name)
            target = os.path.join(datadir, f"{name}_archive")
    else:
        target = os.path.join(datadir, name)
    download = force_download or not os.path.exists(target)
    if not download and file_hash is not None:
        download = not validate_file(target, file_hash, algorithm=hash_algorithm)
    if download:
        try:
            _fetch.download(origin, Path(target), None)
        except urllib.error.HTTPError as e:
            raise OSError(f"URL fetch failure on {origin}: {e.code} -- {e.msg}") from e
        except urllib.error.URLError as e:
            raise OSError(f"URL fetch failure on {origin}: {e.errno} -- {e.reason}") from e
        if file_hash is not None and not validate_file(target, file_hash,
                                                       algorithm=hash_algorithm):
            os.remove(target)
            raise ValueError(f"Incomplete or corrupted file detected. The {hash_algorithm} file "
                             f"hash does not match the provided value of {file_hash}.")
    if extract or untar:
        fmt = "tar" if untar else archive_format
        formats: Sequence[str] = ([] if fmt is None else ["tar", "zip"] if fmt == "auto"
                                  else [fmt] if isinstance(fmt, str) else list(fmt))
        if not _extract(Path(target), Path(extraction_dir), formats):
            warnings.warn("Could not extract archive.", stacklevel=2)
        return extraction_dir
    return target
