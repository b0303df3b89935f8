"""The AMI follower's settings (`FollowerOptions`, from the `[ami]` section) and what it has
done so far (`FollowerProgress`, counts to read or wait on)."""

from __future__ import annotations

from dataclasses import dataclass, field

from coobill.ami.calls import CdrMode
from coobill.ami.endpoints import DEFAULT_PHONE_PATTERN
from coobill.config import AmiConfig
from coobill.tally import Tally

__all__ = ["FollowerOptions", "FollowerProgress"]


@dataclass(frozen=True)
class FollowerProgress:
    """What the follower has done since it started: counts to read or wait on."""

    sessions: Tally = field(default_factory=Tally)  # logins that succeeded
    lost: Tally = field(default_factory=Tally)  # sessions that were up and ended
    login_failures: Tally = field(default_factory=Tally)  # logins Asterisk refused
    retries: Tally = field(default_factory=Tally)  # waits before the next attempt


@dataclass(frozen=True, slots=True)
class FollowerOptions:
    """Where the PBX's manager interface is, and the follower's timers."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    events: str = "on"  # the Login's Events: what the session is sent
    cdr_events: CdrMode = "auto"
    cdr_grace_seconds: float = 5.0
    phone_pattern: str = DEFAULT_PHONE_PATTERN
    reconnect_seconds: float = 2.0
    max_reconnect_seconds: float = 60.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    action_timeout: float = 10.0
    tick_seconds: float = 1.0
    # Every `live_check_seconds` of a session (0: never), the live channels are listed again
    # and `on_live_check` gets them with the calls still being followed: holds whose channel
    # is in neither had their end lost without the connection dropping (Asterisk drops events
    # for a manager client that falls behind).
    live_check_seconds: float = 0.0

    @classmethod
    def from_config(cls, ami: AmiConfig) -> FollowerOptions:
        """The follower the `[ami]` section asks for (the rest: the defaults above)."""
        return cls(
            ami.host, ami.port, ami.username, ami.secret, cdr_events=ami.cdr_events,
            cdr_grace_seconds=ami.cdr_grace_seconds, phone_pattern=ami.phone_pattern,
            reconnect_seconds=ami.reconnect_seconds, live_check_seconds=ami.live_check_seconds,
        )
