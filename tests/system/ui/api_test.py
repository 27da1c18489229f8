#!/usr/bin/env python3
"""flowlua ui: its JSON API, its pages' safety and its refusals, over HTTP.

Makes a real SQLite history with the built flowlua (flow 'good' twice,
then flow 'bad', whose task fails with HTML in its error and in its name),
starts `flowlua ui --listen 127.0.0.1:0`, waits for its "listening on"
line, and checks with urllib:
  - /api/runs: newest first, filtered by flow and by state, limit, paging
    with next_before through every run once; bad filters are 400 with a
    JSON error;
  - /api/runs/ID (and "last"): the run as `flowlua show --json` gives it;
    an unknown run is 404;
  - every response carries the CSP, nosniff, no-referrer; the API's
    no-store;
  - no page holds the error's HTML (the pages are static and their script
    writes history text with textContent);
  - /static/ serves the compiled-in assets and nothing else (../, %2e%2e,
    unknown names: 404); PUT is 405, a POST without a form 400;
  - SIGTERM stops it with exit 0 (and, under the sanitizers, no leak).
Then the refusals: beyond loopback without a token (exit 2), a port in
use, a missing history, a file that is not a history, no libmicrohttpd
(exit 1).

With FLOWLUA_TEST_PG set (tests/support/pg/with_pg.py), the history is
that PostgreSQL server's. No browser yet. Prints "N passed, N failed"; exits 1 on a failure.

Usage: api_test.py FLOWLUA_BINARY
"""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

OK_FLOW = """
local flow = require "flowlua"
local a = flow.task("a", function(n) return n end)
local b = flow.task("b <i>", function(x) return x + 1 end)
return flow.define("good", { params = { n = 1 } }, function(p) b(a(p.n)) end)
"""
BAD_FLOW = """
local flow = require "flowlua"
local boom = flow.task("boom <b>", function()
  error("bad <script>alert(1)</script> & more")
end)
return flow.define("bad", {}, function() boom() end)
"""
SCRIPT = "<script>alert(1)</script>"
LISTENING = re.compile(r"^flowlua ui: listening on (http://\S+/)$")
# A safety net for a hung process, not a timing expectation.
STARTUP_LIMIT = 60

results = {"passed": 0, "failed": 0}


def expect(ok, what, got=None):
    if ok:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print(f"FAIL: {what}" + (f"\n      got: {got!r}" if got is not None else ""))


