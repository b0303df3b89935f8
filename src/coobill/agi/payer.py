"""Who pays for a call: the channel's own endpoint, never a string the caller chose.

The sample dialplan asks `AGI(agi://…/authorize,${CHANNEL(endpoint)},${EXTEN})`. Asterisk
substitutes the variables first and only then splits AGI()'s data on commas (agi_exec_full,
AST_STANDARD_APP_ARGS, res_agi.c:4684-4686), so anything a caller controls that is passed as
an argument can shift the arguments after it; caller ID is therefore never an argument. The
environment lines are not split: `agi_channel`, `agi_callerid` and `agi_extension` arrive
whole (setup_env, res_agi.c:2450-2494).

The channel name carries the endpoint Asterisk matched the call to: `PJSIP/<endpoint>-%08x`
(chan_pjsip.c:565-573), `SIP/<peer>-%08x` (chan_sip, gone in Asterisk 21), `IAX2/<user>-<callno>`
(chan_iax2.c `ast_iax2_new`, "IAX2/%s-%d" of the user it authenticated as). Endpoint ids may
contain `-`: only the last `-suffix` is the channel's sequence number (ASTERISK.md §4.2).

`${CHANNEL(endpoint)}` is read by the channel driver (chan_pjsip's pjsip_acf_channel_read,
channels/pjsip/dialplan_functions.c, the `endpoint` item); on a driver without it (Local,
IAX2, chan_sip) func_channel_read logs "Unknown or unavailable item requested" and fails, and
a failed function substitutes as empty (main/pbx_variables.c, ast_func_read). So:

- a channel with an endpoint: agi_arg_1 is empty or that endpoint; anything else is a
  request that disagrees with its own channel (a forged or an old-form request whose caller
  ID is not the endpoint) - refused;
- a channel without one (Local/…): agi_arg_1 is empty, or - the old form, where it was
  `${CALLERID(num)}` - equal to agi_callerid; the payer is that caller ID, which the service
  layer lets name only an extension the ledger knows (services/gate.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from coobill.errors import BadRequest
from coobill.services.commands import PayerSource

# Channel technologies whose channel name starts with the endpoint the call came from.
ENDPOINT_TECHNOLOGIES = frozenset({"PJSIP", "SIP", "IAX2"})
# The sequence part: %08x for PJSIP and SIP, %d for IAX2.
_SEQUENCE = re.compile(r"[0-9a-f]+")
# Longer than any extension number or endpoint id a ledger row can hold (String(32)).
MAX_PAYER_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Payer:
    extension: str
    source: PayerSource


def channel_endpoint(channel: str) -> str | None:
    """The endpoint named by a channel name, None for a technology without one (Local,
    DAHDI…); BadRequest for a name of an endpoint technology that is not shaped like one."""
    technology, slash, rest = channel.partition("/")
    if not slash or technology.upper() not in ENDPOINT_TECHNOLOGIES:
        return None
    endpoint, dash, sequence = rest.rpartition("-")
    if not dash or not endpoint or not _SEQUENCE.fullmatch(sequence):
        raise BadRequest(f"{technology} channel name without an endpoint: {channel[:80]!r}",
                         field="agi_channel")
    return endpoint


def payer_of(environment: Mapping[str, str]) -> Payer:
    """Who pays for the call this request is for; BadRequest when the request disagrees with
    its own channel."""
    channel = environment.get("agi_channel", "")
    if not channel:
        raise BadRequest("no agi_channel", field="agi_channel")
    claimed = environment.get("agi_arg_1", "")
    endpoint = channel_endpoint(channel)
    if endpoint is not None:
        if claimed not in ("", endpoint):
            raise BadRequest("agi_arg_1 is not the channel's endpoint", field="agi_arg_1")
        return _bounded(Payer(endpoint, "endpoint"))
    caller_id = environment.get("agi_callerid", "")
    if claimed not in ("", caller_id):
        raise BadRequest("agi_arg_1 is not the caller ID of a channel without an endpoint",
                         field="agi_arg_1")
    # Asterisk writes the literal "unknown" for an absent caller ID (res_agi.c:2463).
    if caller_id in ("", "unknown"):
        raise BadRequest("a channel without an endpoint and without a caller ID",
                         field="agi_callerid")
    return _bounded(Payer(caller_id, "caller_id"))


def _bounded(payer: Payer) -> Payer:
    if len(payer.extension) > MAX_PAYER_LENGTH:
        raise BadRequest("the calling extension is too long", field="agi_arg_1")
    return payer
