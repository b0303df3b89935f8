"""Webhooks: the outbox's events and what became of their delivery; send failed ones again.
The URLs are the operator's configuration ([webhooks] urls), shown here (their credentials
masked), never set here."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.config import shown_url
from coobill.services import bounds, outbox
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, user: BillingUser) -> Response:
    ctx = portal(request).ctx
    state = request.query_params.get("state", "")
    extension = request.query_params.get("extension", "").strip()
    events = await outbox.list_events(ctx, state=state, extension=extension or None, limit=200)
    return await render(request, "webhooks.html", {
        "events": events, "counts": await outbox.state_counts(ctx), "state": state,
        "extension": extension, "urls": [shown_url(u) for u in ctx.config.webhooks.urls],
    })


@router.post("/webhooks/retry")
async def retry(request: Request, user: BillingUser) -> Response:
    form = await request.form()
    raw = str(form.get("id") or "")
    ids = [bounds.whole_number(raw, "id", minimum=1, maximum=bounds.MAX_ID)] if raw else None
    moved = await outbox.retry(portal(request).ctx, ids)
    return redirect("/webhooks", notice="webhooks_retried", n=len(moved))
