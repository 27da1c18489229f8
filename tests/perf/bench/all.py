#!/usr/bin/env python3
"""flowlua's benchmark suite: every workload of issue 7, each against its
reference measured in the same run, in one table.

    python3 tests/perf/bench/all.py            # build in Release, run it all (< 10 min on 2 cores)
    python3 tests/perf/bench/all.py --quick    # small sizes: checks the harness in about 10 s

Builds flowlua in Release into --build-dir (default build-bench in this
repository; --no-build or --flowlua to skip), compiles the C references,
runs the workloads (engine, store, startup, http, csv, json, schedule,
workers, pg, pgworkers) by
calling the scripts beside this one, prints one row per comparison —
flowlua's figure, the reference's, their ratio, the target and whether it
is met — and writes the same as JSON (--out; default
<build-dir>/bench-results.json). tests/perf/bench/README.md says what each row
measures and what the JSON holds.

Exit status: 0 when every workload produced its rows (targets are reported,
never enforced), 1 when a workload failed (its rows say FAILED and why),
2 on bad usage or a failed build.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
from benchlib import BenchError  # noqa: E402

REPO = benchlib.REPO


def load(relpath, name):
    """Imports a script of this folder by its path (http/run.py and its
    siblings are all called run.py, and `http` is a standard module)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


engine = load("run.py", "bench_engine")
store = load("store_run.py", "bench_store")
startup = load("startup.py", "bench_startup")
http = load("http/run.py", "bench_http")
csvbench = load("csv/run.py", "bench_csv")
jsonbench = load("json/run.py", "bench_json")
schedule = load("schedule/run.py", "bench_schedule")
workers = load("workers/run.py", "bench_workers")
pgbench = load("pg_store.py", "bench_pg")
pgqueue = load("workers/pg_queue.py", "bench_pg_queue")
uibench = load("ui/run.py", "bench_ui")

WORKLOADS = ["engine", "store", "startup", "http", "csv", "json", "schedule", "workers", "pg",
             "pgworkers", "ui"]

# Sizes and repeat counts. "full" is issue 7's workloads, with repeats
# chosen so that the whole suite, build included, takes under 7 minutes on
# a 2-core machine, busy or not (JSON's 100,000 decodes are the longest
# part); "quick" only proves that every row can be produced.
SIZES = {
    "full": {"tasks": 100000, "engine_repeat": 7, "store_repeat": 5, "startup_repeat": 101,
             "http_n": 1000, "http_repeat": 5, "csv_rows": 1000000, "csv_runs": 3,
             "json_count": 100000, "json_big_mb": 50, "json_repeat": 1, "json_big_repeat": 3,
             "fires": 200, "idle_s": 60, "workers_spin_s": 0.25, "workers_repeat": 3,
             "workers_noop": 10000, "workers_chain": 1000, "pgq_noop": 10000,
             "pgq_chain": 200, "ui_runs": 100000, "ui_tasks": 100000, "ui_seconds": 3},
    "quick": {"tasks": 2000, "engine_repeat": 1, "store_repeat": 1, "startup_repeat": 5,
              "http_n": 100, "http_repeat": 1, "csv_rows": 20000, "csv_runs": 1,
              "json_count": 200, "json_big_mb": 1, "json_repeat": 1, "json_big_repeat": 1,
              "fires": 10, "idle_s": 1, "workers_spin_s": 0.02, "workers_repeat": 1,
              "workers_noop": 200, "workers_chain": 50, "pgq_noop": 200,
              "pgq_chain": 20, "ui_runs": 1000, "ui_tasks": 1000, "ui_seconds": 0.5},
}


def row(workload, name, flowlua, ref, unit, reference, ratio, target, met):
    """One line of the table: flowlua's figure and the reference's, both in
    `unit`; ratio = flowlua's figure / the reference's; the target in words
    and whether it is met."""
    return {"workload": workload, "name": name, "flowlua": flowlua, "ref": ref, "unit": unit,
            "reference": reference, "ratio": ratio, "target": target, "met": met}


