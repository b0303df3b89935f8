"""Signed session cookies: who is logged in, which server-side session, and its CSRF token.

The cookie is `base64(json).hmac-sha256`. A logged-in cookie names a row of the server's
session table (services/portal_sessions.py), so logout ends it everywhere, whoever kept a
copy; before login it carries only the login form's CSRF token. Its key is `web.secret_key`,
else the portal key file beside the ledger key (storage/ledger_key.py), else (a ledger in
memory) one generated when the app is built.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from coobill.config import WebConfig

COOKIE = "coobill_session"
# A working day; the portal asks for the password again after that.
MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's session: `user_id` None before login (it still carries a CSRF token)."""

    user_id: int | None
    csrf: str
    issued: int
    credential: str = ""  # the user's PortalUser.credential at login
    session_id: str = ""  # the server's row (portal_session.id); "" before login


def session_secret(config: WebConfig) -> str:
    """The configured key, else a new random one (valid until the daemon restarts)."""
    return config.secret_key or secrets.token_urlsafe(32)


class SessionSigner:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"coobill-session:" + secret.encode()).digest()
        self._clock = clock

    def new(
        self, user_id: int | None = None, credential: str = "", session_id: str = ""
    ) -> Session:
        return Session(
            user_id, secrets.token_urlsafe(24), int(self._clock()), credential, session_id
        )

    def instant(self) -> datetime:
        """Now on the signer's clock (the one a cookie's age is measured on), as an aware
        UTC instant."""
        return datetime.fromtimestamp(self._clock(), UTC)

    def dumps(self, session: Session) -> str:
        body = json.dumps(
            {
                "u": session.user_id,
                "c": session.csrf,
                "i": session.issued,
                "k": session.credential,
                "s": session.session_id,
            },
            separators=(",", ":"),
        )
        payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None when it is missing, forged, garbled or too old."""
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(
                data["u"],
                str(data["c"]),
                int(data["i"]),
                str(data.get("k", "")),
                str(data.get("s", "")),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if not 0 <= self._clock() - session.issued <= MAX_AGE_SECONDS:
            return None
        return session

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
