#!/usr/bin/env python3
"""CSV benchmark: flowlua's csv.write / csv.read / csv.rows against plain C
programs and a plain Lua loop doing the same work on N rows of 3 short
fields (every tenth with a quote and a comma), each operation in a fresh
process, median of R runs.

    python3 tests/perf/bench/csv/run.py [--flowlua build-bench/flowlua] [--rows 1000000] [--runs 5]

References (the C ones compiled here; needs cc, libcsv-dev, liblua5.4-dev, lua5.4):
  ref_libcsv.c      plain C on libcsv: writebuf (libcsv's quoting, one
                    buffer: the write floor), write (csv_fwrite per field),
                    read (csv_parse, every field malloc'd into a row list:
                    the read floor), count (csv_parse, callbacks only count)
  ref_tables.lua    a plain Lua 5.4 loop building the same row tables from
                    pre-split strings: the table-building floor
  ref_lua_tables.c  libcsv callbacks filling Lua tables in a bare lua_State
                    (for the record: a C binding's floor); with "stream",
                    each row handed to a Lua function instead (a plain
                    streaming binding, against csv.rows)

  ref_python.py     Python's csv module (Debian's python3): csv.reader
                    streamed (adding up field lengths, as bench.lua's
                    stream does), the same while holding the file read
                    whole, list(csv.reader), csv.DictReader

Prints rows/s for each side and the ratio flowlua/reference (issue 7:
write >= 0.7x libcsv; read >= 0.4x libcsv and >= 0.9x the table floor;
issue 22: streaming >= 2x Python, >= 1.5x while holding a table, read
>= 3x list(csv.reader), records >= 2.5x DictReader).
"""
import argparse
import filecmp
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
TARGET_WRITE = 0.7        # of libcsv's rows/s
TARGET_READ_C = 0.4       # of libcsv's rows/s
TARGET_READ_TABLES = 0.9  # of the table-building floor's rows/s
# Issue 22: ahead of Python's csv module (ref_python.py), same file, same run.
TARGET_PY_STREAM = 2.0          # csv.rows vs for row in csv.reader(f)
TARGET_PY_STREAM_HOLDING = 1.5  # the same while each holds the file read whole
TARGET_PY_READ = 3.0            # csv.read vs list(csv.reader(f))
TARGET_PY_RECORDS = 2.5         # csv.rows{header=true} vs csv.DictReader
TARGET_STREAM_BINDING = 1.0     # csv.rows vs a plain libcsv-to-Lua streaming binding
# Debian's python3, the one a user of the machine has (not a pyenv's).
PYTHON = os.environ.get("DEBIAN_PYTHON3", "/usr/bin/python3")


def compile_refs(outdir, cc=None):
    """Compiles the two C references into outdir; returns their paths."""
    return {
        "libcsv": benchlib.compile_c(os.path.join(HERE, "ref_libcsv.c"), os.path.join(outdir, "ref_libcsv"),
                                     cc, libs=["-lcsv"]),
        "lua_tables": benchlib.compile_c(os.path.join(HERE, "ref_lua_tables.c"),
                                         os.path.join(outdir, "ref_lua_tables"), cc,
                                         packages=["lua5.4"], libs=["-lcsv"]),
    }


def rate(cmd, rows, env=None):
    _, out = benchlib.run_checked(cmd, env=env)
    got = benchlib.pairs(benchlib.last_line(out, cmd[0]), os.path.basename(cmd[0]))
    if got.get("rows") != str(rows):
        raise BenchError(f"{' '.join(cmd)}: expected {rows} rows, got {out!r}")
    return rows / float(got["seconds"])


