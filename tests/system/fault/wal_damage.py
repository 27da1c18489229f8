#!/usr/bin/env python3
"""A damaged WAL must be reported, not silently lose runs.

    wal_damage.py FLOWLUA

Three runs leave their commits in `.flowlua/state.db-wal` (flowlua does not
checkpoint a small WAL when it exits). The test checks that the WAL holds
several commits, then overwrites 64 bytes in the middle of a frame that has
commits after it — as a bad disk or a careless copy would — and checks
that SQLite alone (python's sqlite3, on a copy) now sees fewer runs: the
damage is silent to SQLite. Then:
  - `flowlua runs`, `flowlua show last` and a new run exit 1 with a message
    naming the -wal file, the frame and the lost commits, and change
    nothing (the -wal and the database keep their bytes);
  - after the repair the message proposes (PRAGMA wal_checkpoint(TRUNCATE),
    here through python's sqlite3), `runs` and a new run work again;
  - a WAL whose commit was not finished (frames after the last commit,
    as a process killed mid-commit leaves them) is not damage, nor is a
    last commit frame whose page was never written (a process killed
    between SQLite's write of the frame's header and of its page);
  - nor are frames of an earlier WAL generation (other salts) after the
    current ones.
Exits 1 after printing every problem.
"""
import hashlib
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

from faultcases import run_cases

FLOWLUA = os.path.abspath(sys.argv[1])
PROBLEMS = []
FLOW = """local flow = require "flowlua"
local t = flow.task("t", function() return 1 end)
return flow.define("f", function() t() end)
"""


def problem(case, text):
    PROBLEMS.append(f"{case}: {text}")


