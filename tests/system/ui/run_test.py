#!/usr/bin/env python3
"""flowlua ui: the run page's API and its live updates, over HTTP.

Makes a real history with the built flowlua (api_test.py's: 'good' twice,
then 'bad'), starts `flowlua ui --listen 127.0.0.1:0` on it and checks:
  - /api/runs/ID/summary: the run as `show --json` without its task runs;
    /tasks paged (offset, limit, total) and filtered by state; /graph with
    nodes, states and edges; /timeline with one bar per attempt; every
    parameter strict (unknown, repeated, empty, out of range: 400), an
    unknown run 404 for every part, an unknown part 404;
  - /api/runs?since=&until=: ISO 8601 UTC bounds, malformed ones 400;
  - requests on one connection are answered on it (keep-alive);
  - /api/runs/ID/events: a run that waits for a file this test creates
    (flow.shell polling for it) is followed from Running to its end: a
    `run` event first, an `end` event with Success last, then the stream
    closes; a client that goes away early frees its stream and its
    thread; streams are bounded (503 past the bound); SIGTERM while a
    stream is open stops the server promptly with exit 0.
With FLOWLUA_TEST_PG set (tests/support/pg/with_pg.py), the history is that
PostgreSQL server's. Prints "N passed, N failed"; exits 1 on a failure.

Usage: run_test.py FLOWLUA_BINARY
"""
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import api_test  # noqa: E402
from api_test import Ui, api_json, expect, get, results  # noqa: E402

# A safety net for a hung process, not a timing expectation.
LIMIT = api_test.STARTUP_LIMIT
# The server's bound on open event streams (ui_server.c MAX_STREAMS).
MAX_STREAMS = 32

WAIT_FLOW = """
local flow = require "flowlua"
local wait = flow.task("wait for go", function(path)
  return flow.shell({ "sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.02; done', "sh", path }).code
end)
local after = flow.task("after", function(code) return code end)
return flow.define("waiting", { params = { go = "" } }, function(p) after(wait(p.go)) end)
"""


def q(s):
    return urllib.parse.quote(s, safe="")


def check_parts(base, binary, state, runs):
    bad, good = runs[0], runs[1]
    shown = json.loads(subprocess.run([binary, "show", good["id"], "--json", "--state", state],
                                      capture_output=True, text=True, check=True).stdout)
    summary = api_json(base, f"/api/runs/{good['id']}/summary")
    expect("tasks" not in summary, "the summary holds no task runs", summary)
    same = {k: v for k, v in shown.items() if k != "tasks"}
    expect({k: summary.get(k) for k in same} == same,
           "the summary is `show --json` without its task runs", (summary, same))
    expect(summary.get("task_runs") == 2 and summary.get("graph") == {"tasks": 2, "edges": 1},
           "the summary counts task runs, graph tasks and edges", summary)

    page = api_json(base, f"/api/runs/{good['id']}/tasks")
    expect([t["key"] for t in page.get("tasks", [])] == [t["key"] for t in shown["tasks"]]
           and page.get("total") == 2 and page.get("offset") == 0,
           "/tasks: every task run, as show --json lists them", page)
    # Each as show --json gives it, but for its log lines (the task run's
    # own page has them: a page of 500 task runs would carry 500 logs).
    no_logs = [{k: v for k, v in t.items() if k not in ("logs", "logs_dropped")}
               for t in shown["tasks"]]
    expect(page.get("tasks") == no_logs,
           "/tasks: each as show --json gives it, without its log lines", page)
    one = api_json(base, f"/api/runs/{good['id']}/tasks?offset=1&limit=1")
    expect([t["key"] for t in one.get("tasks", [])] == [shown["tasks"][1]["key"]]
           and one.get("total") == 2 and one.get("offset") == 1,
           "/tasks?offset=1&limit=1: the second task run", one)
    past = api_json(base, f"/api/runs/{good['id']}/tasks?offset=5")
    expect(past.get("tasks") == [] and past.get("total") == 2,
           "/tasks past the end: none, with the total", past)
    failed = api_json(base, f"/api/runs/{bad['id']}/tasks?state=Failed")
    expect(len(failed.get("tasks", [])) == 1 and failed["tasks"][0]["state"] == "Failed"
           and "<script>" in failed["tasks"][0]["error"],
           "/tasks?state=Failed: the failed one, its error as text", failed)
    none = api_json(base, f"/api/runs/{bad['id']}/tasks?state=Success")
    expect(none.get("tasks") == [] and none.get("total") == 0,
           "/tasks?state=Success of a run with none: empty", none)

    graph = api_json(base, f"/api/runs/{good['id']}/graph")
    nodes = graph.get("nodes", [])
    expect(graph.get("aggregated") is False and [n["key"] for n in nodes] == ["a", "b <i>"]
           and [n["state"] for n in nodes] == ["Success", "Success"]
           and [(n["layer"], n["row"]) for n in nodes] == [(0, 0), (1, 0)],
           "/graph: the stored graph laid out in layers, with states", graph)
    expect(graph.get("edges") == [[0, 1, 0]] and graph.get("note") is None,
           "/graph: the stored edge (data, not ordering)", graph)

    timeline = api_json(base, f"/api/runs/{bad['id']}/timeline")
    rows = timeline.get("rows", [])
    expect(timeline.get("rows_total") == 1 and timeline.get("attempts") == 1 and len(rows) == 1
           and rows[0]["state"] == "Failed" and len(rows[0]["bars"]) == 1
           and rows[0]["bars"][0][2] == "Failed"
           and 0 <= rows[0]["bars"][0][0] <= rows[0]["bars"][0][1] <= timeline["span"],
           "/timeline: one bar per attempt, within the run's span", timeline)
    paged = api_json(base, f"/api/runs/{good['id']}/timeline?offset=1&limit=1")
    expect([r["key"] for r in paged.get("rows", [])] == ["b <i>"] and paged.get("offset") == 1,
           "/timeline?offset=1&limit=1: the second row", paged)

    # "last" and a unique prefix name a run as /api/runs/ID does.
    last = api_json(base, "/api/runs/last/summary")
    expect(last.get("id") == bad["id"], "/api/runs/last/summary: the newest run", last)
    prefix = api_json(base, f"/api/runs/{bad['id'][:8]}/summary")
    expect(prefix.get("id") == bad["id"], "a unique prefix names the run", prefix)


