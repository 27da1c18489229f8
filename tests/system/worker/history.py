#!/usr/bin/env python3
"""Where each attempt of a worker task ran, as the log, `show` and the
report tell it, and when its attempt counts as Running.

    history.py FLOWLUA

A map over worker tasks (--workers 2) whose elements write their worker's pid to pid-I; one
element fails its first attempt and is retried. Checks:
  - each element's log line "Running (..., worker PID)" and its Success
    name the pid the element itself saw (a Running is told once a worker
    took the attempt: before, no pid is known);
  - `flowlua show last` has a WORKER column naming those pids, and
    `show --json` gives each element {"host": ..., "pid": ...} and the map
    task and the inline task none;
  - the report names the worker of each attempt, the failed one included;
  - a run with no worker task keeps the table without a WORKER column.
Exits 1 with what went wrong.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

FLOW = """local flow = require "flowlua"
local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local n = f:read("n")
  f:close()
  return n
end
local work = flow.task("work", { worker = true, retries = 1, retry_delay = 0,
                                 timeout = 60 }, function(i)
  local f = assert(io.open("pid-" .. i, "a"))
  f:write(pid(), "\\n")
  f:close()
  if i == 2 and not io.open("failed-once") then
    assert(io.open("failed-once", "w")):close()
    error("the first attempt of 2 fails")
  end
  local x = 0
  for k = 1, 3e5 do x = x + k % 7 end
  return i
end)
local after = flow.task("after", function(xs) return #xs end)
return flow.define("where", function()
  return after(work:map({ 1, 2, 3, 4, 5, 6 }))
end)
"""

PLAIN = """local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("plain", function() return t() end)
"""


def fail(msg):
    print(f"history.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def main():
    flowlua = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="flowlua-worker-history-") as d:
        with open(os.path.join(d, "flow.lua"), "w") as f:
            f.write(FLOW)
        env_cmd = [flowlua, "flow.lua", "--workers", "2"]
        log = run(env_cmd, d).stderr
        pids = {}
        for i in range(1, 7):
            with open(os.path.join(d, f"pid-{i}")) as f:
                pids[i] = [int(x) for x in f.read().split()]
        if len(pids[2]) != 2:
            fail(f"element 2 ran {len(pids[2])} times, not 2: {pids[2]}")
        # The log: Running and Success name the pid the element saw.
        lines = log.splitlines()
        for i, seen in pids.items():
            running = [l for l in lines if re.search(rf"work\[{i}\]: Running", l)]
            if len(running) != len(seen):
                fail(f"work[{i}]: {len(running)} Running lines for {len(seen)} attempts:\n{log}")
            for line, p in zip(running, seen):
                if not line.endswith(f"worker {p})"):
                    fail(f"work[{i}]: '{line}' does not name worker {p}")
            ok = [l for l in lines if re.search(rf"work\[{i}\]: Success", l)]
            if len(ok) != 1 or f"worker {seen[-1]})" not in ok[0]:
                fail(f"work[{i}]: Success line {ok} does not name worker {seen[-1]}")
        text = run([flowlua, "show", "last"], d).stdout
        if not re.search(r"^TASK +STATE +ATTEMPTS +DURATION +WORKER +ERROR$", text, re.M):
            fail(f"show has no WORKER column:\n{text}")
        for i, seen in pids.items():
            if not re.search(rf"^work\[{i}\] +Success +{len(seen)} +\S+ +{seen[-1]}$", text, re.M):
                fail(f"show does not name worker {seen[-1]} for work[{i}]:\n{text}")
        shown = json.loads(run([flowlua, "show", "last", "--json"], d).stdout)
        by_key = {t["key"]: t for t in shown["tasks"]}
        for i, seen in pids.items():
            w = by_key[f"work[{i}]"]["worker"]
            if not w or w["pid"] != seen[-1] or not w["host"]:
                fail(f"show --json: work[{i}] worker {w}, want pid {seen[-1]}")
        for key in ("work", "after"):
            if by_key[key]["worker"] is not None:
                fail(f"show --json: {key} ran in the driver, yet names {by_key[key]['worker']}")

        run([flowlua, "report", "last", "--html", "r.html"], d)
        with open(os.path.join(d, "r.html"), encoding="utf-8") as f:
            html = f.read()
        titles = re.findall(r"work\[(\d)\], attempt (\d) of \d: ([^<]*)", html)
        if len(titles) != 7:
            fail(f"the report has {len(titles)} attempt bars of work, not 7")
        for i, attempt, rest in titles:
            want = pids[int(i)][int(attempt) - 1]
            if not rest.endswith(f", worker {want}") and f", worker {want}\n" not in rest:
                fail(f"report: work[{i}] attempt {attempt} '{rest}' does not name worker {want}")
        if not re.search(rf"attempt 1 of 2 · failed, retried · at [^<]* · worker {pids[2][0]}<", html):
            fail("the report's failure of work[2] does not name its worker")

        with open(os.path.join(d, "plain.lua"), "w") as f:
            f.write(PLAIN)
        run([flowlua, "plain.lua"], d)
        text = run([flowlua, "show", "last"], d).stdout
        if "WORKER" in text or not re.search(r"^TASK +STATE +ATTEMPTS +DURATION +ERROR$", text, re.M):
            fail(f"a run without worker tasks got a WORKER column:\n{text}")
    print("history.py: ok")


if __name__ == "__main__":
    main()
