"""The ledger key: the secret that seals the ledger's entries, kept OUTSIDE the database.

Every ledger entry carries an HMAC-SHA256 chained to the entry before it (services/ledger.py),
keyed by this secret; whoever can rewrite the database but not read this file cannot rewrite
an entry, remove one or add one without `coobill audit` naming the first that is wrong.

Where it is: `[database] key_file`; by default, for a SQLite ledger, the file beside it
(`coobill.db` -> `coobill.db.key`), else `$STATE_DIRECTORY/ledger.key` (systemd's
StateDirectory), else /var/lib/coobill/ledger.key. Made on first use: 32 random bytes, hex,
mode 0600 whatever the umask, published atomically (two processes starting at once agree).
Every daemon sharing one PostgreSQL ledger needs a copy of the same file.
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


def load_key(path: Path | None) -> bytes:
    """The key in `path`, made there first if there is none."""
    if path is None:
        return secrets.token_bytes(KEY_BYTES)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        _publish(path, secrets.token_hex(KEY_BYTES))
    except FileExistsError:  # another process made it a moment ago: theirs stands
        pass
    except OSError as exc:
        raise ConfigurationError(
            f"config: database.key_file: cannot make the ledger key {path}: {exc.strerror} "
            "(set [database] key_file, or COOBILL_DATABASE__KEY_FILE)"
        ) from None
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"config: database.key_file: {path} is not a ledger key") from None
    except PermissionError:
        raise ConfigurationError(f"config: database.key_file: {path} cannot be read") from None
    if len(key) < 16:
        raise ConfigurationError(f"config: database.key_file: {path} is too short a key")
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
