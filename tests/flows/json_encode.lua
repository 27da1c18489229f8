-- flow.json.encode: lists become arrays, other tables objects, integers are
-- exact, floats short and exact, strings escaped; values JSON cannot hold
-- raise an error saying what and where; decode(encode(v)) gives v back.
-- run: normal use and every bad value
-- stderr: encode: Success
-- stderr: flow 'json encode' Success
-- run: a task that encodes a function fails saying where it was
-- env: CASE=bad
-- exit: 1
-- stderr: encode: Failed .*json\.encode: cannot encode a function \(at key 'rows\[2\]\.f'\)
local flow = require "flowlua"
local check = require "lib.check"
local json = flow.json

local function fails(value, want, what)
  local ok, err = pcall(json.encode, value)
  check.eq(ok, false, what .. " fails")
  check.eq(err, want, what)
end

-- Deep equality, with the number subtype counted: 4 and 4.0 differ here.
local function same(a, b, path)
  path = path or "value"
  if type(a) == "number" and type(b) == "number" then
    check.eq(math.type(b), math.type(a), path .. " number type")
  end
  if type(a) ~= "table" or type(b) ~= "table" then return check.eq(b, a, path) end
  for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do check.eq(a[k] ~= nil, true, path .. " has no key " .. tostring(k)) end
end

