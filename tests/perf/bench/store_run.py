#!/usr/bin/env python3
"""Engine with the run history: the engine benchmark's flows run with the
SQLite store against the same flows run without it (--state :memory:).

    python3 tests/perf/bench/store_run.py [--flowlua build-bench/flowlua]
                                     [--tasks 100000] [--repeat 9]

Uses the flows of gen_flows.lua (generated into --workdir, default
/tmp/flowlua-bench, when missing). For each shape, runs flowlua --repeat
times with a fresh state file (deleted before every run, so each run starts
from an empty store, and with it every cost the store has: creating the
file, recording 100,000 task runs, the journal, the writer thread, the
final commit and checkpoint) and as many times with :memory:, interleaved,
after one warm-up run of each. Prints medians, their ratio (target: at
most 2), the minimums' ratio, and the store's own counters from one run
(FLOWLUA_STORE_STATS). Writes the same as JSON to --out (default
<workdir>/results-store.json).

Times are whole-process wall times, as in run.py. Standard library only.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
SHAPES = ["chain", "fan", "fan_after", "dag"]
TARGET = 2.0


def run(cmd, cwd, env=None):
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {p.returncode}:\n{benchlib.tail(p.stderr)}")
    return wall, p.stderr


def remove_state(path):
    for f in glob.glob(path + "*"):
        os.remove(f)


def ensure_flows(lua, workdir, tasks):
    """The flows of gen_flows.lua for `tasks` tasks in workdir: those there
    already (run.py's) when their size matches, else new ones."""
    os.makedirs(workdir, exist_ok=True)
    manifest = os.path.join(workdir, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            if json.load(f).get("requested_tasks") == tasks:
                return
    benchlib.run_checked([lua, os.path.join(HERE, "gen_flows.lua"),
                          "--tasks", str(tasks), "--out", workdir])


def measure(flowlua, workdir, lua="lua5.4", tasks=100000, repeat=9, shapes=SHAPES, log=print):
    """Runs every shape with the store and with :memory:; returns
    {"repeat", "tasks", "rows": [one dict per shape]}, each row with the
    medians, their ratio (store / memory; target at most TARGET) and the
    store's own counters from one more run."""
    if not os.access(flowlua, os.X_OK):
        raise BenchError(f"no flowlua at {flowlua} (build it in Release first)")
    ensure_flows(benchlib.require_program(lua, "apt-get install lua5.4"), workdir, tasks)
    state = os.path.join(workdir, "bench-state.db")
    rows = []
    log(f"{'shape':<10} {'memory s':>9} {'store s':>9} {'ratio':>6} "
        f"{'min ratio':>9}  target  store counters")
    for shape in shapes:
        script = os.path.join(workdir, f"flow_{shape}.lua")
        mem_cmd = [flowlua, "--quiet", "--state", ":memory:", script]
        store_cmd = [flowlua, "--quiet", "--state", state, script]
        remove_state(state)
        run(mem_cmd, workdir)
        run(store_cmd, workdir)
        mem, store = [], []
        for _ in range(repeat):
            mem.append(run(mem_cmd, workdir)[0])
            remove_state(state)
            store.append(run(store_cmd, workdir)[0])
        remove_state(state)
        env = dict(os.environ, FLOWLUA_STORE_STATS="1")
        counters = run(store_cmd, workdir, env)[1].strip().splitlines()
        counters = counters[-1].replace("store stats: ", "") if counters else ""
        remove_state(state)
        m, s = statistics.median(mem), statistics.median(store)
        ratio, min_ratio = s / m, min(store) / min(mem)
        rows.append({"shape": shape, "tasks": tasks, "memory_s": m,
                     "store_s": s, "ratio": ratio, "min_ratio": min_ratio,
                     "meets_target": ratio <= TARGET,
                     "memory_samples": mem, "store_samples": store,
                     "store_counters": counters})
        log(f"{shape:<10} {m:>9.3f} {s:>9.3f} {ratio:>6.2f} {min_ratio:>9.2f}"
            f"  {'ok' if ratio <= TARGET else 'MISS':<6}  {counters}")
    return {"flowlua": flowlua, "tasks": tasks, "repeat": repeat, "target_ratio_max": TARGET,
            "rows": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"))
    ap.add_argument("--lua", default="lua5.4", help="runs gen_flows.lua")
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--workdir", default="/tmp/flowlua-bench")
    ap.add_argument("--out")
    args = ap.parse_args()
    try:
        doc = measure(os.path.abspath(args.flowlua), args.workdir, args.lua, args.tasks,
                      args.repeat, [s for s in args.shapes.split(",") if s])
    except BenchError as e:
        return benchlib.fail_cli("store_run.py", e)
    out = args.out or os.path.join(args.workdir, "results-store.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"(JSON: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
