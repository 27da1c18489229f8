#!/usr/bin/env python3
"""Fault injection: flowlua against a server that fails half its requests.

    run.py FLOWLUA [--runs 100] [--few-runs 10] [--jobs 4] [--seed S]
                   [--timeout 1]

tests/system/fault/chaos_server.py serves item documents and, for about
half the requests, fails instead: 500s, 503s with and without Retry-After,
connections reset in the headers or the body, stalls longer than the
task's timeout, bodies cut short under a full Content-Length or a chunked
encoding, garbage under 200, an HTML page, another item's document.
tests/system/fault/fetch_items.lua fetches 50 items through a task:map, checks
and summarises each, writes one file per item with flow.fs and then one
CSV of all with flow.csv.

--runs runs with 12 retries: the server never fails one item more than 10
times in a row, so every run must succeed and every file must hold exactly
the bytes this driver computes from the documents. Then --few-runs runs
each with 0 and with 1 retry: every run must exit 1, and for every item
the history must agree with what the server did (the server logs each
request and the fault it chose):
  - an item succeeded exactly when its last request was answered, and an
    answered request was always its last (no retry after a good answer);
  - it made one attempt per request the server saw, at most retries + 1;
  - an item that ran out of attempts ended TimedOut when its last request
    stalled, Failed otherwise, never Running, Retrying or Pending;
  - each failed attempt's recorded error names its fault;
  - a 503 with Retry-After: 1 delayed the next attempt by at least 1 s;
  - exactly the succeeded items have their file, with exact bytes; the
    CSV exists only when all did; no temporary file is left anywhere;
  - the exit code, the run's state and `flowlua show last --json` agree.
Runs go --jobs at a time, each in a fresh folder with its own history.

The server's seed is printed first; --seed (or FLOWLUA_FAULT_SEED) replays
the same faults. Exits 1 when any run breaks a rule, after printing each
problem with the run's folder kept for inspection.
"""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chaos_server  # noqa: E402  (document() and FAULTS: the server's own)

FLOW = os.path.join(HERE, "fetch_items.lua")
ITEMS = 50
ENOUGH_RETRIES = 12
MAX_STREAK = 10  # < ENOUGH_RETRIES + 1: the server gives in first
SERVER_START_LIMIT = 120  # seconds: no deadline for a start, an end to a hang
HEADER = ["id", "name", "count", "total", "min", "max", "weight"]

# What a failed attempt's recorded error must say, per fault.
ERROR_WORDS = {
    "http_500": "HTTP 500",
    "http_503": "HTTP 503",
    "http_503_retry_after": "HTTP 503",
    "reset_in_headers": "connection reset",
    "reset_in_body": "connection reset",
    "stall": "timed out",
    "truncated": "truncated body",
    "garbage": "the response body is not JSON",
    "wrong_content_type": "expected application/json, got text/html",
    "chunked_cut": "truncated body",
    "wrong_document": "the server sent the document of item",
}
assert set(ERROR_WORDS) == set(chaos_server.FAULTS)

FINAL_STATES = {"Success", "Failed", "TimedOut", "TriggerFailed"}


# ---- what the flow must write, computed here from the documents ----------

def summary(item_id):
    doc = chaos_server.document(item_id)
    values = doc["values"]
    return {"id": item_id, "name": doc["name"], "count": len(values),
            "total": sum(values), "min": min(values), "max": max(values),
            "weight": "%.2f" % doc["weight"]}


def item_bytes(item_id):
    s = summary(item_id)
    return "".join(f"{k}: {s[k]}\n" for k in HEADER).encode("utf-8")


def csv_field(value):
    """RFC 4180 with minimal quoting, as DESIGN.md promises."""
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_bytes():
    lines = [",".join(HEADER)]
    for i in range(1, ITEMS + 1):
        s = summary(i)
        lines.append(",".join(csv_field(s[k]) for k in HEADER))
    return ("\n".join(lines) + "\n").encode("utf-8")


def item_file(item_id):
    return f"item-{item_id:03d}.txt"


# ---- the server ------------------------------------------------------------

