#!/usr/bin/env python3
"""Two flowlua processes serve the same scheduled flow on one state file:
every fire time runs exactly once, in one of them, and the file stays
whole.

    two_servers.py FLOWLUA

The flow fires every 0.1 s for 3 s (its `until` is set from the start time
given in the environment, so both processes share the same fire times).
Both are started together and serve until `until`. Afterwards the run
history must hold one run per fire time — no fire time twice, none missing
except at most the first (it may pass while both start) — each fire
time one process ran must be logged by the other as skipped and
recorded in fire_event as taken, and PRAGMA integrity_check must say ok.
"""
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
        missing = [t for t in expected if t not in fires]
        if len(missing) > 1 or (missing and missing[0] != expected[0]):
            fail(f"fire times never run: {missing}")
        if any(r[2] != "Success" for r in rows):
            fail(f"runs not Success: {[r for r in rows if r[2] != 'Success']}")
        owners = sorted({r[1] for r in rows})
        skipped = [len(re.findall(r"another flowlua process serving this flow "
                                  r"on the same state file has run it", log))
                   for log in logs]
        if sum(skipped) < len(fires) - 1:
            fail(f"expected each fire time run by one process to be logged as "
                 f"skipped by the other, got {skipped} for {len(fires)} runs")
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