def measure(flowlua, workdir, lua="lua5.4", rows=1000000, runs=5, refs=None, log=print):
    """Returns {"flowlua": {op: rows/s}, "refs": {name: rows/s}, "pairs":
    [...]}: medians of `runs` processes each, and one entry per comparison
    (operation, reference, ratio, target). refs: compile_refs' result
    (compiled into workdir when None)."""
    os.makedirs(workdir, exist_ok=True)
    lua = benchlib.require_program(lua, "apt-get install lua5.4")
    refs = refs or compile_refs(workdir)
    data = os.path.join(workdir, "data.csv")
    out = os.path.join(workdir, "out.csv")
    benchlib.run_checked([refs["libcsv"], "writebuf", data, str(rows)])

    def median_rate(cmd, env=None):
        samples = [rate(cmd, rows, env) for _ in range(runs)]
        return statistics.median(samples), samples

    def flowlua_op(op, path):
        env = dict(os.environ, CSV_BENCH_OP=op, CSV_BENCH_FILE=path, CSV_BENCH_ROWS=str(rows))
        return median_rate([flowlua, "--quiet", "--state", ":memory:", os.path.join(HERE, "bench.lua")], env)

    mine = {"write": flowlua_op("write", out), "read": flowlua_op("read", data), "rows": flowlua_op("rows", data),
            "stream": flowlua_op("stream", data), "stream_holding": flowlua_op("stream_holding", data),
            "records": flowlua_op("records", data)}
    # Writing the same rows means writing the same file, byte for byte.
    if not filecmp.cmp(out, data, shallow=False):
        raise BenchError(f"csv.write's file {out} differs from libcsv's {data}: not the same rows")
    theirs = {
        "libcsv writebuf": median_rate([refs["libcsv"], "writebuf", out + ".c", str(rows)]),
        "libcsv csv_fwrite": median_rate([refs["libcsv"], "write", out + ".c", str(rows)]),
        "libcsv read": median_rate([refs["libcsv"], "read", data]),
        "libcsv count": median_rate([refs["libcsv"], "count", data]),
        "lua tables": median_rate([lua, os.path.join(HERE, "ref_tables.lua"), str(rows)]),
        "libcsv into lua_State": median_rate([refs["lua_tables"], data]),
        "libcsv into a Lua function": median_rate([refs["lua_tables"], data, "stream"]),
    }
    python = benchlib.require_program(PYTHON, "apt-get install python3")
    ref_py = os.path.join(HERE, "ref_python.py")
    for name, op in (("python csv.reader", "stream"), ("python csv.reader holding", "stream_holding"),
                     ("python list(csv.reader)", "read"), ("python DictReader", "records")):
        theirs[name] = median_rate([python, ref_py, op, data, str(rows)])
    comparisons = [("write", "libcsv writebuf", TARGET_WRITE), ("read", "libcsv read", TARGET_READ_C),
                   ("read", "lua tables", TARGET_READ_TABLES), ("rows", "libcsv read", TARGET_READ_C),
                   ("rows", "lua tables", TARGET_READ_TABLES),
                   ("stream", "libcsv into a Lua function", TARGET_STREAM_BINDING),
                   ("stream", "python csv.reader", TARGET_PY_STREAM),
                   ("stream_holding", "python csv.reader holding", TARGET_PY_STREAM_HOLDING),
                   ("read", "python list(csv.reader)", TARGET_PY_READ),
                   ("records", "python DictReader", TARGET_PY_RECORDS)]
    pairs = []
    for op, ref, target in comparisons:
        ratio = mine[op][0] / theirs[ref][0]
        pairs.append({"op": op, "ref": ref, "flowlua_rows_per_s": mine[op][0], "ref_rows_per_s": theirs[ref][0],
                      "ratio": ratio, "target_min": target, "meets_target": ratio >= target})
        log(f"  csv.{op:<14} {mine[op][0]:>11,.0f} rows/s  vs  {ref:<26} {theirs[ref][0]:>12,.0f} rows/s"
            f"  ratio {ratio:.2f}  (target >= {target})")
    return {"rows": rows, "runs": runs,
            "flowlua": {op: {"rows_per_s": m, "samples": s} for op, (m, s) in mine.items()},
            "refs": {name: {"rows_per_s": m, "samples": s} for name, (m, s) in theirs.items()},
            "pairs": pairs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"))
    ap.add_argument("--lua", default="lua5.4")
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="flowlua-csv-bench-") as tmp:
            r = measure(os.path.abspath(args.flowlua), tmp, args.lua, args.rows, args.runs)
    except BenchError as e:
        return benchlib.fail_cli("csv/run.py", e)
    print(f"{r['rows']} rows of 3 short fields, median of {r['runs']} runs")
    for name, ref in r["refs"].items():
        print(f"  {name:<22} {ref['rows_per_s']:>12,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
