"""The AMI side of coobill: follow calls to their end, list the PBX's endpoints.

`calls` is the pure tracker (events in, ended calls out); `follower` the connection that feeds
it; `endpoints` the extension-sync listing.
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
from coobill.ami.follower import (
    AmiConnection,
    AmiConnectionLost,
    AmiError,
    AmiFollower,
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
    "Received",
    "Endpoint",
    "EndpointListingUnavailable",
    "list_endpoints",
    "parse_callerid",
    "phone_by_pattern",
    "trunk_of_channel",
]
