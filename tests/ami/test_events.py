"""Reading an AMI event's headers (ami/events.py) as panoramisk hands it over and as a plain
mapping: the same names, the same values."""

from __future__ import annotations

from panoramisk.message import Message  # type: ignore[import-untyped]

from coobill.ami.events import headers

# A Cdr as Asterisk sends it (cdr_manager.c: UniqueID, not Uniqueid), a header repeated and
# one with an empty value.
LINES = (
    "Event: Cdr", "Privilege: cdr,all", "AccountCode: ", "Source: 100",
    "Destination: 9138000001", "Channel: PJSIP/100-00000000",
    "DestinationChannel: PJSIP/carrier-a-00000001", "LastApplication: Dial",
    "BillableSeconds: 8", "UniqueID: 1795700000.0", "ChanVariable: A=1", "ChanVariable: B=2",
)
FRAME = "\r\n".join(LINES)


def test_a_panoramisk_message_reads_as_its_plain_headers() -> None:
    message = Message.from_line(FRAME)
    assert isinstance(message, Message)
    plain = {key: message[key] for key in message}  # through the Mapping, as before
    assert headers(message) == headers(plain)
    found = headers(message)
    assert found["uniqueid"] == "1795700000.0"
    assert found["accountcode"] == ""
    assert found["chanvariable"] == "A=1"  # a repeated header keeps its first value
    assert found["event"] == "Cdr"
