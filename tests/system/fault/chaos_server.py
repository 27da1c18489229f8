#!/usr/bin/env python3
"""A flaky HTTP server for flowlua's fault-injection suite
(tests/system/fault/run.py).

It serves one deterministic JSON document per item id, and fails at random
instead of answering: each request draws from an RNG seeded by the server's
seed, the run token, the item id and the attempt number, so a seed replays
exactly the same faults for the same requests whatever order they arrive
in. The seed is printed on stderr at start; pass --seed to reproduce.

    chaos_server.py --port-file P [--seed S] [--rate 0.5] [--max-streak 10]
                    [--stall 2.0] [--max-seconds 600] [--exit-with-parent]

It binds 127.0.0.1 only, on a port the kernel picks, and writes the port to
P (under a temporary name, then renamed, so a reader never sees half a
number). It exits after --max-seconds, and with --exit-with-parent as soon
as the process that started it is gone.

Endpoints (HTTP/1.1):

  /doc/RUN/ID   the document of item ID (an integer), or, with probability
                --rate, one of FAULTS below. One item never fails more than
                --max-streak times in a row within a run, so a task with that
                many retries always gets its document in the end.
  /log/RUN      200 application/json: {"ID": [{"n": attempt, "fault": name
                or "ok", "at": server monotonic seconds}, ...], ...}, every
                /doc request of that run in arrival order.
  anything else 404.

The module is also imported by run.py for document() and FAULTS.
"""
import argparse
import http.server
import json
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

# Each fault and its relative weight. Stalls and Retry-After each cost a
# client about a second, so they are drawn less often than the rest.
FAULTS = {
    "http_500": 2,              # 500 with a JSON error body
    "http_503": 2,              # 503, no Retry-After
    "http_503_retry_after": 1,  # 503 with Retry-After: 1
    "reset_in_headers": 2,      # part of the status line and headers, then RST
    "reset_in_body": 2,         # headers, half the body, then RST
    "stall": 1,                 # no answer for --stall seconds
    "truncated": 2,             # Content-Length of the whole body, half sent, FIN
    "garbage": 2,               # 200 application/json, a body that is not JSON
    "wrong_content_type": 2,    # 200 text/html, a proxy's error page
    "chunked_cut": 2,           # chunked encoding, closed before the last chunk
    "wrong_document": 2,        # 200, valid JSON, another item's document
}

RETRY_AFTER_SECONDS = 1

NAMES = ["Widget", "Gadget, large", 'The "best" gizmo', "Ærøskøbing №{}",
         "line one\nline two", "Sprocket"]


def document(item_id):
    """Item item_id's document, the same every time: a name that needs CSV
    quoting or is not ASCII for some ids, integer values, one float."""
    rng = random.Random(f"document/{item_id}")
    values = [rng.randrange(-10000, 10000) for _ in range(20 + 13 * (item_id % 17))]
    return {
        "id": item_id,
        "name": NAMES[item_id % len(NAMES)].format(item_id),
        "weight": rng.randrange(0, 10**6) / 100,
        "values": values,
        "checksum": sum(values),
    }


def document_bytes(item_id):
    return json.dumps(document(item_id), ensure_ascii=False).encode("utf-8")


