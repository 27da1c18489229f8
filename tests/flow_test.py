#!/usr/bin/env python3
"""Runs one flow test: a Lua script whose header comments say how to run it
and what must come out.

Directives (Lua comments at the top of the file, in order):

    -- run: NAME              starts a new case (optional for a single case)
    -- args: --param n=3 {script}   command line; {script} is the test file,
                              {dir} the folder holding it (default: {script})
    -- env: NAME=VALUE        environment for the case (repeatable)
    -- exit: N                expected exit code (default 0)
    -- stderr: REGEX          must match somewhere in stderr (repeatable)
    -- stdout: REGEX          must match somewhere in stdout (repeatable)
    -- not-stderr: REGEX      must not match stderr (repeatable)
    -- not-stdout: REGEX      must not match stdout (repeatable)
    -- json-lines: stderr     every non-empty stderr line is a JSON object
    -- signal: SIGINT after REGEX   send the signal once stderr matches
                              (repeatable: each is sent once, in order)
    -- max-seconds: X         the case must finish within X seconds
    -- min-seconds: X         and take at least X seconds
    -- timeout: X             kill the case after X seconds (default 60)

Each case runs in a fresh temporary working directory. The driver prints
both the expectation and what happened for every failure, then a closing
line "N passed, N failed" and exits non-zero if any case failed.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time


DIRECTIVES = {"run", "args", "env", "exit", "stderr", "stdout", "not-stderr",
              "not-stdout", "json-lines", "signal", "max-seconds",
              "min-seconds", "timeout"}


def parse_cases(path):
    cases, current = [], None

    def case():
        nonlocal current
        if current is None:
            current = new_case("default")
            cases.append(current)
        return current

    def new_case(name):
        return {"name": name, "args": "{script}", "env": {}, "exit": 0,
                "stderr": [], "stdout": [], "not_stderr": [],
                "not_stdout": [], "json_lines": False, "signals": [],
                "max_seconds": None, "min_seconds": None, "timeout": 60.0}

    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^--\s*([a-z-]+):\s?(.*?)\s*$", line)
            if m and m.group(1) not in DIRECTIVES:
                m = None  # a comment that happens to contain a colon
            if not m:
                if line.strip() and not line.startswith("--"):
                    break  # directives end at the first line of code
                continue
            key, value = m.group(1), m.group(2)
            if key == "run":
                current = new_case(value)
                cases.append(current)
            elif key == "args":
                case()["args"] = value
            elif key == "env":
                k, _, v = value.partition("=")
                case()["env"][k] = v
            elif key == "exit":
                case()["exit"] = int(value)
            elif key in ("stderr", "stdout", "not-stderr", "not-stdout"):
                case()[key.replace("-", "_")].append(value)
            elif key == "json-lines":
                case()["json_lines"] = True
            elif key == "signal":
                sig, _, pattern = value.partition(" after ")
                case()["signals"].append((getattr(signal, sig.strip()), pattern))
            elif key in ("max-seconds", "min-seconds", "timeout"):
                case()[key.replace("-", "_")] = float(value)
    return cases or [new_case("default")]


def run_case(binary, script, case):
    """Returns a list of failure messages (empty when the case passed)."""
    argv = [binary] + [a.replace("{script}", script)
                       .replace("{dir}", os.path.dirname(script))
                       for a in shlex.split(case["args"])]
    env = dict(os.environ)
    env.update(case["env"])
    with tempfile.TemporaryDirectory(prefix="flowlua-test-") as cwd:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err_chunks, out_chunks = [], []
        pending_signals = list(case["signals"])
        sent = []

        def read_stderr():
            for line in iter(proc.stderr.readline, b""):
                err_chunks.append(line)
                text = b"".join(err_chunks).decode("utf-8", "replace")
                # Each signal's pattern must appear after the previous signal.
                while pending_signals and re.search(
                        pending_signals[0][1], text[sent[-1][1]:] if sent else text, re.M):
                    sig, pattern = pending_signals.pop(0)
                    proc.send_signal(sig)
                    sent.append((pattern, len(text)))

        def read_stdout():
            out_chunks.append(proc.stdout.read())

        readers = [threading.Thread(target=read_stderr),
                   threading.Thread(target=read_stdout)]
        for t in readers:
            t.start()
        timed_out = False
        try:
            proc.wait(timeout=case["timeout"])
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
        for t in readers:
            t.join()
        elapsed = time.monotonic() - started

    stderr = b"".join(err_chunks).decode("utf-8", "replace")
    stdout = b"".join(out_chunks).decode("utf-8", "replace")
    problems = []
    if timed_out:
        problems.append(f"did not finish within {case['timeout']} s (killed)")
    if proc.returncode != case["exit"]:
        problems.append(f"exit code: expected {case['exit']}, got {proc.returncode}")
    for pattern in case["stderr"]:
        if not re.search(pattern, stderr, re.M):
            problems.append(f"stderr does not match: {pattern}")
    for pattern in case["stdout"]:
        if not re.search(pattern, stdout, re.M):
            problems.append(f"stdout does not match: {pattern}")
    for pattern in case["not_stderr"]:
        m = re.search(pattern, stderr, re.M)
        if m:
            problems.append(f"stderr matches what it must not: {pattern} "
                            f"(found {m.group(0)!r})")
    for pattern in case["not_stdout"]:
        m = re.search(pattern, stdout, re.M)
        if m:
            problems.append(f"stdout matches what it must not: {pattern} "
                            f"(found {m.group(0)!r})")
    if case["json_lines"]:
        for n, line in enumerate(stderr.splitlines(), 1):
            if not line.strip():
                continue
            try:
                if not isinstance(json.loads(line), dict):
                    raise ValueError("not an object")
            except ValueError as e:
                problems.append(f"stderr line {n} is not a JSON object ({e}): {line[:200]}")
                break
    for _, pattern in pending_signals:
        problems.append(f"never saw {pattern!r} in stderr to send its signal")
    if case["max_seconds"] is not None and elapsed > case["max_seconds"]:
        problems.append(f"took {elapsed:.2f} s, expected at most {case['max_seconds']} s")
    if case["min_seconds"] is not None and elapsed < case["min_seconds"]:
        problems.append(f"took {elapsed:.2f} s, expected at least {case['min_seconds']} s")
    if problems:
        problems.append("command: " + " ".join(shlex.quote(a) for a in argv))
        problems.append("--- stdout ---\n" + stdout[-3000:])
        problems.append("--- stderr ---\n" + stderr[-6000:])
    return problems


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: flow_test.py FLOWLUA_BINARY TEST.lua")
    binary, script = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    passed = failed = 0
    for case in parse_cases(script):
        problems = run_case(binary, script, case)
        if problems:
            failed += 1
            print(f"FAIL {os.path.basename(script)} [{case['name']}]")
            for p in problems:
                print("  " + p.replace("\n", "\n  "))
        else:
            passed += 1
            print(f"ok   {os.path.basename(script)} [{case['name']}]")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
