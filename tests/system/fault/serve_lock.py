#!/usr/bin/env python3
"""A serving process whose state database another process keeps locked:
the serving loop must go on starting its runs on time, and nothing it did
while the lock was held may be lost, even when it is killed then.

    serve_lock.py FLOWLUA

1. flowlua serves a flow every 0.2 s (--max-runs 14). Once it has finished
   two runs (read from its log), this script takes the database's write
   lock (python sqlite3: BEGIN IMMEDIATE) and holds it until the server
   has finished HOLD_RUNS more runs (an event read from its log, not a
   clock window), then releases it. While the lock is held:
     - `flowlua runs` and `show last` work (reading takes no write lock);
     - every fire time starts its run: none is missed or skipped, and each
       run starts no later than LATE_BOUND after its fire time (a run's
       start, its fire claim, its tasks and its end wait for no lock: they
       are journalled and written by the writer thread later).
   Then the server must exit 0 after its 14 runs with no error, and the
   history must hold every run (Success, with its task run), every fire
   time claimed once, and no missed fire time.
2. The same server, killed (SIGKILL) while the lock is held after it
   finished HOLD_RUNS runs: once the lock is released, the next process to
   open the state file replays the dead server's journal, and the history
   holds every run the server started (those it logged Success as
   Success), and the claim of every fire time it ran.
Exits 1 with what went wrong.
"""
import datetime
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

FLOW = """local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("tick", { schedule = flow.interval { seconds = 0.2 } },
  function() t() end)
"""
RUNS = 14
PERIOD = 0.2
HOLD_RUNS = 8
LATE_BOUND = 1.0  # s; only a loop waiting on the lock is later than this


