-- flow.csv on bad input: malformed files (with file, line and column),
-- missing files and folders, bad options and bad rows, each with its exact
-- message; and the files such failures leave: no temporary file, the old
-- file intact when a writer is never closed or fails halfway.
-- run: every message
-- stderr: verify: Success
-- run: a malformed file fails the task with its position
-- env: CASE=malformed
-- exit: 1
-- stderr: read: Failed .*csv\.read: data\.csv:3:7: unexpected 'y' after a closed quoted field
-- run: a missing file fails the task
-- env: CASE=missing
-- exit: 1
-- stderr: read: Failed .*csv\.read: cannot open 'missing\.csv': No such file or directory
-- run: a bad option at the top level stops the script
-- env: CASE=toplevel
-- exit: 2
-- stderr: csv\.write: unknown option 'delim' \(options: header, delimiter, quote\)
-- not-stderr: Running
local flow = require "flowlua"
local check = require "lib.check"
local csv = flow.csv
local case = os.getenv("CASE")

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The names in the current folder, hidden ones too (temporary files are).
local function listing()
  local r = flow.shell({ "ls", "-A" })
  local names = {}
  for name in r.stdout:gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, " ")
end

local function fails(want, fn, ...)
  local ok, err = pcall(fn, ...)
  check.eq(ok, false, "should fail: " .. want)
  check.eq(err, want, "message")
end

if case == "toplevel" then csv.write("x.csv", {}, { delim = ";" }) end

local read = flow.task("read", function()
  spit("data.csv", 'a,b\n1,2\n12,"x"y\n')
  return csv.read(case == "missing" and "missing.csv" or "data.csv")
end)

