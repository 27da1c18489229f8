#!/usr/bin/env python3
"""Two flowlua processes serve the same scheduled flow on one state file:
every fire time runs exactly once, in one of them, and the file stays
whole.

    two_servers.py FLOWLUA

The flow fires every 0.1 s for 3 s (its `until` is set from the start time
given in the environment, so both processes share the same fire times).
Both are started together and serve until `until`. Afterwards the run
history must hold one run per fire time — no fire time twice, none missing
from the first that either process was serving for — each fire time one
process ran while the other was serving too must be recorded in fire_event
by the other (taken: it had run; or skipped: its own run was still going),
the fire times logged as taken must be those recorded as taken, and PRAGMA
integrity_check must say ok.

When a process serves from is read from its log, not assumed: its first
"next run at" line names the first fire time it waits for. The start
time is 0.5 s ahead, but a loaded machine may take longer to start a
process, and the fire times that pass before are nobody's.
"""
import datetime
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

FLOW = r'''
local flow = require "flowlua"
local start = tonumber(os.getenv("START"))
local work = flow.task("work", function() flow.sleep(0.02) end)
return flow.define("shared", {
  schedule = flow.interval { seconds = 0.1, start = start, ["until"] = start + 3 },
}, function() work() end)
'''


def first_due(log):
    """The first fire time a server's log says it waits for, in epoch
    seconds rounded to the millisecond; None if it names none."""
    m = re.search(r"next run at (\S+)", log)
    if not m:
        return None
    return round(datetime.datetime.fromisoformat(
        m.group(1).replace("Z", "+00:00")).timestamp(), 3)


def fail(msg):
    print(f"two_servers.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="flowlua-two-") as d:
        script = os.path.join(d, "shared.lua")
        with open(script, "w") as f:
            f.write(FLOW)
        start = round(time.time() + 0.5, 1)
        env = dict(os.environ, START=repr(start))
        procs = [subprocess.Popen([flowlua, script], cwd=d, env=env,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        logs = []
        for p in procs:
            try:
                _, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                fail("a server did not stop after its schedule ended")
            if p.returncode != 0:
                fail(f"a server exited {p.returncode}:\n{err[-3000:]}")
            logs.append(err)
        db = sqlite3.connect(os.path.join(d, ".flowlua", "state.db"))
        rows = db.execute("SELECT scheduled_at, owner_pid, state FROM flow_run"
                          " WHERE flow = 'shared'").fetchall()
        fires = [round(r[0], 3) for r in rows]
        dupes = {t for t in fires if fires.count(t) > 1}
        if dupes:
            fail(f"fire times run twice: {sorted(dupes)}")
        expected = [round(start + 0.1 * k, 3) for k in range(0, 31)]
        # The first fire time each process waited for (None: it never
        # served one); from the earlier on, every fire time must run.
        dues = [first_due(log) for log in logs]
        if None in dues:
            fail(f"a server never waited for a fire time (first fire times "
                 f"{dues}, start {start}):\n{logs[dues.index(None)][-3000:]}")
        missing = [t for t in expected if t >= min(dues) and t not in fires]
        if missing:
            fail(f"fire times never run: {missing} (the servers waited first "
                 f"for {dues})")
        if any(r[2] != "Success" for r in rows):
            fail(f"runs not Success: {[r for r in rows if r[2] != 'Success']}")
        # From the later first fire time on both served: each fire time
        # one ran, the other recorded as taken or, when its own run was
        # still going, as skipped.
        both = [r for r in rows if round(r[0], 3) >= max(dues)]
        if not both:
            fail(f"the two servers never served at the same time (first "
                 f"fire times {dues}, the schedule ends at {start + 3})")
        events = {(round(t, 3), pid) for t, pid in db.execute(
            "SELECT scheduled_at, owner_pid FROM fire_event WHERE flow ="
            " 'shared' AND outcome IN ('taken', 'skipped')")}
        pids = [p.pid for p in procs]
        unseen = [round(r[0], 3) for r in both
                  if (round(r[0], 3), pids[1 - pids.index(r[1])]) not in events]
        if unseen:
            fail(f"fire times run by one process and not recorded by the other"
                 f" as taken or skipped: {unseen}")
        owners = sorted({r[1] for r in rows})
        skipped = [len(re.findall(r"another flowlua process serving this flow "
                                  r"on the same run history has run it", log))
                   for log in logs]
        taken = db.execute("SELECT count(*) FROM fire_event WHERE flow ="
                           " 'shared' AND outcome = 'taken'").fetchone()[0]
        if taken != sum(skipped):
            fail(f"{sum(skipped)} fire times logged as run by the other process,"
                 f" {taken} recorded as taken in fire_event")
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            fail(f"integrity_check: {ok}")
        print(f"two_servers: {len(fires)} fire times, each run once (by "
              f"pid: {[sum(1 for r in rows if r[1] == o) for o in owners]}), "
              f"logged as run by the other: {skipped}; integrity ok")


if __name__ == "__main__":
    main()
