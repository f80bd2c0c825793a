"""Fuzzing the private native module in-process: every binding of ``_core``,
called with random shapes, dtypes, strides, alignments, None, huge or negative
numbers and wrong argument counts, must return or raise a Python exception,
never crash (a crash kills pytest, which is the point of running in-process).

Each case starts from a valid call and mutates one or two of its arguments,
so the checks deep inside a binding are reached too. Seeded and bounded: the
same few thousand calls on every run, a few seconds in all.
"""
import inspect
import math

import numpy as np
import pytest

from fastdense import _core

pytestmark = pytest.mark.filterwarnings("ignore::Warning")

SEED = 0x5EED
N_CASES = 1000  # per binding

ISAS = _core.available_isas().split(",")
N_ACT = 19  # activation codes 0..18 (kernels.h kNumActivations); 0..4 are fused


def _count_optimizer_kinds():
    spec = _core.OptimizerSpec()
    for k in range(64):
        try:
            spec.kind = k
        except ValueError:
            return k
    return 64


N_OPT = _count_optimizer_kinds()  # optimizer kinds the bindings accept
# Huge values are either rejected or impossible to allocate anywhere (>= 2**46
# elements exceeds any 47-bit address space), never merely large: a valid
# request for 8 GiB would be honoured and the fuzz would run out of memory.
BIG_INTS = [-1, -2**31, 2**46, 2**62, 2**63 - 1, -2**63]
BAD_OBJECTS = [None, "x", b"\x00", 1.5, float("nan"), [1, "a"], object(), {"a": 1}]


# ------------------------------------------------------------------ generators
def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def mutate_array(rng, a):
    """A broken variant of an array (or the array itself, rarely)."""
    try:
        return _mutate_array(rng, a)
    except (TypeError, ValueError):  # e.g. an object array has no buffer
        return BAD_OBJECTS[int(rng.integers(0, len(BAD_OBJECTS)))]


def _mutate_array(rng, a):
    kind = rng.integers(0, 22)
    shape = a.shape
    if kind == 0:
        return a.astype(np.float64)
    if kind == 1:
        return a.astype(np.float16)
    if kind == 2:
        return a.astype(np.int64)
    if kind == 3:
        return a.astype(bool)
    if kind == 4:
        return a.astype(object)
    if kind == 5:
        return a.astype(np.complex64)
    if kind == 6:
        return a.astype(a.dtype.newbyteorder(">"))
    if kind == 7:  # non-contiguous: every other row/element of a larger array
        big = np.zeros(tuple(2 * s + 1 for s in shape), a.dtype)
        v = big[tuple(slice(0, 2 * s, 2) for s in shape)]
        v[...] = a
        return v
    if kind == 8 and a.ndim == 2:  # Fortran order (== a transposed view)
        return np.asfortranarray(a)
    if kind == 9 and a.ndim == 2:
        return a.T
    if kind == 10:  # misaligned data pointer
        buf = np.zeros(a.nbytes + a.itemsize + 1, np.uint8)
        v = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(shape)
        return v
    if kind == 11:
        v = a.copy()
        v.setflags(write=False)
        return v
    if kind == 12:
        return a.reshape(-1)
    if kind == 13:
        return a.reshape(shape + (1,))
    if kind == 14:
        return np.asarray(a.flat[0] if a.size else 0, dtype=a.dtype)  # 0-d
    if kind == 15:  # one dimension off by one (or zero-size)
        if a.ndim == 0:
            return a
        d = int(rng.integers(0, a.ndim))
        new = list(shape)
        new[d] = max(0, new[d] + int(rng.choice([-1, 1, -new[d]])))
        return np.zeros(new, a.dtype)
    if kind == 16:
        return a.tolist()
    if kind == 17 and a.dtype.kind == "f":
        v = a.copy()
        if v.size:
            v.flat[int(rng.integers(0, v.size))] = rng.choice([np.nan, np.inf, -np.inf, 3e38])
        return v
    if kind == 18 and a.dtype.kind == "i":
        v = a.copy()
        if v.size:
            v.flat[int(rng.integers(0, v.size))] = rng.choice([-1, 2**31 - 1, -2**31, 10**6])
        return v
    if kind == 19:
        return np.broadcast_to(a.reshape(-1)[:1] if a.size else np.zeros(1, a.dtype), shape)
    if kind == 20:
        return a[::-1] if a.ndim else a
    return BAD_OBJECTS[int(rng.integers(0, len(BAD_OBJECTS)))]


