#!/usr/bin/env python3
"""CSV benchmark: flowlua's csv.write / csv.read / csv.rows against plain C
programs doing the same work on N rows of 3 short fields, each operation
in a fresh process, best of R runs.

    python3 tests/bench/csv/run.py --flowlua build-csv/flowlua [--rows 1000000] [--runs 5]

References (both compiled here; needs cc, libcsv-dev, liblua5.4-dev):
  ref_libcsv.c      plain C on libcsv: csv_fwrite per field; csv_parse with
                    every field malloc'd into an in-memory row list
  ref_lua_tables.c  libcsv callbacks filling Lua tables in a bare lua_State:
                    the floor for any Lua binding's read

Prints rows/s for each side and the ratio flowlua/reference (issue 7 asks
write >= 0.7 and read >= 0.4 against plain C libcsv).
"""
import argparse, os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def rate(cmd, env=None):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(re.search(r"rows_per_s (\d+)", out).group(1))


def best(runs, cmd, env=None):
    return max(rate(cmd, env) for _ in range(runs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowlua", required=True)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    flowlua = os.path.abspath(args.flowlua)
    lua_flags = subprocess.run(["pkg-config", "--cflags", "--libs", "lua5.4"], check=True,
                               capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="flowlua-csv-bench-") as tmp:
        ref = os.path.join(tmp, "ref_libcsv")
        floor = os.path.join(tmp, "ref_lua_tables")
        subprocess.run(["cc", "-O2", os.path.join(HERE, "ref_libcsv.c"), "-o", ref, "-lcsv"], check=True)
        subprocess.run(["cc", "-O2", os.path.join(HERE, "ref_lua_tables.c"), "-o", floor, "-lcsv"]
                       + lua_flags, check=True)
        data = os.path.join(tmp, "data.csv")
        out = os.path.join(tmp, "out.csv")
        subprocess.run([ref, "writebuf", data, str(args.rows)], check=True, capture_output=True)

        def lua(op, path):
            env = dict(os.environ, CSV_BENCH_OP=op, CSV_BENCH_FILE=path,
                       CSV_BENCH_ROWS=str(args.rows))
            return best(args.runs, [flowlua, os.path.join(HERE, "bench.lua"), "--quiet"], env)

        mine = {"write": lua("write", out), "read": lua("read", data), "rows": lua("rows", data)}
        refs = [
            ("write", "C: csv_fwrite per field", best(args.runs, [ref, "write", out + ".1", str(args.rows)])),
            ("write", "C: one buffer, minimal quoting", best(args.runs, [ref, "writebuf", out + ".2", str(args.rows)])),
            ("read", "C: csv_parse, fields malloc'd", best(args.runs, [ref, "read", data])),
            ("read", "C: csv_parse, count only", best(args.runs, [ref, "count", data])),
            ("read", "libcsv -> Lua tables (floor)", best(args.runs, [floor, data])),
            ("read", "the same, collector stopped", best(args.runs, [floor, data, "gcstop"])),
            ("rows", "C: csv_parse, fields malloc'd", best(args.runs, [ref, "read", data])),
        ]
        print(f"{args.rows} rows of 3 short fields, best of {args.runs}")
        for op, name, ref_rate in refs:
            print(f"  csv.{op:<5} {mine[op]:>11,.0f} rows/s  vs  {name:<32} {ref_rate:>12,.0f} rows/s"
                  f"  ratio {mine[op] / ref_rate:.2f}")


if __name__ == "__main__":
    sys.exit(main())
