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

A short unit (the gate's: a few statements) submitted while the thread has nothing queued or
running is run by the event loop itself, at its next turn, with whatever else is submitted
before then (`submit(..., short=True)`): two thread hand-offs (queue to thread, then
call_soon_threadsafe back) cost about as much as the authorization's own statements, and the
loop would wait for the answer anyway (docs/benchmarks.md). The same rules hold - one
transaction, a savepoint per unit, nobody told before the commit, in order - and the loop never
waits on another process: its BEGIN fails at once when another connection holds the write lock
(storage/db.py's NO_WAIT), and those units go to the thread, which waits; so do units that
ask to leave the loop (`leave_the_loop`: a rate book rebuild), and units submitted before the
thread has opened its connection. Short units that loop submits before its turn join the
ones it holds; any other unit (not short, an undo, another loop's) first takes those to the
thread; so units still run in the order they were submitted. (Only the order in which their
futures resolve may differ: a unit the loop runs can be told before a unit the thread
committed just earlier.)
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
from coobill.storage.db import NO_WAIT

log = logging.getLogger("coobill.ledger")

MAX_BATCH = 128

Work = Callable[[Session], Any]
Undo = Callable[[Session, Any], None]

_ON_THE_LOOP = "coobill.on_the_loop"


class LeaveTheLoop(Exception):
    """Raised by `leave_the_loop` in a transaction the event loop runs."""


def leave_the_loop(session: Session) -> None:
    """Call before work too long for the event loop (rebuilding the rate book, say): in a
    transaction the loop runs, it is rolled back and its units go to the ledger thread, which
    runs them again; anywhere else this does nothing."""
    if session.info.get(_ON_THE_LOOP):
        raise LeaveTheLoop


def _fail(units: list[_Unit], error: BaseException) -> None:
    """Tell every waiting caller of `units` that they did not run."""
    for unit in units:
        if unit.future is not None and not unit.future.done():
            unit.future.set_exception(error)


def _begin_on_the_loop(session: Session) -> None:
    """BEGIN IMMEDIATE now, failing at once if another process holds the write lock."""
    session.info[_ON_THE_LOOP] = True
    session.connection(execution_options={NO_WAIT: True})


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
    after_commit: Callable[[], None] | None = None  # called after each COMMIT
    transactions: int = 0  # committed, for tests and benchmarks
    units: int = 0
    units_on_the_loop: int = 0  # of `units`, those the event loop ran itself
    # Held by whoever runs a transaction on the connection: the thread, or the event loop.
    _running: threading.Lock = field(default_factory=threading.Lock)
    _counting: threading.Lock = field(default_factory=threading.Lock)
    _queued: int = 0  # units put on the thread's queue that it has not run yet
    # Units the event loop `_here_loop` is to run itself at its next turn, in order.
    _here: list[_Unit] = field(default_factory=list)
    _here_loop: asyncio.AbstractEventLoop | None = None

    def submit(self, work: Work, undo: Undo | None = None, *,
               short: bool = False) -> asyncio.Future[Any]:
        """Queue `work`; the returned future (of the running loop) gets its result once the
        transaction holding it has committed. `short`: the event loop may run it itself when
        the thread is idle (the module's docstring)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._enqueue(_Unit(work, undo, loop, future), short=short)
        return future

    def _enqueue(self, unit: _Unit, *, short: bool = False) -> None:
        """To the loop's next turn (short, its loop's, nothing before it still to run), or to
        the thread - behind what a loop was to run, which goes to the thread first: whoever
        submits, units run in the order they were submitted."""
        with self._counting:
            if self._closed:
                raise RuntimeError("the ledger thread is shut down")
            loop = unit.loop
            if short and loop is not None and (
                    loop is self._here_loop if self._here else self._queued == 0):
                first = not self._here
                self._here.append(unit)
                self._here_loop = loop
            else:
                self._put_locked([*self._take_here(), unit])
                return
        if first:
            loop.call_soon(self._run_here)

    def _put_locked(self, units: list[_Unit]) -> None:
        """Onto the thread's queue (`_counting` held)."""
        if self._closed:
            raise RuntimeError("the ledger thread is shut down")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="ledger", daemon=True)
            self._thread.start()
        self._queued += len(units)
        for unit in units:
            self._queue.put(unit)

    def _take_here(self) -> list[_Unit]:
        """What a loop was to run itself (`_counting` held): it now goes elsewhere."""
        units, self._here = self._here, []
        return units

    def shutdown(self) -> None:
        """Finish what is queued, then stop. (Work submitted later starts it again, as the
        engine it writes through starts a new pool after dispose().)"""
        if self._closed:
            return
        self._hand_to_the_thread()
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
            with self._running:
                outcomes = self._run(live) if live else []
                with self._counting:
                    self._queued -= len(batch)
            if outcomes:
                self._deliver(outcomes)

    def _run(self, units: list[_Unit]) -> list[_Outcome]:
        if len(units) == 1:
            return [self._alone(units[0])]
        try:
            return self._together(units)
        except Exception as error:  # noqa: BLE001 - the transaction failed whole: nothing committed
            log.warning("ledger.group_commit_failed units=%d error=%r", len(units), error)
            return [self._alone(unit) for unit in units]

    def _alone(self, unit: _Unit, *, wait: bool = True) -> _Outcome:
        """`wait=False`: the BEGIN fails at once, raising, if another process writes."""
        with self.sessions() as session:
            if not wait:
                _begin_on_the_loop(session)
            try:
                result = unit.work(session)
                session.commit()
            except LeaveTheLoop:
                raise
            except Exception as error:  # noqa: BLE001 - it goes to whoever awaits the unit
                return _Outcome(unit, error=error)
        self._committed()
        self.transactions += 1
        self.units += 1
        return _Outcome(unit, result)

    def _together(self, units: list[_Unit], *, wait: bool = True) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        with self.sessions() as session:
            if not wait:
                _begin_on_the_loop(session)
            # The stdlib driver's own connection: a savepoint is a statement to SQLite and
            # nothing to SQLAlchemy, whose transaction (BEGIN IMMEDIATE) spans the batch.
            driver = session.connection().connection.driver_connection
            assert driver is not None
            for unit in units:
                driver.execute("SAVEPOINT unit")
                try:
                    result = unit.work(session)
                    session.flush()  # its ORM writes inside its own savepoint
                except LeaveTheLoop:
                    raise
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

    def _run_here(self) -> None:
        """The units this loop is to run itself, in one transaction here while the thread is
        idle; handed to the thread instead when it is not, when SQLite is busy, or when a unit
        asks to leave the loop (`leave_the_loop`)."""
        # `_counting` held throughout: a unit submitted meanwhile from another thread waits,
        # then finds these run or queued before it (the thread takes `_running` first and
        # `_counting` second; here the second is only tried, never waited for).
        with self._counting:
            live = [unit for unit in self._take_here() if not unit.abandoned()]
            if not live:
                return
            outcomes = None
            if self._queued == 0 and self._connected() and self._running.acquire(blocking=False):
                try:
                    outcomes = self._without_waiting(live)
                except BaseException as error:  # KeyboardInterrupt, say: nobody is left hanging
                    _fail(live, error)
                    raise
                finally:
                    self._running.release()
            if outcomes is None:
                try:
                    self._put_locked(live)
                except RuntimeError as error:  # shut down from another thread meanwhile
                    _fail(live, error)
                return
        self._tell(outcomes)

    def _connected(self) -> bool:
        """The connection is open and idle: the loop never waits on opening one (its PRAGMAs
        wait out the busy timeout)."""
        return self.sessions.kw["bind"].pool.checkedin() > 0  # type: ignore[no-any-return]

    def _without_waiting(self, units: list[_Unit]) -> list[_Outcome] | None:
        """The units run and committed here (`_running` held); None when nothing was
        committed: the transaction could not begin at once (another process holds the write
        lock), a unit asked to leave the loop, or it failed whole. The thread then runs them
        as it runs any."""
        try:
            if len(units) == 1:
                outcomes = [self._alone(units[0], wait=False)]
            else:
                outcomes = self._together(units, wait=False)
        except Exception as error:  # noqa: BLE001 - nothing committed; the thread runs them
            log.debug("ledger.to_the_thread units=%d error=%r", len(units), error)
            return None
        self.units_on_the_loop += len(units)
        return outcomes

    def _hand_to_the_thread(self) -> None:
        with self._counting:
            units = self._take_here()
            if units:
                self._put_locked(units)

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
            self._enqueue(_Unit(lambda session: undo(session, result), None, None, None))
        except RuntimeError:  # shutting down: recovery will find the hold
            log.warning("ledger.undo_skipped reason=shutdown")
