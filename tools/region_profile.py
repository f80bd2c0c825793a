"""Per-region wall times of the MNIST training epoch, at each thread count.

Run through tools/region_profile.sh, which builds the extension with
-DFASTDENSE_PROFILE_REGIONS=ON (unstripped) into its own folder and puts it
first on PYTHONPATH. Each configuration runs in a child process (the build
writes its region totals to stderr at exit); this script names each region
by the function its tasks come from (nm -C on the build) and prints
microseconds per training step, one column per configuration, with the
cross-core round trip measured before and after each child's epochs. Rows
"(serial, before X)" split "(between regions)": the calling thread's time
between the end of one region and the start of region X (the code that runs
on one thread there, plus the hand-off).

A configuration is a thread count, or a thread count with "s" (FASTDENSE_
PROFILE_SERIAL=1): the engine splits the work for that many threads but the
calling thread runs every task itself, so "2s" against "2" compares the same
tasks run serially and on the pool. (A plain "1" runs the one-thread engine,
which calls most kernels as a single task: those are not regions.)

    tools/region_profile.sh                      # 2s and 2, 2 epochs, 1 round
    tools/region_profile.sh --threads 1,2 --rounds 5

Needs MNIST (FASTDENSE_DATA or the paths the top-level README lists) and nm.
"""
from __future__ import annotations

import argparse
import bisect
import os
import re
import subprocess
import sys

BATCH = 128  # (bench.fastdense_epoch's batch size: the steps per epoch)

CHILD = r"""
import sys, time
import fastdense_isolated_build  # (drops editable-install hooks; checks the build)
from fastdense import bench, _core
threads, epochs = int(sys.argv[1]), int(sys.argv[2])
x, y, _, _ = bench._mnist()
_core.set_num_threads(threads)
f = bench.fastdense_epoch(x, y)
p0 = _core.cross_core_roundtrip_ns(seconds=0.1)
ts = []
for _ in range(epochs):
    t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
p1 = _core.cross_core_roundtrip_ns(seconds=0.1)
print("result", p0, p1, len(x), *ts, flush=True)
"""


def symbols(so: str) -> tuple[list[int], list[str]]:
    out = subprocess.run(["nm", "-C", "--defined-only", so], capture_output=True, text=True,
                         check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    if not syms:
        raise SystemExit(f"region_profile: {so} has no symbols (a stripped build?)")
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def region_name(sym: str) -> str:
    """'fastdense::detail::parallel_for_<fastdense::avx512::(anonymous
    namespace)::gemm_forward(...)::{lambda(long)#2}>(...)' -> 'gemm_forward#2'."""
    m = re.search(r"parallel_for_<(.*)", sym)
    if not m:
        return sym[:60]
    inner = m.group(1).replace("(anonymous namespace)::", "")
    fn = inner.split("(", 1)[0].replace("fastdense::", "")
    fn = re.sub(r"^(avx512|avx2|generic)::", "", fn)
    lam = re.search(r"\{lambda\([^)]*\)#(\d+)\}", inner)
    return fn + (f"#{lam.group(1)}" if lam else "")


def run_child(pkg: str, config: str, epochs: int) -> tuple[dict, list, tuple]:
    threads = int(config.rstrip("s"))
    env = dict(os.environ)
    env["FASTDENSE_PROFILE_SERIAL"] = "1" if config.endswith("s") else "0"
    env["PYTHONPATH"] = pkg + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["FASTDENSE_BUILD_TOOL"] = "region_profile"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(epochs)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"region_profile: the child failed:\n{proc.stderr[-3000:]}")
    res = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("result")][0]
    p0, p1, n = float(res[0]), float(res[1]), int(res[2])
    epochs_s = [float(v) for v in res[3:]]
    regions: dict[int, tuple[int, int, int]] = {}
    gaps = None
    for line in proc.stderr.splitlines():
        f = line.split()
        if f and f[0] == "fastdense-region":
            # (calls, wall ns, ns of the serial gaps that ended at its start)
            regions[int(f[1], 16)] = (int(f[2]), int(f[3]), int(f[5]) if len(f) > 5 else 0)
        elif f and f[0] == "fastdense-gaps":
            gaps = (int(f[1]), int(f[2]))
    if gaps is None:  # (a profiling build always writes this line)
        raise SystemExit("region_profile: no region totals: was the build made with "
                         "-DFASTDENSE_PROFILE_REGIONS=ON?")
    return regions, epochs_s, (p0, p1, n, gaps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pkg", required=True, help="the profiling build's install folder")
    ap.add_argument("--threads", default="2s,2",
                    help="comma-separated configurations: N threads, or Ns (N threads' "
                         "split, run serially)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per child (all timed)")
    ap.add_argument("--rounds", type=int, default=1, help="children per thread count")
    a = ap.parse_args()
    threads = [t.strip() for t in a.threads.split(",") if t.strip()]
    for t in threads:
        if not re.fullmatch(r"[1-9][0-9]*s?", t):
            raise SystemExit(f"region_profile: --threads takes counts like 1,2s,2; received: {t!r}")
    so = [os.path.join(a.pkg, "fastdense", f) for f in os.listdir(os.path.join(a.pkg, "fastdense"))
          if f.startswith("_core") and f.endswith((".so", ".pyd"))][0]
    addrs, names = symbols(so)

    def name_of(off: int) -> str:
        i = bisect.bisect_right(addrs, off) - 1
        return region_name(names[i]) if i >= 0 else hex(off)

    for r in range(a.rounds):
        cols = {}
        for t in threads:
            regions, eps, (p0, p1, n, gaps) = run_child(a.pkg, t, a.epochs)
            steps = -(-n // BATCH) * len(eps)
            col = {}
            for off, (calls, ns, gap_ns) in regions.items():
                key = name_of(off)
                c, w = col.get(key, (0, 0))
                col[key] = (c + calls, w + ns)
                if gap_ns:  # (the caller's serial time just before this region)
                    gk = f"(serial, before {key})"
                    c, w = col.get(gk, (0, 0))
                    col[gk] = (c + calls, w + gap_ns)
            col["(between regions)"] = (gaps[0], gaps[1])
            cols[t] = (col, eps, p0, p1, steps)
        keys = sorted({k for c in cols.values() for k in c[0]},
                      key=lambda k: -max(c[0].get(k, (0, 0))[1] for c in cols.values()))
        print(f"round {r + 1}: microseconds per training step (calls per step)")
        head = "| region | " + " | ".join(
            f"{t[:-1]} threads' tasks, serially" if t.endswith("s") else f"{t} thread(s)"
            for t in threads) + " |"
        print(head)
        print("| --- |" + " ---: |" * len(threads))
        for k in keys:
            cells = []
            for t in threads:
                col, _, _, _, steps = cols[t]
                calls, ns = col.get(k, (0, 0))
                cells.append(f"{ns / 1e3 / steps:.1f} ({calls / steps:.3g})" if calls else "")
            print(f"| {k} | " + " | ".join(cells) + " |")
        print("| epoch (s) | " + " | ".join(
            " ".join(f"{e:.3f}" for e in cols[t][1]) for t in threads) + " |")
        print("| cross-core round trip before/after (ns) | " + " | ".join(
            f"{cols[t][2]:.0f} / {cols[t][3]:.0f}" for t in threads) + " |")
        print(flush=True)


if __name__ == "__main__":
    main()