def failed_row(workload, error):
    return {"workload": workload, "name": f"{workload}: FAILED", "flowlua": None, "ref": None, "unit": "",
            "reference": "", "ratio": None, "target": "", "met": None,
            "error": str(error).splitlines()[0] if str(error) else type(error).__name__}


# ---- the workloads: each runs one script's measure() and makes its rows ----

def run_engine(ctx):
    z = ctx.sizes
    doc = engine.measure(ctx.flowlua, ctx.path("engine"), ctx.lua, z["tasks"], z["engine_repeat"],
                         engine.SHAPES, flowlua_args=["--state", ":memory:"], cc=ctx.cc)
    engine.print_table(doc)
    rows = []
    for shape, r in doc["shapes"].items():
        if "error" in r:
            raise BenchError(f"engine {shape}: {r['error']}")
        rows.append(row("engine", f"engine {shape}", r["flowlua"]["tasks_per_s"], r["ref"]["tasks_per_s"],
                        "tasks/s", "plain Lua 5.4 floor", r["ratio"], f">= {engine.TARGET_RATIO}x",
                        r["meets_ratio"]))
    for shape, r in doc["shapes"].items():
        fl, rf = r["flowlua"]["bytes_per_task"], r["ref"]["bytes_per_task"]
        rows.append(row("engine", f"engine {shape} memory", fl, rf, "B/task", "plain Lua 5.4 floor",
                        fl / rf if rf > 0 else None, f"<= {engine.TARGET_BYTES_PER_TASK} B/task",
                        r["meets_memory"]))
    return doc, rows


def run_store(ctx):
    z = ctx.sizes
    doc = store.measure(ctx.flowlua, ctx.path("engine"), ctx.lua, z["tasks"], z["store_repeat"],
                        store.SHAPES, log=print)
    rows = [row("store", f"store {r['shape']}", r["store_s"], r["memory_s"], "s", "--state :memory:",
                r["ratio"], f"<= {store.TARGET}x", r["meets_target"]) for r in doc["rows"]]
    return doc, rows


def run_startup(ctx):
    doc = startup.measure(ctx.flowlua, ctx.path("startup"), ctx.lua, ctx.sizes["startup_repeat"], ctx.cc)
    target = f"<= {startup.TARGET_MS:g} ms, <= {startup.TARGET_RATIO:g}x"
    rows = [row("startup", f"startup {label}", doc[key]["wall_ms"], doc["lua"]["wall_ms"], "ms",
                "lua5.4 -e ''", doc[key]["ratio"], target, doc[key]["meets_target"])
            for key, label in (("memory", ":memory:"), ("store", "with store"))]
    return doc, rows


def run_http(ctx):
    z = ctx.sizes
    doc = http.measure(ctx.flowlua, z["http_n"], 32, z["http_repeat"], ctx.lua, ctx.ref("ref_multi"))
    target = f">= {http.TARGET_RATIO}x"
    g, gj = doc["get"], doc["get_json"]
    rows = [row("http", "http GET", g["flowlua_rps"], g["ref_rps"], "req/s", "libcurl multi", g["ratio"],
                target, g["ratio"] >= http.TARGET_RATIO),
            row("http", "http GET + :json()", gj["flowlua_rps"], gj["ref_rps"], "req/s",
                "libcurl multi + lua-cjson", gj["ratio"], f">= {http.TARGET_JSON_RATIO}x",
                gj["ratio"] >= http.TARGET_JSON_RATIO)]
    return doc, rows