class ChaosServer:
    def __init__(self, seed, stall, workdir):
        self.port_file = os.path.join(workdir, "chaos.port")
        self.err = open(os.path.join(workdir, "chaos.err"), "w+b")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "chaos_server.py"),
             "--port-file", self.port_file, "--seed", str(seed),
             "--max-streak", str(MAX_STREAK), "--stall", str(stall),
             "--max-seconds", "900", "--exit-with-parent"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err)
        # Its port file appears once it listens: wait for it as long as the
        # server lives (a loaded machine starts it late), fail at once if
        # it exits; the limit only ends a server that hangs.
        limit = time.monotonic() + SERVER_START_LIMIT
        while not os.path.exists(self.port_file):
            try:
                code = self.proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                if time.monotonic() <= limit:
                    continue
                why = f"still running but wrote no port after {SERVER_START_LIMIT} s"
            else:
                why = f"exited with code {code} before writing its port"
            said = self.stderr()
            self.stop()
            raise SystemExit(f"run.py: the chaos server {why}:\n" + said)
        with open(self.port_file) as f:
            self.base = f"http://127.0.0.1:{int(f.read())}"

    def log(self, run):
        with urllib.request.urlopen(f"{self.base}/log/{run}", timeout=30) as r:
            return {int(k): v for k, v in json.load(r).items()}

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.err.close()


# ---- one run and its checks ------------------------------------------------

