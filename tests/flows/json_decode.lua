-- flow.json.decode: integers stay integers, floats are exact, strings with
-- every escape, null is cjson's null, and every kind of bad text raises an
-- error naming the problem with its offset, line and column.
-- run: normal use and every bad input
-- stderr: decode: Success
-- stderr: flow 'json decode' Success
-- run: a task that decodes bad JSON fails with the position
-- env: CASE=bad
-- exit: 1
-- stderr: decode: Failed .*json\.decode: expected ',' or '}' at offset 17 \(line 2, column 5\)
local flow = require "flowlua"
local check = require "lib.check"
local json = flow.json

local function fails(text, want)
  local ok, err = pcall(json.decode, text)
  check.eq(ok, false, string.format("decode(%q) fails", text))
  check.eq(err, want, string.format("error of decode(%q)", text))
end

local decode = flow.task("decode", function()
  if os.getenv("CASE") == "bad" then return json.decode('{"id": 12345\n    "x": 2}') end

  -- Integers in the text are Lua integers; a fraction or exponent makes a float.
  for text, want in pairs({ ["4"] = 4, ["-17"] = -17, ["0"] = 0, ["-0"] = 0,
                            ["9007199254740993"] = 9007199254740993,
                            ["9223372036854775807"] = math.maxinteger,
                            ["-9223372036854775808"] = math.mininteger }) do
    local v = json.decode(text)
    check.eq(math.type(v), "integer", text .. " type")
    check.eq(v, want, text)
  end
  check.eq(tostring(json.decode("4")), "4", "4 prints as 4")
  for text, want in pairs({ ["4.0"] = 4.0, ["0.1"] = 0.1, ["-2.5"] = -2.5, ["1e3"] = 1000.0,
                            ["1E-2"] = 0.01, ["2.5e+2"] = 250.0,
                            ["0.30000000000000004"] = 0.1 + 0.2,
                            ["9223372036854775808"] = 2^63,
                            ["123456789012345678901234567890"] = 1.2345678901234568e29 }) do
    local v = json.decode(text)
    check.eq(math.type(v), "float", text .. " type")
    check.eq(v, want, text)
  end
  check.eq(tostring(json.decode("4.0")), "4.0", "4.0 prints as 4.0")
  check.eq(json.decode("1e400"), math.huge, "overflow is infinity, as in cjson")

  -- Containers, literals, null.
  local v = json.decode(' { "a" : [ 1 , 2.5 , "x" , true , false , null ] , "b" : { } , "c" : [ ] } ')
  check.eq(#v.a, 6, "array length")
  check.eq(v.a[1], 1, "a[1]")
  check.eq(v.a[3], "x", "a[3]")
  check.eq(v.a[4], true, "true")
  check.eq(v.a[5], false, "false")
  check.eq(v.a[6], json.null, "null is json.null")
  check.eq(next(v.b), nil, "empty object")
  check.eq(next(v.c), nil, "empty array")
  check.eq(json.decode("null"), json.null, "top-level null")
  check.eq(json.null, require("cjson").null, "json.null is cjson.null")
  check.eq(type(json.null), "userdata", "json.null type")
  check.eq(json.decode('"x"'), "x", "top-level string")
  check.eq(json.decode('{"a":1,"a":2}').a, 2, "the last duplicate key wins")
  check.eq(math.type(next(json.decode('{"1":1}'))), nil, "object keys stay strings")
  check.eq(json.decode(' \t\r\n[1] \t\r\n')[1], 1, "space around")
  check.eq(json.decode("\239\187\191[7]")[1], 7, "a UTF-8 BOM is skipped")

  -- Strings: every escape, \u to UTF-8, surrogate pairs, raw UTF-8, zero bytes.
  check.eq(json.decode([["\" \\ \/ \b \f \n \r \t"]]), "\" \\ / \b \f \n \r \t", "short escapes")
  check.eq(json.decode([["\u0041\u00e9\u20AC\ud83d\ude00"]]), "Aé€😀", "\\u escapes")
  check.eq(json.decode([["\u0000"]]), "\0", "\\u0000")
  check.eq(json.decode('"héllo wörld 😀"'), "héllo wörld 😀", "raw UTF-8")
  check.eq(json.decode('"' .. string.rep("ab\\n", 5000) .. '"'), string.rep("ab\n", 5000), "a long escaped string")
  check.eq(json.decode('"' .. string.rep("x", 100000) .. '"'), string.rep("x", 100000), "a long plain string")

  -- Depth: 1000 nested arrays decode, 1001 do not.
  local deep = json.decode(string.rep("[", 1000) .. string.rep("]", 1000))
  for _ = 1, 999 do deep = deep[1] end
  check.eq(next(deep), nil, "the innermost of 1000 arrays")
  fails(string.rep("[", 1001) .. string.rep("]", 1001),
    "json.decode: arrays and objects nested deeper than 1000 at offset 1000 (line 1, column 1001)")
  fails(string.rep('{"a":', 1001),
    "json.decode: arrays and objects nested deeper than 1000 at offset 5000 (line 1, column 5001)")

  -- A big array: every element in order.
  local parts = {}
  for i = 1, 100000 do parts[i] = tostring(i) end
  local big = json.decode("[" .. table.concat(parts, ",") .. "]")
  check.eq(#big, 100000, "big array length")
  check.eq(big[100000], 100000, "big array last")

  -- Bad text: the problem, its byte offset (from 0), line and column (from 1).
  fails('{"id": 1,\n    "x" 2}', "json.decode: expected ':' at offset 18 (line 2, column 9)")
  fails('{"a":1 "b":2}', "json.decode: expected ',' or '}' at offset 7 (line 1, column 8)")
  fails('[1 2]', "json.decode: expected ',' or ']' at offset 3 (line 1, column 4)")
  fails('{1:2}', "json.decode: expected a string key or '}' at offset 1 (line 1, column 2)")
  fails('{"a":1,}', "json.decode: expected a string key at offset 7 (line 1, column 8)")
  fails('[1,]', "json.decode: expected a value at offset 3 (line 1, column 4)")
  fails('[,1]', "json.decode: expected a value at offset 1 (line 1, column 2)")
  fails("{'a':1}", "json.decode: expected a string key or '}' at offset 1 (line 1, column 2)")
  fails('nan', "json.decode: invalid literal (expected 'null') at offset 0 (line 1, column 1)")
  fails('[NaN]', "json.decode: expected a value at offset 1 (line 1, column 2)")
  fails('Infinity', "json.decode: expected a value at offset 0 (line 1, column 1)")
  fails('tru', "json.decode: unexpected end of input at offset 3 (line 1, column 4)")
  fails('trux', "json.decode: invalid literal (expected 'true') at offset 0 (line 1, column 1)")
  fails('[fals]', "json.decode: invalid literal (expected 'false') at offset 1 (line 1, column 2)")
  fails('01', "json.decode: leading zeros are not allowed in numbers at offset 1 (line 1, column 2)")
  fails('-', "json.decode: unexpected end of input at offset 1 (line 1, column 2)")
  fails('[-a]', "json.decode: expected a digit at offset 2 (line 1, column 3)")
  fails('[1.]', "json.decode: expected a digit after '.' at offset 3 (line 1, column 4)")
  fails('[.5]', "json.decode: expected a value at offset 1 (line 1, column 2)")
  fails('[1e]', "json.decode: expected a digit in the exponent at offset 3 (line 1, column 4)")
  fails('[+1]', "json.decode: expected a value at offset 1 (line 1, column 2)")
  fails('[0x10]', "json.decode: expected ',' or ']' at offset 2 (line 1, column 3)")
  fails('"a\tb"', "json.decode: control character in string (escape it) at offset 2 (line 1, column 3)")
  fails('"a\nb"', "json.decode: control character in string (escape it) at offset 2 (line 1, column 3)")
  fails('"a\0b"', "json.decode: control character in string (escape it) at offset 2 (line 1, column 3)")
  fails([["\x"]], "json.decode: invalid escape in string at offset 1 (line 1, column 2)")
  fails([["\u12g4"]], "json.decode: invalid \\u escape (4 hex digits expected) at offset 1 (line 1, column 2)")
  fails([["\ud83d"]], "json.decode: invalid \\u escape (a high surrogate without a low one) at offset 1 (line 1, column 2)")
  fails([["\ud83d\u0041"]], "json.decode: invalid \\u escape (a high surrogate without a low one) at offset 1 (line 1, column 2)")
  fails([["é\ude00"]], "json.decode: invalid \\u escape (a low surrogate without a high one) at offset 3 (line 1, column 3)")
  fails('[1] [2]', "json.decode: unexpected data after the value at offset 4 (line 1, column 5)")
  fails('1 2', "json.decode: unexpected data after the value at offset 2 (line 1, column 3)")
  fails('{}x', "json.decode: unexpected data after the value at offset 2 (line 1, column 3)")
  fails('[1]\0', "json.decode: unexpected data after the value at offset 3 (line 1, column 4)")
  -- Truncated text always says so, wherever it stops.
  fails('', "json.decode: unexpected end of input at offset 0 (line 1, column 1)")
  fails('  \n ', "json.decode: unexpected end of input at offset 4 (line 2, column 2)")
  fails('\239\187\191', "json.decode: unexpected end of input at offset 3 (line 1, column 1)")
  local body = '{"hits": [{"id": 1, "name": "caf\\u00e9", "tags": ["a", "b"], "x": -1.5e3, "ok": true}]}'
  for n = 0, #body - 1 do
    local ok, err = pcall(json.decode, body:sub(1, n))
    check.eq(ok, false, "truncated at " .. n)
    check.eq(err:match("^json%.decode: unexpected end of input at offset (%d+) "), tostring(n),
      "truncated at " .. n .. ": " .. err)
  end
  check.eq(json.decode(body).hits[1].name, "café", "the whole body")

  -- Misuse.
  local ok, err = pcall(function() return json.decode({}) end)
  check.eq(ok, false, "decode(table)")
  check.eq(err:match("bad argument #1 to 'decode' %(string expected, got table%)") ~= nil, true, err)
  ok, err = pcall(function() return json.decode() end)
  check.eq(err:match("bad argument #1 to 'decode' %(string expected, got no value%)") ~= nil, true, err)
end)

return flow.define("json decode", {}, function() decode() end)
