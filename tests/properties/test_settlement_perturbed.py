"""Settlement under everything at once, property-tested (issue 13).

Each example is a PBX's day (tests/properties/pbx.py): answered calls, AMI gaps, a kill -9 and
a restart, duplicated and reordered frames, late and missing Cdrs, flagged holds charged by
hand. The daemon's own parts run it — the gate service with the follower's bookkeeping
(Daemon._authorize), the AMI follower's single consumer and its CallTracker, PbxLink's
settlement and reconciliation, Master.csv as the evidence after a gap — with the AMI socket
replaced by the plan: what the follower's session would queue, the plan queues.

After each example: every call the gate allowed is charged exactly once at its tariff for its
talk, never beyond its limit — or, only when frames were lost, its hold is flagged (listed,
for a billing user); no hold is left held; reserved = the open holds ≥ 0; the audit passes.

The suite plays SHARES x EXAMPLES days (2,000), a share per core, the same days every run;
`pytest --slow` plays ten times as many, new ones each run.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import traceback
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import note as _note
from hypothesis.errors import InvalidArgument
from sqlalchemy import BigInteger, String, cast, func, select, type_coerce

from coobill.ami import follower as ami_follower
from coobill.ami.calls import Received
from coobill.ami.follower import AmiFollower, FollowerOptions
from coobill.ami.session import AmiNotConnected
from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.daemon import Daemon
from coobill.daemon.pbx import PbxLink
from coobill.errors import HoldNotSettled, UnknownReservation
from coobill.money import from_units
from coobill.rating import cost
from coobill.services import holds, reservations
from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.commands import AuthorizeCall, Verdict
from coobill.services.context import BillingContext
from coobill.storage.tables import Call as CallRecord
from coobill.storage.tables import Extension, LedgerEntry, Reservation
from tests.faults.calls import TARIFF, Call
from tests.properties.pbx import EPOCH, EXTENSIONS, LIVE_CHECK, Placed, Plan, Window, plans
from tests.properties.shapes import SHAPES

EXAMPLES = 1000  # a share's days: 65-70 s on the suite's machine (AMD EPYC, 2 cores)
SHARES = 2  # one per core of the suite's machine: each plays EXAMPLES days
SEED = 13  # the suite's shares draw their days from SEED, SEED + 1, ...
MEMORY = Path("/dev/shm")  # noqa: S108 - a folder of our own is made in it, and removed
GRACE = 2.0  # ami.cdr_grace_seconds
TRANSFERRED = ("blind", "attended")
ROWS = ("cdr", "cdr_store")  # Asterisk's Cdr events or Master.csv, not the channel events


def examples(request_slow: bool) -> int:
    return EXAMPLES * (10 if request_slow else 1)


class Life:
    """One run of the daemon on the ledger: dies with a kill -9, memory and all."""

    def __init__(self, ctx: BillingContext, pbx: Day) -> None:
        self.ctx, self.pbx = ctx, pbx
        # The follower is made below: looked up when called.
        self.link = PbxLink(
            ctx, on_expect=lambda live, legs, gone: self.follower.expect(live, legs, gone),  # noqa: PLW0108
            live_channels=pbx.still_live)

        async def reconciled(live: set[str]) -> None:
            await self.link.reconciled(live, still_live=pbx.still_live)

        async def live_checked(live: set[str]) -> None:
            await self.link.live_check(live, still_live=pbx.still_live)

        self.follower = AmiFollower(
            FollowerOptions("127.0.0.1", 1, "coobill", "-", cdr_events="on",
                            cdr_grace_seconds=GRACE),
            on_call_ended=self.link.call_ended, on_reconciled=reconciled,
            on_live_check=live_checked, clock=pbx.clock)
        self.daemon = Daemon(ctx.config, ctx=ctx)
        self.daemon.follower = self.follower
        self.consumer = asyncio.create_task(self.follower._consume())

    def queue(self, item: object) -> None:
        # What AmiFollower._session and AmiConnection would queue, had a socket been read.
        self.follower._queue.put_nowait(item)  # type: ignore[arg-type]

    def session_starts(self, t: float) -> None:
        self.queue(ami_follower._SESSION_START)
        self.queue(ami_follower._Reconcile(frozenset(self.pbx.live(t))))

    def live_check(self, t: float) -> None:
        """The session's periodic listing of the live channels (ami.live_check_seconds)."""
        self.queue(ami_follower._Reconcile(frozenset(self.pbx.live(t)), during_session=True,
                                           asked_tick=EPOCH + t))

    def session_ends(self) -> None:
        self.queue(ami_follower._SESSION_END)

    def event(self, at: float, frame: object) -> None:
        self.queue(ami_follower._Event(frame.as_event(), Received(EPOCH + at, EPOCH + at)))  # type: ignore[attr-defined]

    async def settled(self) -> None:
        """Until everything queued was handled and its settlements are done."""
        await self.follower._queue.join()
        while self.link.settling:
            await asyncio.wait(set(self.link.settling))

    async def killed(self) -> None:
        """The daemon dies between two events: what it followed in memory is gone; a
        settlement it had handed to the ledger commits whole or not at all (SQLite and
        PostgreSQL see to that) — here, whole; one that never ran is an end the daemon never
        saw, as when the kill comes before the call's end."""
        await self.follower._queue.join()  # between two events: the consumer is idle
        self.consumer.cancel()
        await asyncio.gather(self.consumer, *self.link.settling, *self.pbx.hands,
                             return_exceptions=True)
        await self.ctx.uow.dispose()


