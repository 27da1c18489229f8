#!/usr/bin/env python3
"""The PostgreSQL test harness checked against what tests rely on:

- the server listens on 127.0.0.1 only (no other address, no IPv6) and on
  a socket inside its own folder; the role needs its password over TCP;
- a commit made before a SIGKILL of every server process is there after
  the restart, on the same port; a fast stop and start likewise;
- with_pg.py gives the command the URI and a working FLOWLUA_TEST_PG_CTL,
  and exits with the command's status;
- nothing is left behind: the folder and every server process are gone
  after a normal end, after a failing command, and after with_pg.py itself
  was killed with SIGKILL (the guard's work).

    test_harness.py        (ctest: pg/harness)
"""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pgserver  # noqa: E402

WITH_PG = os.path.join(HERE, "with_pg.py")
failures = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def psql(pg, sql, uri=None):
    p = subprocess.run([os.path.join(pg.bin, "psql"), "-X", "-tA",
                        "-v", "ON_ERROR_STOP=1", uri or pg.uri, "-c", sql],
                       capture_output=True, text=True, env=pgserver._clean_env())
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def listeners(port):
    """Local addresses listening on port, from /proc/net/tcp and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.rsplit(":", 1)
            if state == "0A" and int(p, 16) == port:  # LISTEN
                found.append((table, addr))
    return found


def server_pids(folder):
    """Processes whose command line names the folder (postgres, keeper)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if folder.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def wait_gone(folder, guard=60):
    give_up = time.monotonic() + guard
    while (os.path.exists(folder) or server_pids(folder)) and \
            time.monotonic() < give_up:
        time.sleep(0.05)
    return not os.path.exists(folder) and not server_pids(folder)


def test_module():
    with pgserver.PgServer() as pg:
        folder = pg.folder
        addrs = listeners(pg.port)
        # 0100007F is 127.0.0.1 in /proc/net/tcp's byte order
        check(addrs == [("/proc/net/tcp", "0100007F")],
              "listens on 127.0.0.1 only: %s" % addrs)
        check(os.path.exists(os.path.join(pg.socket_dir, ".s.PGSQL.%d" % pg.port)),
              "its socket is in its own folder")
        rc, out, _ = psql(pg, "SELECT current_user")
        check(rc == 0 and out == "flowlua_test", "the URI reaches its role")
        rc, _, err = psql(pg, "SELECT 1", pg.uri_with(password="wrong"))
        check(rc != 0 and "password authentication failed" in err,
              "a wrong password is refused")
        psql(pg, "CREATE TABLE t(x int); INSERT INTO t VALUES (1)")
        pg.kill()
        check(pg.postmaster_pid() is None and not listeners(pg.port),
              "kill: no server left")
        pg.start()
        rc, out, _ = psql(pg, "SELECT sum(x) FROM t")
        check(rc == 0 and out == "1", "a commit survives SIGKILL, same port")
        pg.stop()
        pg.start()
        psql(pg, "INSERT INTO t VALUES (2)")
        rc, out, err = psql(pg, "SELECT sum(x) FROM t")
        check(rc == 0 and out == "3", "stop and start, same port and data: "
              "%r %s" % (out, err))
    check(wait_gone(folder, guard=5), "the folder and processes are gone")


def run_with_pg(script):
    return subprocess.run([sys.executable, WITH_PG, "--", "sh", "-c", script],
                          capture_output=True, text=True)


def test_wrapper():
    p = run_with_pg('psql -X -tAc "SELECT 40 + 2" "$FLOWLUA_TEST_PG" &&'
                    ' $FLOWLUA_TEST_PG_CTL restart &&'
                    ' psql -X -tAc "SELECT 7" "$FLOWLUA_TEST_PG" &&'
                    ' echo "$FLOWLUA_TEST_PG_CTL" | sed "s/.* //"; exit 3')
    lines = p.stdout.split()
    check(p.returncode == 3, "with_pg.py exits with the command's status (%d)"
          % p.returncode)
    check(lines[:2] == ["42", "7"], "the command reaches the server, restarted"
          " by FLOWLUA_TEST_PG_CTL: %r %s" % (lines, p.stderr[-500:]))
    folder = lines[2] if len(lines) > 2 else "/nonexistent"
    check(folder.startswith("/") and wait_gone(folder, guard=5),
          "after a failing command nothing is left")

    # SIGKILL of with_pg.py: the guard removes the server and its folder.
    ready = os.path.join(pgserver.tempfile.gettempdir(),
                         "flowlua-pg-harness-%d" % os.getpid())
    proc = subprocess.Popen([sys.executable, WITH_PG, "--", "sh", "-c",
                             'echo "$$ $FLOWLUA_TEST_PG_CTL" > %s.tmp &&'
                             ' mv %s.tmp %s && exec sleep 600'
                             % (ready, ready, ready)])
    give_up = time.monotonic() + 120
    while not os.path.exists(ready) and time.monotonic() < give_up:
        time.sleep(0.05)
    with open(ready) as f:
        words = f.read().split()
    command_pid, folder = int(words[0]), words[-1]  # exec keeps the pid
    os.unlink(ready)
    check(os.path.isdir(folder), "a server is up")
    proc.kill()
    proc.wait()
    check(wait_gone(folder), "SIGKILL of with_pg.py: the guard removed it all")
    # The command itself (the sleep, orphaned) is the test's to end.
    try:
        os.kill(command_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main():
    test_module()
    test_wrapper()
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
