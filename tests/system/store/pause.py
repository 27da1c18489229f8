#!/usr/bin/env python3
"""`flowlua pause FLOW` and `flowlua unpause FLOW` switch a served flow's
schedule off and on through the history, with a real serving process.

    pause.py FLOWLUA                      (a SQLite history in a temp dir)
    with_pg.py -- pause.py FLOWLUA        (FLOWLUA_TEST_PG: PostgreSQL)

The flow fires every second. Before it was ever served, pausing it is
refused (exit 2: the history knows no such flow). While served: after a
run, a run is held going, and `pause` (and a second `pause`, which
changes nothing); then the fire times that come are recorded as fire
events with outcome "paused" (not skipped by the overlap policy) and start
no run, while the held run goes on to Success once let go; `unpause`; then runs start again, and the fire times that
passed while paused were not run later either. A flow the history does
not know is refused, naming the flows it knows. Every wait is for an
event in the history, bounded only so that a broken build fails.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

FLOW = r'''
local flow = require "flowlua"
local hold = os.getenv("HOLD")
local function held()
  local f = io.open(hold)
  if f then f:close() end
  return f ~= nil
end
-- Waits while the file HOLD exists: a run the test keeps going.
local work = flow.task("work", function()
  while held() do flow.sleep(0.05) end
  return 1
end)
return flow.define("ticker", {
  schedule = flow.interval { seconds = 1 },
}, function() work() end)
'''
TEST = "pause.py"
PG = os.environ.get("FLOWLUA_TEST_PG", "")
TABLES = ("flow_run", "fire_event", "flow_pause")


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
        """query's rows; [] before the serving process made the schema.
        Tables are named {flow_run}: schema flowlua on PostgreSQL."""
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
            return []  # no schema yet
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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "ticker.lua"), "w") as f:
            f.write(FLOW)
        h = History(tmp)

        def cli(*args):
            return subprocess.run([flowlua, *args, "--state", h.state], cwd=tmp,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=60)

        # Nothing served yet: nothing to pause.
        done = cli("pause", "ticker")
        if done.returncode != 2 or "no flow 'ticker' to pause" not in done.stderr:
            fail(f"pause before any serving: exit {done.returncode}, {done.stderr!r}")

        log = open(os.path.join(tmp, "serve.log"), "w")
        hold = os.path.join(tmp, "hold")
        server = subprocess.Popen([flowlua, "ticker.lua", "--state", h.state],
                                  cwd=tmp, stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, HOLD=hold),
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            def runs():
                return [float(r[0]) for r in h.rows(
                    "SELECT scheduled_at FROM {flow_run} WHERE flow = 'ticker'"
                    " AND state = 'Success'")]

            def paused():
                return sorted(float(r[0]) for r in h.rows(
                    "SELECT scheduled_at FROM {fire_event} WHERE flow = 'ticker'"
                    " AND outcome = 'paused'"))

            wait_for("a first run", runs)
            open(hold, "w").close()
            going = wait_for("a run held going", lambda: h.rows(
                "SELECT run_id FROM {flow_run} WHERE flow = 'ticker'"
                " AND state = 'Running'"))[0][0]
            done = cli("pause", "ticker")
            if done.returncode != 0 or "flow 'ticker' paused" not in done.stdout:
                fail(f"pause: exit {done.returncode}, {done.stdout!r} {done.stderr!r}")
            done = cli("pause", "ticker")
            if done.returncode != 0 or "was paused already" not in done.stdout:
                fail(f"second pause: exit {done.returncode}, {done.stdout!r}")
            who = h.rows("SELECT paused_by FROM {flow_pause} WHERE flow = 'ticker'")
            if len(who) != 1 or "flowlua pause" not in who[0][0]:
                fail(f"flow_pause holds {who}, not one row naming flowlua pause")

            stopped = wait_for("two fire times recorded as paused",
                               lambda: paused() if len(paused()) >= 2 else None)
            # The run going when paused goes on: still Running, then, let
            # go, Success.
            state = h.rows(f"SELECT state FROM {{flow_run}} WHERE run_id = '{going}'")
            if state != [("Running",)]:
                fail(f"the run going when paused is {state}, not Running")
            os.unlink(hold)
            wait_for("the held run to succeed", lambda: h.rows(
                f"SELECT 1 FROM {{flow_run}} WHERE run_id = '{going}'"
                " AND state = 'Success'"))
            skipped = h.rows("SELECT count(*) FROM {fire_event} WHERE flow = 'ticker'"
                             " AND outcome = 'skipped' AND scheduled_at >= "
                             + repr(stopped[0]))
            if skipped != [("0",)]:
                fail(f"fire times skipped by overlap while paused: {skipped}")
            # No run for a fire time at or after the first paused one (a
            # run that started before the pause may still have ended).
            late = [t for t in runs() if t >= stopped[0]]
            if late:
                fail(f"runs for fire times {late} while paused from {stopped[0]}")

            done = cli("unpause", "ticker")
            if done.returncode != 0 or "flow 'ticker' unpaused" not in done.stdout:
                fail(f"unpause: exit {done.returncode}, {done.stdout!r} {done.stderr!r}")
            done = cli("unpause", "ticker")
            if done.returncode != 0 or "was not paused" not in done.stdout:
                fail(f"second unpause: exit {done.returncode}, {done.stdout!r}")
            if h.rows("SELECT flow FROM {flow_pause}"):
                fail("flow_pause still holds a row after unpause")

            resumed = wait_for("a run after the unpause",
                               lambda: [t for t in runs() if t > max(paused())])
            # Fire times that passed paused are not run later (no catch-up).
            twice = set(paused()) & set(runs())
            if twice:
                fail(f"fire times both paused and run: {sorted(twice)}")

            done = cli("pause", "nosuch")
            if done.returncode != 2 or "no flow 'nosuch' to pause" not in done.stderr \
                    or "'ticker'" not in done.stderr:
                fail(f"pause of an unknown flow: exit {done.returncode}, {done.stderr!r}")
            done = cli("unpause")
            if done.returncode != 2 or "unpause expects a flow name" not in done.stderr:
                fail(f"unpause without a flow: exit {done.returncode}, {done.stderr!r}")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                code = "killed"
            log.close()
        text = open(os.path.join(tmp, "serve.log")).read()
        if code != 0:
            fail(f"the server exited {code}:\n{text}")
        for needle in ("paused by", "not run: the flow is paused", "unpaused"):
            if needle not in text:
                fail(f"the server's log says nothing of {needle!r}:\n{text}")
        print(f"{TEST}: ok: {len(resumed)} run(s) after unpause, "
              f"{len(paused())} paused fire time(s)")


if __name__ == "__main__":
    main()
