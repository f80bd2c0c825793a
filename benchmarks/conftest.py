"""Shared fixtures for the pytest-benchmark suites (not run by CI).

    python -m pytest benchmarks --benchmark-only            # all suites
    python -m fastdense.bench                                # one table of ratios
"""
import os
import sys

# The same thread count for numpy's BLAS as for fastdense when
# FASTDENSE_NUM_THREADS sets it (BLAS libraries read theirs when numpy loads,
# so only before numpy's first import; python -m fastdense.bench does this for
# its own --threads).
_threads = os.environ.get("FASTDENSE_NUM_THREADS")
BLAS_THREADS_SET = bool(_threads) and "numpy" not in sys.modules
if BLAS_THREADS_SET:
    for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ.setdefault(_k, _threads)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    if _threads and not BLAS_THREADS_SET:
        return (f"FASTDENSE_NUM_THREADS={_threads}, but numpy was imported before this "
                f"conftest: set OPENBLAS_NUM_THREADS={_threads} too for a fair comparison")
    if BLAS_THREADS_SET:
        return f"numpy's BLAS limited to FASTDENSE_NUM_THREADS={_threads} thread(s)"
    return None


@pytest.fixture(scope="session")
def mnist_xy():
    try:
        from fastdense.datasets import mnist
        (x, y), (xt, yt) = mnist.load_data()
    except Exception as e:  # no data here
        pytest.skip(f"MNIST not available ({e}); set FASTDENSE_DATA to a folder with mnist.npz")
    return (x.reshape(-1, 784).astype("float32") / 255, y.astype(np.int64),
            xt.reshape(-1, 784).astype("float32") / 255, yt.astype(np.int64))


@pytest.fixture(scope="session")
def threads():
    import fastdense
    return int(os.environ.get("FASTDENSE_NUM_THREADS", fastdense.get_num_threads()))
