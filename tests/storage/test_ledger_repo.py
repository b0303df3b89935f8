"""The ledger repository's hold operations, on SQLite (the ledger thread) and PostgreSQL: a
hold is taken only while the funds cover it, closing gives back exactly what it held and only
once, a shrink that lost a race moves nothing, and only a held hold is flagged."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from coobill.services import balances, extensions
from coobill.services.context import BillingContext
from coobill.storage import ledger_repo

AT = datetime(2026, 11, 25, 12, 0)


def hold_row(token: str) -> dict[str, Any]:
    return {"token": token, "uniqueid": f"u-{token}", "extension_number": "100",
            "number": "9138000001", "channel": "PJSIP/100-1", "billed": True,
            "limit_seconds": 60, "rate_id": None, "tariff": "0/0/0.01/1", "rate_label": "",
            "pbx": "", "created_at": AT}


async def ledger_with_funds(ctx: BillingContext, amount: str) -> int:
    await extensions.set_extension(ctx, "100", extensions.ExtensionChanges(billing=True))
    await balances.recharge(ctx, ["100"], amount)
    return int((await ctx.uow.run(lambda s: ledger_repo.gate_view(s, "100"))).id)


def reserved(session: Session) -> Decimal:
    return Decimal(ledger_repo.gate_view(session, "100").reserved)


class TestHolds:
    async def test_a_hold_is_taken_only_while_the_funds_cover_it(self, ctx: BillingContext) -> None:
        ext = await ledger_with_funds(ctx, "10")

        def take(token: str, amount: str) -> Any:
            return lambda s: ledger_repo.take_hold(s, extension_id=ext, amount=Decimal(amount),
                                                   **hold_row(token))

        assert isinstance(await ctx.uow.run(take("a", "6")), int)
        assert await ctx.uow.run(take("b", "5")) is None  # 4 left
        assert await ctx.uow.run(reserved) == Decimal("6")

    async def test_closing_gives_back_what_the_hold_held_and_only_once(
        self, ctx: BillingContext
    ) -> None:
        ext = await ledger_with_funds(ctx, "10")
        hold = await ctx.uow.run(lambda s: ledger_repo.take_hold(
            s, extension_id=ext, amount=Decimal("3"), **hold_row("a")))

        def close(session: Session) -> Any:
            return ledger_repo.close_hold(session, hold, "released", at=AT, note="")

        assert await ctx.uow.run(close) == (ext, Decimal("3"))
        assert await ctx.uow.run(close) is None
        assert await ctx.uow.run(reserved) == Decimal("0")

    async def test_a_shrink_that_lost_a_race_moves_nothing_and_a_flag_needs_a_held_hold(
        self, ctx: BillingContext
    ) -> None:
        ext = await ledger_with_funds(ctx, "10")
        hold = await ctx.uow.run(lambda s: ledger_repo.take_hold(
            s, extension_id=ext, amount=Decimal("3"), **hold_row("a")))
        assert not await ctx.uow.run(lambda s: ledger_repo.shrink_hold(
            s, hold, was=Decimal("2"), to=Decimal("1")))
        assert await ctx.uow.run(lambda s: ledger_repo.shrink_hold(
            s, hold, was=Decimal("3"), to=Decimal("1")))
        assert await ctx.uow.run(reserved) == Decimal("1")
        assert await ctx.uow.run(lambda s: ledger_repo.flag_hold(s, hold, "gone"))
        assert not await ctx.uow.run(lambda s: ledger_repo.flag_hold(s, hold, "again"))
        closed = await ctx.uow.run(lambda s: ledger_repo.close_hold_by_token(
            s, "a", "undone", at=AT, note=""))
        assert closed == (hold, ext, Decimal("1"))
