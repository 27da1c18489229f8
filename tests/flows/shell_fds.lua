-- A flow.shell child gets stdin, stdout and stderr and nothing else: not
-- libcurl's sockets (a kept-alive connection to the server is open while
-- the child runs), not a file the script has open, not the history's
-- database or the event loop's descriptors.
-- server: http
-- stderr: verify: Success
-- max-seconds: 20
local flow = require "flowlua"
local check = require "lib.check"
local base = os.getenv("TEST_HTTP_URL")

-- The descriptors a child sees, as "fd -> target" lines, without the one
-- `ls` itself opens on the folder it lists.
local function child_fds(argv)
  local r = flow.shell(argv)
  check.eq(r.code, 0, "ls exit code")
  local seen = {}
  for fd, target in r.stdout:gmatch(" (%d+) %-> ([^\n]*)") do
    if not target:match("^/proc/%d+/fd$") then seen[#seen + 1] = fd .. " -> " .. target end
  end
  return seen
end

local function expect_std_only(seen, what)
  local extra = {}
  for _, line in ipairs(seen) do
    if not line:match("^[012] %-> ") then extra[#extra + 1] = line end
  end
  check.eq(table.concat(extra, "; "), "", what .. ": descriptors beyond 0, 1, 2")
  check.eq(#seen, 3, what .. ": 0, 1 and 2 are there")
end

local probe = flow.task("probe", function()
  -- A live keep-alive connection (the same host again, so curl keeps it)
  -- and an open file, both alive while the child runs.
  check.eq(flow.http.get(base .. "/json?bytes=100").status, 200, "first request")
  check.eq(flow.http.get(base .. "/json?bytes=100").status, 200, "second request")
  local f = assert(io.open(os.getenv("TEST_FIXTURES") .. "/complaints.json", "r"))
  local seen = child_fds({ "ls", "-l", "/proc/self/fd" })
  expect_std_only(seen, "argv child")
  -- Through /bin/sh too, with stdin fed from a pipe.
  expect_std_only(child_fds({ "sh", "-c", "ls -l /proc/self/fd" }), "shell child")
  local fed = flow.shell({ "ls", "-l", "/proc/self/fd" }, { stdin = "x" })
  check.eq(fed.code, 0, "ls with stdin")
  f:close()
  return #seen
end)

local verify = flow.task("verify", function(n) check.eq(n, 3, "descriptors") end)

return flow.define("shell_fds", {}, function() verify(probe()) end)
