#!/usr/bin/env python3
"""Pruning a big history (issue 21's numbers): 1,000,000 task runs deleted
in under 10 s, and no other writer kept waiting more than 50 ms meanwhile.

    python3 tests/perf/bench/prune.py FLOWLUA [--runs 10] [--tasks 100000]

Makes RUNS runs of a map of TASKS no-op tasks with flowlua itself (a fresh
SQLite history), ages them by 40 days in the file, then times
`flowlua prune --older-than 30d --json` while a second process writes to the
same file in a loop, one small transaction after another (what a running
flow's writer does), and records the longest wait of any of its
transactions. Prints the prune's seconds, its longest step (how long one of
its transactions held the lock), the other writer's longest wait, and the
file's size before and after.
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

FLOW = """local flow = require "flowlua"
local t = flow.task("t", function(i) return i end)
return flow.define("big", { params = { n = 1000 } }, function(p)
  local xs = {}
  for i = 1, p.n do xs[i] = i end
  t:map(xs)
end)
"""

TARGET_SECONDS = 10.0
TARGET_WAIT_MS = 50.0


def writer(db, stop, waits):
    """A writer beside the prune: a small transaction at a time."""
    # No busy timeout: SQLite's own handler sleeps up to 100 ms at a time,
    # which would measure its sleeps; this one retries every 0.5 ms.
    c = sqlite3.connect(db, timeout=0, isolation_level=None)
    # As flowlua's writer thread: no checkpoint of its own on commit (it
    # would measure the copying of the prune's WAL, not the wait for it).
    c.execute("PRAGMA wal_autocheckpoint = 0")
    c.execute("PRAGMA synchronous = NORMAL")
    c.execute("CREATE TABLE IF NOT EXISTS bench_writer(x)")
    while not stop.is_set():
        t0 = time.perf_counter()
        while True:
            try:
                c.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:  # locked: try again soon
                time.sleep(0.0005)
        c.execute("INSERT INTO bench_writer VALUES (1)")
        c.execute("COMMIT")
        waits.append(time.perf_counter() - t0)
        time.sleep(0.002)
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flowlua")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=100000)
    a = ap.parse_args()
    flowlua = os.path.abspath(a.flowlua)
    with tempfile.TemporaryDirectory(prefix="flowlua-bench-prune-") as d:
        with open(os.path.join(d, "big.lua"), "w") as f:
            f.write(FLOW)
        db = os.path.join(d, "s.db")
        t0 = time.perf_counter()
        for k in range(a.runs):
            print(f"making run {k + 1} of {a.runs}", flush=True)
            subprocess.run([flowlua, "big.lua", "--quiet", "--state", db, "--param",
                            f"n={a.tasks}"], cwd=d, check=True, stderr=subprocess.DEVNULL)
        made = time.perf_counter() - t0
        c = sqlite3.connect(db, isolation_level=None)
        c.execute("UPDATE flow_run SET started_at = started_at - 40 * 86400,"
                  " ended_at = ended_at - 40 * 86400")
        tasks = sum(json.loads(r[0]).get("Success", 0) for r in
                    c.execute("SELECT task_counts FROM flow_run"))
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        size = os.path.getsize(db)
        stop, waits = threading.Event(), []
        th = threading.Thread(target=writer, args=(db, stop, waits))
        th.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        p = subprocess.run([flowlua, "prune", "--older-than", "30d", "--json", "--state", db],
                           cwd=d, capture_output=True, text=True)
        took = time.perf_counter() - t0
        stop.set()
        th.join()
        if p.returncode != 0:
            sys.exit(f"prune failed: {p.stderr}")
        out = json.loads(p.stdout)
        worst = max(waits) * 1e3 if waits else 0.0
        # The file is cut to its new size by the first checkpoint that finds
        # the whole WAL copied: with the writer beside it going, that is the
        # next one after it stops (flowlua's own writer thread makes one
        # when it is idle).
        c = sqlite3.connect(db, isolation_level=None)
        c.execute("PRAGMA wal_checkpoint(PASSIVE)")
        c.close()
        after = os.path.getsize(db) + (os.path.getsize(db + "-wal")
                                       if os.path.exists(db + "-wal") else 0)
        print(f"history: {a.runs} runs, {tasks:,} task runs, {size / 1e6:.1f} MB "
              f"(made in {made:.1f} s)")
        print(f"prune: {out['runs']} runs, {out['task_runs']:,} task runs in {took:.2f} s "
              f"(target < {TARGET_SECONDS:g} s); longest step {out['longest_step'] * 1e3:.1f} ms")
        print(f"a writer beside it: {len(waits)} transactions, longest wait {worst:.1f} ms "
              f"(target <= {TARGET_WAIT_MS:g} ms)")
        print(f"file and WAL: {out['bytes_before'] / 1e6:.1f} MB -> {out['bytes_after'] / 1e6:.1f} MB"
              f" as the prune ended, {after / 1e6:.1f} MB after the next checkpoint")


if __name__ == "__main__":
    main()
