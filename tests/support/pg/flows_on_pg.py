#!/usr/bin/env python3
"""Runs the flow tests again with their history in PostgreSQL: each
tests/flows/*.lua through flow_test.py --pg "$FLOWLUA_TEST_PG", one after
the other (each case empties the schema first), beside the server that
with_pg.py started.

    with_pg.py -- flows_on_pg.py FLOWLUA_BINARY FLOW.lua...

Prints each file's outcome and the failures' output; exits 1 if any failed.
"""
import os
import subprocess
import sys

DRIVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "drivers", "flow_test.py")


def main(argv):
    if len(argv) < 2 or "FLOWLUA_TEST_PG" not in os.environ:
        raise SystemExit("usage: with_pg.py -- flows_on_pg.py FLOWLUA_BINARY FLOW.lua...")
    binary, scripts = argv[0], sorted(argv[1:])
    failed = []
    for script in scripts:
        done = subprocess.run([sys.executable, DRIVER, "--pg", os.environ["FLOWLUA_TEST_PG"],
                               binary, script], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=600)
        out = done.stdout.decode("utf-8", "replace")
        name = os.path.basename(script)
        if done.returncode != 0:
            failed.append(name)
            print(f"FAIL {name}\n{out}{done.stderr.decode('utf-8', 'replace')}", flush=True)
        else:
            last = out.strip().splitlines()[-1] if out.strip() else ""
            print(f"ok   {name}: {last}", flush=True)
    print(f"{len(scripts) - len(failed)} files passed, {len(failed)} failed"
          + (": " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