def fail(msg):
    print(f"serve_lock.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class Log:
    """The server's stderr, read by a thread, with a way to wait for a
    line matching a pattern."""

    def __init__(self, stream):
        self.lines, self.cond = [], threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of the stream
            self.cond.notify_all()

    def wait_for(self, pattern, count=1, limit=120):
        """The count-th line matching pattern; fails the test on end of
        stream, or after limit seconds (a hang guard, not a timing check)."""
        deadline = time.monotonic() + limit
        with self.cond:
            while True:
                found = [l for l in self.lines if l is not None and re.search(pattern, l)]
                if len(found) >= count:
                    return found[count - 1]
                if None in self.lines:
                    fail(f"the server ended before logging {pattern!r}:\n" + self.text())
                if not self.cond.wait(timeout=max(0, deadline - time.monotonic())):
                    fail(f"no {pattern!r} in {limit} s:\n" + self.text())

    def wait_until(self, predicate, what, limit=120):
        """Waits until predicate(lines) holds; a hang guard, as above."""
        deadline = time.monotonic() + limit
        with self.cond:
            while not predicate([l for l in self.lines if l is not None]):
                if None in self.lines:
                    fail(f"the server ended before {what}:\n" + self.text())
                if not self.cond.wait(timeout=max(0, deadline - time.monotonic())):
                    fail(f"not {what} in {limit} s:\n" + self.text())

    def wait_end(self, limit=120):
        """Until the stream has ended (a hang guard, as above)."""
        deadline = time.monotonic() + limit
        with self.cond:
            while None not in self.lines:
                if not self.cond.wait(timeout=max(0, deadline - time.monotonic())):
                    fail(f"the server's log did not end in {limit} s")

    def text(self):
        return "".join(l for l in self.lines if l is not None)


def fire_time(line):
    m = re.search(r"next run at (\S+)", line)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp()


def logged_at(line):
    """When the server logged line (its own timestamp, local time)."""
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()


RUN_START = re.compile(r"flow 'tick' run (\S+): Running")
RUN_DONE = re.compile(r"flow 'tick' run (\S+): Success")
NEXT_AT = re.compile(r"flow 'tick': next run at (\S+)")


def started_on_time(lines):
    """(run id, how late its start was) for each run started in lines, its
    fire time taken from the "next run at" line before it."""
    out, fire = [], None
    for line in lines:
        m = NEXT_AT.search(line)
        if m:
            fire = datetime.datetime.fromisoformat(m.group(1)).timestamp()
            continue
        m = RUN_START.search(line)
        if m and fire is not None:
            out.append((m.group(1), logged_at(line) - fire))
            fire = None
    return out


def start_server(flowlua, folder, runs):
    server = subprocess.Popen([flowlua, "flow.lua", "--max-runs", str(runs)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return server, Log(server.stderr)


def new_folder(tag):
    folder = tempfile.mkdtemp(prefix=f"flowlua-serve-lock-{tag}-")
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    return folder


def take_lock(folder):
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"), isolation_level=None,
                         timeout=60)
    db.execute("BEGIN IMMEDIATE")
    return db


def count_matching(pattern, lines):
    return sum(1 for l in lines if l is not None and pattern.search(l))


def held_while_serving(flowlua):
    folder = new_folder("serve")
    server, log = start_server(flowlua, folder, RUNS)
    log.wait_for(RUN_DONE.pattern, count=2)
    db = take_lock(folder)
    with log.cond:
        locked_at = len(log.lines)
    # Reading the history takes no write lock: it works while another
    # process holds one, and so never makes a writer (the server) wait.
    for args in (["runs"], ["show", "last"]):
        done = subprocess.run([flowlua] + args, cwd=folder, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            server.kill()
            fail(f"flowlua {' '.join(args)} while the lock is held: exit {done.returncode}\n"
                 f"{done.stderr}")
    log.wait_until(lambda lines: count_matching(RUN_DONE, lines[locked_at:]) >= HOLD_RUNS,
                   f"{HOLD_RUNS} runs finished while the lock is held", limit=60)
    with log.cond:
        during = [l for l in log.lines[locked_at:] if l is not None]
    db.execute("COMMIT")
    db.close()
    try:
        code = server.wait(timeout=300)
    except subprocess.TimeoutExpired:
        server.kill()
        fail("the server did not finish its runs:\n" + log.text())
    log.wait_for(r"served \d+ run")
    text = log.text()
    if code != 0:
        fail(f"the server exited {code}:\n{text}")
    if re.search(r"missed \d+ fire time|fire time \S+ (missed|skipped)|clock jumped|"
                 r"suspended|ERROR|WARN", text):
        fail("a fire time passed, or an error, while the lock was held:\n" + text)
    late = started_on_time(during)
    if len(late) < HOLD_RUNS - 1:
        fail(f"only {len(late)} runs started while the lock was held:\n" + "".join(during))
    for run, by in late:
        if by > LATE_BOUND:
            fail(f"run {run} started {by:.2f} s after its fire time while the lock was "
                 f"held (the loop waited on it):\n" + "".join(during))
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"))
    runs = db.execute("SELECT count(*), sum(state = 'Success') FROM flow_run").fetchone()
    tasks = db.execute("SELECT count(*) FROM task_run WHERE state = 'Success'").fetchone()[0]
    fires = db.execute("SELECT count(*), count(DISTINCT scheduled_ms) FROM fire").fetchone()
    missed = db.execute("SELECT count(*) FROM fire_event").fetchone()[0]
    db.close()
    if runs != (RUNS, RUNS) or tasks != RUNS:
        fail(f"the history holds {runs[0]} runs, {runs[1]} Success, {tasks} task runs "
             f"Success; want {RUNS}:\n{text}")
    if fires != (RUNS, RUNS) or missed:
        fail(f"the history holds {fires[0]} fire claims ({fires[1]} distinct) and {missed} "
             f"fire events; want {RUNS} claims and none")
    worst = max(by for _, by in late)
    print(f"serve_lock.py: ok ({len(late)} runs started while the lock was held, at most "
          f"{worst:.3f} s after their fire time; all recorded)")


def killed_while_locked(flowlua):
    folder = new_folder("kill")
    server, log = start_server(flowlua, folder, 1000)
    log.wait_for(RUN_DONE.pattern, count=2)
    db = take_lock(folder)
    with log.cond:
        locked_at = len(log.lines)
    log.wait_until(lambda lines: count_matching(RUN_DONE, lines[locked_at:]) >= HOLD_RUNS,
                   f"{HOLD_RUNS} runs finished while the lock is held", limit=60)
    server.kill()
    server.wait(timeout=60)
    db.execute("COMMIT")
    db.close()
    log.wait_end()
    with log.cond:
        lines = [l for l in log.lines if l is not None]
    started = {m.group(1) for m in map(RUN_START.search, lines) if m}
    succeeded = {m.group(1) for m in map(RUN_DONE.search, lines) if m}
    # The next process to open the file read-write replays the journal.
    once = os.path.join(folder, "once.lua")
    with open(once, "w") as f:
        f.write('local flow = require "flowlua"\n'
                'return flow.define("once", function() end)\n')
    done = subprocess.run([flowlua, "once.lua"], cwd=folder, capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        fail(f"a run after the kill: exit {done.returncode}\n{done.stderr}")
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"))
    rows = dict(db.execute("SELECT run_id, state FROM flow_run WHERE flow = 'tick'"))
    tasks = dict(db.execute("SELECT r.run_id, t.state FROM task_run t JOIN flow_run r"
                            " ON r.id = t.run WHERE r.flow = 'tick'"))
    fires = db.execute("SELECT count(*) FROM fire WHERE flow = 'tick'").fetchone()[0]
    db.close()
    lost = started - set(rows)
    if lost:
        fail(f"{len(lost)} run(s) the killed server started are not in the history: "
             f"{sorted(lost)}\n{done.stderr}")
    wrong = [r for r in succeeded if rows.get(r) != "Success" or tasks.get(r) != "Success"]
    if wrong:
        fail(f"runs logged Success are not Success in the history: "
             f"{[(r, rows.get(r), tasks.get(r)) for r in wrong]}")
    if fires != len(started):
        fail(f"the history holds {fires} fire claims; the server started {len(started)} runs")
    print(f"serve_lock.py: ok (killed while the lock was held: {len(started)} runs started, "
          f"all in the history after the replay, {len(succeeded)} Success)")


def main():
    flowlua = os.path.abspath(sys.argv[1])
    held_while_serving(flowlua)
    killed_while_locked(flowlua)


if __name__ == "__main__":
    main()
