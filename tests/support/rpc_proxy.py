"""A JSON-RPC proxy in front of an EVM node that goes silent after a given call.

For the broken-network side of ``voltproof verify --rpc``: the proxy forwards each POST to
the node until it has answered ``limit`` calls of ``method``; every request after that has
its connection closed without an answer (a node gone away mid-check).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class SilencingRpcProxy:
    """Forwards ``http://127.0.0.1:port`` to ``target`` until ``limit`` ``method`` calls."""

    def __init__(self, *, target: str, method: str, limit: int) -> None:
        self.target = target
        self.method = method
        self.limit = limit
        self.seen = 0
        self.silenced = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not proxy.admit(body):
                    self.close_connection = True
                    self.connection.close()
                    return
                request = urllib.request.Request(
                    proxy.target, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads the outcome, not the access log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's JSON-RPC URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def admit(self, body: bytes) -> bool:
        """Whether to forward this request (counting the calls of ``method``)."""
        calls = json.loads(body)
        methods = [c.get("method") for c in (calls if isinstance(calls, list) else [calls])]
        with self._lock:
            if self.seen >= self.limit:
                self.silenced += 1
                return False
            self.seen += methods.count(self.method)
            return True

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
