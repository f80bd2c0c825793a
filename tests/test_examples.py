"""python -m fastdense.examples.mnist: the README's main job."""
import pytest

from conftest import _mnist_dir


@pytest.fixture
def mnist_env(monkeypatch):
    d = _mnist_dir()
    if d is None:
        pytest.skip("MNIST not found: set FASTDENSE_DATA to a folder holding mnist.npz")
    monkeypatch.setenv("FASTDENSE_DATA", d)


def _run(capsys, *args):
    from fastdense.examples import mnist

    acc = mnist.main(["--epochs", "1", "--verbose", "0", *args])
    out = capsys.readouterr().out.splitlines()
    return acc, [line for line in out if not line.startswith("time per epoch")]


def test_example_prints_its_results_and_a_seed_repeats_them(mnist_env, capsys):
    acc, out = _run(capsys, "--seed", "3")
    assert 0.94 < acc <= 1.0  # (one epoch: Keras reaches about 0.96)
    assert out[0] == f"test loss: {out[0].split()[2]}  test accuracy: {acc:.4f}"
    assert out[1].startswith("predicted digits for the first 10 test images: [")
    assert out[2].endswith("[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]")
    again, out_again = _run(capsys, "--seed", "3")
    assert again == acc and out_again == out  # same kernels and threads: same bits
    other, _ = _run(capsys, "--seed", "4")
    assert other != acc or _run(capsys, "--seed", "5")[0] != acc
