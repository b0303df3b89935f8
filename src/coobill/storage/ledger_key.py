"""The ledger key: the secret that seals the ledger's entries, kept OUTSIDE the database.

Every ledger entry carries an HMAC-SHA256 chained to the entry before it (services/ledger.py),
keyed by this secret; whoever can rewrite the database but not read this file cannot rewrite
an entry, remove one or add one without `coobill audit` naming the first that is wrong.

Where it is: `[database] key_file`; by default, for a SQLite ledger, the file beside it
(`coobill.db` -> `coobill.db.key`), else `$STATE_DIRECTORY/ledger.key` (systemd's
StateDirectory), else /var/lib/coobill/ledger.key. Made on first use: 32 random bytes, hex,
mode 0600 whatever the umask, published atomically (two processes starting at once agree).
Every daemon sharing one PostgreSQL ledger needs a copy of the same file.

The portal key (portal_key_path) signs the portal's session cookies; it lives beside the
ledger key (`coobill.db.key` -> `coobill.db.portal.key`, `ledger.key` -> `ledger.portal.key`)
and is made the same way, so that reading (or copying) the database never gives anyone the
means to forge a cookie. `[web] secret_key` overrides it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from coobill.errors import ConfigurationError

KEY_BYTES = 32


def key_path(url: str, configured: str = "") -> Path | None:
    """The key file for the ledger at `url`; None for an in-memory ledger (a key of its own)."""
    if configured:
        return Path(configured)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            return None
        return Path(database + ".key")
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state or "/var/lib/coobill") / "ledger.key"


def portal_key_path(url: str, configured: str = "") -> Path | None:
    """The portal's cookie-signing key, beside the ledger key (`configured` is
    database.key_file)."""
    ledger = key_path(url, configured)
    if ledger is None:
        return None
    return ledger.with_name(ledger.name.removesuffix(".key") + ".portal.key")


def load_key(path: Path | None, setting: str = "database.key_file") -> bytes:
    """The key in `path`, made there first if there is none; `setting` names the key an
    operator sets to put it elsewhere (in error messages)."""
    if path is None:
        return secrets.token_bytes(KEY_BYTES)
    try:
        return _read(path, setting)
    except FileNotFoundError:
        pass
    try:
        _publish(path, secrets.token_hex(KEY_BYTES))
    except FileExistsError:  # another process made it a moment ago: theirs stands
        pass
    except OSError as exc:
        section, key = setting.split(".")
        raise ConfigurationError(
            f"config: {setting}: cannot make the key {path}: {exc.strerror} "
            f"(set [{section}] {key}, or COOBILL_{section.upper()}__{key.upper()})"
        ) from None
    return _read(path, setting)


def _read(path: Path, setting: str) -> bytes:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"config: {setting}: {path} is not a key file") from None
    except PermissionError:
        raise ConfigurationError(f"config: {setting}: {path} cannot be read") from None
    if len(key) < 16:
        raise ConfigurationError(f"config: {setting}: {path} is too short a key")
    return key


def _publish(path: Path, text: str) -> None:
    """Write to a private temporary file, then link it into place: the key appears whole or
    not at all, with mode 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
