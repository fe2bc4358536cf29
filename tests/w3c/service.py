#!/usr/bin/env python3
"""The test service of the W3C Trace Context test suite, meant to sit BEHIND tracehop.

The official suite (test/test.py of github.com/w3c/trace-context) POSTs a JSON list of actions,
[{"url": ..., "arguments": [...]}, ...], to its "service endpoint", which here is tracehop. tracehop
continues (or restarts) the trace, makes its own span and forwards the request to this program.
For every action this program POSTs `arguments` (as JSON) to `url` -- a callback to the harness --
carrying the trace context it received from tracehop, and finally answers 200 with `{}`.

What the callbacks carry, per header received from tracehop:

  traceparent   the same trace-id and trace-flags, and a new parent-id for every callback: this
                service is a W3C participant making one child span per outgoing request (the
                suite checks that three callbacks of one request carry three parent-ids). With
                --copy-parent the traceparent is copied as received instead (one parent-id for
                every callback).
  tracestate    copied as received (several fields combined with ",", which means the same)
  X-Trace-ID    copied as received (the header name can be changed with --trace-header)

Standard library only. Usage:

  service.py [--host 127.0.0.1] [--port 0] [--port-file FILE] [--copy-parent]

With port 0 the system picks a free port; --port-file receives it (written once listening).
"""

import argparse
import json
import os
import re
import secrets
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
CALLBACK_TIMEOUT = 5.0
MAX_BODY = 1024 * 1024


def child_traceparent(received):
    """The traceparent for one outgoing request: same trace, our own new span.

    Returns None when `received` is not a traceparent we can continue (tracehop always sends a
    valid version-00 one, so this should not happen; the caller then copies it as received).
    """
    match = TRACEPARENT_RE.match(received.strip(" \t"))
    if not match or match.group(1) == "ff":
        return None
    version, trace_id, _, flags, _ = match.groups()
    if version != "00":
        return None
    while True:
        span_id = secrets.token_hex(8)
        if span_id != "0" * 16:
            return "00-{}-{}-{}".format(trace_id, span_id, flags)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tracehop-w3c-service"

    def log_message(self, fmt, *args):  # noqa: N802 (http.server's name)
        if self.server.verbose:
            sys.stderr.write("service: " + (fmt % args) + "\n")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)  # CRLF after the chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status, payload):
        body = json.dumps(payload).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def propagated_headers(self):
        """The trace-context headers received from tracehop, one value each."""
        headers = {}
        for name in ("traceparent", "tracestate", self.server.trace_header):
            values = self.headers.get_all(name) or []
            if values:
                # RFC 9110 section 5.3: several fields of one name combine with ",".
                headers[name] = ",".join(v.strip(" \t") for v in values)
        return headers

    def callback(self, action, received):
        headers = dict(received)
        headers["Content-Type"] = "application/json"
        if "traceparent" in received and not self.server.copy_parent:
            child = child_traceparent(received["traceparent"])
            if child:
                headers["traceparent"] = child
        data = json.dumps(action.get("arguments") or []).encode("utf-8")
        request = urllib.request.Request(action["url"], data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT) as response:
                response.read()
        except urllib.error.HTTPError as err:
            err.read()
            sys.stderr.write("service: callback {} answered {}\n".format(action["url"], err.code))
        except (OSError, ValueError) as err:
            sys.stderr.write("service: callback {} failed: {}\n".format(action["url"], err))

    def do_POST(self):  # noqa: N802 (http.server's name)
        try:
            body = self.read_body()
            actions = json.loads(body) if body.strip() else None
        except ValueError as err:
            self.reply(400, {"error": str(err)})
            return
        if actions is None:
            actions = []
        if not isinstance(actions, list):
            actions = [actions]
        received = self.propagated_headers()
        if self.server.verbose:
            sys.stderr.write("service: received {!r}\n".format(received))
        for action in actions:
            if isinstance(action, dict) and isinstance(action.get("url"), str):
                self.callback(action, received)
        self.reply(200, {})

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.reply(200, {})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the port listened on to this file")
    parser.add_argument("--trace-header", default="X-Trace-ID",
                        help="the legacy trace id header to copy (default X-Trace-ID)")
    parser.add_argument("--copy-parent", action="store_true",
                        help="copy traceparent as received instead of making a child span")
    parser.add_argument("--verbose", action="store_true", default=bool(os.environ.get("SERVICE_DEBUG")))
    args = parser.parse_args()

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.trace_header = args.trace_header
    server.copy_parent = args.copy_parent
    server.verbose = args.verbose
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("{}\n".format(port))
        os.replace(tmp, args.port_file)
    sys.stderr.write("service: listening on http://{}:{}/\n".format(args.host, port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
