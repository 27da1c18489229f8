#!/usr/bin/env python3
"""Web UI benchmark (issue 20's numbers): `flowlua ui` over two histories.

    python3 tests/perf/bench/ui/run.py [--flowlua build-bench/flowlua] [--runs 100000]
                                       [--tasks 100000] [--seconds 3]

Builds, with the real engine (nothing is written by hand, so the rows are
exactly what flowlua writes):
  - a history of --runs runs: `flowlua backfill` of a one-task flow with a
    schedule of one minute, over --runs fire times, in one process;
  - a history holding one run of --tasks no-op tasks (gen_flows.lua's
    `dag`: 100 layers, each task taking two parents).
Then serves each with `flowlua ui --listen 127.0.0.1:0` and measures, from
a client in this process (http.client over keep-alive; Python's own cost
is in the figures, so they are upper bounds):
  - the runs page: GET / and GET /api/runs?limit=50, median over 50 each
    (target <= 50 ms);
  - the big run's page as a browser opens it, on a server just started
    (cold: the run is loaded by the first request) and again (warm):
    GET /runs/ID, then /summary, /tasks?limit=100, /graph,
    /timeline?limit=500, one after the other (target <= 500 ms);
  - requests per second on /api/runs?limit=20 from 2 client threads, each
    on its own keep-alive connection, for --seconds (target >= 2,000);
  - with chromium installed, the elements of the big run's page once drawn
    (target < 5,000).
Prints a table; --json writes the figures.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
TARGET_RUNS_MS = 50.0
TARGET_RUN_PAGE_MS = 500.0
TARGET_RPS = 2000.0
TARGET_ELEMENTS = 5000
LISTENING = re.compile(r"^flowlua ui: listening on http://([\d.]+):(\d+)/$")

MINUTELY = """
local flow = require "flowlua"
local noop = flow.task("noop", function() end)
return flow.define("minutely", { schedule = flow.interval { minutes = 1 } },
                   function() noop() end)
"""


def make_runs(flowlua, workdir, runs, log):
    state = os.path.join(workdir, "runs.db")
    script = os.path.join(workdir, "minutely.lua")
    with open(script, "w") as f:
        f.write(MINUTELY)
    start = 1767225600  # 2026-01-01T00:00:00Z
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + (runs - 1) * 60))
    took, _ = benchlib.run_checked(
        [flowlua, "backfill", "--from", "2026-01-01T00:00:00Z", "--to", end,
         "--concurrency", "8", "--quiet", "--state", state, script], timeout=1800)
    log(f"  history of {runs} runs made in {took:.1f} s")
    return state


def make_big_run(flowlua, workdir, tasks, log):
    flows = os.path.join(workdir, "flows")
    lua = benchlib.require_program("lua5.4", "apt-get install lua5.4")
    benchlib.run_checked([lua, os.path.join(REPO, "tests", "perf", "bench", "gen_flows.lua"),
                          "--tasks", str(tasks), "--out", flows])
    state = os.path.join(workdir, "big.db")
    took, _ = benchlib.run_checked([flowlua, "--quiet", "--no-status", "--state", state,
                                    os.path.join(flows, "flow_dag.lua")], timeout=1800)
    log(f"  one run of {tasks} tasks made in {took:.1f} s")
    return state


class Server:
    def __init__(self, flowlua, state):
        self.proc = subprocess.Popen([flowlua, "ui", "--state", state, "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline().strip()
        m = LISTENING.match(line)
        if not m:
            self.proc.kill()
            raise BenchError(f"flowlua ui did not start: {line} {self.proc.stderr.read()}")
        self.host, self.port = m.group(1), int(m.group(2))

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(60)
        if rc != 0:
            raise BenchError(f"flowlua ui exited {rc}: {self.proc.stderr.read()}")


def timed_get(conn, path):
    """Milliseconds from sending the request to the last byte of the body."""
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    ms = 1000 * (time.perf_counter() - t0)
    if r.status != 200:
        raise BenchError(f"GET {path}: {r.status} {body[:200]!r}")
    return ms, body


def median_ms(conn, path, n):
    timed_get(conn, path)  # warm-up
    return statistics.median(timed_get(conn, path)[0] for _ in range(n))


def run_page(server, run_id):
    """Each request of the run page as a browser makes them, in order."""
    conn = server.connect()
    base = f"/api/runs/{run_id}"
    times = {}
    for name, path in (("page", f"/runs/{run_id}"), ("summary", base + "/summary"),
                       ("tasks", base + "/tasks?limit=100"), ("graph", base + "/graph"),
                       ("timeline", base + "/timeline?limit=500")):
        times[name] = timed_get(conn, path)[0]
    conn.close()
    times["total"] = sum(times.values())
    return times


def rps(server, path, seconds, threads=2):
    counts = [0] * threads
    errors = []
    stop = time.monotonic() + seconds

    def client(i):
        try:
            conn = server.connect()
            while time.monotonic() < stop:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise BenchError(f"GET {path}: {r.status}")
                counts[i] += 1
            conn.close()
        except Exception as e:  # reported below, not lost in a thread
            errors.append(e)

    t0 = time.monotonic()
    ts = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise BenchError(f"rps client: {errors[0]}")
    return sum(counts) / (time.monotonic() - t0)


def dom_elements(server, run_id):
    """Elements of the run's page once its script has drawn it, or None
    without chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return None
    p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--virtual-time-budget=20000", "--dump-dom",
                        f"http://{server.host}:{server.port}/runs/{run_id}"],
                       capture_output=True, text=True, timeout=300)
    if "k-range" not in p.stdout:
        raise BenchError(f"chromium drew no run page: {p.stderr[-300:]}")
    return len(re.findall(r"<[a-zA-Z]", p.stdout))


