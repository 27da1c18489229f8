-- Files opened through Lua's own io library are close-on-exec: a child
-- started with os.execute or io.popen while a task holds files open with
-- io.open, io.lines, io.tmpfile, io.output or io.popen sees none of them.
-- (flow.shell closes every descriptor above 2 in its children anyway;
-- fs_cloexec.lua covers flowlua's own files.) Each listing is compared
-- with one taken before the task opened anything.
-- run: children of os.execute and io.popen inherit no file of the task
-- args: --state :memory: {script}
-- stderr: hold: Success
local flow = require "flowlua"
local check = require "lib.check"

-- The descriptors above 2 of a child, as "N -> target" lines: of the shell
-- os.execute starts (its $$), or of ls itself under io.popen (less the
-- directory ls reads, which is its own).
local function child_fds(how)
  local text
  if how == "execute" then
    check.eq(os.execute("ls -l /proc/$$/fd/ > fds.txt"), true, "os.execute ls")
    local f = assert(io.open("fds.txt"))
    text = f:read("a")
    f:close()
  else
    local p = assert(io.popen("ls -l /proc/self/fd/"))
    text = p:read("a")
    check.eq(p:close(), true, "io.popen ls")
  end
  local fds = {}
  for fd, target in text:gmatch("(%d+) %-> ([^\n]*)") do
    if tonumber(fd) > 2 and not target:find("^/proc/") then
      fds[#fds + 1] = fd .. " -> " .. target
    end
  end
  table.sort(fds)
  return table.concat(fds, "\n")
end

local hold = flow.task("hold", function()
  local before = { execute = child_fds("execute"), popen = child_fds("popen") }
  local src = assert(io.open("lines-src.txt", "w"))
  src:write("one\ntwo\nthree\n")
  src:close()

  local held = assert(io.open("held-open.txt", "w"))
  local read = assert(io.open("lines-src.txt", "r"))
  local tmp = assert(io.tmpfile())
  io.output("output.txt")
  local pipe = assert(io.popen("cat > /dev/null", "w"))
  local seen = 0
  for line in io.lines("lines-src.txt") do
    seen = seen + 1
    if seen == 2 then
      for how, was in pairs(before) do
        check.eq(child_fds(how), was, "descriptors above 2 of a child of " .. how)
      end
    end
    held:write(line, "\n")
  end
  check.eq(seen, 3, "lines read")
  -- The files still work as files.
  tmp:write("tmp")
  tmp:seek("set")
  check.eq(tmp:read("a"), "tmp", "the tmpfile reads back")
  check.eq(read:read("l"), "one", "io.open's file reads")
  io.write("to output.txt\n")
  io.output():close()
  io.output(io.stdout)
  check.eq(pipe:close(), true, "io.popen's stream closes")
  held:close()
  read:close()
  tmp:close()
  local f = assert(io.open("output.txt"))
  check.eq(f:read("a"), "to output.txt\n", "io.output's file")
  f:close()
end)

return flow.define("io cloexec", {}, function() hold() end)
