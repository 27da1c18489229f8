-- A process killed with SIGKILL in the middle of writing leaves the old
-- file exactly as it was: writers fill a temporary file and rename it over
-- the target only when complete.
-- run: killed while csv.writer streams rows
-- signal: SIGKILL after streaming: \d+ rows written
-- exit: -9
-- file: complaints.csv = {fixtures}/complaints-0.csv
-- run: killed while csv.write writes a large list
-- env: CASE=write
-- signal: SIGKILL after writing \d+ rows at once
-- exit: -9
-- file: complaints.csv = {fixtures}/complaints-0.csv
-- run: killed while flow.json.write writes a large value
-- env: CASE=json
-- signal: SIGKILL after writing \d+ rows at once
-- exit: -9
-- file: complaints.csv = {fixtures}/complaints-0.csv
local flow = require "flowlua"
local csv = flow.csv
local case = os.getenv("CASE")
local HEADER = { "State", "Product", "Company" }
local ROW = { "CA", "Credit card, or prepaid card", 'The "Best" Lender, LLC' }

local old = flow.task("old", function()
  csv.write("complaints.csv", {}, { header = HEADER })
end)

-- Each writes until killed; the bound only keeps a broken test from
-- running forever (the driver's timeout would catch it too). The whole-list
-- writes end in a value that cannot be written, so that whether the kill
-- lands during a write or after one failed, the old file must be there.
local overwrite = flow.task("overwrite", function()
  if case == "write" or case == "json" then
    local rows = {}
    for i = 1, 3000000 do rows[i] = ROW end
    rows[#rows + 1] = { print }
    for _ = 1, 1000 do
      flow.log.info("writing %d rows at once", #rows)
      local ok, err
      if case == "json" then
        ok, err = pcall(flow.json.write, "complaints.csv", rows)
      else
        ok, err = pcall(csv.write, "complaints.csv", rows, { header = HEADER })
      end
      assert(not ok and err:find("function"), "the last row must fail the write")
    end
  else
    local w <close> = csv.writer("complaints.csv", { header = HEADER })
    for i = 1, 100000000 do
      w:write(ROW)
      if i % 100000 == 0 then flow.log.info("streaming: %d rows written", i) end
    end
  end
  error("not killed")
end)

return flow.define("crash writes", {}, function()
  overwrite():after(old())
end)
