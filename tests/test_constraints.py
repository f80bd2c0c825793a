"""Weight constraints: each against a float64 numpy reference of Keras's
formula, applied by the engine right after every update (trainable
variables only), their configs and errors."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import constraints, layers, models

EPS = 1e-7


def _ref(kind, w, axis, min_value=0.0, max_value=2.0, rate=1.0):
    w = w.astype(np.float64)
    if kind == "non_neg":
        return w * (w >= 0)
    norms = np.sqrt(np.sum(w * w, axis=axis, keepdims=True))
    if kind == "max_norm":
        desired = np.clip(norms, 0, max_value)
    elif kind == "unit_norm":
        desired = np.ones_like(norms)
    else:
        desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
    return w * desired / (EPS + norms)


CASES = [
    ("max_norm", constraints.MaxNorm(0.7), {"max_value": 0.7}, 0),
    ("max_norm", constraints.MaxNorm(1.5, axis=1), {"max_value": 1.5}, 1),
    ("max_norm", constraints.MaxNorm(1.0, axis=[0, 1]), {"max_value": 1.0}, (0, 1)),
    ("non_neg", constraints.NonNeg(), {}, 0),
    ("unit_norm", constraints.UnitNorm(), {}, 0),
    ("unit_norm", constraints.UnitNorm(axis=-1), {}, 1),
    ("min_max_norm", constraints.MinMaxNorm(0.5, 0.8, rate=0.7), {"min_value": 0.5,
                                                                  "max_value": 0.8,
                                                                  "rate": 0.7}, 0),
]


@pytest.mark.parametrize("kind,obj,kw,axis", CASES)
def test_call_matches_the_reference(rng, kind, obj, kw, axis):
    w = rng.normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(obj(w), _ref(kind, w, axis, **kw), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind,obj,kw,axis", CASES)
def test_engine_applies_it_after_each_update(rng, kind, obj, kw, axis):
    """With a zero learning rate the update leaves w and the constraint alone
    decides the result: the engine's projection equals the reference."""
    m = models.Sequential([layers.Input(shape=(7,)),
                           layers.Dense(5, kernel_constraint=obj, bias_constraint=obj
                                        if axis == 0 else None)])
    w0 = rng.normal(size=(7, 5)).astype(np.float32)
    b0 = rng.normal(size=5).astype(np.float32)
    m.set_weights([w0, b0])
    m.compile(optimizer=fd.optimizers.SGD(0.0), loss="mse")
    # untouched until an update happens
    np.testing.assert_array_equal(m.get_weights()[0], w0)
    m.train_on_batch(rng.normal(size=(4, 7)), rng.normal(size=(4, 5)))
    w, b = m.get_weights()
    np.testing.assert_allclose(w, _ref(kind, w0, axis, **kw), rtol=2e-6, atol=1e-7)
    if axis == 0:
        np.testing.assert_allclose(b, _ref(kind, b0, 0, **kw), rtol=2e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(b, b0)


def test_constraint_holds_through_training_and_frozen_layers_stay(rng):
    x = rng.normal(size=(128, 6)).astype(np.float32) * 3
    y = rng.normal(size=(128, 2)).astype(np.float32) * 10
    m = models.Sequential([layers.Input(shape=(6,)),
                           layers.Dense(16, activation="relu",
                                        kernel_constraint=constraints.max_norm(0.5)),
                           layers.Dense(2, kernel_constraint="non_neg")])
    m.compile(optimizer=fd.optimizers.Adam(0.05), loss="mse")
    m.fit(x, y, epochs=3, batch_size=16, verbose=0)
    w1, _, w2, _ = m.get_weights()
    assert np.all(np.sqrt((w1.astype(np.float64) ** 2).sum(0)) <= 0.5 + 1e-6)
    assert np.all(w2 >= 0)
    # a frozen layer's weights are neither updated nor projected (Keras
    # constrains the variables the optimizer updates)
    m2 = models.Sequential([layers.Input(shape=(6,)),
                            layers.Dense(4, kernel_constraint="unit_norm", trainable=False),
                            layers.Dense(2)])
    before = m2.get_weights()[0]
    m2.compile(optimizer="sgd", loss="mse")
    m2.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(m2.get_weights()[0], before)


def test_batchnorm_gamma_beta_constraints(rng):
    m = models.Sequential([layers.Input(shape=(4,)), layers.Dense(6),
                           layers.BatchNormalization(gamma_constraint=constraints.MaxNorm(0.3),
                                                     beta_constraint="non_neg"),
                           layers.Dense(1)])
    m.compile(optimizer=fd.optimizers.SGD(0.5), loss="mse")
    m.fit(rng.normal(size=(64, 4)), rng.normal(size=(64, 1)) * 5, epochs=2, verbose=0)
    bn = m.layers[1]
    assert np.linalg.norm(bn.gamma.numpy().astype(np.float64)) <= 0.3 + 1e-6
    assert np.all(bn.beta.numpy() >= 0)


def test_configs_names_and_errors():
    assert constraints.get("max_norm").get_config() == {"max_value": 2, "axis": 0}
    assert constraints.get("unit_norm").get_config() == {"axis": 0}
    assert constraints.get("min_max_norm").get_config() == {
        "min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    c = constraints.get({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 1}})
    assert (c.max_value, c.axis) == (3, 1)
    ser = constraints.serialize(constraints.MaxNorm(3))
    assert ser == {"module": "keras.constraints", "class_name": "MaxNorm",
                   "config": {"max_value": 3, "axis": 0}, "registered_name": None}
    assert layers.Dense(2, kernel_constraint="max_norm").get_config()["kernel_constraint"][
        "class_name"] == "MaxNorm"
    with pytest.raises(ValueError, match="constraint identifier: foo"):
        constraints.get("foo")
    with pytest.raises(NotImplementedError, match="natively"):
        layers.Dense(2, kernel_constraint=lambda w: w)
    with pytest.raises(ValueError, match="out of range"):
        layers.Dense(2, bias_constraint=constraints.MaxNorm(axis=1))
    with pytest.raises(ValueError, match="axis"):
        constraints.MaxNorm(axis="rows")
