#!/usr/bin/env python3
"""The schedule benchmark: how late fire times start, and what a serving
process costs while it waits.

    python3 tests/perf/bench/schedule/run.py [--flowlua build-bench/flowlua] [--fires 200] [--idle 60]

1. Lateness: a flow on a 50 ms interval served for --fires runs (default
   200); each run records started_at - scheduled_at; median, p99, max.
   The reference is the due times themselves: a lateness of 0.
2. Idle cost: a flow on a one-hour interval served for --idle seconds
   (default 60) once it has said when its next run is, then SIGTERM; the
   CPU time (user + system) it used meanwhile, from /proc/PID/stat, as a
   share of the wall time, and its wake-ups (voluntary context switches).
Both serve with the run history (the default state file, in a temporary
folder), as a scheduled flow is served. Run it on an otherwise idle machine.
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
TARGET_MEDIAN_MS = 1.0
TARGET_MAX_MS = 10.0
TARGET_IDLE_CPU_PERCENT = 0.1

IDLE_FLOW = """
local flow = require "flowlua"
local noop = flow.task("noop", function() end)
return flow.define("idle", { schedule = flow.interval { hours = 1 } }, function() noop() end)
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def switches(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    return -1


def lateness(flowlua, fires, interval, workdir):
    env = dict(os.environ, BENCH_RUNS=str(fires), BENCH_INTERVAL=str(interval))
    _, out = benchlib.run_checked([flowlua, "--quiet", "--max-runs", str(fires),
                                   os.path.join(HERE, "lateness.lua")],
                                  env=env, cwd=workdir, timeout=fires * interval + 120)
    got = benchlib.pairs(benchlib.last_line(out, "lateness.lua"), "lateness.lua")
    if got.get("fires") != str(fires):
        raise BenchError(f"lateness.lua: expected {fires} fires, got {out!r}")
    return {"fires": fires, "interval_s": interval, "median_ms": float(got["median_ms"]),
            "p99_ms": float(got["p99_ms"]), "max_ms": float(got["max_ms"])}


def idle_cost(flowlua, idle, workdir):
    script = os.path.join(workdir, "idle.lua")
    with open(script, "w") as f:
        f.write(IDLE_FLOW)
    proc = subprocess.Popen([flowlua, script], cwd=workdir, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Past start-up once it has said when it runs next: from there on it
        # only waits, and that waiting is what is measured.
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        said = proc.stderr.readline() if ready else "(nothing within 60 s)"
        if "next run at" not in said:
            proc.kill()
            raise BenchError(f"serving idle.lua: expected its next run time first, got {said!r}"
                             f"{benchlib.tail(proc.stderr.read())}")
        cpu0, sw0, t0 = cpu_seconds(proc.pid), switches(proc.pid), time.monotonic()
        time.sleep(idle)  # the measurement itself: a span of wall time
        cpu1, sw1, wall = cpu_seconds(proc.pid), switches(proc.pid), time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, 130):
        raise BenchError(f"serving idle.lua: exit {proc.returncode} after SIGTERM:\n{benchlib.tail(rest)}")
    cpu = cpu1 - cpu0
    return {"seconds": wall, "cpu_s": cpu, "cpu_percent": 100 * cpu / wall, "wakeups": sw1 - sw0,
            "exit": proc.returncode, "cpu_resolution_s": 1 / os.sysconf("SC_CLK_TCK")}


def measure(flowlua, workdir, fires=200, interval=0.05, idle=60, log=print):
    """Returns {"lateness": {...}, "idle": {...}} (see the docstring)."""
    os.makedirs(workdir, exist_ok=True)
    late = lateness(flowlua, fires, interval, workdir)
    log(f"  lateness over {fires} fires of a {interval * 1000:.0f} ms interval: median {late['median_ms']:.3f} ms, "
        f"p99 {late['p99_ms']:.3f} ms, max {late['max_ms']:.3f} ms")
    cost = idle_cost(flowlua, idle, workdir)
    log(f"  idle serving for {cost['seconds']:.0f} s: {1000 * cost['cpu_s']:.0f} ms of CPU "
        f"({cost['cpu_percent']:.3f} %), {cost['wakeups']} wake-ups")
    return {"lateness": late, "idle": cost}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"))
    ap.add_argument("--fires", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--idle", type=float, default=60)
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="flowlua-schedule-bench-") as tmp:
            measure(os.path.abspath(args.flowlua), tmp, args.fires, args.interval, args.idle)
    except BenchError as e:
        return benchlib.fail_cli("schedule/run.py", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
