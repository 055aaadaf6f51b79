"""A JSON-RPC proxy in front of an EVM node that goes silent after a given call.

For the broken-network side of ``voltproof verify --rpc``: the proxy forwards each POST to
the node until it has answered ``limit`` calls of ``method``; every request after that has
its connection closed without an answer (a node gone away mid-check).
"""

from __future__ import annotations

import json
import threading
import urllib.request

from tests.support.http_stub import PostServer


class SilencingRpcProxy(PostServer):
    """Forwards ``http://127.0.0.1:port`` to ``target`` until ``limit`` ``method`` calls."""

    def __init__(self, *, target: str, method: str, limit: int) -> None:
        self.target = target
        self.method = method
        self.limit = limit
        self.seen = 0
        self.silenced = 0
        self._lock = threading.Lock()
        super().__init__(self._forward)

    def _forward(self, body: bytes) -> tuple[str, bytes] | None:
        if not self.admit(body):
            return None
        request = urllib.request.Request(
            self.target, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return "application/json", response.read()

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