def run_csv(ctx):
    z = ctx.sizes
    refs = {"libcsv": ctx.ref("ref_libcsv"), "lua_tables": ctx.ref("ref_lua_tables")}
    doc = csvbench.measure(ctx.flowlua, ctx.path("csv"), ctx.lua, z["csv_rows"], z["csv_runs"], refs)
    labels = {("write", "libcsv writebuf"): ("csv write", "libcsv (C)"),
              ("read", "libcsv read"): ("csv.read vs libcsv", "libcsv (C)"),
              ("read", "lua tables"): ("csv.read vs tables", "Lua table-building floor"),
              ("rows", "libcsv read"): ("csv.rows vs libcsv", "libcsv (C)"),
              ("rows", "lua tables"): ("csv.rows vs tables", "Lua table-building floor"),
              ("stream", "libcsv into a Lua function"):
                  ("csv.rows stream vs a plain binding", "libcsv rows into a Lua function"),
              ("stream", "python csv.reader"): ("csv.rows stream vs Python", "Python csv.reader"),
              ("stream_holding", "python csv.reader holding"):
                  ("csv.rows stream holding a table vs Python", "Python csv.reader, same"),
              ("read", "python list(csv.reader)"): ("csv.read vs Python", "Python list(csv.reader)"),
              ("records", "python DictReader"): ("csv.rows header vs Python", "Python csv.DictReader")}
    rows = []
    for p in doc["pairs"]:
        label, reference = labels[(p["op"], p["ref"])]
        rows.append(row("csv", label, p["flowlua_rows_per_s"], p["ref_rows_per_s"], "rows/s", reference,
                        p["ratio"], f">= {p['target_min']}x", p["meets_target"]))
    return doc, rows


def run_json(ctx):
    z = ctx.sizes
    doc = jsonbench.measure(ctx.flowlua, ctx.path("json"), ctx.lua, z["json_count"], z["json_big_mb"],
                            z["json_repeat"], z["json_big_repeat"])
    rows = []
    for name, c in doc["cases"].items():
        if name.endswith("_10k"):
            label, unit = f"json {c['op']} 10 KB x{c['count']:,}", f"{c['op']}s/s"
            fl, rf = c["count"] / c["flowlua_s"], c["count"] / c["ref_s"]
        else:
            label, unit = f"json {c['op']} {c['input_bytes'] / 1e6:.0f} MB", "MB/s"
            fl, rf = c["input_bytes"] / 1e6 / c["flowlua_s"], c["input_bytes"] / 1e6 / c["ref_s"]
        rows.append(row("json", label, fl, rf, unit, "lua-cjson", fl / rf, f">= {jsonbench.TARGET_RATIO}x",
                        fl / rf >= jsonbench.TARGET_RATIO))
    return doc, rows


def run_schedule(ctx):
    z = ctx.sizes
    doc = schedule.measure(ctx.flowlua, ctx.path("schedule"), z["fires"], 0.05, z["idle_s"])
    late, idle = doc["lateness"], doc["idle"]
    rows = [row("schedule", "schedule lateness median", late["median_ms"], 0.0, "ms", "the due times", None,
                f"<= {schedule.TARGET_MEDIAN_MS:g} ms", late["median_ms"] <= schedule.TARGET_MEDIAN_MS),
            row("schedule", "schedule lateness max", late["max_ms"], 0.0, "ms", "the due times", None,
                f"<= {schedule.TARGET_MAX_MS:g} ms", late["max_ms"] <= schedule.TARGET_MAX_MS),
            row("schedule", "schedule idle CPU", idle["cpu_percent"], None, "%", "", None,
                f"< {schedule.TARGET_IDLE_CPU_PERCENT:g} %",
                idle["cpu_percent"] < schedule.TARGET_IDLE_CPU_PERCENT)]
    return doc, rows


def run_workers(ctx):
    z = ctx.sizes
    doc = workers.measure(ctx.flowlua, ctx.path("workers"), 2, z["workers_repeat"],
                          z["workers_spin_s"], z["workers_noop"], z["workers_chain"])
    c, fl = doc["cpu"], doc["floor"]
    rows = [row("workers", "workers cpu speed-up", c["worker_s"], c["inline_s"], "s",
                f"inline (machine floor {fl['ratio']:.2f}x)", c["ratio"],
                f"<= {workers.TARGET_CPU_RATIO}x", c["ratio"] <= workers.TARGET_CPU_RATIO),
            row("workers", "workers noop rate", doc["noop"]["worker_rate"], doc["noop"]["inline_rate"],
                "tasks/s", "inline", doc["noop"]["worker_rate"] / doc["noop"]["inline_rate"],
                f">= {workers.TARGET_NOOP_RATE:,} tasks/s",
                doc["noop"]["worker_rate"] >= workers.TARGET_NOOP_RATE),
            row("workers", "workers attempt overhead", doc["overhead_us"], None, "us", "", None,
                f"<= {workers.TARGET_OVERHEAD_US} us", doc["overhead_us"] <= workers.TARGET_OVERHEAD_US),
            row("workers", "workers idle RSS", doc["idle_kb"], None, "kB", "", None,
                f"<= {workers.TARGET_IDLE_KB} kB", doc["idle_kb"] <= workers.TARGET_IDLE_KB)]
    return doc, rows


