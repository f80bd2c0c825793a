import os

import numpy as np
import pytest

from fastdense import _core


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


@pytest.fixture(params=_core.available_isas().split(","))
def isa(request):
    """Each kernel table this CPU supports (generic, avx2, avx512), in turn."""
    old = _core.kernel_isa()
    _core.set_isa(request.param)
    assert _core.kernel_isa() == request.param
    yield request.param
    _core.set_isa(old)


@pytest.fixture(params=[1, 2], ids=lambda n: f"t{n}")
def threads(request):
    """1 and 2 threads in turn (results must not depend on the split)."""
    old = _core.get_num_threads()
    _core.set_num_threads(request.param)
    assert _core.get_num_threads() == request.param
    yield request.param
    _core.set_num_threads(old)


@pytest.fixture(autouse=True)
def _fresh_default_names():
    """Each test starts Keras's default names afresh ("dense", "adam", ...), as
    Keras's own tests do with clear_session: names are unique per session, so
    without this a test's names would depend on the tests run before it."""
    from fastdense import backend
    backend.clear_session(free_memory=False)
    yield
