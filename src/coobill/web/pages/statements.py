"""Statements: pick a month, then one extension's statement (a printable page, or a PDF), or
the month's batch of every billed extension as one ZIP; in the user's language and the
ledger's currency (services/statements.py, statement_render.py)."""

from __future__ import annotations

import asyncio
import io
import zipfile

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from coobill.services import statement_render, statements
from coobill.services.settings import billing_settings
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import page_language, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

STYLESHEET = "/statements/style.css"


async def _month(request: Request) -> str:
    asked = request.query_params.get("month", "").strip()
    if asked:
        statements.check_month(asked)
        return asked
    ctx = portal(request).ctx
    return (await billing_settings(ctx)).local(ctx.clock()).strftime("%Y-%m")


@router.get("/statements", response_class=HTMLResponse)
async def statements_page(request: Request, user: BillingUser) -> Response:
    month = await _month(request)
    batch = await statements.statements_of_month(portal(request).ctx, month)
    return await render(request, "statements.html", {"month": month, "batch": batch})


@router.get("/statements/style.css")
async def stylesheet(user: BillingUser) -> Response:
    return Response(statement_render.CSS, media_type="text/css")


@router.get("/statements/view")
async def view(request: Request, user: BillingUser) -> Response:
    month = await _month(request)
    extension = request.query_params.get("extension", "")
    st = await statements.statement(portal(request).ctx, extension, month)
    language = page_language(request)
    if request.query_params.get("format") == "pdf":
        document = await asyncio.to_thread(statement_render.to_pdf, st, language)
        return Response(document, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="statement-{st.extension}-{month}.pdf"'})
    return HTMLResponse(statement_render.to_html(st, language, stylesheet=STYLESHEET))


@router.get("/statements/batch")
async def batch(request: Request, user: BillingUser) -> Response:
    month = await _month(request)
    found = await statements.statements_of_month(portal(request).ctx, month)
    language = page_language(request)
    archive = await asyncio.to_thread(_zip, found, language)
    return Response(archive, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="statements-{month}.zip"'})


def _zip(found: list[statements.Statement], language: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for st in found:
            name = f"statement-{st.extension}-{st.month}"
            archive.writestr(name + ".html", statement_render.to_html(st, language))
            archive.writestr(name + ".pdf", statement_render.to_pdf(st, language))
    return out.getvalue()
