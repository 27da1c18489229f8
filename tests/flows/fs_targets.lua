-- What an atomic write (fs.write, json.write, csv.write, csv.writer) does
-- with what stands at its target: a new file gets 0666 less the umask; a
-- replaced file keeps its mode; a symbolic link is followed and stays a
-- link; a device is written to, never replaced; a FIFO nobody reads is an
-- error that leaves it a FIFO.
-- run: every kind of target
-- stderr: targets: Success
-- stderr: flow 'fs targets' Success
local flow = require "flowlua"
local check = require "lib.check"
local fs, json, csv = flow.fs, flow.json, flow.csv

local function sh(cmd)
  local r = flow.shell(cmd, { shell = true })
  check.eq(r.code, 0, cmd .. " (" .. r.stderr .. ")")
  return (r.stdout:gsub("\n$", ""))
end

local function stat(fmt, path) return sh("stat -c '" .. fmt .. "' " .. path) end

-- Each writer of whole files, as fn(path, text).
local writers = {
  ["fs.write"] = function(path) fs.write(path, "fs\n") end,
  ["json.write"] = function(path) json.write(path, { a = 1 }) end,
  ["csv.write"] = function(path) csv.write(path, { { "x", "y" } }) end,
  ["csv.writer"] = function(path)
    local w = csv.writer(path)
    w:write({ "x", "y" })
    w:close()
  end,
}
local names = { "fs.write", "json.write", "csv.write", "csv.writer" }

local targets = flow.task("targets", function()
  local umask = tonumber(sh("umask"), 8)
  local new_mode = string.format("%o", 438 & ~umask) -- 0666 & ~umask

  -- No temporary file is left anywhere, whatever the target.
  local function no_temp()
    check.eq(sh("ls -A | grep -c flowlua- || true"), "0", "no temporary file")
  end

  for _, name in ipairs(names) do
    local write = writers[name]
    -- A new file: what open(2) would give.
    write("new.txt")
    check.eq(stat("%a", "new.txt"), new_mode, name .. ": a new file's mode")
    -- A replaced file keeps its mode, a private one stays private.
    for _, mode in ipairs({ "600", "640", "444", "755" }) do
      sh("chmod " .. mode .. " new.txt")
      write("new.txt")
      check.eq(stat("%a", "new.txt"), mode, name .. ": replaced " .. mode .. " file")
    end
    sh("rm new.txt")

    -- A symbolic link is followed, in its own folder; the link stays.
    sh("rm -rf real sub chain && mkdir real sub && echo old > real/file.txt")
    sh("ln -s ../real/file.txt sub/link && ln -s sub/link chain")
    sh("chmod 600 real/file.txt")
    write("chain")
    check.eq(stat("%F", "chain"), "symbolic link", name .. ": the first link stays")
    check.eq(stat("%F", "sub/link"), "symbolic link", name .. ": the second link stays")
    check.eq(fs.read("real/file.txt") ~= "old\n", true, name .. ": the target was written")
    check.eq(stat("%a", "real/file.txt"), "600", name .. ": the target keeps its mode")
    check.eq(sh("ls -A real | grep -c flowlua- || true"), "0",
             name .. ": no temporary file in the target's folder")
    -- A dangling link: the file it names is created.
    sh("ln -s real/made.txt dangling")
    write("dangling")
    check.eq(stat("%F", "dangling"), "symbolic link", name .. ": a dangling link stays")
    check.eq(stat("%F", "real/made.txt"), "regular file", name .. ": its target made")
    sh("rm dangling real/made.txt")

    -- A character device (a null device of our own as root, else
    -- /dev/null itself) is written to and stays a device.
    local dev = "/dev/null"
    if sh("id -u") == "0" then
      sh("rm -f null && mknod -m 666 null c 1 3")
      dev = "null"
    end
    write(dev)
    check.eq(stat("%F", dev), "character special file", name .. ": the device stays")
    check.eq(stat("%t,%T", dev), "1,3", name .. ": the same device")

    -- A FIFO nobody reads: an error naming it, and it stays a FIFO.
    sh("rm -f fifo && mkfifo fifo")
    local ok, err = pcall(write, "fifo")
    check.eq(ok, false, name .. ": a FIFO nobody reads fails")
    check.eq(err:find("cannot write 'fifo': it is a FIFO or socket that nothing reads from: No such device or address", 1, true) ~= nil,
             true, name .. ": the message says why: " .. err)
    check.eq(stat("%F", "fifo"), "fifo", name .. ": the FIFO stays")
    no_temp()
  end

  -- A link loop is an error, not a hang.
  sh("ln -s loop1 loop2 && ln -s loop2 loop1")
  local ok, err = pcall(fs.write, "loop1", "x")
  check.eq(ok, false, "a link loop fails")
  check.eq(err:find("fs.write: cannot write 'loop1': Too many levels of symbolic links", 1, true) ~= nil,
           true, "a link loop's message: " .. err)
end)

return flow.define("fs targets", {}, function() targets() end)
