-- Runs a child process and parses its output: `df -P -k` lists the mounted
-- file systems; the flow turns its table into records, flags the ones above
-- a usage threshold, and writes both to CSV and JSON.
--
--   flowlua scripts/disk_report.lua --param threshold=80
local flow = require "flowlua"

local run_df = flow.task("run_df", { timeout = 30 }, function()
  local r = flow.shell({ "df", "-P", "-k" }, { env = { LC_ALL = "C" } })
  if r.code ~= 0 then error("df failed with code " .. r.code .. ": " .. r.stderr) end
  return r.stdout
end)

local parse = flow.task("parse", function(text)
  local rows, first = {}, true
  for line in text:gmatch("[^\n]+") do
    if first then
      first = false -- the header line
    else
      local fs, size, used, avail, pct, mount =
        line:match("^(%S+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%%%s+(.+)$")
      if fs then
        rows[#rows + 1] = { filesystem = fs, kib = tonumber(size), used = tonumber(used),
                            available = tonumber(avail), percent = tonumber(pct), mount = mount }
      end
    end
  end
  if #rows == 0 then error("no file systems found in df's output") end
  return rows
end)

local report = flow.task("report", function(p, rows)
  local csv_rows, full = {}, {}
  for _, r in ipairs(rows) do
    csv_rows[#csv_rows + 1] = { r.mount, r.filesystem, r.kib, r.used, r.percent }
    if r.percent >= p.threshold then full[#full + 1] = r end
  end
  flow.csv.write(p.out .. ".csv", csv_rows, { header = { "mount", "filesystem", "kib", "used", "percent" } })
  flow.json.write(p.out .. ".json", { threshold = p.threshold, over = full })
  flow.log.info("%d file systems, %d at or above %d%%", #rows, #full, p.threshold)
  return #full
end)

return flow.define("disk report", { params = { threshold = 90, out = "disk" } }, function(p)
  report(p, parse(run_df()))
end)
