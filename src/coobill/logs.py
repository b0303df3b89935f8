"""Logging for journalctl: one line per event, `event key=value ...` by default, JSON by setting.

Messages are written as `gate.decision uniqueid=... ext=...`; the JSON formatter turns the
same message into {"event": "gate.decision", "uniqueid": ..., ...}, so both stay greppable.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys

from coobill.config import LogConfig


def fields_of(message: str) -> dict[str, str]:
    """`event k=v k="v w"` -> {"event": event, "k": "v", ...}; other text -> {"message": ...}."""
    try:
        parts = shlex.split(message)
    except ValueError:
        return {"message": message}
    if not parts or "=" in parts[0]:
        return {"message": message}
    fields = {"event": parts[0]}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep:
            return {"message": message}
        fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"level": record.levelname.lower(), "logger": record.name,
                **fields_of(record.getMessage())}
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def __init__(self) -> None:
        # journald adds the time; a terminal run still wants it.
        fmt = "%(levelname)s %(name)s %(message)s" if _under_journald() else \
            "%(asctime)s %(levelname)s %(name)s %(message)s"
        super().__init__(fmt)


def _under_journald() -> bool:
    import os

    return bool(os.environ.get("JOURNAL_STREAM"))


def configure_logging(config: LogConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if config.format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level)
    # Library chatter below WARNING is not an operator's business.
    for noisy in ("panoramisk", "uvicorn.access", "sqlalchemy", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(config.level)))
