#!/usr/bin/env python3
"""A local HTTP(S) server for flowlua's tests: every behaviour a test needs
(slow, flaky, broken, redirecting, echoing) is chosen by the request's path
and query, so a test reads as what it asks for. Standard library only.

It binds 127.0.0.1 only, on ports the kernel picks, and writes each port to
a file (written under a temporary name and renamed, so a reader never sees
half a number). It exits by itself after --max-seconds, and with
--exit-with-parent as soon as the process that started it is gone, so it
never outlives a test run.

    testserver.py --port-file P [--tls-cert C --tls-key K --tls-port-file P2]
                  [--max-seconds 600] [--exit-with-parent] [--verbose]

The HTTPS listener (with --tls-cert/--tls-key) serves the same endpoints
and shares the same counters. Its port file is written before the HTTP one,
so once the --port-file exists both listeners are accepting.

Endpoints (HTTP/1.1, keep-alive, Content-Length on every response unless
said otherwise; any method works on any endpoint, HEAD sends no body):

  /json?bytes=N           200 application/json, an object of exactly N bytes
                          (default 10240; 67 at least): {"id":1,"name":..,
                          "count":K,"items":[{"n":1,"label":..},..],"pad":..}
                          where count == #items, all integers. With
                          &gzip=1 the body goes gzip-compressed
                          (Content-Encoding: gzip) when the request's
                          Accept-Encoding names gzip.
  /complaints?size=N      200 application/json, an Elasticsearch-style body
                          from tests/support/fixtures/complaints.json with
                          its first N hits (default 10; beyond the fixture's
                          25 the hits repeat, with distinct _id);
                          hits.total.value == N.
                          size=25 (all the fixture's hits) sends the fixture
                          file byte for byte. With &key=KEY&fail=K&code=C
                          the first K requests for KEY answer C (default
                          503) with {"ok":false,"attempt":k}, as /flaky.
  /status/CODE?retry_after=S&body=TEXT
                          that status (200..599); Retry-After: S when given;
                          body TEXT as text/plain, else {"status":CODE}.
                          204 and 304 carry no body.
  /flaky/KEY?fail=N&code=C&retry_after=S
                          the first N requests for KEY answer C (default 500,
                          Retry-After: S when given) with {"ok":false,
                          "attempt":k}; later ones 200 {"ok":true,"attempt":k}.
  /reset/KEY?fail=N       the first N requests for KEY: the connection is
                          reset (RST, SO_LINGER 0, no response at all); later
                          ones 200 {"ok":true,"attempt":k}.
  /count/KEY              200 {"count":n}: requests seen so far for KEY by
                          /flaky, /reset and /complaints (one counter per KEY,
                          shared by all, and by the HTTP and HTTPS listeners).
  /reset-counters         200 {"ok":true}; forgets every KEY and every /stall
                          group's peak.
  /stall?seconds=S        waits S seconds (default 5), then 200
                          {"stalled":S,"together":n}; other requests are
                          served meanwhile. n is the most /stall requests of
                          the same group that were in flight at once so far.
  /stall?together=N&group=G&seconds=S
                          waits until N /stall requests of group G (default
                          "") have been in flight at once, then answers at
                          once; S (default 5) is only a hang guard: after S
                          seconds it answers anyway, with together < N. A
                          test proves requests overlap by this event, not by
                          the time they took.
  /slow?bytes=N&chunk=C&delay=D
                          200, Content-Length N (default 1024), written C bytes
                          at a time (default 128) with D seconds between
                          (default 0.1).
  /truncated?bytes=N      Content-Length N (default 1000) but only N/2 bytes,
                          then the connection is closed.
  /garbage                200 application/json whose body is not JSON.
  /big?bytes=N&chunked=1  200 application/octet-stream, N bytes (default
                          1 MiB) streamed 64 KiB at a time; with chunked=1 it
                          uses Transfer-Encoding: chunked, no Content-Length.
  /echo                   200 {"method":..,"path":..,"query":{..},
                          "headers":{lower-case name: value},"body":"..",
                          "body_bytes":n}; a query key given twice maps to a
                          list; a header given twice is joined with ", ".
  /redirect?to=PATH&code=302
                          that redirect status (default 302) with
                          Location: PATH (default /json).
  /headers                200 with X-Custom: yes and two Set-Cookie lines.
  /idle-close?seconds=S   200 {"ok":true}, keep-alive; then, if no request
                          comes on the connection within S seconds
                          (default 0.2), the server closes it: an idle
                          connection in the client's cache goes dead.
  anything else           404 {"error":"no such endpoint: PATH"}.
"""
import argparse
import gzip
import http.server
import json
import os
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse

