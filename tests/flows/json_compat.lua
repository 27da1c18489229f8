-- flow.json against lua-cjson, the library DESIGN.md names: the same texts
-- decode to the same values (numbers equal by value; flow.json keeps
-- integers as integers), each one's output decodes in the other to the
-- original, and both refuse the same broken texts.
-- stderr: compat: Success
local flow = require "flowlua"
local json = flow.json
local cjson = require "cjson"

-- Deep equality where json.null and cjson.null are the same value and 4
-- equals 4.0.
local function same(a, b, path)
  if type(a) ~= type(b) then
    error(string.format("%s: %s vs %s", path, tostring(a), tostring(b)), 0)
  end
  if type(a) ~= "table" then
    if a ~= b and not (a ~= a and b ~= b) then
      error(string.format("%s: %s vs %s", path, tostring(a), tostring(b)), 0)
    end
    return
  end
  for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do
    if a[k] == nil then error(path .. "." .. tostring(k) .. ": missing on the left", 0) end
  end
end

local texts = {
  '{"hits":{"total":{"value":2},"hits":[{"_source":{"state":"CA","n":null}}]}}',
  '[1, -2, 3.5, -0.25, 1e3, 1E-3, 2.5e+2, 0, -0]',
  '"plain"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\u00e9\\u4e2d\\ud83d\\ude00"', '"caf\195\169"',
  '[[[[]]], {}, {"a":{}}]', ' \t\n [ true , false , null ] \r\n',
  '{"a":1,"a":2}', '{"":""}', '[123456789012, 1.5e300, 5e-324]',
  '"\\u0000 zero"',
}
local broken = {
  "", "[", "{", '{"a"}', '{"a":}', "[1,]", "{,}", "[1 2]", '"open', "tru", "nul",
  ".5", "-", "1e", "[1]]", '{"a":1}x', "'single'", '"\\x"', '"\\u12"', '{1:2}',
}
-- cjson takes these (it reads numbers with strtod and strings loosely);
-- RFC 8259 does not, and neither does flow.json.
local lax = { "01", "1.", "+1", "NaN", "Infinity", "-Infinity", "0x10", "1.e5", '"tab\there"' }

local compat = flow.task("compat", function()
  for i, text in ipairs(texts) do
    local mine, theirs = json.decode(text), cjson.decode(text)
    same(mine, theirs, "decode of text " .. i)
    same(json.decode(cjson.encode(mine)), mine, "flow.json reads cjson's encoding of text " .. i)
    same(cjson.decode(json.encode(mine)), mine, "cjson reads flow.json's encoding of text " .. i)
  end
  for i, text in ipairs(broken) do
    local ok_mine = pcall(json.decode, text)
    local ok_theirs = pcall(cjson.decode, text)
    if ok_mine or ok_theirs then
      error(string.format("broken text %d (%q): flow.json %s, cjson %s", i, text,
        ok_mine and "accepts it" or "refuses it", ok_theirs and "accepts it" or "refuses it"), 0)
    end
  end
  for i, text in ipairs(lax) do
    if not pcall(cjson.decode, text) then error(string.format("lax text %d (%q): cjson refuses it now", i, text), 0) end
    if pcall(json.decode, text) then error(string.format("lax text %d (%q): flow.json accepts it", i, text), 0) end
  end
  -- Tables encode to the same shape: lists, lists with a few holes, objects.
  local values = {
    { 1, 2, 3 }, { 1, nil, 3 }, { [2] = "b" }, { a = 1, b = { "x", json.null } },
    { [10] = true }, {}, { x = {} }, { "é", "\0" },
  }
  for i, v in ipairs(values) do
    same(json.decode(json.encode(v)), cjson.decode(cjson.encode(v)), "shape of value " .. i)
  end
  -- DEL and the C1 controls (U+0080..U+009F) go out escaped, for the
  -- terminal's sake; both read the escapes back as the same bytes.
  local controls = "a\127b\194\133c\194\155[2Jd\194\160e"
  local out = json.encode(controls)
  if out ~= '"a\\u007fb\\u0085c\\u009b[2Jd\194\160e"' then
    error("DEL and C1 controls are escaped: " .. out, 0)
  end
  same(cjson.decode(out), controls, "cjson reads the escaped controls")
  same(json.decode(out), controls, "flow.json reads the escaped controls")
  same(json.decode(json.encode({ [controls] = { controls } })), { [controls] = { controls } },
       "escaped controls in keys and lists")
  -- Where they differ on purpose: integers stay integers.
  if math.type(json.decode("4")) ~= "integer" then error("4 must decode as an integer", 0) end
  if json.encode(9007199254740993) ~= "9007199254740993" then error("integers are exact", 0) end
end)

return flow.define("json compat", {}, function() compat() end)
