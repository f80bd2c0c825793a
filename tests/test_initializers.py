"""Tests for fastdense.initializers: Orthogonal, Identity and name lookup.

Cases marked "Keras <file>" are ported from Keras 3.15.1,
keras/src/initializers/<file> (keras-team/keras); names marked "real Keras"
were checked here with ``keras.initializers.get(name)`` (Keras 3.15.1).
Random values cannot match Keras's (numpy's generator, not JAX's), so the
random initializers are checked by their defining properties.  Nothing here
imports keras.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastdense import initializers as I


def test_orthogonal_keras_test():
    # Keras random_initializers_test.py test_orthogonal
    init = I.Orthogonal(gain=2.0, seed=1234)
    values = init(shape=(5, 5))
    assert init.seed == 1234 and init.gain == 2.0
    assert values.shape == (5, 5) and values.dtype == np.float32
    for column in values.T:
        assert np.linalg.norm(column) == pytest.approx(2.0, abs=1e-5)
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.dot(values[:, i], values[:, j]) == pytest.approx(0.0, abs=1e-5)
    assert isinstance(I.get("OrthogonalInitializer"), I.Orthogonal)


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (2, 3, 4), (4, 1), (1, 4)])
def test_orthogonal_shapes_are_semi_orthogonal(shape):
    q = I.Orthogonal(gain=1.5, seed=0)(shape)
    assert q.shape == shape and q.dtype == np.float32
    flat = q.reshape(-1, shape[-1]).astype(np.float64)
    rows, cols = flat.shape
    # orthonormal columns when tall, orthonormal rows when wide (times gain)
    gram = flat.T @ flat if rows >= cols else flat @ flat.T
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(min(rows, cols)), atol=1e-5)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 5)])
def test_orthogonal_matches_numpy_reference_of_keras_algorithm(shape):
    # Keras's algorithm: QR of a (max, min) normal matrix, columns' signs set
    # by diag(R) (so R's diagonal is positive), transposed when wide, times gain
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    a = np.random.default_rng(11).normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    assert np.all(np.diag(q.T @ a) > 0)
    want = 0.7 * (q.T if rows < cols else q).reshape(shape)
    np.testing.assert_allclose(I.Orthogonal(gain=0.7, seed=11)(shape), want, rtol=1e-6,
                               atol=1e-7)


def test_orthogonal_seed_determinism_and_errors():
    a, b = I.Orthogonal(seed=3)((6, 4)), I.Orthogonal(seed=3)((6, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, I.Orthogonal(seed=4)((6, 4)))
    np.random.seed(0)
    c = I.Orthogonal()((4, 4))
    np.random.seed(0)
    np.testing.assert_array_equal(c, I.Orthogonal()((4, 4)))  # the global generator
    assert I.Orthogonal(seed=1)((3, 3), dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="at least two-dimensional"):
        I.Orthogonal()((5,))
    cfg = I.Orthogonal(gain=0.5, seed=7).get_config()
    assert cfg == {"seed": 7, "gain": 0.5}  # Keras 3.15.1's keys
    np.testing.assert_array_equal(I.Orthogonal.from_config(cfg)((3, 3)),
                                  I.Orthogonal(gain=0.5, seed=7)((3, 3)))


def test_identity_keras_test():
    # Keras constant_initializers_test.py test_identity_initializer
    values = I.Identity(gain=2)(shape=(3, 3))
    assert values.shape == (3, 3) and values.dtype == np.float32
    np.testing.assert_allclose(values, np.eye(3) * 2)
    assert isinstance(I.get("IdentityInitializer"), I.Identity)
    np.testing.assert_array_equal(I.Identity()((2, 4)), np.eye(2, 4))
    np.testing.assert_array_equal(I.Identity(0.5)((3, 2)), 0.5 * np.eye(3, 2))
    with pytest.raises(ValueError, match="can only be used for 2D matrices"):
        I.Identity()((2, 2, 2))
    assert I.Identity.from_config(I.Identity(gain=3.0).get_config()).gain == 3.0


# real Keras 3.15.1: type(keras.initializers.get(name)).__name__
KERAS_INITIALIZER_NAMES = {
    "orthogonal": "Orthogonal", "Orthogonal": "Orthogonal",
    "OrthogonalInitializer": "Orthogonal", "identity": "Identity", "Identity": "Identity",
    "IdentityInitializer": "Identity", "normal": "RandomNormal", "uniform": "RandomUniform",
    "one": "Ones", "zero": "Zeros", "zeros": "Zeros", "ones": "Ones",
    "glorot_uniform": "GlorotUniform", "GlorotNormal": "GlorotNormal",
    "he_normal": "HeNormal", "lecun_uniform": "LecunUniform",
    "random_normal": "RandomNormal", "truncated_normal": "TruncatedNormal",
    "variance_scaling": "VarianceScaling", "constant": "Constant",
}


@pytest.mark.parametrize("name", sorted(KERAS_INITIALIZER_NAMES))
def test_get_knows_keras_names(name):
    assert type(I.get(name)).__name__ == KERAS_INITIALIZER_NAMES[name]


@pytest.mark.parametrize("name", ["typo", "orthogonal_init", "eye", "identity_matrix"])
def test_unknown_initializer_names_raise(name):
    # Keras random_initializers_test.py test_get_method: get("typo") raises
    with pytest.raises(ValueError, match=f"Could not interpret initializer identifier: {name}"):
        I.get(name)


def test_dense_layer_accepts_the_new_initializers():
    from fastdense import layers

    d = layers.Dense(3, kernel_initializer="orthogonal", bias_initializer="zeros")
    assert isinstance(d.kernel_initializer, I.Orthogonal)
    d = layers.Dense(3, kernel_initializer=I.Identity(gain=2.0))
    cfg = d.get_config()["kernel_initializer"]
    assert cfg == {"module": "keras.initializers", "class_name": "Identity",
                   "config": {"gain": 2.0}, "registered_name": None}  # Keras 3's form
