#!/usr/bin/env python3
"""Engine benchmark: flowlua's scheduler on 100,000 no-op tasks against a
plain Lua 5.4 floor (the same calls and edges, ordered by Kahn's algorithm in
Lua and called in that order).

    python3 tests/perf/bench/run.py [--flowlua build-bench/flowlua] [--lua lua5.4]
                               [--tasks 100000] [--repeat 9] [--out FILE]

Generates the flows with gen_flows.lua (into --workdir, default
/tmp/flowlua-bench), runs each shape with flowlua and its reference with
lua5.4 --repeat times (interleaved, after one warm-up run each), and prints
one table of medians; writes the same as JSON to --out (default
<workdir>/results-engine.json). See tests/perf/bench/README.md for the columns.

Standard library only. Peak RSS is ru_maxrss from wait4() on the measured
process; the process is forked by rss_probe (a 60-line C helper compiled
here with cc) rather than by Python, because a child's ru_maxrss also counts
the memory image it replaced at exec — Python's ~14 MiB. Without a C
compiler it falls back to os.wait4 from Python and says so (RSS then has a
floor of Python's own peak).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO
SHAPES = ["chain", "fan", "fan_after", "dag"]
TARGET_RATIO = 0.8        # flowlua tasks/s >= 0.8 of the reference's (issue 22; issue 7 asked 0.5)
TARGET_BYTES_PER_TASK = 1024


class Runner:
    """Runs a command and returns (exit, wall s, peak RSS KiB, stderr)."""

    def __init__(self, workdir, cc):
        self.workdir = workdir
        self.probe = None
        self.result = os.path.join(workdir, "probe.out")
        try:
            self.probe = benchlib.compile_c(os.path.join(HERE, "rss_probe.c"),
                                            os.path.join(workdir, "rss_probe"), cc)
        except BenchError as e:
            print(f"run.py: warning: {e}", file=sys.stderr)
        if not self.probe:
            floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"run.py: warning: no rss_probe; peak RSS is measured from Python and "
                  f"cannot read below Python's own {floor} KiB", file=sys.stderr)

    def run(self, cmd):
        with tempfile.TemporaryFile(dir=self.workdir) as err:
            if self.probe:
                p = subprocess.run([self.probe, self.result] + cmd, cwd=self.workdir,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
                if p.returncode != 0:
                    err.seek(0)
                    raise BenchError(f"rss_probe failed on {cmd}: {err.read().decode(errors='replace')}")
                with open(self.result) as f:
                    code, wall, rss, _user, _sys = f.read().split()
                code, wall, rss = int(code), float(wall), int(rss)
            else:
                t0 = time.monotonic()
                p = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
                _, status, ru = os.wait4(p.pid, 0)
                wall = time.monotonic() - t0
                code = os.waitstatus_to_exitcode(status)
                p.returncode = code
                rss = ru.ru_maxrss
            err.seek(0)
            return code, wall, rss, err.read().decode(errors="replace")


def measure_commands(runner, name, cmds, repeat):
    """Runs each command of cmds (a dict label -> argv) once to warm up, then
    `repeat` times interleaved. Returns label -> {wall: [...], rss: [...]}."""
    samples = {label: {"wall": [], "rss": []} for label in cmds}
    for i in range(repeat + 1):
        for label, cmd in cmds.items():
            code, wall, rss, err = runner.run(cmd)
            if code != 0:
                tail = "\n".join(err.strip().splitlines()[-15:])
                raise RuntimeError(f"{name}/{label}: exit {code}: {' '.join(cmd)}\n{tail}")
            if i > 0:
                samples[label]["wall"].append(wall)
                samples[label]["rss"].append(rss)
    return samples


def med(xs):
    return statistics.median(xs)


def fmt_rate(x):
    return f"{x / 1e3:,.0f} k" if x >= 1e4 else f"{x:,.0f}"


def busy_cpus(samples=10, interval=0.05):
    """Average number of runnable processes other than this one (from
    /proc/loadavg), sampled for half a second; 0.0 if unknown."""
    seen = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as f:
                seen.append(max(0, int(f.read().split()[3].split("/")[0]) - 1))
        except (OSError, ValueError, IndexError):
            return 0.0
        time.sleep(interval)
    return sum(seen) / len(seen)


def env_info(flowlua, lua):
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return None
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = out(["git", "-C", REPO, "rev-parse", "HEAD"])
    dirty = out(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "flowlua_version": out([flowlua, "--version"]),
        "lua_version": out([lua, "-v"]),
        "git_commit": commit, "git_dirty": bool(dirty),
        "cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(),
    }


def generate_flows(lua, workdir, tasks, seed=20261128):
    """Writes the flows and references of gen_flows.lua into workdir;
    returns its manifest (README.md: gen_flows.lua)."""
    manifest_path = os.path.join(workdir, "manifest.json")
    os.makedirs(workdir, exist_ok=True)
    benchlib.run_checked([lua, os.path.join(HERE, "gen_flows.lua"), "--tasks", str(tasks),
                          "--seed", str(seed), "--out", workdir])
    with open(manifest_path) as f:
        return json.load(f)


def measure(flowlua, workdir, lua="lua5.4", tasks=100000, repeat=9, shapes=SHAPES,
            seed=20261128, flowlua_args=(), cc=None):
    """Runs the engine benchmark; returns the document that main() writes as
    JSON (README.md says what is in it). A shape that fails is recorded with
    its "error"; a one-task flow that fails raises BenchError."""
    for s in shapes:
        if s not in SHAPES:
            raise BenchError(f"unknown shape '{s}' (shapes: {', '.join(SHAPES)})")
    if repeat < 1:
        raise BenchError("repeat must be at least 1")
    if not os.access(flowlua, os.X_OK):
        raise BenchError(f"no flowlua binary at {flowlua}; build it with:\n"
                         "  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DFLOWLUA_TESTS=OFF && "
                         "cmake --build build-bench -j2")
    lua = benchlib.require_program(lua, "Debian: apt-get install lua5.4")
    workdir = os.path.abspath(workdir)
    flowlua_args = list(flowlua_args)

    load = busy_cpus()
    if load >= 0.5:
        print(f"run.py: note: other processes keep {load:.1f} of {os.cpu_count()} CPU(s) busy: "
              "expect noisy times", file=sys.stderr)
    t_start = time.monotonic()
    manifest = generate_flows(lua, workdir, tasks, seed)
    runner = Runner(workdir, cc)
    fl_cmd = lambda script: [flowlua, "--quiet"] + flowlua_args + [script]
    ref_cmd = lambda script: [lua, script]

    def run_shape(name):
        m = manifest[name]
        s = measure_commands(runner, name, {"flowlua": fl_cmd(m["flow"]), "ref": ref_cmd(m["ref"])},
                             repeat)
        return {
            "tasks": m["tasks"], "edges": m["edges"],
            "flowlua": {"wall_s": med(s["flowlua"]["wall"]), "wall_min_s": min(s["flowlua"]["wall"]),
                        "rss_kib": med(s["flowlua"]["rss"]),
                        "wall_samples": s["flowlua"]["wall"], "rss_samples": s["flowlua"]["rss"]},
            "ref": {"wall_s": med(s["ref"]["wall"]), "wall_min_s": min(s["ref"]["wall"]),
                    "rss_kib": med(s["ref"]["rss"]),
                    "wall_samples": s["ref"]["wall"], "rss_samples": s["ref"]["rss"]},
        }

    try:
        base = run_shape("one")
    except RuntimeError as e:
        raise BenchError(f"the one-task flow failed, nothing to compare:\n{e}") from None
    results = {}
    for name in shapes:
        try:
            r = run_shape(name)
        except RuntimeError as e:
            print(f"run.py: {e}", file=sys.stderr)
            results[name] = {"error": str(e)}
            continue
        n = r["tasks"]
        fl, rf = r["flowlua"], r["ref"]
        fl["tasks_per_s"] = n / fl["wall_s"]
        rf["tasks_per_s"] = n / rf["wall_s"]
        r["ratio"] = fl["tasks_per_s"] / rf["tasks_per_s"]
        r["ratio_of_min_times"] = rf["wall_min_s"] / fl["wall_min_s"]
        fl["bytes_per_task"] = (fl["rss_kib"] - base["flowlua"]["rss_kib"]) * 1024 / n
        rf["bytes_per_task"] = (rf["rss_kib"] - base["ref"]["rss_kib"]) * 1024 / n
        r["meets_ratio"] = r["ratio"] >= TARGET_RATIO
        r["meets_memory"] = fl["bytes_per_task"] <= TARGET_BYTES_PER_TASK
        results[name] = r

    return {
        "benchmark": "engine", "requested_tasks": tasks, "repeat": repeat, "seed": seed,
        "targets": {"ratio_min": TARGET_RATIO, "bytes_per_task_max": TARGET_BYTES_PER_TASK},
        "rss_method": "rss_probe (fork+wait4 from C)" if runner.probe else "os.wait4 from Python",
        "flowlua": flowlua, "flowlua_args": ["--quiet"] + flowlua_args, "lua": lua,
        "env": env_info(flowlua, lua), "busy_cpus_before": load,
        "baseline_one_task": base, "shapes": results,
        "bench_seconds": time.monotonic() - t_start,
    }


def print_table(doc):
    """The engine benchmark's own table (README.md, Columns)."""
    b = doc["baseline_one_task"]
    print(f"flowlua engine benchmark: {doc['requested_tasks']} tasks requested, median of "
          f"{doc['repeat']} run(s) each, wall time of the whole process (start-up, load, build, run, exit)")
    print(f"empty runtime (one-task flow): flowlua {b['flowlua']['wall_s'] * 1e3:.1f} ms, "
          f"{b['flowlua']['rss_kib'] / 1024:.1f} MiB; reference {b['ref']['wall_s'] * 1e3:.1f} ms, "
          f"{b['ref']['rss_kib'] / 1024:.1f} MiB")
    head = ["shape", "tasks", "flowlua s", "ref s", "flowlua tasks/s", "ref tasks/s", "ratio",
            "flowlua RSS", "B/task", "ref B/task", f"target (ratio>={TARGET_RATIO}, B/task<=1024)"]
    rows = []
    for name, r in doc["shapes"].items():
        if "error" in r:
            rows.append([name, "-", "FAILED"] + [""] * (len(head) - 3))
            continue
        fl, rf = r["flowlua"], r["ref"]
        target = ("ok" if r["meets_ratio"] else "MISS") + " / " + ("ok" if r["meets_memory"] else "MISS")
        rows.append([name, f"{r['tasks']:,}", f"{fl['wall_s']:.3f}", f"{rf['wall_s']:.3f}",
                     fmt_rate(fl["tasks_per_s"]), fmt_rate(rf["tasks_per_s"]), f"{r['ratio']:.2f}",
                     f"{fl['rss_kib'] / 1024:.1f} MiB", f"{fl['bytes_per_task']:.0f}",
                     f"{rf['bytes_per_task']:.0f}", target])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    if not doc["rss_method"].startswith("rss_probe"):
        print("(no rss_probe: every RSS below has Python's own peak as a floor; B/task is not meaningful)")
    print(line(head))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowlua", default=os.path.join(REPO, "build-bench", "flowlua"),
                    help="flowlua binary (default: build-bench/flowlua of this repo)")
    ap.add_argument("--lua", default="lua5.4", help="Lua 5.4 interpreter for gen_flows.lua and the references")
    ap.add_argument("--tasks", type=int, default=100000, help="tasks per shape (default 100000)")
    ap.add_argument("--repeat", type=int, default=9, help="measured runs per command, median taken (default 9)")
    ap.add_argument("--seed", type=int, default=20261128, help="seed of the dag's random parents")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of " + ",".join(SHAPES))
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "flowlua-bench"),
                    help="generated scripts and the probe go here; runs use it as cwd")
    ap.add_argument("--out", help="JSON results (default: <workdir>/results-engine.json)")
    ap.add_argument("--flowlua-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for every flowlua run (repeatable), e.g. --flowlua-arg=--state=:memory:")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler for rss_probe.c")
    args = ap.parse_args()

    try:
        doc = measure(os.path.abspath(args.flowlua), args.workdir, args.lua, args.tasks, args.repeat,
                      [s for s in args.shapes.split(",") if s], args.seed, args.flowlua_arg, args.cc)
    except BenchError as e:
        return benchlib.fail_cli("run.py", e)
    print_table(doc)
    out_path = args.out or os.path.join(os.path.abspath(args.workdir), "results-engine.json")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\nJSON: {out_path}  ({doc['bench_seconds']:.0f} s in all)")
    return 1 if any("error" in r for r in doc["shapes"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
