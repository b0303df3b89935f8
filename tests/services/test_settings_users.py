"""Billing settings kept in the ledger, and the portal's users."""

from __future__ import annotations

import pytest

from coobill.errors import BadRequest, UnknownUser
from coobill.services import users
from coobill.services.context import BillingContext
from coobill.services.settings import billing_settings, change_settings


class TestSettings:
    async def test_the_defaults_bill_in_us_dollars(self, ctx: BillingContext) -> None:
        current = await billing_settings(ctx)
        assert (current.billing_enabled, current.currency, current.currency_symbol) == (
            True, "USD", "US$",
        )
        assert current.timezone == "UTC"  # set by the fixture

    async def test_a_known_currency_brings_its_symbol(self, ctx: BillingContext) -> None:
        symbols = {"CNY": "¥", "eur": "€", "GBP": "£", "vnd": "₫", "USD": "US$"}
        for code, symbol in symbols.items():
            current = await change_settings(ctx, currency=code)
            assert (current.currency, current.currency_symbol) == (code.upper(), symbol)

    async def test_a_known_currency_may_be_given_another_symbol(self, ctx: BillingContext) -> None:
        current = await change_settings(ctx, currency="USD", symbol="$")
        assert current.currency_symbol == "$"

    async def test_another_currency_is_kept_with_its_symbol(self, ctx: BillingContext) -> None:
        for code, stored in (("other", "OTHER"), ("jpy", "JPY")):
            current = await change_settings(ctx, currency=code, symbol=" 円 ")
            assert (current.currency, current.currency_symbol) == (stored, "円")

    async def test_another_currency_without_a_symbol_is_refused(
        self, ctx: BillingContext
    ) -> None:
        with pytest.raises(BadRequest) as caught:
            await change_settings(ctx, currency="JPY")
        assert caught.value.field == "symbol"

    async def test_a_code_that_is_no_currency_is_refused(self, ctx: BillingContext) -> None:
        for code in ("US", "DOLLARS", "12$", ""):
            with pytest.raises(BadRequest) as caught:
                await change_settings(ctx, currency=code, symbol="x")
            assert caught.value.field == "currency", code
        assert (await billing_settings(ctx)).currency == "USD"

    async def test_the_symbol_alone_may_change_but_not_to_nothing(
        self, ctx: BillingContext
    ) -> None:
        assert (await change_settings(ctx, symbol="$")).currency_symbol == "$"
        with pytest.raises(BadRequest) as caught:
            await change_settings(ctx, symbol="  ")
        assert caught.value.field == "symbol"

    async def test_the_time_zone_and_billing_switch_are_kept(self, ctx: BillingContext) -> None:
        current = await change_settings(ctx, billing="off", timezone="Asia/Shanghai")
        assert (current.billing_enabled, current.timezone) == (False, "Asia/Shanghai")
        assert await billing_settings(ctx) == current

    async def test_a_bad_setting_is_refused_and_nothing_changes(
        self, ctx: BillingContext
    ) -> None:
        before = await billing_settings(ctx)
        cases: list[tuple[dict[str, str], str]] = [
            ({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": "../etc"}, "timezone"),
            ({"billing": "maybe"}, "billing"),
        ]
        for changes, field in cases:
            with pytest.raises(BadRequest) as caught:
                await change_settings(ctx, currency="EUR", **changes)
            assert caught.value.field == field, changes
        assert await billing_settings(ctx) == before

    async def test_every_caller_reads_the_same_settings_and_the_next_transaction_the_change(
        self, ctx: BillingContext
    ) -> None:
        """One function, wherever it is called from: its own read, an open unit of work, and
        a ledger-thread transaction (the gate's cached view) agree, and a change made
        meanwhile is what the next ledger transaction reads."""
        changed = await change_settings(ctx, currency="EUR", timezone="Asia/Shanghai")
        async with ctx.uow() as uow:
            in_unit = await billing_settings(uow)
        in_ledger_thread = await ctx.uow.run(billing_settings)
        assert (await billing_settings(ctx), in_unit, in_ledger_thread) == (changed,) * 3

        twice = await ctx.uow.run(lambda s: (billing_settings(s), billing_settings(s)))
        assert twice[0] is twice[1]  # read once per transaction
        await change_settings(ctx, billing="off")
        assert not (await ctx.uow.run(billing_settings)).billing_enabled


class TestUsers:
    async def test_an_added_user_can_log_in_with_the_password(self, ctx: BillingContext) -> None:
        added = await users.add_user(ctx, "alice", "correct horse", "billing")
        assert (added.name, added.role, added.language) == ("alice", "billing", "en")
        assert await users.authenticate(ctx, "alice", "correct horse") == added
        assert await users.get_user(ctx, added.id) == added
        assert await users.count_users(ctx) == 1

    async def test_a_wrong_password_or_unknown_name_does_not_log_in(
        self, ctx: BillingContext
    ) -> None:
        await users.add_user(ctx, "alice", "correct horse", "admin")
        assert await users.authenticate(ctx, "alice", "wrong horse") is None
        assert await users.authenticate(ctx, "mallory", "correct horse") is None
        assert await users.authenticate(ctx, "alice", "") is None

    async def test_the_password_is_stored_hashed(self, ctx: BillingContext) -> None:
        from tests.services.conftest import rows

        await users.add_user(ctx, "alice", "correct horse", "admin")
        [(stored,)] = await rows(ctx, "SELECT password_hash FROM portal_user")
        assert "correct horse" not in stored
        assert stored.startswith("$argon2")

    async def test_a_second_user_of_the_same_name_is_refused(self, ctx: BillingContext) -> None:
        await users.add_user(ctx, "alice", "correct horse", "billing")
        with pytest.raises(BadRequest) as caught:
            await users.add_user(ctx, "alice", "another one", "admin")
        assert caught.value.field == "name"
        assert await users.count_users(ctx) == 1

    async def test_a_bad_user_is_refused_by_its_field(self, ctx: BillingContext) -> None:
        cases = [
            ("bob", "long enough", "root", "role"), ("bob", "short", "admin", "password"),
            ("bob smith", "long enough", "admin", "name"), ("", "long enough", "admin", "name"),
        ]
        for name, password, role, field in cases:
            with pytest.raises(BadRequest) as caught:
                await users.add_user(ctx, name, password, role)
            assert caught.value.field == field, (name, password, role)
        assert await users.count_users(ctx) == 0

    async def test_a_user_chooses_a_portal_language(self, ctx: BillingContext) -> None:
        added = await users.add_user(ctx, "alice", "correct horse", "billing")
        assert (await users.set_language(ctx, added.id, "zh")).language == "zh"
        with pytest.raises(BadRequest):
            await users.set_language(ctx, added.id, "fr")
        with pytest.raises(UnknownUser):
            await users.set_language(ctx, 404, "en")
