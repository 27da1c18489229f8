#!/usr/bin/env python3
"""Two hosts' worth of serving processes on one PostgreSQL history: two
flowlua processes serve one flow that fires every 0.2 s for 20 s; one of
them is SIGKILLed half-way, in the middle of one of its runs. Every fire
time from the first one both waited for is run exactly once: one flow_run
row each (the killed process's last run Crashed, by lease), no fire time
twice, none missing until the end of the schedule, every claimed fire time
with its run.

    with_pg.py -- serve_two.py FLOWLUA
    (SERVE_TWO_SECONDS=N shortens the schedule: for a quick look)
"""
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pgtest

FLOW = r'''
local flow = require "flowlua"
local start = tonumber(os.getenv("START"))
local seconds = tonumber(os.getenv("SECONDS_TOTAL"))
local work = flow.task("work", function() flow.sleep(0.05) end)
return flow.define("shared", {
  schedule = flow.interval { seconds = 0.2, start = start, ["until"] = start + seconds },
}, function() work() end)
'''
TEST = "serve_two.py"


class Server:
    def __init__(self, flowlua, cwd, env):
        self.proc = subprocess.Popen([flowlua, "shared.lua"], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.cv = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # the end
            self.cv.notify_all()

    def wait_line(self, pattern, after=0):
        """The index of the first line from `after` on matching pattern."""
        with self.cv:
            i = after
            while True:
                while i < len(self.lines):
                    if self.lines[i] is None:
                        pgtest.fail(TEST, "a server ended while waited for:\n"
                                    + "".join(l for l in self.lines if l)[-3000:])
                    if re.search(pattern, self.lines[i]):
                        return i
                    i += 1
                self.cv.wait()

    def log(self):
        with self.cv:
            return "".join(l for l in self.lines if l)


def first_due(log):
    m = re.search(r"next run at (\S+)", log)
    return None if not m else round(datetime.datetime.fromisoformat(
        m.group(1).replace("Z", "+00:00")).timestamp(), 3)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    seconds = float(os.environ.get("SERVE_TWO_SECONDS", "20"))
    pgtest.reset()
    with tempfile.TemporaryDirectory(prefix="flowlua-pg-") as cwd:
        with open(os.path.join(cwd, "shared.lua"), "w") as f:
            f.write(FLOW)
        start = round(time.time() + 1.0, 1)
        env = pgtest.env(START=repr(start), SECONDS_TOTAL=seconds,
                         FLOWLUA_PG_LEASE=1)
        servers = [Server(flowlua, cwd, env) for _ in range(2)]
        # Half-way through the schedule (by the fire times claimed, not by
        # the clock), the first server is killed while one of its runs goes.
        half_ms = round((start + seconds / 2) * 1000)

        def claimed_to():
            if pgtest.sql("SELECT to_regclass('flowlua.fire') IS NOT NULL")[0][0] != "t":
                return 0
            return int(pgtest.sql("SELECT coalesce(max(scheduled_ms), 0)"
                                  " FROM flowlua.fire")[0][0])
        pgtest.wait_for("the half-way fire time claimed",
                        lambda: claimed_to() >= half_ms, limit=seconds + 120, test=TEST)
        victim = servers[0]
        mark = len(victim.lines)
        victim.wait_line(r"work: Running", mark)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        survivor = servers[1]
        try:
            survivor.proc.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            survivor.proc.kill()
            pgtest.fail(TEST, "the surviving server did not stop after its schedule")
        survivor.reader.join()
        if survivor.proc.returncode != 0:
            pgtest.fail(TEST, f"the surviving server exited {survivor.proc.returncode}:\n"
                        + survivor.log()[-3000:])
        # The killed server's run: Crashed once its lease lapsed.
        pgtest.wait_for("no run Running", lambda: all(
            r["state"] != "Running" for r in pgtest.runs_json(flowlua, cwd)),
            test=TEST)
        rows = pgtest.sql("SELECT round((scheduled_at * 1000)::numeric), state,"
                          " owner_pid FROM flowlua.flow_run WHERE flow = 'shared'")
        fires = [int(r[0]) for r in rows]
        dupes = sorted({t for t in fires if fires.count(t) > 1})
        if dupes:
            pgtest.fail(TEST, f"fire times run twice: {dupes}")
        dues = [first_due(s.log()) for s in servers]
        if None in dues:
            pgtest.fail(TEST, f"a server never waited for a fire time: {dues}")
        first = round(min(dues) * 1000)
        expected = [round(start * 1000 + 200 * k) for k in range(int(seconds / 0.2) + 1)]
        # A fire time a loaded machine could not serve in time is recorded
        # (missed, skipped: an event names the first and last it stands
        # for), never silently lost.
        events = [(int(r[0]), int(r[1] or r[0])) for r in pgtest.sql(
            "SELECT round((scheduled_at * 1000)::numeric),"
            " round((coalesce(last_at, scheduled_at) * 1000)::numeric)"
            " FROM flowlua.fire_event WHERE flow = 'shared'")]
        missing = [t for t in expected if t >= first and t not in fires
                   and not any(a <= t <= b for a, b in events)]
        if missing:
            pgtest.fail(TEST, f"fire times neither run nor recorded: {missing}")
        claimed = {int(r[0]) for r in pgtest.sql(
            "SELECT scheduled_ms FROM flowlua.fire WHERE flow = 'shared'")}
        unrun = sorted(claimed - set(fires))
        if unrun:
            pgtest.fail(TEST, f"fire times claimed and never run: {unrun}")
        crashed = [r for r in rows if r[1] == "Crashed"]
        others = [r for r in rows if r[1] not in ("Success", "Crashed")]
        if len(crashed) != 1 or crashed[0][2] != str(victim.proc.pid) or others:
            pgtest.fail(TEST, f"one Crashed run of the killed server expected: "
                        f"crashed {crashed}, others {others}")
        after = [r for r in rows if int(r[0]) > int(crashed[0][0])]
        if not after or any(r[2] != str(survivor.proc.pid) for r in after):
            pgtest.fail(TEST, "the survivor did not take every fire time after the kill")
        by_pid = {p: sum(1 for r in rows if r[2] == str(p))
                  for p in (victim.proc.pid, survivor.proc.pid)}
        print(f"{TEST}: {len(fires)} fire times, each run once (by pid {by_pid}); "
              f"{len(after)} after the kill")


if __name__ == "__main__":
    main()