# This file is tests/support/server/testserver.py; the fixtures are in
# tests/support/fixtures.
SUPPORT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(SUPPORT, "fixtures")
COMPLAINTS = os.path.join(FIXTURES, "complaints.json")


def dump_complaints(body):
    """Complaint bodies are written like the fixture file (indented, UTF-8)."""
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {}
        # /stall groups: requests in flight now, and the most at once so far.
        self._stall_changed = threading.Condition(self._lock)
        self._stalling = {}
        self._stall_peak = {}

    def hit(self, key):
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def get(self, key):
        with self._lock:
            return self._counts.get(key, 0)

    def clear(self):
        with self._lock:
            self._counts.clear()
            self._stall_peak.clear()

    def stall(self, group, together, seconds):
        """One /stall request of GROUP: in flight until it returns. With
        TOGETHER, it returns as soon as that many of the group have been in
        flight at once (the peak, so the waiters released by the same peak
        all return even as the first ones leave); otherwise, or when that
        has not happened within SECONDS, after SECONDS. Returns the peak."""
        with self._lock:
            self._stalling[group] = self._stalling.get(group, 0) + 1
            peak = max(self._stall_peak.get(group, 0), self._stalling[group])
            self._stall_peak[group] = peak
            self._stall_changed.notify_all()
            try:
                if together is None:
                    self._stall_changed.wait_for(lambda: False, timeout=seconds)
                else:
                    self._stall_changed.wait_for(
                        lambda: self._stall_peak.get(group, 0) >= together, timeout=seconds)
                return self._stall_peak.get(group, 0)
            finally:
                self._stalling[group] -= 1


class BadRequest(Exception):
    pass


