"""Importing a deck from the portal: upload it (coobill's layout or a carrier's), review what
it would change - the same dry run as `coobill rate import --dry-run` - then confirm. With a
trunk named, the deck is that trunk's buy rates (`rate import --trunk`).

The confirmation carries the deck's text back, so what is written is exactly what was
reviewed; a deck is at most the portal's request body cap (`[web] max_body_bytes`): a larger
one is imported with the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from coobill.errors import BadRequest
from coobill.services import rate_decks
from coobill.services.rate_decks import key_text
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


def _options(form: dict[str, str]) -> dict[str, Any]:
    return {"replace_all": form.get("replace") == "on",
            "effective": form.get("from", "").strip() or None,
            "trunk": form.get("trunk", "").strip() or None}


async def _page(request: Request, values: dict[str, str], errors: dict[str, str] | None = None,
                review: rate_decks.DeckImport | None = None, deck: str = "") -> Response:
    return await render(request, "rate_import.html", {
        "values": values, "errors": errors or {}, "review": review, "deck": deck,
        "key_text": key_text,
    }, 400 if errors else 200)


@router.get("/rates/import", response_class=HTMLResponse)
async def import_form(request: Request, user: BillingUser) -> Response:
    return await _page(request, {})


@router.post("/rates/import", response_class=HTMLResponse)
async def review_import(request: Request, user: BillingUser) -> Response:
    """The dry run of the uploaded deck, with a form to confirm it."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("file")
    try:
        return await _review(request, values, upload)
    finally:
        await form.close()  # the upload's spooled file


async def _review(request: Request, values: dict[str, str], upload: object) -> Response:
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise BadRequest("file: choose a deck to import", field="file")
        try:
            text = (await upload.read()).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest("file: the deck is not UTF-8 text", field="file") from None
        review = await rate_decks.import_rates(portal(request).ctx, text, dry_run=True,
                                               **_options(values))
    except BadRequest as exc:
        return await _page(request, values, {exc.field or "file": exc.message})
    return await _page(request, values, review=review, deck=text)


@router.post("/rates/import/confirm", response_class=HTMLResponse)
async def confirm_import(request: Request, user: BillingUser) -> Response:
    values = {k: str(v) for k, v in (await request.form()).items()}
    try:
        done = await rate_decks.import_rates(portal(request).ctx, values.get("deck", ""),
                                             **_options(values))
    except BadRequest as exc:
        return await _page(request, values, {exc.field or "file": exc.message})
    return redirect("/rates", notice="rates_imported", n=done.count)
