#!/usr/bin/env python3
"""Control characters from outside never reach a terminal raw.

    escapes.py FLOWLUA

A task fails with an error (and logs a line) holding an OSC title change,
a clear-screen, a carriage return and a C1 CSI ("\\x1b]0;pwned\\x07\\x1b[2J",
"\\r", U+009B): what a hostile server's error body could carry. flowlua runs
on a pseudo-terminal with the live status, then with --no-status (the
library's own log sink); `show last` runs on one too. None of the raw
sequences may appear in the terminal's bytes, the escaped forms must; the
same for the message of a script that fails while loading. With
stderr in a file the bytes are kept as they are, and `show --json` gives
the exact text back.
"""
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time

HANG_GUARD = 60.0
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\rhidden\u009bZ"
RAW = [b"\x1b]0;pwned", b"\x07", b"\x1b[2J", b"\rhidden", b"\xc2\x9b"]
ESCAPED = [b"\\x1b]0;pwned\\x07\\x1b[2J\\x0dhidden\\xc2\\x9bZ"]

FLOW = r"""
local flow = require "flowlua"
local hostile = "\27]0;pwned\7\27[2J\rhidden\u{9b}Z"
local fetch = flow.task("fetch", function()
  flow.log.info("server said " .. hostile)
  error("server said " .. hostile, 0)
end)
return flow.define("hostile", {}, function() fetch() end)
"""


def on_terminal(argv, cwd, env):
    """Runs argv with stdin, stdout and stderr on a new pseudo-terminal;
    returns (exit code, every byte the terminal received)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    got = bytearray()
    deadline = time.monotonic() + HANG_GUARD
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no end of output within the hang guard" % argv)
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal is gone
                break
            if not chunk:
                break
            got += chunk
        return proc.wait(timeout=HANG_GUARD), bytes(got)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def check_screen(what, code, screen, want_code):
    assert code == want_code, "%s: exit %d, want %d:\n%r" % (what, code, want_code, screen)
    for raw in RAW:
        assert raw not in screen, "%s: %r reached the terminal raw:\n%r" % (what, raw, screen)
    for esc in ESCAPED:
        assert esc in screen, "%s: the escaped form %r is missing:\n%r" % (what, esc, screen)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    workdir = tempfile.mkdtemp(prefix="flowlua-escapes-")
    env = dict(os.environ, TERM="xterm", COLUMNS="200", LINES="50")
    env.pop("NO_COLOR", None)
    failed = 0
    with open(os.path.join(workdir, "hostile.lua"), "w") as f:
        f.write(FLOW)

    def case(name, fn):
        nonlocal failed
        try:
            fn()
            print("ok   %s" % name)
        except AssertionError as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))

    def live_status():
        code, screen = on_terminal([flowlua, "hostile.lua"], workdir, env)
        check_screen("run with the live status", code, screen, 1)

    def plain_log():
        code, screen = on_terminal([flowlua, "hostile.lua", "--no-status"], workdir, env)
        check_screen("run with --no-status", code, screen, 1)

    def show():
        code, screen = on_terminal([flowlua, "show", "last"], workdir, env)
        check_screen("show last", code, screen, 0)
        code, screen = on_terminal([flowlua, "runs"], workdir, env)
        assert code == 0 and b"\x1b" not in screen, "runs: %r" % screen

    def file_keeps_bytes():
        with open(os.path.join(workdir, "log.txt"), "wb") as log:
            code = subprocess.run([flowlua, "hostile.lua"], cwd=workdir, env=env,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  timeout=HANG_GUARD).returncode
        with open(os.path.join(workdir, "log.txt"), "rb") as log:
            text = log.read()
        assert code == 1, "exit %d" % code
        assert HOSTILE.encode() in text, "a log file keeps the bytes as they are:\n%r" % text
        shown = subprocess.run([flowlua, "show", "last", "--json"], cwd=workdir, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=HANG_GUARD)
        assert shown.returncode == 0, shown.stderr
        errors = [t["error"].split("\nstack traceback:")[0]
                  for t in json.loads(shown.stdout)["tasks"]]
        assert errors == ["server said " + HOSTILE], "show --json: %r" % errors

    def load_error():
        with open(os.path.join(workdir, "load.lua"), "w") as f:
            f.write('error("cannot start: \\27]0;pwned\\7\\27[2J\\rhidden\\u{9b}Z", 0)\n')
        code, screen = on_terminal([flowlua, "load.lua"], workdir, env)
        assert code == 2, "exit %d: %r" % (code, screen)
        for raw in RAW:
            assert raw not in screen, "load error: %r reached the terminal raw:\n%r" % (raw, screen)
        assert ESCAPED[0] in screen, "load error: not escaped:\n%r" % screen

    case("live status", live_status)
    case("a script that fails while loading", load_error)
    case("--no-status", plain_log)
    case("show and runs", show)
    case("file and --json keep the bytes", file_keeps_bytes)
    print("%d passed, %d failed" % (5 - failed, failed))
    if failed:
        print("kept %s" % workdir)
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