def run(args, cwd):
    return subprocess.run([FLOWLUA] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def frames(wal):
    """(offset, is_commit, salts) of every whole frame in the WAL bytes."""
    page = struct.unpack(">I", wal[8:12])[0]
    size = 24 + page
    out = []
    for off in range(32, len(wal) - size + 1, size):
        _, commit, s1, s2 = struct.unpack(">IIII", wal[off:off + 16])
        out.append((off, commit != 0, (s1, s2)))
    return out, size


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sqlite_runs(folder):
    """How many runs SQLite itself reads, from a copy of the history."""
    copy = tempfile.mkdtemp(prefix="flowlua-wal-copy-")
    try:
        for name in ("state.db", "state.db-wal"):
            shutil.copy(os.path.join(folder, ".flowlua", name), copy)
        db = sqlite3.connect(os.path.join(copy, "state.db"))
        n = db.execute("SELECT count(*) FROM flow_run").fetchone()[0]
        db.close()
        return n
    finally:
        shutil.rmtree(copy)


def history(folder, runs=3):
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    for _ in range(runs):
        done = run(["flow.lua"], folder)
        if done.returncode != 0:
            raise SystemExit(f"making the history failed:\n{done.stderr}")
    return os.path.join(folder, ".flowlua", "state.db-wal")


def case_damaged(folder):
    case = "64 bytes overwritten in the middle of the WAL"
    wal_path = history(folder)
    wal = bytearray(open(wal_path, "rb").read())
    found, size = frames(wal)
    commits = [i for i, (_, c, _) in enumerate(found) if c]
    if len(commits) < 3:
        problem(case, f"the WAL holds {len(commits)} commits; the test needs 3 or more")
        return
    # A frame in the middle of the file with commits after it: its page's
    # bytes in the middle.
    target = min(range(len(found)), key=lambda i: abs(found[i][0] - len(wal) // 2))
    target = min(target, commits[-2])
    off = found[target][0] + 24 + size // 2
    wal[off:off + 64] = b"\xa5" * 64
    with open(wal_path, "wb") as f:
        f.write(wal)
    lost = sum(1 for i in commits if i >= target)
    if sqlite_runs(folder) >= 3:
        problem(case, "SQLite still reads all 3 runs: the damage did not take")
    db_path = os.path.join(folder, ".flowlua", "state.db")
    before = (digest(db_path), digest(wal_path))
    want = (rf"state store '\.flowlua/state\.db': its WAL file '\.flowlua/state\.db-wal' is "
            rf"damaged at frame {target + 1}: {lost} committed transaction\(s\) after it cannot "
            rf"be read.*PRAGMA wal_checkpoint\(TRUNCATE\)")
    for args in (["runs"], ["show", "last"], ["flow.lua"]):
        done = run(args, folder)
        if done.returncode != 1 or not re.search(want, done.stderr):
            problem(case, f"flowlua {' '.join(args)}: exit {done.returncode}, expected 1 and "
                          f"{want!r}:\n{done.stderr[-2000:]}")
        if "t: Running" in done.stderr:
            problem(case, f"flowlua {' '.join(args)} started a task")
    if (digest(db_path), digest(wal_path)) != before:
        problem(case, "the database or its WAL was changed")
    # The repair the message proposes: keep what can be read.
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    done = run(["runs"], folder)
    if done.returncode != 0:
        problem(case, f"runs after the repair: exit {done.returncode}\n{done.stderr[-2000:]}")
    done = run(["flow.lua"], folder)
    if done.returncode != 0:
        problem(case, f"a run after the repair: exit {done.returncode}\n{done.stderr[-2000:]}")


def case_unfinished_commit(folder):
    case = "frames after the last commit (a commit never finished)"
    wal_path = history(folder)
    wal = bytearray(open(wal_path, "rb").read())
    found, size = frames(wal)
    # The last commit frame's bytes, made a non-commit frame with a bad
    # checksum: as if the process died while writing the transaction.
    last = max(i for i, (_, c, _) in enumerate(found) if c)
    off = found[last][0]
    wal[off + 4:off + 8] = b"\0\0\0\0"
    wal[off + 16:off + 24] = b"\x01" * 8
    with open(wal_path, "wb") as f:
        f.write(wal)
    done = run(["runs"], folder)
    if done.returncode != 0:
        problem(case, f"runs: exit {done.returncode}\n{done.stderr[-2000:]}")


def case_torn_last_commit(folder):
    case = "a last commit frame whose page was never written (a torn write)"
    wal_path = history(folder)
    wal = bytearray(open(wal_path, "rb").read())
    found, size = frames(wal)
    # SQLite writes a frame's header, then its page: a process killed in
    # between leaves the header (commit flag, salts, the checksum of the
    # new page) over the old page bytes. Nothing of this WAL follows it;
    # frames of an older generation may. That transaction never committed.
    last = max(i for i, (_, c, _) in enumerate(found) if c)
    if last != len(found) - 1:
        problem(case, "frames follow the last commit frame; the test expects none")
        return
    off = found[last][0]
    wal[off + 24:off + size] = bytes(size - 24)  # the old page: zeros here
    old = bytearray(wal[found[0][0]:found[0][0] + size])
    old[8:16] = bytes(b ^ 0xff for b in old[8:16])
    wal += old
    with open(wal_path, "wb") as f:
        f.write(wal)
    for args in (["runs"], ["show", "last"], ["flow.lua"]):
        done = run(args, folder)
        if done.returncode != 0 or "damaged" in done.stderr:
            problem(case, f"flowlua {' '.join(args)}: exit {done.returncode}\n"
                          f"{done.stderr[-2000:]}")


def case_old_generation(folder):
    case = "frames of an earlier WAL generation after the current ones"
    wal_path = history(folder)
    wal = bytearray(open(wal_path, "rb").read())
    found, size = frames(wal)
    # A frame with other salts (and a commit flag) appended after the valid
    # ones, then a broken frame of the same old generation.
    old = bytearray(wal[found[-1][0]:found[-1][0] + size])
    old[4:8] = struct.pack(">I", 10)
    old[8:16] = bytes(b ^ 0xff for b in old[8:16])
    wal += old + old
    with open(wal_path, "wb") as f:
        f.write(wal)
    done = run(["runs"], folder)
    if done.returncode != 0 or done.stdout.count("1 Success") != 3:
        problem(case, f"runs: exit {done.returncode}\n{done.stdout}\n{done.stderr[-2000:]}")


def dead_journal(run_rowid):
    """A dead process's journal (version 2) with one state change of task
    run 0 of run run_rowid."""
    header = b"flowlua journal 2\n".ljust(4096, b"\0")
    body = struct.pack("=qII", run_rowid, 0, ord("S"))  # j_head: J_STATE
    body += struct.pack("=diiII", 1.7e9, 2, 1, 0xffffffff, 1)
    return header + struct.pack("=I", len(body)) + body + b"\0" * 4


def case_journal_of_a_lost_run(folder):
    case = "a dead process's journal holds a run the database does not"
    history(folder, runs=1)
    journal = os.path.join(folder, ".flowlua", "state.db.flowlua-999999-0.log")
    with open(journal, "wb") as f:
        f.write(dead_journal(99))
    done = run(["runs"], folder)
    if done.returncode != 0 or not re.search(
            r"WARN .*the journal '\S*state\.db\.flowlua-999999-0\.log' of a process that died "
            r"holds changes of run #99, which the database does not hold .*PRAGMA quick_check "
            r"finds the file sound\): those changes were dropped", done.stderr):
        problem(case, f"runs: exit {done.returncode}, no warning:\n{done.stderr[-2000:]}")
    if os.path.exists(journal):
        problem(case, "the journal is still there")


def case_journal_of_a_lost_run_damaged_file(folder):
    case = "a journal of a run the database lacks, and a damaged database"
    history(folder, runs=1)
    db_path = os.path.join(folder, ".flowlua", "state.db")
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with open(db_path, "r+b") as f:  # a page of the tables, as a bad disk would
        f.seek(4096 * 5)
        f.write(b"garbage!" * 12 + b"xxxx")
    journal = os.path.join(folder, ".flowlua", "state.db.flowlua-999999-0.log")
    with open(journal, "wb") as f:
        f.write(dead_journal(99))
    done = run(["runs"], folder)
    if done.returncode != 1 or not re.search(
            r"holds changes of run #99, which the database does not hold, and PRAGMA "
            r"quick_check finds it damaged \(.+\); nothing was changed", done.stderr):
        problem(case, f"runs: exit {done.returncode}, expected 1 and the damage named:\n"
                      f"{done.stderr[-2000:]}")
    if not os.path.exists(journal):
        problem(case, "the journal was removed: it must wait for the repair")


def main():
    cases = [case_damaged, case_unfinished_commit, case_torn_last_commit, case_old_generation,
             case_journal_of_a_lost_run, case_journal_of_a_lost_run_damaged_file]
    run_cases(cases, PROBLEMS, "flowlua-wal-damage-")


if __name__ == "__main__":
    main()
