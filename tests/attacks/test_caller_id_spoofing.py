"""Attacks on who pays (issue 14, finding 3): a phone that sets its own caller ID.

Every request here is what a real Asterisk sends when a channel runs the AGI line of the
shipped dialplan (etc/asterisk/extensions_coobill.conf): ${CHANNEL(endpoint)}, ${EXTEN} and
${CALLERID(num)} substituted, the data split on commas as AST_STANDARD_APP_ARGS does, the
environment of setup_env (tests/fakes/asterisk_agi.py DialplanChannel). The gate is the real
GateServer in front of the real service layer and ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from functools import partial

import pytest

from coobill.agi.server import GateOptions, GateServer
from coobill.services.commands import AuthorizeCall, Verdict
from coobill.services.context import BillingContext
from coobill.services.extensions import show_extension
from coobill.services.gate import authorize_call
from tests.fakes.asterisk_agi import Conversation, DialplanChannel, FakeAsterisk, shipped_agi_data
from tests.services.conftest import make_extension, make_rate
from tests.services.test_gate import with_policy

NUMBER = "90012345678"
OLD_FORM = "agi://127.0.0.1:4573/authorize,${CALLERID(num)},${EXTEN}"
Ask = Callable[..., Awaitable[Conversation]]


@pytest.fixture
async def billed(ctx: BillingContext) -> BillingContext:
    """100 and 200 with 10.00 each; calls to 9… cost 0.01 a second."""
    await make_extension(ctx, "100", balance="10")
    await make_extension(ctx, "200", balance="10")
    await make_rate(ctx, "9", initial_cost="0", initial_time=0, rate="0.01", period=1)
    return ctx


@pytest.fixture
async def ask(billed: BillingContext) -> AsyncIterator[Ask]:
    """Runs a channel through the shipped AGI line against a gate on the ledger."""
    gates: list[GateServer] = []

    async def run(channel: DialplanChannel, *, data: str | None = None,
                  **policy: object) -> Conversation:
        ctx = with_policy(billed, **policy) if policy else billed
        gate = GateServer(partial(authorize_call, ctx),
                          replace(GateOptions(), port=0, deadline_seconds=5.0))
        await gate.start()
        gates.append(gate)
        return await asyncio.wait_for(FakeAsterisk(channel.request(data)).call(gate.port), 5.0)

    yield run
    for gate in gates:
        await gate.close(drain_timeout=1.0)


async def reserved(ctx: BillingContext, number: str) -> Decimal:
    return (await show_extension(ctx, number)).reserved


def phone(endpoint: str, caller_id: str, *, exten: str = NUMBER) -> DialplanChannel:
    return DialplanChannel(f"PJSIP/{endpoint}-0000002a", caller_id, exten, endpoint=endpoint)


def local(caller_id: str, *, exten: str = NUMBER) -> DialplanChannel:
    return DialplanChannel(f"Local/{exten}@coobill-outbound-0000001f;2", caller_id, exten)


def test_the_shipped_line_passes_the_endpoint_and_the_number_and_no_caller_id() -> None:
    assert shipped_agi_data() == (
        "agi://127.0.0.1:4573/authorize,${CHANNEL(endpoint)},${EXTEN},trunk")


def test_the_fake_reproduces_the_comma_shift_of_the_old_line() -> None:
    """What the review saw: `${CALLERID(num)}` = "100,12345" shifts the arguments."""
    env = dict(phone("500", "100,12345").request(OLD_FORM))
    assert (env["agi_arg_1"], env["agi_arg_2"], env["agi_arg_3"]) == ("100", "12345", NUMBER)


class TestAPhoneThatSetsItsCallerId:
    async def test_another_extensions_caller_id_is_billed_to_the_phones_own_endpoint(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        seen = await ask(phone("100", "200"))
        assert (seen.variables["COOBILL_RESULT"], seen.variables["COOBILL_REASON"]) == (
            "ALLOW", "ok")
        assert await reserved(billed, "100") > 0
        assert await reserved(billed, "200") == 0

    @pytest.mark.parametrize("caller_id", ["200,12345", "200,12345,9999", '"200",x', "2(0,0)"])
    async def test_a_comma_in_the_caller_id_shifts_nothing(
        self, billed: BillingContext, ask: Ask, caller_id: str
    ) -> None:
        channel = phone("100", caller_id)
        env = dict(channel.request())
        assert (env["agi_arg_1"], env["agi_arg_2"]) == ("100", NUMBER)
        assert env["agi_arg_3"] == "trunk"
        assert "agi_arg_4" not in env
        seen = await ask(channel)
        assert seen.variables["COOBILL_REASON"] == "ok"
        # the limit is what 10.00 buys at the rate of the number really dialled: 1000 s,
        # capped by max_call_seconds (10800) - not "no_rate, unlimited"
        assert seen.variables["COOBILL_LIMIT"] == "1000"
        assert await reserved(billed, "200") == 0

    async def test_an_unknown_phone_posing_as_a_known_extension_bills_nobody(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        """500 is a real endpoint not in the ledger yet: the unknown_extension policy says
        what it may do, never 100's funds."""
        free = await ask(phone("500", "100"))
        assert (free.variables["COOBILL_RESULT"], free.variables["COOBILL_REASON"],
                free.variables["COOBILL_LIMIT"]) == ("ALLOW", "unknown_extension", "")
        strict = await ask(phone("500", "100"), unknown_extension="deny")
        assert (strict.variables["COOBILL_RESULT"], strict.variables["COOBILL_REASON"]) == (
            "DENY", "unknown_extension")
        assert await reserved(billed, "100") == 0

    @pytest.mark.parametrize("endpoint", ["carrier", "office-100", "１００", "100a"])
    async def test_an_endpoint_that_is_not_an_extension_number_is_refused_whatever_the_policy(
        self, billed: BillingContext, ask: Ask, endpoint: str
    ) -> None:
        seen = await ask(phone(endpoint, "100"))
        assert (seen.variables["COOBILL_RESULT"], seen.variables["COOBILL_REASON"]) == (
            "DENY", "unknown_extension")
        assert await reserved(billed, "100") == 0

    async def test_an_old_form_request_whose_caller_id_is_not_the_endpoint_is_a_bad_request(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        seen = await ask(phone("100", "200"), data=OLD_FORM)
        assert (seen.variables["COOBILL_RESULT"], seen.variables["COOBILL_REASON"]) == (
            "DENY", "bad_request")
        assert await reserved(billed, "200") == 0

    async def test_an_old_form_request_whose_caller_id_is_the_endpoint_still_works(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        seen = await ask(phone("100", "100"), data=OLD_FORM)
        assert seen.variables["COOBILL_REASON"] == "ok"
        assert await reserved(billed, "100") > 0

    async def test_an_old_form_request_with_a_comma_in_the_caller_id_is_a_bad_request(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        seen = await ask(phone("500", "100,12345"), data=OLD_FORM)
        assert (seen.variables["COOBILL_RESULT"], seen.variables["COOBILL_REASON"]) == (
            "DENY", "bad_request")


class TestAChannelWithoutAnEndpoint:
    async def test_a_local_channel_is_billed_to_its_caller_id(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        channel = local("100")
        assert dict(channel.request())["agi_arg_1"] == ""  # CHANNEL(endpoint) fails there
        seen = await ask(channel)
        assert seen.variables["COOBILL_REASON"] == "ok"
        assert await reserved(billed, "100") > 0

    async def test_a_local_channel_naming_an_unknown_extension_is_refused_even_when_free(
        self, billed: BillingContext, ask: Ask
    ) -> None:
        seen = await ask(local("999"))
        assert (seen.variables["COOBILL_RESULT"], seen.variables["COOBILL_REASON"]) == (
            "DENY", "unknown_extension")

    @pytest.mark.parametrize("caller_id", ["100,12345", "unknown", ""])
    async def test_a_local_channel_with_a_caller_id_that_is_no_extension_is_refused(
        self, billed: BillingContext, ask: Ask, caller_id: str
    ) -> None:
        seen = await ask(local(caller_id))
        assert seen.variables["COOBILL_RESULT"] == "DENY"
        assert seen.variables["COOBILL_REASON"] in ("unknown_extension", "bad_request")
        assert await reserved(billed, "100") == 0


class TestATransferredLegDiallingOn:
    async def test_a_trunk_channel_pays_as_the_extension_the_daemon_says_placed_the_call(
        self, billed: BillingContext
    ) -> None:
        """daemon._authorize replaces a transferred external leg's payer (the trunk endpoint
        `carrier`) by the extension that placed the call; that one is billed as usual."""
        asked = AuthorizeCall("1700000000.2", "carrier", NUMBER,
                              channel="PJSIP/carrier-00000002")
        alone = await authorize_call(billed, asked)
        assert (alone.allowed, alone.reason) == (False, "unknown_extension")
        paid: Verdict = await authorize_call(billed, replace(asked, extension="100",
                                                             payer_source="endpoint"))
        assert (paid.allowed, paid.reason) == (True, "ok")
        assert await reserved(billed, "100") == paid.held