class Day:
    """Plays a plan against the daemon's parts."""

    def __init__(self, plan: Plan, folder: Path) -> None:
        self.plan, self.folder, self.now = plan, folder, 0.0
        self.csv = folder / "Master.csv"
        self.csv.write_text("")
        self.settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{folder / 'ledger.db'}"},
            billing={"max_call_seconds": 600}, web={"enabled": False},
            ami={"cdr_events": "on", "cdr_grace_seconds": GRACE,
                 "cdr_csv_path": str(self.csv) if plan.cdr_store else "",
                 "cdr_csv_gmt": False})
        self.verdicts: dict[tuple[str, int], Verdict] = {}  # (uniqueid, which ask) -> answer
        self.charged_by_hand: set[int] = set()  # hold ids
        self.released_by_hand: set[int] = set()
        self.hands: list[asyncio.Task[None]] = []
        self.ami_up = False
        self.written: set[tuple[float, str]] = set()  # the rows in Master.csv so far
        self.uid_of = {p.call.seq: p.call.uniqueid for p in plan.calls}

    def clock(self) -> float:
        return EPOCH + self.now

    def bootstrap(self) -> BillingContext:
        """The daemon's context on the PBX's clock (a hold's time and the CDRs' are the same
        host's)."""
        return bootstrap(self.settings,
                         clock=lambda: datetime.fromtimestamp(self.clock(), UTC))

    @property
    def allowed(self) -> dict[str, set[int]]:
        """Each channel's authorizations the gate allowed, by index."""
        found: dict[str, set[int]] = {}
        for (uniqueid, index), verdict in self.verdicts.items():
            if verdict.allowed:
                found.setdefault(uniqueid, set()).add(index)
        return found

    def live(self, t: float) -> set[str]:
        return self.plan.live(t, self.allowed)

    async def still_live(self) -> set[str]:
        """CoreShowChannels over the session, when there is one."""
        if not self.ami_up:
            raise AmiNotConnected("AMI is down")
        return self.live(self.now)

    def at(self, t: float) -> None:
        """Time moves on to `t`: cdr_csv appends the rows of the calls that ended."""
        self.now = max(self.now, t)
        # Rows of instants before this one only: a channel refused at this instant hangs up
        # (and has its row written) after the gate answered, which happens at this instant.
        rows = [r for r in self.plan.master_csv_rows(self.now, self.allowed, before=True)
                if r not in self.written]
        if rows:
            with self.csv.open("a") as csv:
                csv.write("".join(line for _, line in rows))
            self.written.update(rows)

    def timeline(self) -> Iterator[tuple[float, str, object]]:
        """Everything that happens, in time order: gate requests, frames, AMI going and
        coming back, the kill and the restart, the billing user."""
        items: list[tuple[float, int, str, object]] = []
        for placed in self.plan.calls:
            items += [(at, 0, "ask", (placed, index))
                      for index, at in enumerate(placed.script.asks)]
        for gap in self.plan.gaps:
            items += [(gap.start, 1, "ami_lost", gap), (gap.end, 1, "ami_back", gap)]
        if self.plan.kill is not None:
            items += [(self.plan.kill.start, 1, "kill", None),
                      (self.plan.kill.end, 1, "restart", None)]
        items += [(t, 3, "by_hand", None) for t in self.plan.manual_at]
        horizon = int(max(p.ends for p in self.plan.calls)) + 1
        items += [(float(t), 4, "tick", None) for t in range(1, horizon + int(GRACE) + 2)]
        items += [(float(t), 5, "live_check", None)
                  for t in range(LIVE_CHECK, horizon + LIVE_CHECK, LIVE_CHECK)]
        for order, (at, seq, when, frame) in enumerate(self.plan.delivered()):
            items.append((at, 2, "frame", (order, seq, when, frame)))
        items.sort(key=lambda item: (item[0], item[1],
                                     item[3][0] if item[2] == "frame" else 0))  # type: ignore[index]
        for at, _, kind, what in items:
            yield at, kind, what

    async def run(self) -> Life:
        life: Life | None = Life(self.bootstrap(), self)
        assert life is not None
        self.ami_up = True
        life.session_starts(0.0)
        for at, kind, what in self.timeline():
            self.at(at)
            if kind == "kill":
                assert life is not None
                await life.killed()
                life = None
            elif kind == "restart":
                life = Life(self.bootstrap(), self)
                self.ami_up = not any(g.covers(at) for g in self.plan.gaps)
                if self.ami_up:
                    life.session_starts(at)
            elif life is None:
                continue  # the daemon is down: nothing reaches it
            elif kind == "ask":
                await self.ask(life, what)  # type: ignore[arg-type]
            elif kind == "ami_lost":
                if self.ami_up:
                    life.session_ends()
                self.ami_up = False
            elif kind == "ami_back":
                if not self.ami_up and not any(g.covers(at) for g in self.plan.gaps):
                    life.session_starts(at)
                    self.ami_up = True
            elif kind == "frame":
                _, seq, when, frame = what  # type: ignore[misc]
                uid = self.uid_of[seq]
                # A refused channel never dials.
                if self.ami_up and when.holds(self.allowed.get(uid, set())):
                    life.event(at, frame)
            elif kind == "tick":
                life.queue(ami_follower._TICK)
            elif kind == "live_check":
                if self.ami_up:
                    life.live_check(at)
            elif kind == "by_hand":
                # Alongside whatever settlement is doing right now.
                self.hands.append(asyncio.create_task(self.by_hand(life.ctx)))
            if life is not None:
                # Handled before the clock moves on (settlements may still be under way).
                await life.follower._queue.join()
        end = max(p.ends for p in self.plan.calls) + GRACE + 5
        self.at(end)
        if life is None:
            life = Life(self.bootstrap(), self)
            life.session_starts(end)
        elif not self.ami_up:
            life.session_starts(end)
        self.ami_up = True
        life.queue(ami_follower._TICK)  # the Cdr grace is over for every call
        await life.settled()
        # The daemon ticks on: a channel handed back then to wait for the rows its legs'
        # ends write (daemon/pbx.py, and a reconcile's) is settled once the grace has passed
        # again (from now: a restart may come after the day's last tick); the next live check
        # comes, and the ticks after it.
        for check in (True, False):
            self.at(self.now + GRACE + 1)
            life.queue(ami_follower._TICK)
            await life.settled()
            if check:
                life.live_check(self.now)
                await life.settled()
        await asyncio.gather(*self.hands)
        if self.plan.manual_at:  # and once more, when the day is over
            await self.by_hand(life.ctx)
        return life

    async def ask(self, life: Life, asked: tuple[Placed, int]) -> None:
        placed, index = asked
        call = placed.call
        if index and 0 not in self.allowed.get(call.uniqueid, set()):
            return  # refused the first time, the channel hung up
        verdict = await life.daemon._authorize(AuthorizeCall(
            uniqueid=call.uniqueid, extension=call.extension, number=call.number,
            channel=call.channel))
        self.verdicts[call.uniqueid, index] = verdict

    async def by_hand(self, ctx: BillingContext) -> None:
        """The billing user resolves each flagged hold of a call that has ended: charges it
        the talk time the PBX shows (its CDRs), or, for the plan's `released` calls, releases
        it (decides it cost nothing)."""
        ended = {p.call.uniqueid: p for p in self.plan.calls if p.ends <= self.now}
        talk = await self.talk_of_holds(ctx)
        for view in await reservations.list_held(ctx, state=holds.FLAGGED):
            if view.uniqueid not in ended or view.id in self.by_hand_done:
                continue
            placed = ended[view.uniqueid]
            try:
                if placed.call.seq in self.plan.released:
                    await reservations.release(ctx, view.uniqueid, hold_id=view.id)
                    self.released_by_hand.add(view.id)
                else:
                    await reservations.charge(ctx, view.uniqueid, talk[view.id], hold_id=view.id)
                    self.charged_by_hand.add(view.id)
            except (UnknownReservation, HoldNotSettled):
                continue  # settled meanwhile (before, or while, it was charged): told so

    async def talk_of_holds(self, ctx: BillingContext) -> dict[int, int]:
        """Hold id -> the talk its Dials had (the plan's truth)."""
        by_token = {v.token: self.plan.calls_by_uid[uid].script.talk[index]
                    for (uid, index), v in self.verdicts.items() if v.token is not None}
        async with ctx.uow.read() as uow:
            found = (await uow.session.execute(
                select(Reservation.id, Reservation.token))).all()
        return {hold_id: by_token[token] for hold_id, token in found if token in by_token}

    @property
    def by_hand_done(self) -> set[int]:
        return self.charged_by_hand | self.released_by_hand


