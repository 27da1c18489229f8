#!/usr/bin/env python3
"""The live status of `flowlua script.lua` on a real terminal, and its
absence where it does not belong.

Usage: live_status.py FLOWLUA

flowlua runs tests/system/status/live.lua (tasks that wait for a gate file,
a map of twelve, a task that fails and retries every 2 s, and log lines) in a
detached tmux session of 100x30 on a private tmux server, which is killed
at the end whatever happens. The test reads the screen with
`tmux capture-pane` and never sleeps in the dark: it polls the screen until
what it waits for is there, with generous time limits.

- A terminal: while the run waits the screen shows the status below the
  last log line — the header with the counts, the retry's countdown, the
  running tasks with their elapsed time (mapped ones by name and index),
  "... and K more" — and its clocks move. Then the gate opens and, after
  the run, the whole screen (scrollback included) has the summary, no line
  of the status left, and every log line whole and on its own line, the
  task's numbered log lines each exactly once and in order.
- --no-status, and TERM=dumb, on a terminal: plain log lines, no status.
- Ctrl-C on a terminal: the message goes above the status; exit 130.
- A resume of a failed run on a terminal: its status, and its end.
- Serving a schedule on a terminal: plain log lines, no status.
- A pipe: plain log lines, not one escape sequence.

Prints "N passed, N failed" and exits non-zero when a case failed.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "live.lua")
SERVED = os.path.join(HERE, "served.lua")
WIDTH, HEIGHT = 100, 30
WAIT = 30.0  # seconds for anything the test waits to see

TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
LOG_LINE = re.compile(rf"^{TIMESTAMP} (DEBUG|INFO |WARN |ERROR) \S.*$")
TICK_LINE = re.compile(rf"^{TIMESTAMP} INFO  slow: tick (\d+) of slow "
                       r"\(end of line\)$")
CLOCK = r"(\d+\.\d|\d+m\d\d)s"
HEADER = re.compile(rf"^flow 'live status' {CLOCK}: (.*)$")
RETRY_ROW = re.compile(rf"^  Retrying  flaky +next attempt in {CLOCK} "
                       r"\(attempt (\d+) failed")
SLOW_ROW = re.compile(rf"^  Running   slow +{CLOCK}$")
MAP_ROW = re.compile(rf"^  Running   work\[\d+\] +{CLOCK}$")
MORE_ROW = re.compile(r"^  \.\.\. and (\d+) more$")
STATUS_LINE = re.compile(rf"^flow '[^']*' {CLOCK}: |^  (Running|Retrying)  "
                         r"|^  \.\.\. and \d+ more$")
SUMMARY = re.compile(r"^flow 'live status' Success in [\d.]+ s \(run "
                     r"[0-9a-f-]+\): 15 task runs")

failures = []


def check(ok, what, seen=None):
    if not ok:
        failures.append(what)
        print(f"FAILED: {what}")
        if seen is not None:
            print("  seen:\n" + "\n".join("    | " + l for l in seen))
    return ok


def seconds(clock):
    if "m" in clock:
        m, s = clock.split("m")
        return int(m) * 60 + int(s)
    return float(clock)


class Terminal:
    """A tmux server of our own with one pane running a command."""

    def __init__(self, command, cwd):
        self.socket = f"flowlua-status-{os.getpid()}-{time.monotonic_ns()}"
        self.conf = os.path.join(cwd, "tmux.conf")
        with open(self.conf, "w") as f:
            # The pane stays after flowlua exits, so its last screen can
            # be read; no status bar takes a row.
            f.write("set -g remain-on-exit on\nset -g status off\n"
                    "set -g history-limit 10000\n")
        self.env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        # The server's socket goes in the case's folder, removed with it.
        self.env["TMUX_TMPDIR"] = cwd
        self.status_file = os.path.join(cwd, "exit-status")
        # The shell ignores Ctrl-C, so that it lives to write the status;
        # flowlua sets its own handler.
        wrapped = (f"trap '' INT; {command}; "
                   f"echo $? > {shlex.quote(self.status_file)}")
        self.tmux("new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y",
                  str(HEIGHT), "-c", cwd, "sh -c " + shlex.quote(wrapped))

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, "-f", self.conf,
                               *args], env=self.env, check=True,
                              capture_output=True, text=True,
                              timeout=WAIT).stdout

    def screen(self, history=False):
        args = ["capture-pane", "-p", "-J", "-t", "t"]
        if history:
            args += ["-S", "-", "-E", "-"]
        lines = self.tmux(*args).split("\n")
        lines = [l.rstrip() for l in lines if not l.startswith("Pane is dead")]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def wait_for(self, what, predicate):
        """Polls the screen until predicate(lines) is true; the lines."""
        deadline = time.monotonic() + WAIT
        while True:
            lines = self.screen()
            if predicate(lines):
                return lines
            if time.monotonic() > deadline:
                check(False, f"the screen never showed {what}", lines)
                return None
            time.sleep(0.05)

    def exit_status(self):
        """Waits for the command to end; its exit status. The pane's shell
        writes it to a file: tmux's own #{pane_dead_status} stays empty when
        tmux has not reaped the process, as happens with a sanitizer build
        (LeakSanitizer traces the process as it exits)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if os.path.exists(self.status_file):
                with open(self.status_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    return int(text)
            time.sleep(0.05)
        check(False, "flowlua did not end once the gate was open",
              self.screen())
        return None

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"],
                       env=self.env, capture_output=True, timeout=WAIT)


