"""Tests for the regression / hinge / probabilistic losses of fastdense.losses.

Goldens marked "Keras losses_test.py" are copied from Keras 3.15.1,
keras/src/losses/losses_test.py (keras-team/keras), with the tolerance Keras
uses there (``assertAlmostEqual(..., 3)``: |diff| < 1.5e-3, or the default 7
places).  Goldens marked "real Keras" were produced here by calling Keras
3.15.1 (JAX backend, float32) on the same inputs, e.g.
``keras.losses.huber(REG_T, REG_P, delta=0.5)`` or
``keras.losses.Huber(delta=0.5, reduction="sum")(REG_T, REG_P, sample_weight=SW)``,
and printed with numpy's shortest float32 repr.  Gradients of every loss are
checked through fastdense's autodiff tracer against float64 central finite
differences of float64 reference formulas.  Nothing here imports keras.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from fastdense import _autodiff
from fastdense import losses as L

F32 = np.float32
EPS = 1e-7


def keras_close(got, want, places=3):
    """Keras's assertAlmostEqual(got, want, places)."""
    np.testing.assert_almost_equal(got, want, decimal=places)


def close32(got, want):
    """Same float32 computation as Keras up to a few ulps."""
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=3e-6, atol=1e-6)


# ------------------------------------------------------------------ inputs
REG_T = np.array([[1, 9, 2], [-5, -2, 6], [0, 0, 0], [0.5, 1, 0]], F32)
REG_P = np.array([[4, 8, 12], [8, 1, 3], [0, 0, 0], [0.25, -0.5, 1]], F32)
HIN_T = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 1]], F32)
HIN_TM = np.array([[-1, 1, 1], [1, -1, -1], [0, 2, 1], [1, 1, -1]], F32)  # not all {0, 1}
HIN_P = np.array([[0.3, -0.8, 2.0], [-1.5, 0.2, 0.0], [0.9, -0.1, 1.1], [-2, 0.5, 3]], F32)
KL_T = np.array([[0.2, 0.3, 0.5], [0, 0, 1], [0.7, 0.3, 0], [1.2, -0.1, 0.4]], F32)
KL_P = np.array([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0, 0.5, 0.5], [0.4, 0.4, 1.5]], F32)
PO_T = np.array([[0, 1, 3], [2, 0, 1], [5, 5, 0]], F32)
PO_P = np.array([[0.5, 1, 2.5], [0, 0.1, 4], [3, 7, 1]], F32)
SW = np.array([1.5, 0.0, 2.0, 1.5], F32)
BIN_T = HIN_T
BIN_P = np.array([[0.2, 0.7, 0.9], [0.6, 0.35, 0.05], [0.5, 0.1, 0.45], [0.95, 0.8, 0.3]], F32)
CAT_T = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]], F32)
CAT_P = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.15, 0.05, 0.8]], F32)

# real Keras: per-sample values of the functions (keras.losses.<name>(T, P, ...))
FUNCTION_GOLDENS = [
    ("mean_absolute_error", {}, REG_T, REG_P, [4.666667, 6.3333335, 0., 0.9166667]),
    ("mean_absolute_percentage_error", {}, REG_T, REG_P, [270.37036, 153.33333, 0., 333333400.]),
    ("mean_squared_logarithmic_error", {}, REG_T, REG_P, [1.000278, 1.8738064, 0., 0.33138227]),
    ("huber", {}, REG_T, REG_P, [4.166667, 5.8333335, 0., 0.5104167]),
    ("huber", {"delta": 0.5}, REG_T, REG_P, [2.2083335, 3.0416667, 0., 0.34375]),
    ("huber", {"delta": 2.5}, REG_T, REG_P, [8.916667, 12.708334, 0., 0.5520834]),
    ("log_cosh", {}, REG_T, REG_P, [4.016654, 5.641836, 0., 0.44005024]),
    ("cosine_similarity", {}, REG_T, REG_P, [-0.720488, 0.3460499, -0., 0.29277003]),
    ("cosine_similarity", {"axis": 0}, REG_T, REG_P, [0.782551, -0.9277806, -0.53512955]),
    ("hinge", {}, HIN_T, HIN_P, [1.0333333, 1.5666666, 0.93333334, 1.1666667]),
    ("hinge", {}, HIN_TM, HIN_P, [1.0333333, 1.5666666, 0.73333335, 2.5]),
    ("squared_hinge", {}, HIN_T, HIN_P, [1.6433332, 2.896667, 1.4733334, 3.0833335]),
    ("squared_hinge", {}, HIN_TM, HIN_P, [1.6433332, 2.896667, 0.8133334, 8.416667]),
    ("categorical_hinge", {}, HIN_T, HIN_P, [0.099999964, 2.7, 0.79999995, 0.]),
    ("kl_divergence", {}, KL_T, KL_P, [0.18609808, 0.5108227, 10.879745, 0.5497729]),
    ("poisson", {}, PO_T, PO_P, [0.41704255, 11.649965, -1.4075377]),
    ("binary_focal_crossentropy", {}, BIN_T, BIN_P,
     [0.014026697725057602, 0.044877078384160995, 0.13862966001033783, 0.1996668577194214]),
    ("binary_focal_crossentropy", {"apply_class_balancing": True, "alpha": 0.4, "gamma": 1.5},
     BIN_T, BIN_P,
     [0.012250309810042381, 0.035185158252716064, 0.0931064710021019, 0.09675376117229462]),
    ("binary_focal_crossentropy", {"from_logits": True, "label_smoothing": 0.2}, BIN_T, HIN_P,
     [0.24479538202285767, 0.42740780115127563, 0.2337784469127655, 0.44630444049835205]),
    ("categorical_focal_crossentropy", {}, CAT_T, CAT_P,
     [0.008025187067687511, 0.02043301984667778, 0.08246616274118423, 0.675912082195282]),
    ("categorical_focal_crossentropy", {"alpha": 0.5, "gamma": 3.0, "label_smoothing": 0.1},
     CAT_T, CAT_P,
     [0.04620438441634178, 0.05011577159166336, 0.1217825785279274, 1.2180650234222412]),
    ("categorical_focal_crossentropy", {"from_logits": True}, CAT_T, HIN_P,
     [0.682493269443512, 0.49419745802879333, 0.052424799650907516, 0.5525038242340088]),
    ("dice", {}, BIN_T, BIN_P, 0.27131783962249756),
    ("dice", {"axis": -1}, BIN_T, BIN_P,
     [0.1578947901725769, 0.3999999761581421, 0.5609756112098694, 0.18811887502670288]),
    ("tversky", {}, BIN_T, BIN_P, 0.27131783962249756),
    ("tversky", {"alpha": 0.3, "beta": 0.7, "axis": -1}, BIN_T, BIN_P,
     [0.13978499174118042, 0.40000003576278687, 0.5652174949645996, 0.12205570936203003]),
]


