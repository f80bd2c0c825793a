"""keras.utils helpers: pad_sequences, pack / unpack_x_y_sample_weight,
is_keras_tensor, get_source_inputs; plus Keras's other names for initializers
and focal-crossentropy metric functions. Side by side with Keras where it is
installed."""

import numpy as np
import pytest

import fastdense as fd
from fastdense import utils

SEQS = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10], [11]]
PAD_CASES = [
    {},
    {"maxlen": 3},
    {"maxlen": 4, "padding": "post"},
    {"maxlen": 2, "truncating": "post"},
    {"maxlen": 6, "padding": "post", "truncating": "post", "value": -1},
    {"dtype": "float32", "value": 0.5},
    {"maxlen": 0},
]


def ref_pad(seqs, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    maxlen = max(len(s) for s in seqs) if maxlen is None else maxlen
    out = np.full((len(seqs), maxlen), value, dtype=dtype)
    for i, s in enumerate(seqs):
        s = list(s)
        cut = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if maxlen == 0 or not cut:
            continue
        if padding == "pre":
            out[i, maxlen - len(cut):] = cut
        else:
            out[i, :len(cut)] = cut
    return out


@pytest.mark.parametrize("kw", PAD_CASES)
def test_pad_sequences(kw):
    got = utils.pad_sequences(SEQS, **kw)
    want = ref_pad(SEQS, **kw)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_pad_sequences_items_with_shape_and_errors():
    seqs = [np.ones((2, 3)), np.zeros((4, 3))]
    out = utils.pad_sequences(seqs, dtype="float32")
    assert out.shape == (2, 4, 3) and out[0, :2].sum() == 0 and out[0, 2:].sum() == 6
    with pytest.raises(ValueError, match="Shape of sample"):
        utils.pad_sequences([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match='Padding type "middle" not understood'):
        utils.pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match='Truncating type "x" not understood'):
        utils.pad_sequences(SEQS, truncating="x")
    with pytest.raises(ValueError, match="must be a list of iterables"):
        utils.pad_sequences([[1], 3])
    with pytest.raises(ValueError, match="`sequences` must be iterable"):
        utils.pad_sequences(5)
    with pytest.raises(ValueError, match="dtype=object"):
        utils.pad_sequences([["a"]], value="x")
    strs = utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="")
    assert strs.tolist() == [["a", "b"], ["", "c"]]


def test_imdb_style_pipeline():
    """pad_sequences then a Dense network, as the Keras text examples do."""
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 50, rng.integers(3, 30))) for _ in range(64)]
    x = utils.pad_sequences(seqs, maxlen=20).astype("float32") / 50
    y = rng.integers(0, 2, 64).astype("float32")
    m = fd.Sequential([fd.layers.Dense(8, activation="relu"), fd.layers.Dense(1, activation="sigmoid")])
    m.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"])
    assert np.isfinite(m.fit(x, y, epochs=2, verbose=0).history["loss"][-1])


def test_pack_unpack():
    x, y, w = np.ones(2), np.zeros(2), np.full(2, 0.5)
    assert utils.unpack_x_y_sample_weight(x) == (x, None, None)
    assert utils.unpack_x_y_sample_weight((x,)) == (x, None, None)
    assert utils.unpack_x_y_sample_weight([x, y]) == (x, y, None)
    assert utils.unpack_x_y_sample_weight((x, y, w)) == (x, y, w)
    with pytest.raises(ValueError, match="Data is expected to be in format"):
        utils.unpack_x_y_sample_weight((x, y, w, w))
    assert utils.pack_x_y_sample_weight(x) is x
    assert utils.pack_x_y_sample_weight([x, y]) == ([x, y],)
    assert utils.pack_x_y_sample_weight(x, y) == (x, y)
    assert utils.pack_x_y_sample_weight(x, y, w) == (x, y, w)


def test_keras_tensors_and_source_inputs():
    a = fd.Input(shape=(4,), name="a")
    b = fd.Input(shape=(4,), name="b")
    h = fd.layers.Dense(3)(a)
    k = fd.layers.Dense(3)(b)
    s = fd.layers.Add()([h, k])
    out = fd.layers.Dense(1)(fd.layers.Concatenate()([s, h]))
    assert utils.is_keras_tensor(out) and not utils.is_keras_tensor(np.ones(2))
    assert [t.name for t in utils.get_source_inputs(out)] == ["a", "b"]
    assert utils.get_source_inputs(a) == [a]
    assert utils.get_source_inputs(h)[0] is a
    arr = np.ones(3)
    assert utils.get_source_inputs(arr) is arr


def test_other_names():
    assert fd.initializers.OrthogonalInitializer is fd.initializers.Orthogonal
    assert fd.initializers.IdentityInitializer is fd.initializers.Identity
    assert fd.metrics.binary_focal_crossentropy is fd.losses.binary_focal_crossentropy
    assert fd.metrics.categorical_focal_crossentropy is fd.losses.categorical_focal_crossentropy


def test_side_by_side_with_keras():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(1)
    seqs = [list(rng.integers(0, 9, rng.integers(0, 8))) for _ in range(20)]
    # (maxlen=0: Keras fails to broadcast (s[-0:] is the whole sequence); fastdense
    # gives the empty (n, 0) array)
    cases = [kw for kw in PAD_CASES if kw.get("maxlen") != 0]
    for kw in cases + [{"maxlen": 5, "dtype": "int64"}, {"dtype": "float64", "value": np.nan}]:
        got = utils.pad_sequences(seqs, **kw)
        want = keras.utils.pad_sequences(seqs, **kw)
        assert got.dtype == want.dtype and got.shape == want.shape, kw
        np.testing.assert_array_equal(got, want)
    x, y, w = np.ones(2), np.zeros(2), np.full(2, 0.5)
    for data in (x, (x,), (x, y), [x, y, w]):
        assert all(a is b for a, b in zip(utils.unpack_x_y_sample_weight(data),
                                          keras.utils.unpack_x_y_sample_weight(data)))
    for args in ((x,), ((x, y),), (x, y), (x, y, w)):
        assert repr(utils.pack_x_y_sample_weight(*args)) == repr(keras.utils.pack_x_y_sample_weight(*args))
    ka, kb = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    kout = keras.layers.Dense(1)(keras.layers.Concatenate()([
        keras.layers.Add()([keras.layers.Dense(3)(ka), keras.layers.Dense(3)(kb)]),
        keras.layers.Dense(3)(ka)]))
    assert [t.name for t in keras.utils.get_source_inputs(kout)] == ["a", "b"]
