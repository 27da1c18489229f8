"""One case of the bad-input corpus: an input flowlua must refuse cleanly,
the exit code it must end with and the words its message must contain.

The cases themselves live in cases_*.py, one file per category; run.py
runs them. A case is data: the files written into a fresh working folder
(the script, a CSV file, a state database...), the command line, and what
must come out. Every case is also held to the rules that apply to all:
no crash, no sanitizer report, finished in time, no stray or half-written
file, and the files named in `unchanged` byte for byte as they were.
"""
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    # Files of the working folder before the run: name -> bytes or text.
    # A callable value is called with the folder's path and returns bytes
    # (for inputs that need flowlua itself, such as a real state store).
    files: dict
    exit: int
    # Regular expressions that must all match somewhere in stderr.
    stderr: list
    args: list = field(default_factory=lambda: ["flow.lua"])
    env: dict = field(default_factory=dict)
    not_stderr: list = field(default_factory=list)
    # Files that must hold exactly the bytes they held before the run.
    unchanged: list = field(default_factory=list)
    # Names (relative paths) the run may add to the folder; anything else
    # new is a stray or half-written file. The history's folder is allowed
    # unless the case says otherwise.
    may_create: tuple = (".flowlua", ".flowlua/state.db", ".flowlua/state.db-wal",
                         ".flowlua/state.db-shm")
    # The raw HTTP server of rawhttp.py; its URL is in BAD_URL.
    server: bool = False
    max_seconds: float = 20.0
    # A bug found by the case and reported but not fixed yet (in a file
    # another change owns): the case still runs and prints what is wrong,
    # but does not fail the suite; once it passes, the driver says to
    # remove this mark.
    known_issue: str = ""


def script(body, header='local flow = require "flowlua"\n'):
    """A flow script: the usual require line, then body. Line numbers in
    expected messages count from that require line (line 1)."""
    return header + body.lstrip("\n")


def one_task_flow(task_body, task_opts=""):
    """A script whose flow runs one task `t`; the task body is at line 3."""
    opts = "{ " + task_opts + " }, " if task_opts else ""
    return script(
        f'local t = flow.task("t", {opts}function(...)\n'
        f'{task_body}\n'
        'end)\n'
        'return flow.define("f", function() t() end)\n')