def check_run_script(base):
    code, headers, js = get(base + "/static/run.js")
    expect(code == 200 and "javascript" in headers.get("Content-Type", ""),
           "/static/run.js is served as JavaScript", (code, headers.get("Content-Type")))
    expect("innerHTML" not in js and "outerHTML" not in js and "insertAdjacentHTML" not in js
           and "textContent" in js,
           "the run page's script writes history text as text, never as HTML")
    expect(js.count("new EventSource(") == 1 and "es.close()" in js,
           "the run page opens one EventSource and closes it at the end")


def check_part_refusals(base, runs):
    rid = runs[1]["id"]
    for query, says in (("x=1", "unknown parameter 'x'"), ("limit=1&limit=2", "given twice"),
                        ("limit=", "is empty"), ("limit=0", "limit '0'"),
                        ("limit=501", "limit '501'"), ("limit=-1", "limit '-1'"),
                        ("offset=abc", "offset 'abc'"), ("offset=1.5", "offset '1.5'"),
                        ("state=bogus", "not a task state"), ("state=success", "not a task state")):
        body = api_json(base, f"/api/runs/{rid}/tasks?{query}", status=400)
        expect(says in body.get("error", ""), f"/tasks?{query}: 400 saying {says!r}", body)
    for query in ("limit=2001", "offset=x", "state=Failed"):
        body = api_json(base, f"/api/runs/{rid}/timeline?{query}", status=400)
        expect("error" in body, f"/timeline?{query}: 400", body)
    for part in ("summary", "graph"):
        body = api_json(base, f"/api/runs/{rid}/{part}?limit=1", status=400)
        expect("unknown parameter 'limit'" in body.get("error", ""),
               f"/{part} takes no parameter: 400", body)
    for part in ("summary", "tasks", "graph", "timeline", "events"):
        body = api_json(base, f"/api/runs/no-such-run/{part}", status=404)
        expect("no-such-run" in body.get("error", ""), f"/{part} of an unknown run: 404", body)
    body = api_json(base, f"/api/runs/{rid}/logs-and-more", status=404)
    expect("no such API path" in body.get("error", ""), "an unknown part: 404", body)
    code, headers, _ = get(base + f"/api/runs/{rid}/summary", method="DELETE")
    expect(code == 405 and headers.get("Allow") == "GET, HEAD, POST",
           "DELETE is 405 with Allow: GET, HEAD, POST", (code, headers.get("Allow")))


