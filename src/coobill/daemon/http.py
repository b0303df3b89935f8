"""/healthz and /metrics: the daemon's answers, served on the portal's port by the portal's
process, which asks for them over its link (web/process.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from coobill.metrics import CONTENT_TYPE_LATEST, Metrics
from coobill.services import reservations
from coobill.services.context import BillingContext
from coobill.storage import schema


class Operations:
    """What an operator's probe asks the daemon; `ami_connected` returns None when AMI is
    disabled in the configuration."""

    def __init__(self, ctx: BillingContext, metrics: Metrics,
                 ami_connected: Callable[[], bool | None]) -> None:
        self.ctx, self.metrics, self.ami_connected = ctx, metrics, ami_connected

    async def answer(self, question: str) -> dict[str, Any]:
        """An HTTP answer as the link carries it: status, body, media type."""
        if question == "health":
            status, checks = await self.health()
            return {"status": status, "body": json.dumps(checks, separators=(",", ":")),
                    "type": "application/json"}
        if question == "metrics":
            return {"status": 200, "body": await self.metrics_text(), "type": CONTENT_TYPE_LATEST}
        return {"status": 404, "body": '{"detail":"Not Found"}', "type": "application/json"}

    async def health(self) -> tuple[int, dict[str, object]]:
        checks: dict[str, object] = {}
        try:
            current = await schema.current_revision(self.ctx.uow.engine)
            checks["database"] = "ok"
            checks["schema"] = "ok" if current == schema.head_revision() else f"at {current}"
        except Exception as exc:  # noqa: BLE001 - the point of a health check: report, don't raise
            checks["database"] = f"unreachable: {exc.__class__.__name__}"
            checks["schema"] = "unknown"
        ami = self.ami_connected()
        checks["ami"] = "disabled" if ami is None else ("connected" if ami else "disconnected")
        healthy = checks["database"] == "ok" and checks["schema"] == "ok" and ami is not False
        return (200 if healthy else 503), {"status": "ok" if healthy else "unhealthy", **checks}

    async def metrics_text(self) -> str:
        self.metrics.live_reservations.set(await reservations.count_open(self.ctx))
        self.metrics.ami_connected.set(1 if self.ami_connected() else 0)
        return self.metrics.render().decode()