class Plan:
    """Which fault (or "ok") answers each request, and the log of them."""

    def __init__(self, seed, rate, max_streak):
        self.seed, self.rate, self.max_streak = seed, rate, max_streak
        self._lock = threading.Lock()
        self._log = {}  # run -> {item id -> [entries]}

    def draw(self, run, item_id):
        """Records a request for (run, item_id); returns (attempt, fault)."""
        with self._lock:
            entries = self._log.setdefault(run, {}).setdefault(item_id, [])
            n = len(entries) + 1
            streak = 0
            for e in reversed(entries):
                if e["fault"] == "ok":
                    break
                streak += 1
            rng = random.Random(f"{self.seed}/{run}/{item_id}/{n}")
            fault = "ok"
            if rng.random() < self.rate and streak < self.max_streak:
                fault = rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
            entries.append({"n": n, "fault": fault, "at": time.monotonic()})
            return n, fault

    def log(self, run):
        with self._lock:
            return json.loads(json.dumps(self._log.get(run, {})))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in separate writes
    server_version = "flowlua-chaos/1"
    timeout = 120  # an idle keep-alive connection is dropped after this

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout):
            self.close_connection = True  # a client that gave up (timeouts)

    def send(self, code, body, ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_partial_headers(self, ctype, length):
        """Status line and headers with a full Content-Length, flushed."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def reset(self):
        """Close with SO_LINGER 0: the kernel sends RST, not FIN. The socket
        is detached first so the framework's own shutdown finds nothing."""
        self.wfile.flush()
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(sock.detach())

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "doc" and parts[2].isdigit():
            return self.serve_doc(parts[1], int(parts[2]))
        if len(parts) == 2 and parts[0] == "log":
            return self.send(200, json.dumps(self.server.plan.log(parts[1])).encode())
        self.send(404, json.dumps({"error": f"no such endpoint: {self.path}"}).encode())

    def serve_doc(self, run, item_id):
        _, fault = self.server.plan.draw(run, item_id)
        body = document_bytes(item_id)
        half = body[:len(body) // 2]
        if fault == "ok":
            self.send(200, body)
        elif fault in ("http_500", "http_503"):
            self.send(int(fault[5:]), b'{"error":"the chaos server says no"}')
        elif fault == "http_503_retry_after":
            self.send(503, b'{"error":"busy"}',
                      headers=[("Retry-After", str(RETRY_AFTER_SECONDS))])
        elif fault == "reset_in_headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
            self.reset()
        elif fault == "reset_in_body":
            self.send_partial_headers("application/json", len(body))
            self.wfile.write(half)
            self.reset()
        elif fault == "stall":
            time.sleep(self.server.stall)
            self.send(200, body)  # the client has given up by now
        elif fault == "truncated":
            self.send_partial_headers("application/json", len(body))
            self.wfile.write(half)
            self.close_connection = True
        elif fault == "garbage":
            self.send(200, half + b"\x00\xff}]garbage")
        elif fault == "wrong_content_type":
            self.send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
                      "text/html; charset=utf-8")
        elif fault == "chunked_cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            self.close_connection = True  # FIN without the final 0 chunk
        elif fault == "wrong_document":
            self.send(200, document_bytes(item_id + 1000))
        else:
            raise AssertionError(f"fault without a behaviour: {fault}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # several flows of 32 tasks each at once

    def __init__(self, plan, stall):
        super().__init__(("127.0.0.1", 0), Handler)
        self.plan, self.stall = plan, stall

    def server_bind(self):
        # HTTPServer.server_bind would look the host name up; nothing needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port-file", required=True, help="where the port is written")
    ap.add_argument("--seed", type=int, default=None,
                    help="the RNG seed (default: a random one, printed)")
    ap.add_argument("--rate", type=float, default=0.5,
                    help="probability that a request fails (default 0.5)")
    ap.add_argument("--max-streak", type=int, default=10,
                    help="most faults in a row for one item in one run (default 10)")
    ap.add_argument("--stall", type=float, default=2.0,
                    help="seconds a stalled request waits (default 2)")
    ap.add_argument("--max-seconds", type=float, default=600,
                    help="exit after this long, whatever happens (default 600)")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="exit when the process that started this one is gone")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)
    sys.stderr.write(f"chaos_server: seed {seed} (--seed {seed} replays these faults)\n")
    sys.stderr.flush()

    parent = os.getppid()
    server = Server(Plan(seed, args.rate, args.max_streak), args.stall)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                     daemon=True).start()
    tmp = f"{args.port_file}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(tmp, args.port_file)

    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if args.exit_with_parent and os.getppid() != parent:
            os._exit(0)
    sys.stderr.write(f"chaos_server: exiting after --max-seconds {args.max_seconds:g}\n")
    os._exit(0)


if __name__ == "__main__":
    main()
