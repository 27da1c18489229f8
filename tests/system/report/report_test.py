#!/usr/bin/env python3
"""flowlua report RUN_ID|last --html PATH, checked in a real headless browser.

Runs tests/system/report/report_flow.lua (a task that fails twice then
succeeds, one that fails with HTML in its message, a map, data and ordering edges),
writes its report, and loads the page in Debian's chromium:
  - the browser logs no console message (the page runs no script, so any
    message would be a policy violation or a broken page);
  - the page asks for nothing over the network (chromium's net log holds
    every request the page made);
  - the DOM has one timeline bar (data-attempt) per attempt that
    `flowlua show --json` counts, each task's bars in the states it went
    through, every failure's message as text, and the graph's nodes and
    edges.
A control page with a console.error and an image proves that both browser
checks see what they look for. Then reading a history whose script was
replaced by one that must never run, a run recorded without edges, and the
error paths: unknown run, missing --html, no store, an unwritable path.

Chromium runs with its own throwaway profile, no sandbox (root), every host
name unresolvable and a proxy that is a closed local port, so nothing it
does leaves the machine. Prints "N passed, N failed"; exits 1 on a failure.

Usage: report_test.py FLOWLUA_BINARY
"""
import glob
import html.parser
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "report_flow.lua")
ERROR_HTML = 'broken: <script>alert("x")</script> & friends'


class Failure(Exception):
    pass


def expect(cond, what, got=None):
    if not cond:
        raise Failure(what if got is None else f"{what}; got {got!r}")


