"""The Keras datasets besides MNIST: imdb, reuters, boston_housing,
california_housing, fashion_mnist, cifar10, cifar100.  Files in each dataset's
own format are written to the caches; the loaders' results are checked against
a plain-Python statement of Keras's rules and, where Keras is installed,
against Keras's own loaders on the same files.  Never touches the network or
the real home."""

import gzip
import io
import json
import os
import pickle
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from fastdense import backend
from fastdense.datasets import (DatasetNotFoundError, _fetch, boston_housing, california_housing,
                                cifar10, cifar100, fashion_mnist, imdb, reuters)

REAL_DOWNLOAD = _fetch.download


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("FASTDENSE_HOME", str(tmp_path / "fastdense_home"))
    monkeypatch.delenv("FASTDENSE_DATA", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    calls = []

    def no_network(url, dest, file_hash, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(_fetch, "download", no_network)
    return calls


def keras_dir(tmp_path, sub=""):
    d = tmp_path / "keras_home" / "datasets" / sub
    d.mkdir(parents=True, exist_ok=True)
    return d


# ------------------------------------------------------------ file writers

def sequences(rng, n, max_word=60, max_len=30):
    return [list(map(int, rng.integers(1, max_word, rng.integers(1, max_len)))) for _ in range(n)]


def object_array(lists):
    out = np.empty(len(lists), dtype=object)
    out[:] = lists
    return out


def write_imdb(path, seed=0, n_train=40, n_test=30):
    rng = np.random.default_rng(seed)
    arrays = dict(x_train=object_array(sequences(rng, n_train)),
                  y_train=rng.integers(0, 2, n_train), x_test=object_array(sequences(rng, n_test)),
                  y_test=rng.integers(0, 2, n_test))
    np.savez(path, **arrays)
    return arrays


def write_reuters(path, seed=1, n=57):
    rng = np.random.default_rng(seed)
    arrays = dict(x=object_array(sequences(rng, n)), y=rng.integers(0, 46, n))
    np.savez(path, **arrays)
    return arrays


# ------------------------------------------------- Keras's rules, in Python

def keras_words(xs, start_char, index_from, num_words, skip_top, oov_char):
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    else:
        xs = [list(x) for x in xs]
    return xs


def keras_limit(xs, num_words, skip_top, oov_char):
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def ref_imdb(a, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
             index_from=3):
    rng = np.random.RandomState(seed)
    parts = []
    for xk, yk in (("x_train", "y_train"), ("x_test", "y_test")):
        idx = np.arange(len(a[xk]))
        rng.shuffle(idx)
        xs = keras_words(a[xk][idx], start_char, index_from, num_words, skip_top, oov_char)
        ys = list(a[yk][idx])
        if maxlen:
            kept = [(x, y) for x, y in zip(xs, ys) if len(x) < maxlen]
            xs, ys = [x for x, _ in kept], [y for _, y in kept]
        parts.append((xs, ys))
    xs = keras_limit(parts[0][0] + parts[1][0], num_words, skip_top, oov_char)
    n = len(parts[0][0])
    return (xs[:n], parts[0][1]), (xs[n:], parts[1][1])


def ref_reuters(a, num_words=None, skip_top=0, maxlen=None, test_split=0.2, seed=113,
                start_char=1, oov_char=2, index_from=3):
    idx = np.arange(len(a["x"]))
    np.random.RandomState(seed).shuffle(idx)
    xs = keras_words(a["x"][idx], start_char, index_from, num_words, skip_top, oov_char)
    ys = list(a["y"][idx])
    if maxlen:
        kept = [(x, y) for x, y in zip(xs, ys) if len(x) < maxlen]
        xs, ys = [x for x, _ in kept], [y for _, y in kept]
    xs = keras_limit(xs, num_words, skip_top, oov_char)
    n = int(len(xs) * (1 - test_split))
    return (xs[:n], ys[:n]), (xs[n:], ys[n:])


def assert_sequences(got, want):
    (gx, gy), (tx, ty) = got
    (wx, wy), (vx, vy) = want
    for g, w in ((gx, wx), (tx, vx)):
        assert g.dtype == object and len(g) == len(w)
        assert [list(s) for s in g] == w
        assert all(type(v) is int for s in g for v in s)  # (Python ints, as Keras)
    np.testing.assert_array_equal(gy, np.array(wy))
    np.testing.assert_array_equal(ty, np.array(vy))


SEQ_CASES = [
    {},
    {"num_words": 30},
    {"num_words": 30, "skip_top": 5},
    {"maxlen": 15},
    {"seed": 7, "start_char": None},
    {"start_char": None, "index_from": 0},
    {"oov_char": None, "num_words": 25, "skip_top": 3},
    {"index_from": 0, "oov_char": None},
]


# ------------------------------------------------------------------ imdb

@pytest.mark.parametrize("kw", SEQ_CASES)
def test_imdb_follows_keras_rules(tmp_path, kw):
    a = write_imdb(keras_dir(tmp_path) / "imdb.npz")
    assert_sequences(imdb.load_data(**kw), ref_imdb(a, **kw))


def test_imdb_maxlen_that_keeps_nothing(tmp_path):
    write_imdb(keras_dir(tmp_path) / "imdb.npz")
    with pytest.raises(ValueError, match="maxlen=2, no sequence was kept"):
        imdb.load_data(maxlen=2)


def test_imdb_explicit_path_and_env(tmp_path, monkeypatch):
    a = write_imdb(tmp_path / "mine.npz", seed=3)
    assert_sequences(imdb.load_data(path=tmp_path / "mine.npz"), ref_imdb(a))
    (tmp_path / "data" / "imdb").mkdir(parents=True)
    b = write_imdb(tmp_path / "data" / "imdb" / "imdb.npz", seed=4)
    monkeypatch.setenv("FASTDENSE_DATA", str(tmp_path / "data"))
    assert_sequences(imdb.load_data(), ref_imdb(b))


def test_imdb_word_index(tmp_path):
    (keras_dir(tmp_path) / "imdb_word_index.json").write_text(json.dumps({"the": 1, "and": 2}))
    assert imdb.get_word_index() == {"the": 1, "and": 2}


def test_missing_file_names_places_and_url(tmp_path, isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        imdb.load_data()
    msg = str(info.value)
    assert str(tmp_path / "keras_home" / "datasets" / "imdb.npz") in msg
    assert str(tmp_path / "fastdense_home" / "datasets" / "imdb.npz") in msg
    assert "FASTDENSE_DATA" in msg and "network disabled in tests" in msg
    assert isolated == [_fetch.KERAS_ORIGIN + "imdb.npz"]
    assert isinstance(info.value, FileNotFoundError)


def test_download_lands_in_fastdense_cache(tmp_path, monkeypatch):
    src = tmp_path / "served.npz"
    a = write_reuters(src)
    got = []

    def serve(url, dest, file_hash, timeout=None):
        got.append((url, dest, file_hash))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())

    monkeypatch.setattr(_fetch, "download", serve)
    assert_sequences(reuters.load_data(), ref_reuters(a))
    assert got == [(_fetch.KERAS_ORIGIN + "reuters.npz",
                    tmp_path / "fastdense_home" / "datasets" / "reuters.npz", reuters.FILE_HASH)]
    reuters.load_data()  # (cached now)
    assert len(got) == 1


def test_real_download_checks_sha256_and_md5(tmp_path):
    import hashlib
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc" * 1000)
    dest = tmp_path / "out" / "f.bin"
    REAL_DOWNLOAD(src.as_uri(), dest, hashlib.md5(src.read_bytes()).hexdigest(), timeout=5)
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(OSError, match="MD5 mismatch"):
        REAL_DOWNLOAD(src.as_uri(), tmp_path / "out" / "g.bin", "0" * 32, timeout=5)
    with pytest.raises(OSError, match="SHA-256 mismatch"):
        REAL_DOWNLOAD(src.as_uri(), tmp_path / "out" / "h.bin", "0" * 64, timeout=5)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]  # (no leftovers)


def test_pickled_code_in_a_dataset_file_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    arr = np.empty(2, dtype=object)
    arr[:] = [[1, 2], Evil()]
    np.savez(keras_dir(tmp_path) / "imdb.npz", x_train=arr, y_train=np.zeros(2),
             x_test=arr, y_test=np.zeros(2))
    with pytest.raises(ValueError, match="refusing to load posix.system|refusing to load os.system"):
        imdb.load_data()


def test_corrupt_and_incomplete_files(tmp_path):
    (keras_dir(tmp_path) / "imdb.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt or invalid .npz"):
        imdb.load_data()
    np.savez(keras_dir(tmp_path) / "reuters.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"missing arrays \['y'\]"):
        reuters.load_data()


# --------------------------------------------------------------- reuters

@pytest.mark.parametrize("kw", SEQ_CASES + [{"test_split": 0.5}, {"test_split": 0.0}])
def test_reuters_follows_keras_rules(tmp_path, kw):
    a = write_reuters(keras_dir(tmp_path) / "reuters.npz")
    assert_sequences(reuters.load_data(**kw), ref_reuters(a, **kw))


def test_reuters_word_index_and_labels(tmp_path):
    (keras_dir(tmp_path) / "reuters_word_index.json").write_text('{"said": 4}')
    assert reuters.get_word_index() == {"said": 4}
    names = reuters.get_label_names()
    assert len(names) == 46 and names[3] == "earn" and names[-1] == "lead"


# ------------------------------------------------------- housing (tables)

def write_table(path, n, cols, dtype, seed=5):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, cols)).astype(dtype), rng.random(n).astype(dtype)
    np.savez(path, x=x, y=y)
    return x, y


