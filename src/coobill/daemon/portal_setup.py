"""What the daemon gives its portal: the hello sent over the private link when a portal
process starts (settings, the ledger's address and keys), and the portal's first user."""

from __future__ import annotations

import logging
import sys
from typing import Any

from coobill.config import Settings, WebConfig
from coobill.errors import ConfigurationError
from coobill.services.context import BillingContext
from coobill.services.users import make_first_admin
from coobill.storage.db import is_sqlite
from coobill.storage.ledger_key import load_key, portal_key_path

log = logging.getLogger("coobill.daemon")


async def portal_hello(ctx: BillingContext, settings: Settings) -> dict[str, Any]:
    """What the portal's process needs, sent over its private link (not argv or the
    environment, which other local users may read): the settings, the ledger as this
    daemon reaches it, the ledger key and the session-signing key."""
    engine = ctx.uow.engine
    url = engine.url.render_as_string(hide_password=False)
    if is_sqlite(url) and (engine.url.database or ":memory:") == ":memory:":
        raise ConfigurationError("config: database.url: a ledger in memory cannot be shared "
                                 "with the portal's process; use a file, or disable [web]")
    search_path = ""
    if not is_sqlite(url):
        # The schema the daemon's connections use (a test's own, or "$user", public).
        async with engine.connect() as conn:
            search_path = str((await conn.exec_driver_sql("SHOW search_path")).scalar())
    dumped = settings.model_dump(mode="json")
    dumped["ami"]["secret"] = ""  # the portal has no business with AMI
    database = settings.database
    return {
        "settings": dumped,
        "database_url": url,
        "search_path": search_path,
        "ledger_key": ctx.uow.ledger_key.hex(),
        "session_secret": settings.web.secret_key or load_key(
            portal_key_path(url, database.key_file), "web.secret_key").hex(),
    }


async def announce_first_admin(ctx: BillingContext, web: WebConfig, port: int | None) -> None:
    """No portal user yet: make `admin` with a random password and say it, once, on the
    console (which is the journal under systemd)."""
    made = await make_first_admin(ctx)
    if made is None:
        return
    user, password = made
    login = f"http://{web.host}:{port}/login"
    log.warning('portal.first_admin user=%s password=%s login=%s hint="change it on the '
                'Users page or with: coobill user passwd %s"', user.name, password, login,
                user.name)
    if sys.stderr.isatty():
        print(  # noqa: T201 - a person at the terminal is told the password once
              f"\n  coobill made the portal's first user.\n  Log in at {login}\n"
              f"    user:     {user.name}\n    password: {password}\n"
              f"  and change the password on the Users page.\n", file=sys.stderr)
