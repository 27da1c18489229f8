#!/usr/bin/env python3
"""Runs one flow test: a Lua script whose header comments say how to run it
and what must come out.

Directives (Lua comments at the top of the file, in order):

    -- run: NAME              starts a new case (optional for a single case)
    -- args: --param n=3 {script}   command line; {script} is the test file,
                              {dir} the folder holding it, {scripts} the
                              repository's scripts/ folder (default: {script})
    -- env: NAME=VALUE        environment for the case (repeatable)
    -- before: N ARGS         first run flowlua with ARGS in the case's
                              folder and environment; it must exit N
                              (repeatable, in order: for history and resume)
    -- after: N ARGS          then, after the run and its file checks, run
                              flowlua with ARGS the same way; it must exit N
                              (repeatable, in order): a flow that checks
                              what the run left, with {stderr} in ARGS the
                              path of a file holding the run's stderr
    -- exit: N                expected exit code (default 0)
    -- stderr: REGEX          must match somewhere in stderr (repeatable)
    -- stdout: REGEX          must match somewhere in stdout (repeatable)
    -- not-stderr: REGEX      must not match stderr (repeatable)
    -- not-stdout: REGEX      must not match stdout (repeatable)
    -- json-lines: stderr     every non-empty stderr line is a JSON object
    -- signal: SIGINT after REGEX   send the signal once stderr matches
                              (after the previous signal); "after +1.5s":
                              1.5 s after the previous signal (repeatable:
                              each is sent once, in order)
    -- file: PATH = EXPECTED  after the run, the file PATH (relative to the
                              case's working directory) holds exactly the
                              bytes of the file EXPECTED (repeatable)
    -- no-file: PATH          after the run, PATH does not exist (repeatable)
    -- max-seconds: X         the case must finish within X seconds
    -- min-seconds: X         and take at least X seconds
    -- timeout: X             kill the case after X seconds (default 60)
    -- server: http [https]   run tests/support/server/testserver.py for the
                              case, on 127.0.0.1 ports of its own, stopped
                              after the case; before the first "-- run:" it applies to
                              every case ("-- server: none" turns it off for
                              one). The flow gets TEST_HTTP_URL
                              (http://127.0.0.1:PORT), with https also
                              TEST_HTTPS_URL (https://127.0.0.1:PORT2) and
                              TEST_CA_FILE (the server's self-signed
                              certificate); {http}, {https} and {ca_file} are
                              replaced in args and env values.

    -- sqlite-only: WHY        (the file) skipped when the suite runs with
                              its history in PostgreSQL (--pg URI, below):
                              it reads the SQLite file itself

With --pg URI (flow_test.py --pg URI BINARY TEST.lua) every case that does
not name its own state (--state, FLOWLUA_STATE) runs with FLOWLUA_STATE=URI,
on an empty schema: the suite again, with the history in PostgreSQL.

Every case also gets TEST_FIXTURES, the absolute path of
tests/support/fixtures, TEST_SUPPORT, that of tests/support (the test server
and its helpers are in its server/ folder), and TEST_SCRIPTS, that of
scripts/; {fixtures}, {support} and {scripts} are replaced with them in args,
env values and file paths.

Each case runs in a fresh temporary working directory. The driver prints
both the expectation and what happened for every failure, then a closing
line "N passed, N failed" and exits non-zero if any case failed.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


DIRECTIVES = {"run", "args", "env", "exit", "stderr", "stdout", "not-stderr",
              "not-stdout", "json-lines", "signal", "max-seconds",
              "min-seconds", "timeout", "server", "file", "no-file", "before",
              "after", "sqlite-only"}

# This file is tests/support/drivers/flow_test.py.
SUPPORT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(SUPPORT)
FIXTURES = os.path.join(SUPPORT, "fixtures")
SCRIPTS = os.path.join(os.path.dirname(TESTS), "scripts")
SERVER = os.path.join(SUPPORT, "server", "testserver.py")
MAKE_CERT = os.path.join(SUPPORT, "server", "make-cert.sh")
# Seconds a test server may take to write its port while it runs: no
# deadline for a slow start on a loaded machine, only an end to a hang.
SERVER_START_LIMIT = 120
# The {name} replacements every case gets (the server adds its own).
PLACES = {"fixtures": FIXTURES, "support": SUPPORT, "scripts": SCRIPTS}


def parse_server(path, value):
    words = set(value.replace(",", " ").split())
    if not words or not words <= {"http", "https", "none"} or (
            "none" in words and len(words) > 1):
        raise SystemExit(f"{path}: '-- server:' takes http, https or none, got {value!r}")
    return set() if "none" in words else words | {"http"}


def parse_cases(path):
    cases, current = [], None
    file_server = set()  # "-- server:" before any case: every case's default

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
                "files": [], "no_files": [], "before": [], "after": [],
                "max_seconds": None, "min_seconds": None, "timeout": 60.0,
                "server": set(file_server)}

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
            elif key == "file":
                got, sep, expected = value.partition(" = ")
                if not sep:
                    raise SystemExit(f"{path}: '-- file:' takes PATH = EXPECTED, got {value!r}")
                case()["files"].append((got.strip(), expected.strip()))
            elif key in ("before", "after"):
                code, _, args = value.partition(" ")
                case()[key].append((int(code), args))
            elif key == "no-file":
                case()["no_files"].append(value)
            elif key == "json-lines":
                case()["json_lines"] = True
            elif key == "signal":
                sig, _, pattern = value.partition(" after ")
                case()["signals"].append((getattr(signal, sig.strip()), pattern))
            elif key in ("max-seconds", "min-seconds", "timeout"):
                case()[key.replace("-", "_")] = float(value)
            elif key == "server":
                if current is None:
                    file_server = parse_server(path, value)
                else:
                    current["server"] = parse_server(path, value)
    return cases or [new_case("default")]


class TestServer:
    """tests/support/server/testserver.py in the background for one case."""

    cert_dir = None  # one self-signed certificate per driver run

    def __init__(self, kinds, max_seconds):
        self.kinds, self.max_seconds = kinds, max_seconds
        self.proc, self.err_file, self.urls, self.stderr = None, None, {}, ""
        self.dir = tempfile.mkdtemp(prefix="flowlua-server-")

    @classmethod
    def certificate(cls):
        if cls.cert_dir is None:
            cert_dir = tempfile.mkdtemp(prefix="flowlua-cert-")
            made = subprocess.run(["sh", MAKE_CERT, cert_dir], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if made.returncode != 0:
                shutil.rmtree(cert_dir, ignore_errors=True)
                raise RuntimeError("cannot make a certificate: " +
                                   made.stdout.decode("utf-8", "replace"))
            cls.cert_dir = cert_dir
        return os.path.join(cls.cert_dir, "cert.pem"), os.path.join(cls.cert_dir, "key.pem")

    def start(self):
        """Starts the server and waits for its ports; raises RuntimeError."""
        port_file = os.path.join(self.dir, "port")
        argv = [sys.executable, SERVER, "--port-file", port_file,
                "--max-seconds", str(self.max_seconds), "--exit-with-parent"]
        if "https" in self.kinds:
            cert, key = self.certificate()
            argv += ["--tls-cert", cert, "--tls-key", key,
                     "--tls-port-file", port_file + ".tls"]
            self.urls["ca_file"] = cert
        self.err_file = open(os.path.join(self.dir, "stderr"), "w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err_file)
        # The server writes its port file once it listens (renamed into
        # place when complete, the HTTPS one first). How long that takes
        # depends on the machine's load, so wait for it as long as the
        # server lives, and fail at once if it exits; SERVER_START_LIMIT
        # only ends a server that hangs. Its stderr goes with the failure
        # (run_case).
        limit = time.monotonic() + SERVER_START_LIMIT
        while not os.path.exists(port_file):
            try:
                code = self.proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                if time.monotonic() > limit:
                    raise RuntimeError(
                        f"test server still running but wrote no port after "
                        f"{SERVER_START_LIMIT} s: hung") from None
                continue
            raise RuntimeError(f"test server exited with code {code} before "
                               "writing its port")
        with open(port_file) as f:
            self.urls["http"] = f"http://127.0.0.1:{int(f.read())}"
        if "https" in self.kinds:
            with open(port_file + ".tls") as f:
                self.urls["https"] = f"https://127.0.0.1:{int(f.read())}"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.err_file is not None:
            self.err_file.seek(0)
            self.stderr = self.err_file.read().decode("utf-8", "replace")
            self.err_file.close()
            self.err_file = None
        shutil.rmtree(self.dir, ignore_errors=True)


def run_case(binary, script, case):
    """Returns a list of failure messages (empty when the case passed)."""
    if not case["server"]:
        return run_flow(binary, script, case, dict(PLACES))
    server = TestServer(case["server"], max_seconds=case["timeout"] + 60)
    try:
        try:
            server.start()
        except RuntimeError as e:
            problems = [str(e)]
        else:
            problems = run_flow(binary, script, case,
                                dict(server.urls, **PLACES))
    finally:
        server.stop()
    if problems and server.stderr.strip():
        problems.append("--- test server stderr ---\n" + server.stderr[-3000:])
    return problems


def check_files(cwd, case, fill):
    """The case's file expectations, checked in its working directory."""
    problems = []
    for got, expected in case["files"]:
        got_path = os.path.join(cwd, fill(got))
        with open(fill(expected), "rb") as f:
            want = f.read()
        try:
            with open(got_path, "rb") as f:
                have = f.read()
        except OSError as e:
            problems.append(f"file {got}: cannot read it ({e.strerror})")
            continue
        if have != want:
            problems.append(f"file {got} differs from {expected}:\n"
                            f"--- expected ---\n{want.decode('utf-8', 'replace')[:2000]}"
                            f"--- got ---\n{have.decode('utf-8', 'replace')[:2000]}")
    for path in case["no_files"]:
        if os.path.lexists(os.path.join(cwd, fill(path))):
            problems.append(f"file {path} exists but must not")
    return problems


