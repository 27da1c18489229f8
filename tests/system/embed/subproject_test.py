#!/usr/bin/env python3
"""flowlua as a subproject of an embedder's CMake tree: configures
subproject/CMakeLists.txt (add_subdirectory of this checkout, then an
executable linked to flowlua::flowlua), checks that none of flowlua's tests
is defined there and that the embedder's own compile flags carry neither
flowlua's warnings nor its sanitizers, builds and runs the program.

    subproject_test.py SOURCE_DIR CC CMAKE
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"subproject_test.py: {' '.join(cmd)} exited {p.returncode}:"
                 f"\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def main():
    source, cc, cmake = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="flowlua-subproject-") as d:
        build = os.path.join(d, "build")
        run([cmake, "-S", os.path.join(HERE, "subproject"), "-B", build,
             f"-DFLOWLUA_SOURCE_DIR={os.path.abspath(source)}",
             f"-DCMAKE_C_COMPILER={cc}", "-DCMAKE_BUILD_TYPE=Release"])
        cache = open(os.path.join(build, "CMakeCache.txt")).read()
        if not re.search(r"^FLOWLUA_TESTS:BOOL=OFF$", cache, re.M):
            sys.exit("subproject_test.py: FLOWLUA_TESTS is not OFF in a "
                     "subproject")
        # The embedder's own target is compiled without flowlua's flags.
        flags = run([cmake, "--build", build, "--target", "run_string",
                     "--", "VERBOSE=1"])
        app_lines = [l for l in flags.splitlines()
                     if "run_string.c" in l and " -c " in l]
        if not app_lines:
            sys.exit("subproject_test.py: no compile line for run_string.c")
        for bad in ("-Wshadow", "-fsanitize"):
            if bad in app_lines[0]:
                sys.exit(f"subproject_test.py: the embedder's code got "
                         f"flowlua's {bad}: {app_lines[0]}")
        out = run([os.path.join(build, "run_string")], cwd=d)
        if not re.match(r"^flowlua (\d+\.\d+\.\d+) \(header \1\)$",
                        out.splitlines()[0]):
            sys.exit(f"subproject_test.py: unexpected output:\n{out}")
        print("subproject: built with flowlua::flowlua, no tests, no flags "
              "leaked; run_string ran")


if __name__ == "__main__":
    main()
