#!/usr/bin/env python3
"""`flowlua worker` over the harness's PostgreSQL (issue 19): three workers
and a driver that runs none itself (--workers 0) share a map of 2,000
worker tasks, and every element runs exactly once (its log line, relayed
by its worker, kept with it); `flowlua workers`
lists them; a worker with another version of the script takes none of the
jobs, whose attempt then fails after queue_timeout naming the queue and
the version; a driver on its own (no --workers 0) runs its jobs on its own
local worker; bad input is refused with exit 2 and nothing claimed.

    with_pg.py -- workers.py FLOWLUA
"""
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile

import pgtest

TEST = "pg/workers"

MAP = r'''
local flow = require "flowlua"
local work = flow.task("work", { queue = "q" }, function(i)
  flow.log.info("work on %d <i>", i)
  local out = assert(io.open("ran.txt", "a"))
  out:write(i, "\n")
  out:close()
  return i * 2
end)
local total = flow.task("total", function(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s
end)
return flow.define("many", { params = { n = 2000 } }, function(p)
  local xs = {}
  for i = 1, p.n do xs[i] = i end
  return total(work:map(xs))
end)
'''

ONE = r'''
local flow = require "flowlua"
local work = flow.task("work", { queue = "q", queue_timeout = 2 },
  function() return "ran" end)
return flow.define("one", {}, function() return work() end)
'''


def fail(msg):
    pgtest.fail(TEST, msg)


def start_worker(binary, cwd, script, name, *extra):
    log = open(os.path.join(cwd, name + ".log"), "wb")
    p = subprocess.Popen([binary, "worker", script, "--slots", "2"] + list(extra),
                         cwd=cwd, env=pgtest.env(), stdin=subprocess.DEVNULL,
                         stdout=log, stderr=subprocess.STDOUT)
    p.log_path = log.name
    pgtest.wait_for(f"worker {name} to serve",
                    lambda: b"serving" in open(log.name, "rb").read() or p.poll() is not None,
                    test=TEST)
    if p.poll() is not None:
        fail(f"worker {name} exited at start: " + open(log.name, "rb").read().decode())
    return p


def stop(p):
    p.terminate()
    try:
        code = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("a worker did not stop within 60 s of SIGTERM with nothing in hand")
    if code != 0:
        fail(f"a worker stopped by SIGTERM exited {code}: "
             + open(p.log_path, "rb").read().decode("utf-8", "replace")[-2000:])


def exactly_once(binary, cwd):
    with open(os.path.join(cwd, "map.lua"), "w") as f:
        f.write(MAP)
    # A history nobody has written yet has no workers (and no error).
    empty = pgtest.flowlua(binary, ["workers"], cwd)
    if empty.returncode != 0 or b"no live workers" not in empty.stdout:
        fail(f"flowlua workers on an empty database: exit {empty.returncode}, "
             f"{empty.stdout!r} {empty.stderr!r}")
    workers = [start_worker(binary, cwd, "map.lua", f"w{k}") for k in range(3)]
    listed = pgtest.flowlua(binary, ["workers", "--json"], cwd)
    if listed.returncode != 0:
        fail("flowlua workers: " + listed.stderr.decode())
    rows = json.loads(listed.stdout)
    pids = sorted(r["pid"] for r in rows)
    if pids != sorted(w.pid for w in workers):
        fail(f"flowlua workers lists {pids}, not the three workers "
             f"{sorted(w.pid for w in workers)}")
    host = socket.gethostname()
    if any(r["host"] != host or r["slots"] != 2 or r["queues"] != "" for r in rows):
        fail(f"flowlua workers: unexpected rows {rows}")
    text = pgtest.flowlua(binary, ["workers"], cwd).stdout.decode()
    if f"{host}:{workers[0].pid}" not in text or "every queue" not in text:
        fail("flowlua workers (text) does not name the worker:\n" + text)

    done = pgtest.flowlua(binary, ["map.lua", "--workers", "0", "--no-status"], cwd,
                          timeout=600)
    out = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        fail(f"the run exited {done.returncode}:\n{out[-3000:]}")
    ran = collections.Counter(open(os.path.join(cwd, "ran.txt")).read().split())
    if len(ran) != 2000 or max(ran.values()) != 1:
        twice = [k for k, v in ran.items() if v > 1][:10]
        fail(f"{len(ran)} elements ran, some more than once: {twice}")
    attempts = pgtest.sql(
        "SELECT count(*), count(DISTINCT n), max(attempt) FROM flowlua.task_history h"
        " JOIN flowlua.flow_run r ON r.id = h.run"
        " WHERE h.state = 'Running' AND r.flow = 'many'")
    if attempts != [["2002", "2002", "1"]]:  # and the map node, and total
        fail(f"task_history's Running rows (count, tasks, max attempt): {attempts}")
    # Each attempt names the worker that ran it; the three shared the work.
    by_worker = dict(pgtest.sql(
        "SELECT pid, count(*) FROM flowlua.attempt_worker GROUP BY pid"))
    if sum(int(v) for v in by_worker.values()) != 2000 or \
            set(int(k) for k in by_worker) - set(w.pid for w in workers):
        fail(f"attempts by worker pid: {by_worker}")
    show = pgtest.flowlua(binary, ["show", "last", "--json"], cwd)
    tasks = json.loads(show.stdout)["tasks"]
    named = [t for t in tasks if t.get("worker")]
    if len(named) != 2000 or any(t["worker"]["host"] != host or
                                 t["worker"]["pid"] not in [w.pid for w in workers]
                                 for t in named):
        fail(f"show --json names a worker (host:pid of a `flowlua worker`) for "
             f"{len(named)} of 2000 elements: {named[:2]}")
    # Each element's log line, relayed by the worker that ran it, is kept
    # with its task run.
    wrong = [t for t in tasks if t["task"] == "work" and t["map_index"] > 0 and
             [(l["attempt"], l["level"], l["line"]) for l in t.get("logs", [])]
             != [(1, "INFO", f"work on {t['map_index']} <i>")]]
    if wrong:
        fail(f"{len(wrong)} elements lack their relayed log line: {wrong[:2]}")
    text = pgtest.flowlua(binary, ["show", "last"], cwd).stdout.decode()
    if not any(f"{w.pid}" in text for w in workers):
        fail("show does not name the workers:\n" + text[:2000])
    total = [t for t in tasks if t["task"] == "total"][0]
    if total["state"] != "Success":
        fail(f"total: {total}")
    if pgtest.sql("SELECT count(*) FROM flowlua.job") != [["0"]]:
        fail("jobs are left in flowlua.job after the run")
    for w in workers:
        stop(w)
    if pgtest.sql("SELECT count(*) FROM flowlua.queue_worker") != [["0"]]:
        fail("workers stopped by SIGTERM are still listed")