def flowlua(binary, args, cwd, code):
    done = subprocess.run([binary] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    expect(done.returncode == code,
           f"flowlua {' '.join(args)}: expected exit {code}, got "
           f"{done.returncode}; stderr:\n{done.stderr[-3000:]}")
    return done


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise Failure("chromium is not installed (bash tests/install-deps.sh)")


def load_in_browser(page, work):
    """Loads page headless; returns (dom, console lines, page requests)."""
    net_log = os.path.join(work, "net.json")
    profile = tempfile.mkdtemp(prefix="profile-", dir=work)
    argv = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={profile}", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--no-pings",
            "--disable-domain-reliability", "--disable-breakpad",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr", "--v=0", f"--log-net-log={net_log}",
            "--virtual-time-budget=2000", "--dump-dom", "file://" + page]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    expect(done.returncode == 0,
           f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    with open(net_log) as f:
        log = json.load(f)
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    # The page's own requests carry its file:// site; chromium's background
    # services (which the flags above keep on this machine) carry none.
    requests = sorted({e["params"]["url"] for e in log["events"]
                       if names.get(e["type"]) == "URL_REQUEST_START_JOB"
                       and "url" in e.get("params", {})
                       and e["params"].get("network_isolation_key", "").startswith("file://")})
    return done.stdout, console, requests


class Dom(html.parser.HTMLParser):
    """Elements with their attributes, and the text under each tag kind."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def with_attr(self, name):
        return [a for _, a in self.elements if name in a]

    def classed(self, tag, cls):
        return [a for t, a in self.elements
                if t == tag and cls in a.get("class", "").split()]


def attempts_by_show(binary, cwd):
    done = flowlua(binary, ["show", "last", "--json"], cwd, 0)
    tasks = json.loads(done.stdout)["tasks"]
    return {t["key"]: t["attempts"] for t in tasks}


def check_page_in_browser(binary, work):
    flowlua(binary, [FLOW], work, 1)
    attempts = attempts_by_show(binary, work)
    expect(attempts["flaky"] == 3 and attempts["broken"] == 1,
           "the flow ran flaky 3 times and broken once", attempts)
    flowlua(binary, ["report", "last", "--html", "out.html"], work, 0)
    page = os.path.join(work, "out.html")
    with open(page, encoding="utf-8") as f:
        source = f.read()
    expect("<script" not in source, "the page holds no <script> element")
    expect("broken: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; friends"
           in source, "the failure's message is escaped in the HTML source")

    dom_text, console, requests = load_in_browser(page, work)
    expect(console == [], "no console message while loading", console)
    expect(requests == [], "the page requests nothing", requests)
    dom = Dom(dom_text)
    bars = dom.with_attr("data-attempt")
    expect(len(bars) == sum(attempts.values()) == 10,
           f"one bar per attempt ({sum(attempts.values())} by show)", len(bars))
    by_task = {}
    for bar in bars:
        by_task.setdefault(bar["data-task"], []).append(
            (int(bar["data-attempt"]), bar["data-state"]))
    expect(sorted(by_task["flaky"]) == [(1, "Retrying"), (2, "Retrying"), (3, "Success")],
           "flaky's bars: two failed and retried, then a success", by_task.get("flaky"))
    expect(by_task["broken"] == [(1, "Failed")], "broken's one bar failed",
           by_task.get("broken"))
    expect(all(by_task[f"square[{i}]"] == [(1, "Success")] for i in (1, 2, 3)),
           "one bar per map element", by_task)
    expect("square" not in by_task, "the map itself is no attempt", by_task.get("square"))
    text = "".join(dom.text)
    for message in ("flaky attempt 1 fails", "flaky attempt 2 fails", ERROR_HTML):
        expect(message in text, f"the failures show {message!r}")
    failures = dom.with_attr("data-failed-attempt")
    expect(len(failures) == 3, "three failed attempts listed", len(failures))
    nodes = {a["data-key"] for a in dom.classed("g", "node")}
    expect(nodes == {"seed", "flaky", "broken", "square", "total", "cleanup"},
           "one graph node per task", nodes)
    edges = dom.classed("path", "edge")
    expect(len(edges) == 4 and len(dom.classed("path", "order")) == 1,
           "4 edges, 1 of them ordering", [e.get("class") for e in edges])


def check_browser_sees_faults(_binary, work):
    """The control: a page with a console error and a request is caught."""
    page = os.path.join(work, "faulty.html")
    with open(page, "w") as f:
        f.write('<!DOCTYPE html><html><head><meta charset="utf-8"><title>c</title>'
                '</head><body><img src="http://127.0.0.1:9/x.png">'
                '<script>console.error("control error")</script></body></html>')
    _, console, requests = load_in_browser(page, work)
    expect(any("control error" in line for line in console),
           "the console error is seen", console)
    expect(requests == ["http://127.0.0.1:9/x.png"], "the image request is seen",
           requests)


HOSTILE_SCRIPT = """-- stands where the recorded script was: loading it is running it
local f = io.open("MARKER", "w")
f:write("the script ran")
f:close()
os.exit(3)
"""


def check_reading_runs_no_script(binary, work):
    """The script a run names is never loaded to read its history: the
    graph comes from the edges stored with the run (issue 16, item 8)."""
    script = os.path.join(work, "flow.lua")
    shutil.copy(FLOW, script)
    flowlua(binary, ["flow.lua"], work, 1)
    with open(script, "w") as f:
        f.write(HOSTILE_SCRIPT.replace("MARKER", os.path.join(work, "marker")))
    flowlua(binary, ["report", "last", "--html", "out.html"], work, 0)
    shown = flowlua(binary, ["show", "last"], work, 0)
    flowlua(binary, ["show", "last", "--json"], work, 0)
    flowlua(binary, ["runs"], work, 0)
    graph = flowlua(binary, ["graph", "--run", "last"], work, 0)
    mermaid = flowlua(binary, ["graph", "--run", "last", "--format", "mermaid"],
                      work, 0)
    expect(not os.path.exists(os.path.join(work, "marker")),
           "no history reader ran the script")
    expect('"seed" -> "square";' in graph.stdout
           and '"total" -> "cleanup" [style=dashed];' in graph.stdout
           and 'label="square (map of 3)\\nSuccess"' in graph.stdout,
           "graph --run draws the stored graph", graph.stdout)
    expect("n3 -.-> n5" in mermaid.stdout, "and in Mermaid", mermaid.stdout)
    expect("flaky" in shown.stdout, "show still shows the task runs",
           shown.stdout)
    with open(os.path.join(work, "out.html"), encoding="utf-8") as f:
        dom = Dom(f.read())
    text = "".join(dom.text)
    expect("without their edges" not in text, "the graph is whole", text[:600])
    edges = dom.classed("path", "edge")
    expect(len(edges) == 4 and len(dom.classed("path", "order")) == 1,
           "4 edges from the history, 1 of them ordering",
           [e.get("class") for e in edges])
    expect(len(dom.classed("g", "node")) == 6, "every task drawn")
    os.remove(script)
    flowlua(binary, ["report", "last", "--html", "gone.html"], work, 0)
    with open(os.path.join(work, "gone.html"), encoding="utf-8") as f:
        expect(len(Dom(f.read()).classed("path", "edge")) == 4,
               "the graph without any script at all")


def check_graph_of_an_older_run(binary, work):
    """A run recorded before edges were stored: the page says the graph is
    unavailable and still shows every task run and attempt."""
    flowlua(binary, [FLOW], work, 1)
    db = sqlite3.connect(os.path.join(work, ".flowlua", "state.db"))
    db.execute("UPDATE run_graph SET edges = NULL")
    db.commit()
    db.close()
    flowlua(binary, ["report", "last", "--html", "out.html"], work, 0)
    with open(os.path.join(work, "out.html"), encoding="utf-8") as f:
        dom = Dom(f.read())
    text = "".join(dom.text)
    expect("shown without their edges: the graph is unavailable (the run was "
           "recorded by a flowlua older than 0.6.0" in text,
           "the page says why the graph has no edges", text[:600])
    expect(dom.classed("path", "edge") == [], "no edges drawn")
    expect(len(dom.classed("g", "node")) == 6, "every task still drawn")
    expect(len(dom.with_attr("data-attempt")) == 10, "the timeline is whole")
    done = flowlua(binary, ["graph", "--run", "last"], work, 2)
    expect("has no stored graph (recorded by a flowlua older than 0.6.0): "
           "give the script" in done.stderr,
           "graph --run without a script says why it cannot draw",
           done.stderr)


def check_replaced_whole(binary, work):
    flowlua(binary, [FLOW], work, 1)
    out = os.path.join(work, "out.html")
    with open(out, "w") as f:
        f.write("old")
    flowlua(binary, ["report", "last", "--html", "out.html"], work, 0)
    with open(out, encoding="utf-8") as f:
        expect(f.read().startswith("<!DOCTYPE html>"), "the old file was replaced")
    expect(sorted(os.listdir(work)) == [".flowlua", "out.html"],
           "no temporary file is left", sorted(os.listdir(work)))


def check_errors(binary, work):
    done = flowlua(binary, ["report", "last", "--html", "out.html"], work, 2)
    expect("no runs recorded yet (no state file at .flowlua/state.db)" in done.stderr,
           "no store: says so", done.stderr)
    flowlua(binary, [FLOW], work, 1)
    done = flowlua(binary, ["report", "nope", "--html", "out.html"], work, 2)
    expect("no run has an id starting with 'nope'" in done.stderr,
           "an unknown run is named", done.stderr)
    done = flowlua(binary, ["report", "last"], work, 2)
    expect("report needs --html PATH" in done.stderr, "--html is required",
           done.stderr)
    done = flowlua(binary, ["report", "--html", "out.html"], work, 2)
    expect("report expects a run id or 'last'" in done.stderr,
           "the run is required", done.stderr)
    done = flowlua(binary, ["show", "last", "--html", "out.html"], work, 2)
    expect("--html goes with 'flowlua report'" in done.stderr,
           "--html elsewhere is refused", done.stderr)
    done = flowlua(binary, ["report", "last", "--html", "no/such/dir/out.html"],
                   work, 1)
    expect("cannot write the report to no/such/dir/out.html: No such file or "
           "directory" in done.stderr, "an unwritable path says why", done.stderr)
    expect(glob.glob(os.path.join(work, "*.html")) == [], "no page was written",
           os.listdir(work))


CASES = [
    ("the page in chromium", check_page_in_browser),
    ("the browser checks catch a faulty page", check_browser_sees_faults),
    ("reading a history runs no script", check_reading_runs_no_script),
    ("the graph of a run recorded without edges", check_graph_of_an_older_run),
    ("an existing page is replaced whole", check_replaced_whole),
    ("error paths", check_errors),
]


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: report_test.py FLOWLUA_BINARY")
    binary = os.path.abspath(sys.argv[1])
    passed = failed = 0
    for name, check in CASES:
        with tempfile.TemporaryDirectory(prefix="flowlua-report-") as work:
            try:
                check(binary, work)
            except (Failure, subprocess.TimeoutExpired, OSError, KeyError,
                    ValueError, sqlite3.Error) as e:
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
                continue
        passed += 1
        print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