def run_pg(ctx):
    z = ctx.sizes
    doc = pgbench.measure(ctx.flowlua, ctx.path("engine"), ctx.lua, z["tasks"], z["store_repeat"],
                          log=print)
    rows = [row("pg", f"pg store {r['shape']}", r["pg_s"], r["memory_s"], "s", "--state :memory:",
                r["ratio"], f"<= {pgbench.TARGET:g}x", r["meets_target"]) for r in doc["shapes"]]
    for key, label, target in (("one_task_ms", "pg one-task flow", pgbench.TARGET_START_MS),
                               ("runs_100k_ms", "pg runs over 100,000 runs", pgbench.TARGET_RUNS_MS),
                               ("show_100k_ms", f"pg show of a {z['tasks']}-task run",
                                pgbench.TARGET_SHOW_MS)):
        rows.append(row("pg", label, doc[key], target, "ms", "target", doc[key] / target,
                        f"<= {target:g} ms", doc[key] <= target))
    rows.append(row("pg", "pg one-task flow vs psql", doc["one_task_ms"], doc["psql_one_query_ms"],
                    "ms", "psql: connect, SELECT 1", doc["one_task_ms"] / doc["psql_one_query_ms"],
                    "-", None))
    return doc, rows


def run_pgworkers(ctx):
    z = ctx.sizes
    doc = pgqueue.measure(ctx.flowlua, ctx.path("pgworkers"), z["pgq_noop"], z["pgq_chain"],
                          16, z["workers_spin_s"], log=print)
    rows = []
    for conc in (32, 1000):
        rate = doc[f"noop_rate_c{conc}"]
        rows.append(row("pgworkers", f"pg queue noop rate, concurrency {conc}", rate, None,
                        "tasks/s", "", None, f">= {pgqueue.TARGET_RATE:,} tasks/s",
                        rate >= pgqueue.TARGET_RATE))
    for key, label, target in (("dispatch_median_ms", "pg queue dispatch median",
                                pgqueue.TARGET_MEDIAN_MS),
                               ("dispatch_p99_ms", "pg queue dispatch p99", pgqueue.TARGET_P99_MS)):
        rows.append(row("pgworkers", label, doc[key], target, "ms", "target", doc[key] / target,
                        f"<= {target} ms", doc[key] <= target))
    rows.append(row("pgworkers", "pg queue cpu map on 2 workers", doc["cpu_pg_s"],
                    doc["cpu_inline_s"], "s", "inline", doc["cpu_speedup"],
                    f">= {pgqueue.TARGET_CPU_SPEEDUP}x faster",
                    doc["cpu_speedup"] >= pgqueue.TARGET_CPU_SPEEDUP))
    return doc, rows


def run_ui(ctx):
    z = ctx.sizes
    doc = uibench.measure(ctx.flowlua, ctx.path("ui"), z["ui_runs"], z["ui_tasks"], z["ui_seconds"])
    uibench.print_table(doc)
    cold, warm = doc["big_run_cold_ms"], doc["big_run_warm_ms"]
    rows = [row("ui", "ui runs page GET /", doc["runs_page_ms"], None, "ms", "", None,
                f"<= {uibench.TARGET_RUNS_MS:g} ms", doc["runs_page_ms"] <= uibench.TARGET_RUNS_MS),
            row("ui", f"ui GET /api/runs (50 of {z['ui_runs']:,})", doc["api_runs_50_ms"], None, "ms",
                "", None, f"<= {uibench.TARGET_RUNS_MS:g} ms",
                doc["api_runs_50_ms"] <= uibench.TARGET_RUNS_MS),
            row("ui", "ui /api/runs (20) 2 clients", doc["api_runs_20_rps"], None, "req/s", "", None,
                f">= {uibench.TARGET_RPS:g}", doc["api_runs_20_rps"] >= uibench.TARGET_RPS),
            row("ui", f"ui {z['ui_tasks']:,}-task run page, cold", cold["total"], warm["total"], "ms",
                "the same, warm", cold["total"] / warm["total"] if warm["total"] else None,
                f"<= {uibench.TARGET_RUN_PAGE_MS:g} ms", cold["total"] <= uibench.TARGET_RUN_PAGE_MS)]
    if doc["big_run_elements"] is not None:
        rows.append(row("ui", "ui run page elements", doc["big_run_elements"], None, "elements", "",
                        None, f"< {uibench.TARGET_ELEMENTS}",
                        doc["big_run_elements"] < uibench.TARGET_ELEMENTS))
    return doc, rows