def run_after(case, command, cwd, env, stderr):
    """The case's after: steps, {stderr} a file holding the run's stderr;
    failure messages (empty when each exited as expected)."""
    with tempfile.TemporaryDirectory(prefix="flowlua-after-") as tmp:
        log = os.path.join(tmp, "stderr.txt")
        with open(log, "wb") as f:
            f.write(stderr)
        for code, args in case["after"]:
            after = command(args, stderr=log)
            done = subprocess.run(after, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=case["timeout"])
            if done.returncode != code:
                return [f"after: {shlex.join(after)}: expected exit {code}, "
                        f"got {done.returncode}",
                        "--- its stderr ---\n" + done.stderr.decode("utf-8", "replace")[-6000:]]
    return []


# --pg URI: the cases run again with their history in PostgreSQL (the
# FLOWLUA_STATE they get), each on an empty schema, but those that name
# their own state (--state, FLOWLUA_STATE: :memory:, a file's errors) and
# the files marked "-- sqlite-only: WHY" (they read the SQLite file).
PG_URI = None


def keeps_own_state(case):
    words = [case["args"]] + [a for _, a in case["before"]] + \
        [a for _, a in case["after"]]
    return any("--state" in w for w in words) or "FLOWLUA_STATE" in case["env"]


def reset_pg():
    done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", PG_URI,
                           "-c", "DROP SCHEMA IF EXISTS flowlua CASCADE"],
                          stdin=subprocess.DEVNULL, capture_output=True)
    if done.returncode != 0:
        raise SystemExit("cannot empty the PostgreSQL history: " +
                         done.stderr.decode("utf-8", "replace"))


