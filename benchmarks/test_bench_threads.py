"""Small and mid-sized training steps at the default thread count against one
thread: steps under ~3 MFLOP run serially, from 40 MFLOP on the pool, and in
between as the model's first steps measure faster. Each group times one epoch
of 20000 MNIST rows with the pool's thread count and with 1 (784-h-10, Adam,
from-logits loss, as Keras's beginner tutorial), so the ratio in a group is
what the second thread buys at that step size (never much below 1x)."""
import pytest

import fastdense

# (hidden units, batch size): MFLOP per step ~ 6 * batch * (784*h + 10*h) / 1e6
SIZES = [(32, 32), (64, 32), (128, 16), (128, 32), (128, 64), (512, 32)]


def _epoch(x, y, hidden, batch):
    fastdense.utils.set_random_seed(0)
    m = fastdense.Sequential([fastdense.layers.Input((784,)),
                              fastdense.layers.Dense(hidden, activation="relu"),
                              fastdense.layers.Dense(10)])
    m.compile(optimizer="adam",
              loss=fastdense.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=1, batch_size=batch, verbose=0)  # (the measuring steps)
    return lambda: m.fit(x, y, epochs=1, batch_size=batch, verbose=0)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"784-{s[0]}-10 b{s[1]}")
@pytest.mark.parametrize("which", ["pool", "one thread"])
def test_step_threads(benchmark, mnist_xy, threads, size, which):
    x, y, _, _ = mnist_xy
    x, y = x[:20000], y[:20000]
    hidden, batch = size
    benchmark.group = (f"784-{hidden}-10 b{batch} Adam, 20000 rows "
                       f"({6 * batch * 794 * hidden / 1e6:.1f} MFLOP/step)")
    fastdense.set_num_threads(threads if which == "pool" else 1)
    try:
        benchmark.pedantic(_epoch(x, y, hidden, batch), rounds=3, warmup_rounds=0)
    finally:
        fastdense.set_num_threads(threads)
