"""Which endpoints the PBX has, for the extension sync: phones (billed) and trunks (not).

PJSIPShowEndpoints lists them (EndpointList carries no caller-id name, so each phone is asked
with PJSIPShowEndpoint for its EndpointDetail `Callerid: "Alice" <100>`). Without res_pjsip
(Response: Error, unknown command) chan_sip's SIPpeers / SIPshowpeer are tried. A PBX with no
endpoints answers `Response: Error` / `No endpoints found`: that is an empty list, whereas a
PBX where neither listing works raises - so a sync never mistakes "could not ask" for "none".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coobill.ami.cdr import parse_callerid
from coobill.errors import EndpointListingUnavailable  # re-exported: its home is errors.py

__all__ = [
    "DEFAULT_PHONE_PATTERN",
    "Endpoint",
    "EndpointListingUnavailable",
    "list_endpoints",
    "phone_by_pattern",
]

log = logging.getLogger("coobill.ami")

DEFAULT_PHONE_PATTERN = r"^\d+$"

AmiReply = Mapping[str, Any] | Sequence[Mapping[str, Any]]
# Sends one action and returns panoramisk's answer: a Message, or a list for an EventList.
SendAction = Callable[[Mapping[str, str]], Awaitable[AmiReply]]
PhoneRule = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint as the extension sync sees it."""

    name: str
    caller_name: str
    is_phone: bool


def phone_by_pattern(pattern: str = DEFAULT_PHONE_PATTERN) -> PhoneRule:
    """Endpoints whose name matches `pattern` are phones; the others are trunks."""
    compiled = re.compile(pattern, re.ASCII)  # \d: 0-9, not other scripts' digits
    return lambda name: compiled.search(name) is not None


async def list_endpoints(send: SendAction, *, is_phone: PhoneRule | None = None) -> list[Endpoint]:
    """Every PJSIP endpoint (or SIP peer), phones with their caller-id name."""
    is_phone = is_phone or phone_by_pattern()
    reply = await send({"Action": "PJSIPShowEndpoints"})
    if _is_error(reply):
        message = _message(reply)
        if "no endpoints found" in message.lower():
            return []
        log.info("ami.pjsip_unavailable message=%r fallback=SIPpeers", message)
        return await _sip_peers(send, is_phone, pjsip_error=message)
    names = _object_names(reply, "EndpointList")
    return [
        Endpoint(name, await _pjsip_caller_name(send, name) if is_phone(name) else "",
                 is_phone(name))
        for name in names
    ]


async def _pjsip_caller_name(send: SendAction, name: str) -> str:
    reply = await send({"Action": "PJSIPShowEndpoint", "Endpoint": name})
    for item in _items(reply):
        if _header(item, "Event") == "EndpointDetail":
            return parse_callerid(_header(item, "Callerid"))[0]
    log.warning("ami.endpoint_detail_missing endpoint=%s message=%r", name, _message(reply))
    return ""


async def _sip_peers(send: SendAction, is_phone: PhoneRule, *, pjsip_error: str) -> list[Endpoint]:
    reply = await send({"Action": "SIPpeers"})
    if _is_error(reply):
        raise EndpointListingUnavailable(
            f"no endpoint listing: PJSIPShowEndpoints said {pjsip_error!r}, "
            f"SIPpeers said {_message(reply)!r}"
        )
    endpoints = []
    for name in _object_names(reply, "PeerEntry"):
        caller_name = ""
        if is_phone(name):
            peer = await send({"Action": "SIPshowpeer", "Peer": name})
            if not _is_error(peer):
                caller_name = parse_callerid(_header(_first(peer), "Callerid"))[0]
        endpoints.append(Endpoint(name, caller_name, is_phone(name)))
    return endpoints


def _object_names(reply: AmiReply, event: str) -> list[str]:
    return [_header(item, "ObjectName") for item in _items(reply)
            if _header(item, "Event") == event and _header(item, "ObjectName")]


def _items(reply: AmiReply) -> list[Mapping[str, Any]]:
    # panoramisk gives a list only for an EventList; an error is a single Message.
    if isinstance(reply, Sequence) and not isinstance(reply, str | bytes):
        return list(reply)
    return [reply]


def _first(reply: AmiReply) -> Mapping[str, Any]:
    return _items(reply)[0] if _items(reply) else {}


def _is_error(reply: AmiReply) -> bool:
    return _header(_first(reply), "Response").lower() in ("error", "fail", "failure")


def _message(reply: AmiReply) -> str:
    return _header(_first(reply), "Message")


def _header(item: Mapping[str, Any], name: str) -> str:
    """A header by name, whatever its case (panoramisk's Message ignores case, a dict does not)."""
    value = item.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in item.items() if str(k).lower() == lowered), "")
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value)
