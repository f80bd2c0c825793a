"""Shared fixtures for the pytest-benchmark suites (not run by CI).

    python -m pytest benchmarks --benchmark-only            # all suites
    python -m fastdense.bench                                # one table of ratios
"""
import os

import numpy as np
import pytest


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
