"""The ledger repository's statements run straight on SQLite's driver (storage/_fast.py,
private to storage/ledger_repo/): the same SQL, the same stored values and the same results
as SQLAlchemy's own execution, the same exceptions, and statements it cannot run faithfully
refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coobill.storage import _fast as fast
from coobill.storage import schema
from coobill.storage.db import create_engine
from coobill.storage.tables import Call, Extension, Reservation
from coobill.storage.uow import UnitOfWorkFactory

_extension = Extension.__table__
_reservation = Reservation.__table__
_call = Call.__table__

HOLD = {
    "uniqueid": "1795610072.0", "token": "t1", "extension_id": 1, "extension_number": "100",
    "number": "9138000001", "channel": "PJSIP/100-00000000", "amount": Decimal("1.2345"),
    "billed": True, "limit_seconds": 600, "rate_id": None, "tariff": "0/0/0.01/1",
    "rate_label": "#1 9 mobile", "state": "held", "pbx": "", "note": "", "closed_at": None,
    "created_at": datetime(2026, 11, 25, 12, 34, 32, 123456),
}
ROW = select(*_reservation.c).where(_reservation.c.uniqueid == bindparam("uniqueid"))


@pytest.fixture
async def factory(tmp_path: Path) -> AsyncIterator[UnitOfWorkFactory]:
    factory = UnitOfWorkFactory(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"))
    await schema.upgrade(factory.engine)
    async with factory.engine.begin() as conn:
        await conn.execute(insert(_extension).values(
            number="100", name="Alice", created_at=datetime(2026, 11, 25)))
    yield factory
    await factory.dispose()


async def both_ways(
    factory: UnitOfWorkFactory, statement: Any, params: dict[str, Any]
) -> tuple[Any, Any]:
    """The statement's rows through fast.execute on the ledger thread, and through
    SQLAlchemy on the async driver; each in a transaction rolled back afterwards."""

    def on_ledger(session: Session) -> list[Any]:
        rows = [tuple(r) for r in fast.execute(session, statement, params).all()]
        session.rollback()
        return rows

    fast_rows = await factory.run(on_ledger)
    async with factory() as uow:
        sqlalchemy_rows = [tuple(r) for r in (await uow.session.execute(statement, params)).all()]
    return fast_rows, sqlalchemy_rows


class TestFastStatements:
    async def test_it_runs_on_the_driver_on_the_ledger_thread_and_through_sqlalchemy_elsewhere(
        self, factory: UnitOfWorkFactory
    ) -> None:
        def kind(session: Session) -> str:
            return type(fast.execute(session, select(_extension.c.id), {})).__name__

        assert await factory.run(kind) == "Rows"
        async with factory() as uow:
            assert await uow.session.run_sync(kind) == "CursorResult"

    async def test_an_insert_stores_what_sqlalchemy_would_and_reads_back_alike(
        self, factory: UnitOfWorkFactory
    ) -> None:
        def write(session: Session) -> None:
            fast.execute(session, insert(_reservation), HOLD)

        await factory.run(write)
        fast_rows, sqlalchemy_rows = await both_ways(factory, ROW, {"uniqueid": HOLD["uniqueid"]})
        assert fast_rows == sqlalchemy_rows
        row = dict(zip(_reservation.c.keys(), fast_rows[0], strict=True))
        assert (row["amount"], row["billed"], row["created_at"]) == (
            Decimal("1.2345"),
            True,
            HOLD["created_at"],
        )
        async with factory.engine.connect() as conn:  # the stored forms: units, 0/1, text
            raw = (
                await conn.exec_driver_sql("SELECT amount, billed, created_at FROM reservation")
            ).one()
        assert tuple(raw) == (12345, 1, "2026-11-25 12:34:32.123456")

    async def test_column_defaults_fill_what_an_insert_leaves_out(
        self, factory: UnitOfWorkFactory
    ) -> None:
        def write(session: Session) -> None:
            fast.execute(
                session,
                insert(_call),
                {
                    "uniqueid": "u1",
                    "caller_extension": "100",
                    "dialled_number": "9138",
                    "disposition": "ANSWERED",
                },
            )

        await factory.run(write)
        fast_rows, sqlalchemy_rows = await both_ways(
            factory, select(_call.c.caller_name, _call.c.cost, _call.c.gated, _call.c.evidence), {}
        )
        assert fast_rows == sqlalchemy_rows == [("", Decimal(0), True, "cdr")]

    async def test_returning_and_rowcount(self, factory: UnitOfWorkFactory) -> None:
        statement = (
            update(_extension)
            .where(_extension.c.number == bindparam("n"))
            .values(
                reserved=_extension.c.reserved + bindparam("a", type_=_extension.c.reserved.type)
            )
            .returning(_extension.c.reserved, _extension.c.billing_enabled)
        )

        def hold(session: Session) -> tuple[Any, int, int]:
            result = fast.execute(session, statement, {"n": "100", "a": Decimal("0.5")})
            missing = fast.execute(session, statement, {"n": "999", "a": Decimal("1")})
            return tuple(result.first()), result.rowcount, missing.rowcount

        assert await factory.run(hold) == ((Decimal("0.5"), False), 1, 0)

    async def test_a_constraint_failure_is_sqlalchemys_integrity_error(
        self, factory: UnitOfWorkFactory
    ) -> None:
        def twice(session: Session) -> None:
            fast.execute(session, insert(_reservation), HOLD)
            fast.execute(session, insert(_reservation), HOLD)

        with pytest.raises(IntegrityError):
            await factory.run(twice)

    def test_a_callable_default_is_refused_rather_than_run_differently(self) -> None:
        table = Table(
            "t",
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("tag", String, default=lambda: "computed"),
        )

        from sqlalchemy.dialects import sqlite

        with pytest.raises(ValueError, match="only scalar column defaults"):
            fast._compile(insert(table), ("id",), sqlite.dialect())
