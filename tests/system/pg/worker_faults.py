#!/usr/bin/env python3
"""`flowlua worker` losing things (issue 19), on the harness's PostgreSQL:

- a worker SIGKILLed in the middle of a map: its jobs are retried on the
  others after its lease ("worker lost"), the run ends Success, and only
  jobs that were in its hands ran twice;
- a worker SIGSTOPped past its lease and SIGCONTed after its job ran
  elsewhere: its late answer is thrown away, the stored result is the
  other worker's;
- the driver cancelled (SIGTERM) while a worker runs a long job: the
  worker stops the attempt at its next lease renewal;
- the server restarted while workers run jobs: they reconnect and go on,
  the run ends Success with every element once.

Every wait is for an event (a row, a log line, a process's end); the
limits only keep a broken build from hanging.

    with_pg.py -- worker_faults.py FLOWLUA
"""
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile

import pgtest

TEST = "pg/worker_faults"

# Each element spins a while (a Lua loop: a cancel reaches it at once)
# and says which `flowlua worker` ran it: the parent of the worker
# process it runs in.
COMMON = r'''
local flow = require "flowlua"
local function parent_pid()
  local f = assert(io.open("/proc/self/stat"))
  local stat = f:read("a")
  f:close()
  return tonumber(stat:match("^%d+ %b() %S+ (%d+)"))
end
local function spin(seconds)
  local t = os.clock()
  while os.clock() - t < seconds do end
end
local function note(line)
  local out = assert(io.open("ran.txt", "a"))
  out:write(line, "\n")
  out:close()
end
'''

MAP = COMMON + r'''
local work = flow.task("work", { queue = "q", retries = 3 }, function(i)
  note("start " .. i .. " " .. parent_pid())
  spin(tonumber(os.getenv("SPIN") or "0.05"))
  note("end " .. i .. " " .. parent_pid())
  return parent_pid()
end)
return flow.define("faults", { params = { n = 120 } }, function(p)
  local xs = {}
  for i = 1, p.n do xs[i] = i end
  return work:map(xs)
end)
'''

LONG = COMMON + r'''
local work = flow.task("work", { queue = "q", retries = 2 }, function()
  note("start " .. parent_pid())
  -- Until the test lets it go (the file "go"), or for ever.
  while not io.open("go") do spin(0.01) end
  note("end " .. parent_pid())
  return parent_pid()
end)
return flow.define("long", {}, function() return work() end)
'''


def fail(msg):
    pgtest.fail(TEST, msg)