def mutate_int(rng, v):
    r = rng.integers(0, 4)
    if r == 0:
        return BIG_INTS[int(rng.integers(0, len(BIG_INTS)))]
    if r == 1:
        return int(v) + int(rng.choice([-1, 1, -2, 1000]))
    if r == 2:
        return [None, "1", 1.5, 2**64, -2**64, True][int(rng.integers(0, 6))]
    return int(rng.integers(-3, 25))


def mutate(rng, args, protect=()):
    """Mutates one or two arguments (not those in `protect`), or the count."""
    args = list(args)
    r = rng.random()
    if r < 0.05:
        return args[:-1] if args else [1]
    if r < 0.08:
        return args + [None]
    choices = [i for i in range(len(args)) if i not in protect]
    if not choices:
        return args
    for _ in range(1 + int(rng.random() < 0.3)):
        i = int(rng.choice(choices))
        a = args[i]
        if isinstance(a, np.ndarray):
            args[i] = mutate_array(rng, a)
        elif isinstance(a, bool):
            args[i] = [None, 2, "yes", np.bool_(True)][int(rng.integers(0, 4))]
        elif isinstance(a, int):
            args[i] = mutate_int(rng, a)
        elif isinstance(a, float):
            args[i] = [float("nan"), float("inf"), -1.0, 1e30, None, "0.5"][int(rng.integers(0, 6))]
        elif a is None:
            args[i] = [np.zeros((2, 2), np.float32), np.zeros(3, np.int32), 0, "a"][
                int(rng.integers(0, 4))]
        elif isinstance(a, (list, tuple, dict)):
            args[i] = [None, [], [-1], [2**62], "abc", {"x": 1}][int(rng.integers(0, 6))]
        else:
            args[i] = BAD_OBJECTS[int(rng.integers(0, len(BAD_OBJECTS)))]
    return args


CALLS = {"ok": 0, "raised": 0}


def call(fn, args, kwargs=None):
    """Calls a binding: any Python exception is fine (SystemError is not:
    it means a binding returned a result with an error set, or the reverse)."""
    try:
        out = fn(*args, **(kwargs or {}))
    except SystemError:
        raise
    except Exception:  # noqa: BLE001 - every clean exception is a pass
        CALLS["raised"] += 1
        return None
    CALLS["ok"] += 1
    return out


# ------------------------------------------------------------------ valid calls
def spec_random(rng, valid=True):
    s = _core.OptimizerSpec()
    s.kind = int(rng.integers(0, N_OPT))
    s.learning_rate = float(rng.choice([0.01, 0.1, 1e-3]))
    s.momentum = float(rng.choice([0.0, 0.9]))
    s.nesterov = bool(rng.integers(0, 2))
    s.centered = bool(rng.integers(0, 2))
    s.amsgrad = bool(rng.integers(0, 2))
    for name in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
        if hasattr(s, name) and rng.random() < 0.2:
            setattr(s, name, float(rng.choice([0.5, 1.0])))
    if not valid:
        name = str(rng.choice(["learning_rate", "momentum", "rho", "beta_1", "beta_2",
                               "epsilon", "kind", "clipnorm", "weight_decay"]))
        value = rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1.0, 2.0])
        try:
            setattr(s, name, int(value) if name == "kind" and math.isfinite(value) else value)
        except Exception:  # noqa: BLE001 - the setter rejected it, fine
            pass
    return s


def dims(rng, lo=0, hi=6):
    return [int(rng.integers(lo, hi)) for _ in range(3)]


def case_dense_forward(rng):
    B, i, o = dims(rng)
    args = [f32(rng, B, i), f32(rng, i, o), f32(rng, o) if rng.random() < 0.7 else None,
            int(rng.integers(0, 5))]
    return _core.dense_forward, args


