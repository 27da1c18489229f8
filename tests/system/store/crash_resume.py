#!/usr/bin/env python3
"""Crash test of the run history: SIGKILL flowlua at many points of a run,
then resume it, and check that nothing that was recorded as done runs again
and that every output comes out whole.

    crash_resume.py FLOWLUA [--trials N] [--seed S] [--keep] [-v]

Runs tests/system/store/crash_flow.lua (18 task runs: a chain, a map over
8, two big CSV writes, a JSON report, a final check; see its header). First one
full run measures how long a run takes and where its big writes are. Then
each trial, in a fresh folder:

  1. starts `flowlua crash_flow.lua` and sends SIGKILL after a delay:
     - "early" trials: 0-20 ms, while the store is created and the run is
       first recorded;
     - "write" trials: 0-1.2 W after the flow's side log says that the big
       CSV write (csv.write of 200,000 rows) or the streamed one
       (csv.writer) begins, W being that write's measured length;
     - "spread" trials: stepped over the whole run (a random point in each
       of N equal slices of 105% of its length);
     - "double" trials: at 15-85% of the run, and then the resume too,
       0-15 ms after it starts (while it recovers the dead process's
       journal, marks the run Crashed, records its own run and the tasks
       it keeps), before a second resume;
  2. reads the store as the kill left it, from copies, leaving the original
     for flowlua to recover: the database and its WAL with sqlite3 as they
     are ("in the database"), and what flowlua recovers from them and the
     dead process's journal (state.db.flowlua-PID-N.log: changes recorded
     but not yet in the database), by `flowlua show last --json --state
     COPY`. The kill's phase is "before record" (no run recorded), "during
     run" (the run is recovered as Crashed) or "after finish" (it ended
     Success);
  3. checks what the kill left: every output file present holds exactly
     its final bytes (atomic writes: absent or whole, never partial);
     every task recorded Success finished its body in the killed process
     and its output is there; every task that started had each of its
     upstream tasks recorded Success (durable before a dependent started);
     what the database holds as Success is still Success once recovered;
  4. "during run": `flowlua crash_flow.lua --resume last` must exit 0; no
     task recorded Success in a killed run may start again in the resuming
     process (by the pids in the flow's side log), and every other task
     must start there exactly once. "before record": `--resume last` must
     fail, and a plain run must succeed. "after finish": `--resume last`
     must refuse (exit 2 "cannot resume");
  5. after that: `flowlua show last --json` is Success with every task
     Success and resumed_from the killed run, `flowlua runs --json` shows
     each killed run as Crashed, every output holds its exact bytes, no
     journal is left in .flowlua, PRAGMA integrity_check says ok and
     foreign_key_check finds nothing, and no new temporary file
     (".name." and six random characters: the atomic writers' pattern) is left beside the
     outputs. Temporary files that a killed process left (a kill in the
     middle of a write cannot remove them, and nothing removes them later)
     are counted in the summary, not failed.

Prints a summary line; exits 1 with every failed trial's details (its
folder's listing, flowlua's stderr, the side log), which are kept on disk.
Everything else is removed.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "crash_flow.lua")
# Seconds a trial waits for a mark while flowlua runs: no deadline for a
# slow machine, an end to a hang (it stops at once if flowlua exits).
MARK_LIMIT = 120

# Must match crash_flow.lua.
N = 8
BIG_ROWS = 200000
STREAM_ROWS = 60000
SQ = [f"sq[{i}]" for i in range(1, N + 1)]
DEPS = {
    "seed": [],
    "c1": ["seed"], "c2": ["c1"], "c3": ["c2"], "c4": ["c3"],
    **{k: ["c2"] for k in SQ},
    "merge": SQ,
    "big": ["seed"], "stream": ["seed"],
    "report": ["merge", "c4"],
    "final": ["c4", "merge", "big", "stream", "report"],
}
BODY_KEYS = list(DEPS)          # keys whose body runs (and logs)
ALL_KEYS = set(BODY_KEYS) | {"sq"}  # and the map's own node
NODE_KEYS = (set(BODY_KEYS) - set(SQ)) | {"sq"}  # one per task call
OUTPUT_OF = {
    "seed": "out/seed.txt",
    **{f"c{n}": f"out/c{n}.txt" for n in range(1, 5)},
    **{f"sq[{i}]": f"out/sq_{i}.txt" for i in range(1, N + 1)},
    "merge": "out/squares.csv", "big": "out/big.csv",
    "stream": "out/stream.csv", "report": "out/report.json",
    "final": "out/final.txt",
}
# An atomic write's temporary file: ".NAME.flowlua-PID-RANDOM.tmp"
TEMP_RE = re.compile(r"^\.(.+)\.flowlua-[0-9]+-[0-9a-f]{8}\.tmp$")


def expected_outputs():
    out = {"out/seed.txt": b"seed\n"}
    v = 3
    for n in range(1, 5):
        v = v * 2 + 1
        out[f"out/c{n}.txt"] = f"c{n} {v}\n".encode()
    vals = [i * i + 15 for i in range(1, N + 1)]
    for i, x in enumerate(vals, 1):
        out[f"out/sq_{i}.txt"] = f"{i} {x}\n".encode()
    out["out/squares.csv"] = ("i,value\n" + "".join(
        f"{i},{x}\n" for i, x in enumerate(vals, 1))).encode()
    out["out/big.csv"] = ("i,name,val\n" + "".join(
        f'{i},"row, {i}",{i * 7 % 1000}\n' for i in range(1, BIG_ROWS + 1))).encode()
    out["out/stream.csv"] = ("i,name\n" + "".join(
        f"{i},s{i}\n" for i in range(1, STREAM_ROWS + 1))).encode()
    out["out/report.json"] = f'[{sum(vals)},{v},"ok"]\n'.encode()
    out["out/final.txt"] = b"ok\n"
    return out


EXPECTED = expected_outputs()


class TrialFailed(Exception):
    pass


def read_side_log(work):
    """{pid: {"started": [keys], "done": [keys], "marks": [what]}}."""
    procs = {}
    path = os.path.join(work, "side.log")
    if not os.path.exists(path):
        return procs
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for line in text.split("\n")[:-1]:  # a line without its newline is cut
        words = line.split(" ")
        if len(words) == 3 and words[0] in ("done", "mark"):
            kind, key, pid = ("done" if words[0] == "done" else "marks",
                              words[1], words[2])
        elif len(words) == 2:
            kind, key, pid = "started", words[0], words[1]
        else:
            raise TrialFailed(f"side.log: malformed line {line!r}")
        if kind != "marks" and key not in DEPS:
            raise TrialFailed(f"side.log: unknown task key {key!r} in {line!r}")
        p = procs.setdefault(int(pid), {"started": [], "done": [], "marks": []})
        p[kind].append(key)
    return procs


def listing(work):
    lines = []
    for root, dirs, files in os.walk(work):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            try:
                size = os.lstat(p).st_size
            except OSError:
                size = "?"
            lines.append(f"  {os.path.relpath(p, work)}  {size}")
    return "\n".join(lines) or "  (empty)"


def temp_files(work):
    found = set()
    for root, _dirs, files in os.walk(work):
        if os.path.basename(root) == ".flowlua":
            continue
        for name in files:
            if TEMP_RE.match(name):
                found.add(os.path.relpath(os.path.join(root, name), work))
    return found


def check_outputs(work, require_all):
    """Every output present holds its exact bytes; with require_all, all are
    present. Returns the set of outputs present."""
    present = set()
    for rel, want in EXPECTED.items():
        p = os.path.join(work, rel)
        if not os.path.exists(p):
            if require_all:
                raise TrialFailed(f"output {rel} is missing")
            continue
        with open(p, "rb") as f:
            got = f.read()
        if got != want:
            raise TrialFailed(
                f"output {rel} is partial or wrong: {len(got)} bytes, want "
                f"{len(want)}; ends with {got[-60:]!r}")
        present.add(rel)
    return present


def copy_store(work, dest):
    """Copies the store's files (the database, its WAL, the processes'
    journals) to dest; False when there is no database file."""
    sdir = os.path.join(work, ".flowlua")
    if not os.path.exists(os.path.join(sdir, "state.db")):
        return False
    os.makedirs(dest)
    for name in os.listdir(sdir):
        if name.startswith("state.db") and not name.endswith("-shm"):
            shutil.copy2(os.path.join(sdir, name), os.path.join(dest, name))
    return True


def read_raw_store(path):
    """What SQLite alone holds (no journal replayed): {"tables": [...],
    "runs": [(run_id, state)], "tasks": {key: state} of the last run}."""
    con = sqlite3.connect(path)
    try:
        tables = sorted(r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
        if "flow_run" not in tables:
            return {"tables": tables, "runs": [], "tasks": {}}
        runs = con.execute("SELECT id, run_id, state FROM flow_run ORDER BY id").fetchall()
        tasks = {}
        if runs:
            tasks = dict(con.execute(
                "SELECT key, state FROM task_run WHERE run = ? ORDER BY n", (runs[-1][0],)))
        return {"tables": tables, "runs": [(r[1], r[2]) for r in runs], "tasks": tasks}
    finally:
        con.close()


def kept_keys(tasks):
    """The keys a resume of a run with these {key: state} keeps. A map kept
    whole from an earlier run is recorded as its node alone (no rows for
    its elements), and keeps them all."""
    keys = {k for k, st in tasks.items() if st == "Success"}
    if "sq" in keys:
        keys |= set(SQ)
    return keys


def journals(work):
    sdir = os.path.join(work, ".flowlua")
    if not os.path.isdir(sdir):
        return []
    return sorted(n for n in os.listdir(sdir) if n.endswith(".log"))


def snapshot_store(runner, work, snap):
    """The store as the kill left it, read from two copies so that the
    original stays as it is for the resume to recover:

    - "raw": the database file and its WAL read with sqlite3, as they are;
    - "durable": what flowlua recovers from the same files: `flowlua show
      last --json` on a copy, which replays the dead process's journal
      (state.db.flowlua-PID-N.log: the changes not yet in the database)
      and marks the run Crashed, as the next start does.

    Returns None when there is no database file, else {"raw": ...,
    "journals": [names], "run": show's JSON or None when no run is
    recorded, "tasks": {key: state} of that run}."""
    raw_dir, durable_dir = os.path.join(snap, "raw"), os.path.join(snap, "durable")
    if not copy_store(work, raw_dir):
        return None
    copy_store(work, durable_dir)
    snap_journals = journals(work)
    raw = read_raw_store(os.path.join(raw_dir, "state.db"))
    rc, _pid, out, err = runner.run(
        snap, ["show", "last", "--json", "--state", os.path.join(durable_dir, "state.db")],
        "show-snapshot")
    if rc != 0:
        if "no run" in err and "recorded" in err:
            return {"raw": raw, "journals": snap_journals, "run": None, "tasks": {}}
        raise TrialFailed(f"flowlua show last --json on a copy of the killed run's store "
                          f"exited {rc}: {err.strip()}")
    try:
        run = json.loads(out)
    except ValueError as e:
        raise TrialFailed(f"show last --json on the snapshot printed no JSON ({e}): {out[:300]!r}")
    return {"raw": raw, "journals": snap_journals, "run": run,
            "tasks": {t["key"]: t["state"] for t in run.get("tasks", [])}}


class Runner:
    def __init__(self, flowlua, logs):
        self.flowlua, self.logs, self.n = flowlua, logs, 0
        self.stderr_files = []

    def run(self, work, args, what, timeout=60):
        """Runs flowlua to the end; returns (returncode, pid, stdout, stderr)."""
        self.n += 1
        err_path = os.path.join(self.logs, f"{self.n:02d}-{what}.stderr")
        self.stderr_files.append(err_path)
        with open(err_path, "wb") as err:
            p = subprocess.Popen([self.flowlua] + args, cwd=work,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=err)
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise TrialFailed(f"flowlua {' '.join(args)} ({what}) did not end "
                                  f"within {timeout} s")
        with open(err_path, "rb") as f:
            stderr = f.read().decode("utf-8", "replace")
        return p.returncode, p.pid, out.decode("utf-8", "replace"), stderr

    def start(self, work, what, args=None):
        self.n += 1
        err_path = os.path.join(self.logs, f"{self.n:02d}-{what}.stderr")
        self.stderr_files.append(err_path)
        err = open(err_path, "wb")
        p = subprocess.Popen([self.flowlua] + (args or [SCRIPT]), cwd=work,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err)
        err.close()
        return p

    def json(self, work, args, what):
        rc, _pid, out, err = self.run(work, args, what)
        if rc != 0:
            raise TrialFailed(f"flowlua {' '.join(args)} exited {rc}: {err.strip()}")
        try:
            return json.loads(out)
        except ValueError as e:
            raise TrialFailed(f"flowlua {' '.join(args)} printed no JSON ({e}): {out[:500]!r}")


def wait_for_mark(work, mark, proc):
    """Polls side.log until a "mark MARK" line appears while proc runs;
    False once proc has exited without it (or, for a hang, after
    MARK_LIMIT seconds)."""
    path = os.path.join(work, "side.log")
    needle = f"mark {mark} ".encode()
    limit = time.monotonic() + MARK_LIMIT
    while time.monotonic() < limit:
        running = proc.poll() is None
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return True
        except FileNotFoundError:
            pass
        if not running:
            return False
        time.sleep(0.0005)
    return False


def calibrate(flowlua, base):
    """One full run, watched: its length and each big write's window."""
    work = os.path.join(base, "calibrate")
    os.makedirs(work)
    logs = os.path.join(base, "calibrate-logs")
    os.makedirs(logs)
    runner = Runner(flowlua, logs)
    seen = {}
    path = os.path.join(work, "side.log")
    t0 = time.monotonic()
    p = runner.start(work, "full")
    while p.poll() is None:
        now = time.monotonic() - t0
        try:
            with open(path, encoding="utf-8") as f:
                for line in f.read().split("\n")[:-1]:
                    seen.setdefault(" ".join(line.split(" ")[:2]), now)
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    duration = time.monotonic() - t0
    if p.returncode != 0:
        with open(runner.stderr_files[-1], encoding="utf-8", errors="replace") as f:
            raise SystemExit(f"crash_resume: the full run failed (exit {p.returncode}):\n{f.read()}")
    check_outputs(work, require_all=True)
    procs = read_side_log(work)
    if list(procs) != [p.pid] or sorted(procs[p.pid]["started"]) != sorted(BODY_KEYS):
        raise SystemExit(f"crash_resume: the full run's side log is not one start per task: {procs}")
    windows = {}
    for mark, key in (("big-write", "big"), ("stream-write", "stream")):
        begin, end = seen.get(f"mark {mark}"), seen.get(f"done {key}")
        if begin is None or end is None:
            raise SystemExit(f"crash_resume: the full run's side log lacks {mark} or done {key}")
        windows[mark] = max(end - begin, 0.005)
    shutil.rmtree(work)
    shutil.rmtree(logs)
    return duration, windows