def iso_ms(text, delta_ms):
    """An API time moved by delta_ms (times are written rounded to the ms)."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    t += datetime.timedelta(milliseconds=delta_ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def check_time_filter(base, runs):
    # The newest run started at least a few ms after the others (each is a
    # process of its own): a bound 1 ms before it splits them.
    split = iso_ms(runs[0]["started_at"], -1)
    expect(split > runs[1]["started_at"], "setting up: the runs started apart", runs)
    since = api_json(base, "/api/runs?since=" + q(split))
    expect([r["id"] for r in since.get("runs", [])] == [runs[0]["id"]],
           "since=just before the newest start: that run only", since)
    until = api_json(base, "/api/runs?until=" + q(split))
    expect([r["id"] for r in until.get("runs", [])] == [r["id"] for r in runs[1:]],
           "until=just before the newest start: the older runs", until)
    after = api_json(base, "/api/runs?since=" + q(iso_ms(runs[0]["started_at"], 1)))
    expect(after.get("runs") == [], "since=just after the newest start: none", after)
    window = api_json(base, "/api/runs?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00.5Z")
    expect(window.get("runs") == [], "a window with no run: empty", window)
    for bad in ("2026-12-05", "2026-12-05T12:00:00", "2026-12-05T12:00:00+01:00",
                "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-12-05T24:00:00Z",
                "2026-12-05T12:00:00.1234Z", "2026-12-05T12:00:00.Z", "yesterday",
                "1733400000", "2026-12-05T12:00:00Zjunk"):
        body = api_json(base, "/api/runs?since=" + q(bad), status=400)
        expect("is not a time in UTC" in body.get("error", ""), f"since={bad}: 400", body)
    body = api_json(base, "/api/runs?since=2026-12-05T12:00:00Z&until=2026-12-05T12:00:00Z",
                    status=400)
    expect("is not after since" in body.get("error", ""), "until == since: 400", body)


def check_keep_alive(base):
    """Requests on one connection are answered on it (an answer given with
    the headers only used to close the connection after each request)."""
    import http.client
    host, port = base[len("http://"):-1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=LIMIT)
    socks = []
    for path in ("/api/runs?limit=1", "/", "/api/runs/last/summary"):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        expect(r.status == 200 and (r.getheader("Connection") or "").lower() != "close",
               f"GET {path} on a kept connection: 200, not closed",
               (r.status, r.getheader("Connection")))
        socks.append(conn.sock)
    expect(socks[0] is not None and all(x is socks[0] for x in socks),
           "three requests on one connection")
    conn.close()


class Stream:
    """GET /api/runs/ID/events over a raw socket, in HTTP/1.0 so that the
    body comes as it is written (no chunks) and ends when the server closes
    the connection. Reads events as they come."""

    def __init__(self, base, run_id):
        host, port = base[len("http://"):-1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=LIMIT)
        self.sock.sendall(f"GET /api/runs/{run_id}/events HTTP/1.0\r\n"
                          f"Host: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.buf = b""
        self.closed = False
        head = self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (line.partition(":") for line in lines[1:])}

    def _until(self, sep):
        while sep not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                self.closed = True
                out, self.buf = self.buf, b""
                return out
            self.buf += data
        out, _, self.buf = self.buf.partition(sep)
        return out

    def event(self):
        """(name, data) of the next event, skipping comments; None at the end."""
        while True:
            block = self._until(b"\n\n")
            if not block and self.closed:
                return None
            name, data = "message", None
            for line in block.decode("utf-8").split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if data is not None:
                return name, data

    def close(self):
        self.sock.close()


def start_waiting(binary, work, state, go):
    """Starts a run of WAIT_FLOW that waits for the file go; returns the
    process and the run's id once the history has it Running."""
    path = os.path.join(work, "wait.lua")
    with open(path, "w") as f:
        f.write(WAIT_FLOW)
    before = {r["id"] for r in json.loads(subprocess.run(
        [binary, "runs", "--json", "--state", state], capture_output=True, text=True,
        check=True).stdout)}
    proc = subprocess.Popen([binary, path, "--state", state, "--param", f"go={go}",
                             "--no-status", "--quiet"], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:  # waits for a state in the history
        runs = json.loads(subprocess.run([binary, "runs", "--json", "--state", state],
                                         capture_output=True, text=True, check=True).stdout)
        new = [r for r in runs if r["id"] not in before and r["state"] == "Running"
               and r.get("tasks", {}).get("Running")]
        if new:
            return proc, new[0]["id"]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"setting up: the waiting run never showed Running: {proc.stderr.read()}")


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def wait_for(what, check):
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    expect(False, what)
    return False