@pytest.mark.parametrize("name,kw,t,p,want", FUNCTION_GOLDENS,
                         ids=[f"{c[0]}{c[1] or ''}-{i}" for i, c in enumerate(FUNCTION_GOLDENS)])
def test_functions_match_real_keras(name, kw, t, p, want):
    got = getattr(L, name)(t, p, **kw)
    assert np.asarray(got).dtype == np.float32
    assert np.shape(got) == np.shape(want)
    close32(got, want)


# real Keras: cls(**kw)(T, P), cls(reduction="sum")(..., sample_weight=SW),
# cls()(..., sample_weight=SW), cls(reduction="mean_with_sample_weight")(..., SW)
CLASS_GOLDENS = [
    ("MeanAbsoluteError", {}, REG_T, REG_P, [2.9791667, 8.375, 2.09375, 1.675]),
    ("MeanAbsolutePercentageError", {}, REG_T, REG_P,
     [83333460., 500000540., 125000136., 100000110.]),
    ("MeanSquaredLogarithmicError", {}, REG_T, REG_P,
     [0.8013667, 1.9974904, 0.4993726, 0.39949808]),
    ("Huber", {"delta": 0.5}, REG_T, REG_P, [1.3984375, 3.8281252, 0.9570313, 0.76562506]),
    ("LogCosh", {}, REG_T, REG_P, [2.524635, 6.685056, 1.671264, 1.3370112]),
    ("CosineSimilarity", {}, REG_T, REG_P, [-0.02041702, -0.64157695, -0.16039424, -0.12831539]),
    ("Hinge", {}, HIN_T, HIN_P, [1.175, 5.1666665, 1.2916666, 1.0333333]),
    ("SquaredHinge", {}, HIN_T, HIN_P, [2.2741666, 10.036667, 2.5091667, 2.0073333]),
    ("CategoricalHinge", {}, HIN_T, HIN_P, [0.9, 1.7499999, 0.43749997, 0.34999996]),
    ("KLDivergence", {}, KL_T, KL_P, [3.0316095, 22.863295, 5.7158237, 4.572659]),
    ("Poisson", {}, PO_T, PO_P, [3.5531569, -2.1895115, -0.7298372, -0.6255747]),
    ("BinaryFocalCrossentropy", {}, BIN_T, BIN_P,
     [0.0993000715970993, 0.5977996587753296, 0.1494499146938324, 0.11955992877483368]),
    ("CategoricalFocalCrossentropy", {"gamma": 1.0}, CAT_T, CAT_P,
     [0.23169079422950745, 1.3822427988052368, 0.3455606997013092, 0.2764485478401184]),
    ("Dice", {"axis": -1}, BIN_T, BIN_P,
     [0.3267472982406616, 1.6409716606140137, 0.4102429151535034, 0.3281943202018738]),
    ("Tversky", {"axis": -1, "alpha": 0.6, "beta": 0.4}, BIN_T, BIN_P,
     [0.3357619047164917, 1.6939831972122192, 0.4234957993030548, 0.3387966454029083]),
]


