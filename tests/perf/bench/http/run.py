#!/usr/bin/env python3
"""HTTP benchmark: flowlua's task:map against a plain libcurl multi program,
both fetching a 10 KB JSON body from nginx on 127.0.0.1, same concurrency.

    python3 tests/perf/bench/http/run.py [--flowlua build-bench/flowlua] [--n 1000]
                                    [--concurrency 32] [--repeat 5]

Starts its own nginx (apt-get install nginx-light, or nginx) with a
temporary configuration on a free port of 127.0.0.1 and stops it at the
end. Needs a C compiler with libcurl (ref_multi.c) and, for GET + :json(),
lua5.4 with lua-cjson (the JSON half of that row's reference).
Prints requests/s for each and the ratio flowlua/reference (target >= 0.9).
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
TARGET_RATIO = 0.9       # GET: of libcurl multi's req/s
TARGET_JSON_RATIO = 1.2  # GET + :json(): issue 22 (issue 7 asked 0.9)
START_LIMIT = 120  # seconds nginx may take to listen: an end to a hang only


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """nginx serving `root` on 127.0.0.1:`port` with a configuration of its
    own in root (no access log, keep-alive for the whole run), in the
    foreground as our child; stop() ends it gracefully."""

    def __init__(self, root, port):
        exe = benchlib.require_program("nginx", "apt-get install nginx-light")
        self.root, self.port = root, port
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/client_body;
  keepalive_requests 100000;
  default_type application/json;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
        # -e: the error log from the very start, before the configuration
        # is read (the compiled-in default is under /var/log).
        self.proc = subprocess.Popen([exe, "-e", os.path.join(root, "error.log"), "-c", conf, "-p", root],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Ready once it accepts a connection: wait for that as long as nginx
        # runs (a loaded machine starts it late), fail at once if it exits;
        # the limit only ends one that hangs.
        limit = time.monotonic() + START_LIMIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                pass
            try:
                code = self.proc.wait(timeout=0.02)
                why = f"exited with code {code}"
            except subprocess.TimeoutExpired:
                if time.monotonic() <= limit:
                    continue
                why = f"still running but not listening after {START_LIMIT} s"
            self.stop()
            raise BenchError(f"nginx did not start on 127.0.0.1:{port} ({why}):\n{self.log_tail()}")

    def log_tail(self):
        try:
            with open(os.path.join(self.root, "error.log")) as f:
                return benchlib.tail(f.read())
        except OSError as e:
            return f"(no error log: {e})"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()


# lua5.4 cjson_loop.lua FILE N: prints the seconds lua-cjson takes to decode
# the file's text N times.
CJSON_LOOP = """
local cjson = require "cjson"
local f = assert(io.open(arg[1], "rb")); local text = f:read("a"); f:close()
local n = tonumber(arg[2])
local t0 = os.clock()
for _ = 1, n do cjson.decode(text) end
print(os.clock() - t0)
"""


def measure(flowlua, n=1000, concurrency=32, repeat=5, lua="lua5.4", ref_exe=None,
            with_json=True, log=print):
    """Runs both workloads; returns {"get": {...}, "get_json": {...}} with
    requests/s of each side (median of `repeat`) and the ratio. ref_exe: a
    compiled ref_multi.c (compiled here when None)."""
    # nginx's workers run as another user (nobody, when started by root):
    # its root is a folder of its own, readable by all, straight under the
    # system's temporary folder so that every folder above it is searchable.
    root = tempfile.mkdtemp(prefix="flowlua-http-bench-")
    try:
        os.chmod(root, 0o755)
        return _measure(flowlua, root, n, concurrency, repeat, lua, ref_exe, with_json, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(flowlua, root, n, concurrency, repeat, lua, ref_exe, with_json, log):
    ref = ref_exe or benchlib.compile_c(os.path.join(HERE, "ref_multi.c"), os.path.join(root, "ref_multi"),
                                        packages=["libcurl"])
    body = benchlib.json_body_10k()
    size = len(body)
    with open(os.path.join(root, "body.json"), "w") as f:
        f.write(body)
    if with_json:
        lua = benchlib.require_program(lua, "apt-get install lua5.4")
        benchlib.require_lua_module(lua, "cjson", "the JSON half of the reference; apt-get install lua-cjson")
    port = free_port()
    nginx = Nginx(root, port)
    url = f"http://127.0.0.1:{port}/body.json"
    fetch = os.path.join(HERE, "fetch_map.lua")
    result = {"n": n, "concurrency": concurrency, "repeat": repeat, "body_bytes": size, "url": url}
    try:
        for decode in ("0", "1") if with_json else ("0",):
            env = dict(os.environ, BENCH_URL=url, BENCH_N=str(n), BENCH_C=str(concurrency), DECODE=decode)
            fl, fl_whole, rf = [], [], []
            for _ in range(repeat):
                # flowlua: whole process too, so that start-up is on record.
                t, out = benchlib.run_checked([flowlua, "--quiet", "--state", ":memory:", fetch], env=env,
                                              cwd=root)
                got = benchlib.pairs(benchlib.last_line(out, "fetch_map.lua"), "fetch_map.lua")
                if got.get("requests") != str(n) or got.get("bytes") != str(n * size):
                    raise BenchError(f"fetch_map.lua: expected {n} requests of {size} bytes, got {out!r}\n"
                                     f"nginx: {nginx.log_tail()}")
                fl.append(n / float(got["seconds"]))
                fl_whole.append(n / t)
                if decode == "0":
                    _, out = benchlib.run_checked([ref, url, str(n), str(concurrency)])
                    got = benchlib.pairs(benchlib.last_line(out, "ref_multi"), "ref_multi")
                    if got.get("requests") != str(n) or got.get("bytes") != str(n * size):
                        raise BenchError(f"ref_multi: expected {n} requests of {size} bytes, got {out!r}")
                    rf.append(n / float(got["seconds"]))
            key = "get_json" if decode == "1" else "get"
            result[key] = {"flowlua_rps": statistics.median(fl), "flowlua_whole_process_rps":
                           statistics.median(fl_whole), "flowlua_samples": fl}
            if rf:
                result[key].update(ref_rps=statistics.median(rf), ref_samples=rf)
    finally:
        nginx.stop()

    get = result["get"]
    get["ratio"] = get["flowlua_rps"] / get["ref_rps"]
    log(f"  GET            flowlua {get['flowlua_rps']:8.0f} req/s  libcurl multi {get['ref_rps']:8.0f} req/s"
        f"  ratio {get['ratio']:.2f}")
    if with_json:
        # The HTTP + JSON floor: the libcurl program's time plus lua-cjson
        # decoding the same body n times in a plain Lua 5.4 process.
        cjson_loop = os.path.join(root, "cjson_loop.lua")
        with open(cjson_loop, "w") as f:
            f.write(CJSON_LOOP)
        cjson_s = [float(benchlib.run_checked([lua, cjson_loop, os.path.join(root, "body.json"), str(n)])[1])
                   for _ in range(repeat)]
        gj = result["get_json"]
        gj["ref_cjson_s"] = statistics.median(cjson_s)
        gj["ref_rps"] = n / (n / get["ref_rps"] + gj["ref_cjson_s"])
        gj["ratio"] = gj["flowlua_rps"] / gj["ref_rps"]
        log(f"  GET + :json()  flowlua {gj['flowlua_rps']:8.0f} req/s  libcurl + lua-cjson {gj['ref_rps']:8.0f} req/s"
            f"  ratio {gj['ratio']:.2f}")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"))
    ap.add_argument("--lua", default="lua5.4")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-json", action="store_true", help="only the GET row (no lua-cjson needed)")
    args = ap.parse_args()
    try:
        r = measure(os.path.abspath(args.flowlua), args.n, args.concurrency, args.repeat,
                    args.lua, with_json=not args.no_json)
    except BenchError as e:
        return benchlib.fail_cli("http/run.py", e)
    print(f"body {r['body_bytes']} bytes, {r['n']} GETs, concurrency {r['concurrency']}, "
          f"median of {r['repeat']}; flowlua req/s from the first request to the last response, "
          f"in the flow (whole process: {r['get']['flowlua_whole_process_rps']:.0f} req/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
