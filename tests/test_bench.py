"""fastdense.bench's plumbing (the timed comparisons themselves are not run
in tests: speed targets live in benchmarks/)."""
from fastdense import bench


def test_epoch_times_reports_median_best_and_last_accuracy(monkeypatch):
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    calls = []

    def runner():
        calls.append(1)
        return 0.5 + len(calls) / 100

    res = bench.epoch_times({"a": runner}, epochs=3)
    median, best, acc = res["a"]
    assert len(calls) == 4  # one warm-up, then 3 timed
    assert 0 <= best <= median
    assert acc == 0.54  # the last call's accuracy


def test_time_format():
    assert bench._fmt_s(5.5e-6) == "5.5 us"
    assert bench._fmt_s(0.25) == "250.00 ms"
    assert bench._fmt_s(1.5) == "1.500 s"


def test_cross_core_roundtrip_probe_returns_a_time():
    """The probe the training table prints: a positive, finite round trip
    (a short slice: it spins two threads), its argument validated."""
    import math

    import pytest
    from fastdense import _core
    ns = _core.cross_core_roundtrip_ns(0.03)
    assert math.isfinite(ns) and ns > 0
    assert bench.roundtrip_ns.__doc__
    for bad in (0.0, -1.0, float("nan"), 11.0):
        with pytest.raises(ValueError, match="Received: seconds="):
            _core.cross_core_roundtrip_ns(bad)


def test_epoch_times_records_rounds_and_quiet_scaling(monkeypatch):
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    probes = iter([60.0, 300.0, 70.0])
    rounds = []
    res = bench.epoch_times({"a": lambda: 0.5, "b": lambda: 0.5}, epochs=3,
                            probe=lambda: next(probes), rounds=rounds)
    assert [r["probe"] for r in rounds] == [60.0, 300.0, 70.0]
    assert set(res) == {"a", "b"} and all(set(r) == {"probe", "a", "b"} for r in rounds)
    fake = [{"probe": 60.0, "many": 1.0, "one": 1.9}, {"probe": 300.0, "many": 1.8, "one": 2.0},
            {"probe": 70.0, "many": 1.0, "one": 1.7}]
    ratio, n = bench.quiet_scaling(fake, "many", "one")
    assert n == 2 and abs(ratio - 1.8) < 1e-12  # the 300 ns round left out
    assert bench.quiet_scaling([{"many": 1.0, "one": 2.0}], "many", "one") is None


def test_peer_thread_env_limits_blas_and_xla(monkeypatch):
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 4)
    env = bench.peer_thread_env(1, {"XLA_FLAGS": "--foo", "PATH": "/bin"})
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[k] == "1"
    assert env["PATH"] == "/bin"
    assert env["XLA_FLAGS"].startswith("--foo ")
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    # at the core count XLA keeps its own default
    assert "XLA_FLAGS" not in bench.peer_thread_env(4, {})
    assert bench.peer_thread_env(2, {})["XLA_FLAGS"] == "intra_op_parallelism_threads=2"


def test_bench_reexec_sets_numpy_threads(tmp_path):
    """`python -m fastdense.bench` reruns itself with numpy's BLAS limited to
    --threads, and says so in its first lines."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                        "BLIS_NUM_THREADS", "_FASTDENSE_BENCH_CHILD")}
    # `peak` alone: a fraction of a second of native timing, nothing compared
    out = subprocess.run([sys.executable, "-m", "fastdense.bench", "peak", "--threads", "1"],
                         env=env, capture_output=True, text=True, check=True, timeout=120).stdout
    assert "OPENBLAS_NUM_THREADS=1" in out, out
    assert out.count("fastdense ") == 1, out  # reported once, by the child


def _gemm_row(torch: bool):
    row = {"shape": "hidden 128x784x512", "op": "dW=X^T dZ (+db)", "fastdense_gflops": 50.0,
           "numpy_gflops": 40.0, "speedup_vs_numpy": 1.25, "fastdense_median": 48.0,
           "numpy_median": 39.0}
    if torch:
        row.update({"torch_gflops": 62.5, "torch_median": 60.0, "speedup_vs_torch": 0.8})
    return row


def test_gemm_table_adds_pytorch_columns_only_when_it_was_measured(monkeypatch):
    import io
    monkeypatch.setattr(bench, "peak_gflops", lambda threads: 100.0)
    for torch in (False, True):
        monkeypatch.setattr(bench, "gemm_rows", lambda threads, t=torch: [_gemm_row(t)])
        out = io.StringIO()
        bench.report("gemm", 1, out=out)
        lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("|")]
        head, rule, row = lines
        assert head.count("|") == rule.count("|") == row.count("|")
        assert ("PyTorch" in head) == torch
        assert "| 50.0 (48.0) | 50% | 40.0 (39.0) | 1.25x |" in row
        if torch:
            assert row.endswith("| 62.5 (60.0) | 62% | 0.80x |")


def test_gemm_rows_times_pytorch_when_installed(monkeypatch):
    """Each contender runs and is timed: PyTorch's column is there exactly
    when it imports (the timings are stubbed: one call each)."""
    import importlib.util
    def one_call_each(fns, **kw):
        return {k: [(fn(), 1e-3)[1]] for k, fn in fns.items()}

    monkeypatch.setattr(bench, "interleaved_times", one_call_each)
    rows = bench.gemm_rows(1)
    assert len(rows) == 6
    has = importlib.util.find_spec("torch") is not None
    assert all(("torch_gflops" in r) == has for r in rows)


def test_interleaved_times_ramps_each_repeat_untimed(monkeypatch):
    """Each repeat, for each function: a pause, RAMP_S of calls whose time is
    dropped, then the timed calls (the time recorded)."""
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    seen = []

    def fake_per_call_time(fn, min_time):
        fn()
        seen.append((fn.__name__, min_time))
        return 1.0 if min_time == bench.RAMP_S else 2.0

    monkeypatch.setattr(bench, "_per_call_time", fake_per_call_time)

    def a():
        pass

    def b():
        pass

    res = bench.interleaved_times({"a": a, "b": b}, repeat=2, min_time=0.05)
    assert res == {"a": [2.0, 2.0], "b": [2.0, 2.0]}  # (the ramp's time dropped)
    assert seen == [("a", bench.RAMP_S), ("a", 0.05), ("b", bench.RAMP_S), ("b", 0.05)] * 2
    assert bench.RAMP_S > 0
