#!/usr/bin/env python3
"""A serving process whose state database another process keeps locked
for ten fire times: the serving loop must not wait on the lock past its
next fire time, and no fire time may pass unexplained.

    serve_lock.py FLOWLUA

flowlua serves a flow every 0.2 s (--max-runs 14). Once it has finished two
runs (read from its log), this script takes the database's write lock
(python sqlite3: BEGIN IMMEDIATE) and holds it until the server has
reported HOLD_FIRES fire times after that (an event read from its log,
not a clock window), then releases it. While the lock is held:
  - `flowlua runs` and `show last` work (reading takes no write lock);
  - every fire time is reported as it comes: missed because it could not
    be claimed (the claim needs the database), with the measured wait
    for the state database as the cause, logged no later than LATE_BOUND
    seconds after the fire time (the claim waits for the lock at most
    until the next fire time; a loop stuck on the lock would report it
    only once the busy timeout, 5 s, had passed);
  - no fire time between the first and the last passes unreported.
Then the server must exit 0 after its 14 runs, never say "the clock
jumped" or "suspended", and the history must hold every run (Success) and,
in fire_event, every fire time reported missed, with its cause.
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
HOLD_FIRES = 10
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

    def text(self):
        return "".join(l for l in self.lines if l is not None)


def fire_time(line):
    m = re.search(r"next run at (\S+)", line)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp()


def logged_at(line):
    """When the server logged line (its own timestamp, local time)."""
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()


CLAIM_MISS = re.compile(r"fire time (\S+) missed: the loop's thread waited \d+\.\d s for "
                        r"the state database \.flowlua/state\.db \(another process held a "
                        r"lock on it\)")
RANGE_MISS = re.compile(r"missed (\d+) fire time\(s\) from (\S+): (.*); running once")


def reported(lines):
    """The fire times reported missed in lines: {ms: line}."""
    out = {}
    for line in lines:
        m = CLAIM_MISS.search(line)
        if m:
            out[round(datetime.datetime.fromisoformat(m.group(1)).timestamp() * 1000)] = line
            continue
        m = RANGE_MISS.search(line)
        if m:
            first = datetime.datetime.fromisoformat(m.group(2)).timestamp()
            for k in range(int(m.group(1))):
                out[round((first + k * PERIOD) * 1000)] = line
    return out


def main():
    flowlua = os.path.abspath(sys.argv[1])
    folder = tempfile.mkdtemp(prefix="flowlua-serve-lock-")
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    server = subprocess.Popen([flowlua, "flow.lua", "--max-runs", str(RUNS)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = Log(server.stderr)
    log.wait_for(r"flow 'tick' run \S+: Success", count=2)
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"), isolation_level=None,
                         timeout=60)
    db.execute("BEGIN IMMEDIATE")
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
    # Held until the server has reported HOLD_FIRES fire times since.
    log.wait_until(lambda lines: len(reported(lines[locked_at:])) >= HOLD_FIRES,
                   f"{HOLD_FIRES} fire times reported while the lock is held", limit=60)
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
    if re.search(r"clock jumped|suspended", text):
        fail("the server blamed the clock:\n" + text)
    if re.search(r"could not be claimed in the run history|ERROR", text):
        fail("an error while the lock was held:\n" + text)
    # While the lock was held: each fire time reported on time, with the
    # lock as its cause, and none between the first and the last unseen.
    missed = reported(during)
    for ms, line in sorted(missed.items()):
        if "state database" not in line:
            fail(f"a fire time missed while the lock was held blames something else:\n{line}")
        late = logged_at(line) - ms / 1000
        if CLAIM_MISS.search(line) and late > LATE_BOUND:
            fail(f"fire time reported {late:.2f} s after it came (the loop waited on the "
                 f"lock):\n{line}")
    first, last = min(missed), max(missed)
    expected = round((last - first) / (PERIOD * 1000)) + 1
    if len(missed) != expected:
        fail(f"{expected - len(missed)} fire time(s) between the first and the last missed "
             f"passed unreported:\n" + "".join(during))
    if any(RANGE_MISS.search(l) and "state database" not in l for l in log.lines[locked_at:] if l):
        fail("a range of missed fire times is not explained by the lock:\n" + text)
    # After the release: the history holds every run and every fire event.
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"))
    runs = db.execute("SELECT count(*), sum(state = 'Success') FROM flow_run").fetchone()
    events = db.execute("SELECT coalesce(sum(count), 0), count(*),"
                        " sum(detail LIKE '%state database%')"
                        " FROM fire_event WHERE outcome = 'missed'").fetchone()
    db.close()
    if runs != (RUNS, RUNS):
        fail(f"the history holds {runs[0]} runs, {runs[1]} Success; want {RUNS}:\n{text}")
    all_missed = reported([l for l in log.lines if l])
    if events[0] != len(all_missed) or events[2] != events[1]:
        fail(f"fire_event holds {events[0]} missed fire times ({events[2]} of {events[1]} rows "
             f"naming the state database); the log reported {len(all_missed)}")
    worst = max(logged_at(l) - ms / 1000 for ms, l in missed.items())
    print(f"serve_lock.py: ok ({len(missed)} fire times missed while the lock was held, "
          f"each reported on time (at most {worst:.2f} s after it came), all recorded)")


if __name__ == "__main__":
    main()