local encode = flow.task("encode", function()
  if os.getenv("CASE") == "bad" then return json.encode({ rows = { { f = 1 }, { f = print } } }) end

  -- Scalars.
  check.eq(json.encode(4), "4", "integer")
  check.eq(json.encode(-17), "-17", "negative integer")
  check.eq(json.encode(math.maxinteger), "9223372036854775807", "max integer, exact")
  check.eq(json.encode(math.mininteger), "-9223372036854775808", "min integer, exact")
  check.eq(json.encode(1234567890123456789), "1234567890123456789", "a big id, exact")
  check.eq(json.encode(4.0), "4", "an integral float as cjson writes it")
  check.eq(json.encode(-0.0), "-0", "negative zero")
  check.eq(json.encode(0.1), "0.1", "0.1 is short")
  check.eq(json.encode(0.1 + 0.2), "0.30000000000000004", "0.1 + 0.2 keeps every digit it needs")
  check.eq(json.encode(1 / 3), "0.3333333333333333", "1/3")
  check.eq(json.encode(1e300), "1e+300", "large float")
  check.eq(json.encode(2^63), "9.223372036854776e+18", "2^63 as a float")
  check.eq(json.encode(true), "true", "true")
  check.eq(json.encode(false), "false", "false")
  check.eq(json.encode(nil), "null", "nil")
  check.eq(json.encode(json.null), "null", "json.null")
  check.eq(json.encode(require("cjson").null), "null", "cjson.null")

  -- Strings: quotes, backslashes and control characters escaped; '/' and
  -- UTF-8 as they are.
  check.eq(json.encode("plain"), '"plain"', "plain string")
  check.eq(json.encode('say "hi"\\'), [["say \"hi\"\\"]], "quote and backslash")
  check.eq(json.encode("a/b"), '"a/b"', "slash is not escaped")
  check.eq(json.encode("\b\f\n\r\t"), [["\b\f\n\r\t"]], "short escapes")
  check.eq(json.encode("\0\1\31"), [["\u0000\u0001\u001f"]], "other control characters")
  check.eq(json.encode("héllo 😀"), '"héllo 😀"', "UTF-8 as it is")
  check.eq(json.encode(""), '""', "empty string")

  -- Tables as cjson encodes them: positive integer keys make an array as
  -- long as the largest key, holes as null, unless it is very sparse
  -- (largest key above 10 and above twice the count: then an object, where
  -- cjson raises); anything else is an object.
  check.eq(json.encode({ 1, 2, 3 }), "[1,2,3]", "list")
  check.eq(json.encode({ "a", { "b", { "c" } } }), '["a",["b",["c"]]]', "nested lists")
  check.eq(json.encode({}), "{}", "empty table is an object, as in cjson")
  check.eq(json.encode({ a = 1 }), '{"a":1}', "object")
  same({ ["1"] = "x", ["2"] = "y", n = 2 }, json.decode(json.encode({ "x", "y", n = 2 })), "a list with a named key")
  check.eq(json.encode({ [1] = "a", [3] = "c" }), '["a",null,"c"]', "a list with a hole")
  check.eq(json.encode({ 1, 2, nil, 4 }), "[1,2,null,4]", "a nil in a list")
  check.eq(json.encode({ [2] = "b" }), '[null,"b"]', "keys not starting at 1")
  check.eq(json.encode({ [10] = 1 }), "[" .. string.rep("null,", 9) .. "1]", "sparse but short")
  check.eq(json.encode({ [11] = 1 }), '{"11":1}', "very sparse: an object")
  local list = {}
  for i = 1, 10 do list[i] = i end
  list[22] = 22 -- 11 keys, the largest 22
  check.eq(json.encode(list), "[1,2,3,4,5,6,7,8,9,10" .. string.rep(",null", 11) .. ",22]",
    "largest key twice the count: still an array")
  list[22], list[23] = nil, 23
  check.eq(json.encode(list):sub(1, 1), "{", "above twice the count: an object")
  check.eq(json.encode({ [0] = 1 }), '{"0":1}', "key 0 makes an object")

  -- Empty arrays: json.array(t), json.array_mt and json.empty_array.
  check.eq(json.encode(json.array()), "[]", "json.array() is an empty array")
  check.eq(json.encode({ rows = json.array({}) }), '{"rows":[]}', "json.array({})")
  check.eq(json.encode(setmetatable({}, json.array_mt)), "[]", "json.array_mt")
  check.eq(json.encode({ json.empty_array }), "[[]]", "json.empty_array")
  check.eq(json.encode(json.array({ 1, 2 })), "[1,2]", "json.array keeps its elements")
  local t = {}
  check.eq(json.array(t), t, "json.array returns its table")
  check.eq(getmetatable(t), json.array_mt, "json.array sets array_mt")
  check.eq(json.encode({ [-1] = 1 }), '{"-1":1}', "negative integer key")
  check.eq(json.encode({ [1.5] = 1 }), '{"1.5":1}', "float key")
  check.eq(json.encode({ [0.1] = 1 }), '{"0.1":1}', "float key, short")
  check.eq(json.encode({ ['a"b'] = 1 }), '{"a\\"b":1}', "escaped key")
  check.eq(json.encode({ json.null, json.null }), "[null,null]", "nulls in a list")
  check.eq(json.encode({ a = setmetatable({}, { __index = function() return 1 end }) }), '{"a":{}}',
    "metatables are ignored")
  local big = {}
  for i = 1, 100000 do big[i] = i end
  check.eq(#json.encode(big), #table.concat(big, ",") + 2, "a long list")

  -- Round trips: decode(encode(v)) is v, number types included.
  local values = {
    { id = 1234567890123, score = 4.5, whole = 4, name = "café", tags = { "a", "b" }, ok = true,
      nested = { deeper = { list = { 1, 2.25, -3, "x" } } }, none = json.null },
    { 0.1, 1 / 3, 1e-300, 1e300, -0.5, 123456.789, 5e-324, math.pi },
    { "\0\1\2 \"quoted\" \\ / \n\r\t \127 😀" },
    { [1] = { [1] = { [1] = {} } } },
  }
  for i, v in ipairs(values) do same(v, json.decode(json.encode(v)), "round trip " .. i) end
  for _, x in ipairs({ 0.1, 1 / 3, math.pi, 1e-7, 2^-1074, 1.7976931348623157e308, 123.456, 100.0 }) do
    local back = json.decode(json.encode(x))
    check.eq(back, x, "float round trip of " .. string.format("%.17g", x))
  end
  -- An integral float is written without a fraction, so it comes back an integer.
  check.eq(math.type(json.decode(json.encode(4.0))), "integer", "4.0 comes back as 4")
  check.eq(json.decode(json.encode(2^53)), 9007199254740992, "2^53 comes back as an integer")
  local text = '{"a":[1,2,{"b":null}],"c":"d"}'
  check.eq(json.encode(json.decode(text)):len(), #text, "decode then encode keeps the length")

  -- 1000 nested tables encode; 1001 do not.
  local deep = {}
  local cur = deep
  for _ = 1, 999 do cur[1] = {}; cur = cur[1] end
  check.eq(#json.encode(deep), 1000 + 1000 - 1 + 1, "1000 nested tables") -- 999 "[...]" and a "{}"
  cur[1] = {}
  local ok, err = pcall(json.encode, deep)
  check.eq(ok, false, "1001 nested tables fail")
  check.eq(err:match("^json%.encode: tables nested deeper than 1000 %(at key '%.%.%.%[1%]"), "json.encode: tables nested deeper than 1000 (at key '...[1]", err)

  -- Values JSON cannot hold.
  fails(0 / 0, "json.encode: cannot encode NaN", "NaN")
  fails(math.huge, "json.encode: cannot encode infinity", "inf")
  fails({ x = -math.huge }, "json.encode: cannot encode -infinity (at key 'x')", "-inf in a table")
  fails(print, "json.encode: cannot encode a function", "a function")
  fails({ x = print }, "json.encode: cannot encode a function (at key 'x')", "a function in a table")
  fails({ a = { b = { 1, 2, { c = coroutine.create(print) } } } },
    "json.encode: cannot encode a thread (at key 'a.b[3].c')", "a thread deep down")
  fails({ io.stdout }, "json.encode: cannot encode a userdata (at key '[1]')", "a file handle")
  fails({ [true] = 1 }, "json.encode: table keys must be strings or numbers, got a boolean key", "boolean key")
  fails({ a = { [{}] = 1 } }, "json.encode: table keys must be strings or numbers, got a table key (at key 'a')",
    "table key")
  fails({ [math.huge] = 1 }, "json.encode: cannot encode an infinite table key", "infinite key")
  local cycle = { name = "x" }
  cycle.self = cycle
  fails(cycle, "json.encode: a table contains itself (at key 'self')", "a cycle")
  local inner = { list = { 1, 2 } }
  inner.list[3] = inner
  fails({ data = inner }, "json.encode: a table contains itself (at key 'data.list[3]')", "a longer cycle")
  -- The same table twice is not a cycle.
  local shared = { 1 }
  check.eq(json.encode({ shared, shared }), "[[1],[1]]", "a shared table")

  -- Misuse.
  ok, err = pcall(function() return json.encode() end)
  check.eq(err:match("bad argument #1 to 'encode' %(value expected%)") ~= nil, true, err)

  -- Options: keys in byte order (number keys as their text), and indented
  -- as Python's json.dumps(indent=2, sort_keys=True) writes it.
  local doc = { b = 1, a = { 3, {}, { x = true } }, [10] = "n", c = json.empty_array }
  check.eq(json.encode(doc, { sort_keys = true }),
           '{"10":"n","a":[3,{},{"x":true}],"b":1,"c":[]}', "sort_keys")
  check.eq(json.encode(doc, { indent = 2, sort_keys = true }), table.concat({
    '{',
    '  "10": "n",',
    '  "a": [',
    '    3,',
    '    {},',
    '    {',
    '      "x": true',
    '    }',
    '  ],',
    '  "b": 1,',
    '  "c": []',
    '}' }, "\n"), "indent and sort_keys")
  check.eq(json.encode({}, { indent = 4 }), "{}", "an empty object indented")
  check.eq(json.encode("s", { indent = 2 }), '"s"', "a string indented")
  same(json.decode(json.encode(doc, { indent = 3, sort_keys = true })),
       json.decode(json.encode(doc)), "indented text decodes to the same")
  check.eq(json.encode(doc, { indent = 0, sort_keys = false }), json.encode(doc), "the defaults")
  ok, err = pcall(json.encode, doc, { indent = 17 })
  check.eq(err, "json.encode: option 'indent' must be 0 to 16 spaces, got 17", "indent too big")
  ok, err = pcall(json.encode, doc, { indnt = 2 })
  check.eq(err, "json.encode: unknown option 'indnt' (options: indent, sort_keys)", "unknown option")
  ok, err = pcall(json.encode, doc, { sort_keys = "yes" })
  check.eq(err, "json.encode: option 'sort_keys' must be a boolean, got string", "sort_keys type")
  fails({ a = { f = print } }, "json.encode: cannot encode a function (at key 'a.f')", "sorted too")
  ok, err = pcall(json.encode, { a = { f = print } }, { sort_keys = true })
  check.eq(err, "json.encode: cannot encode a function (at key 'a.f')", "sorted: where it failed")
end)

return flow.define("json encode", {}, function() encode() end)
