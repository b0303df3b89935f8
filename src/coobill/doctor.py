"""`coobill doctor`: check what a working coobill needs, and say what to fix.

Configuration (already loaded to get here), the ledger and its schema, the AMI login and the
event classes the user may read, cdr_manager, and whether the gate's port is bound.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coobill.ami.session import AmiConnection
from coobill.config import Settings, config_path
from coobill.storage import schema
from coobill.storage.db import create_engine

NEEDED_READ = ("call", "cdr")


@dataclass
class Finding:
    ok: bool
    what: str
    fix: str = ""


def _text(reply: Any) -> str:
    items = reply if isinstance(reply, list) else [reply]
    lines: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            for key in ("Output", "Message"):
                value = item.get(key)
                if isinstance(value, list):
                    lines.extend(value)
                elif value:
                    lines.append(str(value))
            content = item.get("content")
            if isinstance(content, str):
                lines.extend(content.splitlines())
    return "\n".join(lines)


async def check_database(settings: Settings) -> list[Finding]:
    engine = create_engine(settings.database.url)
    try:
        current = await schema.current_revision(engine)
    except Exception as exc:  # noqa: BLE001 - a check's failure is its finding
        return [
            Finding(
                False,
                f"database {settings.database.url.split('@')[-1]}: "
                f"unreachable ({exc.__class__.__name__})",
                "check [database] url / COOBILL_DATABASE__URL and that the server runs",
            )
        ]
    finally:
        await engine.dispose()
    head = schema.head_revision()
    if current != head:
        return [
            Finding(True, "database reachable"),
            Finding(
                False,
                f"schema at {current or 'nothing'}, code needs {head}",
                "run: coobill migrate",
            ),
        ]
    return [Finding(True, "database reachable"), Finding(True, f"schema at head ({head})")]


async def check_ami(settings: Settings) -> list[Finding]:
    ami = settings.ami
    if not ami.enabled:
        return [Finding(True, "AMI disabled in the configuration (no settlement!)")]
    try:
        async with AmiConnection(ami.host, ami.port, ami.username, ami.secret, timeout=5) as conn:
            found = [Finding(True, f"AMI login as {ami.username} at {ami.host}:{ami.port}")]
            found += await _check_permissions(conn, ami.username)
            found += await _check_cdr_manager(conn)
            return found
    except Exception as exc:  # noqa: BLE001 - a check's failure is its finding
        return [
            Finding(
                False,
                f"AMI login as {ami.username} at {ami.host}:{ami.port}: {exc}",
                "check manager.conf ([general] enabled = yes, the user's secret and "
                "permit=) and [ami] host/port/username/secret",
            )
        ]


async def _check_permissions(conn: AmiConnection, username: str) -> list[Finding]:
    try:
        reply = await conn.request(
            {"Action": "Command", "Command": f"manager show user {username}"}
        )
    except Exception as exc:  # noqa: BLE001 - a check's failure is its finding
        return [
            Finding(
                False,
                f"could not read the AMI user's permissions ({exc})",
                "give the user write = command so doctor can check",
            )
        ]
    match = re.search(r"read perm:\s*(.+)", _text(reply))
    if not match:
        return [
            Finding(
                False,
                "could not read the AMI user's permissions",
                "give the user write = command so doctor can check",
            )
        ]
    classes = {c.strip() for c in match.group(1).split(",")}
    missing = [c for c in NEEDED_READ if c not in classes and "all" not in classes]
    if missing:
        return [
            Finding(
                False,
                f"AMI user may not read {', '.join(missing)}",
                f"manager.conf: read = {','.join(sorted(classes | set(missing)))}",
            )
        ]
    return [Finding(True, f"AMI user reads {', '.join(NEEDED_READ)}")]


async def _check_cdr_manager(conn: AmiConnection) -> list[Finding]:
    try:
        reply = await conn.request({"Action": "Command", "Command": "module show like cdr_manager"})
    except Exception:  # noqa: BLE001 - a check's failure is its finding
        return [Finding(False, "could not ask whether cdr_manager is loaded", "")]
    text = _text(reply)
    if "cdr_manager" in text and "Running" in text:
        return [Finding(True, "cdr_manager loaded: billable seconds come from Asterisk's CDR")]
    return [
        Finding(
            False,
            "cdr_manager not running: billable seconds will be computed from channel events (±1 s)",
            "load cdr_manager and set [general] enabled = yes in cdr_manager.conf",
        )
    ]


async def check_gate_port(settings: Settings) -> list[Finding]:
    agi = settings.agi
    if not agi.enabled:
        return [Finding(False, "the gate is disabled ([agi] enabled = false)", "enable it")]
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(agi.host, agi.port), 2)
    except (OSError, TimeoutError):
        return [
            Finding(
                False,
                f"nothing listens on the gate's port {agi.host}:{agi.port}",
                "start the daemon: systemctl start coobill",
            )
        ]
    writer.close()
    return [Finding(True, f"the gate's port {agi.host}:{agi.port} is bound")]


async def run_doctor(settings: Settings, explicit_config: str | None = None) -> int:
    path = config_path(explicit_config)
    findings = [Finding(True, f"configuration {path or '(defaults and environment)'} is valid")]
    findings += await check_database(settings)
    findings += await check_ami(settings)
    findings += await check_gate_port(settings)
    for f in findings:
        print(  # noqa: T201 - `coobill doctor` prints its findings
            f"{'ok  ' if f.ok else 'FIX '} {f.what}"
            + (f"\n     -> {f.fix}" if f.fix and not f.ok else "")
        )
    return 0 if all(f.ok for f in findings) else 1
