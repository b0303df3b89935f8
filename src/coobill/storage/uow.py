"""The unit of work: one transaction around the ledger.

    async with uow_factory() as uow:
        ...
        await uow.commit()

Leaving the block without commit() rolls back; nothing is ever committed in a finally.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.session: AsyncSession
        self.committed = False

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed, and leaves what was loaded readable
        # (rollback() would expire it).
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
        self.committed = True

    async def rollback(self) -> None:
        await self.session.rollback()


class UnitOfWorkFactory:
    """Makes units of work on one engine; `dialect` tells services which locking to use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._sessions)

    async def dispose(self) -> None:
        await self.engine.dispose()
