#!/usr/bin/env python3
"""A restart of the PostgreSQL server (pg_ctl restart -m fast) in the
middle of a 10,000-task run, and in the middle of serving: the run ends
Success with every task run once, and the serving process goes on with
every fire time run once.

    with_pg.py -- restart.py FLOWLUA
"""
import collections
import os
import subprocess
import sys
import tempfile
import time

import pgtest

MAP = r'''
local flow = require "flowlua"
local out = assert(io.open("done.txt", "a"))
out:setvbuf("line")
local work = flow.task("work", function(i)
  -- the second half waits for the test's go-ahead, given once the
  -- server has restarted: the run's next writes find it gone and back
  while i > 5000 and not io.open("go") do flow.sleep(0.01) end
  out:write(i, "\n")
  return i
end)
-- A chain of 20 steps, each a map of 500: the engine flushes (and waits
-- for the commit) before each step starts.
local step = flow.task("step", function(xs) return #xs end)
return flow.define("big", {}, function()
  local last
  for s = 1, 20 do
    local xs = {}
    for i = 1, 500 do xs[i] = (s - 1) * 500 + i end
    local m = work:map(xs)
    if last then m:after(last) end
    last = step(m)
  end
  return last
end)
'''

SERVED = r'''
local flow = require "flowlua"
local start = tonumber(os.getenv("START"))
local work = flow.task("work", function() flow.sleep(0.02) end)
return flow.define("served", {
  schedule = flow.interval { seconds = 0.2, start = start, ["until"] = start + 8 },
}, function() work() end)
'''
TEST = "restart.py"


def count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def big_run(flowlua, cwd):
    with open(os.path.join(cwd, "big.lua"), "w") as f:
        f.write(MAP)
    log = open(os.path.join(cwd, "big.log"), "w+")
    proc = subprocess.Popen([flowlua, "big.lua"], cwd=cwd, env=pgtest.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log)
    done_path = os.path.join(cwd, "done.txt")
    pgtest.wait_for("the first 5,000 tasks done", lambda: count_lines(done_path) >= 5000
                    or proc.poll() is not None, test=TEST)
    if proc.poll() is not None:
        pgtest.fail(TEST, "the run ended before the restart")
    pgtest.ctl("restart")
    open(os.path.join(cwd, "go"), "w").close()
    proc.wait(timeout=600)
    log.seek(0)
    err = log.read()
    log.close()
    if proc.returncode != 0:
        pgtest.fail(TEST, f"the run across a restart exited {proc.returncode}:\n{err[-4000:]}")
    with open(done_path) as f:
        done = [int(x) for x in f.read().split()]
    twice = [i for i, n in collections.Counter(done).items() if n > 1]
    if twice or sorted(done) != list(range(1, 10001)):
        pgtest.fail(TEST, f"tasks run twice: {twice[:10]}; {len(done)} runs of "
                    f"{len(set(done))} tasks")
    # 10,000 elements, 20 maps, 20 steps.
    rows = pgtest.sql("SELECT t.state, count(*) FROM flowlua.task_run t JOIN"
                      " flowlua.flow_run r ON r.id = t.run WHERE r.flow = 'big'"
                      " GROUP BY t.state")
    if rows != [["Success", "10040"]]:
        pgtest.fail(TEST, f"task runs by state: {rows}")
    state = pgtest.sql("SELECT state FROM flowlua.flow_run WHERE flow = 'big'")
    if state != [["Success"]]:
        pgtest.fail(TEST, f"the run: {state}")


def served(flowlua, cwd):
    with open(os.path.join(cwd, "served.lua"), "w") as f:
        f.write(SERVED)
    start = round(time.time() + 1.0, 1)
    log = open(os.path.join(cwd, "served.log"), "w+")
    proc = subprocess.Popen([flowlua, "served.lua"], cwd=cwd,
                            env=pgtest.env(START=repr(start)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log)

    def runs():
        return int(pgtest.sql("SELECT count(*) FROM flowlua.flow_run WHERE"
                              " flow = 'served'")[0][0])
    pgtest.wait_for("10 served runs", lambda: runs() >= 10, test=TEST)
    pgtest.ctl("restart")
    proc.wait(timeout=600)
    log.seek(0)
    err = log.read()
    log.close()
    if proc.returncode != 0:
        pgtest.fail(TEST, f"serving across a restart exited {proc.returncode}:\n{err[-4000:]}")
    rows = pgtest.sql("SELECT round((scheduled_at * 1000)::numeric), state FROM"
                      " flowlua.flow_run WHERE flow = 'served' ORDER BY 1")
    fires = [int(r[0]) for r in rows]
    if len(set(fires)) != len(fires):
        pgtest.fail(TEST, "a fire time ran twice")
    bad = [r for r in rows if r[1] != "Success"]
    if bad:
        pgtest.fail(TEST, f"served runs not Success: {bad}\n{err[-3000:]}")
    expected = [round(start * 1000 + 200 * k) for k in range(41)]
    missing = [t for t in expected if t >= fires[0] and t not in fires]
    # A fire time due while the server was down is late, not lost: the
    # serving loop's catch-up policy runs it or records it (missed or
    # skipped: an event names the first and the last of the fire times
    # it stands for).
    events = [(int(r[0]), int(r[1] or r[0])) for r in pgtest.sql(
        "SELECT round((scheduled_at * 1000)::numeric),"
        " round((coalesce(last_at, scheduled_at) * 1000)::numeric)"
        " FROM flowlua.fire_event WHERE flow = 'served'")]
    lost = [t for t in missing if not any(a <= t <= b for a, b in events)]
    if lost:
        pgtest.fail(TEST, f"fire times neither run nor recorded: {lost} (events "
                    f"{events})\n{err[-3000:]}")
    if "was stopped, or the machine is overloaded" in err:
        pgtest.fail(TEST, "a wait for the server was blamed on the machine:\n"
                    + err[-3000:])
    return len(fires), len(missing)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    pgtest.reset()
    with tempfile.TemporaryDirectory(prefix="flowlua-pg-") as cwd:
        big_run(flowlua, cwd)
        n, late = served(flowlua, cwd)
    print(f"{TEST}: a 10,000-task run across a restart: Success, each task once;"
          f" serving across a restart: {n} runs, {late} fire times recorded as"
          f" not run")


if __name__ == "__main__":
    main()
