#!/usr/bin/env python3
"""Two resumes of one Failed run at once: the first claims it, the second is
refused; a resume that crashes leaves the run resumable (issue 16, item 5).

    concurrent_resume.py FLOWLUA

With tests/system/fault/resume_once.lua, in a fresh folder per case:

  one claim   a run fails ('work' is not fixed yet). The test fixes it and
              starts resume A, whose 'work' blocks on a FIFO the test holds
              (A has recorded its run before any task starts). While A is
              blocked: a resume of the same run id exits 2 with "cannot
              resume: run ID is already being resumed by pid A on this
              host", and `--resume last` (A's own run, Running) exits 2.
              The test then releases A, which succeeds. 'work' ran once in
              the resumes (ran.txt counts every attempt), 'steady' never
              again, and the history holds the failed run and A's only.
  a crashed   resume A blocks the same way and is killed (SIGKILL). Its run
  resume      is found Crashed by the next process, and `--resume last`
              (A's run) then succeeds: a resume that dies does not keep its
              claim.

Every wait is for an event (a file appearing, a process ending), with only
a generous hang guard. Prints "N passed, N failed"; exits 1 on a failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "resume_once.lua")
HANG_GUARD = 120  # seconds: not a deadline, an end to a hang


class Failure(Exception):
    pass


def expect(cond, what, got=None):
    if not cond:
        raise Failure(what if got is None else f"{what}; got {got!r}")


def flowlua(binary, args, cwd, code):
    done = subprocess.run([binary] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=HANG_GUARD)
    expect(done.returncode == code,
           f"flowlua {' '.join(args)}: expected exit {code}, got "
           f"{done.returncode}; stderr:\n{done.stderr[-3000:]}")
    return done


def lines(work, name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return len(f.read().splitlines())


def touch(work, name):
    open(os.path.join(work, name), "w").close()


def failed_run(binary, work):
    """Records a Failed run; returns its id."""
    shutil.copy(FLOW, os.path.join(work, "flow.lua"))
    flowlua(binary, ["flow.lua"], work, 1)
    run = json.loads(flowlua(binary, ["show", "last", "--json"], work, 0).stdout)
    expect(run["state"] == "Failed", "the first run failed", run["state"])
    return run["id"]


def start_held_resume(binary, work, ref):
    """Starts a resume whose 'work' blocks on gate.fifo; returns it once it
    is blocked (its run recorded Running)."""
    touch(work, "fixed")
    touch(work, "hold")
    os.mkfifo(os.path.join(work, "gate.fifo"))
    proc = subprocess.Popen([binary, "flow.lua", "--resume", ref], cwd=work,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    guard = time.monotonic() + HANG_GUARD
    while not os.path.exists(os.path.join(work, "waiting")):
        if proc.poll() is not None:
            raise Failure(f"resume A ended (exit {proc.returncode}) before its "
                          f"task blocked: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > guard:
            proc.kill()
            raise Failure("resume A never reached its blocking task")
        time.sleep(0.01)
    return proc


def release(work):
    """Opens the FIFO for writing (which waits for A's reader) and closes
    it: A reads end-of-file and its task returns."""
    with open(os.path.join(work, "gate.fifo"), "w") as gate:
        gate.write("go\n")


def case_one_claim(binary, work):
    first = failed_run(binary, work)
    expect(lines(work, "ran.txt") == 1, "work ran once in the first run")
    proc = start_held_resume(binary, work, first)
    try:
        second = flowlua(binary, ["flow.lua", "--resume", first], work, 2)
        want = (f"run {first} is already being resumed by pid {proc.pid} on "
                f"this host")
        expect("flowlua: cannot resume: " in second.stderr
               and want in second.stderr, "the second resume names the claim",
               second.stderr[-2000:])
        expect("resuming run" not in second.stderr,
               "the second resume does not say it resumes",
               second.stderr[-2000:])
        expect("work: Running" not in second.stderr,
               "the second resume ran no task", second.stderr[-2000:])
        by_last = flowlua(binary, ["flow.lua", "--resume", "last"], work, 2)
        expect(f"is still running (pid {proc.pid} on host" in by_last.stderr,
               "--resume last (the running resume) is refused",
               by_last.stderr[-2000:])
    finally:
        if proc.poll() is None:
            release(work)
        out, err = proc.communicate(timeout=HANG_GUARD)
    expect(proc.returncode == 0, "resume A succeeds once released",
           (proc.returncode, err[-2000:]))
    expect(lines(work, "ran.txt") == 2,
           "work ran exactly once across both resumes", lines(work, "ran.txt"))
    expect(lines(work, "steady.txt") == 1, "steady kept its result",
           lines(work, "steady.txt"))
    runs = json.loads(flowlua(binary, ["runs", "--json"], work, 0).stdout)
    states = sorted(r["state"] for r in runs)
    expect(states == ["Failed", "Success"],
           "the history holds the failed run and one resume", states)


def case_crashed_resume(binary, work):
    failed_run(binary, work)
    proc = start_held_resume(binary, work, "last")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=HANG_GUARD)
    os.remove(os.path.join(work, "hold"))
    run = json.loads(flowlua(binary, ["show", "last", "--json"], work, 0).stdout)
    expect(run["state"] == "Crashed", "the killed resume is found Crashed",
           run["state"])
    done = flowlua(binary, ["flow.lua", "--resume", "last"], work, 0)
    expect("resuming run" in done.stderr, "the crashed resume is resumed",
           done.stderr[-2000:])
    expect(lines(work, "ran.txt") == 3,
           "work ran in the first run, the killed resume and the last one",
           lines(work, "ran.txt"))
    expect(lines(work, "steady.txt") == 1, "steady kept its result",
           lines(work, "steady.txt"))


CASES = [
    ("one claim: the second resume is refused", case_one_claim),
    ("a crashed resume leaves the run resumable", case_crashed_resume),
]


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: concurrent_resume.py FLOWLUA")
    binary = os.path.abspath(sys.argv[1])
    passed = failed = 0
    for name, case in CASES:
        with tempfile.TemporaryDirectory(prefix="flowlua-resume-") as work:
            try:
                case(binary, work)
            except (Failure, subprocess.TimeoutExpired, OSError, KeyError,
                    ValueError) as e:
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
                continue
        passed += 1
        print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
