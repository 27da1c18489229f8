-- flow.csv, every function in normal use: read, rows, decode, write, writer,
-- append, encode; the exact bytes written (minimal quoting, LF after every
-- record, empty fields bare), values of every type, records keyed by the
-- header both ways, options, BOM and CRLF input, and calls from tasks.
-- stderr: load: Success
-- stderr: store: Success
-- stderr: verify: Success
-- stderr: flow 'csv basics' Success
local flow = require "flowlua"
local check = require "lib.check"
local csv = flow.csv

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

-- Rows compared field by field, with a name for each mismatch.
local function same_rows(got, want, what)
  check.eq(#got, #want, what .. ": row count")
  for i = 1, #want do check.list(got[i], want[i], string.format("%s row %d", what, i)) end
end

-- encode: minimal quoting, every record ends with LF, empty fields bare.
check.eq(csv.encode({ { "a", "b c", " padded " }, { "x,y", 'say "hi"', "two\nlines" }, { "", "", "" } }),
  'a,b c, padded \n"x,y","say ""hi""","two\nlines"\n,,\n', "encode quoting")
check.eq(csv.encode({ { "cr\rhere" } }), '"cr\rhere"\n', "CR is quoted")
check.eq(csv.encode({}), "", "no rows")
check.eq(csv.encode({ {} }), "\n", "an empty row is an empty line")
check.eq(csv.encode({ { "" } }), '""\n', "one empty field is written as \"\"")

-- Values: integers as integers, floats as tostring, booleans, holes and
-- json-style null as empty fields.
check.eq(csv.encode({ { 4, 4.0, 0.1, -7, 1e100, 2^53, math.mininteger } }),
  "4,4.0,0.1,-7,1e+100,9.007199254741e+15,-9223372036854775808\n", "numbers")
check.eq(csv.encode({ { true, false, nil, "end" } }), "true,false,,end\n", "booleans and holes")
local null = flow.json and flow.json.null
if null then check.eq(csv.encode({ { "a", null, "c" } }), "a,,c\n", "json.null") end

-- Options: another delimiter and quote, header first.
check.eq(csv.encode({ { "a;b", "it's", "x,y" } }, { delimiter = ";", quote = "'" }), "'a;b';'it''s';x,y\n",
  "delimiter and quote")
check.eq(csv.encode({ { 1, 2 } }, { header = { "id", "n,m" } }), 'id,"n,m"\n1,2\n', "header")
check.eq(csv.encode({ { 1, 2 } }, { delimiter = "\t" }), "1\t2\n", "tab delimiter")
check.eq(csv.encode({ { 1 } }, { header = false }), "1\n", "header = false writes none")

-- Records keyed by the header's names, in header order; missing keys empty.
check.eq(csv.encode({ { name = "ann", id = 1 }, { id = 2 }, { "list", "row" } }, { header = { "id", "name" } }),
  "id,name\n1,ann\n2,\nlist,row\n", "records")
-- With a header, a list row has the header's width: a nil at the end (which
-- # does not count) or in the middle is an empty field.
check.eq(csv.encode({ { "WA", "Debt", nil }, { "a", nil, "c" }, {} }, { header = { "s", "p", "c" } }),
  "s,p,c\nWA,Debt,\na,,c\n,,\n", "list rows padded to the header")

-- decode: strings only, CRLF, BOM, quoted line breaks, spaces kept, empty
-- lines skipped, ragged rows.
local text = '\239\187\191id,name,note\r\n1, ann ,"says ""hi"",\r\nbye"\r\n\r\n2,bob\r\n3,cy,x\r\n'
same_rows(csv.decode(text), {
  { "id", "name", "note" }, { "1", " ann ", 'says "hi",\r\nbye' }, { "2", "bob" }, { "3", "cy", "x" } }, "decode")
check.eq(math.type(csv.decode("4\n")[1][1]), nil, "no type guessing")
check.eq(csv.decode("4\n")[1][1], "4", "numbers stay strings")
same_rows(csv.decode("a;'b;c'\n", { delimiter = ";", quote = "'" }), { { "a", "b;c" } }, "decode dialect")
same_rows(csv.decode(""), {}, "empty text")
same_rows(csv.decode('""\n'), { { "" } }, "one empty field")

local recs, names = csv.decode("id,name\n1,ann\n2\n", { header = true })
check.list(names, { "id", "name" }, "header names")
check.eq(#recs, 2, "record count")
check.eq(recs[1].id, "1", "record 1 id")
check.eq(recs[1].name, "ann", "record 1 name")
check.eq(recs[2].id, "2", "short record id")
check.eq(recs[2].name, nil, "short record: missing key absent")
local none, no_names = csv.decode("", { header = true })
check.eq(#none, 0, "empty input: no records")
check.eq(#no_names, 0, "empty input: no names")

-- Round trip of awkward values through encode/decode.
local awkward = { { "", "a", "" }, { '"', '""', "," }, { "\n", "\r\n", " " }, { "é", "\t", "x\0y" } }
same_rows(csv.decode(csv.encode(awkward)), awkward, "round trip")

-- write / read through files: the exact bytes, atomically replaced.
check.eq(csv.write("out.csv", { { "CA", "Mortgage", "BANK OF AMERICA, NATIONAL ASSOCIATION" } },
  { header = { "State", "Product", "Company" } }), 1, "write returns the row count")
check.eq(slurp("out.csv"), 'State,Product,Company\nCA,Mortgage,"BANK OF AMERICA, NATIONAL ASSOCIATION"\n',
  "written file")
same_rows(csv.read("out.csv"), { { "State", "Product", "Company" }, { "CA", "Mortgage", "BANK OF AMERICA, NATIONAL ASSOCIATION" } },
  "read back")
local by_name, cols = csv.read("out.csv", { header = true })
check.eq(by_name[1].Company, "BANK OF AMERICA, NATIONAL ASSOCIATION", "read record")
check.list(cols, { "State", "Product", "Company" }, "read names")
-- The ETL's create step: a header-only file.
csv.write("empty.csv", {}, { header = { "State", "Product", "Company" } })
check.eq(slurp("empty.csv"), "State,Product,Company\n", "header-only file")
check.eq(#csv.read("empty.csv", { header = true }), 0, "header-only file has no records")
-- Records read by name write back by name.
csv.write("copy.csv", by_name, { header = cols })
check.eq(slurp("copy.csv"), slurp("out.csv"), "records round trip through files")

-- rows: streaming, with the line each record starts on.
spit("lines.csv", 'a,b\n"multi\nline",x\n\nlast,y')
local seen = {}
for row, line in csv.rows("lines.csv") do seen[#seen + 1] = line .. ":" .. table.concat(row, "|") end
check.list(seen, { "1:a|b", "2:multi\nline|x", "5:last|y" }, "rows with lines")
seen = {}
for rec in csv.rows("out.csv", { header = true }) do seen[#seen + 1] = rec.State .. "/" .. rec.Product end
check.list(seen, { "CA/Mortgage" }, "rows with header")
for _ in csv.rows("empty.csv", { header = true }) do error("a header-only file has no records") end

-- rows with reuse = true: one table, refilled; a shorter record leaves no
-- field (or key) of a longer one behind.
spit("ragged.csv", "a,b,c\nd\ne,f\n")
local tables, rows = {}, {}
for row in csv.rows("ragged.csv", { reuse = true }) do
  tables[row] = true
  rows[#rows + 1] = #row .. ":" .. table.concat(row, "|")
  check.eq(row[#row + 1], nil, "nothing past the record's last field")
end
check.list(rows, { "3:a|b|c", "1:d", "2:e|f" }, "reused rows")
check.eq(next(tables, next(tables)), nil, "reuse hands out one table")
spit("ragged_h.csv", "x,y,z\n1,2,3\n4\n")
rows = {}
for rec in csv.rows("ragged_h.csv", { header = true, reuse = true }) do
  rows[#rows + 1] = tostring(rec.x) .. tostring(rec.y) .. tostring(rec.z)
end
check.list(rows, { "123", "4nilnil" }, "reused records")

-- writer: rows one by one, committed by close.
local w = csv.writer("w.csv", { header = { "k", "v" } })
check.eq(tostring(w), "csv.writer (w.csv, open)", "writer tostring")
check.eq(w:write({ "a", 1 }), w, "write returns the writer")
w:write_row({ v = 2, k = "b" }):write_rows({ { "c", 3 }, { "d", 4 } })
check.eq(io.open("w.csv"), nil, "nothing visible before close")
check.eq(w:close(), 4, "close returns the row count")
check.eq(w:close(), nil, "a second close does nothing")
check.eq(tostring(w), "csv.writer (w.csv, closed)", "closed writer tostring")
check.eq(slurp("w.csv"), "k,v\na,1\nb,2\nc,3\nd,4\n", "writer output")
-- A <close> variable commits at the end of its scope.
do
  local tw <close> = csv.writer("scoped.csv")
  tw:write({ "scoped" })
end
check.eq(slurp("scoped.csv"), "scoped\n", "<close> commits")
-- abort leaves the old file.
local aw = csv.writer("scoped.csv")
aw:write({ "replaced?" })
aw:abort()
check.eq(slurp("scoped.csv"), "scoped\n", "abort keeps the old file")

-- append: creates with the header, then adds rows only; fixes a missing LF.
check.eq(csv.append("log.csv", { { 1, "a" } }, { header = { "n", "s" } }), 1, "append count")
csv.append("log.csv", { { 2, "b,c" }, { n = 3, s = "d" } }, { header = { "n", "s" } })
check.eq(slurp("log.csv"), 'n,s\n1,a\n2,"b,c"\n3,d\n', "appended file")
spit("nolf.csv", "x,y")
csv.append("nolf.csv", { { "z", "w" } })
check.eq(slurp("nolf.csv"), "x,y\nz,w\n", "append after a missing LF")

-- From tasks: a task writes, the next streams it back.
local store = flow.task("store", function(path, n)
  local rows = {}
  for i = 1, n do rows[i] = { i, "item " .. i, i % 2 == 0 } end
  return csv.write(path, rows, { header = { "id", "name", "even" } })
end)
local load = flow.task("load", function(path, written)
  local total, evens = 0, 0
  for rec in csv.rows(path, { header = true }) do
    total = total + tonumber(rec.id)
    if rec.even == "true" then evens = evens + 1 end
  end
  return { written = written, total = total, evens = evens }
end)
local verify = flow.task("verify", function(r)
  check.eq(r.written, 1000, "rows written by the task")
  check.eq(r.total, 500500, "sum of ids read back")
  check.eq(r.evens, 500, "booleans read back as strings")
end)

return flow.define("csv basics", {}, function()
  verify(load("task.csv", store("task.csv", 1000)))
end)
