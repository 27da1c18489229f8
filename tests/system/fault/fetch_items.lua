-- The flow of the fault-injection suite (tests/system/fault/run.py): fetch n
-- JSON documents from the chaos server, check and summarise each one, write
-- one file per item, then one CSV of all of them. Every way the server can fail
-- must end the attempt with an error, so that the retries deal with it.
--
-- Retries, their delay and the attempt timeout come from the environment
-- (FAULT_RETRIES, FAULT_RETRY_DELAY, FAULT_TIMEOUT): task options are fixed
-- when the script loads, before params exist.
local flow = require "flowlua"
local http, fs, csv = flow.http, flow.fs, flow.csv

local HEADER = { "id", "name", "count", "total", "min", "max", "weight" }

-- One document's figures; an error when the document is not the one asked
-- for or its values do not add up to its checksum.
local function summarise(id, doc)
  if doc.id ~= id then
    error(string.format("item %d: the server sent the document of item %s",
                        id, tostring(doc.id)))
  end
  local total, min, max = 0, math.huge, -math.huge
  for _, v in ipairs(doc.values) do
    total = total + v
    if v < min then min = v end
    if v > max then max = v end
  end
  if total ~= doc.checksum then
    error(string.format("item %d: values add up to %d, checksum says %s",
                        id, total, tostring(doc.checksum)))
  end
  return { id = id, name = doc.name, count = #doc.values, total = total,
           min = min, max = max, weight = string.format("%.2f", doc.weight) }
end

local item = flow.task("item", {
  retries = tonumber(flow.env("FAULT_RETRIES", "12")),
  retry_delay = tonumber(flow.env("FAULT_RETRY_DELAY", "0.01")),
  timeout = tonumber(flow.env("FAULT_TIMEOUT", "1")),
}, function(p, id)
  local r = http.get(string.format("%s/doc/%s/%d", p.base, p.run, id))
  r:raise_for_status()
  local ctype = r.headers["content-type"] or "none"
  if not ctype:find("^application/json") then
    error(string.format("item %d: expected application/json, got %s", id, ctype))
  end
  local row = summarise(id, r:json())
  fs.write(string.format("%s/item-%03d.txt", p.out, id), string.format(
    "id: %d\nname: %s\ncount: %d\ntotal: %d\nmin: %d\nmax: %d\nweight: %s\n",
    row.id, row.name, row.count, row.total, row.min, row.max, row.weight))
  return row
end)

local combine = flow.task("combine", function(p, rows)
  return csv.write(p.out .. "/items.csv", rows, { header = HEADER })
end)

return flow.define("fault items", {
  params = { base = "http://127.0.0.1:1", run = "run", out = "out", n = 50 },
}, function(p)
  local ids = {}
  for i = 1, p.n do ids[i] = i end
  combine(p, item:map(flow.unmapped(p), ids))
end)
