"""Tests for fastdense._progbar (Keras-3-compatible progress bar)."""

import importlib
import importlib.util
import io
import os
import pathlib
import sys

import numpy as np
import pytest

try:
    from fastdense import _progbar
except Exception:  # package __init__ missing / not importable yet
    _path = (
        pathlib.Path(__file__).resolve().parents[1]
        / "python" / "fastdense" / "_progbar.py"
    )
    _spec = importlib.util.spec_from_file_location("_fd_progbar", _path)
    _progbar = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_progbar)

Progbar = _progbar.Progbar
print_msg = _progbar.print_msg

B, G, W, R = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"
BAR = "\u2501"


class FakeClock:
    """Stand-in for the ``time`` module with a settable ``time()``."""

    def __init__(self, t=1000.0):
        self.t = t

    def time(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(_progbar, "time", c)
    return c


def run_epoch(pb, clock, steps, first=0.5, per_step=0.002, logs=None):
    """Drive ``pb`` like Keras' ProgbarLogger: update per batch, finalize."""
    for i in range(1, steps + 1):
        clock.t += first if i == 1 else per_step
        pb.update(i, list((logs or {}).items()), finalize=False)
    pb.update(steps, list((logs or {}).items()), finalize=True)


# --------------------------------------------------------------------------
# verbose=1


def test_verbose1_final_line_non_dynamic(clock):
    out = io.StringIO()
    pb = Progbar(469, file=out, dynamic_display=False, interval=1e9)
    logs = {"accuracy": 0.92661, "loss": 0.254}
    run_epoch(pb, clock, 469, logs=logs)
    # interval=1e9 -> only the finalize call draws.
    assert out.getvalue() == (
        # Keras emits an (empty) grey segment even for a full bar.
        f"\n{B}469/469{R} {G}{BAR * 20}{R}{W}{R} {B}1s{R} 2ms/step"
        " - accuracy: 0.9266 - loss: 0.2540\n"
    )


def test_verbose1_partial_bar_eta_and_redraw(clock):
    out = io.StringIO()
    pb = Progbar(10, file=out, dynamic_display=True)
    clock.t += 1.0
    pb.update(1, [("loss", 2.0)])
    first = out.getvalue()
    # 1/10 -> 2 green cells, 18 grey; eta = 1s * 9 steps.
    line1 = f"{B} 1/10{R} {G}{BAR * 2}{R}{W}{BAR * 18}{R} {B}9s{R} 1s/step - loss: 2.0000"
    assert first == "\r" + line1
    visible1 = len(" 1/10 ") + 20 + len(" 9s 1s/step - loss: 2.0000")
    clock.t += 0.5
    pb.update(5, [("loss", 1.0)])
    second = out.getvalue()[len(first):]
    # Averaged: (2*1 + 1*4) / 5 = 1.2; eta = 0.5/4 * 5 -> "0s", 125ms/step.
    line2 = f"{B} 5/10{R} {G}{BAR * 10}{R}{W}{BAR * 10}{R} {B}0s{R} 125ms/step - loss: 1.2000"
    assert second == "\b" * visible1 + "\r" + line2


def test_verbose1_padding_when_line_shrinks(clock):
    out = io.StringIO()
    pb = Progbar(4, file=out, dynamic_display=True, interval=0)
    clock.t += 1
    pb.update(1, [("m", 1e-7)])  # " - m: 1.0000e-07" (long)
    w1 = pb._prev_total_width
    first = out.getvalue()
    clock.t += 1
    pb.update(2, [("m", 1.0)], finalize=True)  # " - m: 1.0000" (shorter)
    w2 = pb._prev_total_width
    assert w1 - w2 == 4
    second = out.getvalue()[len(first):]
    assert second.startswith("\b" * w1 + "\r")
    assert second.endswith(" - m: 1.0000" + " " * 4 + "\n")


def test_verbose1_interval_throttles(clock):
    out = io.StringIO()
    pb = Progbar(100, file=out, dynamic_display=False, interval=0.05)
    for i in range(1, 100):
        clock.t += 0.01
        pb.update(i)
    # Draws happen whenever >= 0.05s passed since the last draw.
    assert 15 <= out.getvalue().count("\n") <= 21
    clock.t += 0.001
    pb.update(100)
    assert out.getvalue().endswith("\n")


def test_unknown_target(clock):
    out = io.StringIO()
    pb = Progbar(None, file=out, dynamic_display=False)
    clock.t += 2
    pb.update(3, [("loss", 0.5)])
    assert out.getvalue() == f"\n      3/Unknown {B}2s{R} 667ms/step - loss: 0.5000"


@pytest.mark.parametrize(
    "per_step,expected",
    [
        (2.4, " 2s/step"),
        (1.0, " 1s/step"),
        (0.25, " 250ms/step"),
        (0.004, " 4ms/step"),
        (0.0002, " 200us/step"),
        (0.0, " 0s/step"),
    ],
)
def test_time_per_unit_formatting(clock, per_step, expected):
    out = io.StringIO()
    pb = Progbar(3, file=out, verbose=2, unit_name="step")
    for i in range(1, 4):
        clock.t += per_step
        pb.update(i)
    assert out.getvalue().split(" -", 2)[2] == expected + "\n"


def test_unit_name():
    assert Progbar._format_time(0.5, "sample") == " 500ms/sample"


@pytest.mark.parametrize(
    "eta,expected",
    [(0.9, "0s"), (59.9, "59s"), (61, "1:01"), (3599, "59:59"),
     (3601, "1:00:01"), (90061, "25:01:01")],
)
def test_eta_formatting(eta, expected):
    assert Progbar._format_eta(eta) == expected


@pytest.mark.parametrize(
    "value,v1,v2",
    [
        (0.25, "0.2500", "0.2500"),
        (123456.789, "123456.7890", "123456.7890"),
        (1e-3, "1.0000e-03", "1.0000e-03"),
        (2e-5, "2.0000e-05", "2.0000e-05"),
        (0.0, "0.0000e+00", "0.0000e+00"),
        (-0.5, "-0.5000", "-5.0000e-01"),  # verbose=2 compares signed value
        (np.float32(0.5), "0.5000", "0.5000"),
        (np.array([0.2, 0.4]), "0.3000", "0.3000"),
        (3, "3.0000", "3.0000"),
    ],
)
def test_value_formatting(clock, value, v1, v2):
    for verbose, expected in ((1, v1), (2, v2)):
        out = io.StringIO()
        pb = Progbar(1, file=out, verbose=verbose, dynamic_display=False)
        clock.t += 0.1
        pb.update(1, [("x", value)])
        assert out.getvalue().endswith(f" - x: {expected}\n")


def test_large_exponent_value(clock):
    out = io.StringIO()
    pb = Progbar(1, file=out, verbose=2)
    clock.t += 0.1
    pb.update(1, [("x", 1.5e-12)])
    assert out.getvalue().endswith(" - x: 1.5000e-12\n")


# --------------------------------------------------------------------------
# verbose=2 / verbose=0


def test_verbose2_single_line(clock):
    out = io.StringIO()
    pb = Progbar(469, file=out, verbose=2)
    run_epoch(pb, clock, 469, logs={"accuracy": 0.92661, "loss": 0.254})
    assert out.getvalue() == (
        "469/469 - 1s - 2ms/step - accuracy: 0.9266 - loss: 0.2540\n"
    )


def test_verbose2_counter_padding(clock):
    out = io.StringIO()
    pb = Progbar(1000, file=out, verbose=2)
    clock.t += 3.0
    pb.update(7, finalize=True)
    assert out.getvalue() == "   7/1000 - 3s - 429ms/step\n"


def test_verbose0_silent(clock, capsys):
    pb = Progbar(10, verbose=0)
    for i in range(1, 11):
        clock.t += 1
        pb.update(i, [("loss", 1.0)])
    pb.add(1)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------
# metric averaging, add(), stdout, print_msg


def test_averaging_and_stateful(clock):
    out = io.StringIO()
    pb = Progbar(10, file=out, verbose=1, dynamic_display=False, interval=0,
                 stateful_metrics=["acc"])
    clock.t += 1
    pb.update(2, [("loss", 1.0), ("acc", 0.1)])
    clock.t += 1
    pb.update(6, [("loss", 4.0), ("acc", 0.7)])
    # loss weighted by steps covered: (1*2 + 4*4) / 6 = 3.0; acc as-is.
    assert out.getvalue().endswith(" - loss: 3.0000 - acc: 0.7000")
    clock.t += 1
    pb.update(10, [("loss", 9.0)])  # finalize -> value shown as given
    assert out.getvalue().endswith(" - loss: 9.0000 - acc: 0.7000\n")


def test_stateless_metrics_option(clock):
    out = io.StringIO()
    pb = Progbar(10, file=out, dynamic_display=False, interval=0,
                 stateless_metrics=["loss"])
    clock.t += 1
    pb.update(1, [("loss", 1.0), ("acc", 0.1)])
    clock.t += 1
    pb.update(2, [("loss", 3.0), ("acc", 0.5)])
    assert out.getvalue().endswith(" - loss: 2.0000 - acc: 0.5000")
    with pytest.raises(ValueError):
        Progbar(1, stateful_metrics=[], stateless_metrics=[])


def test_add(clock):
    out = io.StringIO()
    pb = Progbar(4, file=out, verbose=2)
    for _ in range(2):
        clock.t += 1
        pb.add(2, [("loss", 1.0)])
    # Step 1 was never reported, so the estimate is elapsed / current.
    assert out.getvalue() == "4/4 - 2s - 500ms/step - loss: 1.0000\n"


def test_writes_to_current_stdout(clock, capsys):
    pb = Progbar(2, verbose=2)
    clock.t += 1
    pb.update(2)
    assert capsys.readouterr().out == "2/2 - 1s - 500ms/step\n"


def test_print_msg(capsys):
    print_msg("Epoch 1/3")
    print_msg("abc", line_break=False)
    assert capsys.readouterr().out == "Epoch 1/3\nabc"
    buf = io.StringIO()
    print_msg("x", file=buf)
    assert buf.getvalue() == "x\n"


def test_dynamic_display_detection():
    class NotTTY(io.StringIO):
        def isatty(self):
            return False

    expected = "posix" in sys.modules or "ipykernel" in sys.modules or (
        "PYCHARM_HOSTED" in os.environ)
    assert Progbar(1, file=NotTTY())._dynamic_display == expected

    class TTY(io.StringIO):
        def isatty(self):
            return True

    assert Progbar(1, file=TTY())._dynamic_display is True


# --------------------------------------------------------------------------
# Byte-for-byte comparison against keras.utils.Progbar (if installed)


def _load_keras_progbar():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        return importlib.import_module("keras.src.utils.progbar")
    except Exception:
        return None


SCENARIOS = [
    # (target, kwargs, schedule of (dt, current, values, finalize))
    (469, {}, "epoch"),
    (469, {"verbose": 2}, "epoch"),
    (469, {"stateful_metrics": ["accuracy"]}, "epoch"),
    (5000, {"interval": 0.0}, "slow"),
    (None, {}, "unknown"),
    (7, {"width": 30, "unit_name": "sample"}, "tiny"),
    (3, {"verbose": 2}, "tiny"),
]


def _schedule(kind, target):
    rng = np.random.default_rng(0)
    if kind == "epoch":
        for i in range(1, target + 1):
            dt = 0.8 if i == 1 else 0.002 + 0.0005 * rng.random()
            logs = [("accuracy", 0.5 + i / 1000.0),
                    ("loss", 2.0 / i), ("tiny", 1e-6 * i), ("neg", -0.3)]
            yield dt, i, logs, False
        yield 0.01, target, [("accuracy", 0.9266), ("loss", 0.254),
                             ("tiny", 4.2e-4), ("neg", -0.3)], True
    elif kind == "slow":
        for i in (1, 2, 10, 100, 1000, 4999):
            yield 1.7 * i, i, [("loss", 1.0 / i)], False
        yield 3.0, 5000, [("loss", 123456.0)], None
    elif kind == "unknown":
        for i in range(1, 6):
            yield 0.3, i, [("loss", float(i))], False
        yield 0.1, 5, [("loss", 3.0)], True
    elif kind == "tiny":
        for i in range(1, target + 1):
            yield 0.00004 * i, i, [("mae", np.float32(0.1) * i)], None


@pytest.mark.parametrize("target,kwargs,kind", SCENARIOS)
def test_matches_keras(monkeypatch, capsys, target, kwargs, kind):
    kprog = _load_keras_progbar()
    if kprog is None:
        pytest.skip("keras not installed")

    def drive(module, cls):
        clock = FakeClock(5000.0)
        monkeypatch.setattr(module, "time", clock)
        capsys.readouterr()
        pb = cls(target, **kwargs)
        for dt, cur, vals, fin in _schedule(kind, target):
            clock.t += dt
            pb.update(cur, vals, finalize=fin)
        return capsys.readouterr().out

    ours = drive(_progbar, Progbar)
    theirs = drive(kprog, kprog.Progbar)
    assert theirs  # sanity: something was printed
    assert ours == theirs
