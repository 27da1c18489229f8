-- Fan-out fetch: one request per URL with task:map (all in flight at once,
-- up to the flow's concurrency), each response parsed, and the rows merged
-- into one CSV. A failing URL is retried; a URL that keeps failing fails its
-- element only, and the merge (trigger all_done) still writes what arrived.
--
--   flowlua scripts/fetch_many.lua --param base=http://127.0.0.1:8080 --param pages=20
--     [--param path=/json?page=%d]   (each page's path; %d is its number)
local flow = require "flowlua"
local http, csv = flow.http, flow.csv

local page_urls = flow.task("page_urls", function(base, path, pages)
  local urls = {}
  for i = 1, pages do urls[i] = base .. string.format(path, i) end
  return urls
end)

local fetch = flow.task("fetch", { retries = 3, retry_delay = 0.5, backoff = 2, timeout = 30 },
  function(url)
    local r = http.get(url):raise_for_status()
    local doc = r:json()
    return { url, r.status, #r.body, doc.id or "" }
  end)

-- A map whose element failed gives nil in that element's place, so the
-- rows are walked by page number, not with ipairs (which stops at a hole).
local merge = flow.task("merge", { trigger = "all_done" }, function(out, pages, rows)
  local good = {}
  for i = 1, pages do
    if rows and rows[i] then good[#good + 1] = rows[i] end
  end
  csv.write(out, good, { header = { "url", "status", "bytes", "id" } })
  flow.log.info("wrote %d rows to %s", #good, out)
  return #good
end)

return flow.define("fetch many", {
  params = { base = "http://127.0.0.1:8080", path = "/json?bytes=2000&page=%d", pages = 20,
             out = "pages.csv" },
  concurrency = 16,
}, function(p)
  merge(p.out, p.pages, fetch:map(page_urls(p.base, p.path, p.pages)))
end)
