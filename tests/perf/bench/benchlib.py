"""Helpers shared by the benchmark scripts of tests/perf/bench: running a
command and failing with what it said, compiling a C reference, reading the
"key value key value" lines the benchmark programs print, and the 10 KB JSON
body that the HTTP and JSON workloads both use; REPO, the repository's root.

Standard library only. A failure raises BenchError, never exits, so that
all.py can record one failed workload and go on with the others; each
script's own command line turns it into a message and exit status 2.
"""
import json
import os
import shutil
import subprocess
import sys
import time

# The repository's root: this file is tests/perf/bench/benchlib.py.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class BenchError(Exception):
    """A workload could not be measured: a tool is missing, a program
    failed or printed something other than what it must."""


def tail(text, lines=15):
    return "\n".join(text.strip().splitlines()[-lines:])


def run_checked(cmd, env=None, cwd=None, timeout=600):
    """Runs cmd to completion; returns (wall seconds, stdout). Raises
    BenchError naming the command, its exit status and the end of its
    stderr when it fails or outlives timeout."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BenchError(f"{cmd[0]}: no such program") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)}: still running after {timeout} s") from None
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit {p.returncode}\n{tail(p.stderr)}")
    return wall, p.stdout


def pairs(line, what):
    """Reads "key value key value ..." (what a benchmark program prints) into
    a dict of strings; raises BenchError quoting the line when it is not."""
    words = line.split()
    if not words or len(words) % 2:
        raise BenchError(f"{what}: expected 'key value ...' pairs, got {line!r}")
    return dict(zip(words[0::2], words[1::2]))


def last_line(text, what):
    lines = text.strip().splitlines()
    if not lines:
        raise BenchError(f"{what}: printed nothing")
    return lines[-1]


def require_program(name, hint):
    """The full path of program `name` (PATH, then /usr/sbin for nginx and
    friends when PATH lacks it); BenchError with the install hint if none."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise BenchError(f"no '{name}' program ({hint})")
    return found


def require_lua_module(lua, module, hint):
    """BenchError unless `require(module)` works in the interpreter `lua`."""
    try:
        run_checked([lua, "-e", f"require '{module}'"], timeout=60)
    except BenchError:
        raise BenchError(f"{lua} cannot load the Lua module '{module}' ({hint})") from None


def pkg_flags(package):
    try:
        p = subprocess.run(["pkg-config", "--cflags", "--libs", package],
                           capture_output=True, text=True)
    except FileNotFoundError:
        raise BenchError("no pkg-config (apt-get install pkg-config)") from None
    if p.returncode != 0:
        raise BenchError(f"pkg-config knows no '{package}': {p.stderr.strip()}")
    return p.stdout.split()


def compile_c(src, exe, cc=None, packages=(), libs=()):
    """Compiles one C reference program with -O2 (the references are the
    floor, so they get the optimiser too). Returns exe."""
    cc = cc or os.environ.get("CC", "cc")
    flags = [f for pkg in packages for f in pkg_flags(pkg)]
    cmd = [cc, "-O2", "-std=c11", src, "-o", exe] + flags + list(libs)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BenchError(f"no C compiler '{cc}' (apt-get install build-essential)") from None
    if p.returncode != 0:
        raise BenchError(f"could not compile {os.path.basename(src)}:\n"
                         f"{' '.join(cmd)}\n{tail(p.stderr)}")
    return exe


def json_body_10k():
    """The 10 KB JSON body of the HTTP and JSON workloads (10,212 bytes): an
    object holding 200 small records, each with an integer, a string and an
    array of two strings."""
    body = {"id": 1, "count": 4,
            "items": [{"n": i, "name": "item-%d" % i, "tags": ["a", "b"]} for i in range(200)]}
    return json.dumps(body)


def fail_cli(script, err):
    """How a script's own command line reports a BenchError."""
    print(f"{script}: {err}", file=sys.stderr)
    return 2
