#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A TLS upstream for test-tls.c, from Python's standard library only.

Listens on 127.0.0.1:0 and prints "listening on 127.0.0.1:PORT" once it accepts. Every request
is answered 200 with a JSON body describing what arrived: method, target, the header fields in
order, whether the client presented a certificate, the TLS version, the server name the client
sent (SNI; null for none) and the client's port (the same port: the same kept-alive connection). --client-ca makes a client certificate
signed by that CA mandatory (mTLS); --max-tls 1.2 refuses TLS 1.3.

The handshake runs in the connection's own thread, so that a client that fails it (the test's
whole point) or a bare TCP probe does not stop the server.
"""
import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({
            "method": self.command,
            "target": self.path,
            "headers": [[name, value] for name, value in self.headers.items()],
            "client_certificate": bool(self.connection.getpeercert()),
            "tls_version": self.connection.version(),
            "sni": getattr(self.connection, "sni", None),
            "client_port": self.client_address[1],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("request: " + (fmt % args) + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write(f"handshake failed: {e}\n")
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        sys.stderr.write(f"connection error: {sys.exc_info()[1]}\n")


def remember_sni(connection, server_name, context):
    """Keep the name the client asked for, for the answer (None: it sent none)."""
    connection.sni = server_name
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    p.add_argument("--max-tls", choices=["1.2", "1.3"])
    a = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.sni_callback = remember_sni
    if a.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.client_ca)
    if a.max_tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    server = Server(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