def case_dense_backward(rng):
    B, i, o = dims(rng)
    args = [f32(rng, B, o), f32(rng, B, o), f32(rng, B, i), f32(rng, i, o),
            int(rng.integers(0, 5)), bool(rng.integers(0, 2)), bool(rng.integers(0, 2))]
    return _core.dense_backward, args


def case_dense_backward_upstream(rng):
    B, i, o = dims(rng)
    U = int(rng.integers(1, 18))  # (17: over the narrow limit, refused)
    args = [f32(rng, B, U), f32(rng, o, U), f32(rng, B, o), f32(rng, B, i), f32(rng, i, o),
            int(rng.integers(0, 5)), bool(rng.integers(0, 2))]
    return _core.dense_backward_upstream, args


def case_activation_forward(rng):
    R, C, _ = dims(rng)
    return _core.activation_forward, [f32(rng, R, C, scale=5), int(rng.integers(0, N_ACT))]


def case_activation_backward(rng):
    R, C, _ = dims(rng)
    return _core.activation_backward, [f32(rng, R, C), f32(rng, R, C), f32(rng, R, C),
                                       int(rng.integers(0, N_ACT))]


def case_loss(rng):
    B, U, _ = dims(rng, 1)
    kind = int(rng.integers(0, 4))
    yp = np.abs(f32(rng, B, U)) + 0.01
    if kind == 1:
        args = [yp, None, rng.integers(0, U, B).astype(np.int32)]
    else:
        args = [yp, np.abs(f32(rng, B, U)), None]
    args += [kind, bool(rng.integers(0, 2)), int(rng.integers(0, N_ACT))]
    return _core.loss, args


def case_metric_sum(rng):
    B, U, _ = dims(rng, 1)
    kind = int(rng.integers(0, 3))
    labels = rng.integers(0, U, B).astype(np.int32) if kind == 1 else None
    target = None if kind == 1 else (rng.random((B, U)) > 0.5).astype(np.float32)
    return _core.metric_sum, [kind, f32(rng, B, U), target, labels, 0.5]


def case_permutation(rng):
    return _core.permutation, [int(rng.integers(0, 50)), int(rng.integers(0, 2**63))]


def case_optimizer_step(rng):
    spec = spec_random(rng, valid=rng.random() < 0.8)
    n = int(rng.integers(0, 20))
    try:
        size = spec.state_size(n) if hasattr(spec, "state_size") else spec.slots() * n
    except Exception:  # noqa: BLE001
        size = 0
    args = [spec, int(rng.integers(0, 5)), f32(rng, n), np.zeros(size, np.float32),
            f32(rng, n)]
    return _core.optimizer_step, args


def case_optimizer_apply(rng):
    fn, args = case_optimizer_step(rng)
    n = len(args[2])
    cut = sorted(int(c) for c in rng.integers(0, n + 1, 2))
    segments = [(0, cut[0], True), (cut[0], cut[1], False), (cut[1], n, True)]
    return getattr(_core, "optimizer_apply"), args + [segments]


def case_optimizer_init_state(rng):
    return getattr(_core, "optimizer_init_state"), [spec_random(rng), int(rng.integers(0, 20))]


def case_set_isa(rng):
    # (valid names half the time, however many paths this machine supports)
    bad = ["", "avx9", "GENERIC", "generic\0x"]
    return _core.set_isa, [str(rng.choice(ISAS if rng.random() < 0.5 else bad))]


def case_set_num_threads(rng):  # only values that must be refused (or the current one)
    v = [0, -1, 1025, 10**6, 2**31, None, "2", 1.5, _core.get_num_threads()]
    return _core.set_num_threads, [v[int(rng.integers(0, len(v)))]]


def case_fma_peak_gflops(rng):  # only values that must be refused: a valid call is slow
    v = [0, -1, -2**31, 10**6, 2**31, None, "2", 1.5]
    return getattr(_core, "fma_peak_gflops"), [v[int(rng.integers(0, len(v)))]]


def case_cross_core_roundtrip_ns(rng):  # only values that must be refused: a valid call is slow
    v = [0.0, -1.0, float("nan"), float("inf"), 11.0, None, "0.1", [0.1]]
    return getattr(_core, "cross_core_roundtrip_ns"), [v[int(rng.integers(0, len(v)))]]


