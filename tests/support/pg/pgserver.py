#!/usr/bin/env python3
"""A throwaway PostgreSQL server for flowlua's tests. Standard library only.

Each PgServer is a cluster of its own in a fresh temporary folder: initdb
there, `postgres` listening on 127.0.0.1 only (never another address) on a
port the kernel picked, and on a Unix socket inside the folder; a database
and a password-protected role for the test; a libpq URI to reach them. It
can stop the server (fast shutdown), SIGKILL it (the postmaster and every
child, as a machine losing power would), and start it again on the same
port and data, so that tests can check "PostgreSQL restarts mid-run". At
the end everything goes: the server and the folder, even when the test
failed, and even when the process that made it was killed (a guard process
watches it; see `guard`).

PostgreSQL refuses to run as root. Run as root (as CI is, on Debian 12),
initdb and postgres run as the `postgres` system user that Debian's package
creates, with the folder owned by that user.

As a module:

    with PgServer() as pg:          # initialised, started, ready
        pg.uri                      # postgresql://ROLE:PASSWORD@127.0.0.1:PORT/DB
        pg.stop(); pg.start()       # a clean restart, same port and data
        pg.kill(); pg.start()       # SIGKILL of every server process, then up

Every operation works from the folder alone (the postmaster's pid is read
from postmaster.pid), so another process can drive the same server:
`pgserver.py ctl FOLDER stop|kill|start|restart` is what with_pg.py gives a
test in FLOWLUA_TEST_PG_CTL.

Readiness is an event, never a fixed sleep: the socket file appears and
pg_isready answers "accepting connections"; a server that exits while
starting fails at once with its log.
"""
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# How long the server may take to start or stop: a hang guard on a loaded
# machine, not a window anything waits for.
START_GUARD = 120.0
STOP_GUARD = 60.0
ADMIN = "fl_admin"  # the cluster's superuser, reached only by the socket
STATE_FILE = "pgserver.json"


def find_bin_dir():
    """The newest of Debian's /usr/lib/postgresql/*/bin holding initdb and
    postgres; FLOWLUA_PG_BIN names another."""
    named = os.environ.get("FLOWLUA_PG_BIN")
    candidates = [named] if named else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0,
        reverse=True)
    for d in candidates:
        if all(os.access(os.path.join(d, b), os.X_OK)
               for b in ("initdb", "postgres", "pg_isready", "psql")):
            return d
    raise PgError("no PostgreSQL server found (looked in %s): install Debian's "
                  "'postgresql' package (tests/install-deps.sh does)"
                  % (named or "/usr/lib/postgresql/*/bin"))


class PgError(Exception):
    pass


