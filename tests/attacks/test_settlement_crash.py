"""Attacks that make settlement fail for good (issue 13: "crash settlement"): PbxLink retries
a settlement on every SQLAlchemyError, forever, holding one of its 64 slots; a failure that
is not transient (a value the column refuses) therefore never ends, and 64 of them stop the
AMI event stream (PbxLink.call_ended waits for a slot)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from coobill.ami.calls import ChannelEnded
from coobill.daemon.pbx import PbxLink
from coobill.services.commands import DialOutcome, Disposition, SettleChannel
from coobill.services.context import BillingContext
from tests.services.conftest import rows

START = datetime(2026, 11, 22, 14, 0, 0)
# What the far end put in its From header, now the inbound channel's CALLERID(num).
LONG_CALLER = "44" + "1" * 38


def forwarded_call(caller: str) -> SettleChannel:
    """An inbound call the PBX forwards out (call forwarding, follow-me to a mobile): the
    inbound channel's own Dial, ungated, to the trunk; its caller is the far end's number."""
    dial = DialOutcome(
        leg="PJSIP/carrier-00000009", dialled_number="00447700900123", start=START,
        answer=START + timedelta(seconds=3), end=START + timedelta(seconds=63),
        billable_seconds=60, disposition=Disposition.ANSWERED, trunk="carrier")
    return SettleChannel("1700000000.9", caller, "", (dial,))


class TestACallerIdLongerThanTheColumn:
    async def test_the_call_is_settled_not_retried_forever(
        self, ctx: BillingContext, caplog: pytest.LogCaptureFixture
    ) -> None:
        """call.caller_extension is VARCHAR(32); settlement._record writes the ungated Dial's
        caller number (from the Cdr's Source / CallerID) unclipped, where it clips every other
        free text. PostgreSQL refuses it (StringDataRightTruncation, a DBAPIError) and
        PbxLink._settle retries it without end. SQLite does not enforce lengths."""
        caplog.set_level("ERROR")
        link = PbxLink(ctx)
        link.max_retry_delay = 0.05
        try:
            await asyncio.wait_for(link._settle(ChannelEnded(forwarded_call(LONG_CALLER))), 3)
        except TimeoutError:
            pytest.fail("settlement of the forwarded call is still retrying after 3 s")
        assert await rows(ctx, "SELECT count(*) FROM call") == [(1,)]
