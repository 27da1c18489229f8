-- flow.csv at size: a ~50 MB file written by a streaming writer and read
-- back with csv.rows in bounded memory (Lua heap and process RSS both stay
-- far below the file's size), and the iterator's file closed when a loop
-- ends early by break or by an error.
-- run: stream 1,000,000 records
-- timeout: 110
-- stderr: generate: Success
-- stderr: stream: Success
-- stderr: early_exit: Success
-- run: a task timing out inside a loop closes the file
-- env: CASE=timeout
-- exit: 1
-- stderr: slow: TimedOut
-- stderr: after_timeout: Success
local flow = require "flowlua"
local check = require "lib.check"
local csv = flow.csv

local case = os.getenv("CASE")
local ROWS = case == "timeout" and 100000 or 1000000
local TEXT = "some words, and a comma to quote"

local function rss_kib()
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmRSS:%s+(%d+)")
    if kib then return tonumber(kib) end
  end
end

-- Whether this process still has `name` open, from /proc/<pid>/fd.
local function has_open(name)
  local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
  local r = flow.shell({ "ls", "-l", "/proc/" .. pid .. "/fd" })
  return r.stdout:find(name, 1, true) ~= nil
end

local generate = flow.task("generate", function()
  do
    local w <close> = csv.writer("big.csv", { header = { "id", "text", "half" } })
    for i = 1, ROWS do w:write({ i, TEXT, i / 2 }) end
  end
  local f = assert(io.open("big.csv"))
  local size = f:seek("end")
  f:close()
  return size
end)

local stream = flow.task("stream", function(size)
  check.between(size, 45e6, 60e6, "file size")
  collectgarbage()
  local heap0, rss0 = collectgarbage("count"), rss_kib()
  local heap_max, rss_max, n, sum = heap0, rss0, 0, 0
  for rec, line in csv.rows("big.csv", { header = true }) do
    n = n + 1
    sum = sum + tonumber(rec.id)
    if n % 20000 == 0 then
      check.eq(line, n + 1, "line of record " .. n)
      check.eq(rec.text, TEXT, "text of record " .. n)
      heap_max = math.max(heap_max, collectgarbage("count"))
      rss_max = math.max(rss_max, rss_kib())
    end
  end
  flow.log.info("streamed %d records of %d bytes: Lua heap +%d KiB, RSS +%d KiB at most", n, size,
    math.floor(heap_max - heap0), rss_max - rss0)
  check.eq(n, ROWS, "records streamed")
  check.eq(sum, ROWS * (ROWS + 1) // 2, "sum of ids")
  -- Reading the whole file into tables would take hundreds of MB.
  check.between(heap_max - heap0, 0, 16 * 1024, "Lua heap growth while streaming (KiB)")
  -- AddressSanitizer keeps freed memory in quarantine: RSS says nothing then.
  local sanitized = io.open("/proc/self/maps"):read("a"):find("libasan", 1, true)
  if not sanitized then check.between(rss_max - rss0, -1e9, 24 * 1024, "RSS growth while streaming (KiB)") end
  check.eq(has_open("big.csv"), false, "file closed at the end of the loop")
end)

local early_exit = flow.task("early_exit", function()
  for _, line in csv.rows("big.csv") do
    if line == 3 then break end
  end
  check.eq(has_open("big.csv"), false, "file closed after break")
  local ok, err = pcall(function()
    for row in csv.rows("big.csv") do
      if row[1] == "10" then error("stop at 10", 0) end
    end
  end)
  check.eq(ok, false, "error in the loop")
  check.eq(err, "stop at 10", "the loop's error")
  check.eq(has_open("big.csv"), false, "file closed after an error in the loop")
  -- An iterator kept open holds its file until it is closed.
  local iter, state, ctl, closer = csv.rows("big.csv")
  check.eq(iter(state, ctl)[1], "id", "first row by hand")
  check.eq(has_open("big.csv"), true, "file open while iterating")
  getmetatable(closer).__close(closer)
  check.eq(has_open("big.csv"), false, "file closed by __close")
  check.eq(iter(state, ctl), nil, "a closed iterator ends")
end)

local slow = flow.task("slow", { timeout = 0.3 }, function()
  for _ in csv.rows("big.csv") do
    local x = 0
    for k = 1, 5000 do x = x + k end
  end
end)

local after_timeout = flow.task("after_timeout", { trigger = "all_done" }, function()
  check.eq(has_open("big.csv"), false, "file closed after the task timed out")
end)

return flow.define("csv big", {}, function()
  local size = generate()
  if case == "timeout" then return after_timeout():after(slow():after(size)) end
  early_exit():after(stream(size))
end)
