#!/usr/bin/env python3
"""JSON benchmark: flow.json against lua-cjson called from a plain Lua 5.4
script, on the same text, by the same script (bench.lua).

    python3 tests/perf/bench/json/run.py [--flowlua build-bench/flowlua] [--lua lua5.4]
                                    [--count 100000] [--big-mb 50] [--repeat 3]
                                    [--big-repeat N]

Four cases, each timed inside the process around the loop alone (os.clock,
processor time), median of --repeat (the big array: --big-repeat) processes
per side, interleaved:
  decode 10 KB   the HTTP workload's 10 KB body decoded --count times
  encode 10 KB   its decoded value encoded --count times
  decode 50 MB   one array of --big-mb MB (records like the body's) decoded once
  encode 50 MB   its decoded value encoded once
Ratio: flowlua's speed / lua-cjson's (target >= 0.9). Needs lua5.4 and
lua-cjson (apt-get install lua5.4 lua-cjson).
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
TARGET_RATIO = 0.9
CASES = [("decode_10k", "decode", "body"), ("encode_10k", "encode", "body"),
         ("decode_big", "decode", "big"), ("encode_big", "encode", "big")]


def write_big_array(path, megabytes):
    """An array of records shaped like the 10 KB body's items, at least
    `megabytes` MB (10^6 bytes) of text. Returns its length."""
    target = int(megabytes * 1e6)
    parts, size, i = [], 1, 0
    while size < target:
        part = '{"n":%d,"name":"item-%d","tags":["a","b"]}' % (i, i)
        parts.append(part)
        size += len(part) + 1
        i += 1
    text = "[" + ",".join(parts) + "]"
    with open(path, "w") as f:
        f.write(text)
    return len(text)


def measure(flowlua, workdir, lua="lua5.4", count=100000, big_mb=50, repeat=3, big_repeat=None, log=print):
    """Runs the four cases; returns {"cases": {name: {...}}, ...} with the
    median seconds of each side and their ratio (flowlua's speed over
    lua-cjson's: ref seconds / flowlua seconds). The 10 KB cases run
    `repeat` processes per side, the big ones `big_repeat` (default: the
    same)."""
    lua = benchlib.require_program(lua, "apt-get install lua5.4")
    benchlib.require_lua_module(lua, "cjson", "the reference; apt-get install lua-cjson")
    os.makedirs(workdir, exist_ok=True)
    files = {"body": os.path.join(workdir, "body-10k.json"), "big": os.path.join(workdir, "big.json")}
    with open(files["body"], "w") as f:
        f.write(benchlib.json_body_10k())
    sizes = {"body": os.path.getsize(files["body"]), "big": write_big_array(files["big"], big_mb)}
    script = os.path.join(HERE, "bench.lua")
    sides = {"flowlua": [flowlua, "--quiet", "--state", ":memory:", script], "ref": [lua, script]}

    cases = {}
    for name, op, data in CASES:
        n = count if data == "body" else 1
        runs = repeat if data == "body" else (big_repeat or repeat)
        env = dict(os.environ, JSON_BENCH_OP=op, JSON_BENCH_FILE=files[data], JSON_BENCH_COUNT=str(n))
        samples = {side: [] for side in sides}
        out_bytes = {}
        for _ in range(runs):
            for side, cmd in sides.items():
                _, out = benchlib.run_checked(cmd, env=env, cwd=workdir)
                got = benchlib.pairs(benchlib.last_line(out, f"json {name} ({side})"), f"json {name} ({side})")
                if got.get("op") != op or got.get("count") != str(n):
                    raise BenchError(f"json {name} ({side}): did not do {n} {op}(s): {out!r}")
                samples[side].append(float(got["seconds"]))
                out_bytes[side] = int(got["bytes"])
        fl, rf = statistics.median(samples["flowlua"]), statistics.median(samples["ref"])
        cases[name] = {"op": op, "count": n, "runs": runs, "input_bytes": sizes[data],
                       "output_bytes": out_bytes if op == "encode" else None,
                       "flowlua_s": fl, "ref_s": rf, "ratio": rf / fl,
                       "flowlua_samples": samples["flowlua"], "ref_samples": samples["ref"]}
        log(f"  json {name:<10} flowlua {fl:8.3f} s  lua-cjson {rf:8.3f} s  ratio {rf / fl:.2f}")
    return {"count": count, "big_bytes": sizes["big"], "body_bytes": sizes["body"],
            "repeat": repeat, "big_repeat": big_repeat or repeat,
            "clock": "os.clock (processor time of the loop)", "cases": cases}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"))
    ap.add_argument("--lua", default="lua5.4")
    ap.add_argument("--count", type=int, default=100000, help="decodes and encodes of the 10 KB body")
    ap.add_argument("--big-mb", type=float, default=50, help="size of the big array in MB")
    ap.add_argument("--repeat", type=int, default=3, help="processes per side for the 10 KB cases")
    ap.add_argument("--big-repeat", type=int, help="processes per side for the big array (default: --repeat)")
    ap.add_argument("--workdir", help="where the JSON files go (default: a new temporary folder)")
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="flowlua-json-bench-") as tmp:
            r = measure(os.path.abspath(args.flowlua), args.workdir or tmp, args.lua,
                        args.count, args.big_mb, args.repeat, args.big_repeat)
    except BenchError as e:
        return benchlib.fail_cli("json/run.py", e)
    print(f"body {r['body_bytes']} bytes x {r['count']}; big array {r['big_bytes']:,} bytes; "
          f"median of {r['repeat']}; ratio = flowlua's speed / lua-cjson's (target >= {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
