"""A stand-in for the service layer's `authorize`: records each call, answers from a script."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from coobill.services.commands import AuthorizeCall, Reason, Verdict

THIRTY_SECONDS = Verdict(
    allowed=True, reason=Reason.OK, limit_seconds=30, held=Decimal("0.1500"), rate_id=7
)


class ScriptedAuthorizer:
    """Answers every call with `verdict`, or raises `error`; `hold` keeps it waiting until set."""

    def __init__(
        self,
        verdict: Verdict = THIRTY_SECONDS,
        *,
        error: Exception | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        self.verdict = verdict
        self.error = error
        self.hold = hold
        self.calls: list[AuthorizeCall] = []
        self.entered = asyncio.Event()
        self.cancelled = False

    async def __call__(self, call: AuthorizeCall) -> Verdict:
        self.calls.append(call)
        self.entered.set()
        if self.hold is not None:
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        if self.error is not None:
            raise self.error
        return self.verdict
