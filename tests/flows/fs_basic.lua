-- flow.fs: read and atomic write of whole files, exists, mkdir with parents,
-- remove; what is an answer (absent, already there) and what is an error.
-- run: normal use
-- stderr: use: Success
-- stderr: flow 'fs' Success
-- run: a task reading a file that is not there fails naming it
-- env: CASE=missing
-- exit: 1
-- stderr: use: Failed .*fs\.read: cannot open 'nothing/here\.txt': No such file or directory
local flow = require "flowlua"
local check = require "lib.check"
local fs = flow.fs

local function listing(dir)
  -- -A shows temporary files; the run history (.flowlua) is expected
  local r = flow.shell({ "ls", "-A", "-I", ".flowlua", dir })
  check.eq(r.code, 0, "ls " .. dir)
  return (r.stdout:gsub("\n$", ""):gsub("\n", " "))
end

local use = flow.task("use", function()
  if os.getenv("CASE") == "missing" then return fs.read("nothing/here.txt") end

  -- write and read: any bytes, returned exactly.
  check.eq(fs.write("a.txt", "hello\n"), nil, "write returns nothing")
  check.eq(fs.read("a.txt"), "hello\n", "read back")
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  local binary = table.concat(bytes):rep(1000)
  fs.write("bin", binary)
  check.eq(fs.read("bin") == binary, true, "256 000 bytes of every value, zero bytes included")
  fs.write("empty", "")
  check.eq(fs.read("empty"), "", "an empty file")
  fs.write("n.txt", 42)
  check.eq(fs.read("n.txt"), "42", "a number is written as its string, as io.write does")
  local big = string.rep("0123456789", 2000000)
  fs.write("big", big)
  check.eq(#fs.read("big"), 20000000, "a 20 MB file")

  -- write replaces through a rename, leaving no temporary file.
  local inode = flow.shell({ "stat", "-c", "%i", "a.txt" }).stdout
  fs.write("a.txt", "second")
  check.eq(fs.read("a.txt"), "second", "replaced")
  check.eq(flow.shell({ "stat", "-c", "%i", "a.txt" }).stdout ~= inode, true, "a new inode")
  check.eq(listing("."), "a.txt big bin empty n.txt", "no temporary files")

  -- exists
  check.eq(fs.exists("a.txt"), true, "a file exists")
  check.eq(fs.exists("."), true, "a folder exists")
  check.eq(fs.exists("nope.txt"), false, "a missing file")
  check.eq(fs.exists("a.txt/x"), false, "below a file")
  check.eq(fs.exists(""), false, "the empty path")
  flow.shell({ "ln", "-s", "a.txt", "link" })
  flow.shell({ "ln", "-s", "gone", "dangling" })
  check.eq(fs.exists("link"), true, "a link to a file")
  check.eq(fs.exists("dangling"), false, "a link to nothing")

  -- mkdir: true when made (parents too), false when it was there.
  check.eq(fs.mkdir("d1/d2/d3"), true, "made with parents")
  check.eq(fs.exists("d1/d2/d3"), true, "it exists")
  check.eq(fs.mkdir("d1/d2/d3"), false, "already there")
  check.eq(fs.mkdir("d1/d2/"), false, "with a trailing slash")
  check.eq(fs.mkdir("d1/other"), true, "beside it")
  fs.write("d1/d2/d3/f.txt", "deep")
  check.eq(fs.read("d1/d2/d3/f.txt"), "deep", "a file in it")

  -- remove: true when removed, false when there was nothing.
  check.eq(fs.remove("d1/d2/d3/f.txt"), true, "removed a file")
  check.eq(fs.remove("d1/d2/d3/f.txt"), false, "nothing to remove")
  check.eq(fs.exists("d1/d2/d3/f.txt"), false, "gone")
  check.eq(fs.remove("d1/d2/d3"), true, "removed an empty folder")
  check.eq(fs.remove("link"), true, "removed a link")
  check.eq(fs.exists("a.txt"), true, "not what it pointed to")
  check.eq(fs.remove("nowhere/x"), false, "in a folder that is not there")
end)

return flow.define("fs", {}, function() use() end)
