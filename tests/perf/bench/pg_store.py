#!/usr/bin/env python3
"""The run history in PostgreSQL, on a server of the benchmark's own on
this machine (tests/support/pg/pgserver.py: initdb in a temporary folder,
127.0.0.1, removed at the end):

  - the engine's flows (gen_flows.lua) with the history in PostgreSQL
    against --state :memory:, whole-process medians (target: at most 3x);
  - a one-task flow, whole process, with the history in PostgreSQL
    (target: 15 ms);
  - `flowlua runs` over 100,000 stored runs (target: 100 ms) and `flowlua
    show` of a 100,000-task run (target: 500 ms), whole process.

    python3 tests/perf/bench/pg_store.py [--flowlua build-bench/flowlua]
            [--tasks 100000] [--repeat 5]

Standard library only (and psql, from Debian's postgresql-client).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "support", "pg"))
import benchlib  # noqa: E402
import pgserver  # noqa: E402
import store_run  # noqa: E402
from benchlib import BenchError  # noqa: E402

SHAPES = ["chain", "fan", "fan_after", "dag"]
TARGET = 3.0
TARGET_START_MS = 15.0
TARGET_RUNS_MS = 100.0
TARGET_SHOW_MS = 500.0

ONE_TASK = """local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("one", {}, function() return t() end)
"""


def psql(uri, sql):
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", uri, "-c", sql],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"psql: {p.stderr.strip()}")
    return p.stdout


def timed(cmd, cwd, repeat, env=None):
    runs = []
    for _ in range(repeat):
        t0 = time.monotonic()
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        runs.append(time.monotonic() - t0)
        if p.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} exited {p.returncode}:\n{benchlib.tail(p.stderr)}")
    return statistics.median(runs), runs


def measure(flowlua, workdir, lua="lua5.4", tasks=100000, repeat=5, shapes=SHAPES, log=print):
    if not os.access(flowlua, os.X_OK):
        raise BenchError(f"no flowlua at {flowlua} (build it in Release first)")
    store_run.ensure_flows(benchlib.require_program(lua, "apt-get install lua5.4"), workdir, tasks)
    rows, doc = [], {"tasks": tasks, "repeat": repeat}
    with pgserver.PgServer() as pg:
        uri = pg.uri
        env = dict(os.environ, FLOWLUA_STATE=uri)
        reset = "DROP SCHEMA IF EXISTS flowlua CASCADE"
        log(f"{'shape':<10} {'memory s':>9} {'pg s':>9} {'ratio':>6}  target")
        for shape in shapes:
            script = os.path.join(workdir, f"flow_{shape}.lua")
            mem_cmd = [flowlua, "--quiet", "--state", ":memory:", script]
            pg_cmd = [flowlua, "--quiet", script]
            timed(mem_cmd, workdir, 1)
            psql(uri, reset)
            timed(pg_cmd, workdir, 1, env)
            mem, pgs = [], []
            for _ in range(repeat):
                mem.append(timed(mem_cmd, workdir, 1)[0])
                psql(uri, reset)
                pgs.append(timed(pg_cmd, workdir, 1, env)[0])
            m, s = statistics.median(mem), statistics.median(pgs)
            rows.append({"shape": shape, "memory_s": m, "pg_s": s, "ratio": s / m,
                         "meets_target": s / m <= TARGET})
            log(f"{shape:<10} {m:>9.3f} {s:>9.3f} {s / m:>6.2f}  "
                f"{'ok' if s / m <= TARGET else 'MISS'}")
        doc["shapes"] = rows
        # `show` of the last 100,000-task run (the dag's, kept).
        show, _ = timed([flowlua, "show", "last"], workdir, max(repeat, 3), env)
        # One task, whole process, on a history that exists.
        one = os.path.join(workdir, "one_task.lua")
        with open(one, "w") as f:
            f.write(ONE_TASK)
        timed([flowlua, "--quiet", one], workdir, 3, env)
        start, _ = timed([flowlua, "--quiet", one], workdir, max(repeat * 4, 11), env)
        # The floor of any client: psql connecting (the same URI: the same
        # authentication) and running one query.
        floor, _ = timed(["psql", "-X", "-q", uri, "-c", "SELECT 1"], workdir,
                         max(repeat * 4, 11))
        # `runs` over 100,000 stored runs: rows made by SQL, as the store
        # writes them (ended runs with their counts).
        psql(uri, "INSERT INTO flowlua.flow_run(run_id, flow, state, started_at, ended_at,"
                  " task_counts, owner_host, owner_pid) SELECT md5(i::text), 'bulk',"
                  " 'Success', 1700000000 + i, 1700000001 + i, '{\"Success\": 3}', 'h', 1"
                  " FROM generate_series(1, 100000) i; ANALYZE flowlua.flow_run")
        runs, _ = timed([flowlua, "runs"], workdir, max(repeat, 3), env)
    doc.update({"show_100k_ms": show * 1000, "one_task_ms": start * 1000,
                "psql_one_query_ms": floor * 1000, "runs_100k_ms": runs * 1000})
    log(f"show of a {tasks}-task run: {show * 1000:.0f} ms (target {TARGET_SHOW_MS:g});"
        f" one-task flow: {start * 1000:.1f} ms (target {TARGET_START_MS:g};"
        f" psql connecting for one query: {floor * 1000:.1f} ms);"
        f" runs over 100,000 runs: {runs * 1000:.0f} ms (target {TARGET_RUNS_MS:g})")
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(benchlib.REPO, "build-bench", "flowlua"))
    ap.add_argument("--lua", default="lua5.4")
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--workdir", default="/tmp/flowlua-bench")
    args = ap.parse_args()
    try:
        doc = measure(os.path.abspath(args.flowlua), args.workdir, args.lua, args.tasks,
                      args.repeat, [s for s in args.shapes.split(",") if s])
    except BenchError as e:
        return benchlib.fail_cli("pg_store.py", e)
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