def json_bytes(n):
    """A JSON object of exactly n bytes when n is 67 or more, built in
    linear time: items while they fit, then a padding string."""
    def encode(items):
        return json.dumps({"id": 1, "name": "flowlua test object", "count": len(items),
                           "items": items, "pad": ""}, separators=(",", ":"))

    items, size = [], len(encode([]))
    while True:
        k = len(items) + 1
        item = {"n": k, "label": f"item {k}"}
        # One more item: its text, a comma before it unless it is the first,
        # and count's digits growing.
        grow = (len(json.dumps(item, separators=(",", ":"))) + (k > 1)
                + len(str(k)) - len(str(k - 1)))
        if size + grow > n:
            break
        items.append(item)
        size += grow
    text = encode(items)
    return text.replace('"pad":""', '"pad":"%s"' % ("x" * max(0, n - len(text)))).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on,
    # the body waits for the client's delayed ACK, 40 ms per request.
    disable_nagle_algorithm = True
    server_version = "flowlua-testserver/1"
    # An idle keep-alive connection is dropped after this long, so a client
    # that never closes cannot pin a thread until the server exits.
    timeout = 120

    # --- plumbing -----------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("testserver: %s %s\n" % (self.address_string(), fmt % args))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, socket.timeout, BrokenPipeError):
            # The client went away or timed out (tests do that on purpose).
            self.close_connection = True

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, code, body=b"", ctype="application/json", headers=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
        self.send_response(code)
        no_body = code in (204, 304) or 100 <= code < 200
        if not no_body:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if not no_body and self.command != "HEAD":
            self.wfile.write(body)

    def reset_connection(self):
        """Close with SO_LINGER 0: the kernel sends RST, not FIN, and no
        response at all. The socket is detached first so that the
        framework's own shutdown afterwards has nothing to act on."""
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(sock.detach())

    def param(self, name, default, conv=str):
        values = self.query.get(name)
        if not values:
            return default
        try:
            return conv(values[-1])
        except ValueError:
            raise BadRequest(f"bad value for {name}: {values[-1]!r}")

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        self.url_path = url.path
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        parts = url.path.strip("/").split("/", 1)
        name, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        route = getattr(self, "ep_" + name.replace("-", "_"), None) if name else None
        try:
            try:
                self.body = self.read_body()
            except ValueError:
                self.close_connection = True
                raise BadRequest("unreadable request body")
            if route is None:
                self.send(404, {"error": f"no such endpoint: {url.path}"})
            else:
                route(urllib.parse.unquote(rest))
        except BadRequest as e:
            self.send(400, {"error": str(e)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = dispatch

    # --- endpoints ----------------------------------------------------------

    def ep_json(self, _):
        body = json_bytes(self.param("bytes", 10240, int))
        accepted = [e.split(";")[0].strip().lower()
                    for e in self.headers.get("Accept-Encoding", "").split(",")]
        if self.param("gzip", "0") == "1" and "gzip" in accepted:
            return self.send(200, gzip.compress(body), headers=[("Content-Encoding", "gzip")])
        self.send(200, body)

    def ep_complaints(self, _):
        key = self.param("key", None)
        if key is not None:
            n = self.server.counters.hit(key)
            if n <= self.param("fail", 0, int):
                return self.send(self.param("code", 503, int), {"ok": False, "attempt": n})
        size = self.param("size", 10, int)
        with open(COMPLAINTS, "rb") as f:
            raw = f.read()
        data = json.loads(raw)
        pool = data["hits"]["hits"]
        if size == len(pool):
            return self.send(200, raw)  # the fixture is that response
        hits = []
        for i in range(max(0, size)):
            hit = pool[i % len(pool)]
            if i >= len(pool):
                hit = dict(hit, _id=f"{hit['_id']}-{i // len(pool)}")
            hits.append(hit)
        data["hits"]["hits"] = hits
        data["hits"]["total"]["value"] = len(hits)
        self.send(200, dump_complaints(data))

    def ep_status(self, code):
        try:
            code = int(code)
        except ValueError:
            raise BadRequest(f"bad status code: {code!r}")
        if not 200 <= code <= 599:
            raise BadRequest("status code must be 200..599")
        headers = []
        if "retry_after" in self.query:
            headers.append(("Retry-After", self.param("retry_after", "")))
        text = self.param("body", None)
        if text is not None:
            self.send(code, text, "text/plain; charset=utf-8", headers)
        else:
            self.send(code, {"status": code}, headers=headers)

    def ep_flaky(self, key):
        n = self.server.counters.hit(key)
        if n <= self.param("fail", 1, int):
            headers = []
            if "retry_after" in self.query:
                headers.append(("Retry-After", self.param("retry_after", "")))
            self.send(self.param("code", 500, int), {"ok": False, "attempt": n}, headers=headers)
        else:
            self.send(200, {"ok": True, "attempt": n})

    def ep_reset(self, key):
        n = self.server.counters.hit(key)
        if n <= self.param("fail", 1, int):
            self.reset_connection()
        else:
            self.send(200, {"ok": True, "attempt": n})

    def ep_count(self, key):
        self.send(200, {"count": self.server.counters.get(key)})

    def ep_reset_counters(self, _):
        self.server.counters.clear()
        self.send(200, {"ok": True})

    def ep_stall(self, _):
        seconds = max(0.0, self.param("seconds", 5.0, float))
        together = self.param("together", None, int)
        group = self.param("group", "")
        peak = self.server.counters.stall(group, together, seconds)
        self.send(200, {"stalled": seconds, "together": peak})

    def ep_slow(self, _):
        n = self.param("bytes", 1024, int)
        chunk = max(1, self.param("chunk", 128, int))
        delay = self.param("delay", 0.1, float)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        while sent < n:
            if sent:
                time.sleep(delay)
            part = min(chunk, n - sent)
            self.wfile.write(b"s" * part)
            sent += part

    def ep_truncated(self, _):
        n = self.param("bytes", 1000, int)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(b"t" * (n // 2))
        self.close_connection = True

    def ep_garbage(self, _):
        self.send(200, b'{"hits": [1, 2,')

    def ep_big(self, _):
        n = self.param("bytes", 1 << 20, int)
        chunked = self.param("chunked", "0") not in ("0", "", "false", "no")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        block = (b"0123456789abcdef" * 4096)  # 64 KiB
        left = n
        while left > 0:
            part = block[:min(left, len(block))]
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            else:
                self.wfile.write(part)
            left -= len(part)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def ep_echo(self, rest):
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        query = {k: (v[0] if len(v) == 1 else v) for k, v in self.query.items()}
        self.send(200, {"method": self.command, "path": self.url_path, "query": query,
                        "headers": headers,
                        "body": self.body.decode("utf-8", "replace"),
                        "body_bytes": len(self.body)})

    def ep_redirect(self, _):
        code = self.param("code", 302, int)
        if not 300 <= code <= 399:
            raise BadRequest("redirect code must be 300..399")
        to = self.param("to", "/json")
        self.send(code, {"location": to}, headers=[("Location", to)])

    def ep_idle_close(self, _):
        seconds = self.param("seconds", 0.2, float)
        self.send(200, {"ok": True})
        # The wait for the next request times out: handle_one_request then
        # closes the connection.
        self.connection.settimeout(seconds)

    def ep_headers(self, _):
        self.send(200, {"ok": True}, headers=[("X-Custom", "yes"),
                                              ("Set-Cookie", "a=1; Path=/"),
                                              ("Set-Cookie", "b=2; Path=/")])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many requests in flight at once
    ssl_context = None

    def __init__(self, verbose, counters):
        super().__init__(("127.0.0.1", 0), Handler)
        self.verbose = verbose
        self.counters = counters

    def server_bind(self):
        # HTTPServer.server_bind would look the host name up (getfqdn);
        # nothing here needs it, and a slow resolver must not delay startup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        # The TLS handshake happens here, in the connection's own thread, so
        # a slow or failing handshake never holds up the accept loop.
        try:
            request.settimeout(10)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError):
            return  # e.g. a client that refuses the self-signed certificate
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.shutdown_request(tls)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def write_port(path, port):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port-file", required=True, help="where the HTTP port is written")
    ap.add_argument("--tls-cert", help="PEM certificate: also serve HTTPS")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--tls-port-file", help="where the HTTPS port is written "
                    "(default: the --port-file name with .tls appended)")
    ap.add_argument("--max-seconds", type=float, default=600,
                    help="exit after this long, whatever happens (default 600)")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="exit when the process that started this one is gone")
    ap.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    parent = os.getppid()
    counters = Counters()
    servers = [Server(args.verbose, counters)]
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        tls = Server(args.verbose, counters)
        tls.ssl_context = ctx
        servers.append(tls)
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.5},
                         daemon=True).start()
    if args.tls_cert:
        write_port(args.tls_port_file or args.port_file + ".tls", servers[1].server_address[1])
    write_port(args.port_file, servers[0].server_address[1])
    if args.verbose:
        sys.stderr.write("testserver: listening on %s\n" % ", ".join(
            f"{'https' if s.ssl_context else 'http'}://127.0.0.1:{s.server_address[1]}"
            for s in servers))

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if args.exit_with_parent and os.getppid() != parent:
            os._exit(0)
    sys.stderr.write(f"testserver: exiting after --max-seconds {args.max_seconds:g}\n")
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
