#!/usr/bin/env python3
"""Soak test, on demand (not in ctest): `flowlua serve` of a flow fired every
100 ms for minutes, whose tasks fail at random.

    python3 tests/perf/soak/run.py [FLOWLUA] [--minutes 10] [--rss-tolerance-kib 1024]

FLOWLUA defaults to build/flowlua in the repository. The flow is
tests/perf/soak/soak_flow.lua (HTTP against
tests/support/server/testserver.py, JSON, CSV and fs writes, a child process
per run; random failures, retried, some for good). It is served in a fresh folder with its own history while this
driver samples, once a second, the server's resident memory (VmRSS in
/proc/PID/status) and its open file descriptors (/proc/PID/fd). After
--minutes it sends SIGTERM and checks:

  - flowlua finished the run in progress and exited 1 when a run failed,
    0 otherwise, within 60 s;
  - memory: no sample after the first minute is above the first minute's
    highest by more than the tolerance (default 1 MiB, stated in the
    summary), and the last sample is not either;
  - file descriptors: none after the first minute above the first
    minute's highest;
  - the history has every run: `flowlua runs --json` lists one run per
    100 ms fire time from the first to the last, each fire time once,
    except the fire times that the fire_event table accounts for (skipped
    because the previous run overran, missed); every run ended Success or
    Failed, and as many as the serving summary counted.

It prints the figures either way and exits 1 when a check fails.
"""
import argparse
import datetime
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))  # tests/perf/soak
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FLOW = os.path.join(HERE, "soak_flow.lua")
TEST_SERVER = os.path.join(REPO, "tests", "support", "server", "testserver.py")
INTERVAL_MS = 100
WARMUP_SECONDS = 60
SERVER_START_LIMIT = 120  # seconds: no deadline for a start, an end to a hang


def start_test_server(workdir, seconds):
    port_file = os.path.join(workdir, "server.port")
    err_path = os.path.join(workdir, "server.stderr")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, TEST_SERVER, "--port-file", port_file,
                                 "--max-seconds", str(seconds), "--exit-with-parent"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
    # The port file appears once the server listens: wait for it as long as
    # the server lives, fail at once if it exits; the limit only ends a hang.
    limit = time.monotonic() + SERVER_START_LIMIT
    while not os.path.exists(port_file):
        try:
            code = proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            if time.monotonic() <= limit:
                continue
            proc.kill()
            proc.wait()
            why = f"wrote no port after {SERVER_START_LIMIT} s"
        else:
            why = f"exited with code {code} before writing its port"
        with open(err_path, encoding="utf-8", errors="replace") as f:
            sys.exit(f"soak: the test server {why}:\n{f.read()[-3000:]}")
    with open(port_file) as f:
        return proc, f"http://127.0.0.1:{int(f.read())}"


