"""Extensions over the API: list, show, create or edit, batch edit, recharge."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from coobill.errors import BadRequest
from coobill.money import fmt, parse_amount
from coobill.services import balances, extension_listing, extensions
from coobill.services.extensions import ExtensionChanges, ExtensionView
from coobill.web.api.paging import LIMIT, OFFSET
from coobill.web.api.schemas import (
    BatchEditIn,
    ExtensionIn,
    ExtensionOut,
    ExtensionPage,
    RechargeIn,
    RechargeOut,
)
from coobill.web.auth import BillingUser, check_csrf, portal

router = APIRouter(prefix="/api", tags=["extensions"], dependencies=[Depends(check_csrf)])


def extension_json(v: ExtensionView) -> ExtensionOut:
    return ExtensionOut.model_validate(
        {
            "extension": v.extension,
            "name": v.name,
            "billing": v.billing,
            "payment": v.payment,
            "credit_limit": fmt(v.credit_limit),
            "balance": fmt(v.balance),
            "total_recharged": fmt(v.total_recharged),
            "reserved": fmt(v.reserved),
            "funds_available": fmt(v.funds_available),
            "locked": v.locked,
            **{name: None if getattr(v, name) is None else fmt(getattr(v, name))
               for name in extensions.CONTROLS},
            "below_threshold": v.below_threshold,
            "low_balance_since": (None if v.low_balance_since is None
                                  else v.low_balance_since.isoformat(sep=" ")),
        }
    )


def changes_from(body: ExtensionIn) -> ExtensionChanges:
    credit = body.credit_limit
    if isinstance(credit, str) and not credit.strip():
        raise BadRequest("credit_limit: enter an amount (0 for none)", field="credit_limit")
    return ExtensionChanges(
        name=body.name,
        billing=body.billing,
        payment=body.payment,
        locked=body.locked,
        credit_limit=None if credit is None else parse_amount(credit, field="credit_limit"),
        **{name: _text(getattr(body, name)) for name in extensions.CONTROLS},
    )


def _text(value: str | int | None) -> str | None:
    return None if value is None else str(value)


@router.get("/extensions")
async def list_extensions(
    request: Request,
    user: BillingUser,
    extension: str = Query("", description="Part of the number or the name."),
    status: str = Query("", description="locked, unlocked or empty for both."),
    payment: str = Query("", description="prepaid, postpaid or empty for both."),
    balance: str = Query("", description="low: only those below their low-balance threshold."),
    offset: int = OFFSET,
    limit: int = LIMIT,
) -> ExtensionPage:
    views, total = await extension_listing.list_extensions(
        portal(request).ctx,
        locked=extension_listing.locked_filter(status),
        payment=payment or None,
        search=extension.strip() or None,
        low=extension_listing.low_filter(balance),
        offset=offset,
        limit=limit,
    )
    return ExtensionPage(total=total, items=[extension_json(v) for v in views])


@router.post("/extensions/recharge", responses={400: {}, 404: {}})
async def recharge(body: RechargeIn, request: Request, user: BillingUser) -> list[RechargeOut]:
    """Recharge each extension by the same amount; all or none."""
    done = await balances.recharge(
        portal(request).ctx, body.extensions, body.amount, who=user.name
    )
    numbers = list(dict.fromkeys(n.strip() for n in body.extensions))
    return [
        RechargeOut(
            extension=n,
            balance_before=fmt(r.balance_before),
            amount=fmt(r.amount),
            balance_after=fmt(r.balance_after),
        )
        for n, r in zip(numbers, done, strict=True)
    ]


@router.post("/extensions/batch-edit", responses={400: {}, 404: {}})
async def batch_edit(body: BatchEditIn, request: Request, user: BillingUser) -> list[ExtensionOut]:
    changes = changes_from(body)
    views = await extensions.edit_extensions(portal(request).ctx, body.extensions, changes)
    return [extension_json(v) for v in views]


@router.get("/extensions/{number}", responses={404: {}})
async def show_extension(number: str, request: Request, user: BillingUser) -> ExtensionOut:
    return extension_json(await extensions.show_extension(portal(request).ctx, number))


@router.post("/extensions/{number}", responses={400: {}})
async def set_extension(
    number: str, body: ExtensionIn, request: Request, user: BillingUser
) -> ExtensionOut:
    """Create the extension if it is new, then apply the fields given."""
    view = await extensions.set_extension(portal(request).ctx, number, changes_from(body))
    return extension_json(view)
