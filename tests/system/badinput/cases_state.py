"""State databases flowlua must refuse: the run, `runs`, `show` and
`--resume` stop with exit 1 before any task starts, naming the file and
why, and the file is left byte for byte as it was (no -wal or -shm beside
one that is not ours). tests/flows/state_errors.lua holds a text file and a
folder; these are damaged, foreign and newer SQLite files, made when the
case runs (a real store comes from running flowlua itself)."""
import functools
import os
import random
import sqlite3
import subprocess
import tempfile

from case import Case, script

FLOW = script('local t = flow.task("t", function() return 1 end)\n'
              'return flow.define("f", function() t() end)\n')
NOT_RUNNING = r"(?i)\bt: Running\b"
WHY = r"state store 'state\.db': "


@functools.lru_cache(maxsize=None)
def real_store():
    """The bytes of a store flowlua wrote for one run, checkpointed so that
    the one file holds everything."""
    with tempfile.TemporaryDirectory(prefix="flowlua-badinput-store-") as folder:
        with open(os.path.join(folder, "flow.lua"), "w") as f:
            f.write(FLOW)
        subprocess.run([os.environ["FLOWLUA_BINARY"], "flow.lua", "--state", "state.db"],
                       cwd=folder, check=True, capture_output=True, timeout=60)
        db = sqlite3.connect(os.path.join(folder, "state.db"))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        with open(os.path.join(folder, "state.db"), "rb") as f:
            return f.read()


def real_store_bytes(folder):
    """A files-dict builder for real_store()'s bytes."""
    return real_store()


def sqlite_file(*statements, start=None):
    """A builder of a SQLite file made by running statements on an empty
    database, or on a copy of start() when given."""
    def build(folder):
        path = os.path.join(folder, "build.db")
        if start:
            with open(path, "wb") as f:
                f.write(start())
        db = sqlite3.connect(path)
        for sql in statements:
            db.execute(sql)
        db.commit()
        # A store flowlua made is in WAL mode; a file of another program
        # is not. Closing the last connection empties the WAL into the file.
        db.execute("PRAGMA journal_mode = " + ("WAL" if start else "DELETE"))
        db.close()
        with open(path, "rb") as f:
            data = f.read()
        os.remove(path)
        return data
    return build


def truncated(fraction=None, size=None):
    """A real store cut to a fraction of its size, or to size bytes."""
    return lambda folder: real_store()[:size if size else int(len(real_store()) * fraction)]


def page_overwritten(folder):
    """A real store with the root page of the index of its running runs (what
    crash detection reads first) overwritten by garbage: the page found by
    its number, not its place, which moves with the file's settings
    (auto_vacuum's pointer maps, for one)."""
    data = bytearray(real_store())
    with tempfile.TemporaryDirectory(prefix="flowlua-badinput-page-") as d:
        path = os.path.join(d, "s.db")
        with open(path, "wb") as f:
            f.write(data)
        with sqlite3.connect(path) as c:
            size = c.execute("PRAGMA page_size").fetchone()[0]
            root = c.execute("SELECT rootpage FROM sqlite_schema"
                             " WHERE name = 'flow_run_running'").fetchone()[0]
    at = (root - 1) * size
    data[at:at + 100] = b"garbage!" * 12 + b"xxxx"
    return bytes(data)


def random_bytes(folder):
    rng = random.Random(8)
    return bytes(rng.randrange(256) for _ in range(8192))


def state_case(name, db, message, args=("flow.lua",), may_create=(), known_issue=""):
    return Case(f"state {name}", {"flow.lua": FLOW, "state.db": db},
                args=list(args) + ["--state", "state.db"], exit=1,
                stderr=[WHY + message], not_stderr=[NOT_RUNNING], unchanged=["state.db"],
                may_create=may_create, known_issue=known_issue)


NEWER = sqlite_file("PRAGMA user_version = 99", start=real_store)
HALF = truncated(fraction=0.5)