def write(cwd, name, text):
    with open(os.path.join(cwd, name), "w") as f:
        f.write(text)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def start_worker(binary, cwd, script, name, lease, slots=2):
    log = os.path.join(cwd, name + ".log")
    p = subprocess.Popen([binary, "worker", script, "--slots", str(slots),
                          "--lease", str(lease)],
                         cwd=cwd, env=pgtest.env(), stdin=subprocess.DEVNULL,
                         stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    p.log_path = log
    pgtest.wait_for(f"worker {name} to serve",
                    lambda: "serving" in read(log) or p.poll() is not None, test=TEST)
    if p.poll() is not None:
        fail(f"worker {name} exited at start: {read(log)}")
    return p


def start_driver(binary, cwd, script, *args, env=None):
    log = os.path.join(cwd, "driver.log")
    p = subprocess.Popen([binary, script, "--workers", "0", "--no-status"] + list(args),
                         cwd=cwd, env=pgtest.env(**(env or {})),
                         stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                         stderr=subprocess.STDOUT)
    p.log_path = log
    return p


def wait_exit(p, what, limit=240):
    try:
        return p.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        fail(f"{what} did not end within {limit} s: {read(p.log_path)[-3000:]}")


def running_on(pid):
    host = socket.gethostname()
    return int(pgtest.sql("SELECT count(*) FROM flowlua.job WHERE state = 'running'"
                          f" AND worker = '{host}:{pid}'")[0][0])


def stop_all(*workers):
    for w in workers:
        if w.poll() is None:
            w.terminate()
    for w in workers:
        wait_exit(w, "a worker after SIGTERM", 60)


def sigkill_worker(binary, cwd):
    write(cwd, "map.lua", MAP)
    lease = 2
    a = start_worker(binary, cwd, "map.lua", "a", lease)
    b = start_worker(binary, cwd, "map.lua", "b", lease)
    c = start_worker(binary, cwd, "map.lua", "c", lease)
    d = start_driver(binary, cwd, "map.lua")
    # Kill a once it holds jobs, with some of the map done already.
    pgtest.wait_for("worker a to hold jobs after the first answers",
                    lambda: running_on(a.pid) > 0 and read(os.path.join(cwd, "ran.txt"))
                    .count("end ") >= 10, test=TEST)
    a.kill()
    a.wait()
    code = wait_exit(d, "the run after a worker was killed")
    log = read(d.log_path)
    if code != 0:
        fail(f"the run exited {code} after a worker was killed:\n{log[-3000:]}")
    if "worker lost" not in log or f":{a.pid} stopped renewing" not in log:
        fail("the driver's log does not say the killed worker was lost:\n" + log[-3000:])
    ends = collections.defaultdict(list)
    for line in read(os.path.join(cwd, "ran.txt")).splitlines():
        kind, i, pid = line.split()
        if kind == "end":
            ends[int(i)].append(int(pid))
    if sorted(ends) != list(range(1, 121)):
        fail(f"elements that never finished: {sorted(set(range(1, 121)) - set(ends))}")
    # Only a job in the killed worker's hands may have run to its end twice
    # (finished there, its answer not yet written).
    again = {i: pids for i, pids in ends.items() if len(pids) > 1}
    if any(pids[0] != a.pid or len(pids) > 2 for pids in again.values()):
        fail(f"elements that ran again though their first run was not on the "
             f"killed worker: {again}")
    stored = pgtest.sql(
        "SELECT t.result FROM flowlua.task_run t JOIN flowlua.flow_run r ON r.id = t.run"
        " WHERE r.flow = 'faults' AND t.map_index > 0")
    if len(stored) != 120 or any(not row[0] for row in stored):
        fail(f"{len(stored)} results stored, some empty: {stored[:5]}")
    stop_all(b, c)


def sigstop_worker(binary, cwd):
    write(cwd, "long.lua", LONG)
    ran = os.path.join(cwd, "ran.txt")
    if os.path.exists(ran):
        os.unlink(ran)
    lease = 2
    a = start_worker(binary, cwd, "long.lua", "stopped", lease, slots=1)
    d = start_driver(binary, cwd, "long.lua")
    pgtest.wait_for("worker a to run the job", lambda: running_on(a.pid) == 1 and
                    "start" in read(ran), test=TEST)
    os.kill(a.pid, signal.SIGSTOP)
    # Its lease lapses: the driver retries the job; b takes it.
    b = start_worker(binary, cwd, "long.lua", "other", lease, slots=1)
    pgtest.wait_for("the retry to run on worker b",
                    lambda: f"start {a.pid}\nstart" in read(ran) or
                    read(ran).count("start") >= 2, test=TEST)
    open(os.path.join(cwd, "go"), "w").close()
    code = wait_exit(d, "the run after a worker was stopped")
    log = read(d.log_path)
    if code != 0 or "worker lost" not in log:
        fail(f"the run exited {code}, expected Success after 'worker lost':\n{log[-3000:]}")
    # a wakes up: its job finished too, but its answer is thrown away.
    os.kill(a.pid, signal.SIGCONT)
    pgtest.wait_for("worker a to throw its late answer away",
                    lambda: "thrown away" in read(a.log_path), test=TEST)
    result = pgtest.sql(
        "SELECT t.result FROM flowlua.task_run t JOIN flowlua.flow_run r ON r.id = t.run"
        " WHERE r.flow = 'long' ORDER BY r.id DESC LIMIT 1")
    if result != [[str(b.pid)]]:
        fail(f"the stored result is {result}, not worker b's pid {b.pid}")
    stop_all(a, b)
    os.unlink(os.path.join(cwd, "go"))


def cancel_driver(binary, cwd):
    ran = os.path.join(cwd, "ran.txt")
    if os.path.exists(ran):
        os.unlink(ran)
    lease = 3
    a = start_worker(binary, cwd, "long.lua", "cancelled", lease, slots=1)
    d = start_driver(binary, cwd, "long.lua")
    pgtest.wait_for("the worker to run the job", lambda: "start" in read(ran), test=TEST)
    d.send_signal(signal.SIGTERM)
    code = wait_exit(d, "the driver after SIGTERM", 60)
    if code != 130:
        fail(f"the cancelled driver exited {code}:\n{read(d.log_path)[-2000:]}")
    # The job spins until "go", which never comes: only the cancel, seen at
    # the worker's next renewal (every lease / 3), ends it.
    pgtest.wait_for("the worker to stop the cancelled attempt",
                    lambda: pgtest.sql("SELECT busy FROM flowlua.queue_worker"
                                       f" WHERE pid = {a.pid}") == [["0"]] and
                    pgtest.sql("SELECT count(*) FROM flowlua.job") == [["0"]],
                    limit=60, test=TEST)
    if "end" in read(ran):
        fail("the cancelled attempt ran to its end")
    stop_all(a)


def server_restart(binary, cwd):
    ran = os.path.join(cwd, "ran.txt")
    if os.path.exists(ran):
        os.unlink(ran)
    a = start_worker(binary, cwd, "map.lua", "r1", 30)
    b = start_worker(binary, cwd, "map.lua", "r2", 30)
    d = start_driver(binary, cwd, "map.lua", "--param", "n=200", env={"SPIN": "0.02"})
    pgtest.wait_for("a quarter of the map", lambda: read(ran).count("end ") >= 50,
                    test=TEST)
    pgtest.ctl("restart")
    code = wait_exit(d, "the run across a server restart")
    if code != 0:
        fail(f"the run exited {code} across a server restart:\n{read(d.log_path)[-3000:]}")
    ends = collections.Counter(line.split()[1] for line in read(ran).splitlines()
                               if line.startswith("end "))
    if len(ends) != 200 or max(ends.values()) != 1:
        fail(f"{len(ends)} elements finished; twice: "
             f"{[k for k, v in ends.items() if v > 1][:10]}")
    for w in (a, b):
        if "reconnected" not in read(w.log_path):
            fail(f"worker {w.pid} did not say it reconnected:\n{read(w.log_path)[-2000:]}")
    stop_all(a, b)


def main():
    binary = sys.argv[1]
    pgtest.reset()
    with tempfile.TemporaryDirectory() as cwd:
        sigkill_worker(binary, cwd)
        sigstop_worker(binary, cwd)
        cancel_driver(binary, cwd)
        server_restart(binary, cwd)
    print(f"{TEST}: ok")


if __name__ == "__main__":
    main()
