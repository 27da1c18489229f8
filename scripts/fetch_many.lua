-- Fan-out fetch: one request per URL with task:map (all in flight at once,
-- up to the flow's concurrency), each response parsed, and the rows merged
-- into one CSV. A failing URL is retried; a URL that keeps failing fails its
-- element only, and the merge (trigger all_done) still writes what arrived.
--
--   flowlua scripts/fetch_many.lua --param base=http://127.0.0.1:8080 --param pages=20
local flow = require "flowlua"
local http, csv = flow.http, flow.csv

local page_urls = flow.task("page_urls", function(base, pages)
  local urls = {}
  for i = 1, pages do urls[i] = string.format("%s/json?bytes=2000&page=%d", base, i) end
  return urls
end)

local fetch = flow.task("fetch", { retries = 3, retry_delay = 0.5, backoff = 2, timeout = 30 },
  function(url)
    local r = http.get(url):raise_for_status()
    local doc = r:json()
    return { url, r.status, #r.body, doc.id or "" }
  end)

local merge = flow.task("merge", { trigger = "all_done" }, function(out, rows)
  local good = {}
  for _, row in ipairs(rows or {}) do good[#good + 1] = row end
  csv.write(out, good, { header = { "url", "status", "bytes", "id" } })
  flow.log.info("wrote %d rows to %s", #good, out)
  return #good
end)

return flow.define("fetch many", {
  params = { base = "http://127.0.0.1:8080", pages = 20, out = "pages.csv" },
  concurrency = 16,
}, function(p)
  merge(p.out, fetch:map(page_urls(p.base, p.pages)))
end)