@pytest.mark.parametrize("cls,kw,t,p,want", CLASS_GOLDENS, ids=[c[0] for c in CLASS_GOLDENS])
def test_classes_reductions_and_weights_match_real_keras(cls, kw, t, p, want):
    C = getattr(L, cls)
    sw = SW[:len(t)]
    got = [C(**kw)(t, p), C(reduction="sum", **kw)(t, p, sample_weight=sw),
           C(**kw)(t, p, sample_weight=sw),
           C(reduction="mean_with_sample_weight", **kw)(t, p, sample_weight=sw)]
    close32(got, want)
    # reduction=None gives the per-sample values of the function
    fn = C(**kw).fn
    close32(C(reduction=None, **kw)(t, p), fn(t, p, **kw))


# real Keras: cls(reduction=None)([1, 0, 2], [[0.5], [0.25], [3]]) -- the classes
# rank-match y_true (batch,) with y_pred (batch, 1)
RANK1_GOLDENS = {
    "MeanAbsoluteError": [0.5, 0.25, 1.],
    "Huber": [0.125, 0.03125, 0.5],
    "LogCosh": [0.120114565, 0.030929804, 0.4337808],
    "Hinge": [0.5, 1., 0.],
    "Poisson": [1.193147, 0.25, 0.8027754],
    "CosineSimilarity": [-1., -0., -1.],
    "MeanSquaredLogarithmicError": [0.08276098, 0.04979299, 0.08276097],
    "KLDivergence": [0.6931472, -0.0000014731801, 0.],
}


@pytest.mark.parametrize("cls", sorted(RANK1_GOLDENS))
def test_classes_rank_match_like_keras(cls):
    got = getattr(L, cls)(reduction=None)(np.array([1.0, 0.0, 2.0]),
                                          np.array([[0.5], [0.25], [3.0]], F32))
    close32(got, RANK1_GOLDENS[cls])


# ----------------------------------------------------- Keras losses_test.py
KT = np.array([[1, 9, 2], [-5, -2, 6]])
KP = np.array([[4, 8, 12], [8, 1, 3]], dtype="float32")


def test_mae_keras_goldens():
    # Keras losses_test.py MeanAbsoluteErrorTest
    m = L.MeanAbsoluteError()
    keras_close(m(KT, KT.astype(F32)), 0.0)
    keras_close(m(KT, KP), 5.5, 7)
    keras_close(m(KT, KP, sample_weight=2.3), 12.65, 5)
    keras_close(m(KT, KP, sample_weight=np.array([[1.2], [3.4]])), 81.4 / 6, 5)
    t3, p3 = KT.reshape(2, 3, 1), KP.reshape(2, 3, 1)
    keras_close(m(t3, p3, sample_weight=np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3))),
                13.833333, 5)
    keras_close(m(KT, KP, sample_weight=0), 0.0)
    keras_close(L.MeanAbsoluteError(reduction=None)(KT, KP, sample_weight=2.3),
                [10.7333, 14.5666])
    keras_close(L.MeanAbsoluteError(reduction="sum")(KT, KP, sample_weight=2.3), 25.29999)
    keras_close(L.MeanAbsoluteError(reduction="mean_with_sample_weight")(
        KT, KP, sample_weight=np.array([[1.2], [3.4]])),
        (14 / 3 * 1.2 + 19 / 3 * 3.4) / (1.2 + 3.4), 5)


def test_mape_keras_goldens():
    # Keras losses_test.py MeanAbsolutePercentageErrorTest
    m = L.MeanAbsolutePercentageError()
    keras_close(m(KT, KT.astype(F32)), 0.0)
    keras_close(m(KT, KP), 211.8518)
    keras_close(m(KT, KP, sample_weight=2.3), 487.259)
    keras_close(m(KT, KP, sample_weight=np.array([[1.2], [3.4]])), 422.8888)
    t3, p3 = KT.reshape(2, 3, 1), KP.reshape(2, 3, 1)
    keras_close(m(t3, p3, sample_weight=np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3))),
                694.4444)
    keras_close(m(KT, KP, sample_weight=0), 0.0)
    keras_close(L.MeanAbsolutePercentageError(reduction=None)(KT, KP, sample_weight=2.3),
                [621.8518, 352.6666])
    keras_close(L.MeanAbsolutePercentageError(reduction="mean_with_sample_weight")(
        KT, KP, sample_weight=np.array([[1.2], [3.4]])), 183.865)


def test_msle_keras_goldens():
    # Keras losses_test.py MeanSquaredLogarithmicErrorTest
    m = L.MeanSquaredLogarithmicError()
    keras_close(m(KT, KP), 1.4370)
    keras_close(m(KT, KP, sample_weight=2.3), 3.3051)
    keras_close(m(KT, KP, sample_weight=np.array([[1.2], [3.4]])), 3.7856)
    t3, p3 = KT.reshape(2, 3, 1), KP.reshape(2, 3, 1)
    keras_close(m(t3, p3, sample_weight=np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3))),
                2.647374, 5)
    keras_close(m(KT, KP, sample_weight=0), 0.0)
    keras_close(L.MeanSquaredLogarithmicError(reduction="mean_with_sample_weight")(
        KT, KP, sample_weight=np.array([[1.2], [3.4]])), 1.646)


