"""The portal's FastAPI application: pages, the JSON API under /api, static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from coobill.services.context import BillingContext
from coobill.web import api, pages
from coobill.web.auth import PortalState
from coobill.web.failures import install_error_handlers
from coobill.web.limits import install_request_guards
from coobill.web.render import make_templates
from coobill.web.sessions import SessionSigner, session_secret
from coobill.web.throttle import LoginThrottle

STATIC = Path(__file__).parent / "static"


def create_app(ctx: BillingContext, *, live: Any = None, secret: str | None = None) -> FastAPI:
    """The portal on this ledger. `live` (the AMI follower's view of calls) is not needed:
    live calls are read from the ledger's holds. `secret` signs sessions (the daemon passes
    the one kept in the ledger); without it, `web.secret_key` or a key for this app alone."""
    app = FastAPI(
        title="coobill billing portal",
        version="1",
        description=(
            "Billing for Asterisk PBXs: extensions, rates, records, statistics, settings and "
            "live calls. Log in with POST /api/login; send the returned csrf_token in the "
            "X-CSRF-Token header of every POST and DELETE. Amounts are decimal strings with "
            "4 places."
        ),
        openapi_url="/openapi.json",
        docs_url="/api/docs" if ctx.config.web.api_docs else None,
        redoc_url=None,
    )
    app.state.portal = PortalState(
        ctx=ctx,
        signer=SessionSigner(secret or session_secret(ctx.config.web)),
        throttle=LoginThrottle(),
        templates=make_templates(),
        secure_cookies=ctx.config.web.secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (*api.ROUTERS, *pages.ROUTERS):
        app.include_router(router)
    install_error_handlers(app)
    install_request_guards(app, ctx.config.web)
    return app
