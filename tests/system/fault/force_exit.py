#!/usr/bin/env python3
"""A task stuck in one C call: a second SIGINT forces the exit, and the run
is recorded Cancelled (issue 16, item 16).

    force_exit.py FLOWLUA

force_exit.lua's task `stuck` runs a string.find that backtracks for
hours: its timeout (1 s) and a cancel cannot reach it. This driver sends
SIGINT once `stuck: Running` is logged, then a second SIGINT once flowlua
says it is cancelling, and waits for the exit (the wait is only a hang
guard). Then:
  - flowlua exited 130 (not killed by the signal) and said it forced the
    exit with the run recorded;
  - `flowlua show last --json`: the run is Cancelled; `before` Success,
    `stuck` and `after` Cancelled, with the forced exit as their error.
Exits 1 after printing every broken rule.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "force_exit.lua")
HANG_GUARD = 120  # seconds: an end to a hang, never a timing expectation


def main():
    flowlua = os.path.abspath(sys.argv[1])
    folder = tempfile.mkdtemp(prefix="force_exit.")
    problems = []
    proc = subprocess.Popen([flowlua, "--no-status", FLOW], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    seen = threading.Condition()

    def read_stderr():
        for line in proc.stderr:
            with seen:
                lines.append(line)
                seen.notify_all()
        with seen:
            lines.append(None)  # end of stderr
            seen.notify_all()

    def wait_line(text):
        deadline = time.monotonic() + HANG_GUARD
        with seen:
            while not any(l is not None and text in l for l in lines):
                if None in lines or time.monotonic() > deadline:
                    raise SystemExit("force_exit: never saw %r; stderr:\n%s"
                                     % (text, "".join(l for l in lines if l)))
                seen.wait(1)

    threading.Thread(target=read_stderr, daemon=True).start()
    wait_line("stuck: Running")
    proc.send_signal(signal.SIGINT)
    wait_line("cancelling the run")
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("force_exit: hang guard: flowlua did not exit after "
                         "the second SIGINT")
    with seen:  # stderr read to its end
        while None not in lines:
            seen.wait(1)
    err = "".join(l for l in lines if l)
    if rc != 130:
        problems.append("exit code %d, not 130" % rc)
    if "forcing the exit: the run is recorded Cancelled" not in err:
        problems.append("no word of the forced exit with the run recorded")

    show = subprocess.run([flowlua, "show", "last", "--json"], cwd=folder,
                          capture_output=True, text=True, timeout=HANG_GUARD)
    if show.returncode != 0:
        problems.append("flowlua show failed: " + show.stderr)
    else:
        run = json.loads(show.stdout)
        if run["state"] != "Cancelled":
            problems.append("the run is %s, not Cancelled" % run["state"])
        states = {t["key"]: t for t in run["tasks"]}
        want = {"before": "Success", "stuck": "Cancelled", "after": "Cancelled"}
        for key, state in want.items():
            got = states.get(key, {}).get("state")
            if got != state:
                problems.append("task %s is %s, not %s" % (key, got, state))
        if "forced to exit" not in (states.get("stuck", {}).get("error") or ""):
            problems.append("stuck's error does not say it was forced: %r"
                            % states.get("stuck", {}).get("error"))
    if problems:
        print("force_exit: %d problem(s); folder kept: %s\nstderr:\n%s"
              % (len(problems), folder, err))
        for p in problems:
            print("  - " + p)
        return 1
    shutil.rmtree(folder)
    print("force_exit: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
