"""The SQLite ledger thread: every hot-path unit of work runs here, several to a transaction.

SQLite has one writer at a time, and most of a short transaction's cost is its begin and
commit, not its few statements. So the thread takes every unit of work queued when it comes
round (up to `MAX_BATCH`), runs them one after another in ONE transaction, each inside a
SAVEPOINT of its own, and commits once — group commit:

- A unit that raises (a duplicate settlement's IntegrityError, say) rolls back to its
  savepoint alone; the others in the transaction keep their writes. A unit's ORM writes are
  flushed inside its savepoint, and what it loaded is let go before the next unit runs (the
  session is shared: an object one unit loaded would be stale for the next).
- Nobody hears a result before the commit that makes it true: outcomes go back to the event
  loop only after COMMIT, in one hop per transaction.
- If the transaction itself fails (COMMIT, a savepoint, the connection), nothing of it was
  committed and nobody has been told: each unit is run again in a transaction of its own.
- Units arrive in order and run in order, so a later unit sees what an earlier one wrote.
- Nothing waits to fill a batch: a lone unit runs at once, in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from coobill.storage import _fast

log = logging.getLogger("coobill.ledger")

MAX_BATCH = 128

Work = Callable[[Session], Any]
Undo = Callable[[Session, Any], None]


@dataclass(slots=True)
class _Unit:
    work: Work
    undo: Undo | None
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None  # None: nobody waits (an undo)

    def abandoned(self) -> bool:
        # Read across threads: at worst a unit cancelled this instant still runs, and its
        # undo (if any) reverses it once the outcome reaches the loop.
        return self.future is not None and self.future.cancelled()


@dataclass(slots=True)
class _Outcome:
    unit: _Unit
    result: Any = None
    error: BaseException | None = None


@dataclass
class LedgerThread:
    sessions: sessionmaker[Session]
    _queue: queue.SimpleQueue[_Unit | None] = field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None
    _closed: bool = False
    after_commit: Callable[[], None] | None = None  # called on the thread after each COMMIT
    transactions: int = 0  # committed, for tests and benchmarks
    units: int = 0

    def submit(self, work: Work, undo: Undo | None = None) -> asyncio.Future[Any]:
        """Queue `work`; the returned future (of the running loop) gets its result once the
        transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._put(_Unit(work, undo, loop, future))
        return future

    def _put(self, unit: _Unit) -> None:
        if self._closed:
            raise RuntimeError("the ledger thread is shut down")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="ledger", daemon=True)
            self._thread.start()
        self._queue.put(unit)

    def shutdown(self) -> None:
        """Finish what is queued, then stop. (Work submitted later starts it again, as the
        engine it writes through starts a new pool after dispose().)"""
        if self._closed:
            return
        self._closed = True
        try:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None
        finally:
            self._closed = False

    # -- on the ledger thread ------------------------------------------------------------

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    stopping = True
                    break
                batch.append(unit)
            live = [unit for unit in batch if not unit.abandoned()]
            if live:
                self._deliver(self._run(live))

    def _run(self, units: list[_Unit]) -> list[_Outcome]:
        if len(units) == 1:
            return [self._alone(units[0])]
        try:
            return self._together(units)
        except Exception as error:  # noqa: BLE001 - the transaction failed whole: nothing committed
            log.warning("ledger.group_commit_failed units=%d error=%r", len(units), error)
            return [self._alone(unit) for unit in units]

    def _alone(self, unit: _Unit) -> _Outcome:
        try:
            with self.sessions() as session:
                result = unit.work(session)
                session.commit()
        except Exception as error:  # noqa: BLE001 - it goes to whoever awaits the unit
            return _Outcome(unit, error=error)
        self._committed()
        self.transactions += 1
        self.units += 1
        return _Outcome(unit, result)

    def _together(self, units: list[_Unit]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        with self.sessions() as session:
            # The stdlib driver's own connection: a savepoint is a statement to SQLite and
            # nothing to SQLAlchemy, whose transaction (BEGIN IMMEDIATE) spans the batch.
            driver = session.connection().connection.driver_connection
            assert driver is not None
            for unit in units:
                driver.execute("SAVEPOINT unit")
                try:
                    result = unit.work(session)
                    session.flush()  # its ORM writes inside its own savepoint
                except Exception as error:  # it goes to whoever awaits the unit
                    if not session.is_active:
                        # A failed flush ended SQLAlchemy's transaction for the whole batch:
                        # nothing is committed, and _run runs each unit alone.
                        raise
                    driver.execute("ROLLBACK TO unit")
                    driver.execute("RELEASE unit")
                    _fast.forget_kept(session)
                    outcomes.append(_Outcome(unit, error=error))
                else:
                    driver.execute("RELEASE unit")
                    outcomes.append(_Outcome(unit, result))
                # The next unit reads the rows afresh: ORM objects this one loaded would be
                # stale after a rollback to its savepoint, or after a later unit's statements.
                if session.identity_map:
                    session.expunge_all()
            session.commit()
        self._committed()
        self.transactions += 1
        self.units += len(units)
        return outcomes

    def _committed(self) -> None:
        if self.after_commit is not None:
            try:
                self.after_commit()
            except Exception:  # what was committed stays committed
                log.exception("ledger.after_commit_failed")

    def _deliver(self, outcomes: list[_Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            if outcome.unit.loop is None:
                if outcome.error is not None:  # an undo nobody awaits: at least log it
                    log.error("ledger.undo_failed error=%r", outcome.error)
                continue
            by_loop.setdefault(outcome.unit.loop, []).append(outcome)
        for loop, theirs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is left to tell
                loop.call_soon_threadsafe(self._tell, theirs)

    # -- on the event loop -----------------------------------------------------------------

    def _tell(self, outcomes: list[_Outcome]) -> None:
        for outcome in outcomes:
            unit = outcome.unit
            assert unit.future is not None
            if unit.future.cancelled():
                if unit.undo is not None and outcome.error is None:
                    self._undo(unit.undo, outcome.result)
            elif outcome.error is not None:
                unit.future.set_exception(outcome.error)
            else:
                unit.future.set_result(outcome.result)

    def undo(self, undo: Undo, result: Any) -> None:
        """Queue `undo(session, result)`: reverse what a unit committed for a caller that is
        gone."""
        self._undo(undo, result)

    def _undo(self, undo: Undo, result: Any) -> None:
        try:
            self._put(_Unit(lambda session: undo(session, result), None, None, None))
        except RuntimeError:  # shutting down: recovery will find the hold
            log.warning("ledger.undo_skipped reason=shutdown")