def ref_split(x, y, test_split, seed):
    idx = np.arange(len(x))
    np.random.RandomState(seed).shuffle(idx)
    x, y = x[idx], y[idx]
    n = int(len(x) * (1 - test_split))
    return (x[:n], y[:n]), (x[n:], y[n:])


def assert_tables(got, want):
    for g, w in zip((*got[0], *got[1]), (*want[0], *want[1])):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("test_split,seed", [(0.2, 113), (0.0, 1), (0.35, 9)])
def test_boston_housing(tmp_path, test_split, seed):
    x, y = write_table(keras_dir(tmp_path) / "boston_housing.npz", 506, 13, np.float64)
    got = boston_housing.load_data(test_split=test_split, seed=seed)
    assert_tables(got, ref_split(x, y, test_split, seed))
    if test_split == 0.2:
        assert got[0][0].shape == (404, 13) and got[1][0].shape == (102, 13)


@pytest.mark.parametrize("version", ["large", "small"])
def test_california_housing(tmp_path, version):
    x, y = write_table(keras_dir(tmp_path) / "california_housing.npz", 900, 8, np.float32)
    n = 600 if version == "small" else 900
    assert_tables(california_housing.load_data(version=version),
                  ref_split(x[:n], y[:n], 0.2, 113))


def test_housing_argument_errors(tmp_path):
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf"Invalid `test_split` argument: {bad}"):
            boston_housing.load_data(test_split=bad)
        with pytest.raises(ValueError, match="Invalid `test_split`"):
            california_housing.load_data(test_split=bad)
    with pytest.raises(ValueError, match="Received: version=medium"):
        california_housing.load_data(version="medium")