CASES = [
    state_case("truncated to half", HALF, r"cannot read it: database disk image is malformed"),
    state_case("truncated to its first 100 bytes", truncated(size=100),
               r"cannot read it: database disk image is malformed"),
    state_case("random bytes", random_bytes,
               r"not a flowlua state store: the file is not a SQLite database; refusing to touch it"),
    state_case("a 10-byte file", b"SQLite fo\n",
               r"not a flowlua state store: the file is not a SQLite database; refusing to touch it"),
    state_case("another program's database",
               sqlite_file("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)",
                           "INSERT INTO customers (name) VALUES ('ada')"),
               r"not a flowlua state store: a SQLite database with tables of its own \('customers'\); "
               r"refusing to touch it"),
    state_case("another application's id",
               sqlite_file("PRAGMA application_id = 1179403647", "CREATE TABLE t (x)"),
               r"not a flowlua state store: a SQLite database of another application "
               r"\(application_id 0x464c457f\); refusing to touch it"),
    state_case("an empty database with a user_version",
               sqlite_file("PRAGMA user_version = 7"),
               r"not a flowlua state store: an empty SQLite database with user_version 7 set by "
               r"another program; refusing to touch it"),
    state_case("a newer schema", NEWER,
               r"written by a newer flowlua \(schema version 99; this one knows up to \d+\); "
               r"refusing to touch it"),
    state_case("a newer schema, listed by runs", NEWER, r"written by a newer flowlua", args=("runs",)),
    state_case("a newer schema, shown by show", NEWER, r"written by a newer flowlua", args=("show", "last")),
    state_case("a newer schema, resumed", NEWER, r"written by a newer flowlua",
               args=("flow.lua", "--resume", "last")),
    state_case("truncated, listed by runs", HALF, r"cannot read it: database disk image is malformed",
               args=("runs",)),
    # Ours, but damaged inside, or with a table gone: the file is opened
    # for writing (it is ours), so SQLite's -wal and -shm may appear, empty
    # of changes; the main file must still be as it was.
    state_case("a page of its tables overwritten", page_overwritten,
               r"cannot look for crashed runs: database disk image is malformed",
               may_create=("state.db-wal", "state.db-shm")),
    state_case("a table of its schema dropped",
               sqlite_file("DROP TABLE task_pack", start=real_store),
               r"cannot look for crashed runs: no such table: main\.task_pack",
               may_create=("state.db-wal", "state.db-shm")),
    state_case("its cache table dropped",
               sqlite_file("DROP TABLE cache", start=real_store),
               r"cannot prepare its queries: no such table: cache",
               may_create=("state.db-wal", "state.db-shm")),
    Case("state a zero-length file is a new, empty store",
         {"flow.lua": FLOW, "state.db": b""}, args=["flow.lua", "--state", "state.db"],
         exit=0, stderr=[r"t: Success"], may_create=("state.db-wal", "state.db-shm")),
]

# Reading a history never runs the script it names (issue 16, item 8): a
# copied history beside a flow.lua that is not the one it recorded. Were
# the script loaded, it would exit 3 and leave a stray file.
HOSTILE = ('io.open("ran-the-script", "w"):close()\n'
           'os.exit(3)\n')
READ_ONLY_CREATES = ("state.db-wal", "state.db-shm", "out.html")
DAMAGED_EDGES = sqlite_file("UPDATE run_graph SET edges = '[[0,9,0]]'",
                            start=real_store)

CASES += [
    Case(f"state read with a hostile script beside it: {' '.join(args[:2])}",
         {"flow.lua": HOSTILE, "state.db": real_store_bytes},
         args=args + ["--state", "state.db"], exit=0, stderr=[],
         not_stderr=[r"ran-the-script"], may_create=READ_ONLY_CREATES)
    for args in (["report", "last", "--html", "out.html"], ["show", "last"],
                 ["runs"], ["graph", "--run", "last"])
] + [
    Case("state damaged stored edges: graph --run says so",
         {"flow.lua": HOSTILE, "state.db": DAMAGED_EDGES},
         args=["graph", "--run", "last", "--state", "state.db"], exit=2,
         stderr=[r"run [0-9a-f-]+ has no stored graph \(its stored edges are "
                 r"damaged\): give the script"],
         may_create=READ_ONLY_CREATES),
    Case("state damaged stored edges: the report draws no edges",
         {"flow.lua": HOSTILE, "state.db": DAMAGED_EDGES},
         args=["report", "last", "--html", "out.html", "--state", "state.db"],
         exit=0, stderr=[], may_create=READ_ONLY_CREATES),
]