def sample(pid):
    """(VmRSS in KiB, open fds), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, AttributeError):
        return None


def epoch_ms(iso):
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(t.timestamp() * 1000)


def check_history(flowlua, workdir, served):
    """Problems with the history, and its figures."""
    problems = []
    listed = subprocess.run([flowlua, "runs", "--json", "--limit", "10000000"],
                            cwd=workdir, capture_output=True, text=True, timeout=120)
    if listed.returncode != 0:
        return [f"flowlua runs --json exited {listed.returncode}: {listed.stderr}"], {}
    runs = json.loads(listed.stdout)
    states = {}
    for r in runs:
        states[r["state"]] = states.get(r["state"], 0) + 1
    for state in sorted(set(states) - {"Success", "Failed"}):
        problems.append(f"{states[state]} runs ended {state}")
    fires = sorted(epoch_ms(r["scheduled_at"]) for r in runs if r["scheduled_at"])
    if len(fires) != len(runs):
        problems.append(f"{len(runs) - len(fires)} runs have no fire time")
    twice = sorted({t for t, u in zip(fires, fires[1:]) if t == u})
    if twice:
        problems.append(f"fire times run twice: {twice[:10]}")
    db = sqlite3.connect(os.path.join(workdir, ".flowlua", "state.db"))
    try:
        events = db.execute("SELECT outcome, scheduled_at, last_at, count FROM fire_event"
                            " ORDER BY scheduled_at").fetchall()
    finally:
        db.close()
    accounted, outcomes = set(), {}
    for outcome, first, last, count in events:
        outcomes[outcome] = outcomes.get(outcome, 0) + count
        first_ms = round(first * 1000)
        last_ms = round((last if last is not None else first) * 1000)
        accounted.update(range(first_ms, last_ms + 1, INTERVAL_MS))
    if fires:
        expected = range(fires[0], fires[-1] + 1, INTERVAL_MS)
        missing = [t for t in expected if t not in set(fires) and t not in accounted]
        if missing:
            problems.append(f"{len(missing)} fire times neither ran nor are in fire_event, "
                            f"first {missing[:5]}")
        off_grid = [t for t in fires if t % INTERVAL_MS]
        if off_grid:
            problems.append(f"runs off the 100 ms grid: {off_grid[:5]}")
    if served is not None and served != len(runs):
        problems.append(f"the serving summary counted {served} runs, the history has {len(runs)}")
    return problems, {"runs": len(runs), "states": states, "fire_events": outcomes,
                      "span": (fires[-1] - fires[0]) / 1000 if fires else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("flowlua", nargs="?", default=os.path.join(REPO, "build", "flowlua"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rss-tolerance-kib", type=int, default=1024,
                    help="growth allowed over the first minute's highest (default 1024)")
    args = ap.parse_args()
    if args.minutes * 60 <= WARMUP_SECONDS:
        ap.error("--minutes must be more than 1: the first minute is the baseline")
    flowlua = os.path.abspath(args.flowlua)
    seconds = args.minutes * 60
    problems = []

    with tempfile.TemporaryDirectory(prefix="flowlua-soak-") as workdir:
        server, base = start_test_server(workdir, seconds + 300)
        log_path = os.path.join(workdir, "serve.log")
        with open(log_path, "w+") as log:
            proc = subprocess.Popen([flowlua, FLOW], cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=log,
                                    env=dict(os.environ, SOAK_HTTP_URL=base))
            print(f"soak: flowlua pid {proc.pid} serving {os.path.relpath(FLOW, REPO)} "
                  f"every {INTERVAL_MS} ms for {args.minutes:g} min in {workdir}", flush=True)
            started = time.monotonic()
            samples = []  # (seconds since start, rss KiB, fds)
            next_at = started + 1
            while time.monotonic() - started < seconds and proc.poll() is None:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += 1
                s = sample(proc.pid)
                if s:
                    samples.append((time.monotonic() - started,) + s)
                    if len(samples) % 60 == 0:
                        print(f"soak: {samples[-1][0] / 60:.0f} min: RSS {s[0]} KiB, "
                              f"{s[1]} fds", flush=True)
            if proc.poll() is not None:
                problems.append(f"flowlua exited {proc.returncode} by itself after "
                                f"{time.monotonic() - started:.0f} s")
            else:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    problems.append("flowlua did not exit within 60 s of SIGTERM (killed)")
            log.seek(0)
            text = log.read()
        server.terminate()
        server.wait()

        summary = re.search(r"served (\d+) run\(s\): (\d+) failed, (\d+) cancelled; fire times: "
                            r"(\d+) queued, (\d+) skipped, (\d+) missed", text)
        if not summary:
            problems.append("no serving summary in the log:\n" + text[-3000:])
        served = int(summary.group(1)) if summary else None
        failed = int(summary.group(2)) if summary else 0
        want_code = 1 if failed else 0
        if proc.returncode not in (want_code, -signal.SIGKILL):
            problems.append(f"flowlua exited {proc.returncode}, expected {want_code} "
                            f"({failed} runs failed)")
        for bad in ("Sanitizer", "runtime error:"):
            if bad in text:
                problems.append("a sanitizer report in the log:\n" + text[-6000:])

        warm = [s for s in samples if s[0] <= WARMUP_SECONDS]
        after = [s for s in samples if s[0] > WARMUP_SECONDS]
        rss_base = max(s[1] for s in warm) if warm else 0
        fd_base = max(s[2] for s in warm) if warm else 0
        if not after:
            problems.append("no samples after the first minute")
        else:
            worst = max(after, key=lambda s: s[1])
            if worst[1] > rss_base + args.rss_tolerance_kib:
                problems.append(f"RSS grew to {worst[1]} KiB at {worst[0]:.0f} s, above the "
                                f"first minute's {rss_base} KiB + {args.rss_tolerance_kib} KiB")
            fd_worst = max(after, key=lambda s: s[2])
            if fd_worst[2] > fd_base:
                problems.append(f"{fd_worst[2]} fds open at {fd_worst[0]:.0f} s, more than "
                                f"the first minute's {fd_base}")
        history_problems, figures = check_history(flowlua, workdir, served)
        problems += history_problems
        db_bytes = sum(os.path.getsize(os.path.join(workdir, ".flowlua", f))
                       for f in os.listdir(os.path.join(workdir, ".flowlua")))

    print(f"soak: {args.minutes:g} min, {figures.get('runs', '?')} runs "
          f"({', '.join(f'{v} {k}' for k, v in sorted(figures.get('states', {}).items()))}) "
          f"over {figures.get('span', 0):.1f} s of fire times; fire_event: "
          f"{figures.get('fire_events') or 'none'}; exit {proc.returncode}")
    if samples:
        print(f"soak: RSS first minute {min(s[1] for s in warm)}..{rss_base} KiB, after it "
              f"{min(s[1] for s in after) if after else '-'}..{max(s[1] for s in after) if after else '-'}"
              f" KiB, last {samples[-1][1]} KiB (tolerance {args.rss_tolerance_kib} KiB); "
              f"fds first minute {min(s[2] for s in warm)}..{fd_base}, after it "
              f"{min(s[2] for s in after) if after else '-'}..{max(s[2] for s in after) if after else '-'}; "
              f"history {db_bytes / 1048576:.1f} MiB")
    for p in problems:
        print("FAIL " + p.replace("\n", "\n  "))
    print("soak: " + ("FAILED" if problems else "passed"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
