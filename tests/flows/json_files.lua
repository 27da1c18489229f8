-- flow.json.read and flow.json.write: files decoded and written atomically;
-- every failure names the path and the cause, and a failed write leaves
-- the old file as it was and no temporary file behind.
-- run: normal use and every failure
-- stderr: files: Success
-- stderr: flow 'json files' Success
-- run: a write into a folder that does not exist fails the task
-- env: CASE=nofolder
-- exit: 1
-- stderr: files: Failed .*json\.write: cannot write 'no/such/folder/out\.json': No such file or directory
-- run: a file that is not JSON fails the task, naming the file and the place
-- env: CASE=badfile
-- exit: 1
-- stderr: files: Failed .*json\.read: 'bad\.json': expected ',' or ']' at offset 11 \(line 2, column 5\)
local flow = require "flowlua"
local check = require "lib.check"
local json = flow.json

local function fails(want, fn, ...)
  local ok, err = pcall(fn, ...)
  check.eq(ok, false, want .. " (fails)")
  check.eq(err, want, "error")
end

-- The names in a folder, hidden ones too, sorted and joined by spaces.
local function listing(dir)
  -- -A shows temporary files; the run history (.flowlua) is expected
  local r = flow.shell({ "ls", "-A", "-I", ".flowlua", dir })
  check.eq(r.code, 0, "ls " .. dir)
  return (r.stdout:gsub("\n$", ""):gsub("\n", " "))
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local files = flow.task("files", function()
  local case = os.getenv("CASE")
  if case == "nofolder" then return json.write("no/such/folder/out.json", { 1 }) end
  if case == "badfile" then
    spit("bad.json", "[1, 2,\n  3 4]")
    return json.read("bad.json")
  end

  -- Write, read back; the file is the encoded text and a newline.
  local value = { id = 1234567890123, name = "café", rows = { { 1, 2.5 }, { "x", json.null } }, ok = true }
  check.eq(json.write("out.json", value), nil, "write returns nothing")
  check.eq(slurp("out.json"), json.encode(value) .. "\n", "file contents")
  local back = json.read("out.json")
  check.eq(back.id, 1234567890123, "id")
  check.eq(math.type(back.id), "integer", "id stays an integer")
  check.eq(back.name, "café", "name")
  check.eq(back.rows[1][2], 2.5, "nested float")
  check.eq(back.rows[2][2], json.null, "null")
  check.eq(listing("."), "out.json", "only the file, no temporary one")

  -- Replacing a file: a new file is renamed over the old one.
  local before = flow.shell({ "stat", "-c", "%i", "out.json" }).stdout
  json.write("out.json", { "second" })
  check.eq(slurp("out.json"), '["second"]\n', "replaced")
  check.eq(flow.shell({ "stat", "-c", "%i", "out.json" }).stdout ~= before, true, "a new inode: renamed into place")
  check.eq(listing("."), "out.json", "still no temporary file")

  -- A value that cannot be encoded: the file is not touched.
  fails("json.write: cannot encode a function (at key 'f')", json.write, "out.json", { f = print })
  check.eq(slurp("out.json"), '["second"]\n', "the old file is left as it was")
  check.eq(listing("."), "out.json", "no temporary file after an encode error")

  -- Writes that fail at the file system.
  fails("json.write: cannot write 'no/such/folder/out.json': No such file or directory",
    json.write, "no/such/folder/out.json", {})
  os.execute("mkdir adir")
  fails("json.write: cannot write 'adir': Is a directory", json.write, "adir", { 1 })
  check.eq(listing("."), "adir out.json", "a write that failed at the rename left no temporary file")
  check.eq(listing("adir"), "", "and nothing inside the folder")

  -- Reads.
  spit("bom.json", "\239\187\191{\"a\": [1, 2]}\n")
  check.eq(json.read("bom.json").a[2], 2, "a file with a BOM")
  spit("scalar.json", " 42 ")
  check.eq(json.read("scalar.json"), 42, "a file holding a number")
  fails("json.read: cannot open 'missing.json': No such file or directory", json.read, "missing.json")
  fails("json.read: cannot open 'adir': Is a directory", json.read, "adir")
  fails("json.read: cannot open 'out.json/x': Not a directory", json.read, "out.json/x")
  spit("empty.json", "")
  fails("json.read: 'empty.json': unexpected end of input at offset 0 (line 1, column 1)", json.read, "empty.json")
  spit("cut.json", '{"a": [1, 2')
  fails("json.read: 'cut.json': unexpected end of input at offset 11 (line 1, column 12)", json.read, "cut.json")
  spit("two.json", '{"a": 1}\n{"b": 2}\n')
  fails("json.read: 'two.json': unexpected data after the value at offset 9 (line 2, column 1)", json.read, "two.json")

  -- A big file.
  local rows = {}
  for i = 1, 50000 do rows[i] = { id = i, name = "row " .. i, value = i / 4 } end
  json.write("big.json", rows)
  local big = json.read("big.json")
  check.eq(#big, 50000, "big file rows")
  check.eq(big[50000].id, 50000, "big file last id")
  check.eq(big[3].value, 0.75, "big file value")

  -- Misuse.
  local ok, err = pcall(function() return json.read() end)
  check.eq(err:match("bad argument #1 to 'read' %(string expected, got no value%)") ~= nil, true, err)
  ok, err = pcall(function() return json.read("a\0b") end)
  check.eq(err:match("bad argument #1 to 'read' %(path contains a zero byte%)") ~= nil, true, err)
  ok, err = pcall(function() return json.write("x.json") end)
  check.eq(err:match("bad argument #2 to 'write' %(value expected%)") ~= nil, true, err)
  ok, err = pcall(function() return json.write({}, 1) end)
  check.eq(err:match("bad argument #1 to 'write' %(string expected, got table%)") ~= nil, true, err)
  check.eq(ok, false, "misuse fails")
end)

return flow.define("json files", {}, function() files() end)
