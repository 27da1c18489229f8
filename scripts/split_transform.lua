-- Splits a large CSV into parts, transforms each part on a worker task (a
-- process of its own, so the parts use every core), and merges the parts'
-- results into one file. Makes its own input when there is none, so it
-- runs offline:
--
--   flowlua scripts/split_transform.lua --param rows=200000 --param parts=8
--
-- Each part reads its own line range of the input with csv.rows and writes
-- its output next to it; only the part's file name and counts cross to the
-- worker and back, never the rows themselves (arguments and results are
-- copied between processes).
local flow = require "flowlua"
local csv, fs = flow.csv, flow.fs

-- The input: `rows` records of an order log, made once.
local make_input = flow.task("make_input", function(path, rows)
  if fs.exists(path) then return path end
  local w <close> = csv.writer(path, { header = { "id", "customer", "amount", "currency" } })
  local currencies = { "EUR", "USD", "GBP", "JPY" }
  for i = 1, rows do
    w:write({ i, "customer " .. (i * 7919 % 1000), (i * 104729 % 100000) / 100,
              currencies[i % 4 + 1] })
  end
  return path
end)

-- The work of one part, in a worker: every record of lines [first, last]
-- converted to euros, written to the part's own file.
local rates = { EUR = 1, USD = 0.92, GBP = 1.17, JPY = 0.0062 }
local transform = flow.task("transform", { worker = true, retries = 1 }, function(input, part, first, last)
  local out = ("part-%03d.csv"):format(part)
  local w <close> = csv.writer(out, { header = { "id", "customer", "euros" } })
  local n, total = 0, 0
  local i = 0
  for row in csv.rows(input, { header = true }) do
    i = i + 1
    if i > last then break end
    if i >= first then
      local euros = tonumber(row.amount) * rates[row.currency]
      w:write({ row.id, row.customer, ("%.2f"):format(euros) })
      n, total = n + 1, total + euros
    end
  end
  return { file = out, rows = n, euros = total }
end)

local merge = flow.task("merge", function(parts, path)
  local w <close> = csv.writer(path, { header = { "id", "customer", "euros" } })
  local rows, euros = 0, 0
  for _, part in ipairs(parts) do
    for row in csv.rows(part.file, { header = true }) do w:write(row) end
    rows, euros = rows + part.rows, euros + part.euros
    fs.remove(part.file)
  end
  flow.log.info("merged %d parts: %d rows, %.2f euros", #parts, rows, euros)
  return { rows = rows, euros = euros }
end)

return flow.define("split_transform", { params = { rows = 100000, parts = 4,
    input = "orders.csv", output = "orders-eur.csv" } }, function(p)
  local input = make_input(p.input, p.rows)
  -- One element per part: the lists are zipped, the input passed whole.
  local ids, firsts, lasts = {}, {}, {}
  local size = math.ceil(p.rows / p.parts)
  for k = 1, p.parts do
    ids[k], firsts[k], lasts[k] = k, (k - 1) * size + 1, math.min(k * size, p.rows)
  end
  merge(transform:map(flow.unmapped(input), ids, firsts, lasts), p.output)
end)
