"""Migrations: an empty database goes to head and back to nothing, on SQLite and PostgreSQL,
and the schema they build is the one the models describe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, bindparam, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.errors import SchemaOutOfDate
from coobill.services.audit import audit
from coobill.services.ledger_seal import open_ledger, seal_entries_from_before_the_seal
from coobill.storage import schema
from coobill.storage.db import create_engine
from coobill.storage.tables import Base
from coobill.storage.uow import UnitOfWorkFactory
from tests.conftest import BACKENDS, drop_pg_schema, make_pg_schema, pg_engine

TABLES = {"call", "extension", "fee", "holiday", "ledger_entry", "ledger_head", "portal_session",
          "portal_user", "rate", "recharge", "refused_call", "reservation", "setting",
          "webhook_event"}


@pytest.fixture(params=BACKENDS)
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with no tables at all."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
    else:
        url, name = await make_pg_schema()
        engine = pg_engine(url, name)
        try:
            yield engine
        finally:
            await engine.dispose()
            await drop_pg_schema(name)


# Migration 0006's keyword index: an FTS5 table and its shadow tables on SQLite, pg_trgm's
# GIN indexes on PostgreSQL; not in the models (SQLAlchemy does not reflect them).
KEYWORD_INDEX = ("call_search", "ix_call_caller_extension_trgm", "ix_call_caller_name_trgm",
                 "ix_call_dialled_number_trgm")


def _keyword_index(name: str | None) -> bool:
    return bool(name) and any(name == n or name.startswith(n + "_") for n in KEYWORD_INDEX)  # type: ignore[union-attr]


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return {n for n in names if not _keyword_index(n)}


async def differences(engine: AsyncEngine) -> list[object]:
    def compare(connection: Any) -> list[object]:
        context = MigrationContext.configure(connection, opts={
            "include_name": lambda name, kind, parent: not _keyword_index(name)})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


class TestMigrations:
    async def test_an_empty_database_upgrades_to_head(self, empty_engine: AsyncEngine) -> None:
        assert await schema.current_revision(empty_engine) is None
        await schema.upgrade(empty_engine)
        assert await schema.current_revision(empty_engine) == schema.head_revision()
        assert await table_names(empty_engine) == TABLES | {"alembic_version"}
        await schema.require_head(empty_engine)

    async def test_the_migrated_schema_is_the_one_the_models_describe(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        assert await differences(empty_engine) == []

    async def test_head_downgrades_to_nothing_and_upgrades_again(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        await schema.downgrade(empty_engine, "base")
        assert await schema.current_revision(empty_engine) is None
        assert await table_names(empty_engine) <= {"alembic_version"}
        await schema.upgrade(empty_engine)
        assert await schema.current_revision(empty_engine) == schema.head_revision()
        assert await differences(empty_engine) == []

    async def test_upgrading_a_database_at_head_changes_nothing(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        await schema.upgrade(empty_engine)
        assert await schema.current_revision(empty_engine) == schema.head_revision()


class TestALedgerFromBeforeHoldsHadTheirOwnLife:
    """Migration 0004 on a ledger with data: a live call's hold, a settled call and its debit
    keep their meaning; the entries are sealed when a daemon first opens it with its key."""

    async def test_holds_calls_and_debits_come_through_and_the_audit_passes(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine, "0003")
        async with empty_engine.begin() as conn:
            for sql in (
                "INSERT INTO extension (id, number, name, billing_enabled, payment, credit_limit,"
                " balance, total_recharged, reserved, locked, created_at) VALUES (1, '100', '',"
                " true, 'prepaid', 0, 49000, 0, 60000, false, '2026-11-01 00:00:00')",
                "INSERT INTO ledger_entry (extension_id, kind, amount, balance_after, reference,"
                " who, created_at) VALUES (1, 'adjustment', 50000, 50000, NULL, 'x',"
                " '2026-11-01 00:00:00')",
                "INSERT INTO call (id, uniqueid, caller_extension, caller_name, dialled_number,"
                " billable_seconds, trunk, rate_id, rate_label, cost, disposition, gated,"
                " evidence) VALUES (7, 'c1', '100', '', '900', 60, '', NULL, '', 10000,"
                " 'ANSWERED', true, 'cdr')",
                "INSERT INTO ledger_entry (extension_id, kind, amount, balance_after, reference,"
                " who, created_at) VALUES (1, 'call_debit', -10000, 40000, 'c1', '',"
                " '2026-11-01 00:01:00')",
                "INSERT INTO ledger_entry (extension_id, kind, amount, balance_after, reference,"
                " who, created_at) VALUES (1, 'adjustment', 9000, 49000, NULL, 'x',"
                " '2026-11-01 00:02:00')",
                "INSERT INTO reservation (uniqueid, extension_id, extension_number, number,"
                " channel, amount, billed, limit_seconds, rate_id, tariff, rate_label, pbx,"
                " state, note, created_at) VALUES ('c2', 1, '100', '900', '', 60000, true, 600,"
                " NULL, '0/0/0.01/1', '', 'p', 'held', '', '2026-11-01 00:03:00')",
            ):
                await conn.execute(text(sql))
        await schema.upgrade(empty_engine)
        async with empty_engine.connect() as conn:
            refs = (await conn.execute(text(
                "SELECT reference FROM ledger_entry WHERE kind = 'call_debit'"))).scalars().all()
            holds = (await conn.execute(text("SELECT token, state FROM reservation"))).all()
        assert refs == ["call:7"]
        assert [tuple(h) for h in holds] == [("legacy-1", "held")]
        ctx = bootstrap(Settings(database={"url": str(empty_engine.url)}),
                        uow=UnitOfWorkFactory(empty_engine, ledger_key=b"k" * 32))
        await seal_entries_from_before_the_seal(ctx)
        await open_ledger(ctx)
        report = await audit(ctx)
        assert report.ok, report.problems


class TestRatesBeyondTheApplianceMigration:
    """Migration 0007 on a ledger with a rate and a call: forward the rate applies every day,
    at any date, unsplit, as a sell rate; back again the rows are as they were and the call
    search's triggers (0006) still keep the keyword index."""

    async def test_rates_and_calls_come_through_both_ways(self, empty_engine: AsyncEngine) -> None:
        await schema.upgrade(empty_engine, "0006")
        async with empty_engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO rate (id, enabled, remark, prefix, number_length, initial_cost,"
                " initial_seconds, rate, period_seconds, start_time, end_time, extensions,"
                " created_at) VALUES (1, true, 'x', '9', 0, 2000, 60, 1000, 55, '00:00',"
                " '23:59', '*', '2026-11-01 00:00:00')"))
            await conn.execute(text(
                "INSERT INTO call (id, uniqueid, caller_extension, caller_name, dialled_number,"
                " billable_seconds, trunk, rate_label, cost, disposition, gated, evidence)"
                " VALUES (7, 'c1', '100', '', '900', 60, 't1', '', 10000, 'ANSWERED', true,"
                " 'cdr')"))
        await schema.upgrade(empty_engine, "0007")
        async with empty_engine.connect() as conn:
            rate = (await conn.execute(text(
                "SELECT days, holidays, valid_from, valid_until, split, trunk FROM rate"))).one()
            buy = (await conn.execute(text("SELECT buy_cost FROM call"))).scalar()
        assert tuple(rate) == ("", "any", None, None, False, None)
        assert buy is None
        await schema.downgrade(empty_engine, "0006")
        assert "holiday" not in await table_names(empty_engine)
        async with empty_engine.begin() as conn:
            rate = (await conn.execute(text("SELECT * FROM rate"))).mappings().one()
            assert "days" not in rate
            assert rate["rate"] == 1000
            await conn.execute(text("UPDATE call SET dialled_number = '955' WHERE id = 7"))
        assert await schema.current_revision(empty_engine) == "0006"
        if empty_engine.dialect.name == "sqlite":
            async with empty_engine.connect() as conn:
                found = (await conn.execute(text(
                    "SELECT rowid FROM call_search WHERE call_search MATCH '\"955\"'"))).all()
            assert [tuple(r) for r in found] == [(7,)]

    async def test_back_from_head_no_rate_charges_what_it_never_meant_to(
        self, empty_engine: AsyncEngine
    ) -> None:
        """Down from head through 0008, 0009 and 0007: a buy rate would sell calls and a
        weekend or dated rate apply every day; the first goes, the others are disabled. A
        rate in force now, and every day, stays as it was."""
        await schema.upgrade(empty_engine)
        async with empty_engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO setting (key, value) VALUES ('timezone', 'Asia/Shanghai')"))
            for rate_id, days, holidays, valid_from, valid_until, trunk in (
                (1, "", "any", None, None, None),  # the plain rate
                (2, "", "any", "2020-01-01 00:00:00", None, None),  # a deck in force now
                (3, "sat,sun", "any", None, None, None),
                (4, "", "only", None, None, None),
                (5, "", "any", "2999-01-01 00:00:00", None, None),  # a deck still to come
                (6, "", "any", None, "2020-01-01 00:00:00", None),  # an ended deck
                (7, "", "any", None, None, "carrier-a"),  # a buy rate
            ):
                await conn.execute(text(
                    "INSERT INTO rate (id, enabled, remark, prefix, number_length, initial_cost,"
                    " initial_seconds, rate, period_seconds, start_time, end_time, extensions,"
                    " created_at, days, holidays, valid_from, valid_until, split, trunk)"
                    " VALUES (:id, true, 'x', '9', 0, 0, 0, 1000, 60, '00:00', '23:59', '*',"
                    " '2026-11-01 00:00:00', :days, :holidays, :valid_from, :valid_until,"
                    " false, :trunk)"
                ).bindparams(
                    bindparam("valid_from", type_=DateTime()),
                    bindparam("valid_until", type_=DateTime()),
                ), {"id": rate_id, "days": days, "holidays": holidays, "trunk": trunk,
                    "valid_from": valid_from and datetime.fromisoformat(valid_from),
                    "valid_until": valid_until and datetime.fromisoformat(valid_until)})
        await schema.downgrade(empty_engine, "0006")
        async with empty_engine.connect() as conn:
            left = (await conn.execute(text("SELECT id, enabled FROM rate ORDER BY id"))).all()
        assert [(i, bool(on)) for i, on in left] == [
            (1, True), (2, True), (3, False), (4, False), (5, False), (6, False)]
        await schema.upgrade(empty_engine)
        assert await differences(empty_engine) == []


