"""Tests for fastdense.datasets.mnist (never touches the network or the real home)."""

import gzip
import os
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from fastdense.datasets import mnist

REAL_DOWNLOAD = mnist._download  # saved before the autouse fixture replaces it

IDX_NAMES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


# ---------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point every home/cache variable into tmp_path and forbid downloads."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("FASTDENSE_HOME", str(tmp_path / "fastdense_home"))
    real_data = os.environ.get("FASTDENSE_DATA")
    monkeypatch.delenv("FASTDENSE_DATA", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def no_network(url, dest, sha256, timeout=None):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(mnist, "_download", no_network)
    return real_data


def make_arrays(seed=0, n_train=5, n_test=3, rows=4, cols=3):
    rng = np.random.default_rng(seed)
    return (
        (rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
         rng.integers(0, 10, n_train, dtype=np.uint8)),
        (rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
         rng.integers(0, 10, n_test, dtype=np.uint8)),
    )


def write_npz(path, arrays):
    (xtr, ytr), (xte, yte) = arrays
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def idx_bytes(arr, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx(directory, arrays, compress=True):
    directory.mkdir(parents=True, exist_ok=True)
    (xtr, ytr), (xte, yte) = arrays
    items = [("train_x", xtr, 0x803), ("train_y", ytr, 0x801),
             ("test_x", xte, 0x803), ("test_y", yte, 0x801)]
    for key, arr, magic in items:
        data = idx_bytes(arr, magic)
        name = IDX_NAMES[key]
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return directory


def assert_same(got, want):
    (a, b), (c, d) = got
    (e, f), (g, h) = want
    for x, y in ((a, e), (b, f), (c, g), (d, h)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- readers

def test_npz_reader(tmp_path):
    arrays = make_arrays()
    f = write_npz(tmp_path / "data" / "mnist.npz", arrays)
    assert_same(mnist.load_data(str(f)), arrays)
    assert_same(mnist.load_data(f), arrays)  # PathLike accepted


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader(tmp_path, compress):
    arrays = make_arrays(seed=1)
    d = write_idx(tmp_path / "idx", arrays, compress=compress)
    assert_same(mnist.load_data(str(d)), arrays)


def test_directory_with_mnist_subdir(tmp_path):
    arrays = make_arrays(seed=2)
    write_idx(tmp_path / "root" / "mnist", arrays)
    assert_same(mnist.load_data(str(tmp_path / "root")), arrays)


def test_relative_path_in_cwd():
    arrays = make_arrays(seed=3)
    write_npz(Path("local.npz").resolve(), arrays)
    assert_same(mnist.load_data("local.npz"), arrays)


# ---------------------------------------------------------------- lookup order

def test_lookup_order(tmp_path, monkeypatch):
    a_explicit, a_env, a_keras, a_fd = (make_arrays(seed=s) for s in (10, 11, 12, 13))
    explicit = write_npz(tmp_path / "explicit" / "mnist.npz", a_explicit)
    write_idx(tmp_path / "env", a_env)
    write_npz(tmp_path / "keras_home" / "datasets" / "mnist.npz", a_keras)
    write_idx(tmp_path / "fastdense_home" / "datasets", a_fd)
    monkeypatch.setenv("FASTDENSE_DATA", str(tmp_path / "env"))

    assert_same(mnist.load_data(str(explicit)), a_explicit)
    assert_same(mnist.load_data(), a_env)
    monkeypatch.delenv("FASTDENSE_DATA")
    assert_same(mnist.load_data(), a_keras)
    os.remove(tmp_path / "keras_home" / "datasets" / "mnist.npz")
    assert_same(mnist.load_data(), a_fd)


def test_env_npz_preferred_over_idx_and_env_file(tmp_path, monkeypatch):
    a_npz, a_idx = make_arrays(seed=20), make_arrays(seed=21)
    write_npz(tmp_path / "env" / "mnist.npz", a_npz)
    write_idx(tmp_path / "env", a_idx)
    monkeypatch.setenv("FASTDENSE_DATA", str(tmp_path / "env"))
    assert_same(mnist.load_data(), a_npz)
    monkeypatch.setenv("FASTDENSE_DATA", str(tmp_path / "env" / "mnist.npz"))
    assert_same(mnist.load_data(), a_npz)


def test_default_home_caches(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.delenv("FASTDENSE_HOME")
    a_fd, a_keras = make_arrays(seed=30), make_arrays(seed=31)
    write_npz(tmp_path / "home" / ".fastdense" / "datasets" / "mnist.npz", a_fd)
    assert_same(mnist.load_data(), a_fd)
    write_npz(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz", a_keras)
    assert_same(mnist.load_data(), a_keras)


def test_download_used_only_when_nothing_found(tmp_path, monkeypatch):
    arrays = make_arrays(seed=40)
    src = write_npz(tmp_path / "served.npz", arrays)
    calls = []

    def fake_download(url, dest, sha256, timeout=None):
        calls.append((url, Path(dest), sha256))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    monkeypatch.setattr(mnist, "_download", fake_download)
    assert_same(mnist.load_data(), arrays)
    dest = tmp_path / "fastdense_home" / "datasets" / "mnist.npz"
    assert calls == [(mnist.ORIGIN, dest, mnist.FILE_HASH)]
    assert mnist.FILE_HASH == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    assert_same(mnist.load_data(), arrays)  # now cached: no second download
    assert len(calls) == 1


def test_download_function_atomic_and_verified(tmp_path):
    """The real downloader, fed a local file:// URL (no network)."""
    import hashlib

    src = tmp_path / "src.bin"
    src.write_bytes(b"0123456789" * 1000)
    url = src.as_uri()
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "datasets" / "out.npz"
    REAL_DOWNLOAD(url, dest, good, timeout=5)
    assert dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.npz"]

    dest2 = dest.parent / "bad.npz"
    with pytest.raises(OSError, match="SHA-256"):
        REAL_DOWNLOAD(url, dest2, "0" * 64, timeout=5)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.npz"]  # no leftovers


# ---------------------------------------------------------------- errors

def test_no_file_no_network_error(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data()
    err = info.value
    assert isinstance(err, mnist.MNISTNotFoundError)
    msg = str(err)
    assert "FASTDENSE_DATA" in msg
    assert str(tmp_path / "keras_home" / "datasets" / "mnist.npz") in msg
    assert str(tmp_path / "fastdense_home" / "datasets" / "mnist.npz") in msg
    assert "network disabled in tests" in msg
    assert isinstance(err.__cause__, urllib.error.URLError)


def test_truncated_idx_names_file(tmp_path):
    arrays = make_arrays(seed=50)
    d = write_idx(tmp_path / "idx", arrays, compress=False)
    bad = d / IDX_NAMES["train_x"]
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated") as info:
        mnist.load_data(str(d))
    assert str(bad) in str(info.value)


def test_truncated_gzip_names_file(tmp_path):
    d = write_idx(tmp_path / "idx", make_arrays(seed=51))
    bad = d / (IDX_NAMES["test_y"] + ".gz")
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(ValueError) as info:
        mnist.load_data(str(d))
    assert str(bad) in str(info.value)


def test_bad_magic_names_file(tmp_path):
    arrays = make_arrays(seed=52)
    d = write_idx(tmp_path / "idx", arrays, compress=False)
    bad = d / IDX_NAMES["train_y"]
    bad.write_bytes(idx_bytes(arrays[0][1], 0x803)[:4] + bad.read_bytes()[4:])
    with pytest.raises(ValueError, match="magic") as info:
        mnist.load_data(str(d))
    assert str(bad) in str(info.value)


def test_label_count_mismatch(tmp_path):
    (xtr, ytr), test = make_arrays(seed=53)
    d = write_idx(tmp_path / "idx", ((xtr, ytr[:-1]), test))
    with pytest.raises(ValueError, match="labels"):
        mnist.load_data(str(d))


def test_corrupt_npz_names_file(tmp_path):
    f = write_npz(tmp_path / "mnist.npz", make_arrays(seed=54))
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError) as info:
        mnist.load_data(str(f))
    assert str(f) in str(info.value)


def test_npz_missing_keys(tmp_path):
    f = tmp_path / "other.npz"
    np.savez(f, a=np.zeros(3))
    with pytest.raises(ValueError, match="x_train"):
        mnist.load_data(str(f))


# ---------------------------------------------------------------- real data

@pytest.fixture
def real_dir(isolated_env):
    if not isolated_env:
        pytest.skip("FASTDENSE_DATA is not set (point it at the folder holding the "
                    "real mnist.npz and IDX .gz files to run the real-data tests)")
    d = Path(isolated_env)
    if d.is_file():
        d = d.parent
    if not (d / "mnist.npz").is_file() and (d / "mnist" / "mnist.npz").is_file():
        d = d / "mnist"
    return d


def test_real_data_npz_and_idx_identical(real_dir, tmp_path, monkeypatch):
    npz = mnist.load_data(str(real_dir / "mnist.npz"))
    idx_dir = tmp_path / "idx_only"
    idx_dir.mkdir()
    for name in IDX_NAMES.values():
        src = real_dir / (name + ".gz")
        if not src.is_file():
            pytest.skip(f"{src} not present")
        os.symlink(src, idx_dir / (name + ".gz"))
    idx = mnist.load_data(str(idx_dir))

    (xtr, ytr), (xte, yte) = npz
    assert xtr.shape == (60000, 28, 28) and ytr.shape == (60000,)
    assert xte.shape == (10000, 28, 28) and yte.shape == (10000,)
    for a in (xtr, ytr, xte, yte):
        assert a.dtype == np.uint8
    assert set(np.unique(ytr)) == set(range(10))
    assert_same(idx, npz)

    # Through the environment variable as well.
    monkeypatch.setenv("FASTDENSE_DATA", str(real_dir))
    assert_same(mnist.load_data(), npz)