def measure(flowlua, workdir, runs=100000, tasks=100000, seconds=3.0, log=print):
    os.makedirs(workdir, exist_ok=True)
    result = {"runs": runs, "tasks": tasks}
    runs_state = make_runs(flowlua, workdir, runs, log)
    server = Server(flowlua, runs_state)
    try:
        conn = server.connect()
        result["runs_page_ms"] = median_ms(conn, "/", 50)
        result["api_runs_50_ms"] = median_ms(conn, "/api/runs?limit=50", 50)
        conn.close()
        result["api_runs_20_rps"] = rps(server, "/api/runs?limit=20", seconds)
    finally:
        server.stop()
    big_state = make_big_run(flowlua, workdir, tasks, log)
    out = subprocess.run([flowlua, "runs", "--json", "--state", big_state],
                         capture_output=True, text=True, check=True).stdout
    run_id = json.loads(out)[0]["id"]
    server = Server(flowlua, big_state)
    try:
        result["big_run_cold_ms"] = run_page(server, run_id)
        result["big_run_warm_ms"] = run_page(server, run_id)
        result["big_run_elements"] = dom_elements(server, run_id)
    finally:
        server.stop()
    result["meets"] = {
        "runs_page": max(result["runs_page_ms"], result["api_runs_50_ms"]) <= TARGET_RUNS_MS,
        "big_run_page": result["big_run_cold_ms"]["total"] <= TARGET_RUN_PAGE_MS,
        "rps": result["api_runs_20_rps"] >= TARGET_RPS,
        "elements": result["big_run_elements"] is None
                    or result["big_run_elements"] < TARGET_ELEMENTS}
    return result


def print_table(r, log=print):
    cold, warm = r["big_run_cold_ms"], r["big_run_warm_ms"]
    log(f"  runs page GET /                     {r['runs_page_ms']:8.2f} ms   (<= {TARGET_RUNS_MS:g})")
    log(f"  GET /api/runs?limit=50 ({r['runs']} runs) {r['api_runs_50_ms']:8.2f} ms   "
        f"(<= {TARGET_RUNS_MS:g})")
    log(f"  /api/runs?limit=20, 2 clients       {r['api_runs_20_rps']:8.0f} req/s (>= {TARGET_RPS:g})")
    log(f"  {r['tasks']}-task run page, cold         {cold['total']:8.1f} ms   "
        f"(<= {TARGET_RUN_PAGE_MS:g}): " + ", ".join(f"{k} {v:.1f}" for k, v in cold.items()
                                                     if k != "total"))
    log(f"  {r['tasks']}-task run page, warm         {warm['total']:8.1f} ms: "
        + ", ".join(f"{k} {v:.1f}" for k, v in warm.items() if k != "total"))
    if r["big_run_elements"] is not None:
        log(f"  its page's elements                 {r['big_run_elements']:8d}      "
            f"(< {TARGET_ELEMENTS})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"))
    ap.add_argument("--runs", type=int, default=100000)
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="flowlua-bench-ui-") as work:
            r = measure(os.path.abspath(a.flowlua), work, a.runs, a.tasks, a.seconds)
    except BenchError as e:
        sys.exit(f"ui bench: {e}")
    print_table(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
