"""fastdense.random (keras.random): seeding rules, shapes and dtypes, and the
distributions' moments on many draws; shapes and dtypes side by side with
keras.random where Keras is installed (the values are numpy's, not JAX's)."""

import numpy as np
import pytest

import fastdense as fd
from fastdense import random as R

N = 200_000


def test_seeding_rules():
    np.testing.assert_array_equal(R.normal((3, 2), seed=7), R.normal((3, 2), seed=7))
    assert not np.array_equal(R.normal((3, 2), seed=7), R.normal((3, 2), seed=8))
    g1, g2 = R.SeedGenerator(5), R.SeedGenerator(5)
    a = [R.uniform((4,), seed=g1) for _ in range(3)]
    b = [R.uniform((4,), seed=g2) for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])
    fd.utils.set_random_seed(11)
    c = R.normal((5,))
    fd.utils.set_random_seed(11)
    np.testing.assert_array_equal(c, R.normal((5,)))
    assert not np.array_equal(R.normal((5,)), R.normal((5,)))
    with pytest.raises(ValueError, match="Argument `seed` must be either an integer"):
        R.normal((2,), seed="x")
    with pytest.raises(ValueError, match="requires a floating point `dtype`"):
        R.uniform((2,), dtype="int32")
    with pytest.raises(ValueError, match="requires an integer `dtype`"):
        R.randint((2,), 0, 3, dtype="float32")


def test_distributions():
    x = R.normal((N,), mean=2.0, stddev=3.0, seed=1)
    assert x.dtype == np.float32 and abs(x.mean() - 2) < 0.05 and abs(x.std() - 3) < 0.05
    u = R.uniform((N,), -1.0, 3.0, seed=2)
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.02
    t = R.truncated_normal((N,), mean=1.0, stddev=0.5, seed=3)
    assert np.abs(t - 1).max() <= 1.0 + 1e-6 and abs(t.std() - 0.5 * 0.8796) < 0.01
    i = R.randint((N,), 3, 7, seed=4)
    assert i.dtype == np.int32 and set(np.unique(i)) == {3, 4, 5, 6}
    logits = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    c = R.categorical(logits, N, seed=5)
    assert c.shape == (2, N) and c.dtype == np.int32
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for row in range(2):
        np.testing.assert_allclose(np.bincount(c[row], minlength=3) / N, p[row], atol=0.01)
    d = R.dropout(np.ones((N,), np.float32), 0.3, seed=6)
    assert set(np.unique(d)) == {0.0, np.float32(1 / 0.7)} and abs((d > 0).mean() - 0.7) < 0.01
    d2 = R.dropout(np.ones((4, 1000), np.float32), 0.5, noise_shape=(None, 1000), seed=7)
    assert d2.shape == (4, 1000)
    assert abs(R.gamma((N,), 3.0, seed=8).mean() - 3.0) < 0.05
    assert abs(R.beta((N,), 2.0, 6.0, seed=9).mean() - 0.25) < 0.01
    assert abs(R.binomial((N,), 10, 0.3, seed=10).mean() - 3.0) < 0.03
    s = R.shuffle(np.arange(10).reshape(5, 2), seed=11)
    assert sorted(s[:, 0].tolist()) == [0, 2, 4, 6, 8] and (s[:, 1] - s[:, 0] == 1).all()


def test_side_by_side_with_keras():
    keras = pytest.importorskip("keras")
    calls = [("normal", ((2, 3),), {}), ("uniform", ((4,),), {"minval": -1.0, "maxval": 2.0}),
             ("truncated_normal", ((3, 2),), {}), ("randint", ((5,),), {"minval": 0, "maxval": 4}),
             ("gamma", ((3,),), {"alpha": 2.0}), ("beta", ((3,),), {"alpha": 2.0, "beta": 3.0}),
             ("binomial", ((3,),), {"counts": 5, "probabilities": 0.5}),
             ("categorical", (np.zeros((2, 3), np.float32), 4), {}),
             ("dropout", (np.ones((3, 4), np.float32), 0.5), {}),
             ("shuffle", (np.arange(6),), {})]
    for name, args, kw in calls:
        ours = getattr(fd.random, name)(*args, seed=1, **kw)
        theirs = np.asarray(getattr(keras.random, name)(*args, seed=1, **kw))
        assert ours.shape == theirs.shape, name
        if name != "shuffle":  # (JAX makes numpy's int64 int32; fastdense keeps the input's)
            assert ours.dtype == theirs.dtype, name
    gen = keras.random.SeedGenerator(3)
    assert fd.random.SeedGenerator(**gen.get_config()).seed == 3
