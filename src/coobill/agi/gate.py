"""What the gate reads from a call and what it writes back into the channel. Pure functions.

The dialplan contract (etc/asterisk):
`AGI(agi://…/authorize,${CHANNEL(endpoint)},${EXTEN}[,trunk])`, then
`GotoIf($["${COOBILL_RESULT}" = "ALLOW"]?dial)` and `Dial(…,${COOBILL_DIAL_OPTIONS})`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from coobill.agi.payer import payer_of
from coobill.agi.protocol import exec_application, route_of, set_variable
from coobill.errors import BadRequest
from coobill.services.commands import AuthorizeCall, Reason, Verdict

ROUTE = "authorize"
ALLOW = "ALLOW"
DENY = "DENY"

_DIGITS = re.compile(r"[0-9]+")
# The optional third argument: an endpoint name as a dialplan writes one (pjsip.conf section
# names), never anything a caller sends.
_TRUNK = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
KNOWN_ARGUMENTS = ("agi_arg_1", "agi_arg_2", "agi_arg_3")
_LOGGABLE = re.compile(r"[\x21-\x7e]{1,64}")


def call_from_environment(environment: Mapping[str, str]) -> AuthorizeCall:
    """The AuthorizeCall an AGI request asks for; BadRequest names what is wrong with it.

    The request must agree with its own environment: agi_arg_1 with the channel (agi/payer.py),
    agi_arg_2 with agi_extension, then at most agi_arg_3, the trunk the dialplan will dial
    (an endpoint name the dialplan writes, for the buy rate and the margin check), and nothing
    after it - a caller ID with a comma in it, passed as an argument, would have shifted the
    arguments (res_agi.c:4684-4686).
    """
    route = route_of(environment)
    if route != ROUTE:
        raise BadRequest(f"unknown route {route!r}", field="agi_network_script")
    uniqueid = environment.get("agi_uniqueid", "").strip()
    if not uniqueid:
        raise BadRequest("no agi_uniqueid", field="agi_uniqueid")
    if "agi_arg_1" not in environment or "agi_arg_2" not in environment:
        raise BadRequest("the request lacks agi_arg_1 or agi_arg_2", field="agi_arg_2")
    extra = sorted(name for name in environment
                   if name.startswith("agi_arg_") and name not in KNOWN_ARGUMENTS)
    if extra:
        raise BadRequest(f"unexpected arguments {', '.join(extra)[:80]}", field=extra[0])
    number = environment["agi_arg_2"]
    if not _DIGITS.fullmatch(number):
        raise BadRequest("the dialled number (agi_arg_2) is not digits", field="agi_arg_2")
    if number != environment.get("agi_extension"):
        raise BadRequest("the dialled number (agi_arg_2) is not agi_extension",
                         field="agi_arg_2")
    trunk = environment.get("agi_arg_3", "")
    if trunk and not _TRUNK.fullmatch(trunk):
        raise BadRequest("the trunk (agi_arg_3) is not an endpoint name", field="agi_arg_3")
    payer = payer_of(environment)
    caller_name = environment.get("agi_calleridname", "")
    return AuthorizeCall(
        uniqueid=uniqueid,
        extension=payer.extension,
        number=number,
        channel=environment["agi_channel"],
        # Asterisk writes the literal "unknown" for an absent caller ID name (res_agi.c:2463).
        caller_name="" if caller_name == "unknown" else caller_name,
        payer_source=payer.source,
        trunk=trunk,
    )


def enforceable(verdict: Verdict) -> Verdict:
    """The verdict the channel can carry: an ALLOW with no time left is a DENY no_funds.

    Dial aborts on `L(0)` with DIALSTATUS empty (features.c:885-889), so a zero limit must
    never reach the dialplan.
    """
    if verdict.allowed and verdict.limit_seconds is not None and verdict.limit_seconds <= 0:
        return Verdict.deny(Reason.NO_FUNDS)
    return verdict


def channel_variables(verdict: Verdict) -> list[tuple[str, str]]:
    """COOBILL_RESULT, COOBILL_REASON, COOBILL_LIMIT, COOBILL_DIAL_OPTIONS, in that order."""
    verdict = enforceable(verdict)
    limit = verdict.limit_seconds if verdict.allowed else None
    return [
        ("COOBILL_RESULT", ALLOW if verdict.allowed else DENY),
        ("COOBILL_REASON", str(verdict.reason)),
        ("COOBILL_LIMIT", "" if limit is None else str(int(limit))),
        # L() takes milliseconds as a plain integer; never a float or 1e6 (futel/asteriskserver#77).
        ("COOBILL_DIAL_OPTIONS", "" if limit is None else f"L({int(limit) * 1000})"),
    ]


def gate_commands(verdict: Verdict, ring_allowance_seconds: int) -> list[str]:
    """Every AGI command that tells the channel `verdict`, in the order they are sent.

    A DENY says COOBILL_RESULT first; an ALLOW says it last, after the limit, the Dial
    options and the backstop: a conversation cut short (the daemon killed, the connection
    lost) can leave a channel denied, or without a verdict — which the dialplan treats as a
    denial — but never allowed without its limit.

    A limited call also gets TIMEOUT(absolute) on the caller as a backstop: it counts from
    now, ringing included, so it is the limit plus the ring allowance. An ALLOW below the
    extension's low-balance threshold sets COOBILL_LOW_BALANCE=1 (before the result too).
    """
    verdict = enforceable(verdict)
    commands = [set_variable(name, value) for name, value in channel_variables(verdict)]
    if not verdict.allowed:
        return commands
    result, reason, *limits = commands
    if verdict.low_balance:
        # Only when it is so: a dialplan that tests it finds it unset otherwise.
        limits.append(set_variable("COOBILL_LOW_BALANCE", "1"))
    if verdict.limit_seconds is not None:
        backstop = int(verdict.limit_seconds) + int(ring_allowance_seconds)
        limits.append(exec_application("Set", f"TIMEOUT(absolute)={backstop}"))
    return [*limits, reason, result]


def decision_line(call: AuthorizeCall | None, verdict: Verdict, **extra: object) -> str:
    """`gate.decision uniqueid=… ext=… number=… verdict=… reason=… limit=… held=… rate=…`."""
    fields: dict[str, object] = {
        "uniqueid": call.uniqueid if call else None,
        "ext": call.extension if call else None,
        "payer": call.payer_source if call else None,
        "number": call.number if call else None,
        "verdict": ALLOW if verdict.allowed else DENY,
        "reason": verdict.reason,
        "limit": verdict.limit_seconds if verdict.allowed else None,
        "held": verdict.held,
        "rate": verdict.rate_id,
    }
    fields.update(extra)
    return "gate.decision " + key_values(fields)


def key_values(fields: Mapping[str, object]) -> str:
    """`key=value` pairs for one log line; values from the wire cannot forge more fields."""
    return " ".join(f"{key}={loggable(value)}" for key, value in fields.items())


def loggable(value: object) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    if _LOGGABLE.fullmatch(text) and '"' not in text:
        return text
    return repr(text[:64])
