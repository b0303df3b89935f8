"""The JSON API under /api: the same operations as the pages, documented at /openapi.json."""

from coobill.web.api import billing, extensions, holidays, rates, records, session

__all__ = ["ROUTERS"]

ROUTERS = (session.router, extensions.router, rates.router, holidays.router, records.router,
           billing.router)
