import os

import numpy as np
import pytest


def _mnist_dir():
    d = os.environ.get("FASTDENSE_DATA")
    if d and os.path.exists(d):
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "..", "shared", "data", "mnist"),):
        if os.path.exists(os.path.join(cand, "mnist.npz")):
            return os.path.abspath(cand)
    return None


@pytest.fixture(scope="session")
def mnist_data():
    """Real MNIST, flattened and scaled as in the Keras workflow."""
    d = _mnist_dir()
    if d is None:
        pytest.skip("MNIST not found: set FASTDENSE_DATA to a folder holding mnist.npz")
    from fastdense.datasets import mnist

    (x, y), (xt, yt) = mnist.load_data(os.path.join(d, "mnist.npz"))
    x = x.reshape((60000, 784)).astype("float32") / 255
    xt = xt.reshape((10000, 784)).astype("float32") / 255
    return x, y, xt, yt


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
