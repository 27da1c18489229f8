#!/usr/bin/env python3
"""`flowlua serve PATH...`: several scripts and a folder served by one
process into one history, with pause, reload of an edited script, and a
signal (issue 21, item 3).

    serve_many.py FLOWLUA                   (a SQLite history in a temp dir)
    with_pg.py -- serve_many.py FLOWLUA     (FLOWLUA_TEST_PG: PostgreSQL)

One process serves a.lua (flow alpha) and the folder flows/ (beta, a flow
without a schedule, the edited flow 'edited' and the flow 'held'; a
script in flows/sub/ is not served: folders are not walked recursively).
Each flow fires on its own interval. Then: alpha paused while beta goes
on firing, and unpaused; flows/edit.lua replaced (written beside, renamed
over it) so that its task writes v2 — the next run writes v2 and
flow_def's sha is the new text's; replaced again by a syntax error — one
ERROR line, and v2 goes on firing; a SIGTERM while a run of 'held' is
kept going — that run finishes Success and the process exits 0. No fire
time of 'edited' runs twice. Then the start refusals: two scripts with a
flow of the same name, a script that does not load, nothing scheduled
(exit 2 each, nothing served). Every wait is for an event (a run in the
history, a line in a file or the log), bounded only so that a broken
build fails.
"""
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

TEST = "serve_many.py"
PG = os.environ.get("FLOWLUA_TEST_PG", "")
TABLES = ("flow_run", "fire_event", "flow_def")

ALPHA = r'''
local flow = require "flowlua"
local tick = flow.task("tick", function() return "a" end)
return flow.define("alpha", { schedule = flow.interval { seconds = 0.4 } },
  function() tick() end)
'''

BETA = r'''
local flow = require "flowlua"
local tock = flow.task("tock", function() return "b" end)
return {
  flow.define("beta", { schedule = flow.interval { seconds = 0.6 } },
    function() tock() end),
  flow.define("by hand", {}, function() tock() end),
}
'''

# The edited script: its task appends VERSION and the run's fire time.
EDIT = r'''
local flow = require "flowlua"
local write = flow.task("write", function()
  local f = assert(io.open("values.txt", "a"))
  f:write(string.format("%s %.3f\n", "VERSION", flow.context().scheduled_at))
  f:close()
  return "VERSION"
end)
return flow.define("edited", { schedule = flow.interval { seconds = 0.5 } },
  function() write() end)
'''

# Waits while the file HOLD exists: a run the test keeps going.
HELD = r'''
local flow = require "flowlua"
local hold = os.getenv("HOLD")
local function held()
  local f = io.open(hold)
  if f then f:close() end
  return f ~= nil
end
local work = flow.task("work", function()
  while held() do flow.sleep(0.05) end
  return 1
end)
return flow.define("held", { schedule = flow.interval { seconds = 0.5 } },
  function() work() end)
'''

NESTED = r'''
local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("nested", { schedule = flow.interval { seconds = 0.2 } },
  function() t() end)
'''


