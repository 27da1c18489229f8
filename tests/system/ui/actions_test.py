#!/usr/bin/env python3
"""flowlua ui: its actions (start, resume, cancel) and the flows API, over HTTP.

Makes a real history with the built flowlua (flows 'adder', 'flaky' (which
fails until a file exists), 'slow' and the scheduled 'nightly'), starts
`flowlua ui --listen 127.0.0.1:0`, and checks with urllib:
  - /api/session: a CSRF token; /api/flows: every recorded flow with its
    script, defaults, schedule, next fire times (03:00 in Europe/Madrid)
    and recent runs;
  - a start with a param: 201 with the run's id and where it runs, the run
    in /api/runs at once, then Success with that param;
  - the refusals, none of which starts anything: no CSRF token, a wrong
    one, another site's Origin, a body that is not a form, a form over
    64 KiB, an unknown field, a bad param name, an unknown flow, a param
    value the flow refuses (the flow's own message), a script that someone
    else could change;
  - cancel: a run waiting in flow.sleep is Cancelled once asked (202), a
    second cancel is 409, an unknown run 404;
  - resume: the failed run of 'flaky', resumed once its file exists, ends
    Success as a new run that names the old one;
  - with --token: an action without it, or with another, is 401; with it,
    201.
With FLOWLUA_TEST_PG set (tests/support/pg/with_pg.py), the history is
that PostgreSQL server's. Prints "N passed, N failed"; exits 1 on a failure.

Usage: actions_test.py FLOWLUA_BINARY
"""
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_test import Ui, expect, results, STARTUP_LIMIT  # noqa: E402

FLOWS = {
    "adder.lua": """
local flow = require "flowlua"
local double = flow.task("double", function(n) return n * 2 end)
return flow.define("adder", { params = { n = 1, label = "x" } }, function(p)
  double(p.n)
end)
""",
    "flaky.lua": """
local flow = require "flowlua"
local check = flow.task("check", function(path)
  local f = io.open(path)
  if not f then error("not there yet: " .. path) end
  f:close()
  return true
end)
return flow.define("flaky", { params = { marker = "" } }, function(p)
  check(p.marker)
end)
""",
    "slow.lua": """
local flow = require "flowlua"
local wait = flow.task("wait", function(s) flow.sleep(s) return s end)
return flow.define("slow", { params = {
  seconds = flow.param.int(600, { min = 0 }),
  mode = flow.param.enum({ "full", "delta" }, "delta"),
  day = flow.param.date("2024-02-29"),
} }, function(p)
  wait(p.seconds)
end)
""",
    "nightly.lua": """
local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("nightly", {
  schedule = flow.cron("0 3 * * *", { tz = "Europe/Madrid" }),
}, function() t() end)
""",
}
# A safety net for a hung run, not a timing expectation: each wait ends
# at the state it waits for.
STATE_LIMIT = 120


def request(url, method=None, form=None, headers=None, body=None):
    data = body
    hdrs = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    method = method or ("POST" if data is not None else "GET")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=STARTUP_LIMIT) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"error": text}


def make_history(binary, work):
    state = os.environ.get("FLOWLUA_TEST_PG") or os.path.join(work, "state.db")
    for name, text in FLOWS.items():
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    marker = os.path.join(work, "marker")
    runs = (("adder.lua", [], 0), ("flaky.lua", ["--param", "marker=" + marker], 1),
            ("slow.lua", ["--param", "seconds=0"], 0), ("nightly.lua", ["--once"], 0))
    for name, extra, rc in runs:
        p = subprocess.run([binary, name, "--state", state, "--no-status", "--quiet",
                            *extra], cwd=work, capture_output=True, text=True)
        if p.returncode != rc:
            sys.exit(f"setting up: {name} exited {p.returncode}, not {rc}:\n{p.stderr}")
    # nightly's schedule switched off (flowlua pause): /api/flows says so.
    p = subprocess.run([binary, "pause", "nightly", "--state", state], cwd=work,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"setting up: pause nightly exited {p.returncode}:\n{p.stderr}")
    return state, marker