SEEN: Counter[str] = Counter()


def note(text: str) -> None:
    """hypothesis.note, also when a day is played outside a test (replaying one by hand)."""
    try:
        _note(text)
    except InvalidArgument:
        print(text)


async def check(day: Day, ctx: BillingContext) -> None:
    plan = day.plan
    SEEN["days"] += 1
    debits = await debits_by_hold(ctx)
    flagged = {v.id: v for v in await reservations.list_held(ctx, state=holds.FLAGGED)}
    assert not await reservations.list_held(ctx, state=holds.HELD), "a hold is left held"
    async with ctx.uow.read() as uow:
        hold_of = dict((await uow.session.execute(
            select(Reservation.token, Reservation.id))).all())
        evidence_of = dict((await uow.session.execute(
            select(CallRecord.reservation_id, CallRecord.evidence)
            .where(CallRecord.disposition == "ANSWERED"))).all())
    charged = set()
    for (uid, index), verdict in day.verdicts.items():
        placed = plan.calls_by_uid[uid]
        if verdict.token is None:
            continue
        hold = hold_of[verdict.token]
        charged.add(hold)
        assert verdict.limit_seconds is not None
        talk = placed.script.talk[index]
        talked = min(talk, verdict.limit_seconds)
        what = (placed, index, verdict)
        if hold in flagged:
            note(f"flagged: {placed.call} {placed.shape} #{index} why={flagged[hold].note!r}")
            assert plan.loses_frames, f"{what} flagged though no frame was lost"
            assert hold not in debits, what
            SEEN["flagged"] += 1
            continue
        if hold in day.released_by_hand:  # the billing user said free: and it is
            assert hold not in debits, what
            SEEN["released by hand"] += 1
            continue
        SEEN["by hand" if hold in day.charged_by_hand else "settled"] += 1
        SEEN[placed.shape] += 1
        if talked < talk:
            SEEN["capped by its limit"] += 1
        charge = cost(TARIFF, talked)
        # A call that cost nothing is recorded but writes no ledger entry.
        got = debits.get(hold, (1, Decimal(0)))
        if got != (1, charge) and talked and plan.loses_frames \
                and placed.shape in TRANSFERRED and evidence_of.get(hold) in ROWS:
            # Settled from Asterisk's rows after a transfer: the rows are whole seconds each,
            # so one second can be lost at the transfer (docs/settlement.md), never added.
            assert got == (1, cost(TARIFF, talked - 1)), (what, got)
            SEEN["a second lost at a transfer"] += 1
            continue
        assert got == (1, charge), (what, debits.get(hold))
    assert set(debits) <= charged, f"debits of no allowed hold: {debits}"
    async with ctx.uow() as uow:
        reserved = dict((await uow.session.execute(
            select(Extension.number, Extension.reserved))).all())
        open_holds = (await uow.session.execute(
            select(Reservation.extension_number, Reservation.amount)
            .where(Reservation.state.in_(holds.OPEN)))).all()
    for number in EXTENSIONS:
        held = sum((amount for ext, amount in open_holds if ext == number), Decimal(0))
        assert reserved[number] == held >= 0, number
    report = await audit(ctx)
    assert report.ok, report.problems


