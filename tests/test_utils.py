"""utils: to_categorical, set_random_seed, plot_history."""
import sys

import numpy as np
import pytest

from fastdense import layers, models
from fastdense.utils import plot_history, set_random_seed, to_categorical


def test_to_categorical_like_keras():
    np.testing.assert_array_equal(to_categorical([0, 2, 1], 4),
                                  [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]])
    assert to_categorical(np.array([[1], [0]])).shape == (2, 2)
    assert to_categorical(np.arange(6).reshape(2, 3)).shape == (2, 3, 6)
    assert to_categorical([1.0, 2.0]).dtype == np.float64  # (Keras: np.zeros's default)
    with pytest.raises(ValueError, match="num_classes"):
        to_categorical([5], 3)
    with pytest.raises(ValueError, match="fractional"):
        to_categorical([0.5])
    with pytest.raises(ValueError, match="non-negative"):
        to_categorical([-1])


def test_set_random_seed_makes_initialisation_repeatable():
    def weights():
        set_random_seed(123)
        return models.Sequential([layers.Dense(4, input_shape=(3,))]).get_weights()[0]

    np.testing.assert_array_equal(weights(), weights())
    with pytest.raises(ValueError, match="seed"):
        set_random_seed("x")


def test_plot_history(tmp_path, rng):
    pytest.importorskip("matplotlib")
    x = rng.normal(size=(40, 3)).astype("float32")
    m = models.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, rng.integers(0, 2, 40), epochs=3, validation_split=0.25, verbose=0)
    path = tmp_path / "h.png"
    fig = plot_history(h, str(path))
    assert path.stat().st_size > 1000
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["accuracy", "loss"]
    assert [len(line.get_xdata()) for line in fig.axes[1].lines] == [3, 3]
    with pytest.raises(ValueError, match="History"):
        plot_history({})


def test_plot_history_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_history({"loss": [1.0]})


def test_normalize_as_kerass():
    from fastdense.utils import normalize
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(x, order=1), [[3 / 7, 4 / 7], [0, 0]])
    # (Keras's numpy path: the norm keeps a leading axis for a 1-D input)
    np.testing.assert_allclose(normalize(np.array([1, 2, 2]), axis=0), [[1 / 3, 2 / 3, 2 / 3]])


def test_keras_aliases_and_pop_of_an_empty_model():
    import fastdense as fd
    assert fd.initializers.he_normal is fd.initializers.HeNormal
    assert type(fd.initializers.glorot_uniform(seed=1)) is fd.initializers.GlorotUniform
    a = fd.initializers.he_normal(seed=3)((4, 5))
    np.testing.assert_array_equal(a, fd.initializers.HeNormal(seed=3)((4, 5)))
    assert callable(fd.models.save_model)
    with pytest.raises(IndexError, match="no layers"):
        fd.Sequential().pop()