HT = np.array([[0.0, 1.0], [0.0, 0.0]])
HP = np.array([[0.6, 0.4], [0.4, 0.6]])


@pytest.mark.parametrize("cls,unweighted,weighted", [
    # Keras losses_test.py HingeTest / SquaredHingeTest / CategoricalHingeTest:
    # (sum_over_batch_size, sum, none) without and with sample_weight=[1, 0]
    ("Hinge", (1.3, 2.6, [1.1, 1.5]), (0.55, 1.1, [1.1, 0.0])),
    ("SquaredHinge", (1.86, 3.72, [1.46, 2.26]), (0.73, 1.46, [1.46, 0.0])),
    ("CategoricalHinge", (1.4, 2.8, [1.2, 1.6]), (0.6, 1.2, [1.2, 0.0])),
])
def test_hinge_family_keras_goldens(cls, unweighted, weighted):
    C = getattr(L, cls)
    for sw, want in ((None, unweighted), ([1, 0], weighted)):
        keras_close(C(reduction="sum_over_batch_size")(HT, HP, sample_weight=sw), want[0])
        keras_close(C(reduction="sum")(HT, HP, sample_weight=sw), want[1])
        keras_close(C(reduction=None)(HT, HP, sample_weight=sw), want[2])
    assert C()(HT, HP, sample_weight=0.0) == 0.0
    with pytest.raises(ValueError, match="Invalid value for argument"):
        C(reduction="abc")


def _l2_norm_keras_test(x, axis):
    # the reference in Keras losses_test.py CosineSimilarityTest
    square_sum = np.sum(np.square(x), axis=axis, keepdims=True)
    return x * (1 / np.sqrt(np.maximum(square_sum, 1e-12)))


def test_cosine_similarity_keras_tests():
    # Keras losses_test.py CosineSimilarityTest (numpy expectations)
    t, p = KT.astype(F32), KP
    expected = np.sum(_l2_norm_keras_test(t, 1) * _l2_norm_keras_test(p, 1), axis=1)
    m = L.CosineSimilarity()
    keras_close(m(t, p), -np.mean(expected))
    keras_close(m(t, p, sample_weight=2.3), -np.mean(expected * 2.3))
    keras_close(m(t, p, sample_weight=np.asarray([1.2, 3.4])),
                -np.mean(expected * np.asarray([1.2, 3.4])))
    t3, p3 = t.reshape((2, 3, 1)), p.reshape((2, 3, 1))
    sw = np.asarray([3, 6, 5, 0, 4, 2]).reshape((2, 3))
    exp3 = np.sum(_l2_norm_keras_test(t3, 2) * _l2_norm_keras_test(p3, 2), axis=(2,))
    keras_close(m(t3, p3, sample_weight=sw), -np.mean(exp3 * sw))
    keras_close(m(t, p, sample_weight=0), 0.0)
    keras_close(L.CosineSimilarity(axis=1)(t, p), -np.mean(expected))
    c = L.CosineSimilarity(axis=2, reduction="sum", name="cosine_loss")
    assert c.name == "cosine_loss" and c.reduction == "sum" and c.axis == 2


def _huber_keras_test(t, p, delta=1.0):
    # the reference in Keras losses_test.py HuberLossTest
    abs_error = np.abs(p - t)
    quadratic = np.minimum(abs_error, delta)
    return 0.5 * quadratic * quadratic + delta * (abs_error - quadratic)


def test_huber_keras_tests():
    # Keras losses_test.py HuberLossTest (numpy expectations)
    p = np.array([[0.9, 0.2, 0.2], [0.8, 0.4, 0.6]])
    t = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    expected = _huber_keras_test(t, p)
    h = L.Huber()
    keras_close(h(t, t), 0.0)
    keras_close(h(t, p), np.sum(expected) / 6)
    keras_close(h(t, p, sample_weight=2.3), 2.3 * np.sum(expected) / 6)
    w = np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape((2, 3))
    keras_close(h(t, p, sample_weight=np.array([[1.2], [3.4]])), np.sum(expected * w) / 6)
    sw3 = np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3, 1))
    keras_close(h(t.reshape(2, 3, 1), p.reshape(2, 3, 1), sample_weight=sw3),
                np.sum(_huber_keras_test(t.reshape(2, 3, 1), p.reshape(2, 3, 1)) * sw3) / 6)
    keras_close(h(t, p, sample_weight=0), 0.0)
    keras_close(L.Huber(delta=0.8)(t, p, sample_weight=2.3),
                2.3 * np.sum(_huber_keras_test(t, p, 0.8)) / 6)
    h = L.Huber(reduction="sum", name="huber")
    assert h.name == "huber" and h.reduction == "sum"
    assert L.Huber().name == "huber_loss"