def run_of(base, run_id):
    code, run = request(base + "api/runs/" + run_id)
    return run if code == 200 else None


def wait_state(base, run_id, want):
    """The run once its state is one of want (None after STATE_LIMIT)."""
    deadline = time.monotonic() + STATE_LIMIT
    while time.monotonic() < deadline:
        run = run_of(base, run_id)
        if run and run["state"] in want:
            return run
        time.sleep(0.05)
    return run_of(base, run_id)


def check_flows(base):
    code, session = request(base + "api/session")
    expect(code == 200 and re.fullmatch(r"[0-9a-f]{64}", session.get("csrf", "")),
           "/api/session gives a CSRF token", session)
    expect(session.get("token_required") is False, "no token needed on loopback", session)
    code, page = request(base + "api/flows")
    flows = {f["name"]: f for f in page.get("flows", [])} if code == 200 else {}
    expect(sorted(flows) == ["adder", "flaky", "nightly", "slow"], "/api/flows: the four flows",
           sorted(flows))
    adder = flows.get("adder", {})
    expect(adder.get("params") == {"n": 1, "label": "x"}, "adder's defaults", adder.get("params"))
    expect(adder.get("script", "").endswith("/adder.lua") and adder.get("schedule") is None,
           "adder: its script, no schedule", adder)
    expect(len(adder.get("recent_runs", [])) == 1 and
           adder["recent_runs"][0]["state"] == "Success", "adder: its one run", adder)
    expect(adder.get("param_types") == {"n": {"type": "integer", "default": 1},
                                        "label": {"type": "string", "default": "x"}},
           "adder's params described by their defaults' types", adder.get("param_types"))
    slow = flows.get("slow", {})
    expect(slow.get("params") == {"seconds": 600, "mode": "delta", "day": "2024-02-29"},
           "slow's typed params: their defaults in params", slow.get("params"))
    expect(slow.get("param_types") == {
        "seconds": {"type": "integer", "default": 600, "min": 0},
        "mode": {"type": "enum", "default": "delta", "choices": ["full", "delta"]},
        "day": {"type": "date", "default": "2024-02-29"}},
        "slow's typed params described", slow.get("param_types"))
    nightly = flows.get("nightly", {})
    sched = nightly.get("schedule") or {}
    expect(sched.get("kind") == "cron" and sched.get("cron") == "0 3 * * *" and
           sched.get("timezone") == "Europe/Madrid", "nightly: its cron schedule", sched)
    fires = nightly.get("next_fires", [])
    expect(len(fires) == 5 and all(re.fullmatch(r"\d{4}-\d\d-\d\dT03:00:00\+0[12]:00", f)
                                   for f in fires),
           "nightly: its next 5 fires at 03:00 Madrid time", fires)
    expect(nightly.get("paused") is True and "flowlua pause" in nightly.get("paused_by", "")
           and re.fullmatch(r"\d{4}-.*Z", nightly.get("paused_since") or ""),
           "nightly: paused, since when and by whom", nightly)
    expect(adder.get("paused") is False and "paused_by" not in adder,
           "adder: not paused", adder)
    return session["csrf"]


def check_start(base, csrf):
    code, started = request(base + "api/flows/adder/start",
                            form={"csrf": csrf, "param.n": "21"})
    expect(code == 201 and re.fullmatch(r"[0-9a-f-]{36}", started.get("run_id", "")),
           "start: 201 with the run's id", (code, started))
    expect("pid" in started and "started by this UI" in started.get("where", ""),
           "start: says where the run runs", started)
    run_id = started.get("run_id", "")
    # In the history before the answer came: the list shows it at once.
    code, page = request(base + "api/runs?flow=adder")
    expect(code == 200 and run_id in [r["id"] for r in page.get("runs", [])],
           "the started run is listed at once", page)
    run = wait_state(base, run_id, ("Success", "Failed"))
    expect(run and run["state"] == "Success" and run["params"] == {"n": 21, "label": "x"},
           "the started run: Success with n = 21", run)


