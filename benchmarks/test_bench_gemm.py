"""The three training GEMMs of the MNIST step, fastdense vs numpy's BLAS and
(where installed) PyTorch's CPU matmul, on the same arrays, in the same run."""
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


IMPLS = ["fastdense", "numpy", "torch"]


def _torch(*arrays):
    """PyTorch (skips where it is not installed) at fastdense's thread count,
    and tensor views of the arrays."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(_core.get_num_threads())
    return (torch, *(torch.from_numpy(a) for a in arrays))


def _gflops(benchmark, B, n_in, n_out, products=1):
    if benchmark.stats is None:  # (--benchmark-disable: the calls ran once, untimed)
        return
    benchmark.extra_info["gflops"] = (2.0 * products * B * n_in * n_out
                                      / benchmark.stats.stats.median / 1e9)


@pytest.mark.benchmark(group="forward Y=XW+b,relu")
@pytest.mark.parametrize("impl", IMPLS)
def test_forward(benchmark, arrays, impl):
    name, x, w, b, _, _ = arrays
    if impl == "torch":
        t, xt, wt, bt = _torch(x, w, b)
        f = lambda: t.relu(t.addmm(bt, xt, wt))  # noqa: E731
    elif impl == "fastdense":
        f = lambda: _core.dense_forward(x, w, b, 1)  # noqa: E731
    else:
        f = lambda: np.maximum(x @ w + b, 0)  # noqa: E731
    benchmark(f)
    _gflops(benchmark, *SHAPES[name])


@pytest.mark.benchmark(group="dW=X^T dZ")
@pytest.mark.parametrize("impl", IMPLS)
def test_dw(benchmark, arrays, impl):
    name, x, w, b, y, dy = arrays
    if impl == "torch":
        _, xt, dyt = _torch(x, dy)
        f = lambda: xt.T @ dyt  # noqa: E731
    elif impl == "fastdense":
        f = lambda: _core.dense_backward(dy, y, x, w, 1, True, False)  # noqa: E731
    else:
        f = lambda: x.T @ dy  # noqa: E731
    benchmark(f)
    _gflops(benchmark, *SHAPES[name])


@pytest.mark.benchmark(group="dW and dX")
@pytest.mark.parametrize("impl", IMPLS)
def test_dw_dx(benchmark, arrays, impl):
    name, x, w, b, y, dy = arrays
    if impl == "torch":
        _, xt, wt, dyt = _torch(x, w, dy)
        f = lambda: (xt.T @ dyt, dyt @ wt.T)  # noqa: E731
    elif impl == "fastdense":
        f = lambda: _core.dense_backward(dy, y, x, w, 1, True, True)  # noqa: E731
    else:
        f = lambda: (x.T @ dy, dy @ w.T)  # noqa: E731
    benchmark(f)
    _gflops(benchmark, *SHAPES[name], products=2)
