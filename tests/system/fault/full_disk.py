#!/usr/bin/env python3
"""csv.append on a full disk leaves the file as it was (issue 16, item 3).

    full_disk.py FLOWLUA

A real full disk: a 64 KiB tmpfs mounted in a private mount namespace
(`unshare -m` as root, else `unshare -rm` in a user namespace). Where
neither is allowed, the file size limit stands in for the full disk
(RLIMIT_FSIZE with SIGXFSZ ignored, so the write fails with EFBIG): the
check never silently skips.

In the folder: out.csv with whole records, then the disk filled by a
filler file. An append bigger than what is left must fail naming the
file and leave out.csv byte-identical; after the filler is removed the
same append succeeds and the file is the old bytes plus whole records.
"""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

from faultcases import in_mount_namespace, report

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW = os.path.join(HERE, "full_disk_append.lua")
ROWS = 800  # about 24 KB of records: more than the slack of a full disk,
# and two appends fit on the empty disk


def run_append(flowlua, out, first, limit=None):
    env = dict(os.environ, OUT=out, ROWS=str(ROWS), FIRST=str(first))

    def lower_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([flowlua, "--state", ":memory:", "--no-status", FLOW],
                          env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lower_limit if limit else None)


def expected_records(first):
    return "".join(f"{first + i},some text for record {i}\n"
                   for i in range(1, ROWS + 1)).encode()


def fill(folder):
    """Writes a filler file until the disk is full."""
    with open(os.path.join(folder, "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 512)
        except OSError:
            pass


def check(flowlua, folder, limit_mode):
    out = os.path.join(folder, "out.csv")
    problems = []
    first = run_append(flowlua, out, 0)
    if first.returncode != 0:
        return [f"the first append failed: {first.stderr}"]
    with open(out, "rb") as f:
        before = f.read()
    if before != b"id,text\n" + expected_records(0):
        problems.append("the first append did not write the expected records")
    limit = None
    if limit_mode:
        limit = len(before) + 1000  # room for a part of the next append
    else:
        fill(folder)
    failed = run_append(flowlua, out, ROWS, limit)
    cause = "File too large" if limit_mode else "No space left on device"
    want = f"csv.append: cannot append to '{out}': {cause}"
    if failed.returncode != 1 or want not in failed.stderr:
        problems.append(f"the append on a full disk: exit {failed.returncode},"
                        f" want 1 and {want!r} in stderr:\n{failed.stderr}")
    with open(out, "rb") as f:
        after = f.read()
    if after != before:
        problems.append(f"the failed append changed the file: {len(before)}"
                        f" bytes before, {len(after)} after, ending "
                        f"{after[-40:]!r}")
    if not limit_mode:
        os.unlink(os.path.join(folder, "filler"))
    retry = run_append(flowlua, out, ROWS)
    if retry.returncode != 0:
        problems.append(f"the retry failed: {retry.stderr}")
    with open(out, "rb") as f:
        final = f.read()
    if final != before + expected_records(ROWS):
        problems.append("after the retry the file is not the old records "
                        "plus the new ones, whole")
    return problems


def inner(flowlua, folder):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder],
                   check=True)
    problems = check(flowlua, folder, False)
    return report(problems, "FAIL: ")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        return inner(sys.argv[2], sys.argv[3])
    flowlua = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="flowlua-full-disk-")
    try:
        print("a 64 KiB tmpfs of its own")
        rc = in_mount_namespace(__file__, [flowlua, work])
        if rc is not None:
            print("ok" if rc == 0 else "FAILED")
            return rc
        print("no mount namespace: RLIMIT_FSIZE stands in for the full disk")
        problems = check(flowlua, work, True)
        code = report(problems, "FAIL: ")
        print("ok" if code == 0 else "FAILED")
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