local verify = flow.task("verify", function()
  -- Malformed input: the three ways strict RFC 4180 parsing stops.
  spit("quote.csv", 'id,name\n1,ab"c\n')
  fails([[csv.read: quote.csv:2:5: unexpected '"' in an unquoted field (quote the whole field and double the quotes inside)]],
    csv.read, "quote.csv")
  spit("after.csv", 'id,name\r\n1,"ab" \r\n')
  fails([[csv.read: after.csv:2:7: unexpected ' ' after a closed quoted field]], csv.read, "after.csv")
  spit("open.csv", 'id,note\n1,"starts here\nand never\nends\n')
  fails([[csv.read: open.csv:2:3: unterminated quoted field: no closing '"' before the end of the input]],
    csv.read, "open.csv")
  fails([[csv.decode: line 1, column 4: unexpected '!' after a closed quoted field]], csv.decode, '"a"!')
  fails([[csv.rows: quote.csv:2:5: unexpected '"' in an unquoted field (quote the whole field and double the quotes inside)]],
    function() for _ in csv.rows("quote.csv") do end end)
  -- Headers: a wider record, duplicate names.
  spit("wide.csv", "a,b\n1,2\n1,2,3\n")
  fails("csv.read: wide.csv:3: record has 3 fields but the header has 2", csv.read, "wide.csv", { header = true })
  fails("csv.decode: line 1: duplicate column name 'a' in the header (columns 1 and 2)", csv.decode, "a,a\n",
    { header = true })
  fails("csv.encode: row 2 has 3 fields but the header has 2", csv.encode, { { 1, 2 }, { 1, 2, 3 } },
    { header = { "a", "b" } })
  fails("csv.rows: wide.csv:3: record has 3 fields but the header has 2",
    function() for _ in csv.rows("wide.csv", { header = true }) do end end)
  -- The rows read before an error were handed out; the error names the line.
  local got = 0
  local ok = pcall(function() for _ in csv.rows("after.csv") do got = got + 1 end end)
  check.eq(ok, false, "rows fails at the bad line")
  check.eq(got, 1, "records before the bad one")

  -- Missing files and folders.
  fails("csv.read: cannot open 'missing.csv': No such file or directory", csv.read, "missing.csv")
  fails("csv.rows: cannot open 'missing.csv': No such file or directory", csv.rows, "missing.csv")
  fails("csv.read: cannot read '.': Is a directory", csv.read, ".")
  local before = listing()
  fails("csv.write: cannot write 'nodir/out.csv': No such file or directory", csv.write, "nodir/out.csv", { { 1 } })
  fails("csv.writer: cannot write 'nodir/out.csv': No such file or directory", csv.writer, "nodir/out.csv")
  fails("csv.append: cannot append to 'nodir/out.csv': No such file or directory", csv.append, "nodir/out.csv",
    { { 1 } })
  check.eq(listing(), before, "no temporary file after failed writes")

  -- Options.
  fails("csv.read: unknown option 'delim' (options: header, delimiter, quote)", csv.read, "data.csv", { delim = ";" })
  fails("csv.decode: option 'delimiter' must be one character (one byte), got ';;'", csv.decode, "", { delimiter = ";;" })
  fails("csv.decode: option 'delimiter' must be one character (one byte), got ''", csv.decode, "", { delimiter = "" })
  fails("csv.encode: option 'quote' must be a one-character string, got number", csv.encode, {}, { quote = 1 })
  fails("csv.encode: option 'delimiter' must not be a line break", csv.encode, {}, { delimiter = "\n" })
  fails([[csv.write: options 'delimiter' and 'quote' must differ (both are '"')]], csv.write, "x.csv", {},
    { delimiter = '"' })
  fails("csv.read: unknown option 'reuse' (options: header, delimiter, quote)", csv.read, "data.csv",
    { reuse = true })
  fails("csv.rows: option 'reuse' must be true or false, got number", csv.rows, "data.csv", { reuse = 1 })
  fails("csv.read: option 'header' must be true or false when reading, got table", csv.read, "data.csv",
    { header = { "a" } })
  fails("csv.write: option 'header' must be a list of column names, got boolean", csv.write, "x.csv", {},
    { header = true })
  fails("csv.encode: option 'header' entry 2 must be a string, got number", csv.encode, {}, { header = { "a", 2 } })
  fails("csv.encode: option 'header' must not be an empty list", csv.encode, {}, { header = {} })
  fails("csv.encode: option names must be strings, got number", csv.encode, {}, { ";" })
  fails("csv.encode: the options must be a table, got string", csv.encode, {}, ";")
  local _, argerr = pcall(function() return csv.read() end)
  check.eq(argerr:match("bad argument .*"), "bad argument #1 to 'read' (string expected, got no value)", "no path")

  -- Rows and fields that cannot be written.
  fails("csv.encode: row 2, column 3: cannot write a table (fields are strings, numbers or booleans)", csv.encode,
    { { 1 }, { 1, 2, {} } })
  fails("csv.encode: row 1, column 1: cannot write a function (fields are strings, numbers or booleans)",
    csv.encode, { { print } })
  fails("csv.encode: row 2 must be a table, got string", csv.encode, { { 1 }, "2" })
  fails("csv.encode: row 1 is not a list (give option 'header' to write records keyed by column names)", csv.encode,
    { { id = 1 } })
  fails("csv.encode: row 1, column 'id': cannot write a table (fields are strings, numbers or booleans)", csv.encode,
    { { id = {} } }, { header = { "id" } })
  fails("csv.encode: row 1 has a field 'idd' that is not in the header", csv.encode, { { id = 1, idd = 2 } },
    { header = { "id" } })

  -- A bad row in csv.write: the old file stays, no temporary file remains.
  csv.write("keep.csv", { { "old" } })
  before = listing()
  fails("csv.write: row 3, column 1: cannot write a table (fields are strings, numbers or booleans)", csv.write,
    "keep.csv", { { "new" }, { "new" }, { {} } })
  check.eq(slurp("keep.csv"), "old\n", "old file after a failed write")
  check.eq(listing(), before, "no temporary file after a bad row")

  -- A writer never closed commits nothing: once collected, its temporary
  -- file is gone and the old file is as it was.
  do
    local w = csv.writer("keep.csv")
    w:write({ "new" })
    check.eq(listing() == before, false, "a writer's temporary file exists while it is open")
  end
  collectgarbage()
  collectgarbage()
  check.eq(slurp("keep.csv"), "old\n", "old file after an unclosed writer")
  check.eq(listing(), before, "no temporary file after the writer was collected")

  -- A <close> writer whose scope ends by an error discards its file.
  local ok2, err = pcall(function()
    local w <close> = csv.writer("keep.csv")
    w:write({ "new" })
    error("boom", 0)
  end)
  check.eq(ok2, false, "scope error")
  check.eq(err, "boom", "the scope's error goes on")
  check.eq(slurp("keep.csv"), "old\n", "old file after a writer's scope failed")
  check.eq(listing(), before, "no temporary file after a failed scope")

  -- A bad row in a writer raises and leaves the writer usable.
  local w = csv.writer("keep.csv")
  w:write({ "first" })
  fails("csv.writer: row 2, column 1: cannot write a table (fields are strings, numbers or booleans)", w.write, w,
    { {} })
  w:write({ "second" })
  w:close()
  check.eq(slurp("keep.csv"), "first\nsecond\n", "writer after a bad row")
  fails("csv.writer: the writer of 'keep.csv' is closed", w.write, w, { "late" })
end)

return flow.define("csv errors", {}, function()
  if case then return read() end
  verify()
end)
