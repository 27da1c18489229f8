#!/usr/bin/env python3
"""Signals and a closed log pipe: flowlua ends as the contract says, its
children do not outlive it, and the history records what really happened.

    signals.py FLOWLUA [CASE...]

Cases (all by default):
  sighup   SIGHUP while a task's flow.shell child sleeps and a CSV writer
           is open: flowlua cancels the run like SIGTERM (exit 130), the
           child is gone, no temporary CSV stays, the run is recorded
           Cancelled, not Crashed.
  sigkill  SIGKILL of flowlua while a flow.shell child sleeps: the child
           dies too (it asked the kernel for SIGKILL at its parent's death).
  sigpipe  stderr is a pipe whose reader goes away after the first line,
           while a task logs far more than a pipe holds: flowlua neither
           dies of SIGPIPE nor stalls; the run ends Success, exit 0.

Every wait is for an event (a file with the child's pid, a process gone, a
process exit), bounded only by a generous hang guard.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HANG_GUARD = 60.0  # seconds; only a hang ever gets near it

SLEEPER_FLOW = """
local flow = require "flowlua"
local sleeper = flow.task("sleeper", function()
  -- A CSV being written (a temporary file until it is closed) ...
  local w = flow.csv.writer("out.csv", { header = { "n" } })
  w:write({ 1 })
  -- ... while a child says its pid, then becomes `sleep` (same pid).
  return flow.shell({ "sh", "-c", "echo $$ > child.pid.tmp && mv child.pid.tmp child.pid && exec sleep 300" })
end)
return flow.define("sleeper", {}, function() sleeper() end)
"""

TALKER_FLOW = """
local flow = require "flowlua"
local talk = flow.task("talk", function()
  for i = 1, 5000 do flow.log.info("line " .. i .. " of a task that talks a lot") end
  return 5000
end)
return flow.define("talker", {}, function() talk() end)
"""


def wait_for(what, predicate, guard=HANG_GUARD):
    deadline = time.monotonic() + guard
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting (hang guard %g s) for %s" % (guard, what))
        time.sleep(0.02)


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def write_flow(workdir, text):
    path = os.path.join(workdir, "flow.lua")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_sleeper(flowlua, workdir):
    script = write_flow(workdir, SLEEPER_FLOW)
    proc = subprocess.Popen([flowlua, script, "--no-status"], cwd=workdir,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    pid_file = os.path.join(workdir, "child.pid")
    try:
        wait_for("the child's pid file", lambda: os.path.exists(pid_file))
    except AssertionError:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("no child started; flowlua said: %s" % err.decode(errors="replace"))
    with open(pid_file) as f:
        child = int(f.read())
    wait_for("the child to exec sleep", lambda: open("/proc/%d/cmdline" % child, "rb")
             .read().startswith(b"sleep"))
    return proc, child


def run_state(flowlua, workdir):
    shown = subprocess.run([flowlua, "show", "last", "--json"], cwd=workdir,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG_GUARD)
    if shown.returncode != 0:
        raise AssertionError("show last --json exited %d: %s" % (
            shown.returncode, shown.stderr.decode(errors="replace")))
    return json.loads(shown.stdout)["state"]


def case_sighup(flowlua, workdir):
    proc, child = start_sleeper(flowlua, workdir)
    try:
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=HANG_GUARD)
        err = err.decode(errors="replace")
        assert proc.returncode == 130, "exit %d, want 130 (as for SIGTERM); stderr:\n%s" % (
            proc.returncode, err)
        assert "sleeper: Cancelled" in err, "the task is not reported Cancelled:\n" + err
        wait_for("the child %d to be gone" % child, lambda: not alive(child))
        state = run_state(flowlua, workdir)
        assert state == "Cancelled", "the run is recorded %s, want Cancelled" % state
        left = sorted(f for f in os.listdir(workdir) if "out.csv" in f)
        assert not left, "the CSV being written left %s behind" % left
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def case_sigkill(flowlua, workdir):
    proc, child = start_sleeper(flowlua, workdir)
    try:
        proc.kill()
        proc.communicate(timeout=HANG_GUARD)
        # The child is in its own process group, so nothing but its death
        # signal can end it: wait for that, not for a fixed time.
        wait_for("the child %d to die with flowlua" % child, lambda: not alive(child),
                 guard=30.0)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def case_sigpipe(flowlua, workdir):
    script = write_flow(workdir, TALKER_FLOW)
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([flowlua, script, "--no-status"], cwd=workdir,
                            stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end)
    os.close(write_end)
    # Like `| head -1`: one line, then the reader is gone while flowlua
    # still has far more than a pipe's 64 KiB to write.
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()
    assert first, "flowlua wrote nothing"
    rc = proc.wait(timeout=HANG_GUARD)
    assert rc == 0, "exit %d, want 0 (%s)" % (
        rc, "killed by SIGPIPE" if rc == -signal.SIGPIPE else "a closed log pipe is no failure")
    state = run_state(flowlua, workdir)
    assert state == "Success", "the run is recorded %s, want Success" % state


CASES = {"sighup": case_sighup, "sigkill": case_sigkill, "sigpipe": case_sigpipe}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    names = sys.argv[2:] or list(CASES)
    failed = 0
    for name in names:
        workdir = tempfile.mkdtemp(prefix="flowlua-signals-")
        try:
            CASES[name](flowlua, workdir)
            print("ok   %s" % name)
            shutil.rmtree(workdir, ignore_errors=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed += 1
            print("FAIL %s: %s (kept %s)" % (name, e, workdir))
    print("%d passed, %d failed" % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
