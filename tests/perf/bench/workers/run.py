#!/usr/bin/env python3
"""Worker tasks against the same tasks inline, in the same run (issue 17's
table): the speed-up of CPU-bound elements, the rate of no-op elements, the
overhead of one worker attempt, and the memory of an idle worker.

    python3 tests/perf/bench/workers/run.py FLOWLUA [--workers 2] [--repeat 3]

Whole processes, --state :memory:, best of --repeat. Prints one line per
row: flowlua's figure, the reference's, their ratio and the target.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

FLOW = r"""
local flow = require "flowlua"
local function spin(n) local x = 0 for k = 1, n do x = x + k %% 7 end return x end
local function pid()
  local f = assert(io.open("/proc/self/stat")) local n = f:read("n") f:close() return n
end
local cpu_w = flow.task("cpu_w", { worker = true }, function(n) return spin(n) end)
local cpu_i = flow.task("cpu_i", function(n) return spin(n) end)
local noop_w = flow.task("noop_w", { worker = true }, function(i) return i end)
local noop_i = flow.task("noop_i", function(i) return i end)
local who = flow.task("who", { worker = true }, function() return pid() end)
local rss = flow.task("rss", function(p)
  for line in io.lines("/proc/" .. p .. "/status") do
    local kb = line:match("^VmRSS:%%s+(%%d+)")
    if kb then flow.log.warn("idle worker rss %%s kB", kb) end
  end
end)
return flow.define("bench", { params = { shape = "cpu", worker = true, n = 16, spin = 1 } },
  function(p)
    local xs = {}
    for i = 1, p.n do xs[i] = p.spin end
    if p.shape == "cpu" then
      (p.worker and cpu_w or cpu_i):map(xs)
    elseif p.shape == "noop" then
      (p.worker and noop_w or noop_i):map(xs)
    elseif p.shape == "chain" then
      local t, prev = p.worker and noop_w or noop_i, nil
      for i = 1, p.n do prev = t(i, prev) end -- each waits for the one before
    elseif p.shape == "rss" then
      rss(who())
    end
  end)
"""


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import BenchError  # noqa: E402

# Issue 17's targets.
TARGET_CPU_RATIO = 0.55     # 16 CPU-bound elements on 2 workers vs inline
TARGET_NOOP_RATE = 50000    # no-op elements per second through workers
TARGET_OVERHEAD_US = 100    # one worker attempt over the same inline
TARGET_IDLE_KB = 4096       # an idle worker's RSS


def run(flowlua, folder, params, workers):
    args = [flowlua, "bench.lua", "--quiet", "--state", ":memory:", "--workers", str(workers)]
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise BenchError(f"bench failed: {' '.join(args)}\n{done.stderr[-3000:]}")
    return took, done.stderr


def best(flowlua, folder, params, workers, repeat):
    return min(run(flowlua, folder, params, workers)[0] for _ in range(repeat))


def timed(cmds):
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c) for c in cmds]
    for pr in procs:
        pr.wait()
    return time.perf_counter() - t0


def measure(flowlua, folder, workers=2, repeat=3, spin_s=0.25, n_noop=10000, n_chain=1000):
    """Every row, as a dict: cpu (worker and inline seconds, ratio), floor
    (plain lua5.4, one process and split), noop (tasks/s), overhead (us),
    idle_kb. Raises BenchError when a run fails."""
    flowlua = os.path.abspath(flowlua)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "bench.lua"), "w") as f:
        f.write(FLOW % ())
    # Calibrate: a spin count that takes about spin_s inline.
    spin = 2_000_000
    t, _ = run(flowlua, folder, {"shape": "cpu", "worker": "false", "n": 1, "spin": spin}, 1)
    spin = max(1000, int(spin * spin_s / max(t, 0.01)))
    doc = {"workers": workers, "spin": spin}
    w = best(flowlua, folder, {"shape": "cpu", "worker": "true", "n": 16, "spin": spin},
             workers, repeat)
    i = best(flowlua, folder, {"shape": "cpu", "worker": "false", "n": 16, "spin": spin},
             workers, repeat)
    doc["cpu"] = {"worker_s": w, "inline_s": i, "ratio": w / i}
    # The machine's own floor: the same spins in plain lua5.4 processes, all
    # in one, then split over `workers` processes at once. A VM whose
    # vCPUs share a core cannot do better than this ratio.
    lua = os.path.join(folder, "spin.lua")
    with open(lua, "w") as f:
        f.write("local n, m = ... ; n, m = tonumber(n), tonumber(m)\n"
                "for j = 1, m do local x = 0 for k = 1, n do x = x + k % 7 end end\n")
    one = min(timed([["lua5.4", lua, str(spin), "16"]]) for _ in range(repeat))
    per = 16 // workers
    split = min(timed([["lua5.4", lua, str(spin), str(per)]] * workers) for _ in range(repeat))
    doc["floor"] = {"one_s": one, "split_s": split, "ratio": split / one}
    w = best(flowlua, folder, {"shape": "noop", "worker": "true", "n": n_noop}, workers, repeat)
    i = best(flowlua, folder, {"shape": "noop", "worker": "false", "n": n_noop}, workers, repeat)
    doc["noop"] = {"n": n_noop, "worker_rate": n_noop / w, "inline_rate": n_noop / i}
    w = best(flowlua, folder, {"shape": "chain", "worker": "true", "n": n_chain}, workers, repeat)
    i = best(flowlua, folder, {"shape": "chain", "worker": "false", "n": n_chain}, workers, repeat)
    doc["overhead_us"] = (w - i) / n_chain * 1e6
    _, err = run(flowlua, folder, {"shape": "rss"}, 1)
    kb = [l.split("rss ")[1].split()[0] for l in err.splitlines() if "idle worker rss" in l]
    if not kb:
        raise BenchError("the idle worker's RSS was not logged")
    doc["idle_kb"] = int(kb[0])
    return doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flowlua")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    try:
        d = measure(a.flowlua, tempfile.mkdtemp(prefix="flowlua-bench-workers-"),
                    a.workers, a.repeat)
    except BenchError as e:
        sys.exit(f"workers/run.py: {e}")
    c, fl = d["cpu"], d["floor"]
    print(f"cpu 16 x 0.25 s, {a.workers} workers: worker {c['worker_s']:.2f} s, inline "
          f"{c['inline_s']:.2f} s, ratio {c['ratio']:.2f} (target <= {TARGET_CPU_RATIO})")
    print(f"the machine's floor, plain lua5.4: 16 in one process {fl['one_s']:.2f} s, split over "
          f"{a.workers} processes {fl['split_s']:.2f} s, ratio {fl['ratio']:.2f}")
    n = d["noop"]
    print(f"noop map of {n['n']}: worker {n['worker_rate']:,.0f} tasks/s, inline "
          f"{n['inline_rate']:,.0f} tasks/s (target >= {TARGET_NOOP_RATE:,} tasks/s)")
    print(f"overhead of one worker attempt: {d['overhead_us']:.0f} us "
          f"(target <= {TARGET_OVERHEAD_US} us)")
    print(f"idle worker RSS: {d['idle_kb']} kB (target <= {TARGET_IDLE_KB} kB plus the script's data)")


if __name__ == "__main__":
    main()