def sqlite_only(script):
    with open(script, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("--"):
                break
            if line.startswith("-- sqlite-only:"):
                return line[len("-- sqlite-only:"):].strip()
    return None


def run_flow(binary, script, case, places):
    """Runs flowlua for one case; places are the {name} replacements and
    TEST_* variables that go with them."""
    def fill(text):
        for name, value in places.items():
            text = text.replace("{" + name + "}", value)
        return text

    def command(args, stderr=None):
        return [binary] + [fill(a.replace("{script}", script)
                                .replace("{dir}", os.path.dirname(script))
                                .replace("{stderr}", stderr or "{stderr}"))
                           for a in shlex.split(args)]

    argv = command(case["args"])
    env = dict(os.environ)
    env["TEST_FIXTURES"] = FIXTURES
    env["TEST_SUPPORT"] = SUPPORT
    env["TEST_SCRIPTS"] = SCRIPTS
    for name, var in (("http", "TEST_HTTP_URL"), ("https", "TEST_HTTPS_URL"),
                      ("ca_file", "TEST_CA_FILE")):
        if name in places:
            env[var] = places[name]
    env.update({k: fill(v) for k, v in case["env"].items()})
    if PG_URI and not keeps_own_state(case):
        env["FLOWLUA_STATE"] = PG_URI
        reset_pg()
    with tempfile.TemporaryDirectory(prefix="flowlua-test-") as cwd:
        for code, args in case["before"]:
            before = command(args)
            done = subprocess.run(before, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=case["timeout"])
            if done.returncode != code:
                return [f"before: {shlex.join(before)}: expected exit {code}, "
                        f"got {done.returncode}",
                        "--- stderr ---\n" + done.stderr.decode("utf-8", "replace")[-6000:]]
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err_chunks, out_chunks = [], []
        pending_signals = list(case["signals"])
        sent = []
        lock = threading.Lock()

        def due(pattern, text):
            """Whether a signal's condition holds: its pattern in stderr
            after the previous signal, or "+Ns": N seconds after it."""
            m = re.fullmatch(r"\+(\d+(?:\.\d+)?)s", pattern)
            if m:
                return bool(sent) and time.monotonic() - sent[-1][2] >= float(m.group(1))
            return re.search(pattern, text[sent[-1][1]:] if sent else text, re.M)

        def send_due():
            with lock:
                text = b"".join(err_chunks).decode("utf-8", "replace")
                while pending_signals and proc.poll() is None and due(pending_signals[0][1], text):
                    sig, pattern = pending_signals.pop(0)
                    proc.send_signal(sig)
                    sent.append((pattern, len(text), time.monotonic()))

        def read_stderr():
            for line in iter(proc.stderr.readline, b""):
                with lock:
                    err_chunks.append(line)
                send_due()

        def timed_signals():
            while pending_signals and proc.poll() is None:
                send_due()
                time.sleep(0.01)

        def read_stdout():
            out_chunks.append(proc.stdout.read())

        readers = [threading.Thread(target=read_stderr),
                   threading.Thread(target=read_stdout),
                   threading.Thread(target=timed_signals)]
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
        file_problems = check_files(cwd, case, fill)
        if case["after"] and not timed_out:
            file_problems += run_after(case, command, cwd, env, b"".join(err_chunks))

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
    problems += file_problems
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
    global PG_URI
    argv = sys.argv[1:]
    if len(argv) == 4 and argv[0] == "--pg":
        PG_URI, argv = argv[1], argv[2:]
    if len(argv) != 2:
        raise SystemExit("usage: flow_test.py [--pg URI] FLOWLUA_BINARY TEST.lua")
    binary, script = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    if PG_URI and sqlite_only(script):
        print(f"skip {os.path.basename(script)}: sqlite-only: {sqlite_only(script)}")
        sys.exit(0)
    passed = failed = 0
    try:
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
    finally:
        if TestServer.cert_dir:
            shutil.rmtree(TestServer.cert_dir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
