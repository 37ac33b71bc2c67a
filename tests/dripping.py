"""A loopback HTTP server that answers slowly on purpose: each byte well within a socket timeout, the whole far
beyond any deadline. It drips its headers or its body, or answers at once (``drip=None``) for a normal call."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any, Literal

Drip = Literal["headers", "body"] | None


def _handler(drip: Drip, body: bytes, every_s: float) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs: a connection may be reused after a deadline

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if drip == "headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(400):
                        self.wfile.write(b"X-Drip: 1\r\n")
                        self.wfile.flush()
                        threading.Event().wait(every_s)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if drip is None else 400))
                self.end_headers()
                if drip is None:
                    self.wfile.write(body)
                    return
                for byte in (body * 400)[:400]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    threading.Event().wait(every_s)
            except OSError:  # the client gave up (its deadline): what the tests expect
                self.close_connection = True

        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.answer()

        def do_DELETE(self) -> None:
            self.answer()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def dripping_server(drip: Drip, *, body: bytes = b'{"id": "M-1"}', every_s: float = 0.05) -> Iterator[str]:
    """The server's base URL (``http://127.0.0.1:port``) while it runs; 400 drips take 20 s at the default pace."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(drip, body, every_s))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
