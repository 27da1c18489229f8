-- The complaints ETL from DESIGN.md: extract consumer complaints from a JSON
-- HTTP API (an Elasticsearch-style body), parse them to rows, and load them
-- into complaints.csv, created first. Runs every minute when served.
--
--   flowlua scripts/complaints.lua                  # serve: every minute
--   flowlua scripts/complaints.lua --once           # one run now
--   flowlua scripts/complaints.lua --once \
--     --param url=file://$PWD/tests/support/fixtures/complaints.json   # offline
local flow = require "flowlua"
local http, csv = flow.http, flow.csv

local create_document = flow.task("create_document", function(p)
  csv.write(p.out, {}, { header = { "State", "Product", "Company" } })
end)

local get_complaint_data = flow.task("get_complaint_data",
  { retries = 10, retry_delay = 30, timeout = 60 },
  function(url)
    local r = http.get(url, { query = { size = 10 } })
    r:raise_for_status()
    return r:json().hits.hits
  end)

local parse_complaint_data = flow.task("parse_complaint_data", function(raw)
  local rows = {}
  for i, hit in ipairs(raw) do
    local s = hit._source
    rows[i] = { s.state, s.product, s.company }
  end
  return rows
end)

local store_complaints = flow.task("store_complaints", function(p, rows)
  csv.write(p.out, rows, { header = { "State", "Product", "Company" } })
  return #rows
end)

return flow.define("etl flow", {
  params = { url = "https://www.consumerfinance.gov/data-research/consumer-complaints/search/api/v1/",
             out = "complaints.csv" },
  schedule = flow.interval { minutes = 1 },
}, function(p)
  local doc = create_document(p)
  local raw = get_complaint_data(p.url)
  local rows = parse_complaint_data(raw)
  store_complaints(p, rows):after(doc)
end)
