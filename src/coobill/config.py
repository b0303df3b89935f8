"""Configuration: a TOML file, every key overridable by COOBILL_<SECTION>__<KEY>.

The file is `--config PATH`, else $COOBILL_CONFIG, else the one of the virtual environment
coobill runs from (`<venv>/etc/coobill/coobill.toml`: `make run` writes it for a checkout, so
`.venv/bin/coobill` and the daemon find the same ledger from any folder), else
/etc/coobill/coobill.toml (an installed service); the first that exists is read. With none,
the defaults below run a daemon on an embedded SQLite database. A bad value raises
ConfigurationError naming the key.

Length: past ~350 lines because this is the one place every setting is declared, section
after section with its default and bounds; finding, reading and wording errors about the
file are the last ~80 lines.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from coobill.errors import ConfigurationError

SYSTEM_CONFIG = Path("/etc/coobill/coobill.toml")


def _environment_config() -> Path | None:
    # As Jupyter keeps {sys.prefix}/etc/jupyter: a virtual environment carries its own file.
    if sys.prefix == sys.base_prefix:
        return None
    return Path(sys.prefix) / "etc" / "coobill" / "coobill.toml"


ENVIRONMENT_CONFIG = _environment_config()


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(Section):
    url: str = "sqlite+aiosqlite:///coobill.db"
    # SQLite: how long a writer waits for another's lock before giving up.
    busy_timeout_ms: int = Field(default=5000, ge=0)
    # The secret that seals the ledger's entries, outside the database (storage/ledger_key.py).
    # Empty: beside a SQLite ledger (coobill.db.key), else $STATE_DIRECTORY/ledger.key.
    key_file: str = ""

    @field_validator("url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return url


class AgiConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=4573, ge=0, le=65535)
    ring_allowance_seconds: int = Field(default=60, ge=0)
    deadline_seconds: float = Field(default=5.0, gt=0)
    max_env_bytes: int = Field(default=65536, ge=1024)
    on_error: Literal["deny", "allow"] = "deny"
    # Conversations at once; past it the oldest connection still sending nothing is closed.
    max_connections: int = Field(default=256, ge=1, le=65536)
    # Asterisk sends its whole environment on connect; a connection silent this long is not it.
    environment_timeout_seconds: float = Field(default=1.0, gt=0)


class AmiConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "coobill"
    secret: str = Field(default="", repr=False)
    # "auto": trust Cdr events once one is seen; "on"/"off" force it.
    cdr_events: Literal["auto", "on", "off"] = "auto"
    cdr_grace_seconds: float = Field(default=5.0, ge=0)
    # Endpoints whose name matches are phones (extensions); the others are trunks.
    phone_pattern: str = r"^\d+$"
    reconnect_seconds: float = Field(default=2.0, gt=0)
    # While connected, list the live channels this often and settle or flag the holds of
    # calls whose end was lost (Asterisk drops events for a client that falls behind); 0: only
    # after each (re)connect.
    live_check_seconds: float = Field(default=300.0, ge=0)
    # Asterisk's CDR store read when recovering a missed end (cdr_csv's Master.csv).
    cdr_csv_path: str = ""
    # cdr.conf [csv] usegmtime: Master.csv's times are GMT (the sample cdr.conf's "yes").
    cdr_csv_gmt: bool = True


class WebConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Signs session cookies. Empty: the portal key file beside the ledger key, made on first
    # start (storage/ledger_key.py), never the database.
    secret_key: str = Field(default="", repr=False)
    secure_cookies: bool = False
    # Request bodies larger than this are refused (413) before any work; the portal's
    # largest form (a batch recharge of every extension) is a few KiB.
    max_body_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    # /api/docs (Swagger UI, loaded from a CDN into the portal's origin): off unless asked
    # for. /openapi.json, the schema itself, is always served.
    api_docs: bool = False
    # The portal runs in a process of its own at this nice level (0-19): under load the
    # kernel runs the gate first.
    priority: int = Field(default=10, ge=0, le=19)
    # Connections beyond this are closed as soon as they are accepted.
    max_connections: int = Field(default=256, ge=1, le=65536)
    # A connection must finish its request's headers this soon after it opens (or after the
    # first byte of its next request on a kept-alive connection), or it is closed.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    keep_alive_seconds: int = Field(default=5, ge=1, le=600)
    # The request line and headers together: a longer one is answered 400 and closed.
    max_header_bytes: int = Field(default=16384, ge=1024, le=1048576)
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses or networks).
    # Empty: none; the peer address is the client's, as the login throttle must see it.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network") from None
        return proxies


class BillingConfig(Section):
    no_rate: Literal["allow_free", "deny"] = "allow_free"
    unknown_extension: Literal["allow_free", "deny"] = "allow_free"
    # The longest call the gate allows when the funds would buy more (or the rate is free).
    max_call_seconds: int = Field(default=10800, ge=1)
    # The most any balance may hold (and any credit limit be): a recharge or an adjustment
    # that would take a balance above it is refused whole. Below money.MAX_AMOUNT, so integer
    # ten-thousandths stay far inside the ledger's 64-bit columns.
    max_balance: Decimal = Field(
        default=Decimal("1000000.0000"), gt=0, lt=Decimal("100000000000"), decimal_places=4
    )
    # The least a call's sell price must exceed its trunk's buy price by, per minute (the
    # cost of the first 60 s at each), when the dialplan names the trunk: below it the gate
    # says DENY no_margin (services/margin.py). None: no such check.
    min_margin: Decimal | None = Field(default=None, ge=0, lt=Decimal("100000000000"),
                                       decimal_places=4)
    # How often the daemon charges the recurring fees that are due (services/fees.py).
    fee_check_seconds: float = Field(default=60.0, gt=0, le=86400)


def shown_url(url: str) -> str:
    """A webhook URL as the portal, the logs and `coobill webhooks list` show it: whatever
    it carries to authenticate (a user:password@ or a token@, the query's values, a
    fragment) masked, so a look at a page or a log line does not hand it on."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "***"
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, colon, _ = user.partition(":")
        netloc = f"{name}:***@{host}" if colon and name else f"***@{host}"
    query = "&".join(f"{pair.partition('=')[0]}=***" for pair in parts.query.split("&")
                     if pair)
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


