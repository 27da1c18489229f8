-- flow.shell: argv lists (no shell), shell = true for command lines, exit
-- codes as results, large output without deadlock, stdin, cwd, env,
-- timeouts that kill the whole process group, and every misuse.
-- run: normal use
-- stderr: verify: Success
-- max-seconds: 60
-- run: a program that does not exist
-- env: CASE=missing
-- exit: 1
-- stderr: run: Failed .*shell: cannot run 'no-such-program-xyz': No such file or directory
-- run: a folder that does not exist
-- env: CASE=cwd
-- exit: 1
-- stderr: run: Failed .*shell: cannot run 'pwd' in '/nonexistent/dir': No such file or directory
-- run: timeout kills the child and what it started
-- env: CASE=timeout
-- exit: 1
-- stderr: run: Failed .*shell: '/bin/sh -c sleep 30 & sleep 30' timed out after 0.3 s \(killed\)
-- max-seconds: 10
-- run: the task's timeout kills the child
-- env: CASE=task_timeout
-- exit: 1
-- stderr: run: TimedOut
-- max-seconds: 10
-- run: a command line without shell = true
-- env: CASE=string
-- exit: 1
-- stderr: run: Failed .*shell: pass the command as a list of arguments
-- run: check = true raises on a non-zero exit
-- env: CASE=check
-- exit: 1
-- stderr: run: Failed .*shell: 'sh -c echo oops >&2; exit 4' exited with code 4: oops
-- run: check = true keeps only the end of a long stderr
-- env: CASE=check_long
-- exit: 1
-- stderr: run: Failed .*shell: 'sh -c .*' exited with code 3: \[first 5995907 bytes of stderr left out\] x{4086}THE CAUSE
-- not-stderr: yyyyyyyy
-- run: a NUL byte in an argument
-- env: CASE=nul_arg
-- exit: 1
-- stderr: run: Failed .*shell: argument 2 contains a NUL byte \(a program cannot receive one\)
-- run: a NUL byte in a command line
-- env: CASE=nul_command
-- exit: 1
-- stderr: run: Failed .*shell: the command line contains a NUL byte
-- run: a NUL byte in an env value
-- env: CASE=nul_env
-- exit: 1
-- stderr: run: Failed .*shell: env value for 'X' contains a NUL byte
-- run: a NUL byte in cwd
-- env: CASE=nul_cwd
-- exit: 1
-- stderr: run: Failed .*shell: option 'cwd' contains a NUL byte
-- run: output beyond max_output
-- env: CASE=too_much
-- exit: 1
-- stderr: run: Failed .*shell: 'head -c 100000 /dev/zero' wrote more than 1000 bytes of output \(killed; raise max_output\)
-- run: unknown option
-- env: CASE=badopt
-- exit: 1
-- stderr: run: Failed .*shell: unknown option 'timout'
-- run: SIGINT kills a running child
-- env: CASE=sigint
-- signal: SIGINT after run: Running
-- exit: 130
-- stderr: run: Cancelled
-- max-seconds: 10
local flow = require "flowlua"
local check = require "lib.check"
local case = os.getenv("CASE")

-- At the top level a command simply waits.
local top = flow.shell({ "echo", "top" })
assert(top.code == 0 and top.stdout == "top\n", "top-level shell")