def test_log_cosh_kld_poisson_keras_tests():
    # Keras losses_test.py LogCoshTest / KLDivergenceTest / PoissonTest
    t, p = KT.astype(F32), KP
    err = p - t
    expected = np.log((np.exp(err) + np.exp(-err)) / 2)
    keras_close(L.LogCosh()(t, p), np.sum(expected) / 6)
    keras_close(L.LogCosh()(t, p, sample_weight=np.asarray([1.2, 3.4])),
                np.sum(expected * np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape(2, 3)) / 6)
    assert L.LogCosh(reduction="sum", name="logcosh_loss").name == "logcosh_loss"

    kp = np.asarray([0.4, 0.9, 0.12, 0.36, 0.3, 0.4], dtype=F32).reshape((2, 3))
    kt = np.asarray([0.5, 0.8, 0.12, 0.7, 0.43, 0.8], dtype=F32).reshape((2, 3))
    kexp = kt * np.log(kt / kp)
    keras_close(L.KLDivergence()(kt, kp), np.sum(kexp) / 2)
    keras_close(L.KLDivergence()(kt, kp, sample_weight=2.3), 2.3 * np.sum(kexp) / 2)
    sw = np.asarray([3, 6, 5, 0, 4, 2]).reshape(2, 3)
    keras_close(L.KLDivergence()(kt.reshape(2, 3, 1), kp.reshape(2, 3, 1), sample_weight=sw),
                np.sum(kexp * sw) / 6)

    pp = np.asarray([1, 9, 2, 5, 2, 6], dtype=F32).reshape((2, 3))
    pt = np.asarray([4, 8, 12, 8, 1, 3], dtype=F32).reshape((2, 3))
    pexp = pp - pt * np.log(pp)
    keras_close(L.Poisson()(pt, pp), np.sum(pexp) / 6)
    keras_close(L.Poisson()(pt, pp, sample_weight=np.asarray([1.2, 3.4]).reshape((2, 1))),
                np.sum(pexp * np.asarray([1.2, 1.2, 1.2, 3.4, 3.4, 3.4]).reshape((2, 3))) / 6)
    keras_close(L.Poisson()(pt, pp, sample_weight=0), 0.0)


def test_crossentropy_from_logits_axis_and_smoothing():
    z = np.array([[1.0, 9.0, 0.0], [1.0, 8.0, 1.0]], F32)
    # real Keras: SparseCategoricalCrossentropy(from_logits=True)([1, 2], z)
    close32(L.SparseCategoricalCrossentropy(from_logits=True)(np.array([1, 2]), z), 3.5011404)
    # real Keras: sparse_categorical_crossentropy([[1], [2]], z, from_logits=True)
    close32(L.sparse_categorical_crossentropy(np.array([[1], [2]]), z, from_logits=True),
            [0.00045873132, 7.001822])
    # real Keras: categorical_crossentropy(one-hot [1, 2], z, from_logits=True,
    # label_smoothing=0.3)
    oh = np.array([[0, 1, 0], [0, 0, 1]], F32)
    close32(L.categorical_crossentropy(oh, z, from_logits=True, label_smoothing=0.3),
            [1.7004588, 6.301822])
    # Keras 3 signature: (from_logits, ignore_class, reduction, axis, name, dtype)
    s = L.SparseCategoricalCrossentropy(False, None, "sum", -1, "my_scce")
    assert s.name == "my_scce" and s.reduction == "sum" and s.axis == -1
    assert s._native() is None  # reduction="sum" is not native
    assert L.SparseCategoricalCrossentropy(axis=1)._native() == (L.SCCE, False)
    assert L.BinaryCrossentropy(axis=0)._native() is None
    assert not hasattr(L.SparseCategoricalCrossentropy(), "label_smoothing")
    with pytest.raises(NotImplementedError, match="ignore_class"):
        L.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(ValueError, match="axis"):
        L.categorical_crossentropy(oh, z, axis=True)