def flowlua_command(flowlua, gate, *extra):
    return " ".join(shlex.quote(a) for a in [
        flowlua, "--state", ":memory:", *extra, FLOW, "--param",
        f"gate={gate}"])


def rows(lines, pattern):
    return [m for m in (pattern.match(l) for l in lines) if m]


def status_showing(lines):
    """Everything the status must show at once, below the last log line."""
    headers = [i for i, l in enumerate(lines) if HEADER.match(l)]
    if not headers:
        return False
    region = lines[headers[-1]:]
    return (rows(region, RETRY_ROW) and rows(region, SLOW_ROW) and
            rows(region, MAP_ROW) and rows(region, MORE_ROW) and
            seconds(rows(region, SLOW_ROW)[0].group(1)) > 0)


def check_final_screen(lines, expect_ticks):
    check(any(SUMMARY.match(l) for l in lines), "the summary is on the screen",
          lines[-12:])
    check(any(l.startswith("  TASK ") for l in lines),
          "the summary's task table is on the screen", lines[-12:])
    leftovers = [l for l in lines if STATUS_LINE.search(l)]
    check(not leftovers, "no status line is left on the screen", leftovers)
    glued = [l for l in lines
             if len(re.findall(TIMESTAMP, l)) > 1 or
             (re.search(TIMESTAMP, l) and not LOG_LINE.match(l))]
    check(not glued, "every log line is whole and on its own line", glued)
    ticks = [int(m.group(1)) for m in rows(lines, TICK_LINE)]
    tick_lines = [l for l in lines if "tick" in l]
    check(len(ticks) == len(tick_lines),
          "every line of slow's log is a whole log line", tick_lines)
    if expect_ticks:
        check(ticks and ticks == list(range(1, len(ticks) + 1)),
              f"slow's log lines appear once each, in order (got {ticks})")
    check(any("flaky: Retrying in 2 s" in l for l in lines),
          "the retry's log line is on the screen")


