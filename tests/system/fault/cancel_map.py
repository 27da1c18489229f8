#!/usr/bin/env python3
"""SIGTERM during a big map: no task starts after the cancel, and what ran is
recorded as it ended (issue 16, item 2).

    cancel_map.py FLOWLUA [--n 2000] [--k 300]

cancel_map.lua maps N tasks that each append their index to started.log;
element K then creates ready.flag and spins in Lua. Once ready.flag exists
this driver sends SIGTERM and waits for flowlua to exit (a hang guard only).
Then:
  - flowlua exited 130 and the run is Cancelled;
  - started.log holds exactly 1..K, once each: no element after K started;
  - elements 1..K-1 are Success (attempt 1), K is Cancelled after its one
    attempt, K+1..N are Cancelled without an attempt;
  - --resume runs exactly K..N: started.log gains K..N once each, and the
    resumed run is Success.
Exits 1 after printing every broken rule.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "cancel_map.lua")
HANG_GUARD = 300  # seconds: an end to a hang, never a timing expectation


def wait_for(predicate, what):
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("hang guard: gave up waiting for " + what)
        time.sleep(0.01)


def started(folder):
    with open(os.path.join(folder, "started.log")) as f:
        return [int(line) for line in f.read().split()]


def show(flowlua, folder, ref):
    out = subprocess.run([flowlua, "show", ref, "--json"], cwd=folder,
                         capture_output=True, text=True, timeout=HANG_GUARD)
    if out.returncode != 0:
        raise SystemExit("flowlua show failed: " + out.stderr)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flowlua")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=300)
    a = ap.parse_args()
    a.flowlua = os.path.abspath(a.flowlua)
    n, k = a.n, a.k
    folder = tempfile.mkdtemp(prefix="cancel_map.")
    env = dict(os.environ, CANCEL_MAP_N=str(n), CANCEL_MAP_K=str(k))
    problems = []

    def check(ok, text):
        if not ok:
            problems.append(text)

    proc = subprocess.Popen([a.flowlua, "--no-status", FLOW], cwd=folder,
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(folder, "run.err"), "w"))
    ready = os.path.join(folder, "ready.flag")
    wait_for(lambda: os.path.exists(ready) or proc.poll() is not None,
             "ready.flag")
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("hang guard: flowlua did not exit after SIGTERM")
    check(rc == 130, "the cancelled run exited %d, not 130" % rc)

    ran = started(folder)
    check(ran == list(range(1, k + 1)),
          "started.log should hold 1..%d once each; it holds %d lines, the "
          "last %s; %d element(s) after %d started after the cancel"
          % (k, len(ran), ran[-3:], sum(1 for i in ran if i > k), k))

    run = show(a.flowlua, folder, "last")
    check(run["state"] == "Cancelled", "run state %s" % run["state"])
    elements = {t["map_index"]: t for t in run["tasks"] if t["map_index"]}
    check(len(elements) == n, "%d elements recorded, not %d" % (len(elements), n))
    wrong = []
    for i, t in sorted(elements.items()):
        want = (("Success", 1) if i < k else ("Cancelled", 1) if i == k
                else ("Cancelled", 0))
        if (t["state"], t["attempts"]) != want:
            wrong.append("%s: %s after %d attempt(s), expected %s after %d"
                         % (t["key"], t["state"], t["attempts"], *want))
    check(not wrong, "%d element(s) recorded wrongly, e.g.\n    %s"
          % (len(wrong), "\n    ".join(wrong[:5])))

    first_id = run["id"]
    env["CANCEL_MAP_RESUMING"] = "1"
    res = subprocess.run([a.flowlua, "--no-status", FLOW, "--resume", first_id],
                         cwd=folder, env=env, capture_output=True, text=True,
                         timeout=HANG_GUARD)
    check(res.returncode == 0, "the resume exited %d: %s"
          % (res.returncode, res.stderr[-2000:]))
    ran_again = started(folder)[len(ran):]
    check(ran_again == list(range(k, n + 1)),
          "the resume should run exactly %d..%d; it ran %d element(s): %s..."
          % (k, n, len(ran_again), ran_again[:5]))
    resumed = show(a.flowlua, folder, "last")
    check(resumed["state"] == "Success", "resumed run %s" % resumed["state"])

    if problems:
        print("cancel_map: %d problem(s); folder kept: %s" % (len(problems), folder))
        for p in problems:
            print("  - " + p)
        return 1
    shutil.rmtree(folder)
    print("cancel_map: ok (N=%d, cancelled at element %d)" % (n, k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
