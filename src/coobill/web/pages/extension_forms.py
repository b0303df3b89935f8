"""Recharging, editing and batch-editing extensions (the list's Recharge/Edit buttons)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from coobill.errors import BadRequest, UnknownExtension
from coobill.money import parse_amount
from coobill.services import balances, extensions
from coobill.services.extensions import ExtensionChanges
from coobill.web.auth import BillingUser, check_csrf, portal
from coobill.web.render import redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

# The form's names for the service's fields, where they differ.
FIELD_NAMES = {"credit": "credit_limit", "extension": "extensions"}


def field_errors(exc: BadRequest) -> dict[str, str]:
    field = exc.field or "form"
    return {FIELD_NAMES.get(field, field): exc.message}


def credit_limit(text: str) -> Any:
    if not text.strip():
        raise BadRequest("credit_limit: enter an amount (0 for none)", field="credit_limit")
    return parse_amount(text, field="credit_limit")


def changes_from(form: Mapping[str, str], *, batch: bool) -> ExtensionChanges:
    """The edit form's changes; a batch edit applies only the fields whose box is ticked."""

    def wanted(name: str) -> bool:
        return not batch or form.get(f"apply_{name}") == "on"

    return ExtensionChanges(
        name=None if batch else form.get("name", ""),
        billing=form.get("billing") == "on" if wanted("billing") else None,
        locked=form.get("locked") == "locked" if wanted("locked") else None,
        credit_limit=credit_limit(form.get("credit_limit", "")) if wanted("credit_limit") else None,
        payment=form.get("payment", "") if wanted("payment") else None,
        # An empty box: the site's default applies.
        **{name: form.get(name, "") if wanted(name) else None for name in extensions.CONTROLS},
    )


async def _chosen(request: Request, numbers: list[str]) -> list[extensions.ExtensionView]:
    ctx = portal(request).ctx
    return [await extensions.show_extension(ctx, n) for n in dict.fromkeys(numbers)]


def _form_values(form: FormData) -> dict[str, str]:
    return {k: str(v) for k, v in form.items()}


async def _chosen_form(request: Request, template: str, values: dict[str, str]) -> Response:
    """A form for the extensions ticked on the list (?ext=...); none ticked: back to it."""
    numbers = request.query_params.getlist("ext")
    if not numbers:
        return redirect("/extensions", notice="choose")
    return await render(request, template, {
        "chosen": await _chosen(request, numbers), "values": values})


async def _refused(request: Request, template: str, numbers: list[str], form: FormData,
                   exc: BadRequest) -> Response:
    """A form for several extensions, shown again as it was sent, each error by its field."""
    return await render(request, template, {
        "chosen": await _chosen(request, numbers),
        "values": _form_values(form),
        "errors": field_errors(exc),
    }, 400)


@router.get("/extensions/recharge", response_class=HTMLResponse)
async def recharge_form(request: Request, user: BillingUser) -> Response:
    return await _chosen_form(request, "recharge.html", {})


@router.post("/extensions/recharge", response_class=HTMLResponse)
async def recharge(request: Request, user: BillingUser) -> Response:
    form = await request.form()
    numbers = [str(n) for n in form.getlist("ext")]
    try:
        done = await balances.recharge(
            portal(request).ctx, numbers, str(form.get("amount") or ""), who=user.name
        )
    except BadRequest as exc:
        return await _refused(request, "recharge.html", numbers, form, exc)
    return redirect("/extensions", notice="recharged", n=len(done))


@router.get("/extensions/batch-edit", response_class=HTMLResponse)
async def batch_edit_form(request: Request, user: BillingUser) -> Response:
    return await _chosen_form(request, "batch_edit.html", {"credit_limit": "0"})


@router.post("/extensions/batch-edit", response_class=HTMLResponse)
async def batch_edit(request: Request, user: BillingUser) -> Response:
    form = await request.form()
    numbers = [str(n) for n in form.getlist("ext")]
    try:
        changes = changes_from(_form_values(form), batch=True)
        done = await extensions.edit_extensions(portal(request).ctx, numbers, changes)
    except BadRequest as exc:
        return await _refused(request, "batch_edit.html", numbers, form, exc)
    return redirect("/extensions", notice="batch_saved", n=len(done))


@router.get("/extensions/new", response_class=HTMLResponse)
async def new_extension_form(request: Request, user: BillingUser) -> Response:
    return await render(
        request,
        "extension_edit.html",
        {
            "extension": None,
            "values": {"credit_limit": "0", "payment": "prepaid"},
        },
    )


@router.post("/extensions/new", response_class=HTMLResponse)
async def add_extension(request: Request, user: BillingUser) -> Response:
    form = await request.form()
    number = str(form.get("extension") or "").strip()
    try:
        extensions.check_number(number)
        await extensions.show_extension(portal(request).ctx, number)
    except BadRequest as exc:
        return await _edit_again(request, None, form, exc)
    except UnknownExtension:
        return await save_extension(request, number, form, None)
    return await _edit_again(
        request, None, form, BadRequest(f"extension: {number} already exists", field="extension")
    )


@router.get("/extensions/{number}/edit", response_class=HTMLResponse)
async def edit_form(request: Request, user: BillingUser, number: str) -> Response:
    view = await extensions.show_extension(portal(request).ctx, number)
    return await render(
        request,
        "extension_edit.html",
        {
            "extension": view,
            "values": {
                "name": view.name,
                "billing": "on" if view.billing else "",
                "credit_limit": str(view.credit_limit),
                "payment": view.payment,
                "locked": "locked" if view.locked else "unlocked",
                **{name: "" if getattr(view, name) is None else str(getattr(view, name))
                   for name in extensions.CONTROLS},
            },
        },
    )


@router.post("/extensions/{number}/edit", response_class=HTMLResponse)
async def edit(request: Request, user: BillingUser, number: str) -> Response:
    view = await extensions.show_extension(portal(request).ctx, number)
    return await save_extension(request, number, await request.form(), view)


async def save_extension(
    request: Request, number: str, form: FormData, view: extensions.ExtensionView | None
) -> Response:
    try:
        changes = changes_from(_form_values(form), batch=False)
        await extensions.set_extension(portal(request).ctx, number, changes)
    except BadRequest as exc:
        return await _edit_again(request, view, form, exc)
    return redirect("/extensions", notice="saved")


async def _edit_again(
    request: Request, view: extensions.ExtensionView | None, form: FormData, exc: BadRequest
) -> Response:
    errors = field_errors(exc)
    if view is None and "extensions" in errors:  # the new extension's own number
        errors["extension"] = errors.pop("extensions")
    return await render(
        request,
        "extension_edit.html",
        {
            "extension": view,
            "values": _form_values(form),
            "errors": errors,
        },
        400,
    )
