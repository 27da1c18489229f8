"""What the PostgreSQL system tests share: SQL through psql against the
harness's server (FLOWLUA_TEST_PG, with_pg.py), flowlua runs with the
history there, and waiting for an event (never for a wall-clock window)."""
import json
import os
import subprocess
import sys
import time

URI = os.environ.get("FLOWLUA_TEST_PG", "")
CTL = os.environ.get("FLOWLUA_TEST_PG_CTL", "")


def fail(test, msg):
    print(f"{test}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def sql(query, uri=None):
    """Rows of query, each a list of strings (NULL as None is not told
    apart from '': tests ask for what they need)."""
    done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t",
                           "-v", "ON_ERROR_STOP=1", uri or URI, "-c", query],
                          stdin=subprocess.DEVNULL, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"psql: {query}: " + done.stderr.decode("utf-8", "replace"))
    text = done.stdout.decode("utf-8", "replace")
    return [line.split("\t") for line in text.splitlines() if line != ""]


def reset():
    sql("DROP SCHEMA IF EXISTS flowlua CASCADE")


def ctl(action):
    subprocess.run(CTL + " " + action, shell=True, check=True,
                   stdin=subprocess.DEVNULL)


def env(**extra):
    e = dict(os.environ)
    e["FLOWLUA_STATE"] = URI
    e.update({k: str(v) for k, v in extra.items()})
    return e


def flowlua(binary, args, cwd, extra_env=None, timeout=120):
    return subprocess.run([binary] + args, cwd=cwd, env=env(**(extra_env or {})),
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)


def runs_json(binary, cwd, extra_env=None):
    done = flowlua(binary, ["runs", "--json"], cwd, extra_env)
    if done.returncode != 0:
        raise RuntimeError("flowlua runs: " + done.stderr.decode("utf-8", "replace"))
    return json.loads(done.stdout)


def wait_for(what, cond, limit=120, test="pg"):
    """Polls cond until it is true; a limit far beyond what the event
    needs, only so that a broken build fails instead of hanging."""
    deadline = time.monotonic() + limit
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            fail(test, f"waited {limit} s for {what}")
        time.sleep(0.05)


def admin_sql(query):
    """query as the server's superuser, in the test's database."""
    import shlex
    subprocess.run(CTL + " sql " + shlex.quote(query), shell=True, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)


def with_password(password):
    """The harness's URI with another password."""
    head, _, tail = URI.partition("@")
    user = head.split("//", 1)[1].split(":", 1)[0]
    return f"postgresql://{user}:{password}@{tail}"


def password():
    head = URI.partition("@")[0]
    return head.split("//", 1)[1].split(":", 1)[1]
