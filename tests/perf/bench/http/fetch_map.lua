-- flowlua's side of the HTTP benchmark: N GETs through task:map, each task
-- returning the body's length (DECODE=1: each body decoded with :json()).
local flow = require "flowlua"
local url = assert(os.getenv("BENCH_URL"), "BENCH_URL")
local n = tonumber(os.getenv("BENCH_N") or "1000")
local decode = os.getenv("DECODE") == "1"

local get = flow.task("get", function(u)
  local r = flow.http.get(u):raise_for_status()
  if decode then r:json() end
  return #r.body
end)
-- A process loads libcurl (dlopen, about 4.5 ms with the libraries it
-- needs) and initialises it at its first request; ref_multi.c does both
-- before its clock starts. So does this side, with a file:// request, which
-- opens no connection: both clocks time the transfers alone.
local start = flow.task("start", function()
  flow.http.get("file:///dev/null")
  return flow.now()
end)
local total = flow.task("total", function(lengths, t0)
  local sum = 0
  for _, l in ipairs(lengths) do sum = sum + l end
  print(string.format("requests %d bytes %d seconds %.6f", #lengths, sum, flow.now() - t0))
end)

return flow.define("http bench", { concurrency = tonumber(os.getenv("BENCH_C") or "32") }, function()
  local urls = {}
  for i = 1, n do urls[i] = url end
  local t0 = start()
  total(get:map(urls):after(t0), t0)
end)
