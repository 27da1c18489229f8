#!/usr/bin/env python3
"""`flowlua prune` and a serving process's --retention, on real histories.

    prune.py FLOWLUA

Runs are made by flowlua itself, then aged by moving their times back in
the file (the one thing a test cannot wait for is a month). Checks:
  - prune --older-than 30d deletes the aged runs with all they hold (task
    runs, state changes, graphs), keeps the recent ones, and a running
    one, whatever its age; --keep-failed keeps the Failed ones; --flow
    keeps other flows'; --json says what was deleted;
  - the file shrinks after a big run is pruned (a new file gives its
    space back); a file made without incremental vacuum keeps the pages
    and says so, and --vacuum gives them back once and for all;
  - a serving process with --retention 30d prunes the aged runs at its
    start, and logs it;
  - bad input: no --older-than, a bad age, --retention 0, --older-than
    with another command: a clear message and exit 2; a history that does
    not exist: nothing to delete, exit 0.
Exits 1 with what went wrong.
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

FLOW = """local flow = require "flowlua"
local t = flow.task("t", function(i)
  if i == "fail" then error("it fails") end
  return i
end)
local wait = flow.task("wait", function()
  local f = assert(io.open("running", "w")) f:close()
  while not io.open("go") do flow.sleep(0.02) end
end)
return {
  flow.define("etl", { params = { mode = "ok", n = 3 } }, function(p)
    if p.mode == "wait" then return wait() end
    local xs = {}
    for i = 1, p.n do xs[i] = p.mode == "fail" and "fail" or i end
    return t:map(xs)
  end),
  flow.define("other", function() return t(1) end),
  flow.define("served", { schedule = flow.interval { seconds = 0.05 } },
    function() return wait() end),
}
"""

DAY = 86400


def fail(msg):
    print(f"prune.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class Case:
    def __init__(self, flowlua, folder):
        self.flowlua, self.dir = flowlua, folder
        self.db = os.path.join(folder, "s.db")
        with open(os.path.join(folder, "flow.lua"), "w") as f:
            f.write(FLOW)

    def run(self, *args, want=0, timeout=120):
        p = subprocess.run([self.flowlua, *args], cwd=self.dir, capture_output=True,
                           text=True, timeout=timeout)
        if p.returncode != want:
            fail(f"flowlua {' '.join(args)}: exit {p.returncode}, want {want}\n"
                 f"{p.stdout}\n{p.stderr}")
        return p

    def flow(self, *args, want=0):
        return self.run("flow.lua", "--state", self.db, "--quiet", *args, want=want)

    def prune(self, *args, want=0):
        return self.run("prune", "--state", self.db, *args, want=want)

    def sql(self, query, *params):
        with sqlite3.connect(self.db) as c:
            return c.execute(query, params).fetchall()

    def age(self, days, where="1"):
        """Moves the runs matching `where` back by `days`."""
        with sqlite3.connect(self.db) as c:
            c.execute(f"UPDATE flow_run SET started_at = started_at - ?1,"
                      f" ended_at = ended_at - ?1 WHERE {where}", (days * DAY,))

    def runs(self):
        return sorted(r[0] for r in self.sql("SELECT flow || ':' || state FROM flow_run"))


def check_prune(c):
    c.flow("--flow", "etl")                                  # Success
    c.flow("--flow", "etl", "--param", "mode=fail", want=1)  # Failed
    c.flow("--flow", "other")                                # Success
    c.age(40)
    c.flow("--flow", "etl", "--param", "n=2")                # recent
    if c.runs() != ["etl:Failed", "etl:Success", "etl:Success", "other:Success"]:
        fail(f"the history holds {c.runs()}")
    before_tasks = c.sql("SELECT count(*) FROM task_run")[0][0]

    # --keep-failed and --flow: only etl's aged Success goes.
    out = json.loads(c.prune("--older-than", "30d", "--keep-failed", "--flow", "etl",
                             "--json").stdout)
    if out["runs"] != 1 or out["task_runs"] != 3:  # a map counted by its elements
        fail(f"prune --keep-failed --flow etl said {out}")
    if c.runs() != ["etl:Failed", "etl:Success", "other:Success"]:
        fail(f"after prune --keep-failed --flow etl: {c.runs()}")
    # Then everything aged: the Failed run and the other flow's.
    text = c.prune("--older-than", "30d").stdout
    if not text.startswith("pruned 2 runs (") or "the history went from" not in text:
        fail(f"prune printed: {text!r}")
    if c.runs() != ["etl:Success"]:
        fail(f"after prune --older-than 30d: {c.runs()}")
    for table in ("task_row", "task_pack", "task_event", "run_graph", "attempt_worker"):
        n = c.sql(f"SELECT count(*) FROM {table} WHERE run NOT IN (SELECT id FROM flow_run)")[0][0]
        if n:
            fail(f"{n} rows of {table} outlived their run")
    left = c.sql("SELECT count(*) FROM task_run")[0][0]
    if left != 3 or before_tasks <= left:
        fail(f"task runs: {before_tasks} before, {left} after, want 3 after")
    c.run("show", "last", "--state", c.db)  # the recent run reads whole


def check_running(c):
    """A running run is never pruned, however old it looks."""
    p = subprocess.Popen([c.flowlua, "flow.lua", "--state", c.db, "--quiet", "--flow", "etl",
                          "--param", "mode=wait"], cwd=c.dir, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        while not os.path.exists(os.path.join(c.dir, "running")):
            if p.poll() is not None:
                fail(f"the waiting flow ended: {p.stderr.read()}")
            os.sched_yield()
        c.age(400, "state = 'Running'")
        out = json.loads(c.prune("--older-than", "1d", "--json").stdout)
        if "etl:Running" not in c.runs():
            fail(f"a running run was pruned: {c.runs()} ({out})")
    finally:
        open(os.path.join(c.dir, "go"), "w").close()
        p.wait(timeout=60)
    if p.returncode != 0:
        fail(f"the waiting flow exited {p.returncode}")


def check_space(c):
    """A big run pruned gives its pages back to the file system."""
    c.flow("--flow", "etl", "--param", "n=20000")
    c.age(40, "id = (SELECT max(id) FROM flow_run)")
    c.sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(c.db)
    out = json.loads(c.prune("--older-than", "30d", "--json").stdout)
    after = os.path.getsize(c.db)
    if out["task_runs"] < 20000 or not after < size * 0.7:
        fail(f"the file went from {size} to {after} bytes ({out})")
    if out["free_pages_kept"] != 0:
        fail(f"a new file kept {out['free_pages_kept']} free pages")


def check_old_file(flowlua, folder):
    """A file made without incremental vacuum keeps its free pages and says
    so; --vacuum gives them back and makes it give space back from then on."""
    c = Case(flowlua, folder)
    c.flow("--flow", "etl", "--param", "n=5000")
    with sqlite3.connect(c.db, isolation_level=None) as db:
        db.execute("PRAGMA auto_vacuum = NONE")
        db.execute("VACUUM")
    c.age(40)
    text = c.prune("--older-than", "30d").stdout
    if "free pages kept for later writes" not in text or "--vacuum" not in text:
        fail(f"an old file's prune printed: {text!r}")
    c.flow("--flow", "etl", "--param", "n=5000")
    c.age(40)
    c.sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(c.db)
    out = json.loads(c.prune("--older-than", "30d", "--vacuum", "--json").stdout)
    after = os.path.getsize(c.db)
    if not after < size * 0.7 or out["free_pages_kept"] != 0:
        fail(f"--vacuum: {size} -> {after} bytes ({out})")
    if c.sql("PRAGMA auto_vacuum")[0][0] != 2:
        fail("--vacuum did not make the file give space back")


def check_retention(c):
    """The served run waits (for the file 'go') until the process has logged
    its prune: an event, so a slow machine (the sanitizers) cannot end the
    serving before the prune did."""
    c.flow("--flow", "other")
    c.age(40)
    c.flow("--flow", "other")
    p = subprocess.Popen([c.flowlua, "flow.lua", "--state", c.db, "--flow", "served",
                          "--max-runs", "1", "--retention", "30d", "--no-status"],
                         cwd=c.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    seen = []
    try:
        for line in p.stderr:
            seen.append(line)
            if "retention: pruned 1 run(s)" in line:
                break
        else:
            fail("the serving process ended without logging its prune:\n" + "".join(seen))
    finally:
        open(os.path.join(c.dir, "go"), "w").close()
        rest = p.communicate(timeout=60)[1]
    if p.returncode != 0:
        fail(f"serving exited {p.returncode}:\n{''.join(seen)}{rest}")
    aged = c.sql("SELECT count(*) FROM flow_run WHERE started_at < strftime('%s','now') - 30 * 86400")
    if aged[0][0] != 0:
        fail("the aged run is still there after serving with --retention 30d")


def check_bad_input(c):
    for args, want in ((["prune"], "prune needs --older-than AGE"),
                       (["prune", "--older-than", "3x"], "unknown unit 'x'"),
                       (["prune", "--older-than", "30"], "a unit is missing"),
                       (["runs", "--older-than", "30d"], "go with 'flowlua prune'"),
                       (["flow.lua", "--retention", "0s"], "--retention must be longer than 0"),
                       (["prune", "--older-than", "1d", "flow.lua"], "'prune' takes no script")):
        p = c.run(*args, want=2)
        if want not in p.stderr:
            fail(f"flowlua {' '.join(args)}: stderr lacks {want!r}:\n{p.stderr}")
    p = c.run("prune", "--older-than", "1d", "--state", os.path.join(c.dir, "none.db"))
    if not p.stdout.startswith("pruned 0 runs") or os.path.exists(os.path.join(c.dir, "none.db")):
        fail(f"prune of a history that does not exist: {p.stdout!r}")


def main():
    flowlua = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="flowlua-prune-") as d:
        for name in ("prune", "running", "space", "old", "retention", "bad"):
            os.mkdir(os.path.join(d, name))
        check_prune(Case(flowlua, os.path.join(d, "prune")))
        check_running(Case(flowlua, os.path.join(d, "running")))
        check_space(Case(flowlua, os.path.join(d, "space")))
        check_old_file(flowlua, os.path.join(d, "old"))
        check_retention(Case(flowlua, os.path.join(d, "retention")))
        check_bad_input(Case(flowlua, os.path.join(d, "bad")))
    print("prune.py: ok")


if __name__ == "__main__":
    main()