RUNNERS = {"engine": run_engine, "store": run_store, "startup": run_startup, "http": run_http,
           "csv": run_csv, "json": run_json, "schedule": run_schedule, "workers": run_workers,
           "pg": run_pg, "pgworkers": run_pgworkers, "ui": run_ui}

# The C references and who needs them; compiled once, before any workload.
REFERENCES = {
    "ref_multi": ("http/ref_multi.c", ["libcurl"], []),
    "ref_libcsv": ("csv/ref_libcsv.c", [], ["-lcsv"]),
    "ref_lua_tables": ("csv/ref_lua_tables.c", ["lua5.4"], ["-lcsv"]),
}


class Context:
    """What every workload needs: the binaries, the sizes, a folder each."""

    def __init__(self, flowlua, lua, cc, sizes, workdir):
        self.flowlua, self.lua, self.cc, self.sizes, self.workdir = flowlua, lua, cc, sizes, workdir
        self.refs = {}

    def path(self, name):
        return os.path.join(self.workdir, name)

    def ref(self, name):
        """A compiled reference, or the BenchError that compiling it gave."""
        got = self.refs[name]
        if isinstance(got, BenchError):
            raise got
        return got

    def compile_references(self):
        os.makedirs(self.path("bin"), exist_ok=True)
        for name, (src, packages, libs) in REFERENCES.items():
            try:
                self.refs[name] = benchlib.compile_c(os.path.join(HERE, src), os.path.join(self.path("bin"), name),
                                                     self.cc, packages, libs)
            except BenchError as e:
                print(f"all.py: {e}", file=sys.stderr)
                self.refs[name] = e


# ---- building, printing, writing ------------------------------------------

def build(build_dir):
    """Configures and builds flowlua in Release into build_dir; returns the
    binary's path and the seconds it took. BenchError with the tail of
    cmake's output when it fails."""
    t0 = time.monotonic()
    jobs = str(os.cpu_count() or 2)
    for cmd in (["cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", "-DFLOWLUA_TESTS=OFF"],
                ["cmake", "--build", build_dir, "--parallel", jobs]):
        print("$ " + " ".join(cmd), flush=True)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except FileNotFoundError:
            raise BenchError("no cmake (bash tests/install-deps.sh)") from None
        if p.returncode != 0:
            raise BenchError(f"{' '.join(cmd)}: exit {p.returncode}\n{benchlib.tail(p.stdout, 30)}")
    return os.path.join(build_dir, "flowlua"), time.monotonic() - t0


def fmt_num(x):
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def print_table(rows):
    head = ["workload", "flowlua", "reference", "vs", "ratio", "target", "met"]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["name"], "", "", r["error"][:60], "", "", "FAILED"])
            continue
        fl = f"{fmt_num(r['flowlua'])} {r['unit']}"
        ref = f"{fmt_num(r['ref'])} {r['unit']}" if r["ref"] is not None else "-"
        met = "-" if r["met"] is None else "yes" if r["met"] else "MISSED"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        lines.append([r["name"], fl, ref, r["reference"], ratio, r["target"], met])
    widths = [max(len(c) for c in col) for col in zip(head, *lines)]
    right = {1, 2, 4}
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    print(fmt(head))
    print(fmt(["-" * w for w in widths]))
    for cells in lines:
        print(fmt(cells))