# ------------------------------------------------------ float64 references
def _ref(name, t, p, **kw):
    """float64 formulas (Keras's, with its epsilons) -> per-sample values."""
    t, p = np.asarray(t, np.float64), np.asarray(p, np.float64)
    if name == "mean_absolute_error":
        return np.mean(np.abs(t - p), -1)
    if name == "mean_absolute_percentage_error":
        return 100 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPS)), -1)
    if name == "mean_squared_logarithmic_error":
        return np.mean((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2, -1)
    if name == "huber":
        d = kw.get("delta", 1.0)
        e = np.abs(p - t)
        return np.mean(np.where(e <= d, 0.5 * e ** 2, d * e - 0.5 * d ** 2), -1)
    if name == "log_cosh":
        return np.mean(np.log(np.cosh(p - t)), -1)
    if name in ("hinge", "squared_hinge"):
        if np.all((t == 0) | (t == 1)):
            t = 2 * t - 1
        m = np.maximum(1 - t * p, 0)
        return np.mean(m if name == "hinge" else m ** 2, -1)
    if name == "categorical_hinge":
        return np.maximum(np.max((1 - t) * p, -1) - np.sum(t * p, -1) + 1, 0)
    if name == "kl_divergence":
        t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
        return np.sum(t * np.log(t / p), -1)
    if name == "poisson":
        return np.mean(p - t * np.log(p + EPS), -1)
    if name == "binary_focal_crossentropy":  # (Keras: p_t from the unclipped y_pred)
        o = np.clip(p, EPS, 1 - EPS)
        bce = -(t * np.log(o) + (1 - t) * np.log(1 - o))
        return np.mean((1 - (t * p + (1 - t) * (1 - p))) ** 2.0 * bce, -1)
    if name == "categorical_focal_crossentropy":
        o = np.clip(p / np.sum(p, -1, keepdims=True), EPS, 1 - EPS)
        return np.sum(0.25 * (1 - o) ** 2.0 * -t * np.log(o), -1)
    if name in ("dice", "tversky"):  # per sample (axis=-1), as the gradient test uses them
        tp = np.sum(t * p, -1)
        if name == "dice":
            return 1 - 2 * tp / (np.sum(t, -1) + np.sum(p, -1) + EPS)
        fp, fn = np.sum((1 - p) * t, -1), np.sum(p * (1 - t), -1)
        return 1 - tp / (tp + 0.5 * fp + 0.5 * fn + EPS)
    if name == "cosine_similarity":
        ax = kw.get("axis", -1)

        def nrm(x):
            return x / np.sqrt(np.maximum(np.sum(x * x, ax, keepdims=True), EPS ** 2))
        return -np.sum(nrm(t) * nrm(p), ax)
    raise KeyError(name)


def _grad_case(name, rng):
    """(y_true, y_pred) away from the kinks / clipping edges of ``name``."""
    B, C = 5, 4
    if name in ("hinge", "squared_hinge"):
        t = (rng.random((B, C)) > 0.5).astype(F32)
        s = 2 * t - 1
        p = s * rng.choice([-1.0, 1.0], (B, C)) * rng.uniform(0.2, 0.7, (B, C))  # margins in (0, 2)
        return t, p.astype(F32)
    if name == "categorical_hinge":
        t = np.eye(C, dtype=F32)[rng.integers(0, C, B)]
        p = rng.permuted(np.tile(np.array([0.1, 0.5, 0.9, 1.3]), (B, 1)), axis=1)
        return t, (p + rng.uniform(-0.02, 0.02, (B, C))).astype(F32)
    if name == "kl_divergence":
        return (rng.dirichlet(np.ones(C), B).astype(F32),
                rng.dirichlet(np.ones(C) * 3, B).astype(F32))
    if name in ("binary_focal_crossentropy", "dice", "tversky"):
        return ((rng.random((B, C)) > 0.5).astype(F32),
                rng.uniform(0.05, 0.95, (B, C)).astype(F32))
    if name == "categorical_focal_crossentropy":
        return (np.eye(C, dtype=F32)[rng.integers(0, C, B)],
                rng.dirichlet(np.ones(C) * 3, B).astype(F32))
    if name in ("poisson", "mean_squared_logarithmic_error"):
        return rng.uniform(0.0, 3.0, (B, C)).astype(F32), rng.uniform(0.2, 3.0, (B, C)).astype(F32)
    t = rng.normal(0, 1.5, (B, C)).astype(F32)
    off = rng.choice([-1.0, 1.0], (B, C)) * rng.uniform(0.15, 2.5, (B, C))
    if name == "huber":  # |error| away from delta = 1
        off = np.where(np.abs(np.abs(off) - 1.0) < 0.1, off * 1.3, off)
    if name == "mean_absolute_percentage_error":
        t = np.where(np.abs(t) < 0.3, 0.3 * np.sign(t) + 0.3 * (t == 0), t).astype(F32)
    return t, (t + off).astype(F32)


GRAD_LOSSES = ["mean_absolute_error", "mean_absolute_percentage_error",
               "mean_squared_logarithmic_error", "huber", "log_cosh", "hinge", "squared_hinge",
               "categorical_hinge", "kl_divergence", "poisson", "cosine_similarity",
               "binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky"]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", GRAD_LOSSES)
def test_gradients_through_tracer_match_float64_finite_differences(name, weighted):
    rng = np.random.default_rng([GRAD_LOSSES.index(name), int(weighted)])
    t, p = _grad_case(name, rng)
    sw = rng.uniform(0.5, 2.0, t.shape[0]).astype(F32) if weighted else None
    fn = getattr(L, name)
    if name in ("dice", "tversky"):  # (per sample: by default they reduce the whole batch)
        fn = functools.partial(fn, axis=-1)
    value, grad = _autodiff.loss_and_grad(fn, t, p, sample_weight=sw)
    assert grad.shape == p.shape and grad.dtype == np.float32

    w = np.ones(t.shape[0]) if sw is None else sw.astype(np.float64)

    def total(p64):
        return float(np.sum(_ref(name, t, p64) * w) / t.shape[0])

    p64 = p.astype(np.float64)
    np.testing.assert_allclose(value, total(p64), rtol=2e-5)
    # the numpy (untraced) call gives the same values as the traced one
    np.testing.assert_allclose(value, float(np.sum(fn(t, p) * w) / t.shape[0]), rtol=1e-6)
    fd = np.zeros_like(p64)
    for idx in np.ndindex(p.shape):
        h = 1e-6 * max(1.0, abs(p64[idx]))
        up, dn = p64.copy(), p64.copy()
        up[idx] += h
        dn[idx] -= h
        fd[idx] = (total(up) - total(dn)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=2e-3, atol=1e-5 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("cls,kw", [("Huber", {"delta": 0.3}), ("CosineSimilarity", {}),
                                    ("LogCosh", {}), ("Poisson", {}), ("KLDivergence", {})])
def test_loss_objects_are_differentiable_through_the_tracer(cls, kw):
    rng = np.random.default_rng(7)
    t = rng.uniform(0.05, 1.0, (6, 3)).astype(F32)
    p = rng.uniform(0.05, 1.0, (6, 3)).astype(F32)
    obj = getattr(L, cls)(**kw)
    value, grad = _autodiff.loss_and_grad(obj, t, p)
    np.testing.assert_allclose(value, obj(t, p), rtol=1e-6)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_tracer_gradients_at_edges_are_finite_and_as_keras_defines():
    # all-zero vectors: cosine similarity is 0 and its gradient stays finite
    t = np.array([[1.0, 2.0], [0.0, 0.0]], F32)
    value, grad = _autodiff.loss_and_grad(L.cosine_similarity, t, np.zeros((2, 2), F32))
    assert value == 0.0 and np.all(np.isfinite(grad))
    # clipped probabilities (KL) and zero-error MAE give zero gradients
    value, grad = _autodiff.loss_and_grad(L.kl_divergence, np.array([[0.5, 0.5]], F32),
                                          np.array([[-1.0, 2.0]], F32))
    assert np.all(grad == 0.0)
    # hinge: margin satisfied -> no gradient; violated -> -y / n
    _, grad = _autodiff.loss_and_grad(L.hinge, np.array([[1.0, 0.0]], F32),
                                      np.array([[2.0, 0.5]], F32))
    np.testing.assert_allclose(grad, [[0.0, 0.5]])


# --------------------------------------------------------- names and get()
KERAS_LOSS_NAMES = {
    # keras.losses.get(name) in Keras 3.15.1 -> function / class name
    "mean_absolute_error": "mean_absolute_error", "mae": "mean_absolute_error",
    "MAE": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
    "MAPE": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
    "MSLE": "mean_squared_logarithmic_error", "kld": "kl_divergence", "KLD": "kl_divergence",
    "bce": "binary_crossentropy", "BCE": "binary_crossentropy", "huber": "huber",
    "log_cosh": "log_cosh", "hinge": "hinge", "squared_hinge": "squared_hinge",
    "categorical_hinge": "categorical_hinge", "kl_divergence": "kl_divergence",
    "poisson": "poisson", "cosine_similarity": "cosine_similarity",
    "mean_absolute_percentage_error": "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error": "mean_squared_logarithmic_error",
    "binary_focal_crossentropy": "binary_focal_crossentropy",
    "categorical_focal_crossentropy": "categorical_focal_crossentropy",
    "dice": "dice", "tversky": "tversky",
}
KERAS_LOSS_CLASSES = {
    # class -> default name (Keras 3.15.1)
    "MeanAbsoluteError": "mean_absolute_error",
    "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
    "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
    "CosineSimilarity": "cosine_similarity", "Huber": "huber_loss", "LogCosh": "log_cosh",
    "Hinge": "hinge", "SquaredHinge": "squared_hinge", "CategoricalHinge": "categorical_hinge",
    "KLDivergence": "kl_divergence", "Poisson": "poisson",
    "BinaryFocalCrossentropy": "binary_focal_crossentropy",
    "CategoricalFocalCrossentropy": "categorical_focal_crossentropy",
    "Dice": "dice", "Tversky": "tversky",
}


@pytest.mark.parametrize("name", sorted(KERAS_LOSS_NAMES))
def test_get_function_names_and_aliases(name):
    fn = L.get(name)
    assert callable(fn) and fn.__name__ == KERAS_LOSS_NAMES[name]
    # compile-time wrapping keeps the spelling given
    obj = L.to_loss_object(name)
    assert isinstance(obj, L.LossFunctionWrapper) and obj.name == name
    # bce runs natively; the others go through autodiff
    assert obj._native() == ((L.BCE, False) if name.lower() == "bce" else None)


@pytest.mark.parametrize("cls", sorted(KERAS_LOSS_CLASSES))
def test_classes_by_name_defaults_and_config(cls):
    obj = L.get(cls)
    assert type(obj).__name__ == cls and obj.name == KERAS_LOSS_CLASSES[cls]
    assert obj.reduction == "sum_over_batch_size" and obj._native() is None
    cfg = obj.get_config()
    assert cfg["name"] == obj.name and cfg["reduction"] == "sum_over_batch_size"
    again = type(obj).from_config(dict(cfg, name="renamed", reduction="sum"))
    assert again.name == "renamed" and again.reduction == "sum"
    assert L.serialize(obj) == {"module": "keras.losses", "class_name": cls, "config": cfg,
                                "registered_name": None}
    back = L.deserialize(L.serialize(obj))
    assert type(back) is type(obj) and back.get_config() == cfg
    assert L.get(obj) is obj and isinstance(L.get(type(obj)), type(obj))


def test_config_keeps_huber_delta_and_cosine_axis():
    assert L.Huber.from_config(L.Huber(delta=0.25).get_config()).delta == 0.25
    assert L.CosineSimilarity.from_config(L.CosineSimilarity(axis=0).get_config()).axis == 0
    # the old names keep their meaning
    assert L.get("mse") is L.mean_squared_error and L.get("MSE") is L.mean_squared_error


@pytest.mark.parametrize("name", ["huber_loss", "logcosh", "Mae", "mean_absolute_errors",
                                  "kullback_leibler_divergence", "crossentropy"])
def test_unknown_loss_names_raise_like_keras(name):
    # real Keras 3.15.1: keras.losses.get(name) -> ValueError for each of these
    with pytest.raises(ValueError, match=f"Could not interpret loss identifier: {name}"):
        L.get(name)


@pytest.mark.parametrize("name", ["CTC", "ctc"])
def test_keras_losses_not_in_fastdense_say_so(name):
    with pytest.raises(ValueError, match="not supported by fastdense yet"):
        L.get(name)


def test_circle_names_resolve_as_keras():
    # real Keras 3.15.1: get("circle") is the function, get("Circle") a loss object
    assert L.get("circle") is L.circle
    assert isinstance(L.get("Circle"), L.Circle)


def test_cosine_similarity_of_tiny_vectors_real_keras():
    # real Keras: cosine_similarity([[1, 0], [1, 2]], [[1e-8, 0], [1e-3, 2e-3]]) --
    # x * min(rsqrt(sum(x**2)), 1/epsilon): a norm below 1e-7 counts as 1e-7
    close32(L.cosine_similarity(np.array([[1.0, 0.0], [1.0, 2.0]]),
                                np.array([[1e-8, 0.0], [1e-3, 2e-3]])), [-0.1, -0.99999994])


def test_huber_and_hinge_edges():
    # |error| == delta: both branches of Keras's where() agree
    np.testing.assert_allclose(L.huber(np.zeros((1, 2)), np.array([[1.0, -3.0]])),
                               [(0.5 + 2.5) / 2])
    # hinge: labels all in {0, 1} are converted; any other value disables it
    np.testing.assert_allclose(L.hinge(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0]])), [1.0])
    np.testing.assert_allclose(L.hinge(np.array([[0.0, 2.0]]), np.array([[1.0, 1.0]])),
                               [(1.0 + 0.0) / 2])


