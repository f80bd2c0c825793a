"""Side-by-side speed measurements, shipped with the package.

    python -m fastdense.bench            # everything, as a table of ratios
    python -m fastdense.bench peak       # the machine's FMA peak (GFLOP/s)
    python -m fastdense.bench gemm       # the three training GEMMs vs numpy
    python -m fastdense.bench train      # MNIST epoch, tiny model, predict latency
                                         # vs PyTorch and Keras when installed

Every comparison is measured in the same process with the same thread count,
interleaved (one repeat of each contender in turn, so that a slow spell of a
shared machine falls on all of them); each number is the median of several
repeats.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _core


def _per_call_time(fn: Callable[[], Any], min_time: float) -> float:
    """Wall time of one fn() call: calls repeated until they take at least
    min_time, then divided."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_time:
            return el / n


def median_time(fn: Callable[[], Any], repeat: int = 7, warmup: int = 1,
                min_time: float = 0.0) -> float:
    """Median wall time of fn() over `repeat` runs (each run repeated until it
    takes at least min_time, then divided)."""
    for _ in range(warmup):
        fn()
    return statistics.median(_per_call_time(fn, min_time) for _ in range(repeat))


# Pause before timing another library: thread pools keep spinning for a while
# after their last job (OpenBLAS's for ~0.1 s), and on a 2-core machine such a
# spinning thread takes a core from whatever is timed next.
SETTLE_S = 0.25
# Untimed calls after that pause, before the timed ones: the first few ms
# after both cores idled run slower for every library (the 2-vCPU VM, 9
# interleaved repeats of 50 ms: fastdense's 128x784x512 forward 191 GFLOP/s
# best without, 203 after 30 ms of calls; numpy's 166 and 172), and training
# calls the kernels back to back.
RAMP_S = 0.03


def interleaved_times(fns: Dict[str, Callable[[], Any]], repeat: int = 7, warmup: int = 1,
                      min_time: float = 0.0) -> Dict[str, List[float]]:
    """The per-call times of several functions over `repeat` repeats (as
    median_time's), run in turn within each repeat with a SETTLE_S pause and
    RAMP_S of untimed calls before each."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            time.sleep(SETTLE_S)
            _per_call_time(fn, RAMP_S)  # (wakes this library's threads; untimed)
            times[k].append(_per_call_time(fn, min_time))
    return times


# ------------------------------------------------------------------ peak
def peak_gflops(threads: int) -> Optional[float]:
    """FMA peak of the active ISA (GFLOP/s) from the native microbenchmark."""
    fn = getattr(_core, "fma_peak_gflops", None)
    if fn is None:
        return None
    return float(fn(threads))


def roundtrip_ns() -> Optional[float]:
    """Round trip (ns) of a cache line between two threads, from the native
    probe (best of three 0.1 s slices)."""
    fn = getattr(_core, "cross_core_roundtrip_ns", None)
    return None if fn is None else float(fn(0.3))


# ------------------------------------------------------------------ GEMM
GEMM_SHAPES = {
    # name: (B, in, out)  -- the MNIST step's layers
    "hidden 128x784x512": (128, 784, 512),
    "output 128x512x10": (128, 512, 10),
}


def _torch(threads: int) -> Any:
    """PyTorch set to `threads` threads, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def gemm_rows(threads: int) -> List[Dict[str, Any]]:
    """GFLOP/s of forward (Y=XW+b, relu), dW=X^T dZ (+db) alone, and the whole
    backward (dW and dX=dZ W^T) vs numpy on the same arrays, through the
    Python bindings (each call allocates its outputs, as numpy's does), and
    vs PyTorch's CPU matmul (its own BLAS: MKL in the x86 wheels) where it is
    installed. Each is the best of 9 interleaved timings of >= 50 ms of
    repeated calls (the FMA peak is a best of runs too), and the median
    beside it."""
    rng = np.random.default_rng(0)
    rows = []
    _core.set_num_threads(threads)
    torch = _torch(threads)

    for name, (B, n_in, n_out) in GEMM_SHAPES.items():
        x = rng.standard_normal((B, n_in), dtype=np.float32)
        w = rng.standard_normal((n_in, n_out), dtype=np.float32) * 0.05
        b = np.zeros(n_out, np.float32)
        y = _core.dense_forward(x, w, b, 1)
        dy = rng.standard_normal((B, n_out), dtype=np.float32)
        flops = 2.0 * B * n_in * n_out
        if torch is not None:  # (the same memory)
            xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        # (op, flops, fastdense, numpy, PyTorch or None)
        cases = (
            ("Y=XW+b,relu", flops, lambda: _core.dense_forward(x, w, b, 1),
             lambda: np.maximum(x @ w + b, 0),
             torch and (lambda: torch.relu(torch.addmm(bt, xt, wt)))),
            # (linear: the same work as numpy's; with relu the kernel also
            # applies the derivative while packing dZ)
            ("dW=X^T dZ (+db)", flops, lambda: _core.dense_backward(dy, y, x, w, 0, True, False),
             lambda: (x.T @ dy, dy.sum(0)),
             torch and (lambda: (xt.T @ dyt, dyt.sum(0)))),
            ("dW and dX=dZ W^T", 2 * flops,
             lambda: _core.dense_backward(dy, y, x, w, 0, True, True),
             lambda: (x.T @ dy, dy.sum(0), dy @ w.T),
             torch and (lambda: (xt.T @ dyt, dyt.sum(0), dyt @ wt.T))),
        )
        for op, fl, ours, theirs, torch_fn in cases:
            fns = {"ours": ours, "numpy": theirs}
            if torch_fn:
                fns["torch"] = torch_fn
            tt = interleaved_times(fns, repeat=9, min_time=0.05)
            tf, tn = min(tt["ours"]), min(tt["numpy"])
            row = {"shape": name, "op": op, "fastdense_gflops": fl / tf / 1e9,
                   "numpy_gflops": fl / tn / 1e9, "speedup_vs_numpy": tn / tf,
                   "fastdense_median": fl / statistics.median(tt["ours"]) / 1e9,
                   "numpy_median": fl / statistics.median(tt["numpy"]) / 1e9}
            if torch_fn:
                row.update({"torch_gflops": fl / min(tt["torch"]) / 1e9,
                            "torch_median": fl / statistics.median(tt["torch"]) / 1e9,
                            "speedup_vs_torch": min(tt["torch"]) / tf})
            rows.append(row)
    return rows


