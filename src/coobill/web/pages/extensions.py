"""Extensions: the paged list, filtered by number or name, status and payment method."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from coobill.services import extension_listing
from coobill.web.auth import BillingUser, portal
from coobill.web.render import PAGE_SIZE, page_number, pages, query_without, render

router = APIRouter(include_in_schema=False)

@router.get("/extensions", response_class=HTMLResponse)
async def extension_list(
    request: Request,
    user: BillingUser,
    extension: str = "",
    status: str = "",
    payment: str = "",
    balance: str = "",
    page: str = "1",
) -> Response:
    wanted = page_number(page)
    views, total = await extension_listing.list_extensions(
        portal(request).ctx,
        locked=extension_listing.locked_filter(status),
        payment=payment or None,
        search=extension.strip() or None,
        low=extension_listing.low_filter(balance),
        offset=(wanted - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return await render(
        request,
        "extensions.html",
        {
            "rows": views,
            "filters": {"extension": extension, "status": status, "payment": payment,
                        "balance": balance},
            "paging": pages(total, wanted),
            "pager_query": query_without(request, "page", "notice", "n"),
        },
    )