local run = flow.task("run", { timeout = case == "task_timeout" and 0.3 or nil }, function()
  if case == "missing" then return flow.shell({ "no-such-program-xyz" }) end
  if case == "cwd" then return flow.shell({ "pwd" }, { cwd = "/nonexistent/dir" }) end
  if case == "timeout" then return flow.shell("sleep 30 & sleep 30", { shell = true, timeout = 0.3 }) end
  if case == "task_timeout" or case == "sigint" then return flow.shell({ "sleep", "30" }) end
  if case == "string" then return flow.shell("echo hi") end
  if case == "check" then return flow.shell({ "sh", "-c", "echo oops >&2; exit 4" }, { check = true }) end
  if case == "check_long" then
    -- 6 MB of stderr, a two-byte character across the cut, the cause last.
    return flow.shell({ "sh", "-c", "head -c 5995905 /dev/zero | tr '\\0' y >&2; " ..
                        "printf '\\303\\251' >&2; head -c 4086 /dev/zero | tr '\\0' x >&2; " ..
                        "printf 'THE CAUSE' >&2; exit 3" }, { check = true })
  end
  if case == "nul_arg" then return flow.shell({ "echo", "rm\0-rf" }) end
  if case == "nul_command" then return flow.shell("echo a\0b", { shell = true }) end
  if case == "nul_env" then return flow.shell({ "true" }, { env = { X = "a\0b" } }) end
  if case == "nul_cwd" then return flow.shell({ "pwd" }, { cwd = "/tmp\0/etc" }) end
  if case == "too_much" then return flow.shell({ "head", "-c", "100000", "/dev/zero" }, { max_output = 1000 }) end
  if case == "badopt" then return flow.shell({ "true" }, { timout = 1 }) end

  local r = flow.shell({ "sh", "-c", "echo out; echo err >&2; exit 3" })
  check.eq(r.code, 3, "exit code")
  check.eq(r.stdout, "out\n", "stdout")
  check.eq(r.stderr, "err\n", "stderr")
  -- Arguments are passed as they are: no shell expansion.
  check.eq(flow.shell({ "echo", "$HOME", "*" }).stdout, "$HOME *\n", "no shell expansion")
  check.eq(flow.shell("echo $((6 * 7))", { shell = true }).stdout, "42\n", "shell = true")
  -- 20 MB on stdout and 5 MB on stderr at once: no deadlock.
  local big = flow.shell({ "sh", "-c", "head -c 5000000 /dev/zero >&2 & head -c 20000000 /dev/zero; wait" })
  check.eq(#big.stdout, 20000000, "large stdout")
  check.eq(#big.stderr, 5000000, "large stderr")
  local data = string.rep("line\n", 300000)
  check.eq(flow.shell({ "wc", "-l" }, { stdin = data }).stdout:match("%d+"), "300000", "stdin")
  check.eq(flow.shell({ "pwd" }, { cwd = "/tmp" }).stdout, "/tmp\n", "cwd")
  check.eq(flow.shell({ "sh", "-c", "echo $FLOW_X" }, { env = { FLOW_X = "y" } }).stdout, "y\n", "env added")
  check.eq(flow.shell({ "sh", "-c", "echo ${HOME:-none}" }, { env = { A = "1" }, clear_env = true }).stdout,
           "none\n", "clear_env")
  local killed = flow.shell({ "sh", "-c", "kill -TERM $$" })
  check.eq(killed.code, 128 + 15, "code of a child killed by a signal")
  check.eq(killed.signal, 15, "signal")
  return true
end)

-- Four children at once: they overlap instead of running one after another.
-- Each marks its arrival in a folder of the run's own and waits until all
-- four have arrived (an event, not a time window): run one after another,
-- the first would wait for ever, so its hang guard (60 s) fails the case.
local nap = flow.task("nap", function(i)
  local dir = "shell-naps-" .. flow.context().run_id
  return flow.shell({ "sh", "-c", [[
    mkdir -p "$1" && touch "$1/$2"
    n=0
    while [ "$(ls "$1" | wc -l)" -lt 4 ]; do
      n=$((n + 1)); [ $n -lt 6000 ] || exit 7
      sleep 0.01
    done]], "nap", dir, tostring(i) }).code
end)
local t0 = flow.task("t0", function() return flow.now() end)
local verify = flow.task("verify", function(ok, naps, started)
  check.eq(ok, true, "run")
  check.list(naps, { 0, 0, 0, 0 }, "nap codes (7: the four did not overlap)")
  check.between(flow.now() - started, 0, 90, "four children (a hang guard)")
  flow.shell({ "rm", "-rf", "shell-naps-" .. flow.context().run_id })
end)

return flow.define("shell", {}, function()
  if case then return run() end
  local started = t0()
  verify(run(), nap:map({ 1, 2, 3, 4 }):after(started), started)
end)
