"""Prometheus metrics of one daemon: gate decisions and latency, settlements, live holds,
AMI reconnects. Each daemon has its own registry (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from coobill.services.commands import AuthorizeCall, Settlement, Verdict

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.authorizations = Counter(
            "coobill_authorizations", "Gate decisions", ("verdict", "reason"),
            registry=self.registry,
        )
        self.gate_latency = Histogram(
            "coobill_gate_latency_seconds", "Time to decide an authorization",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.settlements = Counter(
            "coobill_settlements", "Calls settled", ("result",), registry=self.registry
        )
        self.live_reservations = Gauge(
            "coobill_live_reservations", "Funds holds of live calls", registry=self.registry
        )
        self.ami_reconnects = Gauge(
            "coobill_ami_reconnects", "AMI reconnections since start", registry=self.registry
        )
        self.ami_connected = Gauge(
            "coobill_ami_connected", "1 while logged in to AMI", registry=self.registry
        )
        self.refused_dropped = Gauge(
            "coobill_refused_dropped",
            "Refused calls not recorded: their queue was full ([records] refused_queue)",
            registry=self.registry,
        )

    def observe_decision(
        self, request: AuthorizeCall | None, verdict: Verdict, seconds: float
    ) -> None:
        self.authorizations.labels(
            "ALLOW" if verdict.allowed else "DENY", str(verdict.reason)
        ).inc()
        self.gate_latency.observe(seconds)

    def observe_settlement(self, settlement: Settlement | None) -> None:
        if settlement is None:
            self.settlements.labels("internal").inc()
        elif settlement.debited:
            self.settlements.labels("settled").inc()
        else:
            self.settlements.labels("duplicate").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
