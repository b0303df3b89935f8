"""The portal's pages, one module per page of the billing manual (and a few beyond it)."""

from coobill.web.pages import (
    extension_forms,
    extensions,
    fees,
    holidays,
    live,
    login,
    rate_import,
    rates,
    records,
    settings,
    statements,
    statistics,
    users,
    webhooks,
)

__all__ = ["ROUTERS"]

ROUTERS = (
    login.router,
    extensions.router,
    extension_forms.router,
    rate_import.router,
    rates.router,
    holidays.router,
    records.router,
    statistics.router,
    settings.router,
    live.router,
    users.router,
    fees.router,
    statements.router,
    webhooks.router,
)
