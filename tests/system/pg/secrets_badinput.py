#!/usr/bin/env python3
"""The PostgreSQL history's password and its bad input.

The password never shows: the output of a run that fails, `runs`, `show`
(text and JSON), `report`, `graph --run`, `prune`, and of every failure
below, holds neither the harness's password nor a wrong one given, and a
pg_dump of schema flowlua's data holds neither.

Bad input, each a clear message naming the server with its password masked,
a non-zero exit, and nothing written: a malformed URI, a server that does
not answer (bounded by the connect timeout), a wrong password, a schema
`flowlua` that belongs to something else, one written by a newer flowlua, a
role without the rights the manual lists.

    with_pg.py -- secrets_badinput.py FLOWLUA
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

import pgtest

FLOW = r'''
local flow = require "flowlua"
local boom = flow.task("boom", function() error("it broke on purpose") end)
return flow.define("secretive", {}, function() boom() end)
'''
TEST = "secrets_badinput.py"
WRONG = "Wr0ng-pass-7f3e"


def run(flowlua, args, cwd, state=None):
    e = pgtest.env()
    if state is not None:
        e["FLOWLUA_STATE"] = state
    done = subprocess.run([flowlua] + args, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120)
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def no_secret(text, where):
    for secret in (pgtest.password(), WRONG):
        if secret in text:
            pgtest.fail(TEST, f"the password shows in {where}:\n{text[-2000:]}")


def refused(flowlua, cwd, state, what, expect):
    code, out = run(flowlua, ["secret.lua"], cwd, state)
    no_secret(out, what)
    if code == 0 or expect not in out or "***" not in out and "@" in state:
        pgtest.fail(TEST, f"{what}: exit {code}, expected a message with "
                    f"{expect!r} naming the server masked:\n{out}")
    return out


def tables():
    return pgtest.sql("SELECT string_agg(table_name, ',' ORDER BY table_name)"
                      " FROM information_schema.tables WHERE table_schema = 'flowlua'")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flowlua = os.path.abspath(sys.argv[1])
    pgtest.reset()
    with tempfile.TemporaryDirectory(prefix="flowlua-pg-") as cwd:
        with open(os.path.join(cwd, "secret.lua"), "w") as f:
            f.write(FLOW)
        # Everything a user sees of a history, with the password in its URI.
        seen = []
        code, out = run(flowlua, ["secret.lua"], cwd)
        if code == 0 or "it broke on purpose" not in out:
            pgtest.fail(TEST, f"the failing run: exit {code}:\n{out}")
        seen.append(out)
        for args in (["runs"], ["runs", "--json"], ["show", "last"],
                     ["show", "last", "--json"], ["report", "last", "--html", "r.html"],
                     ["graph", "--run", "last"],
                     ["prune", "--older-than", "0s", "--keep-failed"]):
            code, out = run(flowlua, args, cwd)
            if code != 0:
                pgtest.fail(TEST, f"flowlua {' '.join(args)}: exit {code}:\n{out}")
            seen.append(out)
        with open(os.path.join(cwd, "r.html"), encoding="utf-8") as f:
            seen.append(f.read())
        no_secret("\n".join(seen), "what flowlua printed")
        dump = subprocess.run(["pg_dump", "--data-only", "--schema=flowlua",
                               pgtest.URI], capture_output=True)
        if dump.returncode != 0 or b"it broke on purpose" not in dump.stdout:
            pgtest.fail(TEST, "pg_dump of the history failed or holds no run: "
                        + dump.stderr.decode("utf-8", "replace"))
        no_secret(dump.stdout.decode("utf-8", "replace"), "the stored rows")

        before = tables()
        # A malformed URI.
        port = pgtest.URI.rsplit(":", 1)[1].split("/")[0]
        refused(flowlua, cwd, pgtest.URI.replace(":" + port + "/", ":notaport/"),
                "a malformed URI", "postgresql://")
        # A wrong password.
        refused(flowlua, cwd, pgtest.with_password(WRONG), "a wrong password",
                "password authentication failed")
        # A server that accepts the connection and never answers.
        mute = socket.socket()
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        mute_port = mute.getsockname()[1]
        t0 = time.monotonic()
        refused(flowlua, cwd, pgtest.with_password(WRONG).replace(
            ":" + port + "/", ":%d/" % mute_port), "a server that does not answer",
            "cannot connect")
        took = time.monotonic() - t0
        mute.close()
        if took > 60:
            pgtest.fail(TEST, f"a mute server held the run {took:.0f} s")
        if tables() != before:
            pgtest.fail(TEST, "a refused open changed the schema")

        # A schema flowlua that is someone else's.
        pgtest.reset()
        pgtest.sql("CREATE SCHEMA flowlua; CREATE TABLE flowlua.orders(id int)")
        refused(flowlua, cwd, None, "a foreign schema", "refusing to touch it")
        if tables() != [["orders"]]:
            pgtest.fail(TEST, f"the foreign schema was changed: {tables()}")
        # One written by a newer flowlua.
        pgtest.reset()
        run(flowlua, ["secret.lua"], cwd)  # creates the schema
        pgtest.sql("INSERT INTO flowlua.schema_version(version, flowlua)"
                   " VALUES (99, '9.9.9')")
        before = pgtest.sql("SELECT count(*) FROM flowlua.flow_run")
        refused(flowlua, cwd, None, "a newer schema", "newer flowlua")
        if pgtest.sql("SELECT count(*) FROM flowlua.flow_run") != before:
            pgtest.fail(TEST, "a run was recorded in a newer schema")

        # A role without rights: it may connect and nothing more.
        pgtest.reset()
        pgtest.admin_sql("DROP ROLE IF EXISTS flowlua_weak;"
                         " CREATE ROLE flowlua_weak LOGIN PASSWORD 'weak-pw-1';"
                         " REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        weak = pgtest.URI.replace(pgtest.URI.split("//", 1)[1].split("@")[0],
                                  "flowlua_weak:weak-pw-1")
        out = refused(flowlua, cwd, weak, "a role without rights",
                      "permission denied")
        if "weak-pw-1" in out:
            pgtest.fail(TEST, f"the weak role's password shows:\n{out}")
    print(f"{TEST}: ok (a mute server failed the run in {took:.1f} s)")


if __name__ == "__main__":
    main()
