#!/usr/bin/env python3
"""Temporary files of atomic writes killed mid-way are cleaned up (issue 16,
item 26).

    stale_temp.py FLOWLUA

A flowlua streaming a big CSV through csv.writer is killed with SIGKILL
once its temporary file exists and grows (polled, no fixed sleep). Files
are then planted beside it: one named by a live pid (this test's), a
symbolic link and a file of another user both named by the dead pid, and
names that do not match the pattern exactly. The next flowlua writing in
that folder must remove the killed writer's temporary file and nothing
else; a stale file planted after its first write there stays (a folder is
swept once per runtime).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from faultcases import report

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "stale_temp_write.lua")


def temp_files(out):
    return sorted(n for n in os.listdir(out) if n.startswith(".big.csv."))


def wait_for_growing_temp(proc, out, limit=60):
    """Returns the temporary file's name once it has grown twice."""
    seen = {}
    deadline = time.monotonic() + limit  # a hang guard, not a window
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the writer ended early: {proc.stderr.read()}")
        for name in temp_files(out):
            try:
                size = os.stat(os.path.join(out, name)).st_size
            except FileNotFoundError:
                continue
            sizes = seen.setdefault(name, [])
            if not sizes or size > sizes[-1]:
                sizes.append(size)
            if len(sizes) >= 3:
                return name
        time.sleep(0.01)
    raise SystemExit("no growing temporary file appeared")


def main():
    flowlua = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="flowlua-stale-temp-")
    out = os.path.join(work, "out")
    os.mkdir(out)
    problems = []
    try:
        cmd = [flowlua, "--state", ":memory:", "--no-status", FLOW]
        writer = subprocess.Popen(cmd, cwd=work, env=dict(os.environ, CASE="endless"),
                                  stderr=subprocess.PIPE, text=True)
        stale = wait_for_growing_temp(writer, out)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        dead = writer.pid
        print(f"killed pid {dead} while it wrote {stale}")

        def plant(name, target=None):
            path = os.path.join(out, name)
            if target:
                os.symlink(target, path)
            else:
                with open(path, "w") as f:
                    f.write("planted")
            return name

        with open(os.path.join(work, "victim"), "w") as f:
            f.write("victim")
        kept = [plant(f".live.txt.flowlua-{os.getpid()}-0123abcd.tmp"),
                plant(f".link.txt.flowlua-{dead}-0123abcd.tmp", "../victim"),
                plant(f".x.flowlua-{dead}-0123abcz.tmp"),
                plant(f".x.flowlua-{dead}-0123abcd.tmp.bak"),
                plant(f"x.flowlua-{dead}-0123abcd.tmp"),
                plant(f".x.flowlua-{dead}-123abcd.tmp")]
        if os.geteuid() == 0:
            kept.append(plant(f".other.flowlua-{dead}-0123abcd.tmp"))
            os.chown(os.path.join(out, kept[-1]), 65534, 65534)
        else:
            print("not root: the check of another user's file is left out")
        second = subprocess.run(cmd, cwd=work, capture_output=True, text=True,
                                env=dict(os.environ, CASE="write", DEAD_PID=str(dead)),
                                timeout=120)
        if second.returncode != 0:
            problems.append(f"the second write failed: {second.stderr}")
        left = temp_files(out)
        if left:
            problems.append(f"the killed writer's temporary file stayed: {left}")
        for name in kept + [f".late.txt.flowlua-{dead}-0badf00d.tmp"]:
            if not os.path.lexists(os.path.join(out, name)):
                problems.append(f"{name} was removed")
        with open(os.path.join(work, "victim")) as f:
            if f.read() != "victim":
                problems.append("the link's target changed")
        code = report(problems, "FAIL: ")
        print("ok" if code == 0 else "FAILED")
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
