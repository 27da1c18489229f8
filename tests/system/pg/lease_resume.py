#!/usr/bin/env python3
"""A run's lease on PostgreSQL: the driver SIGKILLed in the middle of a run
(recorded as on another host, where its pid tells nothing) leaves it
Running until its lease lapses, then it is Crashed (by lease), and a
--resume from another process ends it, keeping what had finished. Two resumes of one run at once: the second is refused while the
first holds its lease.

    with_pg.py -- lease_resume.py FLOWLUA
"""
import os
import signal
import subprocess
import sys
import tempfile

import pgtest

FLOW = r'''
local flow = require "flowlua"
local function mark(name)
  local f = assert(io.open("done.txt", "a"))
  f:write(name, "\n")
  f:close()
end
local a = flow.task("a", function() mark("a") return 1 end)
local b = flow.task("b", function(x)
  -- waits for the test's go-ahead: the driver is killed while it waits
  while not io.open("go") do flow.sleep(0.02) end
  mark("b")
  return x + 1
end)
return flow.define("leased", {}, function() return b(a()) end)
'''
TEST = "lease_resume.py"


def lines(path):
    with open(path) as f:
        return f.read().split()


def start(flowlua, args, cwd, lease):
    return subprocess.Popen([flowlua] + args, cwd=cwd,
                            env=pgtest.env(FLOWLUA_PG_LEASE=lease),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_line(proc, pattern, what):
    """Reads proc's stderr until a line holds pattern; the lines read."""
    seen = []
    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace")
        seen.append(line)
        if pattern in line:
            return seen
    pgtest.fail(TEST, f"{what}: the process ended first:\n" + "".join(seen))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    pgtest.reset()
    with tempfile.TemporaryDirectory(prefix="flowlua-pg-") as cwd:
        with open(os.path.join(cwd, "leased.lua"), "w") as f:
            f.write(FLOW)
        driver = start(flowlua, ["leased.lua"], cwd, 1)
        wait_line(driver, "b: Running", "the first run's task b")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        # As if it had run on another host: there, its pid tells nothing,
        # and only its lease can (on its own host a dead driver's run is
        # Crashed at once, as on SQLite).
        pgtest.sql("UPDATE flowlua.flow_run SET owner_host = 'another-host'")

        # Running while the lease holds, Crashed once it lapsed: whoever
        # opens the history next marks it.
        def crashed():
            runs = pgtest.runs_json(flowlua, cwd)
            return runs if runs and runs[0]["state"] == "Crashed" else None
        runs = pgtest.wait_for("the killed run to be Crashed", crashed, test=TEST)
        if len(runs) != 1:
            pgtest.fail(TEST, f"one run expected, got {runs}")
        show = pgtest.flowlua(flowlua, ["show", "last"], cwd)
        err = show.stdout.decode() + show.stderr.decode()
        if "stopped renewing the run's lease" not in err:
            pgtest.fail(TEST, f"show does not say why the run crashed:\n{err}")

        # Two resumes at once: the first holds the run, the second is refused.
        first = start(flowlua, ["leased.lua", "--resume", "last"], cwd, 30)
        wait_line(first, "b: Running", "the resume's task b")
        second = pgtest.flowlua(flowlua, ["leased.lua", "--resume", runs[0]["id"]], cwd)
        msg = second.stderr.decode("utf-8", "replace")
        if second.returncode == 0 or "is already being resumed" not in msg:
            pgtest.fail(TEST, f"a second resume at once was not refused "
                        f"(exit {second.returncode}):\n{msg}")
        open(os.path.join(cwd, "go"), "w").close()
        out, err = first.communicate(timeout=120)
        if first.returncode != 0:
            pgtest.fail(TEST, f"the resume failed (exit {first.returncode}):\n"
                        + err.decode("utf-8", "replace"))
        done = lines(os.path.join(cwd, "done.txt"))
        if sorted(done) != ["a", "b"]:
            pgtest.fail(TEST, f"each task once expected, the tasks ran: {done}")
        runs = pgtest.runs_json(flowlua, cwd)
        states = [r["state"] for r in runs]
        if states != ["Success", "Crashed"]:
            pgtest.fail(TEST, f"runs, newest first: {states}")
    print("lease_resume.py: ok")


if __name__ == "__main__":
    main()