def without_url_secrets(text: str, urls: tuple[str, ...] | list[str]) -> str:
    """`text` (an error message) with each of `urls`, and each secret part of one, masked."""
    from urllib.parse import urlsplit

    for url in urls:
        text = text.replace(url, shown_url(url))
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        secrets = [parts.password, parts.username if parts.password is None else None,
                   *(pair.partition("=")[2] for pair in parts.query.split("&")), parts.fragment]
        for secret in secrets:
            if secret and len(secret) >= 4:  # a short one would mask ordinary words
                text = text.replace(secret, "***")
    return text


class WebhooksConfig(Section):
    # Where the outbox's events go (services/outbox.py, daemon/webhooks.py): only these, set
    # here by the operator, never by a portal visitor. Empty: no events are written at all.
    urls: tuple[str, ...] = ()
    # The HMAC-SHA256 key of the X-Coobill-Signature header; required with urls.
    secret: str = Field(default="", repr=False)
    # Only these kinds are written (empty: every kind).
    events: tuple[str, ...] = ()
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # A failed delivery is tried again after 1 s, 2 s, 4 s ... up to this.
    max_backoff_seconds: float = Field(default=300.0, ge=1, le=86400)
    # After this many failed attempts an event waits for `coobill webhooks retry` (and the
    # later events of its extension wait behind it, to keep their order); 0: never give up.
    max_attempts: int = Field(default=0, ge=0, le=1000)
    # How often the daemon looks for new events (the CLI's and the portal's are written by
    # other processes).
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Delivered events are deleted after this many days (0: kept).
    keep_delivered_days: int = Field(default=30, ge=0, le=3650)

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        from urllib.parse import urlsplit

        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{shown_url(url)!r} is not an http:// or https:// URL")
        if len(set(urls)) != len(urls):
            raise ValueError("a URL is listed twice")
        return urls

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
        if unknown:
            raise ValueError(f"unknown event {unknown[0]!r} (events: {', '.join(WEBHOOK_EVENTS)})")
        return events

    @model_validator(mode="after")
    def _secret_with_urls(self) -> WebhooksConfig:
        if self.urls and len(self.secret) < 16:
            raise ValueError("secret: at least 16 characters are needed when urls are set")
        return self


