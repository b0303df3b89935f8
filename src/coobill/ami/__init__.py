"""The AMI side of coobill: follow calls to their end, list the PBX's endpoints.

`events` reads an AMI event's headers and times; `calls` is the pure tracker (events in,
ended calls out), with `channels` its per-channel state and `dials` what a channel's Dials
cost by the evidence; `cdr` parses Asterisk's CDRs (the Cdr event and Master.csv alike) and
`cdr_store` reads Master.csv; `session` is one logged-in AMI session; `follower` runs sessions
one after another and feeds the tracker; `endpoints` the extension-sync listing.
"""

from coobill.ami.calls import (
    CallTracker,
    CdrMode,
    ChannelEnded,
    Received,
    parse_callerid,
    trunk_of_channel,
)
from coobill.ami.endpoints import (
    DEFAULT_PHONE_PATTERN,
    Endpoint,
    EndpointListingUnavailable,
    list_endpoints,
    phone_by_pattern,
)
from coobill.ami.follower import AmiFollower, FollowerOptions
from coobill.ami.session import (
    AmiConnection,
    AmiConnectionLost,
    AmiError,
    AmiLoginRefused,
    AmiNotConnected,
    AmiTimeout,
)

__all__ = [
    "DEFAULT_PHONE_PATTERN",
    "AmiConnection",
    "AmiConnectionLost",
    "AmiError",
    "AmiFollower",
    "AmiLoginRefused",
    "AmiNotConnected",
    "AmiTimeout",
    "CallTracker",
    "CdrMode",
    "ChannelEnded",
    "Endpoint",
    "EndpointListingUnavailable",
    "FollowerOptions",
    "Received",
    "list_endpoints",
    "parse_callerid",
    "phone_by_pattern",
    "trunk_of_channel",
]
