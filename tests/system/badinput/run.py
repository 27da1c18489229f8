#!/usr/bin/env python3
"""Runs the bad-input corpus: inputs flowlua must refuse cleanly.

    run.py FLOWLUA_BINARY CATEGORY [CASE_NAME_REGEX]

CATEGORY names a file cases_CATEGORY.py in this folder, which holds a list
CASES of case.Case values (see case.py for what a case says). Each case
runs flowlua once in a fresh temporary folder holding the case's files,
with a time bound, and passes when:

  - flowlua exited by itself (no signal: no crash, no abort), in time;
  - no sanitizer reported anything (ASan, LSan, UBSan);
  - the exit code is the expected one and every expected regex matches
    stderr (what went wrong, where, why);
  - no stderr line is longer than MAX_LINE characters (a message is read
    by a person, not a dump of the input);
  - the files in `unchanged` hold the same bytes as before, and the folder
    holds no file the run had no business leaving (a temporary file, a
    half-written output, a -wal beside a database it refused).

Every failing case is printed with what was expected and what happened;
the last line is "N passed, N failed" and the exit status is 1 if any
case failed. A case marked known_issue (a reported bug not fixed yet) is
printed as KNOWN with its problems and does not fail the run, until it
passes: then it fails, so that the mark is removed.
"""
import hashlib
import importlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import rawhttp  # noqa: E402  (after the path is set)

MAX_LINE = 2000
SANITIZER_WORDS = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                             r"runtime error:|ThreadSanitizer")


def write_files(folder, files):
    for name, content in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if callable(content):
            content = content(folder)
        with open(path, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)


def listing(folder):
    """Every path under folder, relative, folders included."""
    found = set()
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_case(binary, case, server_url):
    """Returns a list of problems (empty when the case passed)."""
    with tempfile.TemporaryDirectory(prefix="flowlua-badinput-") as folder:
        env = dict(os.environ, **case.env)
        if server_url:
            env["BAD_URL"] = server_url
        write_files(folder, case.files)
        before = listing(folder)
        hashes = {name: digest(os.path.join(folder, name)) for name in case.unchanged}
        argv = [binary] + case.args
        started = time.monotonic()
        try:
            done = subprocess.run(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=case.max_seconds)
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as e:
            # subprocess.run has killed it (SIGKILL) by now.
            code, out, err = None, e.stdout or b"", e.stderr or b""
        elapsed = time.monotonic() - started
        after = listing(folder)
        problems = []
        for name, want in hashes.items():
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                problems.append(f"{name} was removed")
            elif digest(path) != want:
                problems.append(f"{name} was changed (it must be left byte for byte as it was)")
        stray = sorted(p for p in after - before if p not in case.may_create)
        if stray:
            problems.append("files left behind: " + ", ".join(stray))

    stderr = err.decode("utf-8", "replace")
    stdout = out.decode("utf-8", "replace")
    if code is None:
        problems.insert(0, f"did not finish within {case.max_seconds} s (killed)")
    elif code < 0:
        problems.insert(0, f"killed by signal {-code} (a crash)")
    elif code != case.exit:
        problems.insert(0, f"exit code: expected {case.exit}, got {code}")
    m = SANITIZER_WORDS.search(stderr)
    if m:
        problems.append(f"sanitizer report ({m.group(0)})")
    for pattern in case.stderr:
        if not re.search(pattern, stderr, re.M):
            problems.append(f"stderr does not match: {pattern}")
    for pattern in case.not_stderr:
        m = re.search(pattern, stderr, re.M)
        if m:
            problems.append(f"stderr matches what it must not: {pattern} (found {m.group(0)!r})")
    for n, line in enumerate(stderr.splitlines(), 1):
        if len(line) > MAX_LINE:
            problems.append(f"stderr line {n} is {len(line)} characters long: {line[:120]}...")
            break
    if problems:
        problems.append(f"command: {shlex.join(argv)} (in {elapsed:.2f} s)")
        problems.append("--- stdout ---\n" + stdout[-2000:])
        problems.append("--- stderr ---\n" + stderr[-4000:])
    return problems


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit("usage: run.py FLOWLUA_BINARY CATEGORY [CASE_NAME_REGEX]")
    binary = os.path.abspath(sys.argv[1])
    os.environ["FLOWLUA_BINARY"] = binary  # for cases whose input flowlua makes
    category = sys.argv[2]
    only = re.compile(sys.argv[3]) if len(sys.argv) == 4 else None
    cases = importlib.import_module("cases_" + category).CASES
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise SystemExit(f"cases_{category}.py: two cases share a name")
    passed = failed = known = 0
    with rawhttp.RawServer() as server:
        for case in cases:
            if only and not only.search(case.name):
                continue
            problems = run_case(binary, case, server.url if case.server else None)
            if problems and case.known_issue:
                known += 1
                print(f"KNOWN {category} [{case.name}]: {case.known_issue}")
                for p in problems:
                    print("  " + p.replace("\n", "\n  "))
            elif problems:
                failed += 1
                print(f"FAIL {category} [{case.name}]")
                for p in problems:
                    print("  " + p.replace("\n", "\n  "))
            elif case.known_issue:
                failed += 1
                print(f"FAIL {category} [{case.name}]: passes now; remove its known_issue mark")
            else:
                passed += 1
                print(f"ok   {category} [{case.name}]")
    print(f"{passed} passed, {failed} failed" + (f", {known} known issues" if known else ""))
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
