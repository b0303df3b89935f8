"""Attacks by concurrency (issue 13, item 4): two movers racing for one hold - a billing
user's release and a late Cdr's settlement, two daemons settling one channel - must move it
once. On PostgreSQL the two sides really run at once (two engines, two connections); on
SQLite they queue. (These held: kept as regression tests.)"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from coobill.errors import UnknownReservation
from coobill.services import reservations
from coobill.services.audit import audit
from coobill.services.commands import AuthorizeCall
from coobill.services.context import BillingContext
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.services.conftest import ended, make_extension, make_rate, other_daemon, rows  # noqa: F401

TRIALS = 30


async def reserved(ctx: BillingContext) -> int:
    [(units,)] = await rows(ctx, "SELECT reserved FROM extension WHERE number = '100'")
    return int(units)


async def open_holds(ctx: BillingContext) -> int:
    [(units,)] = await rows(ctx, "SELECT coalesce(sum(amount), 0) FROM reservation "
                            "WHERE state IN ('held', 'flagged')")
    return int(units)


class TestOneHoldTwoMovers:
    async def test_a_release_racing_a_late_cdr_moves_the_hold_once(
        self, ctx: BillingContext, other_daemon: BillingContext  # noqa: F811
    ) -> None:
        await make_extension(ctx, "100", balance="100")
        await make_rate(ctx, "00")
        for i in range(TRIALS):
            uid = f"r{i}"
            assert (await authorize_call(ctx, AuthorizeCall(uid, "100", "0012345678"))).allowed
            await reservations.reconcile(ctx, set(), asked_at=None)  # flagged
            outcome = await asyncio.gather(
                reservations.release(ctx, uid),
                settle_channel(other_daemon, ended(uid, billsec=61).as_channel()),
                return_exceptions=True)
            assert not isinstance(outcome[1], BaseException), outcome
            assert outcome[0] is None or isinstance(outcome[0], Decimal | UnknownReservation), \
                outcome
            assert await reserved(ctx) == await open_holds(ctx) == 0, (i, outcome)
        report = await audit(ctx)
        assert report.ok, report.problems

    async def test_two_daemons_settling_one_channel_charge_it_once(
        self, ctx: BillingContext, other_daemon: BillingContext  # noqa: F811
    ) -> None:
        await make_extension(ctx, "100", balance="100")
        await make_rate(ctx, "00")
        for i in range(TRIALS):
            uid = f"d{i}"
            assert (await authorize_call(ctx, AuthorizeCall(uid, "100", "0012345678"))).allowed
            cmd = ended(uid, billsec=61).as_channel()
            await asyncio.gather(settle_channel(ctx, cmd), settle_channel(other_daemon, cmd))
        debits = await rows(ctx, "SELECT count(*), coalesce(sum(amount), 0) FROM ledger_entry "
                            "WHERE kind = 'call_debit'")
        assert debits == [(TRIALS, -1500 * TRIALS)]
        assert await reserved(ctx) == 0
        assert (await audit(ctx)).ok


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")


class TestTheChainWrittenByTwoDaemons:
    async def test_entries_written_at_once_by_two_daemons_keep_one_chain(
        self, ctx: BillingContext, other_daemon: BillingContext  # noqa: F811
    ) -> None:
        """Recharges and call debits of two extensions from two daemons at once: the chain's
        head is locked per entry, so ids follow the chain and the audit verifies it."""
        from coobill.services import balances

        await make_extension(ctx, "100", balance="1000")
        await make_extension(ctx, "101", balance="1000")
        await make_rate(ctx, "00")
        work = []
        for i in range(20):
            for daemon, ext in ((ctx, "100"), (other_daemon, "101")):
                uid = f"{ext}-{i}"
                assert (await authorize_call(daemon, AuthorizeCall(uid, ext, "0012345678"))).allowed
                work.append(settle_channel(daemon, ended(uid, extension=ext,
                                                         billsec=61).as_channel()))
                work.append(balances.recharge(daemon, [ext], "0.01"))
        await asyncio.gather(*work)
        report = await audit(ctx)
        assert report.ok, report.problems[:3]