def case_terminal(flowlua, tmp):
    gate = os.path.join(tmp, "gate")
    term = Terminal(flowlua_command(flowlua, gate), tmp)
    try:
        first = term.wait_for("the status with a retry countdown, running "
                              "tasks and their clocks", status_showing)
        if first is None:
            return
        head = [i for i, l in enumerate(first) if HEADER.match(l)][-1]
        logs_below = [l for l in first[head:] if re.match(TIMESTAMP, l)]
        check(not logs_below, "the status is below every log line",
              first)
        check(len(first) - head <= 10, "the status takes at most 10 lines",
              first[head:])
        counts = HEADER.match(first[head]).group(2)
        check(re.search(r"\b13 Running\b", counts) and
              "1 Retrying" in counts,
              "the header counts 13 Running (12 mapped, the map's own node "
              "not counted) and 1 Retrying", first[head:])
        slow0 = seconds(rows(first[head:], SLOW_ROW)[0].group(1))
        retry0 = rows(first[head:], RETRY_ROW)[0]

        # The clocks move in place: slow's elapsed time grows, the retry's
        # countdown changes, and still one status on screen.
        def moved(lines):
            if not status_showing(lines):
                return False
            region = lines[[i for i, l in enumerate(lines)
                            if HEADER.match(l)][-1]:]
            retry = rows(region, RETRY_ROW)[0]
            return (seconds(rows(region, SLOW_ROW)[0].group(1)) > slow0 and
                    retry.group(0) != retry0.group(0))
        later = term.wait_for("the clocks moving", moved)
        if later is not None:
            check(sum(1 for l in later if HEADER.match(l)) == 1,
                  "one status header on the screen at a time", later)

        open(gate, "w").close()
        status = term.exit_status()
        check(status == 0, f"flowlua exits 0 (got {status})")
        check_final_screen(term.screen(history=True), expect_ticks=True)
    finally:
        term.close()


def case_interrupt(flowlua, tmp):
    """Ctrl-C while the status is on screen: the message that the run is
    being cancelled goes above the status, whole, and the run ends
    Cancelled (exit 130) with the status erased."""
    gate = os.path.join(tmp, "gate")  # never opened: only Ctrl-C ends it
    term = Terminal(flowlua_command(flowlua, gate), tmp)
    try:
        if term.wait_for("the status", status_showing) is None:
            return
        term.tmux("send-keys", "-t", "t", "C-c")
        status = term.exit_status()
        check(status == 130, f"Ctrl-C: flowlua exits 130 (got {status})")
        final = term.screen(history=True)
        check("flowlua: cancelling the run (signal again to force the exit)" in final,
              "Ctrl-C: the message is on a line of its own", final[-20:])
        check(not [l for l in final if STATUS_LINE.search(l)],
              "Ctrl-C: no status line left on the screen", final)
        check(any(re.match(r"^flow 'live status' Cancelled in", l)
                  for l in final), "Ctrl-C: the summary says Cancelled",
              final[-12:])
    finally:
        term.close()


def case_no_status(flowlua, tmp, label, prefix, extra):
    gate = os.path.join(tmp, "gate")
    open(gate, "w").close()  # the run ends after flaky's one retry
    term = Terminal(prefix + flowlua_command(flowlua, gate, *extra), tmp)
    try:
        lines = term.wait_for("flaky's retry logged",
                              lambda ls: any("Retrying in" in l for l in ls))
        if lines is not None:
            check(not [l for l in lines if STATUS_LINE.search(l)],
                  f"{label}: no status while the run goes", lines)
        status = term.exit_status()
        check(status == 0, f"{label}: flowlua exits 0 (got {status})")
        final = term.screen(history=True)
        check(not [l for l in final if STATUS_LINE.search(l)],
              f"{label}: no status line on the screen", final)
        check_final_screen(final, expect_ticks=False)
    finally:
        term.close()