# ------------------------------------------------------------------ training
def _mnist() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from .datasets import mnist
    (x, y), (xt, yt) = mnist.load_data()
    return (x.reshape(-1, 784).astype("float32") / 255, y.astype(np.int64),
            xt.reshape(-1, 784).astype("float32") / 255, yt.astype(np.int64))


def fastdense_epoch(x, y) -> Callable[[], float]:
    """The MNIST workflow as a Keras user writes it; returns a function that
    trains one epoch and returns its train accuracy."""
    from . import layers, models
    from .utils import to_categorical
    yc = to_categorical(y, 10)
    m = models.Sequential([layers.Dense(512, activation="relu", input_shape=(784,)),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return lambda: m.fit(x, yc, epochs=1, batch_size=128, verbose=0).history["accuracy"][-1]


def torch_epoch(x, y, threads: int) -> Optional[Callable[[], float]]:
    """The same network as a PyTorch user writes it (eager, Keras's RMSprop
    constants, logits + CrossEntropyLoss)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch() -> float:
        perm = torch.randperm(len(xt))
        correct = 0
        for s in range(0, len(xt), 128):
            idx = perm[s:s + 128]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            correct += int((out.argmax(1) == yb).sum())
        return correct / len(xt)

    return epoch


def keras_epoch(x, y) -> Optional[Tuple[Callable[[], float], str]]:
    """The Keras script itself (JAX backend unless KERAS_BACKEND says otherwise)."""
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras
    except Exception:
        return None
    yc = keras.utils.to_categorical(y, 10)
    m = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return (lambda: m.fit(x, yc, epochs=1, batch_size=128, verbose=0).history["accuracy"][-1],
            keras.backend.backend())


def epoch_times(runners: Dict[str, Callable[[], float]], epochs: int = 5,
                probe: Optional[Callable[[], float]] = None,
                rounds: Optional[List[Dict[str, float]]] = None
                ) -> Dict[str, Tuple[float, float, float]]:
    """(median epoch time, best epoch time, last train accuracy) of each
    runner: one warm-up epoch each (compilation, allocation), then `epochs`
    rounds in turn.  With `probe` and `rounds`, each round's times are also
    appended to `rounds`, with the probe's value before the round as "probe"."""
    acc = {k: fn() for k, fn in runners.items()}
    times: Dict[str, List[float]] = {k: [] for k in runners}
    for _ in range(epochs):
        row: Dict[str, float] = {}
        if probe is not None:
            row["probe"] = probe()
        for k, fn in runners.items():
            time.sleep(2 * SETTLE_S)
            t0 = time.perf_counter()
            acc[k] = fn()
            times[k].append(time.perf_counter() - t0)
            row[k] = times[k][-1]
        if rounds is not None:
            rounds.append(row)
    return {k: (statistics.median(times[k]), min(times[k]), acc[k]) for k in runners}


def quiet_scaling(rounds: List[Dict[str, float]], many: str, one: str
                  ) -> Optional[Tuple[float, int]]:
    """The median of one/many over the rounds whose probe (cross-core round
    trip) stayed within 2x of the run's lowest, and how many rounds that was:
    the thread scaling outside a shared VM's slow phases (see benchmarks/README.md)."""
    probes = [r["probe"] for r in rounds if "probe" in r]
    if not probes:
        return None
    quiet = [r for r in rounds if "probe" in r and r["probe"] <= 2 * min(probes)]
    return statistics.median(r[one] / r[many] for r in quiet), len(quiet)


def tiny_fit_time() -> float:
    """The 1-64-64-64-64-1 sigmoid model: 100 epochs on 10 samples at batch 10."""
    from . import layers, models
    x = np.linspace(0, 3.5, 10, dtype=np.float32).reshape(-1, 1)
    y = (x[:, 0] > 1).astype(np.float32)

    def run():
        m = models.Sequential([layers.Dense(64, activation="sigmoid", input_shape=(1,))]
                              + [layers.Dense(64, activation="sigmoid") for _ in range(3)]
                              + [layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        t0 = time.perf_counter()
        m.fit(x, y, epochs=100, batch_size=10, verbose=0)
        return time.perf_counter() - t0

    return statistics.median(run() for _ in range(7))


def predict_latency(x1: np.ndarray) -> float:
    from . import layers, models
    m = models.Sequential([layers.Dense(512, activation="relu", input_shape=(784,)),
                           layers.Dense(10, activation="softmax")])
    return median_time(lambda: m.predict(x1, verbose=0), repeat=9, min_time=0.05)


def train_rows(threads: int) -> List[Dict[str, Any]]:
    _core.set_num_threads(threads)
    x, y, xt, _ = _mnist()
    runners: Dict[str, Callable[[], float]] = {"fastdense": fastdense_epoch(x, y)}
    if threads > 1:  # the thread scaling, interleaved with the others
        one = fastdense_epoch(x, y)

        def one_thread() -> float:
            _core.set_num_threads(1)
            try:
                return one()
            finally:
                _core.set_num_threads(threads)

        runners["fastdense, 1 thread"] = one_thread
    tr = torch_epoch(x, y, threads)
    if tr is not None:
        runners["pytorch"] = tr
    kr = keras_epoch(x, y)
    if kr is not None:
        runners[f"keras ({kr[1]})"] = kr[0]
    rounds: List[Dict[str, float]] = []
    res = epoch_times(runners, probe=lambda: _core.cross_core_roundtrip_ns(0.06), rounds=rounds)
    fd_t, fd_best = res["fastdense"][0], res["fastdense"][1]
    rows: List[Dict[str, Any]] = []
    for who, (sec, best, acc) in res.items():
        what = "MNIST epoch (784-512-10, rmsprop, batch 128)" if who == "fastdense" \
            else "MNIST epoch"
        note = f"best {_fmt_s(best)}; train acc {acc:.4f}"
        if who == "fastdense, 1 thread":  # (its ratio: the speedup of `threads` threads)
            note += (f"; {threads} threads vs 1: {sec / fd_t:.2f}x, best vs best "
                     f"{best / fd_best:.2f}x (target >= 1.8x at 2)")
            q = quiet_scaling(rounds, "fastdense", who)
            if q is not None:
                note += (f"; rounds with a quiet cross-core round trip ({q[1]} of "
                         f"{len(rounds)}, " + ", ".join(f"{r['probe']:.0f}" for r in rounds)
                         + f" ns): {q[0]:.2f}x")
        rows.append({"what": what, "who": who, "seconds": sec, "ratio": sec / fd_t,
                     "note": note})
    rows.append({"what": "tiny 1-64x4-1 fit, 100 epochs", "who": "fastdense",
                 "seconds": tiny_fit_time(), "ratio": None, "note": "target < 5 ms"})
    rows.append({"what": "predict one MNIST sample", "who": "fastdense",
                 "seconds": predict_latency(xt[:1]), "ratio": None, "note": "target < 15 us"})
    return rows


# ------------------------------------------------------------------ report
def _fmt_s(s: float) -> str:
    return f"{s * 1e6:.1f} us" if s < 1e-3 else (f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.3f} s")


def report(which: str, threads: int, out=sys.stdout) -> None:
    print(f"fastdense {__import__('fastdense').__version__}, kernels {_core.kernel_isa()}, "
          f"{threads} thread(s), numpy {np.__version__}", file=out)
    blas = {k: os.environ.get(k) for k in _BLAS_ENV if os.environ.get(k)}
    print("numpy's BLAS threads: " + (", ".join(f"{k}={v}" for k, v in blas.items()) if blas
          else "not limited (its default: every core)"), file=out)
    if which in ("all", "peak", "gemm"):
        pk1, pk = peak_gflops(1), peak_gflops(threads)
        if pk is not None:
            print(f"\nFMA peak ({_core.kernel_isa()}): {pk1:.1f} GFLOP/s on 1 thread, "
                  f"{pk:.1f} on {threads}", file=out)
    if which in ("all", "gemm"):
        pk = peak_gflops(threads)
        print("\nGFLOP/s: best of 9 interleaved repeats (median in brackets)", file=out)
        rows = gemm_rows(threads)
        has_torch = any("torch_gflops" in r for r in rows)
        pct = (lambda g: f"{100 * g / pk:.0f}%") if pk else (lambda g: "n/a")
        head = "| shape | op | fastdense GFLOP/s | % of peak | numpy GFLOP/s | fastdense / numpy |"
        if has_torch:
            head += " PyTorch GFLOP/s | % of peak | fastdense / PyTorch |"
        print("\n" + head, file=out)
        print("| --- | --- |" + " ---: |" * (head.count("|") - 3), file=out)
        for r in rows:
            line = (f"| {r['shape']} | {r['op']} | {r['fastdense_gflops']:.1f} "
                    f"({r['fastdense_median']:.1f}) | {pct(r['fastdense_gflops'])} | "
                    f"{r['numpy_gflops']:.1f} ({r['numpy_median']:.1f}) | "
                    f"{r['speedup_vs_numpy']:.2f}x |")
            if has_torch:
                line += (f" {r['torch_gflops']:.1f} ({r['torch_median']:.1f}) | "
                         f"{pct(r['torch_gflops'])} | {r['speedup_vs_torch']:.2f}x |")
            print(line, file=out)
    if which in ("all", "train"):
        before = roundtrip_ns()
        rows = train_rows(threads)
        after = roundtrip_ns()
        print("\n| workload | trainer | time | time / fastdense's | note |", file=out)
        print("| --- | --- | ---: | ---: | --- |", file=out)
        for r in rows:
            ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
            print(f"| {r['what']} | {r['who']} | {_fmt_s(r['seconds'])} | {ratio} | {r['note']} |",
                  file=out)
        if before is not None and after is not None:
            print(f"\nCross-core round trip before / after the training rows: {before:.0f} / "
                  f"{after:.0f} ns (every parallel step hands data between cores: where it is "
                  f"several times its usual value, the multi-thread rows are slowed too)",
                  file=out)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m fastdense.bench", description=__doc__.splitlines()[0])
    p.add_argument("which", nargs="?", default="all", choices=["all", "peak", "gemm", "train"])
    p.add_argument("--threads", type=int, default=_core.get_num_threads())
    args = p.parse_args(argv)
    if argv is None and _limit_peer_threads(args.threads):
        return
    report(args.which, args.threads)


# numpy's BLAS (OpenBLAS, MKL, BLIS through OpenMP) and XLA read their thread
# counts when they load, from the environment: so the same thread count for
# every contender takes a fresh interpreter with it set.
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
_REEXEC_MARK = "_FASTDENSE_BENCH_CHILD"


def peer_thread_env(threads: int, env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """`env` (default os.environ) with numpy's BLAS and JAX's XLA limited to
    `threads` threads (XLA only below the core count: it has no other setting)."""
    out = dict(os.environ if env is None else env)
    out.update({k: str(threads) for k in _BLAS_ENV})
    if threads < (os.cpu_count() or 1):
        flags = out.get("XLA_FLAGS", "")
        extra = (f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
                 if threads == 1 else f"intra_op_parallelism_threads={threads}")
        out["XLA_FLAGS"] = (flags + " " + extra).strip()
    return out


def _limit_peer_threads(threads: int) -> bool:
    """Rerun this command with the peers' thread counts set to `threads`,
    unless they already are; True when it did (and the child has reported)."""
    if os.environ.get(_REEXEC_MARK) or all(os.environ.get(k) == str(threads) for k in _BLAS_ENV):
        return False
    import subprocess
    env = peer_thread_env(threads)
    env[_REEXEC_MARK] = "1"
    rc = subprocess.call([sys.executable, "-m", "fastdense.bench", *sys.argv[1:]], env=env)
    if rc:
        raise SystemExit(rc)
    return True


if __name__ == "__main__":
    main()