# real Keras 3.15.1: get_config() of the focal, Dice and Tversky losses, key for key
FOCAL_CONFIGS = {
    "BinaryFocalCrossentropy": {"name": "binary_focal_crossentropy",
                                "reduction": "sum_over_batch_size", "from_logits": False,
                                "label_smoothing": 0.0, "axis": -1,
                                "apply_class_balancing": False, "alpha": 0.25, "gamma": 2.0},
    "CategoricalFocalCrossentropy": {"name": "categorical_focal_crossentropy",
                                     "reduction": "sum_over_batch_size", "from_logits": False,
                                     "label_smoothing": 0.0, "axis": -1, "alpha": 0.25,
                                     "gamma": 2.0},
    "Dice": {"name": "dice", "reduction": "sum_over_batch_size", "axis": None},
    "Tversky": {"name": "tversky", "reduction": "sum_over_batch_size", "alpha": 0.5,
                "beta": 0.5, "axis": None},
}


@pytest.mark.parametrize("cls", sorted(FOCAL_CONFIGS))
def test_focal_dice_tversky_configs_and_training(cls):
    obj = getattr(L, cls)()
    cfg = obj.get_config()
    assert list(cfg.items()) == list(FOCAL_CONFIGS[cls].items())
    back = getattr(L, cls).from_config(cfg)
    assert back.get_config() == cfg
    # trains through the automatic gradient, loss going down
    import fastdense as fdm
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 5)).astype(F32)
    y = (x[:, :3] > 0).astype(F32) if cls != "CategoricalFocalCrossentropy" else \
        np.eye(3, dtype=F32)[np.argmax(x[:, :3], 1)]
    m = fdm.Sequential([fdm.Input((5,)), fdm.layers.Dense(3, activation="softmax" if
                                                            "Categorical" in cls else "sigmoid")])
    m.compile(optimizer=fdm.optimizers.Adam(0.05), loss=obj)
    h = m.fit(x, y, epochs=5, batch_size=32, verbose=0).history["loss"]
    assert h[-1] < 0.8 * h[0]