def check_refusals(base, csrf, work, state):
    def runs_now():
        return len(request(base + "api/runs?limit=500")[1].get("runs", []))
    before = runs_now()
    start = base + "api/flows/adder/start"
    cases = [
        ("no CSRF token", dict(form={"param.n": "2"}), 403, "CSRF"),
        ("a wrong CSRF token", dict(form={"csrf": "0" * 64}), 403, "CSRF"),
        ("another site's Origin", dict(form={"csrf": csrf},
                                       headers={"Origin": "http://evil.example"}), 403,
         "another site"),
        ("a JSON body", dict(body=b'{"csrf": "x"}',
                             headers={"Content-Type": "application/json"}), 400, "form"),
        ("a form over 64 KiB", dict(form={"csrf": csrf, "param.label": "x" * 70000}), 400,
         "64 KiB"),
        ("an unknown field", dict(form={"csrf": csrf, "n": "2"}), 400, "unknown field"),
        ("a bad param name", dict(form={"csrf": csrf, "param.a b": "2"}), 400,
         "unknown field"),
        ("a value the flow refuses", dict(form={"csrf": csrf, "param.n": "many"}), 422,
         "parameter 'n' must be an integer"),
        ("an unknown param", dict(form={"csrf": csrf, "param.zz": "1"}), 422,
         "has no parameter 'zz'"),
    ]
    for what, kw, status, words in cases:
        code, body = request(start, method="POST", **kw)
        expect(code == status and words in (body or {}).get("error", ""),
               f"start refused: {what} ({status})", (code, body))
    code, body = request(base + "api/flows/nope/start", form={"csrf": csrf})
    expect(code == 404 and "no recorded script" in body.get("error", ""),
           "start of an unknown flow: 404", (code, body))
    code, body = request(base + "api/runs/nope/frobnicate", form={"csrf": csrf})
    expect(code == 404, "an unknown action: 404", (code, body))
    if not os.environ.get("FLOWLUA_TEST_PG"):
        # A history that names a script others can change (a copied file,
        # a folder shared with a group) is not run from the UI.
        shared = os.path.join(work, "shared.lua")
        with open(shared, "w") as f:
            f.write(FLOWS["adder.lua"])
        os.chmod(shared, 0o664)
        with sqlite3.connect(state) as db:
            db.execute("UPDATE flow_def SET script = ? WHERE flow = 'adder'", (shared,))
        code, body = request(start, form={"csrf": csrf})
        expect(code == 409 and "only this user can change" in body.get("error", ""),
               "a group-writable script is refused (409)", (code, body))
        with sqlite3.connect(state) as db:
            db.execute("UPDATE flow_def SET script = ? WHERE flow = 'adder'",
                       (os.path.join(work, "adder.lua"),))
        # A hostile schedule (a copied history): reported, never trusted.
        hostile = (('{"kind":"cron","cron":"61 * * * *","timezone":"UTC"}', "minute"),
                   ('{"kind":"cron","cron":"0 3 * * *","timezone":"../../etc/passwd"}',
                    "passwd"),
                   ('{"kind":"interval","every":-5}', "positive"),
                   ('{"kind":"warp"}', "kind"),
                   ('[1,2]', "kind"))
        for sched, words in hostile:
            with sqlite3.connect(state) as db:
                db.execute("UPDATE flow_def SET schedule = ? WHERE flow = 'nightly'",
                           (sched,))
            code, page = request(base + "api/flows")
            nightly = [f for f in page.get("flows", []) if f["name"] == "nightly"]
            err = nightly[0].get("next_fires_error", "") if nightly else ""
            expect(code == 200 and words in err and "next_fires" not in nightly[0],
                   f"a hostile schedule {sched}: next_fires_error", (code, nightly))
    expect(runs_now() == before, "no refused action started a run", (before, runs_now()))


