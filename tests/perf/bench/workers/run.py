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


def run(flowlua, folder, params, workers):
    args = [flowlua, "bench.lua", "--quiet", "--state", ":memory:", "--workers", str(workers)]
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"bench failed: {' '.join(args)}\n{done.stderr[-3000:]}")
    return took, done.stderr


def best(flowlua, folder, params, workers, repeat):
    return min(run(flowlua, folder, params, workers)[0] for _ in range(repeat))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flowlua")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    flowlua = os.path.abspath(a.flowlua)
    folder = tempfile.mkdtemp(prefix="flowlua-bench-workers-")
    with open(os.path.join(folder, "bench.lua"), "w") as f:
        f.write(FLOW % ())
    # Calibrate: a spin count that takes about 0.25 s inline.
    spin = 2_000_000
    t, _ = run(flowlua, folder, {"shape": "cpu", "worker": "false", "n": 1, "spin": spin}, 1)
    spin = int(spin * 0.25 / max(t, 0.01))
    w = best(flowlua, folder, {"shape": "cpu", "worker": "true", "n": 16, "spin": spin},
             a.workers, a.repeat)
    i = best(flowlua, folder, {"shape": "cpu", "worker": "false", "n": 16, "spin": spin},
             a.workers, a.repeat)
    print(f"cpu 16 x 0.25 s, {a.workers} workers: worker {w:.2f} s, inline {i:.2f} s, "
          f"ratio {w / i:.2f} (target <= 0.55)")
    # The machine's own floor: the same spins in plain lua5.4 processes, all
    # in one, then split over --workers processes at once. A VM whose
    # vCPUs share a core cannot do better than this ratio.
    lua = os.path.join(folder, "spin.lua")
    with open(lua, "w") as f:
        f.write("local n, m = ... ; n, m = tonumber(n), tonumber(m)\n"
                "for j = 1, m do local x = 0 for k = 1, n do x = x + k % 7 end end\n")
    def timed(cmds):
        t0 = time.perf_counter()
        procs = [subprocess.Popen(c) for c in cmds]
        for pr in procs:
            pr.wait()
        return time.perf_counter() - t0
    one = min(timed([["lua5.4", lua, str(spin), "16"]]) for _ in range(a.repeat))
    per = 16 // a.workers
    split = min(timed([["lua5.4", lua, str(spin), str(per)]] * a.workers)
                for _ in range(a.repeat))
    print(f"the machine's floor, plain lua5.4: 16 in one process {one:.2f} s, split over "
          f"{a.workers} processes {split:.2f} s, ratio {split / one:.2f}")
    n = 10000
    w = best(flowlua, folder, {"shape": "noop", "worker": "true", "n": n}, a.workers, a.repeat)
    i = best(flowlua, folder, {"shape": "noop", "worker": "false", "n": n}, a.workers, a.repeat)
    print(f"noop map of {n}: worker {n / w:,.0f} tasks/s, inline {n / i:,.0f} tasks/s "
          f"(target >= 50,000 tasks/s)")
    n = 1000
    w = best(flowlua, folder, {"shape": "chain", "worker": "true", "n": n}, a.workers, a.repeat)
    i = best(flowlua, folder, {"shape": "chain", "worker": "false", "n": n}, a.workers, a.repeat)
    print(f"overhead of one worker attempt (a chain of {n}): {(w - i) / n * 1e6:.0f} us "
          f"(target <= 100 us)")
    _, err = run(flowlua, folder, {"shape": "rss"}, 1)
    kb = [l.split("rss ")[1].split()[0] for l in err.splitlines() if "idle worker rss" in l]
    print(f"idle worker RSS: {kb[0] if kb else '?'} kB (target <= 4096 kB plus the script's data)")


if __name__ == "__main__":
    main()
