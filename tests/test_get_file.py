"""utils.get_file: Keras's cache naming, hashes, extraction, errors; files
served from file:// URLs (no network).  Side by side with keras.utils.get_file
where Keras is installed."""

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from fastdense.utils import get_file


@pytest.fixture
def served(tmp_path):
    d = tmp_path / "served"
    d.mkdir()
    (d / "data.csv").write_text("a,b\n1,2\n")
    with tarfile.open(d / "pack.tar.gz", "w:gz") as tar:
        for name, data in (("pack/x.txt", b"x"), ("pack/sub/y.txt", b"yy")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(d / "pack.zip", "w") as zf:
        zf.writestr("z/a.txt", "a")
        zf.writestr("z/b.txt", "bb")
    return d


def tree(d):
    d = Path(d)
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_download_once_into_cache(tmp_path, served):
    url = (served / "data.csv").as_uri()
    p = get_file("data.csv", url, cache_dir=tmp_path / "c")
    assert p == str(tmp_path / "c" / "datasets" / "data.csv")
    assert Path(p).read_text() == "a,b\n1,2\n"
    (served / "data.csv").write_text("changed")
    assert Path(get_file("data.csv", url, cache_dir=tmp_path / "c")).read_text() == "a,b\n1,2\n"
    assert Path(get_file("data.csv", url, cache_dir=tmp_path / "c",
                         force_download=True)).read_text() == "changed"


def test_name_from_origin_and_default_cache(tmp_path, served, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    p = get_file(origin=(served / "data.csv").as_uri(), cache_subdir="tables")
    assert p == str(tmp_path / "kh" / "tables" / "data.csv")


def test_hashes(tmp_path, served):
    url = (served / "data.csv").as_uri()
    data = (served / "data.csv").read_bytes()
    sha, md5 = hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    assert Path(get_file("a.csv", url, file_hash=sha, cache_dir=tmp_path)).read_bytes() == data
    assert Path(get_file("b.csv", url, md5_hash=md5, cache_dir=tmp_path)).read_bytes() == data
    with pytest.raises(ValueError, match="The auto file hash does not match the provided value"):
        get_file("c.csv", url, file_hash="0" * 64, cache_dir=tmp_path)
    assert not (tmp_path / "datasets" / "c.csv").exists()
    # a cached file with the wrong hash is fetched again
    (tmp_path / "datasets" / "a.csv").write_text("stale")
    assert Path(get_file("a.csv", url, file_hash=sha, cache_dir=tmp_path)).read_bytes() == data


def test_extract_tar_and_zip(tmp_path, served):
    p = get_file("pack.tar.gz", (served / "pack.tar.gz").as_uri(), extract=True,
                 cache_dir=tmp_path)
    assert p == str(tmp_path / "datasets" / "pack_extracted")
    assert tree(p) == ["pack/sub/y.txt", "pack/x.txt"]
    p = get_file("zipped", (served / "pack.zip").as_uri(), extract=True, cache_dir=tmp_path)
    assert p == str(tmp_path / "datasets" / "zipped")
    assert (tmp_path / "datasets" / "zipped_archive").is_file()
    assert tree(p) == ["z/a.txt", "z/b.txt"]
    p = get_file("old", (served / "pack.tar.gz").as_uri(), untar=True, cache_dir=tmp_path)
    assert tree(p) == ["pack/sub/y.txt", "pack/x.txt"]
    with pytest.warns(UserWarning, match="Could not extract archive"):
        get_file("notar", (served / "data.csv").as_uri(), extract=True, cache_dir=tmp_path)


def test_extraction_stays_inside(tmp_path):
    src = tmp_path / "evil.tar"
    with tarfile.open(src, "w") as tar:
        for name in ("ok.txt", "../escaped.txt", "/abs.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"e"))
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.warns(UserWarning, match="Skipping invalid path"):
        p = get_file("evil", src.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert tree(p) == ["ok.txt"] and not os.path.lexists(Path(p) / "link")
    assert not (tmp_path / "c" / "datasets" / "escaped.txt").exists()


def test_errors(tmp_path, served):
    with pytest.raises(ValueError, match='Please specify the "origin" argument'):
        get_file("x")
    with pytest.raises(ValueError, match="Paths are no longer accepted as the `fname` argument"):
        get_file(os.path.join("a", "b.csv"), (served / "data.csv").as_uri(), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Can't parse the file name"):
        get_file(origin="file:///", cache_dir=tmp_path)
    with pytest.raises(OSError, match="URL fetch failure on"):
        get_file("missing", (served / "nope.csv").as_uri(), cache_dir=tmp_path)
    assert not (tmp_path / "datasets" / "missing").exists()


def test_side_by_side_with_keras(tmp_path, served):
    keras = pytest.importorskip("keras")
    data = (served / "data.csv").read_bytes()
    cases = [
        dict(fname="data.csv", origin=(served / "data.csv").as_uri()),
        dict(origin=(served / "data.csv").as_uri(), cache_subdir="sub"),
        dict(fname="d2.csv", origin=(served / "data.csv").as_uri(),
             file_hash=hashlib.sha256(data).hexdigest()),
        dict(fname="pack.tar.gz", origin=(served / "pack.tar.gz").as_uri(), extract=True),
        dict(fname="plain", origin=(served / "pack.tar.gz").as_uri(), extract=True),
        dict(fname="zz", origin=(served / "pack.zip").as_uri(), extract=True),
        dict(fname="zz2", origin=(served / "pack.zip").as_uri(), extract=True,
             archive_format="zip"),
    ]
    # (Keras takes a cache_dir that does not exist yet for unwritable and
    # falls back to /tmp/.keras; fastdense creates it)
    (tmp_path / "ours").mkdir()
    (tmp_path / "keras").mkdir()
    for i, kw in enumerate(cases):
        ours = get_file(cache_dir=tmp_path / "ours", **kw)
        theirs = keras.utils.get_file(cache_dir=str(tmp_path / "keras"), **kw)
        assert (os.path.relpath(ours, tmp_path / "ours")
                == os.path.relpath(theirs, tmp_path / "keras")), kw
        if os.path.isdir(theirs):
            assert tree(ours) == tree(theirs), kw
        else:
            assert Path(ours).read_bytes() == Path(theirs).read_bytes(), kw
    assert tree(tmp_path / "ours") == tree(tmp_path / "keras")
