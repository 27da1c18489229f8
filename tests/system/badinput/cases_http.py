"""HTTP responses that are broken on the wire, served by rawhttp.py: the
task fails (exit 1) with the method, the URL and the cause, in words and
with libcurl's own detail. tests/flows/http_errors.lua holds the failures
a well-behaved server can produce (refused, reset, timeout, truncated,
oversized); these are the ones only a broken server sends."""
from case import Case, one_task_flow

URL = r"GET http://127\.0\.0\.1:\d+/"


def http_case(name, cause, then="", task_opts="", body=None, max_seconds=20.0, opts=""):
    call = f'  return flow.http.get(os.getenv("BAD_URL") .. "/{name}", {{ timeout = 10{opts} }}){then}'
    return Case(f"http {name}", {"flow.lua": one_task_flow(body or call, task_opts)},
                exit=1, stderr=[r"t: Failed .*" + URL + name + ": " + cause],
                server=True, max_seconds=max_seconds)


NOT_HTTP = r"not a valid HTTP response \("
NOT_JSON = r"the response body is not JSON: json\.decode: "

CASES = [
    http_case("garbage-status", NOT_HTTP + r"Received HTTP/0\.9 when not allowed\)"),
    http_case("http09", NOT_HTTP + r"Received HTTP/0\.9 when not allowed\)"),
    http_case("status-not-a-number", NOT_HTTP + r"Unsupported response code in HTTP response\)"),
    http_case("status-999", r"HTTP 999", then=":raise_for_status()"),
    http_case("no-response", r"the server closed the connection without a response"),
    http_case("header-too-big",
              r"out of memory, or a response header line longer than libcurl accepts \(100 KB\)"),
    http_case("endless-headers", r"receiving the response failed \(Too large response headers"),
    http_case("endless-interim", r"receiving the response failed \(Too large response headers"),
    http_case("content-length-not-a-number", r"not a valid HTTP response \(Invalid Content-Length: value\)"),
    http_case("content-length-negative", r"not a valid HTTP response \(Invalid Content-Length: value\)"),
    http_case("body-shorter-than-length", r"truncated body \(the connection closed early\)"),
    http_case("redirect-loop", r"too many redirects \(more than 10\)"),
    http_case("redirect-file",
              r"redirect to a file:// URL refused \(only http and https are followed\)"),
    http_case("redirect-nowhere", r"malformed URL \(The redirect target URL could not be parsed"),
    # Decoded only when asked for (compressed = true): otherwise the body
    # is the bytes sent (tests/flows/http_compressed.lua).
    http_case("fake-gzip", r"Unrecognized or bad HTTP Content or Transfer-Encoding",
              opts=", compressed = true"),
    http_case("chunk-size-not-hex",
              r"receiving the response failed \(Illegal or missing hexadecimal sequence in chunked-encoding\)"),
    http_case("chunk-size-huge",
              r"receiving the response failed \(Too long hexadecimal number in chunked-encoding\)"),
    http_case("chunk-cut-off", r"truncated body \(the connection closed early\)"),
    http_case("chunk-no-terminator", r"truncated body \(the connection closed early\)"),
    http_case("json-truncated", NOT_JSON + r"unexpected end of input at offset 45 \(line 1, column 46\)",
              then=":json()"),
    http_case("json-empty", NOT_JSON + r"unexpected end of input at offset 0", then=":json()"),
    http_case("json-trailing-garbage", NOT_JSON + r"unexpected data after the value at offset 13", then=":json()"),
    http_case("json-deep", NOT_JSON + r"arrays and objects nested deeper than 1000 at offset 1000", then=":json()"),
    http_case("json-lone-surrogate", NOT_JSON + r"invalid \\u escape \(a high surrogate without a low one\)",
              then=":json()"),
    http_case("json-nan", NOT_JSON + r"expected a value at offset 10", then=":json()"),
    http_case("json-html", NOT_JSON + r"expected a value at offset 0", then=":json()"),
    # Retry-After values that must not make a retry wait for ever (huge: the
    # task's max_retry_delay caps it) or be trusted at all (garbage,
    # negative: the task's own delay applies).
    http_case("retry-after-huge", r"HTTP 503 Service Unavailable", then=":raise_for_status()",
              task_opts="retries = 1, max_retry_delay = 0.2", max_seconds=10),
    http_case("retry-after-garbage", r"HTTP 503 Service Unavailable", then=":raise_for_status()",
              task_opts="retries = 1, retry_delay = 0.1", max_seconds=10),
    http_case("retry-after-negative", r"HTTP 429 Too Many Requests", then=":raise_for_status()",
              task_opts="retries = 1, retry_delay = 0.1", max_seconds=10),
]
