-- The flow that tests/system/store/crash_resume.py kills with SIGKILL at many
-- points and then resumes. Not a flow test of its own (it lives outside
-- tests/flows/): the driver runs it in a fresh folder per trial.
--
-- Shapes: a chain (seed -> c1 -> c2 -> c3 -> c4), a map over 8 elements
-- fed by c2, a merge of the map, two big CSV writes beside the chain (one
-- list of 200,000 rows written at once, one streamed through csv.writer),
-- a JSON report, and a final task that checks every input and output.
-- Every task writes one output file under out/ (atomically), sleeps a
-- little so that kills land at many different points, and appends to
-- side.log when its body starts ("<key> <pid>") and ends
-- ("done <key> <pid>"); "mark <what> <pid>" lines say that a big write
-- begins. crash_resume.py knows the graph and every file's exact bytes:
-- keep the two in step.
local flow = require "flowlua"
local fs, csv, json = flow.fs, flow.csv, flow.json

local BIG_ROWS = 200000
local STREAM_ROWS = 60000
local N = 8

local PID
do
  local f = assert(io.open("/proc/self/stat"))
  PID = f:read("n")
  f:close()
end

local function side(line)
  local f = assert(io.open("side.log", "a"))
  f:write(line, "\n")
  f:flush()
  f:close()
end

local function key()
  local c = flow.context()
  if c.map_index then return ("%s[%d]"):format(c.task_name, c.map_index) end
  return c.task_name
end

-- A task whose body is logged when it starts and when it ends.
local function task(name, fn)
  return flow.task(name, function(...)
    local k = key()
    side(("%s %d"):format(k, PID))
    local result = fn(...)
    side(("done %s %d"):format(k, PID))
    return result
  end)
end

local function expect(what, got, want)
  if got ~= want then
    error(("%s: got %s, want %s"):format(what, tostring(got), tostring(want)))
  end
end

local seed = task("seed", function()
  fs.mkdir("out")
  flow.sleep(0.02)
  fs.write("out/seed.txt", "seed\n")
  return 3
end)

local function link(n)
  return task("c" .. n, function(v)
    flow.sleep(0.01 + 0.01 * n)
    local value = v * 2 + 1
    fs.write(("out/c%d.txt"):format(n), ("c%d %d\n"):format(n, value))
    return value
  end)
end
local c1, c2, c3, c4 = link(1), link(2), link(3), link(4)

local sq = task("sq", function(i, base)
  flow.sleep(0.01 * (1 + i % 4))
  local value = i * i + base
  fs.write(("out/sq_%d.txt"):format(i), ("%d %d\n"):format(i, value))
  return value
end)

local merge = task("merge", function(values)
  flow.sleep(0.02)
  local rows, sum = {}, 0
  for i = 1, N do
    rows[i] = { i, values[i] }
    sum = sum + values[i]
  end
  csv.write("out/squares.csv", rows, { header = { "i", "value" } })
  return sum
end)

-- Builds the rows first (the event loop is busy, so everything else waits),
-- then writes them in one call: kills land in the build and in the write.
local big = task("big", function()
  local rows = {}
  for i = 1, BIG_ROWS do rows[i] = { i, "row, " .. i, (i * 7) % 1000 } end
  side(("mark big-write %d"):format(PID))
  return csv.write("out/big.csv", rows, { header = { "i", "name", "val" } })
end)

-- Streams rows, letting the other tasks run every few thousand rows.
local stream = task("stream", function()
  side(("mark stream-write %d"):format(PID))
  local w <close> = csv.writer("out/stream.csv", { header = { "i", "name" } })
  for i = 1, STREAM_ROWS do
    w:write({ i, "s" .. i })
    if i % 6000 == 0 then flow.sleep(0.002) end
  end
  return STREAM_ROWS
end)

local report = task("report", function(sum, last)
  flow.sleep(0.02)
  json.write("out/report.json", { sum, last, "ok" })
  return { sum = sum, last = last }
end)

local final = task("final", function(last, sum, big_rows, stream_rows, rep)
  flow.sleep(0.01)
  expect("c4", last, 63)
  expect("sum", sum, 204 + N * 15)
  expect("big rows", big_rows, BIG_ROWS)
  expect("stream rows", stream_rows, STREAM_ROWS)
  expect("report.sum", rep.sum, sum)
  expect("report.last", rep.last, last)
  expect("seed.txt", fs.read("out/seed.txt"), "seed\n")
  local v = 3
  for n = 1, 4 do
    v = v * 2 + 1
    expect("c" .. n, fs.read(("out/c%d.txt"):format(n)), ("c%d %d\n"):format(n, v))
  end
  local lines = { "i,value" }
  for i = 1, N do
    local value = i * i + 15
    expect("sq " .. i, fs.read(("out/sq_%d.txt"):format(i)), ("%d %d\n"):format(i, value))
    lines[#lines + 1] = ("%d,%d"):format(i, value)
  end
  expect("squares.csv", fs.read("out/squares.csv"), table.concat(lines, "\n") .. "\n")
  expect("report.json", fs.read("out/report.json"), ('[%d,%d,"ok"]\n'):format(sum, last))
  -- big.csv: its length, then its first and last rows.
  local text, len = fs.read("out/big.csv"), #"i,name,val\n"
  local function digits(x)
    local d = 1
    while x >= 10 do x, d = x // 10, d + 1 end
    return d
  end
  for i = 1, BIG_ROWS do len = len + 2 * digits(i) + digits((i * 7) % 1000) + 10 end
  expect("big.csv length", #text, len)
  expect("big.csv row 1", text:sub(12, 24), '1,"row, 1",7\n')
  local tail = ('%d,"row, %d",%d\n'):format(BIG_ROWS, BIG_ROWS, (BIG_ROWS * 7) % 1000)
  expect("big.csv last row", text:sub(-#tail), tail)
  text = fs.read("out/stream.csv")
  expect("stream.csv end", text:sub(-(#tostring(STREAM_ROWS) * 2 + 3)),
         ("%d,s%d\n"):format(STREAM_ROWS, STREAM_ROWS))
  fs.write("out/final.txt", "ok\n")
  return true
end)

return flow.define("crash_resume", {}, function()
  local s = seed()
  local v1 = c1(s)
  local v2 = c2(v1)
  local v4 = c4(c3(v2))
  local ids = {}
  for i = 1, N do ids[i] = i end
  local total = merge(sq:map(ids, v2))
  final(v4, total, big(s), stream(s), report(total, v4))
end)
