"""The portal's pages, one module per page of the billing manual (and a few beyond it)."""

from coobill.web.pages import (
    extension_forms,
    extensions,
    fees,
    live,
    login,
    rates,
    records,
    settings,
    statistics,
    users,
    webhooks,
)

__all__ = ["ROUTERS"]

ROUTERS = (
    login.router,
    extensions.router,
    extension_forms.router,
    rates.router,
    records.router,
    statistics.router,
    settings.router,
    live.router,
    users.router,
    fees.router,
    webhooks.router,
)
