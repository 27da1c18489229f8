-- The flow of the soak test (tests/perf/soak/run.py): served every 100 ms for
-- minutes on end, it touches every primitive that holds memory or file
-- descriptors — HTTP (the local test server), JSON, CSV and fs writes, a
-- child process — and its tasks fail at random, some of them for good
-- after their retries, so failed runs are part of the soak too.
local flow = require "flowlua"
local http, json, csv = flow.http, flow.json, flow.csv

local base = flow.env("SOAK_HTTP_URL")
local fail_rate = tonumber(flow.env("SOAK_FAIL_RATE", "0.2"))

local function maybe_fail(what)
  if math.random() < fail_rate then error("injected failure in " .. what) end
end

local fetch = flow.task("fetch", { retries = 2, retry_delay = 0.005, timeout = 10 },
  function(i)
    maybe_fail("fetch")
    local r = http.get(base .. "/json", { query = { bytes = 1000 + 100 * i } })
    r:raise_for_status()
    return r:json().count
  end)

local transform = flow.task("transform", { retries = 1, retry_delay = 0.005 },
  function(counts)
    maybe_fail("transform")
    local rows = {}
    for i, n in ipairs(counts) do rows[i] = { i, n, string.rep("x", n % 40) } end
    return rows
  end)

local store = flow.task("store", { timeout = 10 }, function(rows)
  csv.write("soak.csv", rows, { header = { "i", "count", "pad" } })
  local back = csv.read("soak.csv", { header = true })
  json.write("soak.json", back)
  local child = flow.shell({ "true" }, { timeout = 10 })
  if child.code ~= 0 then error("'true' exited " .. child.code) end
  return #back
end)

return flow.define("soak", {
  schedule = flow.interval { seconds = 0.1 },
}, function()
  store(transform(fetch:map({ 1, 2, 3, 4 })))
end)