async def debits_by_hold(ctx: BillingContext) -> dict[int | None, tuple[int, Decimal]]:
    """Hold id (None: a call of no hold) -> (how many call_debit entries, their total)."""
    async with ctx.uow.read() as uow:
        rows = (await uow.session.execute(
            select(CallRecord.reservation_id, func.count(),
                   func.sum(type_coerce(LedgerEntry.amount, BigInteger)))
            .join(CallRecord, LedgerEntry.reference == "call:" + cast(CallRecord.id, String))
            .where(LedgerEntry.kind == "call_debit").group_by(CallRecord.reservation_id))).all()
    return {hold: (int(n), -from_units(int(total))) for hold, n, total in rows}


async def fund(plan: Plan, folder: Path) -> None:
    """The extensions of the ledger in `folder` recharged with the plan's balances."""
    ctx = bootstrap(Day(plan, folder).settings)
    try:
        for number, balance in plan.balances.items():
            await recharge(ctx, [number], balance)
    finally:
        await ctx.uow.dispose()


class FundedLedgers:
    """The funded template's ledger recharged with a plan's balances, made once for each set
    of balances and copied for every day that has it: a day's own recharges, on an engine of
    their own (every statement compiled anew), were a sixth of its time."""

    def __init__(self, template: Path, root: Path) -> None:
        self.template, self.root = template, root
        self._made: dict[tuple[tuple[str, str], ...], Path] = {}

    def copy(self, plan: Plan, folder: Path) -> None:
        key = tuple(sorted(plan.balances.items()))
        made = self._made.get(key)
        if made is None:
            made = self.root / str(len(self._made))
            made.mkdir()
            for name in ("ledger.db", "ledger.db.key"):
                shutil.copy(self.template / name, made / name)
            asyncio.run(fund(plan, made))
            self._made[key] = made
        for source in made.iterdir():
            if source.name.startswith("ledger.db"):  # and its -wal, -shm when there are
                shutil.copy(source, folder / source.name)


