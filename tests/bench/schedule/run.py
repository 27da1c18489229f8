#!/usr/bin/env python3
"""The schedule benchmark: how late fire times start, and what a serving
process costs while it waits.

    python3 tests/bench/schedule/run.py [--flowlua build-release/flowlua]

1. Lateness: a flow on a 50 ms interval served for --fires runs (default
   200); each run records started_at - scheduled_at; median, p99, max.
2. Idle cost: a flow on a one-hour interval served for --idle seconds
   (default 60), then SIGTERM; the CPU time (user + system) it used, from
   /proc/PID/stat, and its wake-ups (voluntary context switches).
Run it on an otherwise idle machine.
"""
import argparse, os, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowlua", default="build-release/flowlua")
    ap.add_argument("--fires", type=int, default=200)
    ap.add_argument("--idle", type=float, default=60)
    args = ap.parse_args()
    args.flowlua = os.path.abspath(args.flowlua)

    env = dict(os.environ, BENCH_RUNS=str(args.fires), BENCH_INTERVAL="0.05")
    out = subprocess.run([args.flowlua, "--quiet", "--max-runs", str(args.fires),
                          os.path.join(HERE, "lateness.lua")],
                         env=env, capture_output=True, text=True, timeout=args.fires * 0.05 + 60)
    if out.returncode != 0:
        sys.exit(f"lateness run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    words = out.stdout.split()
    stats = dict(zip(words[0::2], words[1::2]))
    print(f"lateness over {stats['fires']} fires of a 50 ms interval: "
          f"median {stats['median_ms']} ms, p99 {stats['p99_ms']} ms, max {stats['max_ms']} ms")

    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "idle.lua")
        with open(script, "w") as f:
            f.write(IDLE_FLOW)
        proc = subprocess.Popen([args.flowlua, "--quiet", script], cwd=d,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)  # past start-up: measure the waiting alone
        cpu0, sw0 = cpu_seconds(proc.pid), switches(proc.pid)
        time.sleep(args.idle)
        cpu1, sw1 = cpu_seconds(proc.pid), switches(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        print(f"idle serving for {args.idle:.0f} s: {1000 * (cpu1 - cpu0):.1f} ms of CPU, "
              f"{sw1 - sw0} wake-ups; exit {proc.returncode}")


if __name__ == "__main__":
    main()