def check_cancel(base, csrf):
    code, started = request(base + "api/flows/slow/start", form={"csrf": csrf})
    expect(code == 201, "start of 'slow'", (code, started))
    run_id = started.get("run_id", "")
    run = wait_state(base, run_id, ("Running",))
    expect(run and run["state"] == "Running", "slow is Running", run)
    code, body = request(base + f"api/runs/{run_id}/cancel", form={"csrf": csrf})
    expect(code == 202 and body.get("run_id") == run_id, "cancel: 202", (code, body))
    run = wait_state(base, run_id, ("Cancelled", "Success", "Failed"))
    expect(run and run["state"] == "Cancelled", "slow ends Cancelled", run)
    code, body = request(base + f"api/runs/{run_id}/cancel", form={"csrf": csrf})
    expect(code == 409 and "not Running" in body.get("error", ""),
           "a second cancel: 409", (code, body))
    code, body = request(base + "api/runs/00000000-0000-4000-8000-000000000000/cancel",
                         form={"csrf": csrf})
    expect(code == 404, "cancel of an unknown run: 404", (code, body))


def check_resume(base, csrf, marker):
    code, page = request(base + "api/runs?flow=flaky&state=Failed")
    failed = page.get("runs", [{}])[0].get("id", "") if code == 200 and page.get("runs") else ""
    expect(bool(failed), "the failed run of flaky", page)
    open(marker, "w").close()
    code, started = request(base + f"api/runs/{failed}/resume",
                            form={"csrf": csrf, "flow": "flaky"})
    expect(code == 201, "resume: 201", (code, started))
    run = wait_state(base, started.get("run_id", ""), ("Success", "Failed"))
    expect(run and run["state"] == "Success" and run["resumed_from"] == failed,
           "the resumed run: Success, resumed from the failed one", run)
    code, body = request(base + f"api/runs/{failed}/resume", form={"csrf": csrf})
    expect(code == 400 and "field flow" in body.get("error", ""),
           "a resume without its flow: 400", (code, body))


def check_token(binary, state):
    ui = Ui(binary, ["--state", state, "--listen", "127.0.0.1:0", "--token", "s3cret"])
    base = ui.wait_listening()
    expect(base is not None, "flowlua ui --token listens", ui.lines)
    if base:
        code, session = request(base + "api/session")
        expect(session.get("token_required") is True, "the session says a token is needed",
               session)
        csrf = session.get("csrf", "")
        start = base + "api/flows/adder/start"
        for what, headers in (("none", {}), ("another", {"Authorization": "Bearer nope"}),
                              ("not Bearer", {"Authorization": "Basic s3cret"})):
            code, body = request(start, form={"csrf": csrf}, headers=headers)
            expect(code == 401 and "token" in body.get("error", ""),
                   f"with --token, an action with {what} is 401", (code, body))
        code, body = request(start, form={"csrf": csrf},
                             headers={"Authorization": "Bearer s3cret"})
        expect(code == 201, "with the token: 201", (code, body))
        if code == 201:
            wait_state(base, body["run_id"], ("Success", "Failed"))
    rc, log = ui.stop()
    expect(rc == 0, "flowlua ui --token stops with 0", (rc, log))
    expect("s3cret" not in log, "the token never reaches the log", log)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="flowlua-ui-actions-") as work:
        state, marker = make_history(binary, work)
        ui = Ui(binary, ["--state", state, "--listen", "127.0.0.1:0"])
        base = ui.wait_listening()
        expect(base is not None, "flowlua ui listens", ui.lines)
        if base:
            csrf = check_flows(base)
            check_start(base, csrf)
            check_refusals(base, csrf, work, state)
            check_cancel(base, csrf)
            check_resume(base, csrf, marker)
        rc, log = ui.stop()
        expect(rc == 0, "flowlua ui stops with 0 on SIGTERM", (rc, log))
        check_token(binary, state)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