def free_port():
    """A port on 127.0.0.1 that was free a moment ago. Another process may
    take it before postgres binds it: start() then tries another."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid):
    """Whether pid is still a process, a zombie included: postgres refuses
    to start while the pid in postmaster.pid exists at all, so a dead
    postmaster counts as gone only once reaped (the keeper reaps it)."""
    return os.path.exists("/proc/%d" % pid)


def _children(pid):
    """The pids whose parent is pid (postgres's backends and workers)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def _wait_for(what, cond, guard, log=None):
    """Polls cond until true; the guard only bounds a hang. Short pauses
    between looks: the event is a file, a process or an answer."""
    give_up = time.monotonic() + guard
    pause = 0.005
    while not cond():
        if time.monotonic() > give_up:
            raise PgError("%s: still not done after %.0f s%s" % (
                what, guard, _log_tail(log)))
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _log_tail(log):
    if not log or not os.path.exists(log):
        return ""
    with open(log, errors="replace") as f:
        return "\n--- server log (last lines) ---\n" + "".join(f.readlines()[-30:])


class PgServer:
    """One cluster in its own temporary folder. New: nothing exists yet;
    start() (or `with`) makes the cluster the first time."""

    def __init__(self, folder=None):
        self.bin = find_bin_dir()
        self.root = os.geteuid() == 0
        if folder:  # an existing server's folder: take its state
            self.folder = folder
            with open(os.path.join(folder, STATE_FILE)) as f:
                st = json.load(f)
            self.port, self.role, self.password, self.dbname = (
                st["port"], st["role"], st["password"], st["dbname"])
        else:
            self.folder = None
            self.port = None
            self.role = "flowlua_test"
            self.dbname = "flowlua_test"
            # URL-safe, so the URI needs no escaping; the unit tests check
            # escaped passwords on their own.
            self.password = "pw-" + secrets.token_urlsafe(18)
        self._proc = None

    # ---- paths --------------------------------------------------------------
    @property
    def data(self):
        return os.path.join(self.folder, "data")

    @property
    def socket_dir(self):
        return os.path.join(self.folder, "sock")

    @property
    def log(self):
        return os.path.join(self.folder, "postgres.log")

    @property
    def uri(self):
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (
            self.role, self.password, self.port, self.dbname)

    def uri_with(self, password=None, port=None):
        """The URI with another password or port (a wrong password, a port
        where nothing listens)."""
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (
            self.role, self.password if password is None else password,
            self.port if port is None else port, self.dbname)

    # ---- running things as the server's user ---------------------------------
    def _as_server_user(self):
        return {"user": "postgres", "group": "postgres"} if self.root else {}

    def _run(self, args, what):
        p = subprocess.run(args, capture_output=True, text=True,
                           env=_clean_env(), cwd=self.folder,
                           **self._as_server_user())
        if p.returncode != 0:
            raise PgError("%s: %s exited %d:\n%s%s" % (
                what, os.path.basename(args[0]), p.returncode, p.stdout,
                p.stderr))
        return p.stdout

    def _psql(self, sql, dbname="postgres"):
        return self._run([os.path.join(self.bin, "psql"), "-X", "-q",
                          "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                          "-p", str(self.port), "-U", ADMIN, "-d", dbname,
                          "-c", sql], "running SQL as the superuser")

    # ---- the cluster ---------------------------------------------------------
    def create(self):
        """Makes the folder and the cluster in it (start() does it when
        needed); a harness that guards the folder calls it first."""
        if self.folder is not None:
            return
        self.folder = tempfile.mkdtemp(prefix="flowlua-pg-")
        if self.root:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
        os.chmod(self.folder, 0o700)
        self._run(["/bin/mkdir", "-m", "700", self.socket_dir],
                  "making the socket folder")
        # Local (socket) connections trust the superuser; TCP ones need a
        # password, so a wrong one is refused as in production.
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data,
                   "-U", ADMIN, "--auth-local=trust",
                   "--auth-host=scram-sha-256", "--encoding=UTF8",
                   "--locale=C", "--no-sync"], "initdb")

    def _save_state(self):
        path = os.path.join(self.folder, STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": self.port, "role": self.role,
                       "password": self.password, "dbname": self.dbname}, f)
        os.replace(tmp, path)

    def _postgres_args(self):
        return [os.path.join(self.bin, "postgres"), "-D", self.data,
                "-p", str(self.port), "-k", self.socket_dir,
                "-c", "listen_addresses=127.0.0.1",
                # A test server: no durability against an OS crash, which
                # no test makes. Against a crash of postgres itself (kill())
                # a commit stays durable: synchronous_commit stays on, or a
                # SIGKILL would lose the last commits, and tests of "a
                # restart loses nothing finished" would fail for the
                # harness's sake.
                "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "max_connections=40",
                "-c", "shared_buffers=16MB", "-c", "log_min_messages=warning",
                "-c", "unix_socket_permissions=0777"]

    def _launch(self):
        """Starts the keeper (see `keeper`), which starts the postmaster,
        in a session of its own: a terminal's Ctrl-C reaches the harness,
        which stops the server in order."""
        log = open(self.log, "ab")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "keeper",
                 self.folder], stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, env=_clean_env(), cwd=self.folder,
                start_new_session=True)
        finally:
            log.close()

    def _ready(self):
        if not os.path.exists(os.path.join(self.socket_dir,
                                           ".s.PGSQL.%d" % self.port)):
            return False
        p = subprocess.run([os.path.join(self.bin, "pg_isready"), "-q",
                            "-h", self.socket_dir, "-p", str(self.port),
                            "-U", ADMIN, "-d", "postgres", "-t", "5"],
                           env=_clean_env(), capture_output=True)
        return p.returncode == 0

    def _start_once(self):
        """Launches and waits until ready; False when the postmaster exited
        because its port was taken (only possible before the first start)."""
        self._launch()

        def up_or_gone():
            return self._proc.poll() is not None or self._ready()
        _wait_for("starting PostgreSQL", up_or_gone, START_GUARD, self.log)
        if self._proc.poll() is None:
            return True
        with open(self.log, errors="replace") as f:
            text = f.read()
        if "could not bind" in text or "Address already in use" in text:
            return False
        raise PgError("PostgreSQL exited %d while starting%s" % (
            self._proc.returncode, _log_tail(self.log)))

    def start(self):
        """Starts the server (making the cluster, its role and database the
        first time) and returns once it accepts connections."""
        self.create()
        if self.port is None:
            for _ in range(20):
                self.port = free_port()
                self._save_state()  # the keeper reads the port from it
                if self._start_once():
                    break
                os.truncate(self.log, 0)  # the failed bind's log
            else:
                raise PgError("no free port PostgreSQL could bind after 20 tries")
            self._psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (
                self.role, self.password))
            self._psql("CREATE DATABASE %s OWNER %s" % (self.dbname, self.role))
        elif not self._start_once():
            raise PgError("port %d was taken while PostgreSQL was down%s" % (
                self.port, _log_tail(self.log)))
        return self

    def postmaster_pid(self):
        """The running postmaster's pid, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _reap(self):
        if self._proc is not None:
            self._proc.poll()

    def stop(self):
        """A fast shutdown (SIGINT: sessions end, a checkpoint is written);
        returns once the postmaster is gone."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)

        def gone():
            self._reap()
            return not _alive(pid)
        _wait_for("stopping PostgreSQL", gone, STOP_GUARD, self.log)

    def kill(self):
        """SIGKILL of the postmaster and of every process it started, as a
        host losing power would; returns once all are gone, so that a
        restart finds no process still holding the shared memory."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        procs = [pid]
        os.kill(pid, signal.SIGSTOP)  # no new child from here on
        procs += _children(pid)
        for p in procs:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def all_gone():
            self._reap()
            return not any(_alive(p) for p in procs)
        _wait_for("killing PostgreSQL", all_gone, STOP_GUARD, self.log)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        """Stops the server (killing it if it does not stop) and removes the
        folder. Safe to call twice."""
        if not self.folder or not os.path.isdir(self.folder):
            return
        try:
            self.stop()
        except PgError:
            self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
        return False


def _clean_env():
    """The environment without PG* variables, which would point libpq and
    the server's tools elsewhere; C messages, so logs read the same."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