class TestCallsIndexedAfterSettlementMigration:
    """Migration 0010 (SQLite's keyword index): forward, the calls 0006's trigger indexed are
    up to the mark and a new call waits for the indexer; back, the calls not taken in yet go
    into the index and the trigger keeps it again. PostgreSQL's pg_trgm is left as it was."""

    async def test_the_index_is_whole_both_ways(self, empty_engine: AsyncEngine) -> None:
        sqlite = empty_engine.dialect.name == "sqlite"
        await schema.upgrade(empty_engine, "0008")
        await self._call(empty_engine, 7, "9551")
        await schema.upgrade(empty_engine, "0010")
        assert ("call_search_mark" in await _all_tables(empty_engine)) == sqlite
        if sqlite:
            assert await self._mark(empty_engine) == 7
            assert await self._indexed(empty_engine, "9551") == [7]
        await self._call(empty_engine, 8, "9552")
        if sqlite:
            assert await self._indexed(empty_engine, "9552") == []  # the indexer's to take
        await schema.downgrade(empty_engine, "0008")
        await self._call(empty_engine, 9, "9553")
        if sqlite:
            assert "call_search_mark" not in await _all_tables(empty_engine)
            for number, call in (("9551", 7), ("9552", 8), ("9553", 9)):
                assert await self._indexed(empty_engine, number) == [call]
        await schema.upgrade(empty_engine)
        assert await differences(empty_engine) == []
        if sqlite:
            assert await self._mark(empty_engine) == 9

    @staticmethod
    async def _call(engine: AsyncEngine, call_id: int, number: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO call (id, pbx, uniqueid, leg, caller_extension, caller_name,"
                " dialled_number, billable_seconds, trunk, rate_label, cost, disposition,"
                " gated, evidence) VALUES (:id, 'vm', :uid, '', '100', '', :number, 60, 't1',"
                " '', 10000, 'ANSWERED', true, 'cdr')"),
                {"id": call_id, "uid": f"c{call_id}", "number": number})

    @staticmethod
    async def _mark(engine: AsyncEngine) -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT indexed_up_to FROM call_search_mark"))).scalar_one())

    @staticmethod
    async def _indexed(engine: AsyncEngine, number: str) -> list[int]:
        async with engine.connect() as conn:
            return list((await conn.execute(text(
                "SELECT rowid FROM call_search WHERE call_search MATCH :phrase"),
                {"phrase": f'"{number}"'})).scalars())


async def _all_tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


class TestSchemaCheck:
    async def test_the_daemon_refuses_an_empty_database(self, empty_engine: AsyncEngine) -> None:
        with pytest.raises(SchemaOutOfDate) as caught:
            await schema.require_head(empty_engine)
        assert "coobill migrate" in str(caught.value)

    async def test_the_daemon_refuses_a_database_downgraded_below_head(
        self, empty_engine: AsyncEngine
    ) -> None:
        await schema.upgrade(empty_engine)
        await schema.downgrade(empty_engine, "base")
        with pytest.raises(SchemaOutOfDate):
            await schema.require_head(empty_engine)
