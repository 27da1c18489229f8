"""A tiny HTTP server that answers with broken responses, for the bad-input
corpus (tests/system/badinput). tests/support/server/testserver.py speaks
correct HTTP by way of http.server; these responses are written byte by byte on a raw
socket so that they can be wrong in every way a real server can be:
garbage status lines, cut-off or oversized headers, bad chunked encoding,
lying lengths, bodies that are not JSON.

GET /NAME answers with the response named NAME in RESPONSES, then closes
the connection. It binds 127.0.0.1 only, on a port the kernel picks, and
runs on daemon threads of the process that starts it.
"""
import socket
import socketserver
import threading


def response(status, headers=(), body=b""):
    """A response with the given status line, headers and body, verbatim:
    no header is added, so a test controls every byte."""
    head = b"HTTP/1.1 " + status + b"\r\n"
    for h in headers:
        head += h + b"\r\n"
    return head + b"\r\n" + body


def json_response(body, extra=()):
    return response(b"200 OK", (b"Content-Type: application/json",
                                b"Content-Length: %d" % len(body)) + tuple(extra), body)


def endless_headers(sock):
    """Header lines until 2 MiB have gone out, then the connection closes."""
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"f" * 1000 + b"\r\n"
    for _ in range(2048):
        sock.sendall(line)


def endless_interim(sock):
    """'100 Continue' over and over (2 MiB of them), never a final answer."""
    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 80000)


RESPONSES = {
    # The status line and the headers.
    "garbage-status": b"SPEAKING NONSENSE\r\n\r\n",
    "no-response": b"",
    "http09": b'{"id": 1}',
    "status-not-a-number": b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    "status-999": response(b"999 Weird", (b"Content-Length: 2",), b"{}"),
    "headers-cut-off": b"HTTP/1.1 200 OK\r\nContent-Type: appl",
    "header-too-big": response(b"200 OK", (b"X-Big: " + b"a" * 400000, b"Content-Length: 2"), b"{}"),
    "endless-headers": endless_headers,
    "endless-interim": endless_interim,
    "content-length-not-a-number": response(b"200 OK", (b"Content-Length: lots",), b"{}"),
    "content-length-negative": response(b"200 OK", (b"Content-Length: -5",), b"{}"),
    "content-length-conflict": response(b"200 OK", (b"Content-Length: 2", b"Content-Length: 9"), b"{}"),
    "body-shorter-than-length": response(b"200 OK", (b"Content-Length: 100",), b'{"a": 1}'),
    # "Connection: close", as the server does close: without it libcurl
    # may reuse the connection for the next hop, find it closed, and (on a
    # loaded machine, five times in a row) give up with "Connection died"
    # before it counts the redirects.
    "redirect-loop": response(b"302 Found", (b"Location: /redirect-loop", b"Content-Length: 0",
                                             b"Connection: close")),
    "redirect-file": response(b"302 Found", (b"Location: file:///etc/passwd", b"Content-Length: 0")),
    "redirect-nowhere": response(b"302 Found", (b"Location: http://[::1", b"Content-Length: 0")),
    "fake-gzip": response(b"200 OK", (b"Content-Encoding: gzip", b"Content-Length: 8"), b"not gzip"),
    # Chunked transfer encoding.
    "chunk-size-not-hex": response(b"200 OK", (b"Transfer-Encoding: chunked",), b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk-cut-off": response(b"200 OK", (b"Transfer-Encoding: chunked",), b"100\r\n" + b"x" * 10),
    "chunk-size-huge": response(b"200 OK", (b"Transfer-Encoding: chunked",),
                                b"ffffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
    "chunk-no-terminator": response(b"200 OK", (b"Transfer-Encoding: chunked",), b"2\r\n{}\r\n"),
    # Bodies that r:json() must refuse.
    "json-truncated": json_response(b'{"hits": {"hits": [{"_source": {"state": "CA"'),
    "json-empty": json_response(b""),
    "json-trailing-garbage": json_response(b'{"ok": true} and more'),
    "json-deep": json_response(b"[" * 100000 + b"]" * 100000),
    "json-bad-utf8": json_response(b'{"name": "\xff\xfe"}'),
    "json-lone-surrogate": json_response(b'{"name": "\\ud800"}'),
    "json-nan": json_response(b'{"value": NaN}'),
    "json-html": response(b"200 OK", (b"Content-Type: text/html", b"Content-Length: 45"),
                          b"<html><body>502 Bad Gateway</body></html>\r\n\r\n"),
    # Retry-After values a task's retry delay must not trust blindly.
    "retry-after-huge": response(b"503 Service Unavailable",
                                 (b"Retry-After: 99999999999999999999", b"Content-Length: 0")),
    "retry-after-garbage": response(b"503 Service Unavailable",
                                    (b"Retry-After: soon, maybe", b"Content-Length: 0")),
    "retry-after-negative": response(b"429 Too Many Requests",
                                     (b"Retry-After: -30", b"Content-Length: 0")),
}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            words = head.split(b" ", 2)
            name = words[1].decode("latin-1").lstrip("/").split("?")[0] if len(words) > 1 else ""
            answer = RESPONSES.get(name, response(b"404 Not Found", (b"Content-Length: 0",)))
            if callable(answer):
                answer(sock)
            else:
                sock.sendall(answer)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client gave up first: that is its business


class RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