def check_live(base, ui, binary, work, state):
    go = os.path.join(work, "go")
    proc, rid = start_waiting(binary, work, state, go)
    stream = Stream(base, rid)
    expect(stream.status == 200 and stream.headers.get("content-type") == "text/event-stream",
           "/events: 200, text/event-stream", (stream.status, stream.headers))
    first = stream.event()
    expect(first is not None and first[0] == "run" and first[1]["state"] == "Running"
           and first[1]["id"] == rid,
           "/events: the run's state first (Running)", first)
    summary = api_json(base, f"/api/runs/{rid}/summary")
    expect(summary.get("state") == "Running" and summary.get("ended_at") is None,
           "the summary of a running run: Running, not ended", summary)
    open(go, "w").close()  # the task's loop ends: the run goes on to its end
    events = []
    while True:
        ev = stream.event()
        if ev is None:
            break
        events.append(ev)
    stream.close()
    expect(events and events[-1][0] == "end" and events[-1][1]["state"] == "Success",
           "/events: an end event with Success last", events)
    expect(all(name == "run" for name, _ in events[:-1]),
           "/events: run events before the end", events)
    expect(stream.closed, "/events: the stream closes after the end")
    expect(proc.wait(LIMIT) == 0, "the waiting run's process exits 0", proc.stderr.read())
    after = api_json(base, f"/api/runs/{rid}/summary")
    expect(after.get("state") == "Success" and after.get("task_runs") == 2,
           "the summary after the end event: Success, both task runs", after)
    done = api_json(base, f"/api/runs/{rid}/tasks?state=Success")
    expect(done.get("total") == 2, "the task runs re-read after the end: both Success", done)


def check_streams_bounded(base, ui, binary, work, state):
    go = os.path.join(work, "go2")
    proc, rid = start_waiting(binary, work, state, go)
    pid = ui.proc.pid
    idle = threads_of(pid)
    # A client that goes away after the first event frees its stream.
    early = Stream(base, rid)
    expect(early.event() is not None, "a stream that will be dropped: its first event")
    early.close()
    wait_for("the dropped stream's thread ends", lambda: threads_of(pid) <= idle)
    # As many as the bound, then one more is refused.
    streams = [Stream(base, rid) for _ in range(MAX_STREAMS)]
    expect(all(s.status == 200 for s in streams), f"{MAX_STREAMS} streams open",
           [s.status for s in streams])
    for s in streams:
        s.event()
    extra = Stream(base, rid)
    expect(extra.status == 503, "one stream past the bound: 503", extra.status)
    extra.close()
    for s in streams:
        s.close()
    wait_for("every dropped stream's thread ends", lambda: threads_of(pid) <= idle)
    again = Stream(base, rid)
    expect(again.status == 200 and again.event() is not None,
           "after they went away, a stream opens again", again.status)
    return proc, go, again


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="flowlua-ui-run-") as work:
        state, runs = api_test.make_history(binary, work)
        ui = Ui(binary, ["--state", state, "--listen", "127.0.0.1:0"])
        base = ui.wait_listening()
        if not base:
            rc, err = ui.stop()
            expect(False, "flowlua ui says where it listens", (rc, err))
        else:
            proc = None
            try:
                check_parts(base, binary, state, runs)
                check_part_refusals(base, runs)
                check_run_script(base)
                check_time_filter(base, runs)
                check_keep_alive(base)
                check_live(base, ui, binary, work, state)
                proc, go, stream = check_streams_bounded(base, ui, binary, work, state)
                # SIGTERM with a stream open: the server ends it and exits.
                t0 = time.monotonic()
                rc, err = ui.stop()
                took = time.monotonic() - t0
                expect(rc == 0, "SIGTERM with a stream open: exit 0", (rc, err))
                expect(took < 5, "and promptly (the stream does not hold it)", took)
                expect(stream.event() is None, "the open stream is closed by the stop")
                expect("Sanitizer" not in err and "runtime error" not in err,
                       "no sanitizer report", err)
                stream.close()
            finally:
                if ui.proc.poll() is None:
                    ui.stop()
                if proc:
                    open(go, "w").close()
                    proc.wait(LIMIT)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