def run_flow(flowlua, server, run, retries, timeout, workdir):
    """Runs the flow once in workdir; returns (exit code, stderr, seconds)."""
    os.mkdir(os.path.join(workdir, "out"))
    env = dict(os.environ, FAULT_RETRIES=str(retries), FAULT_RETRY_DELAY="0.01",
               FAULT_TIMEOUT=str(timeout))
    started = time.monotonic()
    try:
        done = subprocess.run(
            [flowlua, FLOW, "--param", f"base={server.base}", "--param", f"run={run}",
             "--param", f"n={ITEMS}"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=90)
    except subprocess.TimeoutExpired as e:
        return None, (e.stderr or b"").decode("utf-8", "replace"), 90.0
    return done.returncode, done.stderr.decode("utf-8", "replace"), time.monotonic() - started


def history(flowlua, workdir):
    """`flowlua show last --json`, and each task run's state changes from
    the state file: {key: [(state, attempt, error), ...]}."""
    shown = subprocess.run([flowlua, "show", "last", "--json"], cwd=workdir,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if shown.returncode != 0:
        raise RuntimeError("flowlua show last --json exited %d: %s" % (
            shown.returncode, shown.stderr.decode("utf-8", "replace")))
    db = sqlite3.connect(os.path.join(workdir, ".flowlua", "state.db"))
    try:
        changes = {}
        for key, state, attempt, error in db.execute(
                "SELECT t.key, h.state, h.attempt, h.error FROM task_history h"
                " JOIN task_run t ON t.run = h.run AND t.n = h.n ORDER BY t.key, h.seq"):
            changes.setdefault(key, []).append((state, attempt, error))
    finally:
        db.close()
    return json.loads(shown.stdout), changes


def check_item(item_id, requests, task, changes, retries, problems):
    """One item: what the server did against what the history says.
    Returns whether the item succeeded."""
    key = f"item[{item_id}]"
    faults = [r["fault"] for r in requests]
    answered = bool(faults) and faults[-1] == "ok"
    if "ok" in faults[:-1]:
        problems.append(f"{key}: attempted again after a good answer (server saw {faults})")
    if task is None:
        problems.append(f"{key}: not in the history")
        return False
    want_state = "Success" if answered else ("TimedOut" if faults and faults[-1] == "stall"
                                             else "Failed")
    if task["state"] != want_state:
        problems.append(f"{key}: state {task['state']}, expected {want_state} "
                        f"(server saw {faults})")
    if task["attempts"] != len(requests):
        problems.append(f"{key}: {task['attempts']} attempts recorded, the server saw "
                        f"{len(requests)} requests ({faults})")
    if len(requests) > retries + 1:
        problems.append(f"{key}: {len(requests)} requests with {retries} retries")
    if not answered and len(requests) != retries + 1:
        problems.append(f"{key}: gave up after {len(requests)} of {retries + 1} attempts")
    if answered and task["error"] is not None:
        problems.append(f"{key}: Success with an error in the history: "
                        f"{task['error'].splitlines()[0]!r}")
    # Each failed attempt ends in one recorded change that holds its error.
    ended = {}
    for state, attempt, error in changes:
        if state in ("Retrying", "Failed", "TimedOut"):
            ended.setdefault(attempt, error or "")
    for n, fault in enumerate(faults, 1):
        if fault == "ok":
            continue
        words = ERROR_WORDS[fault]
        if words not in ended.get(n, ""):
            problems.append(f"{key}: attempt {n} met '{fault}', its recorded error "
                            f"does not say '{words}': {ended.get(n)!r}")
    for before, after in zip(requests, requests[1:]):
        gap = after["at"] - before["at"]
        if before["fault"] == "http_503_retry_after" and \
                gap < chaos_server.RETRY_AFTER_SECONDS - 0.05:
            problems.append(f"{key}: attempt {after['n']} came {gap:.3f} s after a "
                            f"503 with Retry-After: {chaos_server.RETRY_AFTER_SECONDS}")
    return task["state"] == "Success"


def check_outputs(workdir, succeeded, problems):
    out = os.path.join(workdir, "out")
    expected = {item_file(i): item_bytes(i) for i in succeeded}
    if len(succeeded) == ITEMS:
        expected["items.csv"] = csv_bytes()
    present = set(os.listdir(out))
    for name in sorted(present - set(expected)):
        problems.append(f"out/{name}: must not exist" +
                        (" (a temporary file left behind)" if name.startswith(".") else ""))
    for name in sorted(set(expected) - present):
        problems.append(f"out/{name}: missing")
    for name in sorted(present & set(expected)):
        with open(os.path.join(out, name), "rb") as f:
            got = f.read()
        if got != expected[name]:
            problems.append(f"out/{name}: wrong bytes\n--- expected ---\n"
                            f"{expected[name].decode()[:1500]}\n--- got ---\n"
                            f"{got.decode('utf-8', 'replace')[:1500]}")


def check_run(flowlua, server, run, retries, timeout, workdir):
    """Runs and checks one flow run; returns (problems, stats)."""
    code, stderr, seconds = run_flow(flowlua, server, run, retries, timeout, workdir)
    stats = {"seconds": seconds, "faults": {}, "requests": 0, "items_ok": 0}
    if code is None:
        return [f"flowlua did not finish within 90 s (killed)\n{stderr[-3000:]}"], stats
    problems = []
    if "Sanitizer" in stderr or "runtime error:" in stderr:
        problems.append("a sanitizer report:\n" + stderr[-6000:])
    log = server.log(run)
    shown, changes = history(flowlua, workdir)
    tasks = {t["key"]: t for t in shown["tasks"]}
    for t in shown["tasks"]:
        if t["state"] not in FINAL_STATES:
            problems.append(f"{t['key']}: left in state {t['state']}")
    succeeded = []
    for i in range(1, ITEMS + 1):
        requests = log.get(i, [])
        stats["requests"] += len(requests)
        for r in requests:
            if r["fault"] != "ok":
                stats["faults"][r["fault"]] = stats["faults"].get(r["fault"], 0) + 1
        if check_item(i, requests, tasks.get(f"item[{i}]"), changes.get(f"item[{i}]", []),
                      retries, problems):
            succeeded.append(i)
    stats["items_ok"] = len(succeeded)
    all_ok = len(succeeded) == ITEMS
    for key, want in (("item", "Success" if all_ok else "Failed"),
                      ("combine", "Success" if all_ok else "TriggerFailed")):
        got = tasks.get(key, {}).get("state")
        if got != want:
            problems.append(f"{key}: state {got}, expected {want}")
    want_run, want_code = ("Success", 0) if all_ok else ("Failed", 1)
    if shown["state"] != want_run:
        problems.append(f"the run is {shown['state']} in the history, expected {want_run}")
    if code != want_code:
        problems.append(f"flowlua exited {code}, expected {want_code}")
    check_outputs(workdir, succeeded, problems)
    if problems:
        problems.append("--- flowlua stderr (end) ---\n" + stderr[-4000:])
    return problems, stats


# ---- the suite -------------------------------------------------------------

def run_phase(flowlua, server, name, retries, count, args, scratch):
    """count runs with the given retries, args.jobs at a time."""
    def one(k):
        run = f"{name}-{k}"
        workdir = os.path.join(scratch, run)
        os.mkdir(workdir)
        try:
            problems, stats = check_run(flowlua, server, run, retries, args.timeout, workdir)
        except (OSError, RuntimeError, ValueError, KeyError, sqlite3.Error) as e:
            # A history that cannot be read back is a failure of the run.
            problems = [f"checking the run failed: {type(e).__name__}: {e}"]
            stats = {"seconds": 0.0, "faults": {}, "requests": 0, "items_ok": 0}
        if not problems:
            shutil.rmtree(workdir, ignore_errors=True)
        return run, workdir, problems, stats

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return list(pool.map(one, range(1, count + 1)))


def report(name, retries, results, expect_success):
    runs_ok = sum(1 for *_, s in results if s["items_ok"] == ITEMS)
    items_ok = sum(s["items_ok"] for *_, s in results)
    requests = sum(s["requests"] for *_, s in results)
    faults = {}
    for *_, s in results:
        for k, v in s["faults"].items():
            faults[k] = faults.get(k, 0) + v
    injected = sum(faults.values())
    clean = sum(1 for _, _, p, _ in results if not p)
    slowest = max((s["seconds"] for *_, s in results), default=0)
    print(f"{name}: retries={retries}: {runs_ok}/{len(results)} runs succeeded, "
          f"{items_ok}/{len(results) * ITEMS} items; {clean}/{len(results)} runs "
          f"as expected ({'all must succeed' if expect_success else 'failures must be clean'}); "
          f"{requests} requests, {injected} faults "
          f"({100.0 * injected / max(1, requests):.0f}%); slowest run {slowest:.2f} s")
    print("  faults: " + ", ".join(f"{k} {faults[k]}" for k in sorted(faults)))
    bad = 0
    for run, workdir, problems, stats in results:
        if expect_success and stats["items_ok"] != ITEMS and not problems:
            problems = [f"only {stats['items_ok']} of {ITEMS} items succeeded"]
        if problems:
            bad += 1
            print(f"FAIL {run} (kept in {workdir})")
            for p in problems:
                print("  " + p.replace("\n", "\n  "))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("flowlua")
    ap.add_argument("--runs", type=int, default=100, help="runs with enough retries")
    ap.add_argument("--few-runs", type=int, default=10,
                    help="runs with 0 retries, and as many with 1")
    ap.add_argument("--jobs", type=int, default=4, help="runs at once")
    ap.add_argument("--seed", type=int,
                    default=int(os.environ["FLOWLUA_FAULT_SEED"])
                    if os.environ.get("FLOWLUA_FAULT_SEED") else None)
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="each attempt's timeout in seconds (default 1)")
    args = ap.parse_args()
    flowlua = os.path.abspath(args.flowlua)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)
    print(f"fault injection: seed {seed} (FLOWLUA_FAULT_SEED={seed} replays it), "
          f"{ITEMS} items per run, {args.jobs} runs at once", flush=True)

    scratch = tempfile.mkdtemp(prefix="flowlua-fault-")
    started = time.monotonic()
    server = ChaosServer(seed, stall=args.timeout + 1.5, workdir=scratch)
    bad = 0
    try:
        for name, retries, count, expect_success in (
                ("enough", ENOUGH_RETRIES, args.runs, True),
                ("none", 0, args.few_runs, False),
                ("one", 1, args.few_runs, False)):
            results = run_phase(flowlua, server, name, retries, count, args, scratch)
            bad += report(name, retries, results, expect_success)
            sys.stdout.flush()
    finally:
        server.stop()
    print(f"{time.monotonic() - started:.1f} s in all; seed {seed}")
    if bad:
        print(f"{bad} runs broke a rule; their folders are kept under {scratch}")
        sys.exit(1)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
