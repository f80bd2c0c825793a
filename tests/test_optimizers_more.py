"""Tests for the optimizers beyond SGD/RMSprop/Adam (AdamW, Adagrad, Adadelta,
Adamax, Nadam, Lion), Keras's generic optimizer arguments (weight_decay,
clipnorm, clipvalue, global_clipnorm), learning-rate schedules, standalone
``apply_gradients`` on Variables, and their saving in Keras's layout.

Goldens marked "Keras <file>" are copied from Keras 3.15.1's
keras/src/optimizers/*_test.py and
keras/src/optimizers/schedules/learning_rate_schedule_test.py
(keras-team/keras), with Keras's tolerances.  Goldens marked "real Keras"
were printed by running Keras 3.15.1 (JAX backend, CPU) here: the script is
in the comment above each table.  The .keras fixtures come from
tests/fixtures/make_keras_optimizer_fixtures.py.  Nothing here imports keras.
"""
from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import warnings
import zipfile

import numpy as np
import pytest

import fastdense as fd
from fastdense import _core
from fastdense import optimizers as O
from fastdense import saving
from fastdense.optimizers import schedules as S

F32 = np.float32
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
needs_h5 = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                              reason="h5py (fastdense[h5]) is not installed")

ALL = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
       "Lamb"]


def apply(opt, grads, variables):
    opt.apply_gradients(zip([np.asarray(g, F32) for g in grads], variables))


# ------------------------------------------------- Keras *_test.py: single steps
SINGLE_STEP = {  # Keras <name>_test.py test_single_step: lr=0.5, g=[1, 6, 7, 2]
    "SGD": [0.5, -1.0, -0.5, 3.0],
    "RMSprop": [-0.5811, 0.4189, 1.4189, 2.4189],
    "Adam": [0.5, 1.5, 2.5, 3.5],
    "AdamW": [0.4980, 1.4960, 2.494, 3.492],
    "Adagrad": [0.5233, 1.5007, 2.5005, 3.5061],
    "Adadelta": [0.9993, 1.9993, 2.9993, 3.9993],
    "Adamax": [0.5, 1.5, 2.5, 3.5],
    "Nadam": [0.4686, 1.4686, 2.4686, 3.4686],
    "Lion": [0.5, 1.5, 2.5, 3.5],
    "Lamb": [-0.3693, 0.6306, 1.6306, 2.6306],
}


@pytest.mark.parametrize("name", ALL)
def test_single_step_keras_golden(name):
    opt = getattr(O, name)(learning_rate=0.5)
    v = fd.Variable([1.0, 2.0, 3.0, 4.0])
    apply(opt, [[1.0, 6.0, 7.0, 2.0]], [v])
    np.testing.assert_allclose(v.numpy(), SINGLE_STEP[name], rtol=1e-4, atol=1e-4)
    assert opt.iterations == 1


# ----------------------------------- Keras *_test.py: test_correctness_with_golden
def _tile(col):
    return np.tile(np.array(col)[:, None], (1, 10))


