-- Every HTTP failure raises an error naming the method, the URL and the
-- cause; the task fails cleanly with that message.
-- server: http https
-- run: connection refused
-- env: CASE=refused
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:1/nothing: connection refused
-- run: a name that does not resolve (.invalid is reserved, never resolves)
-- env: CASE=dns
-- exit: 1
-- stderr: fetch: Failed .*GET http://flowlua-test.invalid/x: DNS lookup failed
-- run: request timeout
-- env: CASE=timeout
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/stall\?seconds=10: timed out after 0.3 s
-- max-seconds: 8
-- run: the task's timeout aborts its request
-- env: CASE=task_timeout
-- exit: 1
-- stderr: fetch: TimedOut \(attempt 1 of 1
-- max-seconds: 8
-- run: a body that trickles in for longer than the timeout
-- env: CASE=slow
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/slow\?bytes=10000&chunk=100&delay=0.1: timed out after 0.5 s
-- max-seconds: 8
-- run: connection reset
-- env: CASE=reset
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/reset/r1\?fail=5: (connection reset|the server closed the connection without a response)
-- run: truncated body
-- env: CASE=truncated
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/truncated\?bytes=10000: truncated body
-- run: body that is not JSON
-- env: CASE=garbage
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/garbage: the response body is not JSON: .*offset
-- run: oversized body
-- env: CASE=big
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/big\?bytes=3000000: response body larger than max_body \(1000000 bytes\)
-- run: oversized chunked body (no Content-Length to refuse it early)
-- env: CASE=big_chunked
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/big\?bytes=3000000&chunked=1: response body larger than max_body \(1000000 bytes\)
-- run: raise_for_status
-- env: CASE=status
-- exit: 1
-- stderr: fetch: Failed .*GET http://127.0.0.1:\d+/status/404: HTTP 404 Not Found
-- run: self-signed certificate is refused
-- env: CASE=tls
-- exit: 1
-- stderr: fetch: Failed .*GET https://127.0.0.1:\d+/json: TLS failed
-- run: self-signed certificate with its CA file, and with verify = false
-- env: CASE=tls_ok
-- stderr: fetch: Success
-- run: unsupported scheme
-- env: CASE=scheme
-- exit: 1
-- stderr: fetch: Failed .*GET ftp://127.0.0.1/x: unsupported URL scheme
-- run: unknown option
-- env: CASE=badopt
-- exit: 1
-- stderr: fetch: Failed .*http: unknown option 'timout' \(options: query, headers
-- run: body and json together
-- env: CASE=both
-- exit: 1
-- stderr: fetch: Failed .*http: give either 'body' or 'json', not both
-- run: libcurl cannot be loaded
-- env: CASE=nolib
-- env: FLOWLUA_LIBCURL=/nonexistent/libcurl.so.4
-- exit: 1
-- stderr: fetch: Failed .*http: cannot load libcurl \(/nonexistent/libcurl.so.4: cannot open shared object file: No such file or directory\): install libcurl4
-- run: missing file
-- env: CASE=nofile
-- exit: 1
-- stderr: fetch: Failed .*GET file:///nonexistent/x.json: cannot read the file
local flow = require "flowlua"
local http = flow.http
local base, tls = os.getenv("TEST_HTTP_URL"), os.getenv("TEST_HTTPS_URL")
local case = os.getenv("CASE")

local fetch = flow.task("fetch", { timeout = case == "task_timeout" and 0.3 or nil }, function()
  if case == "refused" then return http.get("http://127.0.0.1:1/nothing") end
  if case == "dns" then return http.get("http://flowlua-test.invalid/x", { timeout = 40 }) end
  if case == "timeout" then return http.get(base .. "/stall?seconds=10", { timeout = 0.3 }) end
  if case == "task_timeout" then return http.get(base .. "/stall?seconds=10") end
  if case == "slow" then return http.get(base .. "/slow?bytes=10000&chunk=100&delay=0.1", { timeout = 0.5 }) end
  if case == "big_chunked" then
    return http.get(base .. "/big?bytes=3000000&chunked=1", { max_body = 1000000 })
  end
  if case == "reset" then return http.get(base .. "/reset/r1?fail=5") end
  if case == "truncated" then return http.get(base .. "/truncated?bytes=10000") end
  if case == "garbage" then return http.get(base .. "/garbage"):json() end
  if case == "big" then return http.get(base .. "/big?bytes=3000000", { max_body = 1000000 }) end
  if case == "status" then return http.get(base .. "/status/404"):raise_for_status() end
  if case == "tls" then return http.get(tls .. "/json") end
  if case == "tls_ok" then
    assert(http.get(tls .. "/json", { ca_file = os.getenv("TEST_CA_FILE") }).status == 200)
    assert(http.get(tls .. "/json", { verify = false }).status == 200)
    return true
  end
  if case == "scheme" then return http.get("ftp://127.0.0.1/x") end
  if case == "badopt" then return http.get(base .. "/json", { timout = 1 }) end
  if case == "both" then return http.post(base .. "/echo", { body = "x", json = {} }) end
  if case == "nolib" then return http.get(base .. "/json") end
  if case == "nofile" then return http.get("file:///nonexistent/x.json") end
end)

return flow.define("http errors", {}, function() fetch() end)