def other_version(binary, cwd):
    with open(os.path.join(cwd, "one.lua"), "w") as f:
        f.write(ONE)
    with open(os.path.join(cwd, "one_v2.lua"), "w") as f:
        f.write(ONE + "-- version 2\n")
    w = start_worker(binary, cwd, "one_v2.lua", "v2")
    # The right version, but serving another queue only: it takes none either.
    other = start_worker(binary, cwd, "one.lua", "other_queue", "--queue", "other")
    done = pgtest.flowlua(binary, ["one.lua", "--workers", "0", "--no-status"], cwd)
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode != 1:
        fail(f"a job no worker can take: the run exited {done.returncode}:\n{err}")
    if "queue 'q'" not in err or "script version" not in err or "queue_timeout" not in err:
        fail("the failure does not name the queue, the version and queue_timeout:\n" + err)
    if b"job" in open(w.log_path, "rb").read().split(b"serving", 1)[1]:
        fail("the worker with another version logged a job: "
             + open(w.log_path, "rb").read().decode())
    listed = json.loads(pgtest.flowlua(binary, ["workers", "--json"], cwd).stdout)
    if [r["queues"] for r in listed if r["pid"] == other.pid] != ["other"]:
        fail(f"flowlua workers does not list the queue served: {listed}")
    stop(w)
    stop(other)


def driver_alone(binary, cwd):
    # No --workers 0: the driver starts its own `flowlua worker`.
    done = pgtest.flowlua(binary, ["map.lua", "--param", "n=50", "--no-status"], cwd,
                          timeout=300)
    if done.returncode != 0:
        fail("a driver on its own: " + done.stderr.decode("utf-8", "replace")[-3000:])
    if pgtest.sql("SELECT count(*) FROM flowlua.queue_worker") != [["0"]]:
        fail("the driver's own worker is still listed after the driver ended")


def bad_input(binary, cwd):
    with open(os.path.join(cwd, "broken.lua"), "w") as f:
        f.write("local flow = require 'flowlua'\nreturn flow.define(\n")
    cases = [
        (["worker"], None, "worker needs the scripts"),
        (["worker", "broken.lua"], None, "broken.lua"),
        (["worker", "map.lua", "--state", os.path.join(cwd, "h.db")], None,
         "not PostgreSQL"),
        (["worker", "map.lua", "--state", ":memory:"], None, "not PostgreSQL"),
        (["worker", "map.lua", "--slots", "0"], None, "--slots"),
        (["worker", "map.lua", "--lease", "0"], None, "--lease"),
        (["worker", "missing.lua"], None, "missing.lua"),
    ]
    for args, _, says in cases:
        done = pgtest.flowlua(binary, args, cwd, timeout=60)
        err = done.stderr.decode("utf-8", "replace")
        if done.returncode != 2 or says not in err:
            fail(f"flowlua {' '.join(args)}: exit {done.returncode}, expected 2 "
                 f"with '{says}':\n{err}")
    if pgtest.sql("SELECT count(*) FROM flowlua.queue_worker") != [["0"]]:
        fail("a refused worker registered itself")
    if os.path.exists(os.path.join(cwd, "h.db")):
        fail("a refused worker created a SQLite history")


def main():
    binary = sys.argv[1]
    pgtest.reset()
    with tempfile.TemporaryDirectory() as cwd:
        exactly_once(binary, cwd)
        other_version(binary, cwd)
        driver_alone(binary, cwd)
        bad_input(binary, cwd)
    print(f"{TEST}: ok")


if __name__ == "__main__":
    main()