GOLDEN = {
    "SGD": (dict(nesterov=True), np.array(  # Keras sgd_test.py
        [[0.9999] * 10,
         [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
         [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
         [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
         [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599]])),
    "RMSprop": (dict(centered=True),  # Keras rmsprop_test.py
                _tile([0.9967, 0.9933, 0.9908, 0.9885, 0.9864])),
    "Adam": (dict(amsgrad=True),  # Keras adam_test.py
             _tile([0.999, 0.9982, 0.9974, 0.9965, 0.9955])),
    "AdamW": (dict(learning_rate=1.0, weight_decay=0.5, epsilon=2), np.array(  # adamw_test.py
        [[0.4998] * 10,
         [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
         [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
         [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
         [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113,
          -0.0159]])),
    "Adagrad": (dict(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6), np.array(
        [[0.9963] * 10,  # Keras adagrad_test.py
         [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
         [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
         [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
         [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]])),
    "Adadelta": (dict(learning_rate=1.0, rho=0.8, epsilon=1e-6),  # Keras adadelta_test.py
                 _tile([0.9978, 0.9947, 0.9915, 0.9882, 0.9849])),
    "Adamax": (dict(learning_rate=0.2, beta_1=0.85, beta_2=0.95, epsilon=1e-6), np.array(
        [[0.8] * 10,  # Keras adamax_test.py
         [0.6827, 0.6873, 0.6888, 0.6896, 0.6901, 0.6904, 0.6906, 0.6908, 0.6909, 0.691],
         [0.5333, 0.5407, 0.5431, 0.5444, 0.5451, 0.5456, 0.546, 0.5462, 0.5464, 0.5466],
         [0.368, 0.3773, 0.3804, 0.382, 0.3829, 0.3835, 0.384, 0.3843, 0.3846, 0.3848],
         [0.1933, 0.204, 0.2076, 0.2094, 0.2105, 0.2112, 0.2117, 0.2121, 0.2124, 0.2126]])),
    "Nadam": (dict(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5), np.array(
        [[0.4281] * 10,  # Keras nadam_test.py
         [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718,
          -0.1717],
         [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085,
          -0.7084],
         [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23,
          -1.2299],
         [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455,
          -1.7454]])),
    "Lion": ({}, _tile([0.999, 0.998, 0.997, 0.996, 0.995])),  # Keras lion_test.py
    "Lamb": ({}, _tile([0.999, 0.9982, 0.9974, 0.9965, 0.9955])),  # Keras lamb_test.py
}


def test_ftrl_keras_tests():
    # Keras ftrl_test.py: test_single_step, test_correctness_with_golden (Ftrl is
    # not in ALL: with a zero gradient it still moves w, so Keras has no
    # weight-decay test for it)
    v = fd.Variable([1.0, 2.0, 3.0, 4.0])
    apply(O.Ftrl(learning_rate=0.5), [[1.0, 6.0, 7.0, 2.0]], [v])
    np.testing.assert_allclose(v.numpy(), [0.2218, 1.3954, 2.3651, 2.8814], rtol=1e-4, atol=1e-4)
    opt = O.Ftrl(learning_rate=0.05, learning_rate_power=-0.2, initial_accumulator_value=0.4,
                 l1_regularization_strength=0.05, l2_regularization_strength=0.15,
                 l2_shrinkage_regularization_strength=0.01, beta=0.3)
    golden = np.array(
        [[0.0] * 10,
         [-0.0034, -0.0077, -0.0118, -0.0157, -0.0194, -0.023, -0.0263, -0.0294, -0.0325, -0.0354],
         [-0.0078, -0.0162, -0.0242, -0.0317, -0.0387, -0.0454, -0.0516, -0.0575, -0.0631, -0.0685],
         [-0.0121, -0.0246, -0.0363, -0.0472, -0.0573, -0.0668, -0.0757, -0.0842, -0.0922, -0.0999],
         [-0.0164, -0.0328, -0.0481, -0.0623, -0.0753, -0.0875, -0.099, -0.1098, -0.1201, -0.1299]])
    x = fd.Variable(np.ones(10, F32))
    apply(opt, [np.full(10, 0.01)], [x])
    for i in range(5):
        np.testing.assert_allclose(x.numpy(), golden[i], rtol=5e-4, atol=5e-4, err_msg=f"step {i}")
        apply(opt, [np.arange(0.1, 1.1, 0.1).astype(F32)], [x])
    for arg, value in (("initial_accumulator_value", -0.1), ("learning_rate_power", 0.5),
                       ("l1_regularization_strength", -1.0), ("beta", None)):
        if value is None:
            continue
        with pytest.raises(ValueError, match=f"`{arg}` needs to be"):
            O.Ftrl(**{arg: value})


@pytest.mark.parametrize("name", ALL)
def test_correctness_with_golden_keras(name):
    kw, golden = GOLDEN[name]
    opt = getattr(O, name)(**kw)
    x = fd.Variable(np.ones(10, F32))
    apply(opt, [np.full(10, 0.01)], [x])
    grads = np.arange(0.1, 1.1, 0.1).astype(F32)
    for i in range(5):
        np.testing.assert_allclose(x.numpy(), golden[i], rtol=5e-4, atol=5e-4,
                                   err_msg=f"step {i}")
        apply(opt, [grads], [x])


@pytest.mark.parametrize("name", ALL)
def test_weight_decay_and_exclusions_keras(name):
    # Keras <name>_test.py test_weight_decay: zero gradients, so only the decay moves var1
    var1, var2, var3 = fd.Variable(2.0), fd.Variable(2.0, name="exclude"), fd.Variable(2.0)
    zero = np.zeros((), F32)
    opt1 = getattr(O, name)(learning_rate=1.0, weight_decay=0.004)
    opt1.apply_gradients(zip([zero], [var1]))
    opt2 = getattr(O, name)(learning_rate=1.0, weight_decay=0.004)
    opt2.exclude_from_weight_decay(var_names=["exclude"])
    opt2.apply_gradients(zip([zero, zero], [var1, var2]))
    opt3 = getattr(O, name)(learning_rate=1.0, weight_decay=0.004)
    opt3.exclude_from_weight_decay(var_list=[var3])
    opt3.apply_gradients(zip([zero, zero], [var1, var3]))
    assert float(var1.numpy()) == pytest.approx(1.9760959, abs=1e-6)
    assert float(var2.numpy()) == pytest.approx(2.0, abs=1e-6)
    assert float(var3.numpy()) == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_clip_gradients_keras(name):
    # Keras <name>_test.py test_clip_norm / test_clip_value, optimizer_test.py
    cls = getattr(O, name)
    clipped = cls(clipnorm=1)._clip_gradients([np.array([100.0, 100.0])])
    np.testing.assert_allclose(clipped[0], [2 ** 0.5 / 2, 2 ** 0.5 / 2], rtol=1e-6)
    clipped = cls(clipvalue=1)._clip_gradients([np.array([100.0, 100.0])])
    np.testing.assert_allclose(clipped[0], [1.0, 1.0])
    grad = np.array([50.0, 100.0], F32)
    clipped = cls(global_clipnorm=1)._clip_gradients([grad])
    np.testing.assert_allclose(clipped[0], grad / np.linalg.norm(grad), rtol=1e-6)


def test_native_clipping_matches_keras_clip_formulas():
    # The same clippings applied natively by apply(): SGD(lr=1) moves w by -clip(g).
    for kw, g, want in ((dict(clipnorm=1), [100.0, 100.0], [2 ** 0.5 / 2] * 2),
                        (dict(clipvalue=1), [100.0, -0.5], [1.0, -0.5]),
                        (dict(global_clipnorm=1), [50.0, 100.0],
                         np.array([50.0, 100.0]) / np.linalg.norm([50.0, 100.0]))):
        v = fd.Variable([0.0, 0.0])
        apply(O.SGD(learning_rate=1.0, **kw), [g], [v])
        np.testing.assert_allclose(-v.numpy(), want, rtol=1e-6)


def test_clip_arguments_keras():
    # Keras optimizer_test.py test_clip_args
    assert O.SGD(learning_rate=1.0, clipnorm=0.1).clipnorm == 0.1
    assert O.SGD(learning_rate=1.0, clipvalue=0.1).clipvalue == 0.1
    assert O.SGD(learning_rate=1.0, global_clipnorm=0.1).global_clipnorm == 0.1
    for kw in (dict(clipnorm=0.1, clipvalue=0.1), dict(clipnorm=0.1, global_clipnorm=0.1)):
        with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and "
                                             "`global_clipnorm` can"):
            O.SGD(learning_rate=1.0, **kw)


def test_iterations_empty_gradients_and_callable_lr_keras():
    # Keras optimizer_test.py test_iterations_counter
    v = fd.Variable([[1.0, 2.0], [3.0, 4.0]])
    opt = O.Adam(learning_rate=1.0)
    assert opt.iterations == 0
    opt.apply_gradients([(np.ones((2, 2), F32), v)])
    opt.apply_gradients([(np.ones((2, 2), F32), v)])
    assert opt.iterations == 2
    # test_empty_gradients
    v = fd.Variable([[3.0, 4.0], [5.0, 6.0]])
    with pytest.raises(ValueError, match="No gradients provided for any variable."):
        O.SGD(learning_rate=1.0).apply_gradients([(None, v)])
    v2 = fd.Variable([[3.0, 4.0], [5.0, 6.0]])
    with pytest.warns(Warning):
        O.SGD(learning_rate=1.0).apply_gradients([(None, v), (np.ones((2, 2), F32), v2)])
    np.testing.assert_allclose(v.numpy(), [[3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_allclose(v2.numpy(), [[2.0, 3.0], [4.0, 5.0]])
    # test_callable_learning_rate (Keras calls a plain callable with no argument)
    v = fd.Variable([[1.0, 2.0], [3.0, 4.0]])
    opt = O.SGD(learning_rate=lambda: 0.1)
    opt.apply_gradients([(np.ones((2, 2), F32), v)])
    np.testing.assert_allclose(v.numpy(), [[0.9, 1.9], [2.9, 3.9]], rtol=1e-6)
    assert opt.iterations == 1
    # fastdense also takes lr(step): the step count before the update
    v = fd.Variable([1.0])
    opt = O.SGD(learning_rate=lambda step: 0.1 * (step + 1))
    for _ in range(3):
        opt.apply_gradients([(np.ones(1, F32), v)])
    np.testing.assert_allclose(v.numpy(), [1.0 - 0.1 - 0.2 - 0.3], rtol=1e-6)
    assert opt.learning_rate == pytest.approx(0.4)


def test_apply_without_variables_and_unknown_variables():
    v = fd.Variable([1.0, 2.0])
    opt = O.Adam()
    with pytest.raises(ValueError, match="must already be built"):
        opt.apply([np.ones(2, F32)])
    opt.build([v])
    opt.apply([np.ones(2, F32)])
    assert opt.iterations == 1
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply([np.ones(2, F32)], [fd.Variable([1.0, 2.0])])
    with pytest.raises(ValueError, match="one-to-on"):
        opt.apply([np.ones(2, F32), np.ones(2, F32)])


# ------------------------------------------- real-Keras sequences on two variables
# real Keras (JAX): for name, opt in KERAS_SEQ_OPTS (same constructors with
# keras.optimizers), v1 = keras.Variable([1, 2, 3, 4]), v2 = keras.Variable(
# [[-1, .5], [2, -3]]); step t = 0..4 applies g1 = [1, 6, 7, 2] * (t+1) * (-1)**t
# + 0.1 and g2 = (g1[::-1] * 0.3).reshape(2, 2) with opt.apply_gradients; the
# rows are [*v1, *v2.ravel()] after step 1 and after step 5.
def _seq_opts():
    return {
        "adamw": O.AdamW(learning_rate=0.1),
        "adamw_amsgrad": O.AdamW(learning_rate=0.1, weight_decay=0.05, beta_1=0.8, beta_2=0.95,
                                 amsgrad=True),
        "adagrad": O.Adagrad(learning_rate=0.1),
        "adagrad_init": O.Adagrad(learning_rate=0.2, initial_accumulator_value=0.5, epsilon=1e-3),
        "adadelta": O.Adadelta(learning_rate=1.0),
        "adadelta_rho": O.Adadelta(learning_rate=0.5, rho=0.7, epsilon=1e-4),
        "adamax": O.Adamax(learning_rate=0.1),
        "adamax_betas": O.Adamax(learning_rate=0.1, beta_1=0.7, beta_2=0.9, epsilon=1e-3),
        "nadam": O.Nadam(learning_rate=0.1),
        "nadam_betas": O.Nadam(learning_rate=0.1, beta_1=0.5, beta_2=0.67, epsilon=1e-5),
        "lion": O.Lion(learning_rate=0.1),
        "lion_betas": O.Lion(learning_rate=0.1, beta_1=0.5, beta_2=0.7),
        "sgd_wd_clipnorm": O.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.1, clipnorm=2.0),
        "rmsprop_clipvalue": O.RMSprop(learning_rate=0.1, clipvalue=3.0),
        "adam_global_clipnorm": O.Adam(learning_rate=0.1, global_clipnorm=5.0),
        "nadam_wd": O.Nadam(learning_rate=0.1, weight_decay=0.2),
        "lion_wd": O.Lion(learning_rate=0.1, weight_decay=0.3),
        "lamb": O.Lamb(learning_rate=0.1),
        "lamb_betas": O.Lamb(learning_rate=0.05, beta_1=0.5, beta_2=0.7, epsilon=1e-3),
        "lamb_wd_clipnorm": O.Lamb(learning_rate=0.1, weight_decay=0.3, clipnorm=1.0),
        "ftrl": O.Ftrl(learning_rate=0.1),
        "ftrl_all": O.Ftrl(learning_rate=0.05, learning_rate_power=-0.2,
                           initial_accumulator_value=0.4, l1_regularization_strength=0.05,
                           l2_regularization_strength=0.15,
                           l2_shrinkage_regularization_strength=0.01, beta=0.3),
        "ftrl_wd_clipvalue": O.Ftrl(learning_rate=0.1, l1_regularization_strength=0.5,
                                    weight_decay=0.1, clipvalue=3.0),
        "adam_expdecay": O.Adam(S.ExponentialDecay(0.1, 2, 0.5)),
        "sgd_piecewise": O.SGD(S.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01]), momentum=0.5),
        "adamw_cosine_warmup": O.AdamW(S.CosineDecay(0.01, 4, alpha=0.1, warmup_target=0.1,
                                                     warmup_steps=2), weight_decay=0.1),
        "rmsprop_polycycle": O.RMSprop(S.PolynomialDecay(0.1, 2, end_learning_rate=0.01,
                                                         power=2.0, cycle=True)),
        "adagrad_invtime_clipnorm": O.Adagrad(S.InverseTimeDecay(0.5, 2, 0.5, staircase=True),
                                              clipnorm=1.0),
    }


KERAS_SEQ = {
    "adamw": ([0.8996009230613708, 1.899200677871704, 2.898800849914551, 3.8984007835388184, -1.0995988845825195, 0.3998008072376251, 1.8992007970809937, -3.0987985134124756],
        [0.8852038383483887, 1.896708607673645, 2.895094633102417, 3.887324094772339, -1.1026837825775146, 0.40009042620658875, 1.896708607673645, -3.106802463531494]),
    "adamw_amsgrad": ([0.8950000405311584, 1.8899999856948853, 2.884999990463257, 3.880000114440918, -1.09499990940094, 0.39750000834465027, 1.8899999856948853, -3.0849997997283936],
        [0.8666211366653442, 1.8548005819320679, 2.8304169178009033, 3.800140857696533, -1.0761024951934814, 0.3922950327396393, 1.8548005819320679, -3.0343737602233887]),
    "adagrad": ([0.9038925766944885, 1.9001340866088867, 2.900099039077759, 3.9011149406433105, -1.0893728733062744, 0.40108418464660645, 1.9014604091644287, -3.0722012519836426],
        [0.9114355444908142, 1.9138975143432617, 2.9140236377716064, 3.912522315979004, -1.079575538635254, 0.4148712754249573, 1.915036678314209, -3.0701851844787598]),
    "adagrad_init": ([0.8318109512329102, 1.801332950592041, 2.8009865283966064, 3.810476064682007, -1.132970929145813, 0.31020498275756836, 1.8134666681289673, -3.0845112800598145],
        [0.842048168182373, 1.8287107944488525, 2.8287267684936523, 3.8319778442382812, -1.1246943473815918, 0.336590439081192, 1.8390147686004639, -3.1041600704193115]),
    "adadelta": ([0.9985857605934143, 1.998585820198059, 2.9985857009887695, 3.9985857009887695, -1.001414179801941, 0.4985857903957367, 1.998585820198059, -3.0014142990112305],
        [0.9977354407310486, 1.997841238975525, 2.9978439807891846, 3.9977986812591553, -1.0022014379501343, 0.4978441894054413, 1.997841238975525, -3.0022647380828857]),
    "adadelta_rho": ([0.9908725619316101, 1.9908713102340698, 2.9908714294433594, 3.9908716678619385, -1.0091248750686646, 0.4908716380596161, 1.990871787071228, -3.0091147422790527],
        [0.9854826331138611, 1.986041784286499, 2.986057996749878, 3.9858155250549316, -1.014180064201355, 0.48605847358703613, 1.9860422611236572, -3.0145015716552734]),
    "adamax": ([0.9000000357627869, 1.899999976158142, 2.9000000953674316, 3.9000000953674316, -1.0999999046325684, 0.40000003576278687, 1.899999976158142, -3.0999999046325684],
        [0.8953684568405151, 1.903714895248413, 2.9039509296417236, 3.9003992080688477, -1.0996007919311523, 0.4039508104324341, 1.903714895248413, -3.1046316623687744]),
    "adamax_betas": ([0.9000908136367798, 1.9000164270401, 2.9000141620635986, 3.900047540664673, -1.0998414754867554, 0.4000469148159027, 1.9000545740127563, -3.0996978282928467],
        [0.8994157910346985, 1.9067611694335938, 2.906968832015991, 3.903843641281128, -1.096056580543518, 0.4069981575012207, 1.9067953824996948, -3.1003925800323486]),
    "nadam": ([0.8937212228775024, 1.8937212228775024, 2.893721103668213, 3.893721103668213, -1.1062787771224976, 0.39372122287750244, 1.8937212228775024, -3.106278657913208],
        [0.8910987973213196, 1.8987098932266235, 2.8989245891571045, 3.8956878185272217, -1.1043121814727783, 0.39892464876174927, 1.8987098932266235, -3.108901023864746]),
    "nadam_betas": ([0.8855049014091492, 1.8855040073394775, 2.8855040073394775, 3.8855044841766357, -1.1144943237304688, 0.38550442457199097, 1.8855044841766357, -3.114492654800415],
        [0.8788623213768005, 1.8864781856536865, 2.886692523956299, 3.883457660675049, -1.1165415048599243, 0.38669294118881226, 1.8864786624908447, -3.121135711669922]),
    "lion": ([0.8999999761581421, 1.899999976158142, 2.9000000953674316, 3.9000000953674316, -1.100000023841858, 0.4000000059604645, 1.899999976158142, -3.0999999046325684],
        [0.8999999761581421, 1.899999976158142, 2.9000000953674316, 3.9000000953674316, -1.100000023841858, 0.4000000059604645, 1.899999976158142, -3.0999999046325684]),
    "lion_betas": ([0.8999999761581421, 1.899999976158142, 2.9000000953674316, 3.9000000953674316, -1.100000023841858, 0.4000000059604645, 1.899999976158142, -3.0999999046325684],
        [0.8999999761581421, 1.899999976158142, 2.9000000953674316, 3.9000000953674316, -1.100000023841858, 0.4000000059604645, 1.899999976158142, -3.0999999046325684]),
    "sgd_wd_clipnorm": ([0.967216432094574, 1.8536548614501953, 2.8229424953460693, 3.916504144668579, -1.0334959030151367, 0.3479424715042114, 1.8536548614501953, -2.992783546447754],
        [0.8876280188560486, 1.59774911403656, 2.500565767288208, 3.6924242973327637, -1.062525987625122, 0.12309060245752335, 1.5977494716644287, -2.916332483291626]),
    "rmsprop_clipvalue": ([0.6837723255157471, 1.6837722063064575, 2.683772325515747, 3.683772325515747, -1.3162274360656738, 0.1837722659111023, 1.683772325515747, -3.3162262439727783],
        [0.7277221083641052, 1.7353495359420776, 2.735349416732788, 3.756040334701538, -1.2827680110931396, 0.25530314445495605, 1.762713074684143, -3.294128656387329]),
    "adam_global_clipnorm": ([0.9000012278556824, 1.900000810623169, 2.900000810623169, 3.900001049041748, -1.0999983549118042, 0.4000009596347809, 1.900001049041748, -3.0999972820281982],
        [0.8394665718078613, 1.8567460775375366, 2.857250452041626, 3.849745273590088, -1.1502538919448853, 0.35725080966949463, 1.8567464351654053, -3.160531759262085]),
    "nadam_wd": ([0.8737212419509888, 1.853721261024475, 2.833721160888672, 3.813721179962158, -1.0862787961959839, 0.3837212324142456, 1.853721261024475, -3.046278715133667],
        [0.8001124262809753, 1.7113780975341797, 2.615506172180176, 3.5163025856018066, -1.003301739692688, 0.3557042181491852, 1.7113780975341797, -2.815570592880249]),
    "lion_wd": ([0.8700000047683716, 1.840000033378601, 2.81000018119812, 3.7800002098083496, -1.0700000524520874, 0.3850000202655792, 1.840000033378601, -3.009999990463257],
        [0.7643821239471436, 1.623116135597229, 2.4818501472473145, 3.3405842781066895, -0.9530860185623169, 0.33501505851745605, 1.623116135597229, -2.6705541610717773]),
    "lamb": ([0.726138710975647, 1.726138710975647, 2.7261385917663574, 3.7261385917663574, -1.1887458562850952, 0.3112541437149048, 1.8112541437149048, -3.1887457370758057],
        [0.6006584763526917, 1.7220674753189087, 2.7255232334136963, 3.673603057861328, -1.1868689060211182, 0.35193490982055664, 1.8493528366088867, -3.2414281368255615]),
    "lamb_betas": ([0.8631359338760376, 1.8630340099334717, 2.8630309104919434, 3.863076686859131, -1.0943559408187866, 0.4055386483669281, 1.905545949935913, -3.0942201614379883],
        [0.8337504863739014, 1.8601646423339844, 2.8609135150909424, 3.8496456146240234, -1.0935404300689697, 0.4144546687602997, 1.9139235019683838, -3.104827404022217]),
    "lamb_wd_clipnorm": ([0.7043546438217163, 1.6743545532226562, 2.6443545818328857, 3.6143546104431152, -1.1530835628509521, 0.3019164800643921, 1.7569165229797363, -3.093083381652832],
        [0.14498695731163025, 1.5815725326538086, 2.4571146965026855, 3.0653955936431885, -1.1059778928756714, 0.38135331869125366, 1.6560851335525513, -3.0973129272460938]),
    "ftrl": ([0.6276030540466309, 1.796591877937317, 2.766613483428955, 3.3054912090301514, -0.6407665014266968, 0.32765713334083557, 1.5609034299850464, -0.9965612292289734],
        [0.6351460218429565, 1.810355305671692, 2.780538320541382, 3.3168983459472656, -0.6309691667556763, 0.341444194316864, 1.574479579925537, -0.9945449829101562]),
    "ftrl_all": ([0.14762358367443085, 0.9059351086616516, 1.4840502738952637, 1.208142638206482, -0.1188853532075882, 0.09598825126886368, 0.521735429763794, -0.11292355507612228],
        [0.11184851080179214, 0.8217326998710632, 1.3919340372085571, 1.1589374542236328, -0.14181213080883026, 0.05192730203270912, 0.48058560490608215, -0.13017241656780243]),
    "ftrl_wd_clipvalue": ([0.5766807198524475, 1.6564158201217651, 2.542635440826416, 3.24790358543396, -0.5643216371536255, 0.30017173290252686, 1.517385721206665, -0.8779218196868896],
        [0.5837836265563965, 1.6625758409500122, 2.5424964427948, 3.2425057888031006, -0.5465651154518127, 0.3216080069541931, 1.5288817882537842, -0.8649420142173767]),
    "adam_expdecay": ([0.9000009298324585, 1.9000006914138794, 2.900000810623169, 3.900000810623169, -1.0999988317489624, 0.40000081062316895, 1.900000810623169, -3.0999984741210938],
        [0.9033161401748657, 1.9100440740585327, 2.9102349281311035, 3.9073657989501953, -1.092633843421936, 0.4102349877357483, 1.9100443124771118, -3.0966832637786865]),
    "sgd_piecewise": ([0.8899999856948853, 1.3899999856948853, 2.2899999618530273, 3.7899999618530273, -1.062999963760376, 0.28700000047683716, 1.8170000314712524, -3.0329999923706055],
        [1.113374948501587, 2.957124948501587, 4.1258745193481445, 4.2821245193481445, -0.9153624773025513, 0.8377624750137329, 2.287137269973755, -2.96598744392395]),
    "adamw_cosine_warmup": ([0.9890000820159912, 1.9880001544952393, 2.986999988555908, 3.9860000610351562, -1.0089999437332153, 0.4895000755786896, 1.9880001544952393, -3.0069997310638428],
        [0.9418944716453552, 1.9213179349899292, 2.8912649154663086, 3.8567545413970947, -0.9915874600410461, 0.46709364652633667, 1.9213179349899292, -2.936779499053955]),
    "rmsprop_polycycle": ([0.6837723255157471, 1.6837722063064575, 2.683772325515747, 3.683772325515747, -1.3162274360656738, 0.1837722659111023, 1.683772325515747, -3.3162262439727783],
        [0.7615352869033813, 1.765055537223816, 2.7651524543762207, 3.7636818885803223, -1.2363178730010986, 0.26515206694602966, 1.7650556564331055, -3.2384634017944336]),
    "adagrad_invtime_clipnorm": ([0.8305405378341675, 1.5528897047042847, 2.540677785873413, 3.7166712284088135, -1.2833287715911865, 0.04067772626876831, 1.5528898239135742, -3.169459342956543],
        [0.8988115787506104, 1.7542659044265747, 2.746530055999756, 3.8468196392059326, -1.1531802415847778, 0.2465299814939499, 1.7542660236358643, -3.1011881828308105]),
}


def _seq_grads(t):
    g1 = (np.array([1.0, 6.0, 7.0, 2.0], F32) * (t + 1) * (-1.0) ** t + 0.1).astype(F32)
    return g1, (g1[::-1] * F32(0.3)).reshape(2, 2)


@pytest.mark.parametrize("name", list(KERAS_SEQ))
def test_two_variable_sequences_match_real_keras(name):
    opt = _seq_opts()[name]
    v1 = fd.Variable([1.0, 2.0, 3.0, 4.0])
    v2 = fd.Variable([[-1.0, 0.5], [2.0, -3.0]])
    rows = []
    for t in range(5):
        g1, g2 = _seq_grads(t)
        opt.apply_gradients(zip([g1, g2], [v1, v2]))
        rows.append(np.concatenate([v1.numpy(), v2.numpy().ravel()]))
    first, last = KERAS_SEQ[name]
    np.testing.assert_allclose(rows[0], first, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rows[4], last, rtol=2e-6, atol=1e-7)
    assert opt.iterations == 5


def test_optimizer_variables_match_real_keras_order():
    # real Keras: opt.variables after the "nadam" and "adamax_betas" sequences above
    opt = _seq_opts()["nadam"]
    v1, v2 = fd.Variable([1.0, 2.0, 3.0, 4.0]), fd.Variable([[-1.0, 0.5], [2.0, -3.0]])
    for t in range(5):
        opt.apply_gradients(zip(_seq_grads(t), [v1, v2]))
    names = [v.name for v in opt.variables]
    # iteration, learning_rate, (momentum, velocity) per variable (named after
    # the variable, as Keras names slots), u_product last (Keras: an unnamed
    # variable); paths under the optimizer's name
    a, b = v1.path.replace("/", "_"), v2.path.replace("/", "_")
    assert a != b
    assert names == ["iteration", "learning_rate", f"{a}_momentum", f"{a}_velocity",
                     f"{b}_momentum", f"{b}_velocity", "u_product"]
    assert [v.path for v in opt.variables] == [f"{opt.name}/{n}" for n in names]
    np.testing.assert_allclose(opt.variables[2].numpy(), [0.34376102685928345,
                               1.857811689376831, 2.160621166229248, 0.646571159362793],
                               rtol=1e-6)
    assert float(opt.variables[-1].numpy()) == pytest.approx(0.031461525708436966, rel=1e-6)
    opt = _seq_opts()["adamax_betas"]
    v1, v2 = fd.Variable([1.0, 2.0, 3.0, 4.0]), fd.Variable([[-1.0, 0.5], [2.0, -3.0]])
    for t in range(5):
        opt.apply_gradients(zip(_seq_grads(t), [v1, v2]))
    vs = opt.variables
    a, b = v1.path.replace("/", "_"), v2.path.replace("/", "_")
    assert [v.name for v in vs] == ["iteration", "learning_rate", f"{a}_momentum", f"{a}_norm",
                                    f"{b}_momentum", f"{b}_norm"]
    assert int(vs[0].numpy()) == 5
    np.testing.assert_allclose(vs[2].numpy(), [1.050423145, 5.886574268, 6.853803158,
                                               2.017652988], rtol=1e-6)
    np.testing.assert_allclose(vs[3].numpy(), [5.099999905, 30.100000381, 35.099998474,
                                               10.100000381], rtol=1e-6)
    np.testing.assert_allclose(vs[4].numpy().ravel(), [0.605295897, 2.056141138, 1.765972614,
                                                       0.315126956], rtol=1e-6)
    # a schedule: no learning_rate variable (Keras fit test: one variable, iterations)
    opt = O.Adam(S.ExponentialDecay(0.05, 1, 0.9))
    assert len(opt.variables) == 1 and int(opt.variables[0].numpy()) == 0


# ------------------------------------- numpy re-implementation of Keras 3 formulas
class KerasRef:
    """Keras 3.15's base_optimizer clipping and weight decay and the
    update_step of adamw/adagrad/adadelta/adamax/nadam/lion/lamb.py in float32
    numpy, same operation order, over a list of variables."""

    def __init__(self, name, cfg, shapes):
        self.name, self.c, self.it = name, cfg, 0
        z = [np.zeros(s, F32) for s in shapes]
        self.m = [a.copy() for a in z]
        self.v = [a.copy() for a in z]
        if name == "Adagrad":
            self.v = [np.full(s, F32(cfg.get("initial_accumulator_value", 0.1))) for s in shapes]
        self.u_product = F32(1.0)

    def clip(self, grads):
        c = self.c
        if c.get("clipnorm"):
            out = []
            for g in grads:
                l2sum = F32(np.sum(np.square(g.astype(np.float64))))
                l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
                out.append((g * F32(c["clipnorm"])) / np.maximum(l2norm, F32(c["clipnorm"])))
            return out
        if c.get("global_clipnorm"):
            norm = np.sqrt(F32(sum(np.sum(np.square(g.astype(np.float64))) for g in grads)))
            cn = F32(c["global_clipnorm"])
            scale = cn * np.minimum(F32(1) / norm, F32(1.0 / c["global_clipnorm"])) + (norm - norm)
            return [g * scale for g in grads]
        if c.get("clipvalue"):
            return [np.clip(g, -F32(c["clipvalue"]), F32(c["clipvalue"])) for g in grads]
        return grads

    def step(self, xs, grads):
        c, f, name = self.c, F32, self.name
        lr = f(c["learning_rate"])
        grads = self.clip([g.astype(F32) for g in grads])
        if c.get("weight_decay"):
            wd = f(c["weight_decay"])
            xs = [x - x * wd * lr for x in xs]
        t = f(self.it + 1)
        eps = f(c.get("epsilon", 1e-7))
        b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.99 if name == "Lion" else 0.999)
        if name == "Nadam":
            self.u_product = self.u_product * f(b1) * (f(1.0) - f(0.5) * np.power(f(0.96), t))
        out = []
        for i, (x, g) in enumerate(zip(xs, grads)):
            m, v = self.m[i], self.v[i]
            if name == "AdamW":
                alpha = lr * np.sqrt(f(1) - np.power(f(b2), t)) / (f(1) - np.power(f(b1), t))
                m = m + (g - m) * f(1 - b1)
                v = v + (np.square(g) - v) * f(1 - b2)
                x = x - (m * alpha) / (np.sqrt(v) + eps)
            elif name == "Adagrad":
                v = v + np.square(g)
                x = x - (lr * g) / np.sqrt(v + eps)
            elif name == "Adadelta":
                rho = c.get("rho", 0.95)
                m = f(rho) * m + f(1 - rho) * np.square(g)   # accumulated_grad
                delta = -((np.sqrt(v + eps) * g) / np.sqrt(m + eps))
                v = f(rho) * v + f(1 - rho) * np.square(delta)  # accumulated_delta_var
                x = x + lr * delta
            elif name == "Adamax":
                m = m + (g - m) * f(1 - b1)
                v = np.maximum(f(b2) * v, np.abs(g))
                x = x - (lr * m) / ((f(1) - np.power(f(b1), t)) * (v + eps))
            elif name == "Nadam":
                fb1, fb2 = f(b1), f(b2)
                u_t = fb1 * (f(1.0) - f(0.5) * np.power(f(0.96), t))
                u_t_1 = fb1 * (f(1.0) - f(0.5) * np.power(f(0.96), t + f(1)))
                upt1 = self.u_product * u_t_1
                m = m + (g - m) * (f(1) - fb1)
                v = v + (np.square(g) - v) * (f(1) - fb2)
                m_hat = (u_t_1 * m) / (f(1) - upt1) + ((f(1) - u_t) * g) / (f(1) - self.u_product)
                v_hat = v / (f(1) - np.power(fb2, t))
                x = x - (m_hat * lr) / (np.sqrt(v_hat) + eps)
            elif name == "Lion":
                fb1, fb2 = f(b1), f(b2)
                x = x - lr * np.sign(m * fb1 + g * (f(1.0) - fb1))
                m = m * fb2 + g * (f(1.0) - fb2)
            elif name == "Lamb":
                m = m + (g - m) * f(1 - b1)
                v = v + (np.square(g) - v) * f(1 - b2)
                update = (m / (f(1) - np.power(f(b1), t))) / (
                    np.sqrt(v / (f(1) - np.power(f(b2), t))) + eps)
                w_norm = np.sqrt(f(np.sum(np.square(x.astype(np.float64)))))
                u_norm = np.sqrt(f(np.sum(np.square(update.astype(np.float64)))))
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else f(1)
                x = x - (f(ratio) * lr) * update
            self.m[i], self.v[i] = m, v
            out.append(x.astype(F32))
        self.it += 1
        return out


REF_CASES = {
    "adamw": ("AdamW", dict(learning_rate=0.01, weight_decay=0.05)),
    "adamw_clipnorm": ("AdamW", dict(learning_rate=0.01, weight_decay=0.004, clipnorm=0.3)),
    "adagrad": ("Adagrad", dict(learning_rate=0.05)),
    "adagrad_globalclip": ("Adagrad", dict(learning_rate=0.05, initial_accumulator_value=0.0,
                                           global_clipnorm=2.0)),
    "adadelta": ("Adadelta", dict(learning_rate=1.0)),
    "adadelta_clipvalue": ("Adadelta", dict(learning_rate=0.5, rho=0.6, epsilon=1e-3,
                                            clipvalue=0.5)),
    "adamax": ("Adamax", dict(learning_rate=0.01)),
    "adamax_wd": ("Adamax", dict(learning_rate=0.01, beta_1=0.5, weight_decay=0.1)),
    "nadam": ("Nadam", dict(learning_rate=0.01)),
    "nadam_clipnorm": ("Nadam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.9, clipnorm=1.0)),
    "lion": ("Lion", dict(learning_rate=0.01)),
    "lion_globalclip_wd": ("Lion", dict(learning_rate=0.01, beta_1=0.95, weight_decay=0.2,
                                        global_clipnorm=0.5)),
    "lamb": ("Lamb", dict(learning_rate=0.01)),
    "lamb_clipvalue_wd": ("Lamb", dict(learning_rate=0.02, beta_1=0.8, weight_decay=0.1,
                                       clipvalue=0.5)),
}


@pytest.mark.parametrize("case", list(REF_CASES))
def test_many_steps_match_numpy_keras_formulas(case):
    """25 steps on two variables (kernel 17x13, bias 13, i.e. a Dense layer's
    segments) through the native whole-step entry point, against the numpy
    reference of Keras's formulas."""
    name, cfg = REF_CASES[case]
    rng = np.random.default_rng(sorted(REF_CASES).index(case))
    shapes = [(17, 13), (13,)]
    xs = [rng.standard_normal(s).astype(F32) for s in shapes]
    opt = getattr(O, name)(**cfg)
    variables = [fd.Variable(x) for x in xs]
    ref = KerasRef(name, cfg, shapes)
    for t in range(25):
        gs = [(rng.standard_normal(s) * 10.0 ** rng.uniform(-3, 1, s)).astype(F32)
              for s in shapes]
        gs[0][rng.random(shapes[0]) < 0.05] = 0
        xs = ref.step(xs, gs)
        opt.apply_gradients(zip(gs, variables))
        for v, x in zip(variables, xs):
            np.testing.assert_allclose(v.numpy(), x, rtol=2e-5, atol=2e-6, err_msg=f"step {t}")


def test_spec_codes_slots_and_state_init():
    kinds = {"Adagrad": (3, 1, 0), "Adadelta": (4, 2, 0), "Adamax": (5, 2, 0),
             "Nadam": (6, 2, 1), "Lion": (7, 1, 0), "AdamW": (2, 2, 0), "Lamb": (8, 2, 0),
             "Ftrl": (9, 2, 0)}
    for name, (kind, slots, scalars) in kinds.items():
        spec = getattr(O, name)()._spec()
        assert (spec.kind, spec.slots(), spec.scalars()) == (kind, slots, scalars)
        assert spec.state_size(10) == slots * 10 + scalars
    st = _core.optimizer_init_state(O.Adagrad(initial_accumulator_value=0.3)._spec(), 4)
    np.testing.assert_allclose(st, 0.3, rtol=1e-7)
    st = _core.optimizer_init_state(O.Nadam()._spec(), 3)
    np.testing.assert_array_equal(st, [0, 0, 0, 0, 0, 0, 1])
    spec = O.AdamW(clipnorm=2.0)._spec()
    assert spec.weight_decay == pytest.approx(0.004) and spec.clipnorm == 2.0
    assert O.SGD(clipnorm=-1.0)._spec().clipnorm == 0.0  # Keras clips only when > 0


def test_native_update_is_deterministic_across_thread_counts():
    """Clipping norms are summed per fixed chunk, then in chunk order: the
    same bits with 1 or several threads."""
    rng = np.random.default_rng(3)
    n = 3 * (1 << 14) + 123
    x0 = rng.standard_normal(n).astype(F32)
    g = rng.standard_normal(n).astype(F32)
    segs = [(0, 40000, True), (40000, n, False)]
    results = []
    prev = fd.get_num_threads()
    try:
        for threads in (1, 2, 4):
            fd.set_num_threads(threads)
            for opt in (O.Adam(global_clipnorm=1.0, weight_decay=0.1), O.Nadam(clipnorm=3.0)):
                spec = opt._spec()
                p, st = x0.copy(), _core.optimizer_init_state(spec, n)
                for it in range(3):
                    _core.optimizer_apply(spec, it, p, st, g, segs)
                results.append((threads, type(opt).__name__, p.tobytes(), st.tobytes()))
    finally:
        fd.set_num_threads(prev)
    for name in ("Adam", "Nadam"):
        runs = [r for r in results if r[1] == name]
        assert all(r[2] == runs[0][2] and r[3] == runs[0][3] for r in runs), name


def test_optimizer_apply_argument_validation():
    spec = O.Adam()._spec()
    p, g = np.zeros(4, F32), np.zeros(4, F32)
    st = np.zeros(8, F32)
    with pytest.raises(ValueError, match="segments"):
        _core.optimizer_apply(spec, 0, p, st, g, [(2, 4, True), (0, 2, True)])
    with pytest.raises(ValueError, match="segments"):
        _core.optimizer_apply(spec, 0, p, st, g, [(0, 5, True)])
    with pytest.raises(ValueError, match="state"):
        _core.optimizer_apply(O.Nadam()._spec(), 0, p, st, g, [(0, 4, True)])


# ------------------------------------------------------------------- schedules
def test_schedules_keras_test_values():
    # Keras learning_rate_schedule_test.py
    assert S.ExponentialDecay(0.05, 10, 0.96)(5) == pytest.approx(0.05 * 0.96 ** 0.5, rel=1e-6)
    ed = S.ExponentialDecay(0.1, 3, 0.96, staircase=True)
    for step, want in ((1, 0.1), (2, 0.1), (100, 0.1 * 0.96 ** (100 // 3))):
        assert ed(step) == pytest.approx(want, rel=1e-6)
    pc = S.PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001])
    for step, want in ((-999.0, 1.0), (100, 1.0), (105, 0.1), (110, 0.1), (120, 0.01),
                       (999, 0.001)):
        assert pc(step) == pytest.approx(want, rel=1e-6)
    pc = S.PiecewiseConstantDecay([1, 2, 3], [0.4, 0.5, 0.6, 0.7])
    for step, want in enumerate([0.4, 0.4, 0.5, 0.6, 0.7]):
        assert pc(np.int64(step)) == pytest.approx(want, rel=1e-6)
    lr, end = 0.05, 0.001
    assert S.PolynomialDecay(lr, 10, 0.0)(5) == pytest.approx(lr * 0.5, rel=1e-6)
    assert S.PolynomialDecay(lr, 10, end)(10) == pytest.approx(end, rel=1e-6)
    assert S.PolynomialDecay(lr, 10, end)(5) == pytest.approx((lr + end) * 0.5, rel=1e-6)
    assert S.PolynomialDecay(lr, 10, end)(15) == pytest.approx(end, rel=1e-6)
    assert S.PolynomialDecay(lr, 10, end, cycle=True)(15) == pytest.approx(
        (lr - end) * 0.25 + end, rel=1e-6)
    assert S.PolynomialDecay(lr, 10, 0.0, power=0.5)(5) == pytest.approx(lr * 0.5 ** 0.5,
                                                                         rel=1e-6)
    assert S.PolynomialDecay(lr, 10, end, power=0.5, cycle=True)(15) == pytest.approx(
        (lr - end) * 0.25 ** 0.5 + end, rel=1e-6)
    assert S.PolynomialDecay(0.001, 10, cycle=True)(0) == pytest.approx(0.001, rel=1e-6)
    for i in range(11):
        assert S.InverseTimeDecay(0.1, 10, 0.96)(float(i)) == pytest.approx(
            0.1 / (1 + i / 10 * 0.96), rel=1e-6)
        assert S.InverseTimeDecay(0.1, 10, 0.96, staircase=True)(float(i)) == pytest.approx(
            0.1 / (1 + 0.96 * (i // 10)), rel=1e-6)

    def np_cosine(step, decay_steps, alpha=0.0):
        step = min(step, decay_steps)
        return (1.0 - alpha) * 0.5 * (1.0 + math.cos(math.pi * step / decay_steps)) + alpha

    for step in range(0, 1500, 250):
        assert S.CosineDecay(1.0, 1000)(step) == pytest.approx(np_cosine(step, 1000), abs=1e-6)
        assert S.CosineDecay(1.0, 1000, 0.1)(step) == pytest.approx(
            np_cosine(step, 1000, 0.1), abs=1e-6)
        assert S.CosineDecay(0.0, 10, warmup_target=10.0, warmup_steps=1500)(step) == \
            pytest.approx(step / 1500 * 10.0, rel=1e-6)
    for step in range(0, 3000, 250):
        want = step / 2000 * 10.0 if step < 2001 else 10.0 * np_cosine(step - 2000, 1000)
        assert S.CosineDecay(0.0, 1000, warmup_target=10.0, warmup_steps=2000)(step) == \
            pytest.approx(want, rel=1e-6, abs=1e-6)


# real Keras: float(schedule(keras.ops.convert_to_tensor(t, dtype="int32"))) for t = 0..12
KERAS_SCHEDULES = {
    "exp": (lambda: S.ExponentialDecay(0.1, 3, 0.7), None),
    "exp_stair": (lambda: S.ExponentialDecay(0.1, 3, 0.7, staircase=True), None),
    "piecewise": (lambda: S.PiecewiseConstantDecay([2, 5, 9], [0.3, 0.2, 0.1, 0.05]), None),
    "poly": (lambda: S.PolynomialDecay(0.1, 8, end_learning_rate=0.01, power=2.0), None),
    "poly_cycle": (lambda: S.PolynomialDecay(0.1, 4, end_learning_rate=0.01, power=0.5,
                                             cycle=True), None),
    "invtime": (lambda: S.InverseTimeDecay(0.2, 3, 0.5), None),
    "invtime_stair": (lambda: S.InverseTimeDecay(0.2, 3, 0.5, staircase=True), None),
    "cosine": (lambda: S.CosineDecay(0.1, 10, alpha=0.2), None),
    "cosine_warmup": (lambda: S.CosineDecay(0.0, 6, alpha=0.1, warmup_target=0.2,
                                            warmup_steps=4), None),
    "restarts": (lambda: S.CosineDecayRestarts(0.1, 3, t_mul=2.0, m_mul=0.5, alpha=0.1), None),
    "restarts_t1": (lambda: S.CosineDecayRestarts(0.1, 3, t_mul=1.0, m_mul=0.9), None),
}
KERAS_SCHEDULE_VALUES = {
    "exp": [0.10000000149011612, 0.0887904018163681, 0.07883735746145248, 0.07000000029802322, 0.06215327978134155, 0.05518614873290062, 0.04899999871850014, 0.04350729659199715, 0.038630302995443344, 0.034299999475479126, 0.030455106869339943, 0.027041209861636162, 0.02400999888777733],
    "exp_stair": [0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.07000000029802322, 0.07000000029802322, 0.07000000029802322, 0.04899999871850014, 0.04899999871850014, 0.04899999871850014, 0.034299999475479126, 0.034299999475479126, 0.034299999475479126, 0.02400999888777733],
    "piecewise": [0.30000001192092896, 0.30000001192092896, 0.30000001192092896, 0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806],
    "poly": [0.10000000149011612, 0.07890625298023224, 0.06062500178813934, 0.04515624791383743, 0.032499998807907104, 0.02265625074505806, 0.015625, 0.011406250298023224, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582],
    "poly_cycle": [0.10000000149011612, 0.08794228732585907, 0.07363960891962051, 0.054999999701976776, 0.009999999776482582, 0.06511352211236954, 0.054999999701976776, 0.04181980341672897, 0.009999999776482582, 0.054999999701976776, 0.04674234986305237, 0.03598076105117798, 0.009999999776482582],
    "invtime": [0.20000000298023224, 0.17142857611179352, 0.14999999105930328, 0.13333334028720856, 0.11999999731779099, 0.10909091681241989, 0.10000000149011612, 0.09230770170688629, 0.08571428060531616, 0.07999999821186066, 0.07500000298023224, 0.07058823108673096, 0.06666667014360428],
    "invtime_stair": [0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 0.13333334028720856, 0.13333334028720856, 0.13333334028720856, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.07999999821186066, 0.07999999821186066, 0.07999999821186066, 0.06666667014360428],
    "cosine": [0.10000000149011612, 0.09804226458072662, 0.09236067533493042, 0.08351141214370728, 0.07236067950725555, 0.05999999865889549, 0.04763931781053543, 0.03648859262466431, 0.027639318257570267, 0.021957742050290108, 0.020000001415610313, 0.020000001415610313, 0.020000001415610313],
    "cosine_warmup": [0.0, 0.05000000074505806, 0.10000000149011612, 0.15000000596046448, 0.20000000298023224, 0.1879422962665558, 0.1550000011920929, 0.10999999195337296, 0.06499999016523361, 0.032057713717222214, 0.020000001415610313, 0.020000001415610313, 0.020000001415610313],
    "restarts": [0.10000000149011612, 0.07750000059604645, 0.032499995082616806, 0.055000003427267075, 0.05198557302355766, 0.04374999925494194, 0.032499998807907104, 0.021250003948807716, 0.01301442738622427, 0.032499998807907104, 0.032116666436195374, 0.030992785468697548, 0.029204953461885452],
    "restarts_t1": [0.10000000149011612, 0.07500000298023224, 0.02499999664723873, 0.08999999612569809, 0.06749999523162842, 0.02250000648200512, 0.08099999278783798, 0.06075000762939453, 0.0202499907463789, 0.07289998978376389, 0.05467500165104866, 0.018224989995360374, 0.06560999155044556],
}


@pytest.mark.parametrize("name", list(KERAS_SCHEDULES))
def test_schedule_values_match_real_keras(name):
    sched = KERAS_SCHEDULES[name][0]()
    want = np.array(KERAS_SCHEDULE_VALUES[name], F32)
    got = sched(np.arange(13))
    assert got.dtype == F32
    np.testing.assert_allclose(got, want, rtol=3e-7)  # float32 pow/cos: within an ulp
    # scalar steps give the same values as the vectorized evaluation
    np.testing.assert_array_equal([sched(int(t)) for t in range(13)], got)
    back = S.deserialize(json.loads(json.dumps(S.serialize(sched))))
    assert type(back) is type(sched) and back.get_config() == sched.get_config()


def test_schedule_validation_and_base_class():
    for cls in (S.ExponentialDecay, S.InverseTimeDecay):
        with pytest.raises(ValueError, match=r"Argument `decay_steps` must be > 0. "
                                             r"Received: decay_steps=0"):
            cls(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="Argument `decay_steps` must be > 0"):
        S.CosineDecay(0.1, -1)
    with pytest.raises(ValueError, match="Argument `first_decay_steps` must be > 0"):
        S.CosineDecayRestarts(0.1, 0)
    with pytest.raises(ValueError, match="The length of boundaries should be 1 less than the "
                                         "length of values"):
        S.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(NotImplementedError, match="must override `__call__"):
        S.LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError, match="must override `get_config"):
        S.LearningRateSchedule().get_config()
    cfg = S.CosineDecay(0.05, 10, alpha=0.1, warmup_target=0.2, warmup_steps=2,
                        name="my_cd").get_config()
    assert cfg == {"initial_learning_rate": 0.05, "decay_steps": 10, "alpha": 0.1,
                   "name": "my_cd", "warmup_target": 0.2, "warmup_steps": 2}
    assert S.serialize(S.ExponentialDecay(0.1, 10, 0.5))["module"] == \
        "keras.optimizers.schedules"


def test_optimizer_learning_rate_with_schedule():
    opt = O.SGD(S.PiecewiseConstantDecay([1], [0.5, 0.25]))
    v = fd.Variable([1.0])
    assert opt.learning_rate == 0.5
    apply(opt, [[1.0]], [v])
    apply(opt, [[1.0]], [v])  # steps 0 and 1: both at 0.5
    np.testing.assert_allclose(v.numpy(), [0.0])
    assert opt.learning_rate == 0.25 and opt.iterations == 2
    with pytest.raises(TypeError, match="its learning rate is not settable"):
        opt.learning_rate = 0.1
    opt.learning_rate = S.ExponentialDecay(1.0, 1, 0.5)  # a new schedule is accepted
    assert opt.learning_rate == pytest.approx(0.25)
    cfg = O.Adam(S.ExponentialDecay(0.1, 10, 0.5)).get_config()
    assert cfg["learning_rate"] == {
        "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
                   "staircase": False, "name": "ExponentialDecay"}, "registered_name": None}
    back = O.deserialize(O.serialize(O.Adam(S.ExponentialDecay(0.1, 10, 0.5))))
    assert isinstance(back._learning_rate, S.ExponentialDecay)


def test_fit_with_schedule_keras_golden():
    # Keras learning_rate_schedule_test.py test_fit_lr_correctness
    model = fd.Sequential([fd.Input((2,)), fd.layers.Dense(2, kernel_initializer="ones",
                                                            bias_initializer="ones")])
    opt = O.Adam(learning_rate=S.ExponentialDecay(initial_learning_rate=0.05, decay_steps=1,
                                                  decay_rate=0.9))
    model.compile(optimizer=opt, loss="mse")
    x = np.arange(32).reshape((16, 2)).astype(F32)
    history = model.fit(x, x, epochs=3, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"],
                               [230.79457092285156, 128.30319213867188, 79.33648681640625],
                               rtol=5e-5)
    assert opt.iterations == 12 and int(opt.variables[0].numpy()) == 12
    assert opt.learning_rate == pytest.approx(0.05 * 0.9 ** 12, rel=1e-5)


# -------------------------------------------------------------- training (fit)
def _data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(F32)
    y = (x @ rng.standard_normal((6, 3)) > 0).argmax(axis=1).astype(np.int32)
    return x, y


def _model(seed=0):
    rng = np.random.default_rng(seed)
    m = fd.Sequential([fd.Input((6,)), fd.layers.Dense(8, activation="tanh"),
                       fd.layers.Dense(3, activation="softmax")])
    m.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(F32) for w in m.get_weights()])
    return m


FIT_OPTS = {
    "adamw": lambda: O.AdamW(learning_rate=0.02),
    "adagrad": lambda: O.Adagrad(learning_rate=0.2),
    "adadelta": lambda: O.Adadelta(learning_rate=5.0),
    "adamax": lambda: O.Adamax(learning_rate=0.02),
    "nadam": lambda: O.Nadam(learning_rate=0.02, clipnorm=1.0),
    "lion": lambda: O.Lion(learning_rate=0.005, weight_decay=0.01),
    "sgd_cosine_warmup": lambda: O.SGD(S.CosineDecay(0.05, 40, warmup_target=0.3,
                                                     warmup_steps=6), momentum=0.9,
                                       global_clipnorm=2.0),
    "rmsprop_piecewise": lambda: O.RMSprop(S.PiecewiseConstantDecay([10], [0.01, 0.003]),
                                           clipvalue=0.5),
    "adam_callable": lambda: O.Adam(lambda step: 0.02 / (1 + step / 20)),
}


@pytest.mark.parametrize("name", list(FIT_OPTS))
def test_fit_decreases_loss(name):
    x, y = _data()
    m = _model()
    m.compile(optimizer=FIT_OPTS[name](), loss="sparse_categorical_crossentropy")
    h = m.fit(x, y, epochs=8, batch_size=16, verbose=0)
    loss = h.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.9 * loss[0], loss
    assert m.optimizer.iterations == 8 * 6


@pytest.mark.parametrize("name", ["nadam", "sgd_cosine_warmup", "adamw"])
def test_fit_steps_equal_standalone_steps(name):
    """The engine's steps (clipping, decay, schedule, state) equal standalone
    apply() steps on the gradients the engine computed: train_on_batch leaves
    the raw gradients in net.grads."""
    x, y = _data(1, 32)
    m = _model(1)
    opt = FIT_OPTS[name]()
    if name == "adamw":
        opt.exclude_from_weight_decay(var_names=["bias"])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    ref_opt = FIT_OPTS[name]()
    if name == "adamw":
        ref_opt.exclude_from_weight_decay(var_names=["bias"])
    ref_vars = [fd.Variable(w, name=v.name) for w, v in zip(m.get_weights(), m.weights)]
    net = m._net
    for step in range(4):
        m.train_on_batch(x[8 * step:8 * step + 8], y[8 * step:8 * step + 8])
        grads, off = [], 0
        for v in ref_vars:
            grads.append(np.array(net.grads[off:off + v.numpy().size]).reshape(v.shape))
            off += v.numpy().size
        ref_opt.apply_gradients(zip(grads, ref_vars))
        for w, v in zip(m.get_weights(), ref_vars):
            np.testing.assert_array_equal(w, v.numpy(), err_msg=f"step {step}")
    assert opt.iterations == ref_opt.iterations == 4


def test_fit_weight_decay_skips_frozen_and_excluded_variables():
    x, y = _data(2, 32)
    m = _model(2)
    m.layers[0].trainable = False
    opt = O.SGD(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[m.layers[1].bias])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    w0 = m.get_weights()
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    w1 = m.get_weights()
    np.testing.assert_array_equal(w1[0], w0[0])  # frozen: no update, no decay
    np.testing.assert_array_equal(w1[1], w0[1])
    g = m._net.grads
    kernel_off = w0[0].size + w0[1].size
    gk = np.array(g[kernel_off:kernel_off + w0[2].size]).reshape(w0[2].shape)
    gb = np.array(g[kernel_off + w0[2].size:kernel_off + w0[2].size + w0[3].size])
    lr, wd = F32(0.1), F32(0.5)
    np.testing.assert_array_equal(w1[2], (w0[2] - w0[2] * wd * lr) - gk * lr)
    np.testing.assert_array_equal(w1[3], w0[3] - gb * lr)  # excluded from decay


def test_reduce_lr_and_scheduler_callbacks_with_schedule():
    x, y = _data()
    m = _model()
    m.compile(optimizer=O.Adam(S.ExponentialDecay(0.01, 10, 0.5)),
              loss="sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="not settable"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[
            fd.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)])


# ------------------------------------------------------------- get / config
def test_get_names_defaults_and_configs():
    for name, cls in (("adamw", O.AdamW), ("AdamW", O.AdamW), ("ADAGRAD", O.Adagrad),
                      ("adadelta", O.Adadelta), ("Adamax", O.Adamax), ("nadam", O.Nadam),
                      ("Lion", O.Lion), ("lamb", O.Lamb), ("ftrl", O.Ftrl)):
        assert type(O.get(name)) is cls
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        O.get("muon")
    # real Keras 3.15.1 default names and get_config() of each optimizer
    base = {"learning_rate": 0.0010000000474974513,  # (float32's 0.001, as Keras gives it)
            "weight_decay": None, "clipnorm": None,
            "global_clipnorm": None, "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
            "ema_overwrite_frequency": None, "loss_scale_factor": None,
            "gradient_accumulation_steps": None}
    want = {
        O.AdamW: dict(name="adam_w", weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                      epsilon=1e-07, amsgrad=False),
        O.Adagrad: dict(name="adagrad", initial_accumulator_value=0.1, epsilon=1e-07),
        O.Adadelta: dict(name="adadelta", rho=0.95, epsilon=1e-07),
        O.Adamax: dict(name="adamax", beta_1=0.9, beta_2=0.999, epsilon=1e-07),
        O.Nadam: dict(name="nadam", beta_1=0.9, beta_2=0.999, epsilon=1e-07),
        O.Lion: dict(name="lion", beta_1=0.9, beta_2=0.99),
        O.Lamb: dict(name="lamb", beta_1=0.9, beta_2=0.999, epsilon=1e-07),
        O.Ftrl: dict(name="ftrl", learning_rate_power=-0.5, initial_accumulator_value=0.1,
                     l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                     l2_shrinkage_regularization_strength=0.0, beta=0.0),
    }
    for cls, extra in want.items():
        fd.backend.clear_session()  # (default names are unique, as Keras's: adam_w_1, ...)
        cfg = cls().get_config()
        assert cfg == {**base, **extra}, cls.__name__
        back = O.deserialize(O.serialize(cls(learning_rate=0.5, clipnorm=1.0)))
        assert type(back) is cls and back.clipnorm == 1.0 and back.learning_rate == 0.5
    cfg = O.SGD(weight_decay=0.1, clipnorm=1.0).get_config()
    assert (cfg["weight_decay"], cfg["clipnorm"]) == (0.1, 1.0)


def test_argument_errors_keras_texts():
    with pytest.raises(ValueError, match="Argument `weight_decay` must be a float. "
                                         "Received: weight_decay=None"):
        O.AdamW(learning_rate=1.0, weight_decay=None)
    with pytest.raises(ValueError, match=r"Argument `beta_1` must be in the \[0, 1\] range. "
                                         "Otherwise, the optimizer degenerates to SignSGD"):
        O.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="beta_1"):
        O.Lion(beta_1=1.5)
    for make, word in ((lambda: O.Adagrad(initial_accumulator_value=-1), "initial_accumulator"),
                       (lambda: O.Adadelta(rho=2.0), "rho"),
                       (lambda: O.Adamax(beta_2=-1), "beta_2"),
                       (lambda: O.Nadam(epsilon=-1), "epsilon"),
                       (lambda: O.Adam(weight_decay="x"), "weight_decay"),
                       (lambda: O.Adam(learning_rate=True), "learning_rate"),
                       (lambda: O.Lion(not_an_arg=1), "not_an_arg")):
        with pytest.raises(ValueError, match=word):
            make()
    with pytest.warns(UserWarning, match="`decay` is no longer supported"):
        O.Adam(decay=0.1)


# ------------------------------------------------ saving in Keras's layout
SAVE_CASES = ["adamw", "adagrad", "adadelta", "adamax", "nadam", "lion", "adam_schedule",
              "sgd_cosine"]


def _h5_contents(data):
    import h5py
    out = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = np.asarray(obj[()])
            else:
                out[name + "/"] = dict(obj.attrs)
        f.visititems(visit)
    return out


def _zip_member(path, name):
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


@needs_h5
@pytest.mark.parametrize("case", SAVE_CASES)
def test_loads_keras_files_and_resumes_as_keras(case):
    ref = np.load(os.path.join(FIXTURES, f"keras_opt_{case}.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = saving.load_model(os.path.join(FIXTURES, f"keras_opt_{case}.keras"))
    for i, w in enumerate(m.get_weights()):
        np.testing.assert_array_equal(w, ref[f"w{i}"])
    assert m.optimizer.iterations == int(ref["iterations"])
    m.fit(ref["x"], ref["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert m.optimizer.iterations == int(ref["after_iterations"])
    for i, w in enumerate(m.get_weights()):
        np.testing.assert_allclose(w, ref[f"after_w{i}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.predict(ref["x"], verbose=0), ref["after_pred"],
                               rtol=1e-5, atol=1e-6)


@needs_h5
@pytest.mark.parametrize("case", SAVE_CASES)
def test_rewrites_keras_optimizer_state_as_keras_wrote_it(tmp_path, case):
    path = os.path.join(FIXTURES, f"keras_opt_{case}.keras")
    m = saving.load_model(path)
    saving.save_model(m, tmp_path / "again.keras")
    theirs = _h5_contents(_zip_member(path, "model.weights.h5"))
    ours = _h5_contents(_zip_member(tmp_path / "again.keras", "model.weights.h5"))
    theirs = {k: v for k, v in theirs.items() if k.startswith("optimizer/")}
    ours = {k: v for k, v in ours.items() if k.startswith("optimizer/")}
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        if key.endswith("/"):
            assert ours[key] == value, key
        else:
            assert ours[key].shape == value.shape, key
            np.testing.assert_array_equal(ours[key], value, err_msg=key)
    k_opt = json.loads(_zip_member(path, "config.json"))["compile_config"]["optimizer"]
    f_opt = json.loads(_zip_member(tmp_path / "again.keras",
                                   "config.json"))["compile_config"]["optimizer"]
    assert f_opt == k_opt


@needs_h5
@pytest.mark.parametrize("name", ["nadam", "adagrad", "sgd_cosine_warmup", "lion"])
def test_save_load_resumes_bitwise(tmp_path, name):
    x, y = _data(4, 64)
    m = _model(4)
    m.compile(optimizer=FIT_OPTS[name](), loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    m.save(tmp_path / "m.keras")
    back = saving.load_model(tmp_path / "m.keras")
    assert back.optimizer.iterations == m.optimizer.iterations
    np.testing.assert_array_equal(np.asarray(back._net.optimizer_state),
                                  np.asarray(m._net.optimizer_state))
    for mm in (m, back):
        mm.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)


@needs_h5
def test_unmapped_optimizer_state_is_a_clear_error(tmp_path):
    class Custom(O.Optimizer):  # runs natively as Adam, but says nothing of its slots
        _kind = 2

        def _fill_spec(self, spec):
            pass

    m = _model()
    m.compile(optimizer=Custom(), loss="mse")
    m.build((None, 6))
    with pytest.raises(ValueError, match="cannot map its state"):
        m.save(tmp_path / "m.keras")
    assert not os.path.exists(tmp_path / "m.keras")


def test_schedule_drives_every_training_path():
    """The rate of step 0 is 0.1, of every later step 0: only the first
    update moves the weights, in fit (native loss and a Python loss) and in
    train_on_batch."""
    x, y = _data(5, 32)
    yd = np.eye(3, dtype=F32)[y]

    def my_mse(t, p):
        return fd.ops.mean(fd.ops.square(t - p), axis=-1)

    for loss, target in (("mse", yd), (my_mse, yd)):
        for how in ("fit", "train_on_batch"):
            m = _model(5)
            m.compile(optimizer=O.SGD(S.PiecewiseConstantDecay([0], [0.1, 0.0])), loss=loss)
            w0 = m.get_weights()
            snapshots = []
            for _ in range(3):
                if how == "fit":
                    m.fit(x, target, epochs=1, batch_size=32, verbose=0)
                else:
                    m.train_on_batch(x, target)
                snapshots.append(m.get_weights())
            assert not np.array_equal(snapshots[0][0], w0[0]), (loss, how)
            for snap in snapshots[1:]:
                for a, b in zip(snap, snapshots[0]):
                    np.testing.assert_array_equal(a, b, err_msg=f"{loss} {how}")
            assert m.optimizer.iterations == 3 and m.optimizer.learning_rate == 0.0


def test_default_names_are_kerass():
    # Keras 3 names an optimizer after its class in snake case (name=None):
    # they prefix the optimizer's variables in Keras's legacy .h5 files
    # and, as Keras's, unique until clear_session (sgd, sgd_1, ...)
    from fastdense import optimizers as o
    fd.backend.clear_session()
    classes = (o.SGD, o.RMSprop, o.Adam, o.AdamW, o.Adagrad, o.Adadelta, o.Adamax, o.Nadam,
               o.Lion)
    want = ["sgd", "rm_sprop", "adam", "adam_w", "adagrad", "adadelta", "adamax", "nadam", "lion"]
    assert [c().name for c in classes] == want
    assert [c().name for c in classes] == [f"{n}_1" for n in want]
    assert o.SGD(name="mine").name == "mine" and o.SGD().name == "sgd_2"
    fd.backend.clear_session()
    assert o.get("adam").name == "adam"