async def play(plan: Plan, folder: Path, *, funded: bool = False) -> None:
    """Play a day on the ledger in `folder` (recharged with the plan's balances already, if
    `funded`)."""
    day = Day(plan, folder)
    if not funded:
        await fund(plan, folder)
    errors = ErrorsLogged()
    logging.getLogger("coobill").addHandler(errors)
    try:
        life = await day.run()
        try:
            await check(day, life.ctx)
        finally:
            await life.killed()
    finally:
        logging.getLogger("coobill").removeHandler(errors)
    assert errors.lines == []  # a settlement that failed, an event that could not be handled


def play_day(plan: Plan, folder: Path, *, funded: bool = False) -> None:
    """One example, on an event loop of its own (a kill waits for the consumer to be idle
    and for the settlements it had handed over, so no connection is left behind)."""
    asyncio.run(play(plan, folder, funded=funded))


class ErrorsLogged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def play_share(share: int, template: Path, root: Path, slow: bool) -> tuple[Counter[str], str]:
    """One share of the days, in this process: what they were (SEEN) and the failure's
    report ("" when every day passed). The suite's shares play the same days every run (a
    main that passed stays green; days found wrong are kept in DAYS_THAT_FAILED); `--slow`
    draws new ones, ten times as many."""
    ledgers = FundedLedgers(template, root / f"balances-{share}")
    (root / f"balances-{share}").mkdir()

    @settings(max_examples=examples(slow), deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(plan=plans())
    def day(plan: Plan) -> None:
        # In memory where the machine has it: a day commits dozens of times, and what it
        # tests is the order of events, not the disk's fsync (which made a day 5x slower).
        with tempfile.TemporaryDirectory(dir=MEMORY if MEMORY.is_dir() else None) as tmp:
            folder = Path(tmp)
            ledgers.copy(plan, folder)
            note(repr(plan))
            play_day(plan, folder, funded=True)

    SEEN.clear()
    try:
        (day if slow else seed(SEED + share)(day))()
    except Exception as failed:  # noqa: BLE001 - reported whole to the test, which fails
        return Counter(SEEN), "".join(traceback.format_exception(failed))
    return Counter(SEEN), ""


def test_a_perturbed_day_charges_every_allowed_call_once(
    funded_template: Path, tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    slow = request.config.getoption("--slow")
    root = tmp_path_factory.mktemp("shares")
    # A day is one event loop's work: one share per core, the others in processes of their
    # own (spawned: a fork would copy this process's threads and loops).
    with ProcessPoolExecutor(SHARES - 1, mp_context=get_context("spawn")) as pool:
        others = [pool.submit(play_share, share, funded_template, root, slow)
                  for share in range(1, SHARES)]
        results = [play_share(0, funded_template, root, slow)]
        results += [other.result() for other in others]
    failures = [failure for _, failure in results if failure]
    assert not failures, "\n".join(failures)
    seen = sum((found for found, _ in results), Counter[str]())
    assert seen["days"] >= SHARES * examples(slow), seen  # every share played its days
    # The days were hard enough: holds were flagged, charged by hand, capped by their limits.
    assert {"settled", "flagged", "by hand", "released by hand", "capped by its limit",
            *SHAPES} <= set(seen), seen


def _single(seq: int) -> Placed:
    return Placed(Call(seq, "100", 0), asked=0.0, shape="single", more=0)


# Days the property once found wrong, played every run (hypothesis draws new ones each time).
DAYS_THAT_FAILED = {
    # An attended transfer inside an AMI gap that swallowed the caller's Hangup; its Cdrs
    # came late. The external party's talk after the transfer is in the Local ;1 half's
    # Cdr; it was charged 2 s of 3, the consultation's CDR taken for a call of its own.
    "attended, caller's Hangup lost": Plan(
        calls=(_single(0), _single(1),
               Placed(Call(2, "100", 0), asked=20.0, shape="attended", more=1), _single(3)),
        gaps=(Window(start=9.0, end=24.0),), late_cdrs=frozenset({2}),
        balances={"100": "0.05", "101": "0.05", "102": "0.05"}),
    # The same without Master.csv: the Local ;1 half's Cdr event is the evidence.
    "attended, caller's Hangup lost, no Master.csv": Plan(
        calls=(_single(0), _single(1),
               Placed(Call(2, "100", 0), asked=20.0, shape="attended", more=1), _single(3)),
        gaps=(Window(start=9.0, end=24.0),), late_cdrs=frozenset({2}), cdr_store=False,
        balances={"100": "0.05", "101": "0.05", "102": "0.05"}),
    # A blind transfer whose caller was lost to a kill and a gap, its Cdrs missing: Master.csv
    # was read while the transferred leg was up, the PBX asked after it hung up - it was
    # settled on the rows up to the transfer (25 s of 31). Half the time: the order in which
    # the file read and the PBX's answer come decides it, hence the plays below.
    "blind, rows read before the transferred leg's end": Plan(
        calls=(Placed(Call(0, "100", 20), asked=15.8, shape="blind", more=3),
               Placed(Call(1, "100", 4), asked=0.0, shape="blind", more=1),
               Placed(Call(2, "101", 25), asked=3.9, shape="blind", more=6),
               Placed(Call(3, "102", 10), asked=4.9, shape="failover", more=13)),
        gaps=(Window(start=1.0, end=8.35),), kill=Window(start=0.0, end=3.16),
        duplicated=(42, 25, 3), swapped=(1, 25, 3), late_cdrs=frozenset({0, 2}),
        missing_cdrs=frozenset({0, 2}), manual_at=(0.0,), released=frozenset({0}),
        balances={"100": "0.05", "101": "0.40", "102": "0.40"}),
    # The whole Dial in a gap, then the caller blind-transfers: settled from Master.csv, the
    # rows' whole seconds lose the second the external party talked on (the one allowance).
    "blind, a second lost in the rows": Plan(
        calls=(Placed(Call(0, "100", 0), asked=0.0, shape="sequential", more=0),
               Placed(Call(1, "101", 0), asked=0.0, shape="blind", more=1)),
        gaps=(Window(start=0.0, end=2.0),),
        balances={"100": "0.05", "101": "0.05", "102": "0.05"}),
    # A failover's Dials seen before a kill, its end after the restart; its busy Dial's Cdr
    # came, the answered one's was held back past the grace: the busy one alone "completed"
    # the channel, its hold was released and the answered Cdr dropped - a free call.
    "failover, the answered Dial's Cdr after the grace": Plan(
        calls=(Placed(Call(0, "100", 0), asked=0.0, shape="failover", more=0),
               Placed(Call(1, "100", 5), asked=20.0, shape="single", more=0),
               Placed(Call(2, "100", 0), asked=6.0, shape="failover", more=15)),
        kill=Window(start=9.0, end=10.0), swapped=(23,), late_cdrs=frozenset({2}),
        missing_cdrs=frozenset({0}), cdr_store=False,
        balances={"100": "0.05", "101": "0.05", "102": "0.05"}),
    # An attended transfer whose Dial fell into a gap and whose Cdrs never came: flagged at
    # the caller's end, Master.csv read while the external leg talked on, the PBX asked once
    # it had hung up - and the file read again at once lacked that leg's row (cdr_csv writes
    # it after the channel leaves the PBX's list): 2 s charged of 5. Hangs on the order in
    # which the file read and the leg's end come, hence the plays.
    "attended, the leg's row after it left the PBX's list": Plan(
        calls=(Placed(Call(0, "100", 0), asked=11.0, shape="attended", more=4),),
        gaps=(Window(start=0.0, end=12.0), Window(start=0.0, end=1.5)),
        missing_cdrs=frozenset({0}),
        balances={"100": "0.05", "101": "0.05", "102": "0.05"}),
    # An attended transfer whose external leg's end fell into a gap, no Master.csv: flagged
    # at the reconnect (the tracker forgot the channel), then the consultation's Cdr came
    # again (a duplicated frame) and was taken for a late Cdr of a Dial of its own: settled
    # at its 2 s. A Cdr the channel had already is a repeat, never news.
    "attended, its consultation's Cdr again after the gap": Plan(
        calls=(Placed(Call(0, "100", 0), asked=10.0, shape="attended", more=2),
               Placed(Call(1, "100", 0), asked=1.0, shape="failover", more=0),
               Placed(Call(2, "100", 5), asked=10.0, shape="single", more=0)),
        gaps=(Window(start=14.0, end=16.0), Window(start=0.0, end=1.0)),
        duplicated=(0, 28), cdr_store=False,
        balances={"100": "0.05", "101": "0.05", "102": "0.05"}),
    # An attended transfer whose caller's Hangup fell into a kill, its Cdrs late, no
    # Master.csv: known from its Cdrs alone, it was settled once the grace from its first Cdr
    # had passed and its legs had hung up - before the Local ;1 half's Cdr (the 3 s the
    # external party talked on) came, a moment after their Hangups; the consultation's Cdr
    # was then charged as a call of its own: 10 s of 13. The grace runs from the legs' end.
    "attended, known from its Cdrs alone, the talk on after the legs' end": Plan(
        calls=(_single(0), Placed(Call(1, "101", 8), asked=7.5, shape="attended", more=3)),
        kill=Window(start=8.0, end=19.0), late_cdrs=frozenset({1}), cdr_store=False,
        balances={"100": "0.05", "101": "0.15", "102": "0.05"}),
    # An attended transfer whose answer and caller's Hangup fell into a gap (its DialBegin
    # seen), its Cdrs late, no Master.csv: at the reconnect the caller was gone and the
    # external leg up; the Local ;1 half's Cdr (the 1 s the leg talked on) named a channel
    # of no channel known from its Cdrs alone and was dropped, the consultation's Cdr charged
    # as a Dial of its own: 8 s + 2 s of 11, in two records. The caller is now taken as gone
    # at the reconnect, settled a grace after its leg's end, from the rows naming the leg.
    "attended, the caller gone at the reconnect, its leg up": Plan(
        calls=(_single(0), Placed(Call(1, "101", 8), asked=7.5, shape="attended", more=1)),
        gaps=(Window(start=8.5, end=19.5), Window(start=0.0, end=1.0)),
        late_cdrs=frozenset({1}), cdr_store=False,
        balances={"100": "0.05", "101": "0.15", "102": "0.05"}),
}
PLAYS = 6  # a day whose outcome hung on the order of concurrent work is played again


@pytest.mark.parametrize("plan", list(DAYS_THAT_FAILED.values()), ids=list(DAYS_THAT_FAILED))
def test_a_day_that_once_failed(plan: Plan, funded_template: Path, tmp_path: Path) -> None:
    for play in range(PLAYS):
        folder = tmp_path / str(play)
        folder.mkdir()
        for name in ("ledger.db", "ledger.db.key"):
            shutil.copy(funded_template / name, folder / name)
        play_day(plan, folder)


def test_the_model_loses_only_what_its_windows_cover() -> None:
    """The plan's own arithmetic, which the property leans on."""
    placed = Placed(Call(0, "100", 10), asked=1.0)
    plan = Plan(calls=(placed,), gaps=(Window(0.0, 2.0),))
    delivered = [f.event for _, _, _, f in plan.delivered()]
    assert "DialBegin" not in delivered
    assert delivered.count("Hangup") == 2
    uid = placed.call.uniqueid
    allowed = {uid: {0}}
    assert uid in plan.live(1.0, allowed)
    assert plan.live(placed.ends, allowed) == set()
    assert plan.live(1.0, {}) == set()  # refused: it hung up at once
    assert plan.master_csv(placed.ends - 0.1, allowed) == ""
    assert uid in plan.master_csv(
        placed.ends, allowed)
    killed = Plan(calls=(placed,), kill=Window(0.5, 3.0))
    # Down from 0.5 to 3.0: the Dial's frames are lost; those after the restart would come.
    assert [f.event for _, _, _, f in killed.delivered()] == ["Cdr", "Hangup", "Hangup"]
