#!/usr/bin/env python3
"""flowlua ui: a task run's JSON (/api/runs/ID/tasks/KEY) and page
(/runs/ID/tasks/KEY), over HTTP.

Makes a history with the built flowlua: flow 'logs', whose task 'say <b>'
logs lines holding HTML and a secret, fails its first attempt and
succeeds its second; a map 'each' whose elements' keys hold '[' and ']';
and a task named 'a/b#c' (a '/' and a '#' in its key). Then checks:
  - /api/runs/ID/tasks/KEY: the task run as `flowlua show --json` lists
    it, plus "run" and "events" (every state change, in order), its log
    lines of both attempts, the secret masked, the HTML as text;
  - KEY percent-encoded ('%5B', '%2F', '%23') and as the rest of the path;
  - an unknown key and an unknown run: 404 with a JSON error naming them;
  - /runs/ID/tasks/KEY: the static page task.html (its script task.js),
    holding nothing of the history (no HTML of the log reaches a page);
  - the headers every answer carries.
With FLOWLUA_TEST_PG set, the history is that PostgreSQL server's. Prints
"N passed, N failed"; exits 1 on a failure.

Usage: task_test.py FLOWLUA_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_test  # noqa: E402  (its server handle and checks)
from api_test import Ui, api_json, check_headers, expect, get  # noqa: E402

FLOW = """
local flow = require "flowlua"
local tries = 0
local say = flow.task("say <b>", { retries = 1, retry_delay = 0 }, function()
  tries = tries + 1
  local token = flow.secret("UI_TOKEN_SECRET")
  flow.log.info("try %d: <script>alert(1)</script> & sent %s", tries, token)
  flow.log.warn("second line of try %d", tries)
  if tries == 1 then error("first try fails <i>") end
  return tries
end)
local each = flow.task("each", function(x)
  flow.log.info("element %s", x)
  return x
end)
local odd = flow.task("a/b#c", function() flow.log.error("odd key") end)
return flow.define("logs", {}, function()
  say()
  each:map({ 1, 2 })
  odd()
end)
"""
SECRET = "p4ss-W0rd-9"


def quoted(key):
    return urllib.parse.quote(key, safe="")


def check_task(base, run_id, shown):
    say = api_json(base, f"/api/runs/{run_id}/tasks/{quoted('say <b>')}")
    want = next(t for t in shown["tasks"] if t["key"] == "say <b>")
    for field, value in want.items():
        expect(say.get(field) == value,
               f"the task run's {field} is show --json's", (say.get(field), value))
    expect(say.get("run") == run_id, "\"run\" is the run's id", say.get("run"))
    states = [(e["state"], e["attempt"]) for e in say.get("events", [])]
    expect(states == [("Running", 1), ("Retrying", 1), ("Running", 2), ("Success", 2)],
           "events: every state change in order", states)
    expect([e["seq"] for e in say.get("events", [])] == sorted(e["seq"] for e in say.get("events", [])),
           "events in seq order", say.get("events"))
    retry = [e for e in say.get("events", []) if e["state"] == "Retrying"]
    expect(retry and "first try fails <i>" in (retry[0]["error"] or ""),
           "the failed attempt's error, with its HTML as text", retry)
    lines = [(l["attempt"], l["level"], l["line"]) for l in say.get("logs", [])]
    expect(lines == [(1, "INFO", "try 1: <script>alert(1)</script> & sent ***"),
                     (1, "WARN", "second line of try 1"),
                     (2, "INFO", "try 2: <script>alert(1)</script> & sent ***"),
                     (2, "WARN", "second line of try 2")],
           "both attempts' lines, the secret masked", lines)
    expect("logs_dropped" not in say, "nothing dropped: no logs_dropped", say)
    expect(SECRET not in json.dumps(say), "the secret is nowhere in the answer", say)
    # Keys with '[', ']', '/' and '#', percent-encoded or not.
    for key, path in (("each[2]", quoted("each[2]")), ("each[1]", "each[1]"),
                      ("a/b#c", quoted("a/b#c")), ("a/b#c", "a/b%23c")):
        t = api_json(base, f"/api/runs/{run_id}/tasks/{path}")
        expect(t.get("key") == key, f"/tasks/{path} is task run {key}", t)
    t = api_json(base, f"/api/runs/{run_id}/tasks/{quoted('each[2]')}")
    expect([l["line"] for l in t.get("logs", [])] == ["element 2"],
           "a map element's own lines", t.get("logs"))
    # Unknown: a JSON 404 naming what is missing.
    missing = api_json(base, f"/api/runs/{run_id}/tasks/nope", status=404)
    expect("no task run 'nope'" in missing.get("error", ""),
           "an unknown key: 404 naming it", missing)
    missing = api_json(base, "/api/runs/ffffffff/tasks/say", status=404)
    expect("ffffffff" in missing.get("error", ""), "an unknown run: 404 naming it", missing)
    # The page: static, its own script, nothing of the history in it.
    code, headers, page = get(base + f"runs/{run_id}/tasks/{quoted('say <b>')}")
    expect(code == 200 and headers.get("Content-Type", "").startswith("text/html"),
           "the task run's page is HTML", (code, headers.get("Content-Type")))
    check_headers(headers, "the task run's page", api=False)
    expect('src="/static/task.js"' in page, "the page runs task.js", page[:400])
    expect("<script>alert" not in page and "try 1" not in page and SECRET not in page,
           "the page holds nothing of the history", page[:400])
    code, headers, js = get(base + "static/task.js")
    expect(code == 200 and "javascript" in headers.get("Content-Type", ""),
           "task.js is served", (code, headers.get("Content-Type")))
    expect("textContent" in js and "innerHTML" not in js,
           "task.js writes the history as text, never as HTML", None)
    code, _, _ = get(base + f"runs/{run_id}/tasks/")
    expect(code == 404, "/runs/ID/tasks/ without a key is not found", code)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    env = dict(os.environ, UI_TOKEN_SECRET=SECRET)
    env.pop("FLOWLUA_UI_TOKEN", None)
    with tempfile.TemporaryDirectory(prefix="flowlua-ui-task-") as work:
        state = os.environ.get("FLOWLUA_TEST_PG") or os.path.join(work, "state.db")
        with open(os.path.join(work, "logs.lua"), "w") as f:
            f.write(FLOW)
        p = subprocess.run([binary, "logs.lua", "--state", state, "--no-status", "--quiet"],
                           cwd=work, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"setting up: logs.lua exited {p.returncode}:\n{p.stderr}")
        shown = json.loads(subprocess.run([binary, "show", "last", "--json", "--state", state],
                                          capture_output=True, text=True, check=True,
                                          cwd=work).stdout)
        ui = Ui(binary, ["--state", state, "--listen", "127.0.0.1:0"], env=env)
        base = ui.wait_listening()
        if not base:
            rc, err = ui.stop()
            sys.exit(f"flowlua ui did not listen (exit {rc}):\n{err}")
        try:
            check_task(base, shown["id"], shown)
        finally:
            rc, err = ui.stop()
            expect(rc == 0, "SIGTERM stops it with exit 0", (rc, err))
    r = api_test.results
    print(f"{r['passed']} passed, {r['failed']} failed")
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
