#!/usr/bin/env python3
"""A stand-in PoP edge for the popdns demo: a tiny HTTP server.

    GET /healthz  200 "ok <pop>"   (503 "down <pop>" while --down-file exists)
    GET /         200 "served by PoP <pop>"

popdns probes /healthz. To take the PoP out of DNS answers, stop the
process (`docker compose stop pop-fra`, or kill it) or create the down file
(`docker compose exec pop-fra touch /tmp/down`) so /healthz answers 503.

The first line on stdout is `listening on HOST:PORT` (use --port 0 for a free
port). SIGTERM and SIGINT stop it at once, also as PID 1 in a container.
Standard library only.
"""

import argparse
import http.server
import os
import signal
import sys
import threading


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pop", required=True, help="PoP name shown in answers, e.g. fra")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080, help="TCP port, 0 = any free port (default 8080)")
    p.add_argument("--down-file", default="/tmp/down", help="while this file exists /healthz answers 503")
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    args = p.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "popdns-demo-backend/1"
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, text: str, body: bool = True) -> None:
            data = (text + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _route(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                if os.path.exists(args.down_file):
                    self._send(503, f"down {args.pop} ({args.down_file} exists)", body)
                else:
                    self._send(200, f"ok {args.pop}", body)
            elif path == "/":
                self._send(200, f"served by PoP {args.pop}", body)
            else:
                self._send(404, "not found", body)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._route(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(False)

        def log_message(self, fmt: str, *a) -> None:
            if not args.quiet:
                sys.stderr.write(f"pop-{args.pop} {self.address_string()} {fmt % a}\n")

    http.server.ThreadingHTTPServer.daemon_threads = True
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    host, port = srv.server_address[:2]
    print(f"listening on {host}:{port} pop={args.pop}", flush=True)

    def stop(signum, _frame):
        sys.stderr.write(f"pop-{args.pop}: signal {signum}, stopping\n")
        # shutdown() blocks until serve_forever returns: call it off this thread.
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