# ---------------------------------------------------------- fashion-mnist

def write_idx(path, arr):
    magic = 0x00000803 if arr.ndim == 3 else 0x00000801
    data = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(data + arr.astype(np.uint8).tobytes())


def write_fashion(d, seed=2, n_train=7, n_test=4):
    rng = np.random.default_rng(seed)
    a = {"train": (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train)),
         "t10k": (rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))}
    d.mkdir(parents=True, exist_ok=True)
    for prefix, (x, y) in a.items():
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", y)
    return a


def test_fashion_mnist_from_keras_cache(tmp_path):
    a = write_fashion(keras_dir(tmp_path, "fashion-mnist"))
    (x, y), (xt, yt) = fashion_mnist.load_data()
    for g, w in ((x, a["train"][0]), (y, a["train"][1]), (xt, a["t10k"][0]), (yt, a["t10k"][1])):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, w)


def test_fashion_mnist_never_reads_mnist_files(tmp_path, monkeypatch):
    """$FASTDENSE_DATA holding MNIST's files (same names): Fashion-MNIST only
    reads its fashion-mnist/ subdirectory."""
    env = tmp_path / "data"
    write_fashion(env, seed=10)  # ("MNIST" at the top)
    monkeypatch.setenv("FASTDENSE_DATA", str(env))
    with pytest.raises(DatasetNotFoundError, match="fashion-mnist"):
        fashion_mnist.load_data()
    a = write_fashion(env / "fashion-mnist", seed=11)
    np.testing.assert_array_equal(fashion_mnist.load_data()[1][0], a["t10k"][0])


