#!/usr/bin/env python3
"""The files of the run history, against a careless umask, a hostile
neighbour in a shared state folder, and a read-only mount.

    store_files.py FLOWLUA

  - modes: under umask 000, a fresh run creates `.flowlua` 0700 and
    state.db, its -wal and -shm and the process's journal 0600 (the journal's
    mode is read by the task itself, while the run holds it);
  - symlink: a symbolic link planted at the journal name the process will
    use (`state.db.flowlua-PID-0.log`, the pid being known because the
    shell execs flowlua) pointing to a file elsewhere: the run succeeds,
    the target is byte for byte unchanged, and a warning names the link;
  - read-only: `runs`, `show last` and `report last --html` read a history
    on a read-only bind mount (a private mount namespace: `unshare -m`),
    then with only the database file read-only and its folder writable,
    and leave no file behind. Needs root for the mount; without it the
    case fails (never skipped silently).

Exits 1 after printing every problem.
"""
import os
import re
import sqlite3
import stat
import subprocess
import sys

from faultcases import run_cases

FLOWLUA = os.path.abspath(sys.argv[1])
PROBLEMS = []

FLOW = """local flow = require "flowlua"
local t = flow.task("t", function()
  -- the journal exists while the run does: its mode, seen from inside
  assert(os.execute("stat -c %a .flowlua/state.db.flowlua-*.log > journal_mode.txt"))
  return 1
end)
return flow.define("f", function() t() end)
"""


def problem(case, text):
    PROBLEMS.append(f"{case}: {text}")


def run(argv, cwd, case, expect=0, umask=None, **kw):
    pre = (lambda: os.umask(umask)) if umask is not None else None
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          preexec_fn=pre, **kw)
    if done.returncode != expect:
        problem(case, f"{argv} exited {done.returncode}, expected {expect}\n"
                      f"--- stderr ---\n{done.stderr[-3000:]}")
    return done


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def case_modes(folder):
    case = "modes under umask 000"
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    run([FLOWLUA, "flow.lua"], folder, case, umask=0)
    want = {".flowlua": 0o700, ".flowlua/state.db": 0o600,
            ".flowlua/state.db-wal": 0o600, ".flowlua/state.db-shm": 0o600}
    for name, m in want.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            problem(case, f"{name} does not exist")
        elif mode(path) != m:
            problem(case, f"{name} is {oct(mode(path))}, expected {oct(m)}")
    seen = open(os.path.join(folder, "journal_mode.txt")).read().split()
    if seen != ["600"]:
        problem(case, f"the journal's mode seen by the task: {seen}, expected ['600']")


def case_symlink(folder):
    case = "a symbolic link at the journal's name"
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    target = os.path.join(folder, "target.txt")
    with open(target, "w") as f:
        f.write("the neighbour's file\n")
    os.mkdir(os.path.join(folder, ".flowlua"), 0o700)
    # $$ is the shell's pid, which exec hands to flowlua: the journal name
    # it will choose first.
    done = run(["sh", "-c", 'ln -s ../target.txt ".flowlua/state.db.flowlua-$$-0.log" && '
                f'exec "{FLOWLUA}" flow.lua'], folder, case)
    with open(target, "rb") as f:
        if f.read() != b"the neighbour's file\n":
            problem(case, "the link's target was changed")
    if not re.search(r"state\.db\.flowlua-\d+-0\.log' has a journal's name but is a "
                     r"symbolic link; left alone", done.stderr):
        problem(case, f"no warning names the link:\n{done.stderr[-2000:]}")
    links = [n for n in os.listdir(os.path.join(folder, ".flowlua"))
             if os.path.islink(os.path.join(folder, ".flowlua", n))]
    if len(links) != 1:
        problem(case, f"the link is gone or doubled: {links}")
    # A second process neither follows nor removes it.
    run([FLOWLUA, "runs"], folder, case)
    with open(target, "rb") as f:
        if f.read() != b"the neighbour's file\n":
            problem(case, "the link's target was changed by `runs`")


def under_ro_mount(folder, mount, commands):
    """Runs each flowlua command (a list of arguments) in a private mount
    namespace where `mount` (relative to folder) is bind-mounted read-only;
    returns [(exit code, stdout, stderr)]."""
    script = f"mount --bind -o ro {mount} {mount} || exit 99\n"
    for i, args in enumerate(commands):
        quoted = " ".join(f"'{a}'" for a in args)
        script += f'"{FLOWLUA}" {quoted} >out{i}.txt 2>err{i}.txt; echo $? >rc{i}.txt\n'
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"cannot bind-mount read-only (root and unshare -m are needed): "
                         f"{done.returncode} {done.stderr}")
    results = []
    for i in range(len(commands)):
        read = lambda name: open(os.path.join(folder, name)).read()
        results.append((int(read(f"rc{i}.txt")), read(f"out{i}.txt"), read(f"err{i}.txt")))
        for name in (f"rc{i}.txt", f"out{i}.txt", f"err{i}.txt"):
            os.remove(os.path.join(folder, name))
    return results


READERS = [["runs"], ["show", "last"], ["runs", "--json"]]


def history(folder):
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW)
    for _ in range(2):
        run([FLOWLUA, "flow.lua"], folder, "making a history")


def check_readers(case, folder, mount):
    before = sorted(os.listdir(os.path.join(folder, ".flowlua")))
    for args, (code, out, err) in zip(READERS, under_ro_mount(folder, mount, READERS)):
        if code != 0:
            problem(case, f"flowlua {' '.join(args)} exited {code}:\n{err[-2000:]}")
        elif args == ["runs"] and out.count("1 Success") != 2:
            problem(case, f"runs does not list both runs:\n{out}")
    after = sorted(os.listdir(os.path.join(folder, ".flowlua")))
    if after != before:
        problem(case, f"the folder changed: {before} -> {after}")


def case_read_only_folder(folder):
    history(folder)
    check_readers("a read-only .flowlua", folder, ".flowlua")


def case_read_only_file(folder):
    history(folder)
    check_readers("a read-only state.db in a writable folder", folder, ".flowlua/state.db")


def case_read_only_checkpointed(folder):
    history(folder)
    db = sqlite3.connect(os.path.join(folder, ".flowlua", "state.db"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode = DELETE")  # and back, so the -wal and -shm go
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    check_readers("a read-only .flowlua without -wal and -shm", folder, ".flowlua")


def case_read_only_wal_without_shm(folder):
    case = "a read-only .flowlua whose -wal holds changes, without -shm"
    history(folder)
    os.remove(os.path.join(folder, ".flowlua", "state.db-shm"))
    code, out, err = under_ro_mount(folder, ".flowlua", [["runs"]])[0]
    if code != 1 or not re.search(r"state store '\.flowlua/state\.db': cannot read it where it "
                                  r"is: its folder cannot be written, and its -wal file holds "
                                  r"changes with no -shm file", err):
        problem(case, f"expected exit 1 and a message naming why, got {code}:\n{err[-2000:]}")


def main():
    cases = [case_modes, case_symlink, case_read_only_folder, case_read_only_file,
             case_read_only_checkpointed, case_read_only_wal_without_shm]
    run_cases(cases, PROBLEMS, "flowlua-store-files-",
              select=sys.argv[2] if len(sys.argv) > 2 else None)


if __name__ == "__main__":
    main()
