-- flow.fs failures: each raises "fs.<fn>: cannot <do> '<path>': <cause>";
-- a failed write leaves the old file and no temporary file; misuse raises
-- a bad-argument error.
-- run: every failure and misuse
-- stderr: failures: Success
-- stderr: flow 'fs errors' Success
-- run: a write into a folder that does not exist fails the task
-- env: CASE=nofolder
-- exit: 1
-- stderr: failures: Failed .*fs\.write: cannot write 'missing/dir/out\.txt': No such file or directory
local flow = require "flowlua"
local check = require "lib.check"
local fs = flow.fs

local function fails(want, fn, ...)
  local ok, err = pcall(fn, ...)
  check.eq(ok, false, want .. " (fails)")
  check.eq(err, want, "error")
end

-- Misuse is reported as a bad argument to the function called.
local function misuse(want, fn)
  local ok, err = pcall(fn)
  check.eq(ok, false, want .. " (fails)")
  check.eq(err:find(want, 1, true) ~= nil, true, "'" .. err .. "' says " .. want)
end

local function listing(dir)
  -- -A shows temporary files; the run history (.flowlua) is expected
  local r = flow.shell({ "ls", "-A", "-I", ".flowlua", dir })
  check.eq(r.code, 0, "ls " .. dir)
  return (r.stdout:gsub("\n$", ""):gsub("\n", " "))
end

local failures = flow.task("failures", function()
  if os.getenv("CASE") == "nofolder" then return fs.write("missing/dir/out.txt", "x") end

  fs.write("file.txt", "old")
  fs.mkdir("dir/sub")
  fs.write("dir/sub/inside.txt", "x")

  -- read
  fails("fs.read: cannot open 'missing.txt': No such file or directory", fs.read, "missing.txt")
  fails("fs.read: cannot open 'dir': Is a directory", fs.read, "dir")
  fails("fs.read: cannot open 'file.txt/x': Not a directory", fs.read, "file.txt/x")

  -- write: the old file stays, and no temporary file is left behind.
  fails("fs.write: cannot write 'missing/dir/out.txt': No such file or directory", fs.write, "missing/dir/out.txt", "x")
  fails("fs.write: cannot write 'dir': Is a directory", fs.write, "dir", "x")
  fails("fs.write: cannot write 'file.txt/x': Not a directory", fs.write, "file.txt/x", "x")
  check.eq(fs.read("file.txt"), "old", "the old file is as it was")
  check.eq(listing("."), "dir file.txt", "no temporary file left")

  -- exists: only "not there" is an answer.
  flow.shell({ "ln", "-s", "loop", "loop" })
  fails("fs.exists: cannot check 'loop': Too many levels of symbolic links", fs.exists, "loop")

  -- mkdir: a file in the way.
  fails("fs.mkdir: cannot create 'file.txt': Not a directory", fs.mkdir, "file.txt")
  fails("fs.mkdir: cannot create 'file.txt/sub': Not a directory", fs.mkdir, "file.txt/sub")
  check.eq(fs.read("file.txt"), "old", "the file in the way is left alone")

  -- remove: a folder that is not empty is an error, not a recursive delete.
  fails("fs.remove: cannot remove 'dir/sub': Directory not empty", fs.remove, "dir/sub")
  check.eq(fs.read("dir/sub/inside.txt"), "x", "nothing inside was removed")
  fails("fs.remove: cannot remove 'file.txt/x': Not a directory", fs.remove, "file.txt/x")

  -- Misuse.
  misuse("bad argument #1 to 'read' (string expected, got no value)", function() return fs.read() end)
  misuse("bad argument #1 to 'read' (string expected, got table)", function() return fs.read({}) end)
  misuse("bad argument #1 to 'read' (path contains a zero byte)", function() return fs.read("a\0b") end)
  misuse("bad argument #2 to 'write' (string expected, got no value)", function() return fs.write("x.txt") end)
  misuse("bad argument #2 to 'write' (string expected, got table)", function() return fs.write("x.txt", {}) end)
  misuse("bad argument #1 to 'write' (string expected, got nil)", function() return fs.write(nil, "x") end)
  misuse("bad argument #1 to 'exists' (string expected, got boolean)", function() return fs.exists(true) end)
  misuse("bad argument #1 to 'mkdir' (string expected, got no value)", function() return fs.mkdir() end)
  misuse("bad argument #1 to 'remove' (path contains a zero byte)", function() return fs.remove("file.txt\0") end)
  check.eq(fs.read("file.txt"), "old", "misuse touched nothing")
  check.eq(fs.exists("x.txt"), false, "misuse wrote nothing")
end)

return flow.define("fs errors", {}, function() failures() end)