def plan(rng, n_trials, duration, windows):
    """[(kind, delay, mark, delay2)]: delay2, for "double" trials, is when
    the resume is killed in its turn."""
    n_early = max(4, n_trials // 5)
    n_write = max(4, n_trials // 5)
    n_double = max(2, n_trials // 8)
    n_spread = max(1, n_trials - n_early - n_write - n_double)
    trials = [("early", rng.uniform(0.0, 0.020), None, None) for _ in range(n_early)]
    marks = sorted(windows)
    for i in range(n_write):
        mark = marks[i % len(marks)]
        trials.append(("write", rng.uniform(0.0, windows[mark] * 1.2), mark, None))
    span = duration * 1.05
    trials += [("spread", (k + rng.random()) / n_spread * span, None, None)
               for k in range(n_spread)]
    trials += [("double", rng.uniform(0.15, 0.85) * duration, None,
                (k + rng.random()) / n_double * 0.015) for k in range(n_double)]
    return trials


def run_trial(flowlua, base, idx, trial, stats):
    kind, delay, mark, delay2 = trial
    tdir = os.path.join(base, f"trial-{idx:02d}-{kind}")
    work, logs, snap = (os.path.join(tdir, d) for d in ("work", "logs", "snapshot"))
    for d in (work, logs):
        os.makedirs(d)
    runner = Runner(flowlua, logs)
    info = {"dir": tdir, "work": work, "runner": runner,
            "desc": f"trial {idx} ({kind}, delay {delay * 1000:.1f} ms"
                    + (f" after mark {mark}" if mark else "")}
    try:
        _run_trial(runner, work, snap, kind, delay, mark, delay2, stats, info)
        return None
    except TrialFailed as e:
        info["desc"] += ")"
        info["error"] = str(e)
        return info


def _run_trial(runner, work, snap, kind, delay, mark, delay2, stats, info):
    # 1. Start and kill.
    t0 = time.monotonic()
    p = runner.start(work, "killed")
    if mark:
        if not wait_for_mark(work, mark, p):
            running = p.poll() is None
            p.kill()
            rc = p.wait()
            why = (f"flowlua still running after {MARK_LIMIT} s" if running
                   else f"flowlua exited {rc} first")
            raise TrialFailed(f"the side log never said 'mark {mark}' ({why})")
        t0 = time.monotonic()
    remaining = t0 + delay - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    p.send_signal(signal.SIGKILL)
    rc = p.wait()
    killed_pid = p.pid
    exited_before_kill = rc != -signal.SIGKILL
    if exited_before_kill and rc != 0:
        raise TrialFailed(f"the run exited {rc} on its own before the kill")

    # 2. The store as the kill left it.
    store = snapshot_store(runner, work, os.path.join(snap, "1"))
    run = store["run"] if store else None
    raw = store["raw"] if store else {"tables": [], "runs": [], "tasks": {}}
    if len(raw["runs"]) > 1:
        raise TrialFailed(f"one process recorded {len(raw['runs'])} runs: {raw['runs']}")
    if run is None:
        phase = "before record"
        if raw["runs"]:
            raise TrialFailed(f"the database holds run {raw['runs']} but flowlua finds none")
        where = ("no store file" if store is None else
                 "store without schema" if "flow_run" not in raw["tables"] else
                 "schema without runs")
        stats["before"][where] = stats["before"].get(where, 0) + 1
    elif run["state"] == "Crashed":
        phase = "during run"
    elif run["state"] == "Success":
        phase = "after finish"
    else:
        raise TrialFailed(f"the killed run is recorded as {run['state']}, not "
                          "Crashed (after a recovery) or Success")
    if exited_before_kill and phase != "after finish":
        raise TrialFailed(f"the run exited 0 but its store says {phase}")
    info["desc"] += f", {phase}"
    stats["phase"][phase] += 1
    if exited_before_kill:
        stats["exited_before_kill"] += 1
    killed_run = run["id"] if run else None
    if raw["runs"] and raw["runs"][0][0] != killed_run:
        raise TrialFailed(f"the database's run is {raw['runs'][0][0]}, flowlua's {killed_run}")
    success = kept_keys(store["tasks"] if store else {})
    raw_success = kept_keys(raw["tasks"])
    # Task runs are declared in the store lazily (batched), so a run killed
    # early has rows for only some of its keys.
    for what, tasks in (("recovered", store["tasks"] if store else {}),
                        ("database's", raw["tasks"])):
        if not set(tasks) <= ALL_KEYS:
            raise TrialFailed(f"the killed run's {what} task keys are {sorted(tasks)}, "
                              f"not a subset of {sorted(ALL_KEYS)}")
    if not raw_success <= success:
        raise TrialFailed(f"tasks Success in the database but not after recovery: "
                          f"{sorted(raw_success - success)}")
    if phase == "during run":
        stats["from_journal"] += len((success - raw_success) & set(BODY_KEYS))
        stats["in_db"] += len(raw_success & set(BODY_KEYS))

    # 3. What the kill left.
    present = check_outputs(work, require_all=False)
    if mark:
        out = "out/big.csv" if mark == "big-write" else "out/stream.csv"
        stats["write_outcome"][mark + (": complete" if out in present else ": absent")] += 1
    stale_temps = temp_files(work)
    procs = read_side_log(work)
    if set(procs) - {killed_pid}:
        raise TrialFailed(f"side.log names pids {sorted(procs)}, only {killed_pid} ran")
    killed = procs.get(killed_pid, {"started": [], "done": [], "marks": []})
    for k in killed["started"]:
        if killed["started"].count(k) > 1:
            raise TrialFailed(f"task {k} started twice in the killed process")
        missing = [u for u in DEPS[k] if u not in success]
        if missing:
            raise TrialFailed(f"task {k} started in the killed process while its "
                              f"upstream {missing} was not recorded Success in the store "
                              "(not durable before a dependent started)")
    for k in sorted(success & set(BODY_KEYS)):
        if k not in killed["done"]:
            raise TrialFailed(f"task {k} is recorded Success but its body did not finish")
        if OUTPUT_OF[k] not in present:
            raise TrialFailed(f"task {k} is recorded Success but {OUTPUT_OF[k]} is missing")

    # 3b. "double" trials: the resume is killed too, early (while it
    # recovers the journal, marks the run Crashed, records its own run and
    # the tasks it keeps), then resumed in its turn.
    forbidden = set(success)  # must not start again in the last process
    resume_from = killed_run  # the run the last process resumes
    crashed = {killed_run} if phase == "during run" else set()
    pids = [killed_pid]
    resume_pid = None
    if delay2 is not None and phase == "during run":
        info["desc"] += f", resume killed after {delay2 * 1000:.1f} ms"
        p2 = runner.start(work, "resume-killed", [SCRIPT, "--resume", "last"])
        time.sleep(delay2)
        p2.send_signal(signal.SIGKILL)
        rc2 = p2.wait()
        pids.append(p2.pid)
        mid = read_side_log(work).get(p2.pid, {"started": [], "done": [], "marks": []})
        rerun = sorted(k for k in mid["started"] if k in success)
        if rerun:
            raise TrialFailed(f"tasks recorded Success in the killed run started again in "
                              f"the (then killed) resuming process {p2.pid}: {rerun}")
        if rc2 == 0:
            resume_pid = p2.pid  # it finished before the kill
            stats["double"]["resume finished"] += 1
        elif rc2 != -signal.SIGKILL:
            raise TrialFailed(f"the first resume exited {rc2} before it was killed")
        else:
            store2 = snapshot_store(runner, work, os.path.join(snap, "2"))
            run2 = store2["run"] if store2 else None
            if run2 is None or run2["state"] != "Crashed":
                raise TrialFailed("after the first resume was killed the last run is "
                                  f"{run2 and run2['state']!r}, want Crashed")
            s2 = kept_keys(store2["tasks"])
            if run2["id"] == killed_run:
                stats["double"]["killed before recording its run"] += 1
            else:
                stats["double"]["killed after recording its run"] += 1
                if run2.get("resumed_from") != killed_run:
                    raise TrialFailed(f"the first resume's run {run2['id']} has resumed_from "
                                      f"{run2.get('resumed_from')!r}, want {killed_run}")
                lost = sorted((success - s2) & set(BODY_KEYS))
                if lost:
                    stats["double"]["kept tasks missing from its record"] += 1
                    info["lost"] = lost
                crashed.add(run2["id"])
                resume_from = run2["id"]
            for k in mid["started"]:
                missing = [u for u in DEPS[k] if u not in success | s2]
                if missing:
                    raise TrialFailed(f"task {k} started in the first resume while its "
                                      f"upstream {missing} was not recorded Success")
            for k in sorted((s2 - success) & set(BODY_KEYS)):
                if k not in mid["done"]:
                    raise TrialFailed(f"task {k} is recorded Success in the first resume's "
                                      "run but its body did not finish there")
            check_outputs(work, require_all=False)
            forbidden |= s2
            stale_temps |= temp_files(work)

    # 4. Resume (or run again).
    if resume_pid is not None:
        pass
    elif phase == "before record":
        rc, _pid, _out, err = runner.run(work, [SCRIPT, "--resume", "last"], "resume")
        if rc == 0:
            raise TrialFailed("--resume last succeeded though no run was recorded")
        rc, resume_pid, _out, err = runner.run(work, [SCRIPT], "rerun")
        if rc != 0:
            raise TrialFailed(f"a plain run after a kill before any record exited {rc}")
        stats["reruns_ok"] += 1
    elif phase == "during run":
        rc, resume_pid, _out, err = runner.run(work, [SCRIPT, "--resume", "last"], "resume")
        if rc != 0:
            raise TrialFailed(f"--resume last exited {rc}")
        stats["resumes_ok"] += 1
        stats["kept"] += len(forbidden & set(BODY_KEYS))
    else:
        rc, _pid, _out, err = runner.run(work, [SCRIPT, "--resume", "last"], "resume")
        if rc != 2 or "cannot resume" not in err:
            raise TrialFailed(f"--resume last of a run that ended Success exited {rc}, "
                              "want 2 and 'cannot resume'")
        stats["finished_ok"] += 1

    # 5. The end state.
    procs = read_side_log(work)
    if set(procs) - set(pids) - {resume_pid}:
        raise TrialFailed(f"side.log names pids {sorted(procs)}; ran: killed "
                          f"{pids}, then {resume_pid}")
    if resume_pid is None:
        if sorted(killed["started"]) != sorted(BODY_KEYS):
            raise TrialFailed("a run recorded Success did not start every task once")
    else:
        again = procs.get(resume_pid, {"started": [], "done": [], "marks": []})["started"]
        rerun = sorted(k for k in again if k in forbidden)
        if rerun:
            how = ""
            if info.get("lost"):
                how = (f" (the killed resume's run did not record as kept "
                       f"{info['lost']}, which were Success in run {killed_run})")
            raise TrialFailed(f"tasks recorded Success in a killed run started again "
                              f"in process {resume_pid}: {rerun}{how}")
        want = sorted(set(BODY_KEYS) - forbidden)
        if sorted(again) != want:
            raise TrialFailed(f"process {resume_pid} started {sorted(again)}, want each "
                              f"task not recorded Success exactly once: {want}")
    show = runner.json(work, ["show", "last", "--json"], "show")
    if show.get("state") != "Success":
        raise TrialFailed(f"show last --json: state {show.get('state')!r}, want Success")
    tasks = {t["key"]: t["state"] for t in show.get("tasks", [])}
    bad = {k: s for k, s in tasks.items() if s != "Success"}
    # A map kept whole from the killed run has no rows for its elements.
    if not NODE_KEYS <= set(tasks) <= ALL_KEYS or bad:
        raise TrialFailed(f"show last --json: tasks {tasks}, want every one of "
                          f"{sorted(NODE_KEYS)} (and map elements) Success")
    if phase == "during run" and show.get("resumed_from") != resume_from:
        raise TrialFailed(f"show last --json: resumed_from {show.get('resumed_from')!r}, "
                          f"want {resume_from}")
    listed = runner.json(work, ["runs", "--json"], "runs")
    states = {r["id"]: r["state"] for r in listed}
    want_runs = len(crashed) + 1
    if len(listed) != want_runs:
        raise TrialFailed(f"runs --json lists {len(listed)} runs, want {want_runs}: {states}")
    for r in crashed:
        if states.get(r) != "Crashed":
            raise TrialFailed(f"runs --json: the killed run {r} is {states.get(r)!r}, "
                              "want Crashed")
    if phase == "after finish" and states.get(killed_run) != "Success":
        raise TrialFailed(f"runs --json: the finished run {killed_run} is "
                          f"{states.get(killed_run)!r}, want Success")
    check_outputs(work, require_all=True)
    new_temps = temp_files(work) - stale_temps
    if new_temps:
        raise TrialFailed(f"temporary files left beside the outputs: {sorted(new_temps)}")
    if stale_temps:
        stats["stale_temp_trials"] += 1
        for t in stale_temps:  # "out/.big.csv.flowlua-9-0a1b2c3d.tmp" -> "out/big.csv"
            d, name = os.path.split(t)
            target = os.path.join(d, TEMP_RE.match(name).group(1))
            stats["stale_temps"][target] = stats["stale_temps"].get(target, 0) + 1
    left = journals(work)
    if left:
        raise TrialFailed(f"journals left in .flowlua after every process ended: {left}")
    con = sqlite3.connect(os.path.join(work, ".flowlua", "state.db"))
    try:
        integrity = [r[0] for r in con.execute("PRAGMA integrity_check")]
        fk = con.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        con.close()
    if integrity != ["ok"]:
        raise TrialFailed(f"PRAGMA integrity_check: {integrity}")
    if fk:
        raise TrialFailed(f"PRAGMA foreign_key_check: {fk[:10]}")


def report_failure(info):
    print(f"FAIL {info['desc']}: {info['error']}", file=sys.stderr)
    print(f"  folder (kept): {info['dir']}", file=sys.stderr)
    print(f"  listing of {info['work']}:\n{listing(info['work'])}", file=sys.stderr)
    side = os.path.join(info["work"], "side.log")
    if os.path.exists(side):
        with open(side, encoding="utf-8", errors="replace") as f:
            print("  side.log:\n" + "".join("    " + l for l in f), file=sys.stderr)
    for path in info["runner"].stderr_files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        lines = text.splitlines()
        if len(lines) > 60:
            lines = lines[:20] + [f"... ({len(lines) - 50} lines) ..."] + lines[-30:]
        print(f"  flowlua stderr, {os.path.basename(path)}:", file=sys.stderr)
        print("".join("    " + l + "\n" for l in lines), file=sys.stderr, end="")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("flowlua")
    ap.add_argument("--trials", type=int, default=56)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--keep", action="store_true", help="keep every trial's folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    flowlua = os.path.abspath(args.flowlua)
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="flowlua-crash-")
    duration, windows = calibrate(flowlua, base)
    rng = random.Random(args.seed)
    trials = plan(rng, args.trials, duration, windows)
    print(f"crash_resume: full run {duration * 1000:.0f} ms; big write "
          f"{windows['big-write'] * 1000:.0f} ms, streamed write "
          f"{windows['stream-write'] * 1000:.0f} ms; {len(trials)} trials in {base}")
    stats = {"phase": {"before record": 0, "during run": 0, "after finish": 0},
             "write_outcome": {f"{m}: {o}": 0 for m in sorted(windows)
                               for o in ("absent", "complete")},
             "exited_before_kill": 0, "resumes_ok": 0, "reruns_ok": 0,
             "finished_ok": 0, "kept": 0,
             "double": {"resume finished": 0, "killed before recording its run": 0,
                        "killed after recording its run": 0,
                        "kept tasks missing from its record": 0}, "from_journal": 0, "in_db": 0, "before": {}, "stale_temps": {}, "stale_temp_trials": 0}
    failures = []
    for idx, trial in enumerate(trials, 1):
        failed = run_trial(flowlua, base, idx, trial, stats)
        if failed:
            failures.append(failed)
            report_failure(failed)
        elif not args.keep:
            shutil.rmtree(os.path.join(base, f"trial-{idx:02d}-{trial[0]}"))
        if args.verbose:
            print(f"  trial {idx}: {trial[0]} {trial[1] * 1000:.1f} ms "
                  f"{'FAIL' if failed else 'ok'}", flush=True)
    elapsed = time.monotonic() - started
    ph = stats["phase"]
    print(f"crash_resume: {len(trials)} trials in {elapsed:.1f} s; kills by phase: "
          f"before record {ph['before record']} ("
          + ", ".join(f"{k} {v}" for k, v in sorted(stats["before"].items()))
          + f"), during run {ph['during run']}, "
          f"after finish {ph['after finish']} (of which the process had already "
          f"exited: {stats['exited_before_kill']}); resumes ok {stats['resumes_ok']} "
          f"(tasks kept {stats['kept']}: Success in the database "
          f"{stats['in_db']}, only in a journal {stats['from_journal']}), reruns ok {stats['reruns_ok']}, finished runs "
          f"ok {stats['finished_ok']}; resumes killed in their turn: "
          + ", ".join(f"{k} {v}" for k, v in stats["double"].items())
          + "; kills in big writes: "
          + ", ".join(f"{k} {v}" for k, v in stats["write_outcome"].items())
          + f"; temporary files left by killed writers: "
          f"{sum(stats['stale_temps'].values())} in {stats['stale_temp_trials']} trials ("
          + ", ".join(f"{k} {v}" for k, v in sorted(stats["stale_temps"].items()))
          + f"); failures {len(failures)}")
    if failures:
        print(f"crash_resume: FAILED {len(failures)} of {len(trials)} trials "
              f"(folders kept under {base})", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