def fail(msg):
    print(f"{TEST}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class History:
    """SQL on the test's history, SQLite or PostgreSQL alike."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "state.db")
        self.state = PG or self.path
        if PG:
            sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pg"))
            import pgtest
            self.pg = pgtest
            pgtest.reset()

    def rows(self, query):
        """query's rows as strings; [] before the schema exists."""
        if PG:
            query = query.format(**{t: "flowlua." + t for t in TABLES})
            try:
                return [tuple(r) for r in self.pg.sql(query)]
            except RuntimeError as e:
                if "does not exist" in str(e):
                    return []
                raise
        query = query.format(**{t: t for t in TABLES})
        if not os.path.exists(self.path):
            return []
        db = sqlite3.connect(self.path, timeout=10)
        try:
            return [tuple(str(v) for v in r) for r in db.execute(query)]
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()


def wait_for(what, cond, limit=60):
    deadline = time.monotonic() + limit
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            fail(f"waited {limit} s for {what}")
        time.sleep(0.05)


def write_atomic(path, text):
    """A new file beside path, renamed over it: a reader sees the old text
    or the new, never half."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "flows", "sub"))
        files = {"a.lua": ALPHA, "flows/beta.lua": BETA,
                 "flows/edit.lua": EDIT.replace("VERSION", "v1"),
                 "flows/held.lua": HELD, "flows/sub/nested.lua": NESTED,
                 "flows/notes.txt": "not a script\n"}
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        h = History(tmp)
        hold = os.path.join(tmp, "hold")
        env = dict(os.environ, HOLD=hold)

        def cli(*args):
            return subprocess.run([flowlua, *args, "--state", h.state], cwd=tmp,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=60, env=env)

        def runs(flow):
            """The flow's Success runs' fire times, from `flowlua runs --json`."""
            done = cli("runs", "--json", "--flow", flow, "--limit", "100000")
            if done.returncode != 0:
                return []
            return sorted(r["scheduled_at"] for r in json.loads(done.stdout)
                          if r["state"] == "Success")

        def fired(flow, outcome):
            return sorted(float(r[0]) for r in h.rows(
                "SELECT scheduled_at FROM {fire_event} WHERE flow = '%s'"
                " AND outcome = '%s'" % (flow, outcome)))

        def values():
            try:
                with open(os.path.join(tmp, "values.txt")) as f:
                    return [line.split() for line in f]
            except FileNotFoundError:
                return []

        log_path = os.path.join(tmp, "serve.log")
        log = open(log_path, "w")

        def log_text():
            with open(log_path) as f:
                return f.read()

        server = subprocess.Popen([flowlua, "serve", "a.lua", "flows",
                                   "--state", h.state],
                                  cwd=tmp, stdin=subprocess.DEVNULL, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            # Each flow fires on its own interval: three runs of each.
            for flow in ("alpha", "beta", "edited", "held"):
                wait_for(f"3 runs of {flow}",
                         lambda: len(runs(flow)) >= 3)
            text = log_text()
            if "flow 'by hand' of flows/beta.lua has no schedule: not served" \
                    not in text:
                fail(f"the flow without a schedule is not said to be left:\n{text}")
            if runs("nested") or "nested" in text:
                fail("a script in a subfolder was served")

            # Pause alpha: its fire times are recorded paused while beta
            # goes on firing; unpause: alpha runs again.
            done = cli("pause", "alpha")
            if done.returncode != 0 or "flow 'alpha' paused" not in done.stdout:
                fail(f"pause: exit {done.returncode}, {done.stdout!r} {done.stderr!r}")
            paused = wait_for("two paused fire times of alpha",
                              lambda: fired("alpha", "paused")
                              if len(fired("alpha", "paused")) >= 2 else None)
            beta_before = len(runs("beta"))
            wait_for("beta firing while alpha is paused",
                     lambda: len(runs("beta")) >= beta_before + 2)
            if fired("beta", "paused"):
                fail("beta's fire times were recorded paused")
            done = cli("unpause", "alpha")
            if done.returncode != 0:
                fail(f"unpause: exit {done.returncode}, {done.stderr!r}")
            wait_for("a run of alpha after the unpause", lambda: len(
                [t for t in h.rows("SELECT scheduled_at FROM {flow_run} WHERE "
                                   "flow = 'alpha' AND state = 'Success'")
                 if float(t[0]) > paused[-1]]) > 0)

            # Reload: the edited script writes v2 from its next fire time,
            # and fires every 0.3 s instead of 0.5 s from the one after.
            edit = os.path.join(tmp, "flows", "edit.lua")
            old_sha = h.rows("SELECT script_sha256 FROM {flow_def} WHERE flow = 'edited'")
            v2 = EDIT.replace("VERSION", "v2").replace("seconds = 0.5", "seconds = 0.3")
            write_atomic(edit, v2)
            wait_for("a run writing v2", lambda: any(v[0] == "v2" for v in values()))
            new_sha = hashlib.sha256(v2.encode()).hexdigest()
            got_sha = wait_for("flow_def's new sha", lambda: [r for r in h.rows(
                "SELECT script_sha256 FROM {flow_def} WHERE flow = 'edited'")
                if r[0] == new_sha])
            if old_sha == got_sha:
                fail(f"flow_def's sha stayed {old_sha}")
            text = log_text()
            if text.count("flow 'edited': script flows/edit.lua changed (sha "
                           + new_sha[:12] + "), reloaded") != 1:
                fail(f"no single reload line for sha {new_sha[:12]}:\n{text}")

            # A version that does not load: one ERROR line, v2 fires on.
            write_atomic(edit, "return 1 +\n")
            wait_for("the refusal", lambda: "is refused" in log_text())
            n = len(values())
            wait_for("v2 firing on after the refusal", lambda: len(values()) >= n + 3)
            text = log_text()
            refusals = [l for l in text.splitlines() if "is refused" in l]
            if len(refusals) != 1 or "ERROR" not in refusals[0] or \
                    "flows/edit.lua" not in refusals[0]:
                fail(f"refusal lines: {refusals}")
            if any(v[0] != "v2" for v in values()[n:]):
                fail(f"a version other than v2 ran after the refusal: {values()[n:]}")
            times = [v[1] for v in values()]
            if len(times) != len(set(times)):
                fail(f"a fire time of 'edited' ran twice: {sorted(times)}")
            # The new schedule's fire times (k x 0.3 s) after the first v2
            # run, which ran the fire time that noticed the change.
            later = [round(float(v[1]) * 1000) for v in values() if v[0] == "v2"][1:]
            if not later or any(ms % 300 for ms in later) or \
                    all(ms % 500 == 0 for ms in later):
                fail(f"v2's fire times are not its 0.3 s schedule: {later}")

            # SIGTERM while a run of 'held' is kept going: it finishes.
            open(hold, "w").close()
            going = wait_for("a run of held kept going", lambda: h.rows(
                "SELECT run_id FROM {flow_run} WHERE flow = 'held' AND state = 'Running'"))[0][0]
            server.send_signal(signal.SIGTERM)
            wait_for("the stop message", lambda: "stopping after the runs in progress"
                     in log_text())
            os.unlink(hold)
            code = server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            log.close()
        text = log_text()
        if code != 0:
            fail(f"the server exited {code}:\n{text}")
        # Read through flowlua, which replays what a process's journal
        # holds that its writer had not put into the database yet.
        done = cli("show", going, "--json")
        state = json.loads(done.stdout)["state"] if done.returncode == 0 else done.stderr
        if state != "Success":
            fail(f"the run going at SIGTERM ended {state!r}, not Success:\n{text}")
        for flow in ("alpha", "beta", "held"):
            if f"flow '{flow}' (" not in text:
                fail(f"no summary line for {flow}:\n{text}")

        # Refusals at the start: nothing is served.
        def refused(args, needles):
            done = subprocess.run([flowlua, "serve", *args, "--state", h.state],
                                  cwd=tmp, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60)
            if done.returncode != 2 or any(n not in done.stderr for n in needles):
                fail(f"serve {args}: exit {done.returncode}, {done.stderr!r}")
            if "next run at" in done.stderr:
                fail(f"serve {args} served something: {done.stderr!r}")

        with open(os.path.join(tmp, "twin.lua"), "w") as f:
            f.write(ALPHA)
        refused(["a.lua", "twin.lua"], ["a.lua and twin.lua both define a flow "
                                         "named 'alpha'", "nothing is served"])
        refused(["a.lua", "flows"], ["flows/edit.lua", "unexpected symbol",
                                     "nothing is served"])
        os.makedirs(os.path.join(tmp, "none"))
        with open(os.path.join(tmp, "none", "once.lua"), "w") as f:
            f.write(BETA.replace('flow.interval { seconds = 0.6 }', 'nil'))
        refused(["none"], ["nothing to serve"])
        refused(["missing.lua"], ["cannot serve missing.lua"])
        # Reload serving one script (`flowlua SCRIPT.lua`) as well.
        solo = os.path.join(tmp, "solo")
        os.makedirs(solo)
        with open(os.path.join(solo, "edit.lua"), "w") as f:
            f.write(EDIT.replace("VERSION", "v1"))
        solo_log = open(os.path.join(solo, "serve.log"), "w")
        one = subprocess.Popen([flowlua, "edit.lua", "--state", h.state],
                               cwd=solo, stdin=subprocess.DEVNULL,
                               stdout=solo_log, stderr=subprocess.STDOUT)

        def solo_values():
            try:
                with open(os.path.join(solo, "values.txt")) as f:
                    return [line.split()[0] for line in f]
            except FileNotFoundError:
                return []
        try:
            wait_for("a v1 run serving one script", lambda: "v1" in solo_values())
            write_atomic(os.path.join(solo, "edit.lua"), EDIT.replace("VERSION", "v3"))
            wait_for("a v3 run serving one script", lambda: "v3" in solo_values())
            one.send_signal(signal.SIGTERM)
            code = one.wait(timeout=60)
        finally:
            if one.poll() is None:
                one.kill()
                one.wait()
            solo_log.close()
        with open(os.path.join(solo, "serve.log")) as f:
            text = f.read()
        if code != 0 or text.count("reloaded") != 1:
            fail(f"serving one script: exit {code}, log:\n{text}")
        got = solo_values()
        if got != sorted(got) or got[-1] != "v3":
            fail(f"serving one script ran {got}: v1 then v3 expected")

        print(f"{TEST}: ok: {len(runs('alpha'))} alpha, {len(runs('beta'))} beta, "
              f"{len(values())} edited runs; {len(paused)} paused fire times")


if __name__ == "__main__":
    main()
