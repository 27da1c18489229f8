#!/usr/bin/env python3
"""HTTP benchmark: flowlua's task:map against a plain libcurl multi program,
both fetching a 10 KB JSON body from nginx on 127.0.0.1, same concurrency.

    python3 tests/bench/http/run.py --flowlua build-release/flowlua

Needs nginx (apt-get install nginx-light) and a C compiler with libcurl.
Prints requests/s for each and the ratio flowlua/reference (target >= 0.9).
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nginx(root, port):
    body = {"id": 1, "count": 4, "items": [{"n": i, "name": "item-%d" % i, "tags": ["a", "b"]} for i in range(200)]}
    text = json.dumps(body)
    with open(os.path.join(root, "body.json"), "w") as f:
        f.write(text)
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
  keepalive_requests 100000;
  default_type application/json;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, len(text)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx did not start")


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


def timed(cmd, env=None):
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return time.monotonic() - t0, done.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowlua", default="build-release/flowlua")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="flowlua-http-bench-")
    os.chmod(root, 0o755)  # nginx's workers run as another user and must read it
    ref = os.path.join(root, "ref_multi")
    cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl"], capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", os.path.join(HERE, "ref_multi.c"), "-o", ref] + cflags, check=True)
    port = free_port()
    nginx, size = start_nginx(root, port)
    url = f"http://127.0.0.1:{port}/body.json"
    try:
        rows = []
        decodes = ("0", "1") if os.environ.get("BENCH_SKIP_JSON") != "1" else ("0",)
        for decode in decodes:
            env = dict(os.environ, BENCH_URL=url, BENCH_N=str(args.n), BENCH_C=str(args.concurrency), DECODE=decode)
            fl, fl_inner, rf = [], [], []
            for _ in range(args.repeat):
                # flowlua: whole process, so startup is counted against it.
                t, out = timed([args.flowlua, "--quiet", os.path.join(HERE, "fetch_map.lua")], env)
                assert f"requests {args.n} bytes {args.n * size} " in out, out
                fl.append(args.n / t)
                fl_inner.append(args.n / float(out.split()[5]))
                if decode == "0":
                    _, out = timed([ref, url, str(args.n), str(args.concurrency)])
                    assert out.split()[5] == str(args.n * size), out
                    rf.append(args.n / float(out.split()[3]))
            rows.append((decode, statistics.median(fl_inner), statistics.median(rf) if rf else None,
                         statistics.median(fl)))
        ref_rps = rows[0][2]
        # The HTTP + JSON floor: the libcurl program's time plus lua-cjson
        # decoding the same body n times in a plain Lua 5.4 process.
        cjson_loop = os.path.join(root, "cjson_loop.lua")
        with open(cjson_loop, "w") as f:
            f.write(CJSON_LOOP)
        cjson_s = []
        for _ in range(args.repeat):
            _, out = timed(["lua5.4", cjson_loop, os.path.join(root, "body.json"), str(args.n)])
            cjson_s.append(float(out))
        ref_json_rps = args.n / (args.n / ref_rps + statistics.median(cjson_s))
        print(f"body {size} bytes, {args.n} GETs, concurrency {args.concurrency}, median of {args.repeat}")
        print("flowlua req/s: from the first request to the last response, in the flow;")
        print("whole process: the same including startup and teardown.")
        print(f"{'workload':<16}{'flowlua req/s':>15}{'whole process':>15}{'libcurl req/s':>15}{'ratio':>8}")
        print(f"{'GET':<16}{rows[0][1]:>15.0f}{rows[0][3]:>15.0f}{ref_rps:>15.0f}{rows[0][1] / ref_rps:>8.2f}")
        if len(rows) > 1:
            print(f"{'GET + :json()':<16}{rows[1][1]:>15.0f}{rows[1][3]:>15.0f}{ref_json_rps:>15.0f}"
                  f"{rows[1][1] / ref_json_rps:>8.2f}")
            print("(the GET + :json() reference: libcurl's time plus lua-cjson decoding the body n times)")
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
