"""cpp/finite.cpp: the finiteness check fit / evaluate / predict run on their
inputs, against numpy's isfinite."""
import numpy as np
import pytest

from fastdense import _core, models, layers
from fastdense._data import _all_finite

# (the pool takes arrays of >= 1 MiB; tasks check 64 KiB blocks)
SIZES = [0, 1, 7, 16383, 16384, 16385, 262144, 262145, 300001, 1 << 20]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_all_finite_matches_numpy(threads, dtype, n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 1e30).astype(dtype)
    a[rng.random(n) < 0.01] = np.finfo(dtype).max  # largest finite: still finite
    a[rng.random(n) < 0.01] = np.finfo(dtype).tiny / 4  # subnormals too
    assert _core.all_finite(a) is True and _core.all_finite(a, serial=True) is True
    if n == 0:
        return
    # one bad value anywhere: first, last, block edges, random spots
    spots = {0, n - 1, min(n - 1, 16383), min(n - 1, 16384), n // 2, n // 3}
    spots |= set(rng.integers(0, n, 4).tolist())
    for i in sorted(spots):
        for bad in (np.nan, np.inf, -np.inf, -np.nan):
            b = a.copy()
            b[i] = bad
            assert np.isfinite(b).all() == _core.all_finite(b) == _core.all_finite(
                b, serial=True) == False, (i, bad)  # noqa: E712


def test_all_finite_on_any_shape_and_bits(threads):
    # every float32 exponent/mantissa pattern class: NaN payloads, signalling NaN
    bits = np.array([0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff,
                     0x7fbfffff, 0x7f7fffff, 0x00000001, 0x80000000, 0x00000000],
                    np.uint32)
    vals = bits.view(np.float32)
    for v in vals:
        a = np.zeros((300, 784), np.float32)
        a[123, 456] = v
        assert _core.all_finite(a) == bool(np.isfinite(v))
    a = np.zeros((2, 3, 4), np.float64)
    assert _core.all_finite(a)
    a[1, 2, 3] = np.nan
    assert not _core.all_finite(a)


def test_all_finite_refuses_what_it_cannot_read():
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.all_finite(np.zeros(4, np.float16))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.all_finite(np.zeros((4, 4), np.float32)[:, ::2])
    # the Python wrapper takes any float array (numpy's min / max for the rest)
    for a in (np.zeros((4, 4), np.float32)[:, ::2], np.zeros(5, np.float16),
              np.zeros(3, ">f4"), np.zeros(3, np.complex64)):
        assert _all_finite(a)
        a = a.copy()
        a.flat[1] = np.nan
        assert not _all_finite(a)


def test_fit_refuses_one_nan_in_a_large_x():
    m = models.Sequential([layers.Input((784,)), layers.Dense(4, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.zeros((2000, 784), np.float32)
    y = np.zeros(2000, np.int32)
    x[1999, 783] = np.inf
    with pytest.raises(ValueError, match="`x` contains NaN or infinite"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="`x` contains NaN or infinite"):
        m.predict(x, verbose=0)
