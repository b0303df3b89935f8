"""The hot paths' statements, run straight on SQLite's stdlib driver.

The gate and settlement build every statement with SQLAlchemy Core, once, at import. Executing
one through a SQLAlchemy Connection costs some 30 µs of Python (an execution context, result
wrapping), several times what SQLite itself takes to run it, and the ledger thread runs a few
thousand a second. So `execute(session, statement, params)`:

- on the SQLite ledger thread (the stdlib driver, UnitOfWorkFactory.run): compiles the
  statement once per set of parameter names with SQLAlchemy's own compiler for the dialect,
  converts the parameters with the statement's own type processors (Money to stored units,
  datetimes to SQLite's text, booleans to 0/1), runs it on the raw sqlite3 connection inside
  the transaction SQLAlchemy began, and passes the rows through the columns' result
  processors — the same SQL and the same values SQLAlchemy would have sent and returned;
- anywhere else (PostgreSQL, the async driver): plain `Connection.execute`.

Only what the hot paths need: no expanding IN, no SQL-side or callable defaults (a statement
that would need them is refused when first compiled, not silently run differently).
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

T = TypeVar("T")


class Rows:
    """The little of a CursorResult the hot paths use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def scalar_one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise ValueError("more than one row")
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0][0]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in positional order
    constants: Mapping[str, Any]  # values the statement carries itself (literals, defaults)
    bind: tuple[Callable[[Any], Any] | None, ...]
    row: Any  # a namedtuple class, or None for statements returning nothing
    result: tuple[Callable[[Any], Any] | None, ...]


_compiled: dict[tuple[ClauseElement, tuple[str, ...]], _Compiled] = {}
_DRIVER = "coobill.fast.driver"


def per_transaction(session: Session, key: str, build: Callable[[Session], T]) -> T:
    """`build(session)`, computed once per transaction of `session` (kept in session.info)."""
    transaction = session.get_transaction()
    known = session.info.get(key)
    if known is not None and transaction is not None and known[0] is transaction:
        return known[1]  # type: ignore[no-any-return]
    value = build(session)
    session.info[key] = (session.get_transaction(), value)
    return value


_KEPT = "coobill.fast.kept"


def kept(session: Session, key: str) -> Any:
    """What this transaction wrote under `key` with `keep` (None: nothing, or it was forgotten)."""
    known = session.info.get(_KEPT)
    if known is None or known[0] is not session.get_transaction():
        return None
    return known[1].get(key)


def keep(session: Session, key: str, value: Any) -> None:
    """Remember a row this transaction wrote, so that the transaction need not read it back.
    Forgotten with the transaction, and at a rollback to a savepoint (`forget_kept`): a
    statement rolled back may have written it."""
    known = session.info.get(_KEPT)
    transaction = session.get_transaction()
    if known is None or known[0] is not transaction:
        values: dict[str, Any] = {}
        known = session.info[_KEPT] = (transaction, values)
    known[1][key] = value


def forget_kept(session: Session) -> None:
    """After a ROLLBACK TO a savepoint: what was kept may be what was rolled back."""
    session.info.pop(_KEPT, None)


def _driver_of(session: Session) -> tuple[Any, Dialect]:
    """The stdlib sqlite3 connection under this transaction (None on other drivers)."""
    connection = session.connection()
    if connection.dialect.driver != "pysqlite":
        return None, connection.dialect
    return connection.connection.driver_connection, connection.dialect


def execute(session: Session, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
    """Run `statement` with `params` in the session's transaction; a Rows (ledger thread on
    SQLite) or a CursorResult (elsewhere), both answering first(), all(), scalar_one(),
    scalar_one_or_none() and rowcount."""
    driver, dialect = per_transaction(session, _DRIVER, _driver_of)
    if driver is None:
        return session.connection().execute(statement, params)  # type: ignore[call-overload]
    key = (statement, tuple(params))
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = _compiled[key] = _compile(statement, tuple(params), dialect)
    values = []
    for name, process in zip(compiled.names, compiled.bind, strict=True):
        value = params[name] if name in params else compiled.constants[name]
        values.append(process(value) if process is not None and value is not None else value)
    with raised_as_sqlalchemy_does(dialect, compiled.sql, values):
        cursor = driver.execute(compiled.sql, values)
        raw = cursor.fetchall() if compiled.row is not None else []
    if compiled.row is None:
        return Rows([], cursor.rowcount)
    rows = [
        compiled.row(
            *(p(v) if p is not None else v for p, v in zip(compiled.result, r, strict=True))
        )
        for r in raw
    ]
    return Rows(rows, cursor.rowcount)


@contextlib.contextmanager
def raised_as_sqlalchemy_does(dialect: Dialect, sql: str, values: Sequence[Any]) -> Iterator[None]:
    """A driver error raised as SQLAlchemy raises it: IntegrityError, OperationalError ...
    with the driver's error as .orig, so callers catch one family of exceptions whichever
    path ran the statement."""
    try:
        yield
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            sql, values, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error


def _compile(statement: ClauseElement, keys: tuple[str, ...], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names: Sequence[str] = compiled.positiontup or ()  # type: ignore[attr-defined]
    constants: dict[str, Any] = {}
    bind = []
    for name in names:
        parameter = compiled.binds[name]  # type: ignore[attr-defined]
        if name not in keys:
            constants[name] = _constant(statement, name, parameter)
        processor = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        bind.append(processor)
    columns = _returned(statement)
    if not columns:
        return _Compiled(compiled.string, tuple(names), constants, tuple(bind), None, ())
    row = namedtuple("Row", [key for key, _ in columns], rename=True)  # type: ignore[misc]
    result = tuple(
        type_.dialect_impl(dialect).result_processor(dialect, None) for _, type_ in columns
    )
    return _Compiled(compiled.string, tuple(names), constants, tuple(bind), row, result)


def _constant(statement: ClauseElement, name: str, parameter: Any) -> Any:
    """The value of a parameter the caller does not give: a literal in the statement, or an
    insert's scalar column default."""
    if isinstance(statement, Insert):
        column = statement.table.c.get(name)
        if column is not None and column.default is not None:
            if not column.default.is_scalar:
                raise ValueError(f"{name}: only scalar column defaults can be prepared")
            return column.default.arg  # type: ignore[attr-defined]  # a ScalarElementColumnDefault
        if column is not None:
            return None
    if parameter.required:
        raise ValueError(f"{name}: a parameter the statement needs was not given")
    return parameter.effective_value


def _returned(statement: ClauseElement) -> list[tuple[str, Any]]:
    """The statement's result columns (a SELECT's, or a DML statement's RETURNING)."""
    if getattr(statement, "is_select", False):
        columns = statement.selected_columns  # type: ignore[attr-defined]
    elif getattr(statement, "is_dml", False):
        columns = statement.exported_columns  # type: ignore[attr-defined]  # RETURNING
    else:
        raise ValueError("only SELECT, INSERT, UPDATE and DELETE statements can be prepared")
    return [(key, column.type) for key, column in columns.items()]
