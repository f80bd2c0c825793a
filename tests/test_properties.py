"""Property-based tests (hypothesis): over random layer sizes, activations,
input dtypes, batch sizes and losses, the engine agrees with a float64 numpy
reference for predict, evaluate and one SGD step; and any array handed to
predict either gives a result of the right shape or a ValueError/TypeError.

Deterministic: derandomized, no example database, bounded example counts.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from fastdense import layers, models, optimizers  # noqa: E402
from fastdense.utils import set_random_seed  # noqa: E402

SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _elu(z, alpha=1.0):
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


ACTS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "elu": _elu,
    "selu": lambda z: 1.0507009873554805 * _elu(z, 1.6732632423543772),
    "softplus": lambda z: np.logaddexp(0.0, z),
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "silu": lambda z: z * _sigmoid(z),
}
# derivative as a function of (z, a = act(z)), for the activations used in training
GRADS = {
    "linear": lambda z, a: np.ones_like(z),
    "relu": lambda z, a: (z > 0).astype(np.float64),
    "sigmoid": lambda z, a: a * (1 - a),
    "tanh": lambda z, a: 1 - a * a,
}


def _forward64(x, weights, acts):
    """float64 reference: per layer (z, a)."""
    out, a = [], x.astype(np.float64)
    for (w, b), act in zip(weights, acts):
        z = a @ w.astype(np.float64) + (0 if b is None else b.astype(np.float64))
        a = ACTS[act](z)
        out.append((z, a))
    return out


@st.composite
def networks(draw, hidden_acts=tuple(ACTS), out_acts=tuple(ACTS), max_layers=3):
    d_in = draw(st.integers(1, 24))
    n_layers = draw(st.integers(1, max_layers))
    units = [draw(st.integers(1, 24)) for _ in range(n_layers)]
    acts = [draw(st.sampled_from(hidden_acts)) for _ in range(n_layers - 1)]
    acts.append(draw(st.sampled_from(out_acts)))
    bias = [draw(st.booleans()) for _ in range(n_layers)]
    seed = draw(st.integers(0, 2**31 - 1))
    return d_in, units, acts, bias, seed


def _build(d_in, units, acts, bias, seed, scale=0.5):
    """A Sequential model with random weights (set explicitly, so the
    reference has them too) and the float32 weights per layer."""
    set_random_seed(seed)
    m = models.Sequential([layers.Dense(u, activation=a, use_bias=b) for u, a, b in
                           zip(units, acts, bias)])
    m.build((None, d_in))
    rng = np.random.default_rng(seed)
    weights, flat = [], []
    prev = d_in
    for u, b in zip(units, bias):
        w = (rng.standard_normal((prev, u)) * scale / np.sqrt(prev)).astype(np.float32)
        bb = (rng.standard_normal(u) * 0.1).astype(np.float32) if b else None
        weights.append((w, bb))
        flat += [w] + ([bb] if b else [])
        prev = u
    m.set_weights(flat)
    return m, weights


def _inputs(draw, n, d, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if dtype == "bool":
        return rng.random((n, d)) > 0.5
    if dtype in ("int8", "int32", "uint8"):
        return rng.integers(0, 5, (n, d)).astype(dtype)
    return (rng.standard_normal((n, d)) * 2).astype(dtype)


# ------------------------------------------------------------------ predict
@settings(max_examples=150, **SETTINGS)
@given(net=networks(), n=st.integers(1, 40),
       dtype=st.sampled_from(["float32", "float64", "float16", "int8", "uint8", "int32", "bool"]),
       batch=st.one_of(st.none(), st.integers(1, 45)),
       layout=st.sampled_from(["C", "F", "strided"]), data=st.data())
def test_predict_matches_numpy(net, n, dtype, batch, layout, data):
    d_in, units, acts, bias, seed = net
    m, weights = _build(*net)
    x = _inputs(data.draw, n, d_in, dtype)
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        big = np.zeros((2 * n, 2 * d_in), x.dtype)
        big[::2, ::2] = x
        x = big[::2, ::2]
    got = m.predict(x, batch_size=batch, verbose=0)
    want = _forward64(x.astype(np.float32), weights, acts)[-1][1]
    assert got.dtype == np.float32 and got.shape == (n, units[-1])
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    # the batch size never changes the result (beyond float32 rounding)
    np.testing.assert_allclose(m.predict(x, batch_size=1, verbose=0), got, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ one SGD step
LOSSES = {  # name: (output activation, target kind)
    "mean_squared_error": (("linear", "relu", "tanh", "sigmoid"), "dense"),
    "categorical_crossentropy": (("softmax",), "onehot"),
    "sparse_categorical_crossentropy": (("softmax",), "sparse"),
    "binary_crossentropy": (("sigmoid",), "binary"),
}


def _loss_and_grad(loss, p, y, B):
    """Mean loss and dL/dz of the output layer (z its pre-activation), as
    Keras computes them (probabilities are clipped to [1e-7, 1 - 1e-7]; the
    examples keep them inside, where the gradient is the textbook one)."""
    if loss == "mean_squared_error":
        return np.mean((p - y) ** 2), None, 2.0 * (p - y) / p.size
    if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        t = y if loss == "categorical_crossentropy" else np.eye(p.shape[1])[y]
        return -np.mean(np.sum(t * np.log(np.clip(p, 1e-7, 1 - 1e-7)), axis=1)), (p - t) / B, None
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    value = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    return value, (p - y) / p.size, None


@settings(max_examples=120, **SETTINGS)
@given(loss=st.sampled_from(sorted(LOSSES)), data=st.data(), n=st.integers(1, 32),
       lr=st.sampled_from([0.01, 0.1, 0.5]))
def test_one_sgd_step_matches_numpy(loss, data, n, lr):
    out_acts, kind = LOSSES[loss]
    net = data.draw(networks(hidden_acts=tuple(GRADS), out_acts=out_acts))
    d_in, units, acts, bias, seed = net
    if kind in ("onehot", "sparse") and units[-1] < 2:
        units = units[:-1] + [2]
    m, weights = _build(d_in, units, acts, bias, seed)
    m.compile(optimizer=optimizers.SGD(lr), loss=loss)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    U = units[-1]
    if kind == "dense":
        y = rng.standard_normal((n, U)).astype(np.float32)
    elif kind == "binary":
        y = (rng.random((n, U)) > 0.5).astype(np.float32)
    elif kind == "onehot":
        y = np.eye(U, dtype=np.float32)[rng.integers(0, U, n)]
    else:
        y = rng.integers(0, U, n)

    fwd = _forward64(x, weights, acts)
    p = fwd[-1][1]
    value, dz, da = _loss_and_grad(loss, p, y if kind == "sparse" else y.astype(np.float64), n)
    if dz is None:  # through the output activation
        dz = da * GRADS[acts[-1]](fwd[-1][0], p)
    new = []
    for li in range(len(weights) - 1, -1, -1):
        a_in = x.astype(np.float64) if li == 0 else fwd[li - 1][1]
        w, b = weights[li]
        dw, db = a_in.T @ dz, dz.sum(axis=0)
        new.append((w - lr * dw, None if b is None else b - lr * db))
        if li:
            z_prev, a_prev = fwd[li - 1]
            dz = (dz @ w.astype(np.float64).T) * GRADS[acts[li - 1]](z_prev, a_prev)
    new.reverse()

    h = m.fit(x, y, batch_size=n, epochs=1, shuffle=False, verbose=0)
    assert h.history["loss"][0] == pytest.approx(value, rel=1e-4, abs=1e-6)
    got = m.get_weights()
    i = 0
    for (w_old, b_old), (w_new, b_new) in zip(weights, new):
        step = np.abs(w_new - w_old).max() + 1e-7
        np.testing.assert_allclose(got[i], w_new, rtol=0, atol=2e-3 * step + 2e-6)
        i += 1
        if b_old is not None:
            step = np.abs(b_new - b_old).max() + 1e-7
            np.testing.assert_allclose(got[i], b_new, rtol=0, atol=2e-3 * step + 2e-6)
            i += 1


# ------------------------------------------------------------------ evaluate
@settings(max_examples=80, **SETTINGS)
@given(loss=st.sampled_from(sorted(LOSSES)), data=st.data(), n=st.integers(1, 50),
       batch=st.integers(1, 60), weighted=st.booleans())
def test_evaluate_matches_numpy_for_any_batch_size(loss, data, n, batch, weighted):
    out_acts, kind = LOSSES[loss]
    d_in, units, acts, bias, seed = data.draw(networks(out_acts=out_acts, max_layers=2))
    if kind in ("onehot", "sparse") and units[-1] < 2:
        units = units[:-1] + [2]
    m, weights = _build(d_in, units, acts, bias, seed)
    m.compile(optimizer="sgd", loss=loss)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    U = units[-1]
    y = {"dense": lambda: rng.standard_normal((n, U)).astype(np.float32),
         "binary": lambda: (rng.random((n, U)) > 0.5).astype(np.float32),
         "onehot": lambda: np.eye(U, dtype=np.float32)[rng.integers(0, U, n)],
         "sparse": lambda: rng.integers(0, U, n)}[kind]()
    sw = rng.random(n).astype(np.float32) + 0.1 if weighted else None
    p = _forward64(x, weights, acts)[-1][1]
    t = np.eye(U)[y] if kind == "sparse" else y.astype(np.float64)
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    per = {"dense": lambda: np.mean((p - t) ** 2, axis=1),
           "binary": lambda: -np.mean(t * np.log(pc) + (1 - t) * np.log(1 - pc), axis=1),
           "onehot": lambda: -np.sum(t * np.log(pc / pc.sum(1, keepdims=True)), axis=1),
           "sparse": lambda: -np.sum(t * np.log(pc / pc.sum(1, keepdims=True)), axis=1)}[kind]()
    want = np.mean(per * (1.0 if sw is None else sw))  # Keras: sum(w * l) / n
    got = m.evaluate(x, y, batch_size=batch, sample_weight=sw, verbose=0)
    assert got == pytest.approx(want, rel=2e-4, abs=1e-6)


# ------------------------------------------------------------------ the boundary
DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8,
                          np.bool_, np.complex64, np.dtype("U3"), np.dtype("M8[s]"),
                          np.dtype(">f4"), np.dtype("O")])


def _expected_ok(x, d_in):
    if d_in == 1 and x.ndim == 1:  # (one feature as a vector: Keras adds the axis)
        x = x.reshape(-1, 1)
    if x.dtype.kind not in "biuf" or x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != d_in:
        return False
    with np.errstate(all="ignore"):
        return bool(np.isfinite(x.astype(np.float32)).all())


@settings(max_examples=300, **SETTINGS)
@given(x=hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
                    elements=None, fill=st.nothing()),
       d_in=st.integers(1, 6), batch=st.integers(1, 8))
def test_any_array_gives_a_result_or_a_clear_error(x, d_in, batch):
    set_random_seed(0)
    m = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(d_in,))])
    if _expected_ok(x, d_in):
        out = m.predict(x, batch_size=batch, verbose=0)
        assert out.shape == (x.shape[0], 3) and np.isfinite(out).all()
    else:
        with pytest.raises((ValueError, TypeError)) as info:
            m.predict(x, batch_size=batch, verbose=0)
        assert "`x`" in str(info.value) or "Input 0" in str(info.value)


@settings(max_examples=200, **SETTINGS)
@given(y=hnp.arrays(st.sampled_from([np.int64, np.int32, np.uint8, np.float64, np.float32,
                                     np.bool_]),
                    st.sampled_from([(8,), (8, 1), (8, 3), (7,), (8, 2), (8, 1, 1)]),
                    elements=None, fill=st.nothing()),
       loss=st.sampled_from(["sparse_categorical_crossentropy", "categorical_crossentropy",
                             "mse", "binary_crossentropy"]))
def test_any_target_array_trains_or_is_refused_clearly(y, loss):
    set_random_seed(0)
    m = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    m.compile(optimizer="sgd", loss=loss)
    x = np.ones((8, 4), np.float32)
    try:
        h = m.fit(x, y, verbose=0)
    except (ValueError, TypeError) as e:
        assert "`y`" in str(e) or "sparse_categorical_crossentropy" in str(e), str(e)
        return
    # accepted: the targets were valid for the loss
    assert y.shape[0] == 8
    with np.errstate(all="ignore"):
        yf = y.astype(np.float64)
    assert np.isfinite(yf).all()
    if loss.startswith("sparse"):
        assert ((yf >= 0) & (yf < 3) & (yf == np.floor(yf))).all()
    else:
        assert y.reshape(8, -1).shape[1] in (1, 3)
    assert np.isfinite(h.history["loss"][0]) or loss == "mse"
