#!/usr/bin/env python3
"""Results too large to store, results not to store, and a journal the
replay cannot apply: the run goes on and the history stays usable.

    store_results.py FLOWLUA [BIG_MIB]

  - over max_result: a task (max_result = 1000) returns 2,000 bytes; the
    run succeeds (exit 0), a warning names the task, the size and the
    limit; its dependent still gets the value; `runs` and `show last` work,
    a second run works, no journal is left; and when a later task fails, a
    resume runs the big task again (it was not stored) but not a stored one;
  - store_result = false: the same without a warning;
  - over the default limit (64 MiB of JSON): a string of BIG_MIB MiB of
    backslashes (default 65; its JSON is twice as long);
  - a journal a replay cannot apply (a dead process's journal holding a
    damaged record): `runs` works, warns once naming it, the journal is set
    aside as NAME.failed and never replayed again, and the next run works
    without leaving a journal.

Exits 1 after printing every problem.
"""
import glob
import json
import os
import re
import struct
import subprocess
import sys

from faultcases import run_cases

FLOWLUA = os.path.abspath(sys.argv[1])
BIG_MIB = int(sys.argv[2]) if len(sys.argv) > 2 else 65
PROBLEMS = []

FLOW = """local flow = require "flowlua"
local function count(name)  -- each execution of a task appends a line
  local f = assert(io.open(name, "a")); f:write("ran\\n"); f:close()
end
local big = flow.task("big", { %(opts)s }, function()
  count("big.count")
  return %(value)s
end)
local small = flow.task("small", function() count("small.count"); return 7 end)
local use = flow.task("use", function(v, s)
  if io.open("fail-use") then error("told to fail") end
  local f = assert(io.open("used.txt", "w")); f:write(#v, " ", s); f:close()
end)
return flow.define("f", function() use(big(), small()) end)
"""


def problem(case, text):
    PROBLEMS.append(f"{case}: {text}")


def run(args, cwd, case, expect=0):
    done = subprocess.run([FLOWLUA] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != expect:
        problem(case, f"flowlua {' '.join(args)} exited {done.returncode}, expected "
                      f"{expect}\n--- stderr ---\n{done.stderr[-3000:]}")
    return done


def lines(folder, name):
    path = os.path.join(folder, name)
    return len(open(path).read().splitlines()) if os.path.exists(path) else 0


def journals(folder):
    return glob.glob(os.path.join(folder, ".flowlua", "*.log"))


def check_not_stored(folder, case, opts, value, length, warning):
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW % {"opts": opts, "value": value})
    done = run(["flow.lua"], folder, case)
    if warning and not re.search(warning, done.stderr):
        problem(case, f"no warning matching {warning!r}:\n{done.stderr[-2000:]}")
    if not warning and re.search(r"WARN", done.stderr):
        problem(case, f"an unexpected warning:\n{done.stderr[-2000:]}")
    used = open(os.path.join(folder, "used.txt")).read() if os.path.exists(
        os.path.join(folder, "used.txt")) else None
    if used != f"{length} 7":
        problem(case, f"the dependent got {used!r}, expected '{length} 7'")
    run(["runs"], folder, case)
    shown = run(["show", "last", "--json"], folder, case)
    try:
        tasks = {t["key"]: t for t in json.loads(shown.stdout)["tasks"]}
        if tasks["big"]["state"] != "Success":
            problem(case, f"big is recorded {tasks['big']['state']}")
    except (ValueError, KeyError) as e:
        problem(case, f"show --json: {e}: {shown.stdout[:500]}")
    if journals(folder):
        problem(case, f"journals left: {journals(folder)}")
    # A failed second run, resumed: big runs again, small is kept.
    open(os.path.join(folder, "fail-use"), "w").close()
    run(["flow.lua"], folder, case, expect=1)
    os.remove(os.path.join(folder, "fail-use"))
    before_big, before_small = lines(folder, "big.count"), lines(folder, "small.count")
    run(["flow.lua", "--resume", "last"], folder, case)
    if lines(folder, "big.count") != before_big + 1:
        problem(case, "the resume did not run the unstored task again")
    if lines(folder, "small.count") != before_small:
        problem(case, "the resume ran the stored task again")
    if journals(folder):
        problem(case, f"journals left after the resume: {journals(folder)}")


def case_over_limit(folder):
    check_not_stored(folder, "over max_result", "max_result = 1000", 'string.rep("x", 1998)',
                     1998, r"WARN .*task 'big': its result is 2000 bytes of JSON \(0\.0 MiB\), "
                           r"over the limit of 1000 bytes \(0\.0 MiB; task option max_result\): "
                           r"not stored, so a resume runs the task again")


def case_not_stored(folder):
    check_not_stored(folder, "store_result = false", "store_result = false", "'a value'", 7,
                     None)


def case_default_limit(folder):
    n = BIG_MIB << 20
    check_not_stored(folder, f"{BIG_MIB} MiB of backslashes, default limit", "",
                     f'string.rep("\\\\", {n})', n,
                     rf"task 'big': its result is {2 * n + 2} bytes of JSON .* over the limit "
                     rf"of 67108864 bytes \(64\.0 MiB; task option max_result\)")


def damaged_journal(run_rowid):
    """A dead process's journal (version 2) whose one record declares a task
    run with lengths that overrun its bytes: a replay cannot apply it."""
    header = b"flowlua journal 2\n".ljust(4096, b"\0")
    body = struct.pack("=qII", run_rowid, 0, ord("N"))  # j_head: J_ADDS
    body += struct.pack("=II", 1, 0)                     # j_adds: count 1
    body += struct.pack("=II", 50, 50) + b"k\0t\0"       # lengths overrun
    record = struct.pack("=I", len(body)) + body
    record += b"\0" * (-len(record) % 4)
    return header + record + b"\0" * 4


def case_bad_journal(folder):
    case = "a journal the replay cannot apply"
    with open(os.path.join(folder, "flow.lua"), "w") as f:
        f.write(FLOW % {"opts": "", "value": "'one'"})
    run(["flow.lua"], folder, case)
    bad = os.path.join(folder, ".flowlua", "state.db.flowlua-999999-0.log")
    with open(bad, "wb") as f:
        f.write(damaged_journal(1))
    first = run(["runs"], folder, case)
    if not re.search(r"WARN .*the journal '\S*state\.db\.flowlua-999999-0\.log' of a process that "
                     r"died could not be replayed \(.*a journal record is damaged\)",
                     first.stderr):
        problem(case, f"no warning names the journal:\n{first.stderr[-2000:]}")
    if not re.search(r"set aside as '\S*state\.db\.flowlua-999999-0\.log\.failed'", first.stderr):
        problem(case, f"no warning says it was set aside:\n{first.stderr[-2000:]}")
    if not os.path.exists(bad + ".failed") or os.path.exists(bad):
        problem(case, f"not set aside: {os.listdir(os.path.dirname(bad))}")
    again = run(["runs"], folder, case)
    if "journal" in again.stderr:
        problem(case, f"the journal is reported again:\n{again.stderr[-2000:]}")
    if "Success" not in again.stdout:
        problem(case, f"runs does not list the run:\n{again.stdout}")
    run(["flow.lua"], folder, case)
    run(["show", "last"], folder, case)
    if journals(folder):
        problem(case, f"journals left: {journals(folder)}")


def main():
    cases = [case_over_limit, case_not_stored, case_default_limit, case_bad_journal]
    run_cases(cases, PROBLEMS, "flowlua-store-results-")


if __name__ == "__main__":
    main()
