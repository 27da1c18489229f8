#!/usr/bin/env python3
"""Runs a command beside a throwaway PostgreSQL server of its own
(pgserver.py), then removes the server, whatever the command did.

    with_pg.py [--keep-log] -- CMD [ARG...]

The command gets, in its environment:

  FLOWLUA_TEST_PG       the libpq URI of its database, with the role's
                        password: postgresql://ROLE:PW@127.0.0.1:PORT/DB
  FLOWLUA_TEST_PG_CTL   a shell command prefix that drives the same server:
                        "$FLOWLUA_TEST_PG_CTL stop" (fast shutdown),
                        "... kill" (SIGKILL of every server process),
                        "... start", "... restart"; each returns once done
                        (the server accepting connections, or gone)
  FLOWLUA_TEST_PG_PORT  the port on 127.0.0.1

with_pg.py exits with the command's status (128 + N when a signal N ended
it). If the server cannot be set up it exits 1 with the reason and the
server's log, without running the command. With --keep-log the server's
log is printed after a failing command.
"""
import os
import shlex
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgserver  # noqa: E402


def main(argv):
    keep_log = False
    if argv and argv[0] == "--keep-log":
        keep_log = True
        argv = argv[1:]
    if not argv or argv[0] != "--" or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1:]
    pg = pgserver.PgServer()
    guard_fd = None
    child = None

    # SIGTERM/SIGINT/SIGHUP: pass it to the command, then clean up as at
    # a normal end (the guard covers SIGKILL).
    def forward(sig, _frame):
        if child is not None and child.poll() is None:
            child.send_signal(sig)
        else:
            raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)

    try:
        try:
            pg.create()
            guard_fd = pgserver.start_guard(pg.folder)
            pg.start()
        except pgserver.PgError as e:
            print("with_pg.py: cannot set up PostgreSQL: %s" % e,
                  file=sys.stderr)
            return 1
        env = dict(os.environ,
                   FLOWLUA_TEST_PG=pg.uri,
                   FLOWLUA_TEST_PG_PORT=str(pg.port),
                   FLOWLUA_TEST_PG_CTL="%s %s ctl %s" % (
                       shlex.quote(sys.executable),
                       shlex.quote(os.path.abspath(pgserver.__file__)),
                       shlex.quote(pg.folder)))
        child = subprocess.Popen(cmd, env=env)
        rc = child.wait()
        if rc != 0 and keep_log:
            print(pgserver._log_tail(pg.log), file=sys.stderr)
        return rc if rc >= 0 else 128 - rc
    except KeyboardInterrupt:
        return 130
    finally:
        pg.cleanup()
        if guard_fd is not None:
            os.close(guard_fd)  # the guard finds the folder gone and exits


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
