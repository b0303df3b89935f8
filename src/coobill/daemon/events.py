"""What the daemon has done so far, for whoever watches it (tests, a future status page).

Each kind of progress is a `Tally` (coobill/tally.py): a count that only grows, and a way to
wait until it reaches a number - on state, not on log lines. The daemon adds; observers read
or wait. The AMI follower keeps its own (`AmiFollower.progress`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from coobill.tally import Tally

__all__ = ["DaemonEvents", "Tally"]


@dataclass(frozen=True)
class DaemonEvents:
    """The daemon's progress since it started."""

    # Ended channels whose settlement committed (one per channel, whatever its Dials).
    settled: Tally = field(default_factory=Tally)
    # Reconciliations of the holds with the PBX's live channels after a login.
    reconciled: Tally = field(default_factory=Tally)
    # Checks of the holds against the live channels during a session.
    live_checked: Tally = field(default_factory=Tally)
    # Webhook events delivered to every configured URL (daemon/webhooks.py).
    webhooks_delivered: Tally = field(default_factory=Tally)
    # Checks for the recurring fees due (daemon/fees.py), whatever they charged.
    fee_checks: Tally = field(default_factory=Tally)
    # Rounds of the call indexer (daemon/call_index.py) that left the keyword index up to date.
    calls_indexed: Tally = field(default_factory=Tally)

    def watch(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every count that grows (daemon/status.py)."""
        for tally in (self.settled, self.reconciled, self.live_checked, self.webhooks_delivered,
                      self.fee_checks, self.calls_indexed):
            tally.listeners.append(listener)
