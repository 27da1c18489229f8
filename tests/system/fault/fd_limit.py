#!/usr/bin/env python3
"""flowlua under a low descriptor limit (RLIMIT_NOFILE 64, as `ulimit -n 64`
sets it), against tests/support/server/testserver.py on 127.0.0.1.

  many requests   300 requests in flight at once (concurrency 1000): the
                  transfers beyond what the limit allows wait for a free
                  descriptor, so every one succeeds (0.5 failed thousands
                  with "connection refused").
  cancelled       100 requests at once whose tasks time out (0.5 s; the
                  server takes 3 s), most of them while waiting their turn:
                  each leaves the queue, and a request after them runs.
  no descriptor   a task that has used up every descriptor (files held
                  open) makes a request: it fails with "too many open
                  files", naming the limit and what to do, not "connection
                  refused".

    fd_limit.py FLOWLUA
"""
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "..", "support", "server", "testserver.py")
LIMIT = 64

MANY = """
local flow = require "flowlua"
local get = flow.task("get", function(i)
  local r = flow.http.get(os.getenv("URL") .. "/slow", { query = { bytes = 4, chunk = 1, delay = 0.05 } })
  assert(r.status == 200 and #r.body == 4, "a whole response")
  return i
end)
return flow.define("many", { concurrency = 1000 }, function()
  local xs = {}
  for i = 1, 300 do xs[i] = i end
  get:map(xs)
end)
"""

CANCELLED = """
local flow = require "flowlua"
local get = flow.task("get", { timeout = 0.5 }, function(i)
  return flow.http.get(os.getenv("URL") .. "/slow", { query = { bytes = 4, chunk = 1, delay = 1 } }).status
end)
local after = flow.task("after", { trigger = "all_done" }, function()
  return flow.http.get(os.getenv("URL") .. "/json").status
end)
return flow.define("cancelled", { concurrency = 1000 }, function()
  local xs = {}
  for i = 1, 100 do xs[i] = i end
  after(get:map(xs))
end)
"""

NO_DESCRIPTOR = """
local flow = require "flowlua"
local held = {}
-- libcurl is loaded by the first request: before the descriptors run out.
-- That one is refused (port 1), so no connection is kept for the task's
-- request to reuse: it needs a socket.
assert(not pcall(flow.http.get, "http://127.0.0.1:1/"))
local t = flow.task("t", function()
  while true do
    local f = io.open("/dev/null", "r")
    if not f then break end
    held[#held + 1] = f
  end
  return flow.http.get(os.getenv("URL") .. "/json").status
end)
return flow.define("nofd", {}, function() t() end)
"""


def low_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def run(flowlua, folder, name, text, url):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([flowlua, path, "--state", ":memory:"], cwd=folder,
                       env=dict(os.environ, URL=url), preexec_fn=low_limit,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr


def main():
    flowlua = os.path.abspath(sys.argv[1])
    failures = []
    with tempfile.TemporaryDirectory(prefix="flowlua-fdlimit-") as folder:
        port_file = os.path.join(folder, "port")
        server = subprocess.Popen([sys.executable, SERVER, "--port-file", port_file,
                                   "--max-seconds", "600", "--exit-with-parent"])
        try:
            while not os.path.exists(port_file):  # written once it listens
                if server.poll() is not None:
                    raise SystemExit("the test server did not start")
                time.sleep(0.05)
            with open(port_file) as f:
                url = "http://127.0.0.1:%d" % int(f.read())

            rc, err = run(flowlua, folder, "many.lua", MANY, url)
            if rc != 0 or not re.search(r"300 task runs — 300 Success", err):
                failures.append(("many requests", rc, err))
            else:
                print("ok   many requests: 300 of 300 succeeded under ulimit -n %d" % LIMIT)

            rc, err = run(flowlua, folder, "cancelled.lua", CANCELLED, url)
            if (rc != 1 or not re.search(r"101 task runs — 1 Success, 100 TimedOut", err)
                    or not re.search(r"after: Success", err)):
                failures.append(("cancelled", rc, err))
            else:
                print("ok   cancelled: 100 timed out, the request after them ran")

            rc, err = run(flowlua, folder, "nofd.lua", NO_DESCRIPTOR, url)
            want = (r"t: Failed .*GET http://127\.0\.0\.1:\d+/json: too many open files "
                    r"\(the process's limit\): raise the limit \(ulimit -n\) or lower the concurrency")
            if rc != 1 or not re.search(want, err) or "connection refused" in err:
                failures.append(("no descriptor", rc, err))
            else:
                print("ok   no descriptor: the limit is named")
        finally:
            server.kill()
            server.wait()
    for name, rc, err in failures:
        print("FAIL %s (exit %d)\n%s" % (name, rc, err[-4000:]))
    print("%d passed, %d failed" % (3 - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
