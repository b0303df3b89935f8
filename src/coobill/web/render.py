"""Rendering pages: every template gets the user, the translator, the CSRF token and money."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from coobill.services import bounds
from coobill.services.settings import billing_settings
from coobill.web import formatting
from coobill.web.auth import portal, session_of
from coobill.web.error_text import error_text
from coobill.web.i18n import LANGUAGES, preferred_language, translator

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZE = 20

# The sidebar, in the manual's order; the last entries go beyond the appliance.
NAVIGATION = (
    ("/extensions", "Extensions"),
    ("/rates", "Rates"),
    ("/recharges", "Recharge records"),
    ("/calls", "Call records"),
    ("/statistics", "Statistics"),
    ("/settings", "Settings"),
    ("/live", "Live calls"),
    ("/fees", "Fees"),
    ("/statements", "Statements"),
    ("/webhooks", "Webhooks"),
)


# Messages a redirect after a successful POST may ask the next page to show (?notice=...).
NOTICES = {
    "recharged": "Recharged {n} extension(s).",
    "saved": "Saved.",
    "batch_saved": "Saved {n} extension(s).",
    "choose": "Tick at least one extension first.",
    "rate_added": "Rate added.",
    "rate_saved": "Rate saved.",
    "rate_deleted": "Rate deleted.",
    "rates_imported": "{n} rate(s) imported.",
    "holiday_added": "Holiday added.",
    "holiday_removed": "Holiday removed.",
    "released": "The hold was released without charge.",
    "charged": "The call was charged.",
    "user_added": "User added.",
    "user_removed": "User removed.",
    "password_set": "Password set.",
    "webhooks_retried": "{n} event(s) will be sent again.",
    "fee_added": "Fee added.",
    "fee_removed": "Fee removed.",
}


def notice_text(request: Request, language: str) -> str:
    key = request.query_params.get("notice", "")
    if key not in NOTICES:
        return ""
    count = request.query_params.get("n", "")
    return translator(language)(
        NOTICES[key], n=count if bounds.is_digits(count) and len(count) < 7 else ""
    )


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.globals.update(
        duration=formatting.duration,
        caller=formatting.caller,
        languages=LANGUAGES,
        navigation=NAVIGATION,
    )
    templates.env.trim_blocks = True
    templates.env.lstrip_blocks = True
    return templates


def page_language(request: Request) -> str:
    user = getattr(request.state, "user", None)
    if user is not None:
        return str(user.language)
    # The login form says in which language it was shown (its hidden `lang`).
    asked = getattr(request.state, "language", None) or request.query_params.get("lang")
    return (
        asked if asked in LANGUAGES else preferred_language(request.headers.get("accept-language"))
    )


async def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    state = portal(request)
    settings = await billing_settings(state.ctx)
    session = session_of(request)
    language = page_language(request)

    def money(value: Decimal | None) -> str:
        return formatting.money(value, settings.currency_symbol)

    context = dict(context or {})
    if context.get("errors"):
        context["errors"] = {k: error_text(str(v), language) for k, v in context["errors"].items()}
    values = {
        "user": getattr(request.state, "user", None),
        "t": translator(language),
        "lang": language,
        "csrf_token": session.csrf if session else "",
        "money": money,
        "symbol": settings.currency_symbol,
        "billing_settings": settings,
        "path": request.url.path,
        "errors": {},
        "notice": notice_text(request, language),
        **context,
    }
    return state.templates.TemplateResponse(request, template, values, status_code=status)


async def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    message = error_text(message, page_language(request))
    return await render(request, "error.html", {"status": status, "message": message}, status)


def redirect(path: str, **query: str | int) -> RedirectResponse:
    """303 after a successful POST, with a notice for the next page to show."""
    target = f"{path}?{urlencode(query)}" if query else path
    return RedirectResponse(target, status_code=303)


def pages(total: int, page: int, size: int = PAGE_SIZE) -> dict[str, int]:
    last = max(1, -(-total // size))
    return {"page": min(max(page, 1), last), "last": last, "total": total, "size": size}


def page_number(text: str | None) -> int:
    """The pager's ?page=: 1 to bounds.MAX_PAGE in ASCII digits, else a 400 saying so."""
    return bounds.page_number(text)


def query_without(request: Request, *names: str) -> str:
    """The current query string without some parameters (for pager and download links)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    return urlencode(kept)
