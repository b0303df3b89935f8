"""Login throttling, in bounded memory: too many failed passwords → 429.

Two counters, both in one table of at most `max_entries` keys:

- per client address and name: `max_failures` failures within `window` seconds lock that
  name out from that address (the user can still log in from elsewhere: nobody can lock
  another user out from everywhere);
- per client address: `max_address_failures` failures within the window, whatever the names,
  lock the address out (a script spraying names gets no further than a script guessing one).

A key never holds the name itself, only 16 bytes of a hash of its lowercase form, so a
10 MB name costs what a short one does. Failures older than the window are forgotten
(entries are kept in order of their last failure and pruned from the front), and when the
table is full the entry whose last failure is oldest goes first: memory is bounded whatever
names and addresses are sent.

Every failure is logged as `portal.login_failed peer=<address> user=<name>` and each lockout,
when it begins, as `portal.login_locked peer=<address> ...`: the lines the fail2ban filter
(etc/fail2ban/filter.d/coobill.conf) reads.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from coobill.services.users import is_user_name

MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 20
WINDOW_SECONDS = 300.0
MAX_ENTRIES = 10_000

log = logging.getLogger("coobill.portal")

Key = tuple[str, bytes]  # (address, name digest); b"" for the address's own counter


def loggable_name(name: str) -> str:
    """The name as a log field: itself when it is a possible user name (letters, digits and
    `_ . @ -`, nothing a log parser could split on), else a short hash of it."""
    if is_user_name(name):
        return name
    return "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _name_key(name: str) -> bytes:
    return hashlib.blake2b(name.lower().encode("utf-8", "surrogatepass"), digest_size=16).digest()


class LoginThrottle:
    """Failures per (client address, name) and per client address, in memory."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        max_address_failures: int = MAX_ADDRESS_FAILURES,
        window: float = WINDOW_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        # Each key's failure times, at most its limit of them (older ones cannot matter).
        self._failures: OrderedDict[Key, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, name: str, address: str) -> int:
        """Seconds until this name may try again from this address; 0 when it may now."""
        self._prune()
        return max(
            self._wait((address, _name_key(name)), self.max_failures),
            self._wait((address, b""), self.max_address_failures),
        )

    def failed(self, name: str, address: str) -> None:
        """Count a failed login, and log it (and the lockout it starts, if it does)."""
        self._prune()
        who = loggable_name(name)
        log.warning("portal.login_failed peer=%s user=%s", address, who)
        for key, limit in (((address, _name_key(name)), self.max_failures),
                           ((address, b""), self.max_address_failures)):
            if self._count(key, limit) == limit:
                scope = "user" if key[1] else "address"
                log.warning("portal.login_locked peer=%s user=%s scope=%s seconds=%d",
                            address, who, scope, int(self.window))

    def succeeded(self, name: str, address: str) -> None:
        """A right password forgets the name's failures from this address (not the address's:
        a spray with one known password among them stays counted)."""
        self._failures.pop((address, _name_key(name)), None)

    def _wait(self, key: Key, limit: int) -> int:
        times = self._failures.get(key)
        if times is None or len(times) < limit or times[0] <= self._clock() - self.window:
            return 0
        return max(1, int(times[0] + self.window - self._clock()) + 1)

    def _count(self, key: Key, limit: int) -> int:
        """Add a failure now; the number of failures within the window, after it."""
        times = self._failures.get(key)
        if times is None:
            while len(self._failures) >= self.max_entries:
                self._failures.popitem(last=False)  # the oldest last failure goes first
            times = self._failures[key] = deque(maxlen=limit)
        else:
            self._failures.move_to_end(key)
        now = self._clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        before = len(times)
        times.append(now)
        # Past the limit the deque drops its oldest: one more failure does not start a lock.
        return before + 1

    def _prune(self) -> None:
        """Forget the keys whose last failure is older than the window (from the front, where
        the oldest are): O(1) per call beyond what has expired."""
        horizon = self._clock() - self.window
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if times and times[-1] > horizon:
                break
            del self._failures[key]