def case_network_init(rng):
    L = int(rng.integers(1, 4))
    units = [int(rng.integers(1, 6)) for _ in range(L + 1)]
    args = [units, [int(rng.integers(0, N_ACT)) for _ in range(L)],
            [bool(rng.integers(0, 2)) for _ in range(L)],
            [float(rng.choice([0.0, 0.5])) for _ in range(L)], float(rng.choice([0.0, 0.2]))]
    if rng.random() < 0.2:  # absurd sizes: MemoryError, never a wrapped-around buffer
        args[0] = [int(rng.choice([2**31, 2**40, 2**62, 10**12])), int(rng.choice([2**31, 2**33]))]
        # (each product exceeds 2**60 parameters: refused before any allocation)
        args[1:4] = [[0], [True], [0.0]]
        return _core.Network, args
    if rng.random() < 0.3:
        args[int(rng.integers(0, 5))] = [[0, 3], [-1], [float("nan")], [], [1, 2, 3, 4, 5, 6],
                                         float("nan"), 1.0, None][int(rng.integers(0, 8))]
    return _core.Network, args


def case_network_stages_init(rng):
    stages, _ = _stages(rng, 3)
    args = [int(rng.integers(1, 5)), stages, float(rng.choice([0.0, 0.2]))]
    if rng.random() < 0.3:  # a bad field, a bad kind, a bad value
        st = stages[int(rng.integers(0, len(stages)))]
        key = str(rng.choice(["kind", "units", "activation", "dropout", "momentum", "epsilon",
                              "norm_mode", "noise", "noise_param", "shared"]))
        st[key] = [-1, 3, 99, float("nan"), 1.5, 0.0, "x", None, 2**62][int(rng.integers(0, 9))]
    if rng.random() < 0.1:
        args[int(rng.integers(0, 3))] = [0, [], [1], float("nan"), -1, None][int(rng.integers(0, 6))]
    return _core.Network, args


PROTECTED_VALID = {  # bindings whose valid form must not run (global state, slow)
    "set_num_threads", "fma_peak_gflops", "cross_core_roundtrip_ns"}


# ------------------------------------------------------------------ module functions
FUNCTION_CASES = {
    "dense_forward": case_dense_forward,
    "dense_backward": case_dense_backward,
    "dense_backward_upstream": case_dense_backward_upstream,
    "activation_forward": case_activation_forward,
    "activation_backward": case_activation_backward,
    "loss": case_loss,
    "metric_sum": case_metric_sum,
    "permutation": case_permutation,
    "optimizer_step": case_optimizer_step,
    "optimizer_apply": case_optimizer_apply,
    "optimizer_init_state": case_optimizer_init_state,
    "set_isa": case_set_isa,
    "set_num_threads": case_set_num_threads,
    "fma_peak_gflops": case_fma_peak_gflops,
    "cross_core_roundtrip_ns": case_cross_core_roundtrip_ns,
    "Network": case_network_init,
    "Network(stages)": case_network_stages_init,
}
NO_ARG = ["kernel_isa", "available_isas", "get_num_threads"]


@pytest.fixture
def restore_globals():
    isa, threads = _core.kernel_isa(), _core.get_num_threads()
    yield
    _core.set_isa(isa)
    _core.set_num_threads(threads)


