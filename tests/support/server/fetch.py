#!/usr/bin/env python3
"""One HTTP request, printed as JSON on stdout, for tests that need to talk
to the test server without flow.http (the server's own self-test):

    fetch.py [--method M] [--data TEXT] [--cafile PEM] [--timeout S] URL

prints {"status":..,"reason":..,"headers":{lower-case name: value},
"body":"..","elapsed":s}, a header that comes twice joined with ", ";
or {"error":"..."} when the request fails (refused, reset, truncated, TLS).
Redirects are not followed. Exits 0 either way; 2 on bad usage.
"""
import argparse
import http.client
import json
import ssl
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--data")
    ap.add_argument("--cafile")
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    url = urllib.parse.urlsplit(args.url)
    if url.hostname not in ("127.0.0.1", "localhost"):
        ap.error("only 127.0.0.1 and localhost")
    started = time.monotonic()
    try:
        if url.scheme == "https":
            ctx = ssl.create_default_context(cafile=args.cafile)
            conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=args.timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
        target = (url.path or "/") + ("?" + url.query if url.query else "")
        conn.request(args.method, target,
                     body=args.data.encode() if args.data is not None else None)
        resp = conn.getresponse()
        body = resp.read()
        headers = {}
        for k, v in resp.getheaders():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        out = {"status": resp.status, "reason": resp.reason, "headers": headers,
               "body": body.decode("utf-8", "replace"),
               "elapsed": time.monotonic() - started}
    except Exception as e:  # what failed is the answer
        out = {"error": f"{type(e).__name__}: {e}", "elapsed": time.monotonic() - started}
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
