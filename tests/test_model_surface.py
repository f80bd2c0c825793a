"""summary(), frozen layers and the on-batch methods, with Keras 3's outputs."""
import numpy as np
import pytest

from fastdense import Input, Sequential, layers, optimizers

# Keras 3.15.1's summary() of the same model, after fit with Adam
KERAS_SUMMARY = """Model: "mlp"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ hidden (Dense)                  │ (None, 512)            │       401,920 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ drop (Dropout)                  │ (None, 512)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ out (Dense)                     │ (None, 10)             │         5,130 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 1,221,152 (4.66 MB)
 Trainable params: 407,050 (1.55 MB)
 Non-trainable params: 0 (0.00 B)
 Optimizer params: 814,102 (3.11 MB)
"""


def test_summary_matches_keras(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # (the width Keras's table gets: terminal - 4)
    m = Sequential([Input(shape=(784,)), layers.Dense(512, activation="relu", name="hidden"),
                    layers.Dropout(0.2, name="drop"),
                    layers.Dense(10, activation="softmax", name="out")], name="mlp")
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(np.zeros((10, 784)), np.zeros(10), verbose=0)
    m.summary()
    assert capsys.readouterr().out == KERAS_SUMMARY
    got = []
    m.summary(print_fn=got.append)
    assert got == [KERAS_SUMMARY]


def test_summary_unbuilt_and_frozen(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    m = Sequential([layers.Dense(5, name="d")], name="lazy")
    m.summary()
    out = capsys.readouterr().out
    assert "│ d (Dense)                       │ ?                      │   0 (unbuilt) │" in out
    assert " Total params: 0 (0.00 B)" in out
    m = Sequential([Input(shape=(28, 28)), layers.Flatten(name="f"),
                    layers.Dense(5, use_bias=False, name="d")])
    m.layers[1].trainable = False
    m.summary()
    out = capsys.readouterr().out
    assert "│ f (Flatten)                     │ (None, 784)            │             0 │" in out
    assert " Trainable params: 0 (0.00 B)" in out
    assert " Non-trainable params: 3,920 (15.31 KB)" in out


def test_frozen_layer_is_not_updated(rng):
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, 64)
    m = Sequential([layers.Dense(8, activation="relu", input_shape=(6,)),
                    layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = m.get_weights()
    m.layers[0].trainable = False
    m.fit(x, y, epochs=2, verbose=0)
    after = m.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(after[2], before[2])
    assert len(m.trainable_weights) == 2 and len(m.non_trainable_weights) == 2
    m.layers[0].trainable = True
    m.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(m.get_weights()[0], before[0])
    m.trainable = False
    frozen = m.get_weights()
    m.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(m.get_weights(), frozen):
        np.testing.assert_array_equal(a, b)


def test_on_batch_methods_follow_keras(rng):
    """Values recorded from Keras 3.15.1 with the same weights: each call
    reports its own batch (loss and metrics computed before the update)."""
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.integers(0, 3, 32)
    m = Sequential([Input(shape=(5,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    w0 = m.get_weights()
    first = m.test_on_batch(x[:16], y[:16])
    got = m.train_on_batch(x[:16], y[:16])
    assert got == pytest.approx(first)  # evaluated before the update
    after = m.test_on_batch(x[:16], y[:16])
    assert after[0] < got[0]
    d = m.train_on_batch(x, y, return_dict=True)
    assert list(d) == ["accuracy", "loss"]
    assert m.optimizer.iterations == 2
    # equals fit on one batch with shuffle off
    m2 = Sequential([Input(shape=(5,)), layers.Dense(3, activation="softmax")])
    m2.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    m2.set_weights(w0)
    m2.fit(x[:16], y[:16], batch_size=16, shuffle=False, verbose=0)
    m3 = Sequential([Input(shape=(5,)), layers.Dense(3, activation="softmax")])
    m3.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    m3.set_weights(w0)
    loss = m3.train_on_batch(x[:16], y[:16])
    assert isinstance(loss, float)
    for a, b in zip(m2.get_weights(), m3.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m3.predict_on_batch(x), m3.predict(x, verbose=0))


# Keras 3.15.1's summary(show_trainable=True): Dense, Dropout, frozen Dense
KERAS_SUMMARY_TRAINABLE = """Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━┓
┃ Layer (type)                          ┃ Output Shape                  ┃        Param # ┃ Traina… ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━┩
│ dense (Dense)                         │ (None, 5)                     │             25 │    Y    │
├───────────────────────────────────────┼───────────────────────────────┼────────────────┼─────────┤
│ dropout (Dropout)                     │ (None, 5)                     │              0 │    -    │
├───────────────────────────────────────┼───────────────────────────────┼────────────────┼─────────┤
│ dense_1 (Dense)                       │ (None, 3)                     │             18 │    N    │
└───────────────────────────────────────┴───────────────────────────────┴────────────────┴─────────┘
 Total params: 43 (172.00 B)
 Trainable params: 25 (100.00 B)
 Non-trainable params: 18 (72.00 B)
"""


def test_summary_show_trainable_matches_keras(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # (Keras's default line: 88 + 12)
    m = Sequential([Input(shape=(4,)), layers.Dense(5, name="dense"),
                    layers.Dropout(0.1, name="dropout"), layers.Dense(3, name="dense_1")],
                   name="sequential")
    m.layers[2].trainable = False
    got = []
    m.summary(show_trainable=True, print_fn=got.append)
    assert got == [KERAS_SUMMARY_TRAINABLE]
    m.summary(show_trainable=True, line_length=100, print_fn=got.append)
    assert got[1] == KERAS_SUMMARY_TRAINABLE


def test_keras_attributes_of_models_and_layers():
    """Keras 3's trainable_variables / non_trainable_variables, path,
    per-layer losses (none while frozen), build and compile configs and the
    compile flags, as the real Keras gives them (3.15.1, JAX)."""
    import fastdense as fd
    L = fd.layers
    m = Sequential([Input((3,)), L.Dense(4, kernel_regularizer="l2", bias_regularizer="l1",
                                         name="a"),
                    L.Dropout(0.1), L.Dense(2, kernel_regularizer=fd.regularizers.L1L2(0.1, 0.2),
                                            name="b")],
                   name="seqattrs")
    assert [layer.path for layer in m.layers] == ["seqattrs/a", None, "seqattrs/b"]
    assert m.path == "seqattrs"
    assert [v.path for v in m.trainable_variables] == [w.path for w in m.trainable_weights]
    assert len(m.trainable_variables) == 4 and m.non_trainable_variables == []
    k = m.layers[0].kernel.numpy()
    assert m.layers[0].losses == [pytest.approx(0.01 * np.sum(np.square(k)), rel=1e-5),
                                  pytest.approx(0.0)]
    assert len(m.losses) == 3
    m.layers[0].trainable = False
    assert m.layers[0].losses == [] and len(m.losses) == 1
    assert len(m.trainable_variables) == 2 and len(m.non_trainable_variables) == 2
    assert m.layers[0].non_trainable_variables == m.layers[0].weights
    assert m.get_build_config() == {"input_shape": (None, 3)}
    assert m.layers[0].get_build_config() == {"input_shape": (None, 3)}
    assert m.layers[2].get_build_config() == {"input_shape": (None, 4)}
    assert m.get_compile_config() == {}
    assert (m.run_eagerly, m.jit_compile, m.steps_per_execution) == (False, True, 1)
    m.compile("sgd", "mse", metrics=["mae"], steps_per_execution=2)
    assert (m.run_eagerly, m.jit_compile, m.steps_per_execution) == (False, True, 2)
    cc = m.get_compile_config()
    assert cc["optimizer"]["class_name"] == "SGD"
    assert {k: v for k, v in cc.items() if k != "optimizer"} == {
        "loss": "mse", "loss_weights": None, "metrics": ["mae"], "weighted_metrics": None,
        "run_eagerly": False, "steps_per_execution": 2, "jit_compile": True}
    m2 = Sequential([L.Dense(2)])
    m2.compile_from_config(cc)
    assert type(m2.optimizer).__name__ == "SGD" and m2.loss == "mse"
    assert m2.steps_per_execution == 2
    m2.build_from_config({"input_shape": (None, 5)})
    assert m2.input_shape == (None, 5) and m2.layers[0].path.endswith("/" + m2.layers[0].name)
    d = L.Dense(3)
    assert d.path is None and d.get_build_config() is None
    d.build((None, 4))
    assert d.path == d.name and d.get_build_config() == {"input_shape": (None, 4)}


def test_top_level_names_as_keras():
    import fastdense as fd
    assert fd.version() == fd.__version__
    for name in ("Layer", "Loss", "Metric", "Optimizer", "Initializer", "Regularizer",
                 "InputSpec"):
        assert isinstance(getattr(fd, name), type), name
    assert isinstance(fd.losses.MeanSquaredError(), fd.Loss)
    assert isinstance(fd.optimizers.Adam(), fd.Optimizer)
    assert isinstance(fd.layers.Dense(2), fd.Layer)
    assert fd.utils.Progbar is fd._progbar.Progbar
    fd.layers.Dense(2, name=None)
    fd.utils.clear_session()
    assert fd.layers.Dense(2).name == "dense"
