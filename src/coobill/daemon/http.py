"""/healthz and /metrics, served beside the portal."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response
from sqlalchemy import func, select

from coobill.metrics import CONTENT_TYPE_LATEST, Metrics
from coobill.services import holds
from coobill.services.context import BillingContext
from coobill.storage import schema
from coobill.storage.tables import Reservation


def operations_router(
    ctx: BillingContext, metrics: Metrics, ami_connected: Callable[[], bool | None]
) -> APIRouter:
    """`ami_connected` returns None when AMI is disabled in the configuration."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz(response: Response) -> dict[str, object]:
        checks: dict[str, object] = {}
        try:
            current = await schema.current_revision(ctx.uow.engine)
            checks["database"] = "ok"
            checks["schema"] = "ok" if current == schema.head_revision() else f"at {current}"
        except Exception as exc:  # the point of a health check: report, don't raise
            checks["database"] = f"unreachable: {exc.__class__.__name__}"
            checks["schema"] = "unknown"
        ami = ami_connected()
        checks["ami"] = "disabled" if ami is None else ("connected" if ami else "disconnected")
        healthy = checks["database"] == "ok" and checks["schema"] == "ok" and ami is not False
        response.status_code = 200 if healthy else 503
        return {"status": "ok" if healthy else "unhealthy", **checks}

    @router.get("/metrics")
    async def metrics_text() -> Response:
        async with ctx.uow() as uow:
            live = (await uow.session.execute(
                select(func.count()).select_from(Reservation)
                .where(Reservation.state.in_(holds.OPEN)))).scalar_one()
        metrics.live_reservations.set(live)
        ami = ami_connected()
        metrics.ami_connected.set(1 if ami else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
