#!/usr/bin/env python3
"""Writes to what flowlua may not or must not replace (issue 16, items 11
and 25).

    write_targets.py FLOWLUA

1. A folder flowlua cannot create files in: every writer (fs.write,
   json.write, csv.write, csv.writer, csv.append) must say so naming the
   folder and the cause: "cannot write 'ro/x.txt': cannot create a file in
   folder 'ro': Read-only file system". Root ignores permission bits, so the
   folder is a read-only bind mount in a private mount namespace; without
   one, root runs flowlua as nobody on a 0555 folder (setpriv), and another
   user gets a 0555 folder ("Permission denied").
2. `flowlua report last --html /dev/null` leaves /dev/null the null
   character device. In the namespace, /dev is a tmpfs of its own with a
   null device made there, so a broken flowlua cannot break the machine's;
   without one the real /dev/null is checked after the write.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

from faultcases import in_mount_namespace, report

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "write_targets_flow.lua")


def check_folder_messages(flowlua, work, cause, prefix=()):
    out = subprocess.run(list(prefix) + [flowlua, "--state", ":memory:", "--no-status", FLOW],
                         cwd=work, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    where = "cannot create a file in folder 'ro': " + cause
    want = [f"fs.write: cannot write 'ro/x.txt': {where}",
            f"fs.write: cannot write 'ro/old.csv': {where}",
            f"json.write: cannot write 'ro/x.json': {where}",
            f"csv.write: cannot write 'ro/x.csv': {where}",
            f"csv.writer: cannot write 'ro/y.csv': {where}",
            f"csv.append: cannot append to 'ro/z.csv': {where}"]
    problems = []
    if out.returncode != 0 or len(lines) != len(want):
        return [f"the flow: exit {out.returncode}, stdout {out.stdout!r}, stderr {out.stderr}"]
    for got, w in zip(lines, want):
        if not got.endswith(w):
            problems.append(f"want ...{w!r}, got {got!r}")
    if sorted(os.listdir(os.path.join(work, "ro"))) != ["old.csv"]:
        problems.append(f"ro/ holds {os.listdir(os.path.join(work, 'ro'))}")
    return problems


def make_folder(work):
    os.mkdir(os.path.join(work, "ro"))
    with open(os.path.join(work, "ro", "old.csv"), "w") as f:
        f.write("old\n")


def check_dev_null(flowlua, work):
    ran = subprocess.run([flowlua, "--no-status", FLOW], cwd=work,
                         capture_output=True, text=True, timeout=120)
    if ran.returncode != 0:
        return [f"the run for the report failed: {ran.stderr}"]
    rep = subprocess.run([flowlua, "report", "last", "--html", "/dev/null"],
                         cwd=work, capture_output=True, text=True, timeout=120)
    problems = []
    if rep.returncode != 0:
        problems.append(f"report --html /dev/null: exit {rep.returncode}: {rep.stderr}")
    st = os.lstat("/dev/null")
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 1 or os.minor(st.st_rdev) != 3:
        problems.append(f"/dev/null is no longer the null device: mode {st.st_mode:o}")
    left = [n for n in os.listdir("/dev") if "null" in n and n != "null"]
    if left:
        problems.append(f"files left in /dev: {left}")
    return problems


def inner(flowlua, work):
    ro = os.path.join(work, "ro")
    subprocess.run(["mount", "--bind", ro, ro], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
    problems = check_folder_messages(flowlua, work, "Read-only file system")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", "/dev"], check=True)
    subprocess.run(["mknod", "-m", "666", "/dev/null", "c", "1", "3"], check=True)
    problems += check_dev_null(flowlua, work)
    return report(problems, "FAIL: ")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        return inner(sys.argv[2], sys.argv[3])
    flowlua = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="flowlua-write-targets-")
    try:
        make_folder(work)
        print("a read-only bind mount and a /dev of its own")
        rc = in_mount_namespace(__file__, [flowlua, work], root_only=True)
        if rc is None:
            if os.geteuid() == 0:
                print("no mount namespace: flowlua runs as nobody on a 0555 folder")
                os.chmod(work, 0o755)
                os.chmod(os.path.join(work, "ro"), 0o555)
                prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            else:
                print("not root: a 0555 folder")
                os.chmod(os.path.join(work, "ro"), 0o555)
                prefix = []
            problems = check_folder_messages(flowlua, work, "Permission denied", prefix)
            print("the real /dev/null is checked after the write")
            problems += check_dev_null(flowlua, work)
            rc = report(problems, "FAIL: ")
        print("ok" if rc == 0 else "FAILED")
        return rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
