"""The three training GEMMs of the MNIST step, fastdense vs numpy's BLAS,
on the same arrays, in the same run."""
import numpy as np
import pytest

from fastdense import _core

SHAPES = {"hidden": (128, 784, 512), "output": (128, 512, 10)}


@pytest.fixture(params=list(SHAPES), scope="module")
def arrays(request):
    B, n_in, n_out = SHAPES[request.param]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, n_in), dtype=np.float32)
    w = rng.standard_normal((n_in, n_out), dtype=np.float32) * 0.05
    b = np.zeros(n_out, np.float32)
    y = _core.dense_forward(x, w, b, 1)
    dy = rng.standard_normal((B, n_out), dtype=np.float32)
    return request.param, x, w, b, y, dy


def _gflops(benchmark, B, n_in, n_out, products=1):
    if benchmark.stats is None:  # (--benchmark-disable: the calls ran once, untimed)
        return
    benchmark.extra_info["gflops"] = (2.0 * products * B * n_in * n_out
                                      / benchmark.stats.stats.median / 1e9)


@pytest.mark.benchmark(group="forward Y=XW+b,relu")
@pytest.mark.parametrize("impl", ["fastdense", "numpy"])
def test_forward(benchmark, arrays, impl):
    name, x, w, b, _, _ = arrays
    f = (lambda: _core.dense_forward(x, w, b, 1)) if impl == "fastdense" else (
        lambda: np.maximum(x @ w + b, 0))
    benchmark(f)
    _gflops(benchmark, *SHAPES[name])


@pytest.mark.benchmark(group="dW=X^T dZ")
@pytest.mark.parametrize("impl", ["fastdense", "numpy"])
def test_dw(benchmark, arrays, impl):
    name, x, w, b, y, dy = arrays
    f = (lambda: _core.dense_backward(dy, y, x, w, 1, True, False)) if impl == "fastdense" else (
        lambda: x.T @ dy)
    benchmark(f)
    _gflops(benchmark, *SHAPES[name])


@pytest.mark.benchmark(group="dW and dX")
@pytest.mark.parametrize("impl", ["fastdense", "numpy"])
def test_dw_dx(benchmark, arrays, impl):
    name, x, w, b, y, dy = arrays
    f = (lambda: _core.dense_backward(dy, y, x, w, 1, True, True)) if impl == "fastdense" else (
        lambda: (x.T @ dy, dy @ w.T))
    benchmark(f)
    _gflops(benchmark, *SHAPES[name], products=2)