class Ui:
    """A running `flowlua ui`, its stderr read line by line on a thread."""

    def __init__(self, binary, args, env=None):
        self.proc = subprocess.Popen([binary, "ui", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self.url = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.lines.append(line)
            m = LISTENING.match(line)
            if m and not self.url:
                self.url = m.group(1)
                self.ready.set()
        self.ready.set()  # ended without listening

    def wait_listening(self):
        self.ready.wait(STARTUP_LIMIT)
        return self.url

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(STARTUP_LIMIT)
        self.reader.join(STARTUP_LIMIT)
        return rc, "\n".join(self.lines)


def get(url, method="GET"):
    """(status, headers, body) of a request, errors included."""
    req = urllib.request.Request(url.replace("//", "/").replace(":/", "://", 1),
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=STARTUP_LIMIT) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


def raw_get(base, path):
    """A GET with the path sent byte for byte (urllib would not touch it
    either, but http.client makes that certain)."""
    import http.client
    host, port = base[len("http://"):-1].rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=STARTUP_LIMIT)
    c.putrequest("GET", path, skip_accept_encoding=True)
    c.endheaders()
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, r.headers, body


def make_history(binary, work):
    # On a PostgreSQL history when run by with_pg.py (pg/ui_api), else in
    # a SQLite file.
    state = os.environ.get("FLOWLUA_TEST_PG") or os.path.join(work, "state.db")
    for name, text in (("ok.lua", OK_FLOW), ("bad.lua", BAD_FLOW)):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    for name, rc in (("ok.lua", 0), ("ok.lua", 0), ("bad.lua", 1)):
        p = subprocess.run([binary, name, "--state", state, "--no-status", "--quiet"],
                           cwd=work, capture_output=True, text=True)
        if p.returncode != rc:
            sys.exit(f"setting up: {name} exited {p.returncode}, not {rc}:\n{p.stderr}")
    shown = subprocess.run([binary, "runs", "--json", "--state", state],
                           capture_output=True, text=True, check=True)
    return state, json.loads(shown.stdout)


def check_headers(headers, what, api):
    csp = headers.get("Content-Security-Policy", "")
    expect("default-src 'self'" in csp and "unsafe-inline" not in csp,
           f"{what}: a CSP of 'self' without inline script", csp)
    expect(headers.get("X-Content-Type-Options") == "nosniff", f"{what}: nosniff",
           headers.get("X-Content-Type-Options"))
    expect(headers.get("Referrer-Policy") == "no-referrer", f"{what}: no-referrer",
           headers.get("Referrer-Policy"))
    if api:
        expect(headers.get("Cache-Control") == "no-store", f"{what}: no-store",
               headers.get("Cache-Control"))


def api_json(base, path, status=200):
    code, headers, body = get(base + path)
    expect(code == status, f"GET {path} is {status}", (code, body[:300]))
    expect(headers.get("Content-Type", "").startswith("application/json"),
           f"GET {path} is JSON", headers.get("Content-Type"))
    check_headers(headers, f"GET {path}", api=True)
    try:
        return json.loads(body)
    except ValueError:
        expect(False, f"GET {path}: the body is JSON", body[:300])
        return {}


def check_runs(base, runs):
    ids = [r["id"] for r in runs]  # `flowlua runs --json`: newest first
    page = api_json(base, "/api/runs")
    expect([r["id"] for r in page.get("runs", [])] == ids,
           "/api/runs lists every run, newest first, as `runs --json`",
           page)
    expect(page.get("runs") == runs, "/api/runs's rows are `runs --json`'s rows",
           page.get("runs"))
    expect(page.get("next_before") is None, "one page: no next_before", page.get("next_before"))
    good = api_json(base, "/api/runs?flow=good")
    expect([r["flow"] for r in good.get("runs", [])] == ["good", "good"],
           "flow=good: the two runs of flow good", good)
    failed = api_json(base, "/api/runs?state=Failed")
    expect([(r["flow"], r["state"]) for r in failed.get("runs", [])] == [("bad", "Failed")],
           "state=Failed: the one failed run", failed)
    both = api_json(base, "/api/runs?flow=good&state=Failed")
    expect(both.get("runs") == [], "flow=good&state=Failed: none", both)
    none = api_json(base, "/api/runs?flow=nothing%20here")
    expect(none.get("runs") == [], "an unknown flow: an empty list", none)
    # Paging one run at a time walks every run once, in order.
    seen, before = [], None
    for _ in range(len(ids) + 1):
        page = api_json(base, "/api/runs?limit=1" + (f"&before={before}" if before else ""))
        seen += [r["id"] for r in page.get("runs", [])]
        before = page.get("next_before")
        if not before:
            break
    expect(seen == ids, "limit=1 paging with next_before: every run once, in order", seen)
    two = api_json(base, "/api/runs?limit=2")
    expect(len(two.get("runs", [])) == 2 and two.get("next_before") == ids[1],
           "limit=2: two runs, next_before the second", two)


def check_bad_filters(base):
    for query, why in (("state=Nope", "not a run state"),
                       ("state=failed", "not a run state"),
                       ("limit=0", "limit"), ("limit=501", "limit"),
                       ("limit=abc", "limit"), ("limit=-1", "limit"),
                       ("flow=", "empty"), ("flow", "empty"),
                       ("colour=red", "unknown parameter"),
                       ("flow=a&flow=b", "twice"),
                       ("before=no-such-run", "no run 'no-such-run'")):
        body = api_json(base, "/api/runs?" + query, status=400)
        expect(why in str(body.get("error", "")), f"?{query}: the error says '{why}'", body)


def check_run(base, binary, state, runs):
    bad_id = runs[0]["id"]
    shown = subprocess.run([binary, "show", bad_id, "--json", "--state", state],
                           capture_output=True, text=True, check=True)
    run = api_json(base, "/api/runs/" + bad_id)
    expect(run == json.loads(shown.stdout), "/api/runs/ID is `show --json`", run)
    tasks = run.get("tasks", [])
    expect(len(tasks) == 1 and SCRIPT in (tasks[0].get("error") or ""),
           "the failed task's error, as recorded (the API keeps it raw: JSON)", tasks)
    last = api_json(base, "/api/runs/last")
    expect(last.get("id") == bad_id, "/api/runs/last is the newest run", last.get("id"))
    missing = api_json(base, "/api/runs/no-such-run", status=404)
    expect("no-such-run" in missing.get("error", ""), "an unknown run: 404 naming it", missing)
    other = api_json(base, "/api/no-such-thing", status=404)
    expect("error" in other, "an unknown API path: 404 with a JSON error", other)


def check_pages(base, runs):
    pages = ["/", "/runs/" + runs[0]["id"], "/runs/" + runs[1]["id"], "/runs/nothing",
             "/static/index.html", "/static/run.html"]
    for path in pages:
        code, headers, body = get(base + path)
        if path == "/runs/nothing":  # no such run: a 404 page that says so
            expect(code == 404 and "No such run" in body,
                   f"GET {path} is a 404 page saying so", (code, body[:300]))
            check_headers(headers, f"GET {path}", api=False)
            continue
        expect(code == 200, f"GET {path} is 200", code)
        expect(headers.get("Content-Type", "").startswith("text/html"),
               f"GET {path} is HTML", headers.get("Content-Type"))
        check_headers(headers, f"GET {path}", api=False)
        expect(SCRIPT not in body and "<b>" not in body and "<i>" not in body,
               f"GET {path}: no history text as HTML", body[:300])
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", body)
        expect(not inline, f"GET {path}: no inline script", inline)
        expect("/static/ui.js" in body and "/static/ui.css" in body,
               f"GET {path}: loads the compiled-in script and style", body[:300])
    code, headers, js = get(base + "/static/ui.js")
    expect(code == 200 and "javascript" in headers.get("Content-Type", ""),
           "/static/ui.js is served as JavaScript", (code, headers.get("Content-Type")))
    expect("innerHTML" not in js and "textContent" in js,
           "the script writes history text with textContent, never innerHTML")
    code, headers, css = get(base + "/static/ui.css")
    expect(code == 200 and headers.get("Content-Type", "").startswith("text/css"),
           "/static/ui.css is served as CSS", (code, headers.get("Content-Type")))
    check_headers(headers, "GET /static/ui.css", api=False)
    code, headers, _ = get(base + "/static/ui.css", method="HEAD")
    expect(code == 200, "HEAD /static/ui.css is 200", code)


def check_not_found(base):
    for path in ("/static/", "/static/nope.js", "/static/../CMakeLists.txt",
                 "/static/..%2fCMakeLists.txt", "/static/%2e%2e/%2e%2e/etc/passwd",
                 "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/./ui.css",
                 "/static//ui.css", "/static/ui.css/", "/static/UI.CSS",
                 "/static/ui.css%00.html", "/etc/passwd", "/runs/", "/runs/a/b",
                 "/index.html", "/api", "/api/runs/"):
        code, headers, body = raw_get(base, path)
        expect(code == 404, f"GET {path} is 404", (code, body[:200]))
        check_headers(headers, f"GET {path}", api=False)
        expect("root:" not in body and "cmake_minimum_required" not in body,
               f"GET {path}: no file of the disk", body[:200])
    code, headers, body = get(base + "/api/runs", method="PUT")
    expect(code == 405, "PUT /api/runs is 405", (code, body[:200]))
    check_headers(headers, "PUT /api/runs", api=True)
    # A POST is an action (actions_test.py): one without a form is refused.
    code, headers, body = get(base + "/api/runs", method="POST")
    expect(code == 400 and "form" in body, "POST without a form is 400", (code, body[:200]))
    check_headers(headers, "POST /api/runs", api=True)


def check_serving(binary, work):
    state, runs = make_history(binary, work)
    expect([r["flow"] for r in runs] == ["bad", "good", "good"],
           "the history: bad, then good twice, newest first", runs)
    ui = Ui(binary, ["--state", state, "--listen", "127.0.0.1:0"])
    base = ui.wait_listening()
    if not base:
        rc, err = ui.stop()
        expect(False, "flowlua ui says where it listens", (rc, err))
        return
    expect(not base.endswith(":0/"), "the line has the port the kernel picked", base)
    try:
        check_runs(base, runs)
        check_bad_filters(base)
        check_run(base, binary, state, runs)
        check_pages(base, runs)
        check_not_found(base)
    finally:
        rc, err = ui.stop()
    expect(rc == 0, "SIGTERM stops it, exit 0", (rc, err))
    expect("flowlua ui: stopped" in err, "it says it stopped", err)
    expect("Sanitizer" not in err and "runtime error" not in err,
           "no sanitizer report", err)
    return state


def refused(binary, args, code, pattern, what, env=None, cwd=None):
    p = subprocess.run([binary, "ui", *args], capture_output=True, text=True,
                       env=env, cwd=cwd, timeout=STARTUP_LIMIT)
    expect(p.returncode == code, f"{what}: exit {code}", (p.returncode, p.stderr))
    expect(re.search(pattern, p.stderr) is not None, f"{what}: says {pattern!r}", p.stderr)
    expect("listening on" not in p.stderr, f"{what}: never listens", p.stderr)
    expect("Sanitizer" not in p.stderr and "runtime error" not in p.stderr,
           f"{what}: no sanitizer report", p.stderr)


def check_refusals(binary, work, state):
    env = {k: v for k, v in os.environ.items() if k != "FLOWLUA_UI_TOKEN"}
    for spec in ("0.0.0.0:0", "[::]:0", "192.0.2.1:8080"):
        refused(binary, ["--state", state, "--listen", spec], 2,
                r"refusing to listen on .* without a token", f"--listen {spec} without a token",
                env=env)
    for spec in ("127.0.0.1", "127.0.0.1:99999", "example.com:80", ":8080", "[::1]8080"):
        refused(binary, ["--state", state, "--listen", spec], 2, r"--listen",
                f"--listen {spec!r}", env=env)
    refused(binary, ["--state", state, "--bogus"], 2, r"unexpected argument '--bogus'",
            "an unknown option", env=env)
    # With a token, beyond loopback is allowed (checked on 0.0.0.0, port 0).
    ui = Ui(binary, ["--state", state, "--listen", "0.0.0.0:0"],
            env=dict(env, FLOWLUA_UI_TOKEN="s3cret"))
    url = ui.wait_listening()
    rc, err = ui.stop()
    expect(url is not None and url.startswith("http://0.0.0.0:"),
           "with FLOWLUA_UI_TOKEN it listens beyond loopback", err)
    expect(rc == 0, "and stops with exit 0", (rc, err))
    # A port in use.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        refused(binary, ["--state", state, "--listen", f"127.0.0.1:{port}"], 1,
                rf"cannot listen on 127\.0\.0\.1:{port}: Address already in use",
                "a port in use", env=env)
    # A history that is not there, and a file that is not a history.
    refused(binary, ["--state", os.path.join(work, "none.db"), "--listen", "127.0.0.1:0"], 1,
            r"cannot read the history .*none\.db: No such file or directory",
            "a missing history", env=env)
    # libmicrohttpd is loaded when `flowlua ui` starts: without it, a clear
    # message (and every other command still works).
    refused(binary, ["--state", state, "--listen", "127.0.0.1:0"], 1,
            r"cannot load libmicrohttpd \(.*nowhere\.so.*\): install libmicrohttpd12",
            "no libmicrohttpd", env=dict(env, FLOWLUA_LIBMICROHTTPD="/nowhere.so"))
    foreign = os.path.join(work, "foreign.db")
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    refused(binary, ["--state", foreign, "--listen", "127.0.0.1:0"], 1,
            r"cannot read the history: .*foreign\.db", "a foreign SQLite file", env=env)
    text = os.path.join(work, "notes.txt")
    with open(text, "w") as f:
        f.write("not a database, not at all\n" * 100)
    refused(binary, ["--state", text, "--listen", "127.0.0.1:0"], 1,
            r"cannot read the history: .*notes\.txt", "a file that is not SQLite", env=env)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="flowlua-ui-") as work:
        state = check_serving(binary, work)
        if state:
            check_refusals(binary, work, state)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