def write_json(path, doc):
    """Writes doc to path through a temporary file in the same folder and a
    rename, so that an interrupted run leaves no half-written results."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bench-results-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="workloads: " + ", ".join(WORKLOADS))
    ap.add_argument("--quick", action="store_true", help="small sizes, one run each: checks the harness")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"),
                    help="where the Release build goes (default: build-bench in this repository)")
    ap.add_argument("--no-build", action="store_true", help="use the flowlua already in --build-dir")
    ap.add_argument("--flowlua", help="use this flowlua binary (implies --no-build)")
    ap.add_argument("--only", help="comma-separated workloads to run (default: all)")
    ap.add_argument("--out", help="JSON results (default: <build-dir>/bench-results.json)")
    ap.add_argument("--workdir", help="generated flows, data and compiled references go here and stay "
                                      "(default: a temporary folder, removed at the end)")
    ap.add_argument("--lua", default="lua5.4", help="Lua 5.4 interpreter of the references")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler of the references")
    args = ap.parse_args()

    chosen = WORKLOADS if not args.only else [w for w in args.only.split(",") if w]
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; workloads: {', '.join(WORKLOADS)}")
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    build_dir = os.path.abspath(args.build_dir)
    out_path = os.path.abspath(args.out or os.path.join(build_dir, "bench-results.json"))
    t_start = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    build_info = {"dir": build_dir, "type": "Release", "seconds": None}
    if args.flowlua:
        flowlua = os.path.abspath(args.flowlua)
        build_info = {"dir": None, "type": "as given", "seconds": None}
    elif args.no_build:
        flowlua = os.path.join(build_dir, "flowlua")
    else:
        try:
            flowlua, build_info["seconds"] = build(build_dir)
        except BenchError as e:
            return benchlib.fail_cli("all.py", f"the Release build failed: {e}")
        print(f"built {flowlua} in {build_info['seconds']:.0f} s")
    if not os.access(flowlua, os.X_OK):
        return benchlib.fail_cli("all.py", f"no flowlua binary at {flowlua} (build it: drop --no-build)")

    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="flowlua-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        ctx = Context(flowlua, args.lua, args.cc, sizes, workdir)
        ctx.compile_references()
        load_before = engine.busy_cpus()
        if load_before >= 0.5:
            print(f"all.py: note: other processes keep {load_before:.1f} of {os.cpu_count()} CPU(s) busy: "
                  "expect noisy figures", file=sys.stderr)
        rows, workloads = [], {}
        for name in chosen:
            print(f"\n== {name} ({mode})", flush=True)
            t0 = time.monotonic()
            try:
                doc, made = RUNNERS[name](ctx)
                workloads[name] = {"result": doc, "error": None}
                rows += made
            except (BenchError, OSError, KeyError, ValueError) as e:
                print(f"all.py: {name} failed: {e}", file=sys.stderr)
                workloads[name] = {"result": None, "error": str(e)}
                rows.append(failed_row(name, e))
            workloads[name]["seconds"] = time.monotonic() - t0
            print(f"== {name}: {workloads[name]['seconds']:.1f} s", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    total = time.monotonic() - t_start
    print(f"\nflowlua benchmarks ({mode}): flowlua's figure and the reference's, measured in the same run; "
          "ratio = flowlua / reference")
    print_table(rows)
    elapsed = ", ".join(f"{name} {w['seconds']:.0f} s" for name, w in workloads.items())
    build_s = f"build {build_info['seconds']:.0f} s, " if build_info["seconds"] is not None else ""
    print(f"\nelapsed: {build_s}{elapsed}; {total:.0f} s in all")

    doc = {"suite": "flowlua benchmarks (tests/perf/bench/all.py)", "format": 1, "mode": mode, "sizes": sizes,
           "started": started, "total_seconds": total, "flowlua": flowlua, "build": build_info,
           "env": engine.env_info(flowlua, shutil.which(args.lua) or args.lua),
           "busy_cpus_before": load_before, "rows": rows, "workloads": workloads}
    try:
        write_json(out_path, doc)
    except OSError as e:
        return benchlib.fail_cli("all.py", f"could not write {out_path}: {e}")
    print(f"JSON: {out_path}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
