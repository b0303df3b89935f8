"""The ledger's engines: SQLite in WAL mode with foreign keys and queued writers; money columns
holding exact integer ten-thousandths on both databases."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from coobill.errors import BadRequest
from coobill.money import from_units, to_units
from coobill.services.context import BillingContext
from coobill.storage.db import create_engine
from coobill.storage.tables import Extension


class TestSqliteEngine:
    async def test_a_file_database_runs_in_wal_mode_with_foreign_keys(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", busy_timeout_ms=1234)
        try:
            async with engine.connect() as conn:
                pragmas = [
                    (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout")
                ]
        finally:
            await engine.dispose()
        assert pragmas == ["wal", 1, 1234]

    async def test_an_in_memory_database_is_one_database_for_every_session(self) -> None:
        engine = create_engine("sqlite+aiosqlite:///:memory:")
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
                await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            async with engine.connect() as conn:
                assert (await conn.exec_driver_sql("SELECT x FROM t")).scalar() == 1
        finally:
            await engine.dispose()

    async def test_two_writers_queue_instead_of_failing(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
                await conn.exec_driver_sql("INSERT INTO counter VALUES (0)")

            async def increment() -> None:
                async with engine.begin() as conn:
                    n = (await conn.exec_driver_sql("SELECT n FROM counter")).scalar_one()
                    await conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

            await asyncio.gather(*(increment() for _ in range(20)))
            async with engine.connect() as conn:
                assert (await conn.exec_driver_sql("SELECT n FROM counter")).scalar() == 20
        finally:
            await engine.dispose()


class TestMoney:
    @pytest.mark.parametrize(
        ("amount", "units"),
        [("0", 0), ("0.0001", 1), ("12.3456", 123456), ("-7.5", -75000),
         ("99999999999.9999", 999999999999999)],
    )
    def test_amounts_convert_to_units_and_back_exactly(self, amount: str, units: int) -> None:
        assert to_units(Decimal(amount)) == units
        assert from_units(units) == Decimal(amount)

    def test_an_amount_finer_than_a_ten_thousandth_is_never_rounded_into_a_column(self) -> None:
        with pytest.raises(BadRequest):
            to_units(Decimal("0.00005"))

    async def test_a_money_column_round_trips_exactly(self, ctx: BillingContext) -> None:
        async with ctx.uow() as uow:
            uow.session.add(
                Extension(number="100", name="", billing_enabled=True, payment="prepaid",
                          credit_limit=Decimal("0.0001"), balance=Decimal("-12345678.9876"),
                          total_recharged=Decimal("0"), locked=False,
                          created_at=ctx.clock().replace(tzinfo=None))
            )
            await uow.commit()
        async with ctx.uow() as uow:
            raw = (await uow.session.execute(
                text("SELECT balance, credit_limit FROM extension"))).one()
            ext = (await uow.session.execute(
                Extension.__table__.select())).one()
        assert tuple(raw) == (-123456789876, 1)
        assert (ext.balance, ext.credit_limit) == (Decimal("-12345678.9876"), Decimal("0.0001"))
