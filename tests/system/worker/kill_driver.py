#!/usr/bin/env python3
"""SIGTERM and SIGKILL of the driver in the middle of a map over worker
tasks: no worker outlives it, and after SIGKILL --resume finishes the run
without running again an element whose Success was recorded.

    kill_driver.py FLOWLUA

The flow maps a worker task over ELEMENTS elements; each writes its
worker's pid to pids/PID, works for a moment, and appends its index to
ran.log. Once KILL_AFTER elements are logged (an event read from the file,
not a clock window), the driver gets SIGTERM: it must exit 130 with the
run Cancelled, and every worker pid seen must be gone within 5 s. In a
second folder the driver is killed with SIGKILL at the same point. Then:
  - every worker pid seen is gone (or a zombie) within 5 s, polled;
  - `flowlua show last --json` (which replays the driver's journal) lists
    the elements recorded Success;
  - `flowlua flow.lua --resume last` exits 0, and none of those elements
    appears in ran.log again; every element ran at least once in all.
Exits 1 with what went wrong.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ELEMENTS = 40
KILL_AFTER = 6
FLOW = """local flow = require "flowlua"
local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local n = f:read("n")
  f:close()
  return n
end
local work = flow.task("work", { worker = true }, function(i)
  assert(io.open("pids/" .. pid(), "w")):close()
  local x = 0
  for k = 1, 2e6 do x = x + k % 7 end
  local log = assert(io.open("ran.log", "a"))
  log:write(i, "\\n")
  log:close()
  return i
end)
return flow.define("killed", function()
  local xs = {}
  for i = 1, ELEMENTS do xs[i] = i end
  work:map(xs)
end)
""".replace("ELEMENTS", str(ELEMENTS))


def fail(msg):
    print(f"kill_driver.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def ran(folder):
    path = os.path.join(folder, "ran.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(line) for line in f if line.strip()]


def alive(pid):
    """Whether pid is a process that has not ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def start(flowlua, tag):
    """A driver in a fresh folder, once KILL_AFTER elements have run (an
    event read from the file, not a clock window)."""
    folder = tempfile.mkdtemp(prefix=f"flowlua-{tag}-driver-")
    os.mkdir(os.path.join(folder, "pids"))
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    driver = subprocess.Popen([flowlua, "flow.lua", "--workers", "2"], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # a hang guard, not a timing check
    while len(ran(folder)) < KILL_AFTER:
        if driver.poll() is not None:
            fail(f"the driver ended ({driver.returncode}) before {KILL_AFTER} elements ran:\n"
                 + driver.stderr.read().decode(errors="replace"))
        if time.monotonic() > deadline:
            driver.kill()
            fail("the elements did not run")
        time.sleep(0.01)
    return folder, driver


def workers_gone(folder, what):
    """Every worker pid the elements recorded has ended within 5 s."""
    pids = [int(p) for p in os.listdir(os.path.join(folder, "pids"))]
    if not pids:
        fail("no worker pid was recorded")
    until = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < until:
        time.sleep(0.01)
    left = [p for p in pids if alive(p)]
    if left:
        fail(f"worker(s) {left} outlived the driver by 5 s after {what}")
    return pids


def terminated(flowlua):
    """SIGTERM cancels the run: the driver exits 130 and stops its workers."""
    folder, driver = start(flowlua, "term")
    driver.send_signal(signal.SIGTERM)
    try:
        _, err = driver.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        driver.kill()
        fail("the driver did not end after SIGTERM")
    if driver.returncode != 130 or b"Cancelled" not in err:
        fail(f"SIGTERM: exit {driver.returncode}, expected 130 and the run Cancelled:\n"
             + err.decode(errors="replace")[-3000:])
    pids = workers_gone(folder, "SIGTERM")
    print(f"kill_driver.py: ok (SIGTERM: exit 130, {len(pids)} worker(s) stopped with it)")


def main():
    flowlua = os.path.abspath(sys.argv[1])
    terminated(flowlua)
    folder, driver = start(flowlua, "kill")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    pids = workers_gone(folder, "SIGKILL")
    done = subprocess.run([flowlua, "show", "last", "--json"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        fail(f"show last after the kill: exit {done.returncode}\n{done.stderr}")
    run = json.loads(done.stdout)
    recorded = {t["key"] for t in run.get("tasks", []) if t.get("state") == "Success"}
    kept = {int(k[len("work["):-1]) for k in recorded if k.startswith("work[")}
    before = len(ran(folder))
    done = subprocess.run([flowlua, "flow.lua", "--resume", "last", "--workers", "2"],
                          cwd=folder, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        fail(f"--resume: exit {done.returncode}\n{done.stderr}")
    again = ran(folder)[before:]
    rerun = sorted(kept & set(again))
    if rerun:
        fail(f"elements recorded Success before the kill ran again: {rerun}")
    missing = sorted(set(range(1, ELEMENTS + 1)) - set(ran(folder)))
    if missing:
        fail(f"elements never ran: {missing}")
    print(f"kill_driver.py: ok ({len(pids)} worker(s) gone after the kill; {len(kept)} "
          f"elements kept by the resume, {len(again)} run by it)")


if __name__ == "__main__":
    main()
