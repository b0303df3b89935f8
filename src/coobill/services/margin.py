"""Buy rates and margin: what a call costs us on the trunk it leaves on, and the gate's
minimum margin.

A buy rate is a rate whose `trunk` is set (a trunk's endpoint name, or "*" for every trunk):
the carrier's price, matched on the dialled number and the trunk as a sell rate is matched on
the number and the caller (rating/book.py, the buy book). A call record keeps its buy cost
beside its sell cost; margin = sell - buy (services/reports).

The gate's check, when `billing.min_margin` is set and the dialplan names the trunk it will
dial (the optional third AGI argument): the sell price of the call's first minute must be at
least the buy price of that minute plus the margin, else DENY no_margin. A minute is the
unit both sides are compared in whatever their periods; with no buy rate for the trunk there
is nothing to compare and the call goes on to the funds' decision.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from coobill.rating import Rate, cost
from coobill.services.context import BillingContext
from coobill.services.rates import buy_book

MINUTE = 60


def buy_rate(ctx: BillingContext, session: Session, version: int, trunk: str, number: str,
             at: datetime) -> Rate | None:
    """The buy rate of `trunk` for `number` at local time `at`; None: none known."""
    if not trunk:
        return None
    return buy_book(ctx, session, version).select(trunk, number, at)


def below_margin(sell: Rate, buy: Rate | None, min_margin: Decimal | None) -> bool:
    """Whether a call at `sell` on a trunk charging `buy` earns less than the margin."""
    if min_margin is None or buy is None:
        return False
    return cost(sell.tariff, MINUTE) < cost(buy.tariff, MINUTE) + min_margin


def buy_cost(ctx: BillingContext, session: Session, version: int, trunk: str | None,
             number: str, at: datetime | None, billable_seconds: int) -> Decimal | None:
    """What an answered call cost on its trunk by the buy rate in force at its start; None
    when no buy rate is known for it."""
    if not trunk or at is None:
        return None
    found = buy_rate(ctx, session, version, trunk, number, at)
    return None if found is None else cost(found.tariff, billable_seconds)


__all__ = ["below_margin", "buy_cost", "buy_rate"]