# ---- the guard --------------------------------------------------------------
#
# A test killed by ctest's timeout (SIGKILL) cannot clean up after itself.
# The guard is a small process that holds the read end of a pipe whose
# write end only the harness holds: when the harness ends, however it ends,
# the guard reads EOF, and if the folder is still there it stops the
# server and removes it.

def start_guard(folder):
    """Starts the guard of folder; returns the pipe's write end, which the
    caller keeps open (and never passes to children) until it is done."""
    r, w = os.pipe()
    os.set_inheritable(w, False)
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "guard",
                      folder], stdin=r, stdout=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)
    os.close(r)
    return w


def guard(folder):
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe's end counts
    while os.read(0, 4096):
        pass
    if os.path.isdir(folder):
        PgServer(folder).cleanup()


# ---- the keeper -------------------------------------------------------------
#
# The postmaster's parent. It makes itself a child subreaper, so that when
# the postmaster is killed its orphaned backends come to it rather than to
# PID 1 (which, in a container, may never reap them); it reaps them all and
# exits with the postmaster's status. Without it a killed postmaster stays a
# zombie of whichever process started it, and postgres refuses to start
# again while the pid in postmaster.pid exists.

def keeper(folder):
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("pgserver.py keeper: prctl: %s" % os.strerror(ctypes.get_errno()),
              file=sys.stderr)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # the harness signals postgres
    pg = PgServer(folder)
    postmaster = subprocess.Popen(pg._postgres_args(), stdin=subprocess.DEVNULL,
                                  env=_clean_env(), cwd=folder,
                                  **pg._as_server_user())
    status = 1
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            return status
        if pid == postmaster.pid:
            postmaster.returncode = 0  # reaped here, not by Popen
            status = os.waitstatus_to_exitcode(st)
            status = status if status >= 0 else 128 - status


def ctl(folder, action):
    pg = PgServer(folder)
    {"stop": pg.stop, "kill": pg.kill, "start": pg.start,
     "restart": pg.restart}[action]()


def main(argv):
    if len(argv) == 3 and argv[1] == "keeper":
        return keeper(argv[2])
    if len(argv) == 3 and argv[1] == "guard":
        guard(argv[2])
        return 0
    if len(argv) == 5 and argv[1] == "ctl" and argv[3] == "sql":
        # SQL as the superuser, in the test's database: roles and grants
        # a test needs and its own role may not make.
        try:
            pg = PgServer(argv[2])
            sys.stdout.write(pg._psql(argv[4], dbname=pg.dbname))
        except PgError as e:
            print("pgserver.py: %s" % e, file=sys.stderr)
            return 1
        return 0
    if len(argv) == 4 and argv[1] == "ctl" and argv[3] in (
            "stop", "kill", "start", "restart"):
        try:
            ctl(argv[2], argv[3])
        except PgError as e:
            print("pgserver.py: %s" % e, file=sys.stderr)
            return 1
        return 0
    print("usage: pgserver.py ctl FOLDER stop|kill|start|restart\n"
          "       pgserver.py ctl FOLDER sql 'SQL'   (as the superuser)\n"
          "       pgserver.py guard FOLDER   (the harness starts it)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