def _public(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_"))


@pytest.mark.parametrize("name", sorted(FUNCTION_CASES))
def test_function_fuzz(name, restore_globals):
    if not hasattr(_core, name.split("(")[0]):
        pytest.skip(f"_core.{name} does not exist in this build")
    rng = np.random.default_rng([SEED, sorted(FUNCTION_CASES).index(name)])
    make = FUNCTION_CASES[name]
    before = dict(CALLS)
    for i in range(N_CASES):
        fn, args = make(rng)
        if name not in PROTECTED_VALID and i % 5 != 0:  # 1 in 5 calls stays valid
            args = mutate(rng, args)
        call(fn, args)
        if name in ("set_num_threads", "fma_peak_gflops"):
            assert _core.get_num_threads() <= 1024
    ok, raised = (CALLS[k] - before[k] for k in ("ok", "raised"))
    assert raised > N_CASES // 4  # the mutations are refused...
    if name not in PROTECTED_VALID:
        assert ok > N_CASES // 10  # ...and the valid calls get through to the engine


def test_no_argument_functions_reject_arguments():
    for name in NO_ARG:
        fn = getattr(_core, name)
        assert isinstance(fn(), (str, int))
        for extra in ([1], [None], ["x", 2]):
            with pytest.raises(TypeError):
                fn(*extra)


def test_every_binding_is_fuzzed():
    """A new binding gets the generic treatment below; this lists what the
    targeted cases above do not cover, so they can be added."""
    functions = {n for n in _public(_core) if callable(getattr(_core, n))
                 and not isinstance(getattr(_core, n), type)}
    classes = {n for n in _public(_core) if isinstance(getattr(_core, n), type)}
    uncovered = functions - set(FUNCTION_CASES) - set(NO_ARG)
    rng = np.random.default_rng(SEED)
    for name in sorted(uncovered):  # generic: garbage arguments of every kind
        fn = getattr(_core, name)
        for _ in range(50):
            k = int(rng.integers(1, 4))
            call(fn, [BAD_OBJECTS[int(rng.integers(0, len(BAD_OBJECTS)))] for _ in range(k)])
    assert classes <= {"Network", "OptimizerSpec", "_NetworkBase"}, classes


def test_optimizer_spec_fuzz():
    rng = np.random.default_rng([SEED, 99])
    fields = [n for n in _public(_core.OptimizerSpec)
              if not callable(getattr(_core.OptimizerSpec, n))]
    for _ in range(N_CASES):
        s = _core.OptimizerSpec()
        for _ in range(3):
            name = str(rng.choice(fields))
            value = [float("nan"), -1, 0, 1, 7, 8, 99, 2**31, 2**64, None, "a", True, 1e38][
                int(rng.integers(0, 13))]
            call(setattr, [s, name, value])
        call(s.slots, [])
        call(s.slots, [1])
        for name in ("scalars",):
            if hasattr(s, name):
                call(getattr(s, name), [])
        if hasattr(s, "state_size"):
            for n in (0, 5, -1, 2**46, 2**62, 6148914691236517206, None):
                call(s.state_size, [n])
        assert 0 <= s.kind < N_OPT


# ------------------------------------------------------------------ the network
def _stages(rng, din):
    """Random stage dicts (Dense / BatchNorm / Identity / LayerNorm / PReLU /
    Merge, with Dropout or noise; now and then reading an earlier stage than
    the one before, or the input; a Dense stage now and then sharing an
    earlier one's weights; an Identity stage now and then an op with a number)
    and the units they give."""
    stages, units = [], [din]
    dense = []  # (stage, input width, units, use_bias) of each Dense stage of its own
    for _ in range(int(rng.integers(1, 5))):
        kind = int(rng.choice([0, 0, 1, 2, 3, 4, 5]))
        st = {"kind": kind, "activation": int(rng.integers(0, N_ACT)),
              "dropout": float(rng.choice([0.0, 0.0, 0.5])), "use_bias": bool(rng.integers(0, 2))}
        n = len(stages)  # (units[j + 1]: stage j's width; units[0]: the input's)
        if kind == 5:  # a merge of 2-3 earlier outputs: equal widths, or concatenated
            srcs = [int(j) for j in rng.integers(-1, n, int(rng.integers(2, 4)))]
            st["merge"] = int(rng.integers(0, 7))
            if st["merge"] != 6:
                srcs = [j for j in srcs if units[j + 1] == units[srcs[0] + 1]]
                if st["merge"] == 1:
                    srcs = srcs[:2]
            if len(srcs) < 2:
                srcs = [srcs[0], srcs[0]]
                st["merge"] = 0 if st["merge"] == 1 else st["merge"]
            st["inputs"] = srcs
            st["units"] = (sum(units[j + 1] for j in srcs) if st["merge"] == 6
                           else units[srcs[0] + 1])
        elif rng.random() < 0.3:
            st["inputs"] = [int(rng.integers(-1, n))]
        src_width = units[st["inputs"][0] + 1] if "inputs" in st else units[-1]
        if kind == 0:
            st["units"] = int(rng.integers(1, 6))
            same = [d for d in dense if d[1] == src_width]
            if same and rng.random() < 0.5:  # (an earlier Dense layer applied again)
                j, _, st["units"], st["use_bias"] = same[int(rng.integers(0, len(same)))]
                st["shares"] = j
            else:
                dense.append((n, src_width, st["units"], st["use_bias"]))
        elif kind == 1:
            st.update(scale=bool(rng.integers(0, 2)), momentum=float(rng.choice([0.0, 0.9, 1.0])),
                      epsilon=float(rng.choice([1e-3, 1.0])))
        elif kind == 3:
            st.update(scale=bool(rng.integers(0, 2)), norm_mode=int(rng.integers(0, 4)),
                      epsilon=float(rng.choice([1e-6, 1e-3])))
        elif kind == 4:
            st["shared"] = bool(rng.integers(0, 2))
        elif kind == 2 and rng.random() < 0.4:  # (an op with a number: x * c, c / x, ...)
            st.update(activation=0, scalar_op=int(rng.integers(1, 8)),
                      scalar=float(rng.choice([-2.0, 0.5, 3.0])))
        if st["dropout"] == 0.0 and rng.random() < 0.3:
            st["noise"] = int(rng.integers(1, 4))
            st["noise_param"] = float(rng.choice([0.0, 0.1, 0.5]))
        stages.append(st)
        units.append(st["units"] if kind == 5 else st.get("units", src_width))
        if kind == 5:
            del st["units"]
    return stages, units


def _network(rng):
    L = int(rng.integers(1, 4))
    units = [int(rng.integers(1, 6)) for _ in range(L + 1)]
    acts = [int(rng.integers(0, N_ACT)) for _ in range(L)]
    if rng.random() < 0.5:
        stages, units = _stages(rng, units[0])
        net = _core.Network(units[0], stages, float(rng.choice([0.0, 0.0, 0.3])))
    else:
        net = _core.Network(units, acts, [bool(rng.integers(0, 2)) for _ in range(L)],
                            [float(rng.choice([0.0, 0.0, 0.5])) for _ in range(L)],
                            float(rng.choice([0.0, 0.0, 0.3])))
    loss = int(rng.integers(0, 4))
    net.set_loss(loss, bool(rng.integers(0, 2)))
    metrics = [int(m) for m in rng.integers(0, 3, int(rng.integers(0, 3)))]
    net.set_metrics(metrics, 0.5)
    net.set_optimizer(spec_random(rng))
    return net, units, loss


def _targets(rng, loss, n, U):
    """(y, labels) for a loss: float targets, or int32 labels for sparse; often both."""
    y = (rng.random((n, U)) > 0.5).astype(np.float32)
    labels = rng.integers(0, U, n).astype(np.int32)
    if loss == 1:
        return (y if rng.random() < 0.5 else None), labels
    return y, (labels if rng.random() < 0.5 else None)


def _stats():
    return {"loss_sum": 0.0, "seen": 0, "metric_sums": []}


def _method_call(rng, net, units, loss):
    """A random (mostly valid) call of a Network method: (fn, args, protect)."""
    din, U = units[0], units[-1]
    n = int(rng.integers(0, 9))
    x = f32(rng, n, din)
    y, labels = _targets(rng, loss, n, U)
    m = int(rng.integers(0, 21))
    if m == 0:
        bs = int(rng.integers(1, 6))
        order = rng.permutation(n).astype(np.int64) if rng.random() < 0.5 else None
        ypred = np.zeros((n, U), np.float32) if rng.random() < 0.3 else None
        sw = np.abs(f32(rng, n)) if rng.random() < 0.3 else None
        return net.train_batches, [x, y, labels, order, bs, int(rng.integers(0, 3)),
                                   int(rng.integers(0, 4)), loss, _stats(), ypred,
                                   bool(rng.integers(0, 2)), sw], {8}
    if m == 1:
        ypred = np.zeros((n, U), np.float32) if rng.random() < 0.3 else None
        return net.evaluate, [x, y, labels, int(rng.integers(1, 6)), loss, ypred, None], ()
    if m == 2:
        return net.predict, [x, int(rng.integers(1, 6))], ()
    if m == 3:
        return net.forward_train, [f32(rng, max(n, 1), din)], ()
    if m == 4:
        return net.backward_update, [f32(rng, int(rng.integers(0, 4)), U)], ()
    if m == 5:
        return net.set_loss, [int(rng.integers(0, 4)), bool(rng.integers(0, 2))], ()
    if m == 6:
        return net.set_metrics, [[int(k) for k in rng.integers(0, 3, 2)], 0.5], ()
    if m == 7:
        return net.set_optimizer, [spec_random(rng, valid=rng.random() < 0.7)], ()
    if m == 8:
        return net.set_trainable, [int(rng.integers(0, len(units))), bool(rng.integers(0, 2))], ()
    if m == 9:
        return net.set_seed, [int(rng.integers(0, 2**63))], ()
    if m == 10:
        return net.layer_offsets, [], ()
    if m == 11 and hasattr(net, "set_weight_decay_mask"):
        return net.set_weight_decay_mask, [[bool(b) for b in rng.integers(0, 2, len(units))]], ()
    if m == 12:
        return setattr, [net, "iterations", int(rng.integers(0, 10))], (0, 1)
    if m == 13:
        return setattr, [net, "learning_rate", float(rng.choice([0.1, 0.01]))], (0, 1)
    if m == 14:  # views of the buffers, written through
        name = str(rng.choice(["params", "grads", "optimizer_state"]))
        return (lambda nm, v: getattr(net, nm).__setitem__(slice(None), v)), [name, 0.01], (0,)
    if m == 15:
        return setattr, [net, "num_params", 3], ()
    if m == 16:
        return net.set_activity_regularization, [int(rng.integers(0, len(units))),
                                                 float(rng.choice([0.0, 0.01])),
                                                 float(rng.choice([0.0, 0.02]))], ()
    if m == 17:
        c = lambda: (int(rng.integers(0, 5)), 0.1, float(rng.choice([0.5, 2.0])), 0.5,  # noqa: E731
                     int(rng.integers(0, 3)))
        return net.set_constraints, [int(rng.integers(0, len(units))), c(), c()], ()
    if m == 18:
        return net.activity_penalty_sum, [x, int(rng.integers(1, 6))], ()
    if m == 19:
        return net.variables, [], ()
    return getattr, [net, str(rng.choice(["num_params", "input_dim", "output_dim",
                                          "iterations", "learning_rate"]))], (0, 1)


def test_network_method_fuzz():
    """Sequences of (mostly valid, then mutated) method calls on networks
    with random layouts, losses and metrics: loss/target mismatches,
    backward_update without its forward_train, train_batches in between,
    optimizer changes while views of the old state are held, ..."""
    rng = np.random.default_rng([SEED, 1000])
    views = []
    before = dict(CALLS)
    for _ in range(100):
        net, units, loss = _network(rng)
        views.append(net.optimizer_state)  # held across set_optimizer calls
        for i in range(60):
            fn, args, protect = _method_call(rng, net, units, loss)
            if i % 3:
                args = mutate(rng, args, protect=protect)
            out = call(fn, args)
            if fn is net.set_loss and out is None and isinstance(args, list) and len(args) == 2 \
                    and isinstance(args[0], int) and 0 <= args[0] < 4:
                loss = args[0]
        # the network still works and agrees with the kernels
        x = f32(rng, 3, units[0])
        p = net.predict(x, 2)
        assert p.shape == (3, units[-1])
    for v in views:  # views handed out before set_optimizer stay readable
        float(np.asarray(v).sum())
    ok, raised = (CALLS[k] - before[k] for k in ("ok", "raised"))
    assert ok > 1000 and raised > 1000, (ok, raised)


def test_network_train_then_backward_update_is_refused():
    net = _core.Network([4, 3], [0], [True])
    net.set_loss(3, False)
    net.forward_train(np.ones((2, 4), np.float32))
    x, y = np.ones((500, 4), np.float32), np.ones((500, 3), np.float32)
    net.train_batches(x, y, None, None, 500, 0, 1, 3, _stats(), None)  # regrows the workspace
    with pytest.raises(ValueError, match="forward_train"):
        net.backward_update(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="at least one row"):
        net.forward_train(np.ones((0, 4), np.float32))


def test_network_targets_must_match_its_loss_and_metrics():
    net = _core.Network([4, 3], [0], [True])
    x = np.ones((4, 4), np.float32)
    labels = np.zeros(4, np.int32)
    net.set_loss(3, False)  # mse reads float targets
    with pytest.raises(ValueError, match="needs `y`"):
        net.train_batches(x, None, labels, None, 2, 0, 2, 1, _stats(), None)
    with pytest.raises(ValueError, match="needs `y`"):
        net.evaluate(x, None, labels, 2, 1, None)
    net.set_loss(1, False)
    net.set_metrics([0], 0.5)  # categorical accuracy reads float targets
    with pytest.raises(ValueError, match="metric"):
        net.train_batches(x, None, labels, None, 2, 0, 2, 1, _stats(), None)


def test_network_batch_range_and_sizes_are_checked():
    net = _core.Network([4, 3], [0], [True])
    net.set_loss(3, False)
    x, y = np.ones((8, 4), np.float32), np.ones((8, 3), np.float32)
    with pytest.raises(ValueError, match="first_batch"):
        net.train_batches(x, y, None, None, 4, -1, 1, 3, _stats(), None)
    with pytest.raises(ValueError, match="n_batches"):
        net.train_batches(x, y, None, None, 4, 0, -1, 3, _stats(), None)
    # past the end, or counts that would overflow, train nothing
    assert net.train_batches(x, y, None, None, 2**40, 2**40, 3, 3, _stats(), None) == 0
    assert net.train_batches(x, y, None, None, 4, 1, 2**63 - 1, 3, _stats(), None) == 1
    with pytest.raises(TypeError, match="stats"):
        net.train_batches(x, y, None, None, 4, 0, 1, 3, {}, None)
    for units in ([2**62, 4], [2**40, 2**40], [2**33, 2**33, 1]):
        with pytest.raises(MemoryError):
            _core.Network(units, [0] * (len(units) - 1), [True] * (len(units) - 1))
    with pytest.raises(ValueError, match="units"):
        _core.Network([4, 0], [0], [True])
    # the stage constructor bounds every stage's size by the machine's memory
    # before allocating (BatchNorm holds 4 numbers per feature)
    for din, stages in ((2**62, [{"kind": 1}]), (2**46, [{"kind": 0, "units": 2}]),
                        (2**62, [{"kind": 2}]), (2**61, [{"kind": 2}, {"kind": 1}]),
                        (4, [{"kind": 0, "units": 2**40}, {"kind": 1}])):
        with pytest.raises(MemoryError, match="memory"):
            _core.Network(din, stages)


def test_optimizer_state_view_survives_set_optimizer():
    net = _core.Network([64, 32], [0], [True])
    view = net.optimizer_state
    adam = _core.OptimizerSpec()
    adam.kind = 2
    adam.amsgrad = True
    net.set_optimizer(adam)  # reallocates the state
    junk = [np.ones(10**5) for _ in range(20)]  # reuse freed memory, if any
    view[:] = 7.0  # writes to the detached old buffer, not freed memory
    assert float(view.sum()) == 7.0 * view.size
    assert not np.shares_memory(view, net.optimizer_state)
    del junk


def test_misaligned_and_overlapping_arrays_are_refused():
    buf = np.zeros(4 * 12 + 1, np.uint8)
    x = np.frombuffer(buf.data, dtype=np.float32, count=12, offset=1).reshape(3, 4)
    with pytest.raises(ValueError, match="aligned"):
        _core.dense_forward(x, np.ones((4, 2), np.float32), None, 0)
    spec = _core.OptimizerSpec()  # RMSprop: one slot
    p = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _core.optimizer_step(spec, 0, p, p, np.ones(4, np.float32))


def test_unbound_methods_with_a_wrong_self():
    spec = _core.OptimizerSpec()
    for name in _public(_core.Network):
        attr = inspect.getattr_static(_core.Network, name)
        fn = getattr(attr, "fget", attr)
        if not callable(fn):
            continue
        for self_ in (None, spec, 3, np.zeros(3, np.float32)):
            with pytest.raises((TypeError, RuntimeError)):  # pybind11's cast errors
                fn(self_)
            with pytest.raises((TypeError, RuntimeError)):
                fn(self_, np.zeros((2, 2), np.float32), 1)
