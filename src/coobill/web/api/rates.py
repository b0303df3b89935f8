"""Rates over the API: list, add, show, edit (enable/disable too), delete, quote; the deck
imported and downloaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from coobill.services import rate_decks, rate_fields, rates
from coobill.services.rate_decks import key_text
from coobill.services.rate_fields import check_rate_fields, moment_text
from coobill.web.api.rate_schemas import (
    DeckImportOut,
    DeckIn,
    DeckRateOut,
    QuoteOut,
    RateEditIn,
    RateIn,
    RateOut,
)
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.formatting import csv_download
from coobill.web.rate_form import quote_json, rate_json

router = APIRouter(prefix="/api", tags=["rates"], dependencies=[Depends(check_csrf)])

def service_arguments(body: RateIn | RateEditIn) -> dict[str, Any]:
    return rate_fields.service_arguments(body.model_dump(exclude_none=True))


@router.get("/rates")
async def list_rates(request: Request, user: BillingUser) -> list[RateOut]:
    return [RateOut(**rate_json(v)) for v in await rates.list_rates(portal(request).ctx)]


@router.post("/rates", status_code=201, responses={400: {}})
async def add_rate(body: RateIn, request: Request, user: BillingUser) -> RateOut:
    """Errors name the field: prefix, length, initial_cost, initial_time, rate, period,
    start, end, extensions."""
    view = await rates.add_rate(portal(request).ctx, check_rate_fields(**service_arguments(body)))
    return RateOut(**rate_json(view))


@router.get("/rates.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def export_rates(request: Request, user: BillingUser) -> Response:
    """Every rate as a CSV deck, the columns `rate export` writes and an import reads (days,
    holidays, valid_from, valid_until, split and trunk among them)."""
    views = await rates.list_rates(portal(request).ctx)
    return csv_download("rates.csv", rate_decks.CSV_COLUMNS, rate_decks.deck_cells(views))


@router.get("/rates/quote", responses={400: {}, 404: {}})
async def quote(
    request: Request,
    user: BillingUser,
    extension: str,
    number: str,
    seconds: int = Query(60, ge=0, le=86_400, description="Talk time to price."),
    at: str | None = Query(None, description='"HH:MM" today or "YYYY-MM-DD HH:MM" (PBX time): '
                                             "the days, holidays and dated decks of then; "
                                             "default now."),
) -> QuoteOut:
    """Which rate applies to `extension` dialling `number` now (or `at`), what `seconds` of
    talk cost, and how long the extension's funds last."""
    found = await rates.quote(portal(request).ctx, extension, number, at=at, seconds=seconds)
    return QuoteOut(**quote_json(found))


@router.post("/rates/import", responses={400: {}})
async def import_deck(body: DeckIn, request: Request, user: BillingUser) -> DeckImportOut:
    """Import a deck (all or nothing), or with `dry_run` only say what it would change; with
    `trunk`, as that trunk's buy rates."""
    done = await rate_decks.import_rates(portal(request).ctx, body.deck, replace_all=body.replace,
                                         effective=body.effective, dry_run=body.dry_run,
                                         trunk=body.trunk)
    diff = done.diff
    return DeckImportOut(
        count=done.count, effective=moment_text(done.effective) or None, written=done.written,
        added=[DeckRateOut(rate=key_text(k), before=None, after=str(v)) for k, v in diff.added],
        removed=[DeckRateOut(rate=key_text(k), before=str(v), after=None)
                 for k, v in diff.removed],
        changed=[DeckRateOut(rate=key_text(c.key), before=str(c.old), after=str(c.new))
                 for c in diff.changed],
        unchanged=diff.unchanged)


@router.get("/rates/{rate_id}", responses={404: {}})
async def show_rate(rate_id: int, request: Request, user: BillingUser) -> RateOut:
    return RateOut(**rate_json(await rates.get_rate(portal(request).ctx, rate_id)))


@router.post("/rates/{rate_id}", responses={400: {}, 404: {}})
async def edit_rate(rate_id: int, body: RateEditIn, request: Request, user: BillingUser) -> RateOut:
    view = await rates.edit_rate(portal(request).ctx, rate_id, **service_arguments(body))
    return RateOut(**rate_json(view))


@router.delete("/rates/{rate_id}", status_code=204, responses={404: {}})
async def delete_rate(rate_id: int, request: Request, user: BillingUser) -> None:
    await rates.delete_rate(portal(request).ctx, rate_id)
