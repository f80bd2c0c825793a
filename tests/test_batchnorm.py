"""BatchNormalization: the engine against a numpy reference (training and
inference forward, moving statistics, float64 finite-difference gradients
through the batch statistics), Keras 3's semantics (trainable=False runs in
inference mode, weights and their order, config, errors) and the layer's
ported Keras test (normalized outputs, converged moving statistics)."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import _core, layers, models

SGD0 = {"kind": 0}  # OptimizerSpec defaults are SGD; learning rate set to 0 below


def _bn_ref(x, gamma, beta, mean, var, eps):
    inv = 1.0 / np.sqrt(var + eps)
    if gamma is not None:
        inv = inv * gamma
    return x * inv + ((beta if beta is not None else 0) - mean * inv)


def _net(din, stages, loss=3):
    net = _core.Network(din, stages)
    net.set_loss(loss, False)  # 3: mean squared error
    spec = _core.OptimizerSpec()
    spec.learning_rate = 0.0
    net.set_optimizer(spec)
    return net


def _stats():
    return {"loss_sum": 0.0, "seen": 0, "metric_sums": []}


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False),
                                          (False, False)])
def test_training_forward_and_moving_statistics(rng, center, scale):
    B, C = 37, 13
    x = (rng.normal(size=(B, C)) * 3 + 2).astype(np.float32)
    net = _net(C, [{"kind": 1, "use_bias": center, "scale": scale, "momentum": 0.9,
                    "epsilon": 1e-3}])
    p = net.params
    vars_ = net.variables()
    # gamma, beta (when present), then the moving statistics, as Keras orders them
    assert [v[3] for v in vars_] == [True] * (center + scale) + [False, False]
    gamma = rng.normal(size=C).astype(np.float32) if scale else None
    beta = rng.normal(size=C).astype(np.float32) if center else None
    mm0 = rng.normal(size=C).astype(np.float32)
    mv0 = rng.random(C).astype(np.float32) + 0.5
    values = [v for v in (gamma, beta) if v is not None] + [mm0, mv0]
    for (_, off, shape, _), v in zip(vars_, values):
        p[off:off + C] = v
    ypred = np.empty((B, C), np.float32)
    net.train_batches(x, np.zeros((B, C), np.float32), None, None, B, 0, 1, 3, _stats(), ypred)
    mean, var = x.astype(np.float64).mean(0), x.astype(np.float64).var(0)
    np.testing.assert_allclose(ypred, _bn_ref(x, gamma, beta, mean, var, 1e-3), rtol=2e-5,
                               atol=2e-5)
    off_mm, off_mv = vars_[-2][1], vars_[-1][1]
    np.testing.assert_allclose(p[off_mm:off_mm + C], mm0 * 0.9 + mean * 0.1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(p[off_mv:off_mv + C], mv0 * 0.9 + var * 0.1, rtol=1e-6, atol=1e-6)
    # inference uses the moving statistics
    mm, mv = p[off_mm:off_mm + C].copy(), p[off_mv:off_mv + C].copy()
    np.testing.assert_allclose(net.predict(x, 8), _bn_ref(x, gamma, beta, mm, mv, 1e-3),
                               rtol=2e-5, atol=2e-5)


def _mlp_ref(params, x, t, layout):
    """float64 loss of Dense(W1, b1) -> BN(gamma, beta, act) -> Dense(W2, b2), MSE."""
    W1, b1, g, be, W2, b2 = params
    z = x @ W1 + b1
    mu, var = z.mean(0), z.var(0)
    h = (z - mu) / np.sqrt(var + 1e-3) * g + be
    h = np.tanh(h) if layout == "tanh" else h
    y = h @ W2 + b2
    return np.mean(np.mean((y - t) ** 2, axis=1))


@pytest.mark.parametrize("layout", ["tanh", "linear"])
def test_gradients_match_float64_finite_differences(rng, layout):
    B, din, H, U = 9, 5, 7, 3
    act = 3 if layout == "tanh" else 0
    net = _net(din, [{"kind": 0, "units": H}, {"kind": 1, "activation": act},
                     {"kind": 0, "units": U}])
    p = net.params
    p[:] = rng.normal(size=p.size).astype(np.float32) * 0.7
    vars_ = net.variables()
    mv = vars_[5]
    p[mv[1]:mv[1] + H] = 1.0 + np.abs(p[mv[1]:mv[1] + H])  # a valid variance (unused here)
    x = rng.normal(size=(B, din)).astype(np.float32)
    t = rng.normal(size=(B, U)).astype(np.float32)
    net.train_batches(x, t, None, None, B, 0, 1, 3, _stats(), None)
    g = net.grads.copy()
    trainable = [v for v in vars_ if v[3]]
    params = [p[off:off + int(np.prod(shape))].reshape(shape).astype(np.float64)
              for _, off, shape, _ in trainable]
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    for k, (_, off, shape, _) in enumerate(trainable):
        num = np.zeros(params[k].size)
        for i in range(params[k].size):
            for sgn in (1, -1):
                q = [a.copy() for a in params]
                q[k].flat[i] += sgn * 1e-6
                num[i] += sgn * _mlp_ref(q, x64, t64, layout) / 2e-6
        np.testing.assert_allclose(g[off:off + params[k].size], num, rtol=2e-3, atol=2e-5,
                                   err_msg=f"variable {k} {shape}")


def _model(**bn):
    return models.Sequential([layers.Input(shape=(6,)), layers.Dense(8),
                              layers.BatchNormalization(**bn), layers.Activation("relu"),
                              layers.Dense(3)])


def test_weights_order_names_and_counts():
    m = _model()
    bn = m.layers[1]
    # (Keras 3 paths: weights created while the model builds carry its name)
    assert [v.path for v in bn.weights] == [
        f"{m.name}/{bn.name}/gamma", f"{m.name}/{bn.name}/beta",
        f"{m.name}/{bn.name}/moving_mean", f"{m.name}/{bn.name}/moving_variance"]
    assert [w.shape for w in m.get_weights()] == [(6, 8), (8,), (8,), (8,), (8,), (8,), (8, 3),
                                                  (3,)]
    assert len(m.trainable_weights) == 6 and len(m.non_trainable_weights) == 2
    assert m.count_params() == 56 + 32 + 27 and bn.count_params() == 32
    np.testing.assert_array_equal(bn.gamma.numpy(), 1)
    np.testing.assert_array_equal(bn.moving_variance.numpy(), 1)
    assert len(_model(center=False, scale=False).layers[1].weights) == 2
    bn.trainable = False
    assert len(m.trainable_weights) == 4 and len(m.non_trainable_weights) == 4


def test_frozen_layer_runs_in_inference_mode(rng):
    x = rng.normal(size=(64, 6)).astype(np.float32) * 4
    y = rng.normal(size=(64, 3)).astype(np.float32)
    m = _model()
    bn = m.layers[1]
    bn.moving_mean.assign(rng.normal(size=8))
    bn.moving_variance.assign(rng.random(8) + 0.5)
    bn.trainable = False
    before = [w.numpy() for w in bn.weights]
    m.compile(optimizer="adam", loss="mse")
    # in inference mode the training forward equals predict
    m.compile(optimizer=fd.optimizers.SGD(0.0), loss="mse")
    out = m.train_on_batch(x, y)
    np.testing.assert_allclose(out, np.mean((m.predict(x, verbose=0) - y) ** 2), rtol=1e-5)
    m.compile(optimizer="adam", loss="mse")
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(before, bn.weights):  # neither statistics nor gamma/beta move
        np.testing.assert_array_equal(a, b.numpy())
    bn.trainable = True
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not np.array_equal(before[2], bn.moving_mean.numpy())


def test_keras_correctness_case(rng):
    """Keras's batch_normalization_test.test_correctness, through fit: the
    moving statistics converge to the data's, and the normalized training
    outputs have mean 0 and std 1."""
    x = rng.normal(loc=5.0, scale=10.0, size=(1000, 3)).astype(np.float32)
    m = models.Sequential([layers.Input(shape=(3,)), layers.Dense(3, use_bias=False,
                                                                 kernel_initializer="identity"),
                           layers.BatchNormalization(momentum=0.8)])
    m.layers[0].trainable = False
    m.compile(optimizer=fd.optimizers.SGD(0.0), loss="mse")
    m.fit(x, x, epochs=5, batch_size=100, verbose=0)
    bn = m.layers[1]
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(0), atol=2.0)
    np.testing.assert_allclose(np.sqrt(bn.moving_variance.numpy()), x.std(0), rtol=0.15)
    out = bn(x, training=True)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-2)


def test_standalone_call_matches_the_engine(rng):
    x = rng.normal(size=(32, 6)).astype(np.float32)
    m = _model(momentum=0.5, epsilon=0.01)
    dense, bn = m.layers[0], m.layers[1]
    bn.moving_mean.assign(rng.normal(size=8))
    h = dense(x)
    np.testing.assert_allclose(m.layers[3](np.maximum(bn(h), 0)), m.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_config_and_errors():
    bn = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False,
                                   gamma_regularizer="l2", beta_constraint="non_neg")
    cfg = bn.get_config()
    assert cfg["momentum"] == 0.9 and cfg["epsilon"] == 1e-5 and cfg["center"] is False
    assert cfg["gamma_regularizer"]["class_name"] == "L2"
    assert cfg["beta_constraint"]["class_name"] == "NonNeg"
    assert cfg["synchronized"] is False and cfg["renorm"] is False and cfg["axis"] == -1
    with pytest.raises(ValueError, match="synchronized=True"):
        layers.BatchNormalization(synchronized=True)
    with pytest.raises(NotImplementedError, match="renorm"):
        layers.BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match="momentum"):
        layers.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        layers.BatchNormalization(epsilon=0)
    with pytest.raises(NotImplementedError, match="axis"):
        models.Sequential([layers.Input(shape=(4,)), layers.BatchNormalization(axis=0),
                           layers.Dense(2)])


def test_batchnorm_first_and_mnist_style_stack(rng):
    """BN as the first layer (input normalization) and Dense -> BN -> ReLU ->
    Dropout stacks train, are deterministic per seed and evaluate consistently."""
    x = (rng.normal(size=(300, 10)) * 5 + 3).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 6).astype(np.int32)
    out = []
    for _ in range(2):
        fd.utils.set_random_seed(7)
        m = models.Sequential([layers.Input(shape=(10,)), layers.BatchNormalization(),
                               layers.Dense(32), layers.BatchNormalization(),
                               layers.Activation("relu"), layers.Dropout(0.2),
                               layers.Dense(2, activation="softmax")])
        m.compile(optimizer=fd.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        h = m.fit(x, y, epochs=15, batch_size=32, verbose=0)
        out.append(m.get_weights())
    assert h.history["accuracy"][-1] > 0.9
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    loss, acc = m.evaluate(x, y, verbose=0)
    assert acc > 0.9


def test_optimizer_variables_skip_frozen_layers_and_moving_statistics(rng):
    """Keras creates optimizer slots for the trainable variables only."""
    m = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3, trainable=False),
                           layers.BatchNormalization(), layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    m.fit(rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), verbose=0)
    # iterations, learning_rate, then momentum and velocity for gamma, beta, kernel, bias
    names = [v.name for v in m.optimizer.variables]
    assert len(names) == 2 + 2 * 4
    shapes = [v.shape for v in m.optimizer.variables[2:]]
    assert shapes == [(3,), (3,), (3,), (3,), (3, 2), (3, 2), (2,), (2,)]


def test_model_call_with_training_true_runs_dropout_and_batch_statistics():
    """model(x, training=True), as in Keras: Dropout drops and rescales, a
    BatchNormalization layer normalizes with the batch's statistics and moves
    its moving mean and variance (a frozen one stays in inference mode); the
    weights do not change; training=False/None is predict."""
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    m = models.Sequential([layers.Input((3,)), layers.BatchNormalization(momentum=0.9),
                           layers.Dense(2, kernel_initializer="ones")])
    bn = m.layers[0]
    before = [w.copy() for w in m.get_weights()]
    y = m(x, training=True)
    mean, var = x.astype(np.float64).mean(0), x.astype(np.float64).var(0)
    ref = ((x - mean) / np.sqrt(var + 1e-3)) @ np.ones((3, 2))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), 0.9 + 0.1 * var, rtol=1e-6)
    after = m.get_weights()
    np.testing.assert_array_equal(after[0], before[0])  # gamma, beta, kernel, bias unchanged
    for a, b in zip(after[4:], before[4:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m(x), m.predict(x, verbose=0))
    np.testing.assert_array_equal(m(x, training=False), m.predict(x, verbose=0))
    bn.trainable = False
    moving = np.asarray(bn.moving_mean).copy()
    np.testing.assert_allclose(m(x, training=True), m.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), moving)

    d = models.Sequential([layers.Input((64,)), layers.Dropout(0.5),
                           layers.Dense(1, kernel_initializer="ones", use_bias=False)])
    ones = np.ones((200, 64), np.float32)
    outs = d(ones, training=True)[:, 0]
    # each output is 2 x (kept inputs): even integers, spread around 64
    assert np.all(outs % 2 == 0) and outs.std() > 1 and abs(outs.mean() - 64) < 4
    assert not np.array_equal(d(ones, training=True), d(ones, training=True))
    np.testing.assert_array_equal(d(ones), np.full((200, 1), 64, np.float32))
