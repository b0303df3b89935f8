"""Whatever order the ended calls reach the ledger in, and however often, the ledger ends the
same: shuffled and duplicated settlements of the recorded calls, property-tested."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coobill.ami.calls import CallTracker
from coobill.bootstrap import bootstrap
from coobill.config import Settings
from coobill.services.audit import audit
from coobill.services.balances import recharge
from coobill.services.commands import AuthorizeCall, SettleChannel
from coobill.services.extension_listing import list_extensions
from coobill.services.extensions import ExtensionChanges, set_extension
from coobill.services.gate import authorize_call
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from coobill.services.reports import list_calls
from coobill.services.settings import change_settings
from coobill.services.settlement import settle_channel
from tests.fakes.ami_server import BASIC, PJSIP, event_frames, read_trace


def recorded_ends() -> list[SettleChannel]:
    ends: list[SettleChannel] = []
    for lab in (BASIC, PJSIP):
        tracker = CallTracker(cdr_events="on")
        for frame in event_frames(read_trace(lab / "ami-all.txt")):
            ends += [e.settle for e in tracker.feed(frame.as_event())]
    return ends


ENDS = recorded_ends()


async def ledger_after(template: Path, order: list[SettleChannel]) -> tuple[object, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        shutil.copy(template, path)
        ctx = bootstrap(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}))
        try:
            await change_settings(ctx, timezone="UTC")
            callers = sorted({e.caller_extension for e in ENDS})
            for ext in callers:
                await set_extension(ctx, ext, ExtensionChanges(billing=True))
            await recharge(ctx, callers, "20")
            await add_rate(ctx, check_rate_fields(
                prefix="9", number_length=0, initial_cost="0.15", initial_seconds=3,
                rate="0.07", period_seconds=2, extensions="*"))
            for end in ENDS:
                assert end.record is not None
                await authorize_call(ctx, AuthorizeCall(end.uniqueid, end.caller_extension,
                                                        end.record.dialled_number))
            for end in order:
                await settle_channel(ctx, end)
            assert (await audit(ctx)).ok
            views, _ = await list_extensions(ctx)
            calls, _ = await list_calls(ctx)
            return (
                tuple((v.extension, v.balance, v.reserved) for v in views),
                tuple(sorted((c.uniqueid, c.billable_seconds, c.cost) for c in calls)),
            )
        finally:
            await ctx.uow.dispose()


def test_the_recorded_calls_are_ten_dialled_legs() -> None:
    assert len(ENDS) == 10
    assert len({e.uniqueid for e in ENDS}) == 10


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.permutations(ENDS), st.lists(st.sampled_from(ENDS), max_size=10))
def test_shuffled_and_repeated_settlements_leave_the_same_ledger(
    sqlite_template: Path, order: list[SettleChannel], repeats: list[SettleChannel]
) -> None:
    canonical = asyncio.run(ledger_after(sqlite_template, ENDS))
    shuffled = asyncio.run(ledger_after(sqlite_template, order + repeats))
    assert shuffled == canonical
    balances = {ext: bal for ext, bal, _ in canonical[0]}  # type: ignore[misc]
    assert all(reserved == 0 for _, _, reserved in canonical[0])  # type: ignore[misc]
    assert balances["100"] < Decimal("20")
