"""Tests for the native optimizer step (fastdense._core.optimizer_step) and
fastdense.optimizers.

Goldens marked "Keras <file>" are copied from Keras 3.15.1's
keras/src/optimizers/{sgd,rmsprop,adam}_test.py (keras-team/keras), with the
tolerances Keras uses there.  Goldens marked "real Keras" were produced by
running Keras 3.15.1 (JAX backend) here; see tests/goldens/README.  Nothing
here imports keras.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastdense import _core
from fastdense import optimizers as O

F32 = np.float32
SGD, RMSPROP, ADAM = 0, 1, 2


def make_spec(kind, **kw):
    spec = _core.OptimizerSpec()
    spec.kind = kind
    for k, v in kw.items():
        setattr(spec, k, v)
    return spec


class Runner:
    """Holds params and optimizer state; step(g) applies one native update."""

    def __init__(self, spec, params):
        self.spec = spec
        self.params = np.array(params, F32)
        self.state = np.zeros(spec.slots() * self.params.size, F32)
        self.iteration = 0

    def step(self, grads):
        _core.optimizer_step(self.spec, self.iteration, self.params, self.state,
                             np.ascontiguousarray(grads, F32))
        self.iteration += 1
        return self.params.copy()


THETA0 = [1.0, 2.0, 3.0, 4.0]
G0 = np.array([1.0, 6.0, 7.0, 2.0], F32)


# ------------------------------------------------------ Keras single steps
def test_sgd_single_step_keras_golden():
    # Keras sgd_test.py test_single_step
    r = Runner(make_spec(SGD, learning_rate=0.5), THETA0)
    np.testing.assert_allclose(r.step(G0), [0.5, -1.0, -0.5, 3.0], rtol=1e-4, atol=1e-4)


def test_rmsprop_single_step_keras_golden():
    # Keras rmsprop_test.py test_single_step
    r = Runner(make_spec(RMSPROP, learning_rate=0.5), THETA0)
    np.testing.assert_allclose(r.step(G0), [-0.5811, 0.4189, 1.4189, 2.4189],
                               rtol=1e-4, atol=1e-4)


def test_adam_single_step_keras_golden():
    # Keras adam_test.py test_single_step
    r = Runner(make_spec(ADAM, learning_rate=0.5), THETA0)
    np.testing.assert_allclose(r.step(G0), [0.5, 1.5, 2.5, 3.5], rtol=1e-4, atol=1e-4)


# ------------------------------------------- Keras "correctness_with_golden"
def run_golden(spec, golden):
    """Keras's protocol: one step with grads 0.01, then check x before each
    step with grads arange(0.1, 1.1, 0.1)."""
    r = Runner(spec, np.ones(10))
    r.step(np.full(10, 0.01, F32))
    grads = np.arange(0.1, 1.1, 0.1).astype(F32)
    for i in range(5):
        np.testing.assert_allclose(r.params, golden[i], rtol=5e-4, atol=5e-4,
                                   err_msg=f"step {i}")
        r.step(grads)


def test_sgd_nesterov_keras_golden():
    # Keras sgd_test.py test_correctness_with_golden: SGD(nesterov=True)
    golden = np.array(
        [[0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999],
         [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
         [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
         [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
         [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599]])
    run_golden(O.SGD(nesterov=True)._spec(), golden)


def test_rmsprop_centered_keras_golden():
    # Keras rmsprop_test.py test_correctness_with_golden: RMSprop(centered=True)
    golden = np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))
    run_golden(O.RMSprop(centered=True)._spec(), golden)


def test_adam_amsgrad_keras_golden():
    # Keras adam_test.py test_correctness_with_golden: Adam(amsgrad=True)
    golden = np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))
    run_golden(O.Adam(amsgrad=True)._spec(), golden)


# ------------------------------------------ real-Keras multi-step sequences
# real Keras: theta0 = [1, 2, 3, 4]; step t (0-based) applies
# g_t = [1, 6, 7, 2] * (t + 1) * (-1)**t + 0.1 with opt.apply_gradients; the
# rows are the variable after each of 5 steps (tests/goldens/README).
def seq_grads(t):
    return (G0 * (t + 1) * (-1.0) ** t + 0.1).astype(F32)


KERAS_SEQUENCES = {
    "sgd_momentum": (dict(kind=SGD, learning_rate=0.1, momentum=0.9), [
        [0.8899999856948853, 1.3899999856948853, 2.2899999618530273, 3.7899999618530273],
        [0.9809999465942383, 2.0309998989105225, 3.0409998893737793, 3.990999937057495],
        [0.7528999447822571, 0.7978997230529785, 1.6068997383117676, 3.5618999004364014],
        [0.9376099705696106, 2.0781097412109375, 3.1062097549438477, 3.965709924697876],
        [0.5938490033149719, 0.22029876708984375, 0.9455885887145996, 3.319138765335083]]),
    "sgd_nesterov": (dict(kind=SGD, learning_rate=0.1, momentum=0.9, nesterov=True), [
        [0.7910000085830688, 0.840999960899353, 1.6510000228881836, 3.6010000705718994],
        [1.0629000663757324, 2.6078996658325195, 3.716900110244751, 4.171900272369385],
        [0.5476100444793701, -0.3118906021118164, 0.3162100315093994, 3.1757102012634277],
        [1.1038490533828735, 3.2302985191345215, 4.455588340759277, 4.329139232635498],
        [0.2844642400741577, -1.4517312049865723, -0.9989705085754395, 2.73722505569458]]),
    "rmsprop": (dict(kind=RMSPROP, learning_rate=0.1), [
        [0.6837723255157471, 1.6837722063064575, 2.683772325515747, 3.683772325515747],
        [0.9609452486038208, 1.9681562185287476, 2.968348503112793, 3.9653847217559814],
        [0.697428822517395, 1.7083086967468262, 2.7086119651794434, 3.7040200233459473],
        [0.9319044947624207, 1.9463714361190796, 2.9467737674713135, 3.94067645072937],
        [0.7058702111244202, 1.7228318452835083, 2.7233076095581055, 3.7161214351654053]]),
    "rmsprop_momentum": (dict(kind=RMSPROP, learning_rate=0.1, momentum=0.5), [
        [0.6837723255157471, 1.6837722063064575, 2.683772325515747, 3.683772325515747],
        [0.8028314113616943, 1.8100422620773315, 2.810234785079956, 3.8072707653045654],
        [0.5988445281982422, 1.6133297681808472, 2.613729476928711, 3.6076552867889404],
        [0.7313267588615417, 1.7530362606048584, 2.753638505935669, 3.744503974914551],
        [0.5715336203575134, 1.5993499755859375, 2.6001269817352295, 3.5883731842041016]]),
    "rmsprop_centered": (dict(kind=RMSPROP, learning_rate=0.1, centered=True), [
        [0.6666668057441711, 1.6666666269302368, 2.6666667461395264, 3.6666667461395264],
        [0.946314811706543, 1.9544471502304077, 2.954667568206787, 3.9512929916381836],
        [0.6777005195617676, 1.6904298067092896, 2.690786600112915, 3.6853957176208496],
        [0.9136354923248291, 1.9304521083831787, 2.9309232234954834, 3.9238028526306152],
        [0.684931218624115, 1.7047539949417114, 2.705312490463257, 3.6968910694122314]]),
    "rmsprop_centered_momentum": (
        dict(kind=RMSPROP, learning_rate=0.1, rho=0.8, momentum=0.3, centered=True,
             epsilon=1e-6), [
            [0.7500005960464478, 1.75, 2.75, 3.750000238418579],
            [0.878237247467041, 1.8843708038330078, 2.8845388889312744, 3.8819773197174072],
            [0.7184870839118958, 1.7303037643432617, 2.7306346893310547, 3.725632429122925],
            [0.8450849056243896, 1.8618029356002808, 2.8622729778289795, 3.8551788330078125],
            [0.7117325663566589, 1.7323765754699707, 2.732959032058716, 3.724179744720459]]),
    "adam": (dict(kind=ADAM, learning_rate=0.1), [
        [0.9000009298324585, 1.9000006914138794, 2.900000810623169, 3.900000810623169],
        [0.9308484196662903, 1.9356739521026611, 2.9358086585998535, 3.933771848678589],
        [0.8924816846847534, 1.9006630182266235, 2.900895595550537, 3.89740252494812],
        [0.9122045040130615, 1.9233334064483643, 2.923649311065674, 3.9188997745513916],
        [0.8870565891265869, 1.9005694389343262, 2.900954008102417, 3.8951776027679443]]),
    "adam_amsgrad": (dict(kind=ADAM, learning_rate=0.1, beta_1=0.8, beta_2=0.95, amsgrad=True), [
        [0.9000000357627869, 1.899999976158142, 2.9000000953674316, 3.9000000953674316],
        [0.9362714290618896, 1.9409396648406982, 2.9410696029663086, 3.9391024112701416],
        [0.8942157626152039, 1.9021283388137817, 2.902353048324585, 3.898977279663086],
        [0.9194896817207336, 1.9302482604980469, 2.930553436279297, 3.9259653091430664],
        [0.8896355628967285, 1.9026824235916138, 2.9030535221099854, 3.897479295730591]]),
}


@pytest.mark.parametrize("name", list(KERAS_SEQUENCES))
def test_multi_step_sequences_match_real_keras(name):
    kw, want = KERAS_SEQUENCES[name]
    kw = dict(kw)
    r = Runner(make_spec(kw.pop("kind"), **kw), THETA0)
    got = [r.step(seq_grads(t)) for t in range(5)]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


# ------------------------------------- numpy re-implementation of Keras 3
class KerasRef:
    """Keras 3.15 update_step formulas (sgd.py, rmsprop.py, adam.py) in float32
    numpy, same operation order."""

    def __init__(self, cfg, n):
        self.c = cfg
        self.it = 0
        z = lambda: np.zeros(n, F32)  # noqa: E731
        self.m, self.v, self.vhat, self.avg = z(), z(), z(), z()

    def step(self, x, g):
        c, f = self.c, F32
        lr = f(c["learning_rate"])
        if c["kind"] == SGD:
            mu = f(c.get("momentum", 0.0))
            if mu != 0:
                self.m = self.m * mu - g * lr
                x = x + (self.m * mu - g * lr if c.get("nesterov") else self.m)
            else:
                x = x - g * lr
        elif c["kind"] == RMSPROP:
            rho, mu = c.get("rho", 0.9), f(c.get("momentum", 0.0))
            eps = f(c.get("epsilon", 1e-7))
            self.v = f(rho) * self.v + f(1 - rho) * np.square(g)
            if c.get("centered"):
                self.avg = f(rho) * self.avg + f(1 - rho) * g
                den = self.v - np.square(self.avg) + eps
            else:
                den = self.v + eps
            inc = (lr * g) / np.sqrt(den)
            if mu > 0:
                self.m = mu * self.m + inc
                x = x - self.m
            else:
                x = x - inc
        else:
            b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.999)
            eps = f(c.get("epsilon", 1e-7))
            step = f(self.it + 1)
            b1p, b2p = np.power(f(b1), step), np.power(f(b2), step)
            alpha = lr * np.sqrt(f(1) - b2p) / (f(1) - b1p)
            self.m = self.m + (g - self.m) * f(1 - b1)
            self.v = self.v + (np.square(g) - self.v) * f(1 - b2)
            v = self.v
            if c.get("amsgrad"):
                self.vhat = np.maximum(self.vhat, self.v)
                v = self.vhat
            x = x - (self.m * alpha) / (np.sqrt(v) + eps)
        self.it += 1
        return x.astype(F32)


REF_CONFIGS = {
    "sgd": dict(kind=SGD, learning_rate=0.05),
    "sgd_momentum": dict(kind=SGD, learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": dict(kind=SGD, learning_rate=0.05, momentum=0.7, nesterov=True),
    "sgd_nesterov_no_momentum": dict(kind=SGD, learning_rate=0.05, nesterov=True),
    "rmsprop": dict(kind=RMSPROP, learning_rate=0.01),
    "rmsprop_rho": dict(kind=RMSPROP, learning_rate=0.01, rho=0.5, epsilon=1e-4),
    "rmsprop_momentum": dict(kind=RMSPROP, learning_rate=0.01, momentum=0.9),
    "rmsprop_centered": dict(kind=RMSPROP, learning_rate=0.01, centered=True),
    "rmsprop_centered_momentum": dict(kind=RMSPROP, learning_rate=0.01, centered=True,
                                      momentum=0.5),
    "adam": dict(kind=ADAM, learning_rate=0.01),
    "adam_betas": dict(kind=ADAM, learning_rate=0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-3),
    "adam_amsgrad": dict(kind=ADAM, learning_rate=0.01, amsgrad=True),
}


@pytest.mark.parametrize("name", list(REF_CONFIGS))
def test_many_steps_match_numpy_keras_formulas(name):
    cfg = REF_CONFIGS[name]
    rng = np.random.default_rng(sorted(REF_CONFIGS).index(name))
    n = 257
    x0 = rng.standard_normal(n).astype(F32)
    kw = {k: v for k, v in cfg.items() if k != "kind"}
    r = Runner(make_spec(cfg["kind"], **kw), x0)
    ref = KerasRef(cfg, n)
    x = x0.copy()
    for t in range(25):
        # varying scales, signs and exact zeros
        g = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1, n)).astype(F32)
        g[rng.random(n) < 0.05] = 0
        x = ref.step(x, g)
        got = r.step(g)
        np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-6, err_msg=f"step {t}")


@pytest.mark.parametrize("name", ["sgd_momentum", "rmsprop_centered_momentum", "adam_amsgrad"])
def test_steps_are_bitwise_deterministic(name):
    cfg = REF_CONFIGS[name]
    kw = {k: v for k, v in cfg.items() if k != "kind"}
    spec = make_spec(cfg["kind"], **kw)
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal(300).astype(F32)
    gs = [rng.standard_normal(300).astype(F32) for _ in range(6)]
    r1, r2 = Runner(spec, x0), Runner(spec, x0)
    for g in gs:
        r1.step(g)
        r2.step(g)
    assert r1.params.tobytes() == r2.params.tobytes()
    assert r1.state.tobytes() == r2.state.tobytes()


# Every target_clones variant ("avx512f", "avx2", "default") of the update must
# round a*b+c twice, as Keras's separate multiply and add do (CMake passes
# -ffp-contract=off; without it the avx512f clone fused them, so an element's
# update depended on where it sat in the buffer and on the call's length).
SPLIT_CUTS = [0, 37, 100, 161, 173, 180, 700, 1000]


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "sgd_nesterov",
                                  "sgd_nesterov_no_momentum", "rmsprop_momentum"])
def test_update_does_not_depend_on_how_the_buffer_is_split(name):
    """The update is elementwise: one call over the buffer equals calls over
    pieces of it, bitwise (the network splits it into chunks across threads)."""
    cfg = REF_CONFIGS[name]
    kw = {k: v for k, v in cfg.items() if k != "kind"}
    spec = make_spec(cfg["kind"], **kw)
    rng = np.random.default_rng(5)
    n = SPLIT_CUTS[-1]
    x0 = rng.standard_normal(n).astype(F32)
    full = Runner(spec, x0)
    pieces = [Runner(spec, x0[a:b]) for a, b in zip(SPLIT_CUTS[:-1], SPLIT_CUTS[1:])]
    for _ in range(5):
        g = rng.standard_normal(n).astype(F32)
        full.step(g)
        for (a, b), r in zip(zip(SPLIT_CUTS[:-1], SPLIT_CUTS[1:]), pieces):
            r.step(g[a:b])
    split = np.concatenate([r.params for r in pieces])
    bad = np.flatnonzero(split != full.params)
    assert bad.size == 0, f"{bad.size} elements differ, e.g. index {bad[:5]}"


def test_sgd_update_is_bitwise_keras_float32():
    """Keras sgd.py: variable.assign_sub(gradient * learning_rate) -- a float32
    multiply, then a float32 subtract (two roundings)."""
    rng = np.random.default_rng(9)
    x0 = rng.standard_normal(1000).astype(F32)
    g = rng.standard_normal(1000).astype(F32)
    lr = F32(0.05)
    r = Runner(make_spec(SGD, learning_rate=0.05), x0)
    got = r.step(g)
    want = x0 - g * lr
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} elements differ, e.g. index {bad[:5]}"


# ---------------------------------------------------- state layout (slots)
@pytest.mark.parametrize("kw,slots", [
    (dict(kind=SGD), 0), (dict(kind=SGD, momentum=0.5), 1),
    (dict(kind=RMSPROP), 1), (dict(kind=RMSPROP, momentum=0.5), 2),
    (dict(kind=RMSPROP, centered=True), 2), (dict(kind=RMSPROP, momentum=0.5, centered=True), 3),
    (dict(kind=ADAM), 2), (dict(kind=ADAM, amsgrad=True), 3),
])
def test_slots(kw, slots):
    kw = dict(kw)
    assert make_spec(kw.pop("kind"), **kw).slots() == slots


def test_state_layout_after_one_step():
    g = np.array([1.0, -2.0, 3.0], F32)
    r = Runner(make_spec(ADAM, amsgrad=True), np.zeros(3))
    r.step(g)
    m, v, vhat = r.state.reshape(3, 3)  # momentums, velocities, velocity_hats
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-6)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-6)
    np.testing.assert_array_equal(vhat, v)
    r = Runner(make_spec(RMSPROP, momentum=0.5, centered=True, learning_rate=0.1), np.zeros(3))
    r.step(g)
    vel, mom, avg = r.state.reshape(3, 3)  # velocities, momentums, average_gradients
    np.testing.assert_allclose(vel, 0.1 * g * g, rtol=1e-5)
    np.testing.assert_allclose(avg, 0.1 * g, rtol=1e-5)
    np.testing.assert_allclose(mom, -r.params, rtol=1e-6)
    r = Runner(make_spec(SGD, momentum=0.9, learning_rate=0.1), np.zeros(3))
    r.step(g)
    np.testing.assert_allclose(r.state, -0.1 * g, rtol=1e-6)
    np.testing.assert_allclose(r.params, -0.1 * g, rtol=1e-6)


def test_adam_state_after_one_step_matches_real_keras():
    # real Keras: Adam(amsgrad=True).apply_gradients on zeros(3) with g = [1, -2, 3],
    # then opt.variables (tests/goldens/README).
    r = Runner(make_spec(ADAM, amsgrad=True), np.zeros(3))
    r.step(np.array([1.0, -2.0, 3.0], F32))
    m, v, vhat = r.state.reshape(3, 3)
    np.testing.assert_allclose(m, [0.10000000149011612, -0.20000000298023224,
                                   0.30000001192092896], rtol=1e-6)
    np.testing.assert_allclose(v, [0.0010000000474974513, 0.004000000189989805,
                                   0.009000000543892384], rtol=1e-6)
    np.testing.assert_allclose(r.params, [-0.000999990152195096, 0.0009999917820096016,
                                          -0.0009999923640862107], rtol=1e-6)


def test_spec_defaults_and_validation():
    s = _core.OptimizerSpec()
    assert s.kind == RMSPROP
    assert s.learning_rate == pytest.approx(0.001)
    assert s.rho == pytest.approx(0.9) and s.momentum == 0.0 and not s.centered
    assert s.beta_1 == pytest.approx(0.9) and s.beta_2 == pytest.approx(0.999)
    assert s.epsilon == pytest.approx(1e-7) and not s.amsgrad and not s.nesterov
    with pytest.raises(ValueError):
        s.kind = 10  # 0..9: SGD, RMSprop, Adam, Adagrad, Adadelta, Adamax, Nadam, Lion, Lamb, Ftrl
    with pytest.raises(ValueError):
        s.kind = -1


def test_optimizer_step_argument_validation():
    spec = make_spec(ADAM)
    p = np.zeros(4, F32)
    g = np.zeros(4, F32)
    with pytest.raises(ValueError, match="state"):
        _core.optimizer_step(spec, 0, p, np.zeros(4, F32), g)
    with pytest.raises(ValueError, match="grads"):
        _core.optimizer_step(spec, 0, p, np.zeros(8, F32), np.zeros(5, F32))
    ro = np.zeros(4, F32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        _core.optimizer_step(spec, 0, ro, np.zeros(8, F32), g)
    with pytest.raises(TypeError, match="dtype"):
        _core.optimizer_step(spec, 0, np.zeros(4), np.zeros(8, F32), g)


# ------------------------------------------------------------- public API
def test_public_defaults_match_keras():
    sgd = O.SGD()
    assert sgd.learning_rate == pytest.approx(0.01)
    assert sgd.momentum == 0.0 and sgd.nesterov is False
    rms = O.RMSprop()
    assert rms.learning_rate == pytest.approx(0.001)
    assert rms.rho == pytest.approx(0.9) and rms.momentum == 0.0
    assert rms.epsilon == pytest.approx(1e-7) and rms.centered is False
    adam = O.Adam()
    assert adam.learning_rate == pytest.approx(0.001)
    assert adam.beta_1 == pytest.approx(0.9) and adam.beta_2 == pytest.approx(0.999)
    assert adam.epsilon == pytest.approx(1e-7) and adam.amsgrad is False
    # the native specs carry the same numbers
    s = sgd._spec()
    assert (s.kind, s.momentum, s.nesterov) == (SGD, 0.0, False)
    assert s.learning_rate == pytest.approx(0.01)
    s = rms._spec()
    assert s.kind == RMSPROP and s.rho == pytest.approx(0.9) and s.epsilon == pytest.approx(1e-7)
    s = adam._spec()
    assert s.kind == ADAM and s.beta_2 == pytest.approx(0.999) and not s.amsgrad


def test_get_config_keys_match_keras():
    # real Keras 3.15.1 get_config() keys of the default optimizers
    base = {"name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm",
            "clipvalue", "use_ema", "ema_momentum", "ema_overwrite_frequency",
            "loss_scale_factor", "gradient_accumulation_steps"}
    assert set(O.SGD().get_config()) == base | {"momentum", "nesterov"}
    assert set(O.RMSprop().get_config()) == base | {"rho", "momentum", "epsilon", "centered"}
    assert set(O.Adam().get_config()) == base | {"beta_1", "beta_2", "epsilon", "amsgrad"}


@pytest.mark.parametrize("make,word", [
    (lambda: O.SGD(momentum=2), "momentum"),
    (lambda: O.SGD(momentum=-0.1), "momentum"),
    (lambda: O.SGD(momentum="0.5"), "momentum"),
    (lambda: O.RMSprop(rho=1.1), "rho"),
    (lambda: O.RMSprop(rho=-0.1), "rho"),
    (lambda: O.RMSprop(momentum=1.5), "momentum"),
    (lambda: O.RMSprop(epsilon=-1e-7), "epsilon"),
    (lambda: O.Adam(beta_1=1.5), "beta_1"),
    (lambda: O.Adam(beta_2=-0.5), "beta_2"),
    (lambda: O.Adam(epsilon=-1.0), "epsilon"),
    (lambda: O.Adam(learning_rate=-0.1), "learning_rate"),
    (lambda: O.SGD(learning_rate="fast"), "learning_rate"),
    (lambda: O.Adam(learning_rate=float("nan")), "learning_rate"),
    (lambda: O.Adam(not_an_arg=1), "not_an_arg"),
])
def test_invalid_arguments_raise_value_error(make, word):
    with pytest.raises(ValueError, match=word):
        make()


def test_boundary_values_accepted():
    # Keras rmsprop_test.py: boundary values 0 and 1 are accepted for rho, momentum.
    O.RMSprop(rho=0.0)
    O.RMSprop(rho=1.0)
    O.RMSprop(momentum=0.0)
    O.RMSprop(momentum=1.0)
    O.SGD(momentum=1.0)
    O.RMSprop(epsilon=1e-12)


def test_get_serialize_roundtrip():
    assert isinstance(O.get("adam"), O.Adam)
    assert isinstance(O.get("RMSprop"), O.RMSprop)
    assert isinstance(O.get("sgd"), O.SGD)
    opt = O.SGD(learning_rate=0.3, momentum=0.5, nesterov=True)
    assert O.get(opt) is opt
    back = O.deserialize(O.serialize(opt))
    assert isinstance(back, O.SGD)
    # (the learning rate a float32 variable's value, as Keras's)
    assert (back.learning_rate, back.momentum, back.nesterov) == (np.float32(0.3), 0.5, True)
    with pytest.raises(ValueError, match="muon"):
        O.get("muon")


def test_public_optimizer_steps_match_keras_single_step():
    # Keras {sgd,rmsprop,adam}_test.py test_single_step through the public specs.
    for opt, want in ((O.SGD(learning_rate=0.5), [0.5, -1.0, -0.5, 3.0]),
                      (O.RMSprop(learning_rate=0.5), [-0.5811, 0.4189, 1.4189, 2.4189]),
                      (O.Adam(learning_rate=0.5), [0.5, 1.5, 2.5, 3.5])):
        r = Runner(opt._spec(), THETA0)
        np.testing.assert_allclose(r.step(G0), want, rtol=1e-4, atol=1e-4)