def case_resume(flowlua, tmp):
    """A run that failed, resumed on a terminal: the status shows the
    resume (flowlua_start_resume), and only flaky runs again."""
    gate = os.path.join(tmp, "gate")
    open(gate, "w").close()
    state = os.path.join(tmp, "state.db")
    failed = subprocess.run([flowlua, "--state", state, FLOW, "--param",
                             f"gate={gate}"], cwd=tmp, capture_output=True,
                            env=dict(os.environ, FLAKY_RETRIES="0"),
                            timeout=60)
    check(failed.returncode == 1, f"a resume: the first run fails (exit "
          f"{failed.returncode})", failed.stderr.decode(errors="replace")
          .splitlines()[-10:])
    command = " ".join(shlex.quote(a) for a in [
        flowlua, "--state", state, "--resume", "last", FLOW])
    term = Terminal(command, tmp)
    try:
        def resuming(lines):
            heads = [i for i, l in enumerate(lines) if HEADER.match(l)]
            return heads and rows(lines[heads[-1]:], RETRY_ROW)
        lines = term.wait_for("the resume's status with flaky's retry",
                              resuming)
        if lines is not None:
            head = [l for l in lines if HEADER.match(l)][-1]
            check("Running" not in head,
                  "a resume: the tasks that succeeded do not run again",
                  lines[-10:])
        status = term.exit_status()
        check(status == 0, f"a resume: flowlua exits 0 (got {status})")
        final = term.screen(history=True)
        check(not [l for l in final if STATUS_LINE.search(l)],
              "a resume: no status line left on the screen", final)
        check(any(re.match(r"^flow 'live status' Success in", l)
                  for l in final), "a resume: the summary is on the screen",
              final[-12:])
    finally:
        term.close()


def case_serving(flowlua, tmp):
    """Serving a schedule on a terminal: plain log lines, run after run."""
    command = " ".join(shlex.quote(a) for a in [
        flowlua, "--state", ":memory:", "--max-runs", "2", SERVED])
    term = Terminal(command, tmp)
    try:
        lines = term.wait_for("a served run's task at work",
                              lambda ls: any("pause: pausing" in l
                                             for l in ls))
        if lines is not None:
            check(not [l for l in lines if STATUS_LINE.search(l)],
                  "serving: no status while a run goes", lines)
        status = term.exit_status()
        check(status == 0, f"serving: flowlua exits 0 (got {status})")
        final = term.screen(history=True)
        check(not [l for l in final if STATUS_LINE.search(l)],
              "serving: no status line on the screen", final)
        check(sum("pause: pausing" in l for l in final) == 2,
              "serving: both runs logged", final)
    finally:
        term.close()


def case_pipe(flowlua, tmp):
    gate = os.path.join(tmp, "gate")
    open(gate, "w").close()
    run = subprocess.run([flowlua, "--state", ":memory:", FLOW, "--param",
                          f"gate={gate}"], cwd=tmp, capture_output=True,
                         timeout=60)
    check(run.returncode == 0, f"a pipe: flowlua exits 0 (got "
          f"{run.returncode})", run.stderr.decode(errors="replace")
          .splitlines()[-10:])
    check(b"\x1b" not in run.stderr, "a pipe: no escape sequence on stderr")
    lines = run.stderr.decode().splitlines()
    odd = [l for l in lines if l and not LOG_LINE.match(l) and
           not SUMMARY.match(l) and not l.startswith("  ")]
    check(not odd, "a pipe: stderr is log lines and the summary", odd)
    check(any("flaky: Retrying in 2 s" in l for l in lines),
          "a pipe: the retry is logged")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: live_status.py FLOWLUA")
    flowlua = os.path.abspath(sys.argv[1])
    cases = [
        ("a terminal", lambda tmp: case_terminal(flowlua, tmp)),
        ("Ctrl-C on a terminal", lambda tmp: case_interrupt(flowlua, tmp)),
        ("--no-status", lambda tmp: case_no_status(
            flowlua, tmp, "--no-status", "", ["--no-status"])),
        ("TERM=dumb", lambda tmp: case_no_status(
            flowlua, tmp, "TERM=dumb", "env TERM=dumb ", [])),
        ("a resume on a terminal", lambda tmp: case_resume(flowlua, tmp)),
        ("serving on a terminal", lambda tmp: case_serving(flowlua, tmp)),
        ("a pipe", lambda tmp: case_pipe(flowlua, tmp)),
    ]
    passed = failed = 0
    for name, run in cases:
        before = len(failures)
        with tempfile.TemporaryDirectory(prefix="flowlua-status-") as tmp:
            run(tmp)
        if len(failures) == before:
            passed += 1
            print(f"ok: {name}")
        else:
            failed += 1
            print(f"not ok: {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
