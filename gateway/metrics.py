"""Prometheus metrics of the gateway, served on ``/metrics``.

Counters move as batches commit; gauges are set after each batch and each checkpoint or
anchor step, so a scrape costs nothing on the ingestion path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class GatewayMetrics:
    """Every metric the gateway exports, on a registry of its own."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _server: WSGIServer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        r = self.registry
        self.received = Counter(
            "voltproof_messages_received", "Messages delivered by the broker", registry=r
        )
        self.accepted = Counter(
            "voltproof_messages_accepted", "Messages appended to the log", registry=r
        )
        self.duplicates = Counter(
            "voltproof_messages_duplicate",
            "Redelivered messages already in the log (acknowledged, not appended again)",
            registry=r,
        )
        self.seq_jumps = Counter(
            "voltproof_seq_jumps",
            "Messages accepted more than max_seq_jump seqs ahead of their device's head "
            "(each also a gateway alarm)",
            registry=r,
        )
        self.rejected = Counter(
            "voltproof_messages_rejected",
            "Messages quarantined, by reason code",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "voltproof_batch_commit_seconds",
            "Time to verify and durably commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "voltproof_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
            registry=r,
        )
        self.queue_depth = Gauge(
            "voltproof_intake_queue_depth", "Messages received, not yet committed", registry=r
        )
        self.broker_connected = Gauge(
            "voltproof_broker_connected", "1 while connected to the broker", registry=r
        )
        self.log_size = Gauge("voltproof_log_size", "Leaves in the Merkle log", registry=r)
        self.checkpoint_size = Gauge(
            "voltproof_checkpoint_size", "Tree size of the latest signed checkpoint", registry=r
        )
        self.checkpoint_lag_leaves = Gauge(
            "voltproof_checkpoint_lag_leaves",
            "Leaves appended since the latest signed checkpoint",
            registry=r,
        )
        self.checkpoint_age_seconds = Gauge(
            "voltproof_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed",
            registry=r,
        )
        self.anchored_size = Gauge(
            "voltproof_anchor_final_size",
            "Tree size of the latest checkpoint whose anchor is final",
            registry=r,
        )
        self.anchor_lag_leaves = Gauge(
            "voltproof_anchor_lag_leaves",
            "Leaves in the latest checkpoint not yet covered by a final anchor",
            registry=r,
        )
        self.anchor_pending = Gauge(
            "voltproof_anchor_pending", "Checkpoints whose anchor is not final yet", registry=r
        )
        self.anchor_errors = Counter(
            "voltproof_anchor_errors", "Anchor attempts that failed, by kind", ["kind"], registry=r
        )

        self.witness_submissions = Counter(
            "voltproof_witness_submissions",
            "Checkpoint submissions to witnesses, by witness and result "
            "(cosigned, conflict, refused, unavailable, bad_answer, ahead)",
            ["witness", "result"],
            registry=r,
        )
        self.witness_cosigned_size = Gauge(
            "voltproof_witness_cosigned_size",
            "Tree size of the largest checkpoint the witness cosigned",
            ["witness"],
            registry=r,
        )
        self.witness_lag_checkpoints = Gauge(
            "voltproof_witness_lag_checkpoints",
            "Signed checkpoints not yet covered by a cosignature of the witness",
            ["witness"],
            registry=r,
        )
        self.witness_lag_seconds = Gauge(
            "voltproof_witness_lag_seconds",
            "Seconds since the oldest checkpoint not yet covered by the witness was signed",
            ["witness"],
            registry=r,
        )

    def serve(self, *, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` in a thread; return the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound: int = server.server_address[1]
        return bound

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
