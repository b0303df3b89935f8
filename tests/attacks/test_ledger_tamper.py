"""Attacks on the ledger's tamper evidence (issue 13, item 9): a rewrite of the database
alone, without the key file, must never pass `coobill audit`."""

from __future__ import annotations

from sqlalchemy import text

from coobill.services.audit import audit
from coobill.services.context import BillingContext
from tests.cli.conftest import Coobill, in_ledger, ok
from tests.services.conftest import authorize, ended, make_extension, make_rate, rows, settle


async def execute(ctx: BillingContext, *sql: str, **params: object) -> None:
    async with ctx.uow() as uow:
        for statement in sql:
            await uow.session.execute(text(statement), params)
        await uow.commit()


async def three_calls(ctx: BillingContext) -> None:
    await make_extension(ctx, "100", balance="20")
    await make_rate(ctx, "00", initial_cost="0.10", initial_time=60, rate="0.05", period=60)
    for uid in ("c1", "c2", "c3"):
        await authorize(ctx, uid)
        await settle(ctx, ended(uid, billsec=600))


class TestTheHeadsSeal:
    async def test_the_last_calls_erased_with_a_blank_head_seal_are_found(
        self, ctx: BillingContext
    ) -> None:
        """Erase the newest call and its debit, give the balance back, and rewrite the chain's
        head to end at the entry before, with an empty `mac` - the value migration 0004 gives
        a new head. audit._chain only checks the head's seal `if head.mac`, and the rest of the
        head then agrees with the shortened chain: the call is gone without a trace."""
        await three_calls(ctx)
        [(debit_id, amount, ext_id)] = await rows(
            ctx, "SELECT id, amount, extension_id FROM ledger_entry ORDER BY id DESC LIMIT 1")
        await execute(
            ctx,
            "DELETE FROM ledger_entry WHERE id = :d",
            "DELETE FROM call WHERE uniqueid = 'c3'",
            "UPDATE reservation SET state = 'released' WHERE uniqueid = 'c3'",
            "UPDATE extension SET balance = balance - :a WHERE id = :e",
            d=debit_id, a=amount, e=ext_id)
        [(last_id, last_mac, count)] = await rows(
            ctx, "SELECT max(id), (SELECT mac FROM ledger_entry ORDER BY id DESC LIMIT 1), "
            "count(*) FROM ledger_entry")
        await execute(
            ctx, "UPDATE ledger_head SET last_entry_id = :i, last_mac = :m, entries = :n, "
            "mac = '' WHERE id = 1", i=last_id, m=last_mac, n=count)
        report = await audit(ctx)
        assert not report.ok, "a call and its debit erased from the ledger's end passed the audit"

    async def test_a_wiped_ledger_with_the_migrations_head_is_found(
        self, ctx: BillingContext
    ) -> None:
        """Every entry, call and recharge deleted, balances zeroed, the head put back as
        migration 0004 wrote it (0, '', 0, ''): nothing says a ledger ever existed."""
        await three_calls(ctx)
        await execute(
            ctx,
            "DELETE FROM ledger_entry", "DELETE FROM call", "DELETE FROM recharge",
            "DELETE FROM reservation", "UPDATE extension SET balance = 0, reserved = 0",
            "UPDATE ledger_head SET last_entry_id = 0, last_mac = '', entries = 0, mac = ''")
        report = await audit(ctx)
        assert not report.ok, "a ledger wiped whole passed the audit"


class TestResealing:
    def test_a_forged_ledger_is_not_sealed_by_the_next_command(
        self, seeded: str, coobill: Coobill
    ) -> None:
        """Raise a balance and its recharge by 1000, make the chain look like a ledger from
        before migration 0004 (no seals, no key fingerprint), and run `coobill audit`: every
        command opens the ledger first (cli.commands.dispatch -> open_ledger), which trusts
        an unsealed ledger on first use and seals the forgery with the real key, then the
        audit passes."""

        async def forge(ctx: BillingContext) -> None:
            await execute(
                ctx,
                "UPDATE ledger_entry SET amount = amount + 10000000, "
                "balance_after = balance_after + 10000000 WHERE kind = 'recharge' AND "
                "extension_id = (SELECT id FROM extension WHERE number = '101')",
                "UPDATE recharge SET amount = amount + 10000000, "
                "balance_after = balance_after + 10000000 WHERE extension_id = "
                "(SELECT id FROM extension WHERE number = '101')",
                "UPDATE extension SET balance = balance + 10000000 WHERE number = '101'",
                "UPDATE ledger_entry SET mac = NULL",
                "DELETE FROM setting WHERE key = 'ledger_key_fingerprint'",
            )

        assert ok(coobill("audit")).out.startswith("audit ok")
        in_ledger(forge)
        result = coobill("audit")
        assert result.code == 1, f"the forged ledger was sealed and passed: {result.out!r}"


class TestWhoseMoneyItIs:
    async def test_two_extensions_swapping_numbers_is_found(self, ctx: BillingContext) -> None:
        """The seals cover an entry's extension *id*, not the extension it is to the world
        (its number): swap the numbers of a rich extension and a poor one - and the unsealed
        call records' caller_extension with them - and every balance, entry, seal and
        cross-check still agrees. Extension 101 now owns the 50.00 recharged into 100."""
        await make_extension(ctx, "100", balance="50")
        await make_extension(ctx, "101", balance="1")
        await make_rate(ctx, "00", initial_cost="0.10", initial_time=60, rate="0.05", period=60)
        for uid, ext in (("c1", "100"), ("c2", "101")):
            await authorize(ctx, uid, ext)
            await settle(ctx, ended(uid, extension=ext, billsec=90))
        assert (await audit(ctx)).ok
        await execute(
            ctx,
            "UPDATE extension SET number = 'tmp' WHERE number = '100'",
            "UPDATE extension SET number = '100' WHERE number = '101'",
            "UPDATE extension SET number = '101' WHERE number = 'tmp'",
            "UPDATE call SET caller_extension = CASE caller_extension WHEN '100' THEN '101' "
            "ELSE '100' END",
            "UPDATE reservation SET extension_number = CASE extension_number WHEN '100' "
            "THEN '101' ELSE '100' END",
        )
        [(balance,)] = await rows(ctx, "SELECT balance FROM extension WHERE number = '101'")
        assert int(balance) > 10 * 10000  # the forgery took
        report = await audit(ctx)
        assert not report.ok, "the balances of two extensions were swapped undetected"