# ------------------------------------------------------------------ CIFAR

def batch(rng, n, labels_key="labels", extra=None):
    d = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
         labels_key.encode(): [int(v) for v in rng.integers(0, 10, n)]}
    d.update(extra or {})
    return pickle.dumps(d, protocol=3)


def write_tar(path, top, files):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def cifar10_files(seed=3, n=6):
    rng = np.random.default_rng(seed)
    files = {f"data_batch_{i}": batch(rng, n) for i in range(1, 6)}
    files["test_batch"] = batch(rng, n)
    return files


def ref_cifar(files, names, key="labels"):
    xs, ys = [], []
    for nm in names:
        d = pickle.loads(files[nm], encoding="bytes")
        xs.append(d[b"data"].reshape(-1, 3, 32, 32))
        ys.append(np.array(d[key.encode()]))
    return np.concatenate(xs), np.concatenate(ys).reshape(-1, 1)


@pytest.mark.parametrize("where", ["keras3_archive", "old_keras_dir", "env_tar"])
def test_cifar10(tmp_path, monkeypatch, where):
    files = cifar10_files()
    if where == "keras3_archive":
        write_tar(keras_dir(tmp_path) / "cifar-10-batches-py-target_archive",
                  "cifar-10-batches-py", files)
    elif where == "old_keras_dir":
        d = keras_dir(tmp_path, "cifar-10-batches-py")
        for k, v in files.items():
            (d / k).write_bytes(v)
    else:
        write_tar(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz",
                  "cifar-10-batches-py", files)
        monkeypatch.setenv("FASTDENSE_DATA", str(tmp_path / "data"))
    (x, y), (xt, yt) = cifar10.load_data()
    wx, wy = ref_cifar(files, [f"data_batch_{i}" for i in range(1, 6)])
    vx, vy = ref_cifar(files, ["test_batch"])
    np.testing.assert_array_equal(x, wx.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(xt, vx.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(yt, vy)
    assert x.shape == (30, 32, 32, 3) and y.shape == (30, 1)
    assert x.dtype == y.dtype == xt.dtype == yt.dtype == np.uint8
    if where != "old_keras_dir":  # (extracted once into fastdense's cache)
        assert (tmp_path / "fastdense_home" / "datasets" / "cifar-10-batches-py"
                / "test_batch").is_file()


def test_cifar100_label_modes_and_channels_first(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    files = {}
    for name in ("train", "test"):
        d = {b"data": rng.integers(0, 256, (5, 3072)).astype(np.uint8),
             b"fine_labels": [int(v) for v in rng.integers(0, 100, 5)],
             b"coarse_labels": [int(v) for v in rng.integers(0, 20, 5)]}
        files[name] = pickle.dumps(d, protocol=3)
    write_tar(keras_dir(tmp_path) / "cifar-100-python-target_archive", "cifar-100-python", files)
    for mode in ("fine", "coarse"):
        (x, y), (xt, yt) = cifar100.load_data(label_mode=mode)
        wx, wy = ref_cifar(files, ["train"], f"{mode}_labels")
        np.testing.assert_array_equal(x, wx.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(y, wy)
    monkeypatch.setattr(backend, "image_data_format", lambda: "channels_first")
    (x, _), _ = cifar100.load_data()
    assert x.shape == (5, 3, 32, 32)
    with pytest.raises(ValueError, match="Received: label_mode=medium"):
        cifar100.load_data(label_mode="medium")


def test_cifar_archive_cannot_write_outside(tmp_path):
    files = cifar10_files()
    path = keras_dir(tmp_path) / "cifar-10-batches-py-target_archive"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in list(files.items()) + [("../../escaped", b"x")]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("cifar-10-batches-py/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    cifar10.load_data()
    assert not list(tmp_path.rglob("escaped"))
    assert not (tmp_path / "fastdense_home" / "datasets" / "cifar-10-batches-py" / "link").exists()


def test_cifar_pickle_with_code_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    files = cifar10_files()
    files["data_batch_2"] = pickle.dumps({b"data": Evil(), b"labels": []}, protocol=3)
    d = keras_dir(tmp_path, "cifar-10-batches-py")
    for k, v in files.items():
        (d / k).write_bytes(v)
    with pytest.raises(ValueError, match="data_batch_2: corrupt or invalid CIFAR batch"):
        cifar10.load_data()


# ------------------------------------------------- side by side with Keras

def _keras_loaders(monkeypatch, tmp_path):
    pytest.importorskip("keras")
    from keras.src.datasets import (boston_housing as kb, california_housing as kc,
                                    cifar10 as k10, cifar100 as k100, fashion_mnist as kf,
                                    imdb as ki, reuters as kr)
    served = keras_dir(tmp_path)

    def get_file(fname=None, origin=None, extract=False, cache_subdir="datasets", **kw):
        if extract:  # (Keras 3's extraction layout)
            target = served / fname
            if not target.exists():
                arch = served / (fname + "_archive")
                with tarfile.open(arch) as tar:
                    tar.extractall(target, filter="data")
            return str(target)
        sub = cache_subdir.split(os.sep, 1)[1] if os.sep in cache_subdir else ""
        return str(served / sub / fname)

    for mod in (kb, kc, k10, k100, kf, ki, kr):
        monkeypatch.setattr(mod, "get_file", get_file)
    return {"imdb": ki, "reuters": kr, "boston": kb, "california": kc, "fashion": kf,
            "cifar10": k10, "cifar100": k100}


def test_side_by_side_with_keras(tmp_path, monkeypatch):
    k = _keras_loaders(monkeypatch, tmp_path)
    write_imdb(keras_dir(tmp_path) / "imdb.npz", seed=21, n_train=60, n_test=50)
    write_reuters(keras_dir(tmp_path) / "reuters.npz", seed=22, n=80)
    for kw in SEQ_CASES:
        for ours, theirs in ((imdb, k["imdb"]), (reuters, k["reuters"])):
            (gx, gy), (tx, ty) = ours.load_data(**kw)
            (wx, wy), (vx, vy) = theirs.load_data(**kw)
            assert [list(s) for s in gx] == [list(s) for s in wx], (ours.__name__, kw)
            assert [list(s) for s in tx] == [list(s) for s in vx], (ours.__name__, kw)
            for g, w in ((gy, wy), (ty, vy)):
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g, w)
    write_table(keras_dir(tmp_path) / "boston_housing.npz", 506, 13, np.float64)
    write_table(keras_dir(tmp_path) / "california_housing.npz", 700, 8, np.float32)
    assert_tables(boston_housing.load_data(test_split=0.3, seed=2),
                  k["boston"].load_data(test_split=0.3, seed=2))
    assert_tables(california_housing.load_data("small"), k["california"].load_data("small"))
    write_fashion(keras_dir(tmp_path, "fashion-mnist"))
    assert_tables(fashion_mnist.load_data(), k["fashion"].load_data())
    rng = np.random.default_rng(4)
    files = {n: pickle.dumps({b"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8),
                              b"fine_labels": [1, 2, 3, 4], b"coarse_labels": [0, 1, 0, 1]},
                             protocol=3) for n in ("train", "test")}
    write_tar(keras_dir(tmp_path) / "cifar-100-python-target_archive", "cifar-100-python", files)
    for mode in ("fine", "coarse"):
        assert_tables(cifar100.load_data(mode), k["cifar100"].load_data(mode))
