-- The summary table pads task names by the columns a terminal gives them,
-- not by bytes: names in Polish (2-byte letters) and Japanese (wide
-- characters) line up with plain ones, and a long name is cut at a
-- character, never inside one.
-- args: {script}
-- stderr: (?m)^  plain {28}Success
-- stderr: (?m)^  załaduj {26}Success
-- stderr: (?m)^  読み込み {25}Success
-- stderr: (?m)^  mapa \[map of 2\] {18}Success
-- stderr: (?m)^  (漢){16} Success
local flow = require "flowlua"

local plain = flow.task("plain", function() return 1 end)
local zaladuj = flow.task("załaduj", function() return 2 end)
local yomikomi = flow.task("読み込み", function() return 3 end)
local mapa = flow.task("mapa", function(x) return x end)
local long = flow.task(string.rep("漢", 20), function() return 4 end)

return flow.define("summary_width", {}, function()
  plain()
  zaladuj()
  yomikomi()
  mapa:map({ 1, 2 })
  long()
end)
