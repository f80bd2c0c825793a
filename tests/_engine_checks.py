"""Helpers shared by the engine-stage tests: a network on one batch with a
zero learning rate (its gradients left in ``grads``), and the float64
central-difference check of those gradients."""
import numpy as np

import fastdense as fd
from fastdense import _core


def stage_net(din, stages, loss=3):
    """A network of ``stages`` with ``loss`` (3: mean squared error) and
    plain SGD at learning rate 0: a training step leaves its gradients in
    ``grads`` and its weights as they are."""
    net = _core.Network(din, stages)
    net.set_loss(loss, False)
    spec = _core.OptimizerSpec()
    spec.learning_rate = 0.0
    net.set_optimizer(spec)
    return net


def stats():
    """An empty running-sums dict for ``Network.train_batches``."""
    return {"loss_sum": 0.0, "seen": 0, "metric_sums": []}


def one_step(net, x, t):
    """One training step on the whole batch (x, t)."""
    net.train_batches(x, t, None, None, len(x), 0, 1, 3, stats(), None)


def assert_grads_match(net, loss, h=1e-6, rtol=2e-3, atol=2e-5):
    """Compares ``net.grads`` after a step with central differences of
    ``loss(params)``, a float64 function of the list of the network's
    variables (in ``net.variables()`` order, shaped)."""
    p, g = net.params, net.grads.copy()
    vars_ = net.variables()
    params = [p[off:off + int(np.prod(shape))].reshape(shape).astype(np.float64)
              for _, off, shape, _ in vars_]
    for k, (_, off, shape, _) in enumerate(vars_):
        num = np.zeros(params[k].size)
        for i in range(params[k].size):
            for sgn in (1, -1):
                q = [a.copy() for a in params]
                q[k].flat[i] += sgn * h
                num[i] += sgn * loss(q) / (2 * h)
        np.testing.assert_allclose(g[off:off + params[k].size], num, rtol=rtol, atol=atol,
                                   err_msg=f"variable {k} {shape}")


def at_thread_counts(run, counts=(1, 2, 3)):
    """``run()``'s result at each thread count (the setting restored after)."""
    before = fd.get_num_threads()
    try:
        out = []
        for nt in counts:
            fd.set_num_threads(nt)
            out.append(run())
        return out
    finally:
        fd.set_num_threads(before)


def assert_same_bits_at_thread_counts(run, counts=(1, 2, 3)):
    """``run()`` (a list of arrays, e.g. weights after fit) gives the same bits
    at each thread count."""
    first, *others = at_thread_counts(run, counts)
    for other in others:
        for a, b in zip(first, other):
            np.testing.assert_array_equal(a, b)