# Every event the outbox writes (services/outbox.py names each where it is written).
WEBHOOK_EVENTS = ("call.settled", "recharge", "adjustment", "fee", "low_balance",
                  "hold.flagged", "extension.locked")


@functools.cache
def _host_name() -> str:
    return socket.gethostname()[:64]


class PbxConfig(Section):
    # Which PBX this daemon serves, when several share one ledger: recovery only touches the
    # holds of its own PBX's calls. Empty: this machine's host name.
    name: str = Field(default="", max_length=64)

    def identity(self) -> str:
        return self.name or _host_name()


class RecordsConfig(Section):
    # Refused calls (services/refused.py): kept this many days and at most this many rows, so
    # a dialling storm cannot fill the disk; queued in memory up to `refused_queue` (more are
    # counted and dropped: the gate never waits for them), written `refused_batch` at a time.
    refused_keep_days: int = Field(default=90, ge=1, le=36500)
    refused_max_rows: int = Field(default=1_000_000, ge=1)
    refused_queue: int = Field(default=10_000, ge=1, le=1_000_000)
    refused_batch: int = Field(default=500, ge=1, le=10_000)


class LogConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["keyvalue", "json"] = "keyvalue"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COOBILL_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database: DatabaseConfig = DatabaseConfig()
    agi: AgiConfig = AgiConfig()
    ami: AmiConfig = AmiConfig()
    web: WebConfig = WebConfig()
    billing: BillingConfig = BillingConfig()
    pbx: PbxConfig = PbxConfig()
    records: RecordsConfig = RecordsConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    log: LogConfig = LogConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment; a file only through `settings_from` (its path
        passed, not kept in a module global)."""
        return init_settings, env_settings


def settings_from(path: Path | None) -> Settings:
    """The environment over the file at `path` (None: the environment alone); pydantic's
    errors as they come (load_settings words them)."""

    class FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources = super().settings_customise_sources(
                settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings)
            if path is None:
                return sources
            return (*sources, TomlConfigSettingsSource(settings_cls, toml_file=path))

    read = FromFile()
    return Settings.model_construct(**{name: getattr(read, name) for name in Settings.model_fields})


def config_path(explicit: str | None = None) -> Path | None:
    """The configuration file in force: --config, else COOBILL_CONFIG, else the virtual
    environment's, else the system one."""
    chosen = explicit or os.environ.get("COOBILL_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigurationError(f"config: {path} does not exist or is not a file")
        return path
    for found in (ENVIRONMENT_CONFIG, SYSTEM_CONFIG):
        if found is not None and found.is_file():
            return found
    return None


# Keys whose values are not repeated in an error message (a URL may carry a password).
_SECRET_KEYS = ("secret", "secret_key", "url", "urls")


def _check_env_sections() -> None:
    """pydantic-settings ignores COOBILL_<SECTION>__<KEY> for an unknown section, so a typo
    such as COOBILL_DATABSE__URL would silently leave the default in force."""
    for name in os.environ:
        upper = name.upper()
        if upper.startswith("COOBILL_") and "__" in upper:
            section = upper.removeprefix("COOBILL_").split("__", 1)[0].lower()
            if section not in Settings.model_fields:
                raise ConfigurationError(
                    f"config: {name}: there is no section [{section}] "
                    f"(sections: {', '.join(Settings.model_fields)})"
                )


def load_settings(explicit_path: str | None = None) -> Settings:
    """Read the file and the environment; one ConfigurationError naming the first bad key."""
    path = config_path(explicit_path)
    _check_env_sections()
    try:
        return settings_from(path)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "config"
        env = "COOBILL_" + "__".join(str(p) for p in err["loc"]).upper()
        got = (
            ""
            if err["loc"][-1:] and err["loc"][-1] in _SECRET_KEYS
            else (f" (got {err.get('input')!r})")
        )
        raise ConfigurationError(f"config: {key} (or {env}): {err['msg']}{got}") from None
    except (ValueError, OSError) as exc:  # a TOML syntax error, an unreadable file
        raise ConfigurationError(f"config: {path}: {exc}") from None
