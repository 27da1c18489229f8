#!/usr/bin/env python3
"""A serving process whose state database another process keeps locked:
no fire time may pass unexplained, and none may be blamed on the clock.

    serve_lock.py FLOWLUA

flowlua serves a flow every 0.2 s (--max-runs 14). Once it has finished two
runs (read from its log), this script takes the database's write lock
(python sqlite3: BEGIN IMMEDIATE) and holds it until three fire times have
passed (the fire times are read from the server's own "next run at"
lines), then releases it. The server must then:
  - exit 0 after its 14 runs;
  - meanwhile `flowlua runs` and `show last`, run while the lock is held,
    work: reading takes no write lock (so readers never make a server
    wait either);
  - never say "the clock jumped" or "suspended" (neither happened);
  - either miss no fire time at all, or say why in the first message about
    missed fire times after the lock was taken: it waited for the state
    database (its measured stall), and record that message in fire_event.
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
HOLD_FIRES = 3


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

    def text(self):
        return "".join(l for l in self.lines if l is not None)


def fire_time(line):
    m = re.search(r"next run at (\S+)", line)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp()


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
    # Held until HOLD_FIRES fire times have passed: the last "next run at"
    # line names the next one; wait until the clock is past HOLD_FIRES of
    # them (the server cannot log more while it waits for the lock).
    with log.cond:
        due = fire_time([l for l in log.lines if l and "next run at" in l][-1])
    while time.time() < due + 0.2 * HOLD_FIRES:
        time.sleep(0.05)
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
    missed = [l for l in log.lines[locked_at:] if l and "missed" in l and "fire time" in l]
    if missed and "waited" not in missed[0]:
        fail(f"the first missed fire times are not explained by the lock:\n{missed[0]}")
    if missed and not re.search(r"the loop's thread waited \d+\.\d s for the state database "
                                r"\.flowlua/state\.db \(another process held a lock on it\)",
                                missed[0]):
        fail(f"the cause is not named as expected:\n{missed[0]}")
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"))
    details = [r[0] for r in db.execute("SELECT detail FROM fire_event WHERE outcome = 'missed'")]
    db.close()
    if missed and not any("state database" in d for d in details):
        fail(f"fire_event does not record the cause: {details}")
    print(f"serve_lock.py: ok ({len(missed)} message(s) about missed fire times, "
          f"{'explained' if missed else 'none'})")
    for line in missed:
        print("  " + line.rstrip())


if __name__ == "__main__":
    main()
