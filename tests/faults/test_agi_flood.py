"""A thousand malformed FastAGI requests interleaved with a hundred valid ones, against the real
gate on the real ledger: every valid call is allowed with the limit its funds buy, within the
deadline; every malformed one is denied as a bad request, or just closed when it never made a
whole request; and the process's memory does not grow from one round to the next."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial

from coobill.agi.server import GateOptions, GateServer
from coobill.rating import max_duration
from coobill.services.balances import recharge
from coobill.services.commands import SettleChannel
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, edit_extensions, ensure_extensions
from coobill.services.gate import authorize_call
from coobill.services.settlement import settle_channel
from tests.fakes.ami_server import PJSIP
from tests.fakes.asterisk_agi import FakeAsterisk, env_block, load_trace_env
from tests.faults.agi_corpus import Malformed, malformed_corpus
from tests.faults.calls import TARIFF, billed
from tests.faults.ledger_checks import holds_left

DEADLINE = 5.0  # GateOptions' default
CONCURRENCY = 100  # connections open at once (each is two descriptors in this process)
DENIED = {"COOBILL_RESULT": "DENY", "COOBILL_REASON": "bad_request", "COOBILL_LIMIT": "",
          "COOBILL_DIAL_OPTIONS": ""}
# Ten groups of ten extensions, each group recharged by a different amount.
EXTENSIONS = {f"2{n:03d}": Decimal(n // 10 + 1) / 4 for n in range(100)}
# A second round leaves ~0.3 MB more, nearly all of it pytest's copies of the round's log
# records; a leak of one connection's objects per request would be ~4 MB.
GROWTH_BOUND = 2 * 1024 * 1024


def uniqueid(n: int, round_: int) -> str:
    return f"179580000{round_}.{n}"


def valid_env(n: int, round_: int) -> bytes:
    env = dict(load_trace_env(PJSIP / "agi-sip_answered.txt"))
    number = f"2{n:03d}"
    env.update(agi_uniqueid=uniqueid(n, round_), agi_channel=f"PJSIP/{number}-{n:08x}",
               agi_callerid=number, agi_arg_1=number)
    return env_block(env.items())


def expected_valid(n: int, cap_seconds: int) -> dict[str, str]:
    limit = max_duration(TARIFF, EXTENSIONS[f"2{n:03d}"], cap_seconds)
    return {"COOBILL_RESULT": "ALLOW", "COOBILL_REASON": "ok", "COOBILL_LIMIT": str(limit),
            "COOBILL_DIAL_OPTIONS": f"L({limit * 1000})"}


def check_malformed(request: Malformed, variables: dict[str, str]) -> str | None:
    """What is wrong with the gate's answer to `request`, or None."""
    if request.expect == "denied" and variables != DENIED:
        return f"{request.kind}: {variables} instead of DENY bad_request"
    if request.expect == "closed" and variables:
        return f"{request.kind}: {variables} for an incomplete request"
    if not variables.items() <= DENIED.items():
        return f"{request.kind}: {variables}"
    return None


class Flood:
    """One round: the corpus and the valid calls, shuffled, `CONCURRENCY` at a time."""

    def __init__(self, port: int, corpus: tuple[Malformed, ...], cap_seconds: int) -> None:
        self.port = port
        self.cap_seconds = cap_seconds
        work: list[tuple[int, Malformed | None]] = [(-1, m) for m in corpus]
        work += [(n, None) for n in range(len(EXTENSIONS))]
        random.Random(11).shuffle(work)
        self.work = work
        self.round = 0

    async def run(self) -> list[str]:
        self.round += 1
        gate = asyncio.Semaphore(CONCURRENCY)
        problems: list[str] = []

        async def one(n: int, request: Malformed | None) -> None:
            async with gate:
                problem = await (self.valid(n) if request is None else self.malformed(request))
            if problem is not None:
                problems.append(problem)

        async with asyncio.TaskGroup() as group:
            for n, request in self.work:
                group.create_task(one(n, request))
        return problems

    async def valid(self, n: int) -> str | None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen = await FakeAsterisk(env_bytes=valid_env(n, self.round)).call(self.port)
        took = loop.time() - started
        if seen.variables != expected_valid(n, self.cap_seconds):
            return f"valid call {n}: {seen.variables}"
        if took >= DEADLINE:
            return f"valid call {n} answered in {took:.2f}s"
        return None

    async def malformed(self, request: Malformed) -> str | None:
        asterisk = FakeAsterisk(env_bytes=request.payload, close_after_env=not request.complete)
        async with asyncio.timeout(DEADLINE + 2):
            seen = await asterisk.call(self.port)
        return check_malformed(request, seen.variables)


@contextmanager
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def live_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """What is still allocated, less the test harness's own records of the round."""
    kept = snapshot.filter_traces([
        tracemalloc.Filter(False, logging.__file__),
        tracemalloc.Filter(False, "*/_pytest/*"),
        tracemalloc.Filter(False, tracemalloc.__file__),
    ])
    return sum(stat.size for stat in kept.statistics("filename"))


async def fund(ctx: BillingContext) -> None:
    await billed(ctx, {})
    await ensure_extensions(ctx, [(number, "") for number in EXTENSIONS])
    await edit_extensions(ctx, list(EXTENSIONS), ExtensionChanges(billing=True))
    for amount in sorted(set(EXTENSIONS.values())):
        await recharge(ctx, [n for n, a in EXTENSIONS.items() if a == amount], amount)


class TestAFloodOfMalformedRequests:
    async def test_valid_calls_are_answered_right_and_on_time_and_memory_stays_flat(
        self, ctx: BillingContext
    ) -> None:
        """Two rounds of the same 1,100 requests (the first round's calls end unanswered
        between them, so the second gets the same limits); the memory still allocated after
        the second round, against after the first, grows by less than a few MB."""
        await fund(ctx)
        corpus = malformed_corpus()
        gate = GateServer(partial(authorize_call, ctx), GateOptions(port=0))
        await gate.start()
        flood = Flood(gate.port, corpus, ctx.config.billing.max_call_seconds)
        try:
            assert await flood.run() == []  # the warm-up round
            for n in range(len(EXTENSIONS)):  # ... whose calls end unanswered
                await settle_channel(ctx, SettleChannel(uniqueid(n, 1), f"2{n:03d}", "", ()))
            with traced():
                gc.collect()
                before = live_bytes(tracemalloc.take_snapshot())
                assert await flood.run() == []
                gc.collect()
                grown = live_bytes(tracemalloc.take_snapshot()) - before
        finally:
            await gate.close()
        assert grown < GROWTH_BOUND, f"{grown / 1e6:.1f} MB more after the second round"
        assert sorted(await holds_left(ctx)) == sorted(uniqueid(n, 2) for n in range(100))
