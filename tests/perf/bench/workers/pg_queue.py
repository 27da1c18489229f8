#!/usr/bin/env python3
"""Worker tasks through PostgreSQL queues (issue 19), on a server of the
benchmark's own on this machine (tests/support/pg/pgserver.py), with two
`flowlua worker` processes of one slot each and a driver that runs none
itself (--workers 0):

  - no-op worker tasks: a map of N, tasks per second over the run's own
    span (target: 10,000/s), at the default concurrency (32) and at 1,000;
  - dispatch: a chain of no-op worker tasks on idle workers, each one's
    Running (a worker took it) after its upstream's Success, from the
    history: median (target: 5 ms) and p99 (target: 25 ms);
  - a CPU-bound map (16 elements) on the two workers against the same map
    inline (target: 1.7x faster).

    python3 tests/perf/bench/workers/pg_queue.py [--flowlua build-bench/flowlua]

Standard library only (and psql).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "support", "pg"))
import benchlib  # noqa: E402
import pgserver  # noqa: E402
from benchlib import BenchError  # noqa: E402

TARGET_RATE = 10000
TARGET_MEDIAN_MS = 5
TARGET_P99_MS = 25
TARGET_CPU_SPEEDUP = 1.7

SCRIPT = r"""
local flow = require "flowlua"
local function spin(s) local t = os.clock() while os.clock() - t < s do end end
local noop = flow.task("noop", { queue = "q" }, function(i) return i end)
local cpu = flow.task("cpu", { queue = "q" }, function(s) spin(s) return s end)
local cpu_inline = flow.task("cpu_inline", function(s) spin(s) return s end)
return flow.define("pgq", { params = { shape = "noop", n = 1000, spin = 0.25 } },
  function(p)
    local xs = {}
    for i = 1, p.n do xs[i] = p.shape == "noop" and i or p.spin end
    if p.shape == "noop" then
      noop:map(xs)
    elseif p.shape == "chain" then
      local prev
      for i = 1, p.n do prev = noop(i, prev) end
    elseif p.shape == "cpu" then
      cpu:map(xs)
    else
      cpu_inline:map(xs)
    end
  end)
"""


def psql(uri, sql):
    done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", uri, "-c", sql],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"psql: {sql}: {done.stderr}")
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def run(flowlua, folder, env, params, *extra):
    args = [flowlua, "pgq.lua", "--quiet", "--workers", "0"] + list(extra)
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} exited {done.returncode}:\n"
                         f"{benchlib.tail(done.stderr)}")


def last_run_span(uri):
    (started, ended), = psql(uri, "SELECT started_at, ended_at FROM flowlua.flow_run"
                                  " ORDER BY id DESC LIMIT 1")
    return float(ended) - float(started)


def dispatch_ms(uri):
    """Per chain element after the first: its Running after its upstream's
    Success (both as the driver recorded them)."""
    rows = psql(uri, """
        WITH r AS (SELECT id FROM flowlua.flow_run ORDER BY id DESC LIMIT 1),
        t AS (SELECT h.n, h.state, h.at FROM flowlua.task_history h, r
              WHERE h.run = r.id AND h.state IN ('Running', 'Success'))
        SELECT s.n, (x.at - s.at) * 1000 FROM t s JOIN t x ON x.n = s.n + 1
        WHERE s.state = 'Success' AND x.state = 'Running' ORDER BY s.n""")
    return [float(ms) for _, ms in rows]


def measure(flowlua, workdir, n_noop=10000, n_chain=200, n_cpu=16, spin_s=0.25, log=print):
    if not os.access(flowlua, os.X_OK):
        raise BenchError(f"no flowlua at {flowlua} (build it in Release first)")
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "pgq.lua"), "w") as f:
        f.write(SCRIPT)
    doc = {"workers": 2, "slots": 1}
    with pgserver.PgServer() as pg:
        env = dict(os.environ, FLOWLUA_STATE=pg.uri)
        # The schema, before the workers look at it.
        run(flowlua, workdir, env, {"shape": "inline", "n": 1, "spin": 0})
        logs = [open(os.path.join(workdir, f"worker{k}.log"), "wb") for k in range(2)]
        workers = [subprocess.Popen([flowlua, "worker", "pgq.lua", "--slots", "1"],
                                    cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=f, stderr=subprocess.STDOUT) for f in logs]
        try:
            deadline = time.monotonic() + 60
            while psql(pg.uri, "SELECT count(*) FROM flowlua.queue_worker") != [["2"]]:
                if time.monotonic() > deadline:
                    raise BenchError("the workers did not register within 60 s")
                time.sleep(0.05)
            for conc in (32, 1000):
                run(flowlua, workdir, env, {"shape": "noop", "n": n_noop}, "--concurrency",
                    str(conc))
                span = last_run_span(pg.uri)
                doc[f"noop_rate_c{conc}"] = n_noop / span
                log(f"no-op map of {n_noop}, concurrency {conc}: {n_noop / span:,.0f} tasks/s "
                    f"(target >= {TARGET_RATE:,})")
            run(flowlua, workdir, env, {"shape": "chain", "n": n_chain})
            lat = sorted(dispatch_ms(pg.uri))
            doc["dispatch_median_ms"] = statistics.median(lat)
            doc["dispatch_p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            log(f"dispatch over a chain of {n_chain}: median {doc['dispatch_median_ms']:.2f} ms, "
                f"p99 {doc['dispatch_p99_ms']:.2f} ms (targets {TARGET_MEDIAN_MS} / "
                f"{TARGET_P99_MS} ms)")
            run(flowlua, workdir, env, {"shape": "cpu", "n": n_cpu, "spin": spin_s})
            pg_s = last_run_span(pg.uri)
            run(flowlua, workdir, env, {"shape": "inline", "n": n_cpu, "spin": spin_s})
            inline_s = last_run_span(pg.uri)
            doc["cpu_pg_s"], doc["cpu_inline_s"] = pg_s, inline_s
            doc["cpu_speedup"] = inline_s / pg_s
            log(f"CPU-bound map of {n_cpu} x {spin_s} s: {pg_s:.2f} s on 2 workers, "
                f"{inline_s:.2f} s inline: {inline_s / pg_s:.2f}x (target >= "
                f"{TARGET_CPU_SPEEDUP}x)")
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait()
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(ROOT, "build-bench", "flowlua"))
    ap.add_argument("--noop", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(measure(os.path.abspath(args.flowlua), d, args.noop), indent=2))


if __name__ == "__main__":
    main()
