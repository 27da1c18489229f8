#!/usr/bin/env python3
"""Large flows within the memory that docs/manual/limits.md states.

    big_flows.py FLOWLUA RSS_PROBE SANITIZED

Runs, each in a fresh working directory with the default run history
(.flowlua/state.db, real SQLite):

  many_tasks.lua  100,000 tasks and one that checks all their results
  big_map.lua     a map over 1,000,000 elements and a task that checks them

and checks for each that flowlua exits 0, that the history holds the run
as Success with every task run, and that the peak RSS stays under the
figure docs/manual/limits.md states. The flows check their own results (a wrong sum
fails the run).

Peak RSS is ru_maxrss from wait4() on the flowlua process, forked by
rss_probe (tests/perf/bench/rss_probe.c, built by CMake) rather than by Python:
on Linux a child's ru_maxrss also covers the image it replaced at exec,
which for a child of Python is Python's own.

SANITIZED is 1 for the ASan+UBSan build (else 0): then the sizes are divided by 10 and the
RSS is printed but not checked — AddressSanitizer's shadow memory and
quarantine make the figures say nothing about flowlua's own use.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# (script, task runs it makes for n, n, the most peak RSS allowed in MiB).
# A map's elements are task runs, the map itself is not (docs/manual/history.md,
# "Counting task runs"): big_map makes n elements and one 'check'.
# The limits are docs/manual/limits.md's figures: measured (RelWithDebInfo, Debian 12,
# x86-64) at about 102 MiB and 699 MiB, stated with headroom.
CASES = [
    ("many_tasks.lua", lambda n: n + 1, 100_000, 160),
    ("big_map.lua", lambda n: n + 1, 1_000_000, 1024),
]
SCALE_SANITIZED = 10
TIMEOUT = 600  # seconds per run: generous, the 1M map takes 3 to 10 s


def run_case(flowlua, probe, script, runs_for, n, limit_mib, sanitized):
    """Returns a list of problems (empty when the case passed)."""
    with tempfile.TemporaryDirectory(prefix="flowlua-limits-") as cwd:
        result = os.path.join(cwd, "rss.txt")
        argv = [probe, result, flowlua, os.path.join(HERE, script),
                "--param", f"n={n}", "--quiet"]
        done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=TIMEOUT)
        if done.returncode != 0:
            return [f"rss_probe exited {done.returncode}",
                    done.stderr.decode("utf-8", "replace")[-3000:]]
        with open(result) as f:
            code, wall, maxrss_kib = f.read().split()[:3]
        code, wall, rss_mib = int(code), float(wall), int(maxrss_kib) / 1024
        print(f"{script} n={n}: exit {code}, {wall:.2f} s, peak RSS "
              f"{rss_mib:.1f} MiB" +
              ("" if sanitized else f" (limit {limit_mib} MiB)"), flush=True)
        problems = []
        if code != 0:
            problems.append(f"flowlua exited {code}, expected 0\n--- stderr ---\n" +
                            done.stderr.decode("utf-8", "replace")[-3000:])
        if not sanitized and rss_mib > limit_mib:
            problems.append(f"peak RSS {rss_mib:.1f} MiB is over the "
                            f"{limit_mib} MiB docs/manual/limits.md states")
        runs = subprocess.run([flowlua, "runs", "--json", "--limit", "1"],
                              cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=TIMEOUT)
        try:
            run = json.loads(runs.stdout)[0]
        except (ValueError, IndexError) as e:
            return problems + [f"flowlua runs --json: no run ({e}); stderr: " +
                               runs.stderr.decode("utf-8", "replace")[-2000:]]
        want = runs_for(n)
        if run["state"] != "Success" or run["tasks"] != {"Success": want}:
            problems.append(f"history: expected Success with {want} task runs "
                            f"all Success, got {run['state']} with {run['tasks']}")
        return problems


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("0", "1"):
        raise SystemExit("usage: big_flows.py FLOWLUA RSS_PROBE SANITIZED(0|1)")
    flowlua, probe = (os.path.abspath(a) for a in sys.argv[1:3])
    sanitized = sys.argv[3] == "1"
    failed = 0
    for script, runs_for, n, limit_mib in CASES:
        if sanitized:
            n //= SCALE_SANITIZED
        problems = run_case(flowlua, probe, script, runs_for, n, limit_mib,
                            sanitized)
        if problems:
            failed += 1
            print(f"FAIL {script} n={n}")
            for p in problems:
                print("  " + p.replace("\n", "\n  "))
        else:
            print(f"ok   {script} n={n}")
    print(f"{len(CASES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
