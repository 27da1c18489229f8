#!/usr/bin/env python3
"""Worker wire benchmark: the codec of worker jobs and results
(runtime/core/wire.c, runtime/engine/value_wire.c) against JSON on the same
Lua values, in one process: flowlua's own JSON codec (value_json.c, what the
history uses) and lua-cjson when it is installed.

    python3 tests/perf/bench/wire/run.py [--build-dir build-bench] [--workdir DIR]

bench_wire.c is compiled with -O2 against BUILD_DIR/libflowlua.a (a Release
build: `python3 tests/perf/bench/all.py` makes build-bench, or
`cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DFLOWLUA_TESTS=OFF
&& cmake --build build-bench`). Needs cc, pkg-config, liblua5.4-dev,
libsqlite3-dev, libcsv-dev. Prints its table; not part of all.py's rows
yet (the worker pool, issue 17, will add the tasks/s row it serves).
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO


def compile_bench(build_dir, workdir):
    lib = os.path.join(build_dir, "libflowlua.a")
    if not os.path.exists(lib):
        raise BenchError(f"no {lib}: build flowlua in Release there first (see --help)")
    includes = [f"-I{os.path.join(REPO, 'runtime', d)}" for d in ("core", "store", "engine")]
    includes.append(f"-I{os.path.join(REPO, 'include')}")
    return benchlib.compile_c(os.path.join(HERE, "bench_wire.c"), os.path.join(workdir, "bench_wire"),
                              packages=["lua5.4", "sqlite3"],
                              libs=includes + [lib] + benchlib.pkg_flags("lua5.4") +
                              benchlib.pkg_flags("sqlite3") + ["-lcsv", "-ldl", "-lpthread", "-lm"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--workdir", help="where the program is compiled (default: a temporary folder)")
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="flowlua-wire-") as tmp:
            exe = compile_bench(os.path.abspath(args.build_dir), args.workdir or tmp)
            return subprocess.run([exe]).returncode
    except BenchError as e:
        print(f"wire bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
