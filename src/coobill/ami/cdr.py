"""Asterisk's CDRs, as the `Cdr` AMI event and cdr_csv's Master.csv carry them: one parser,
one disposition table, one way to turn a channel's Dial records into what settlement needs.

- The Cdr event (cdr_manager.c:312-336): AccountCode, Source, Destination, DestinationContext,
  CallerID, Channel, DestinationChannel, LastApplication, LastData, StartTime, AnswerTime,
  EndTime, Duration, BillableSeconds, Disposition, AMAFlags, UniqueID, UserField; times in the
  PBX's local time, whole seconds, AnswerTime empty when unanswered.
- Master.csv (cdr_csv.c build_csv_record:215-250): accountcode, src, dst, dcontext, clid,
  channel, dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition,
  amaflags, then uniqueid only with `loguniqueid = yes`; times GMT with `usegmtime = yes` (the
  sample cdr.conf's), else local (cdr_csv.c:205).
- Disposition is NO ANSWER, FAILED, BUSY, ANSWERED or CONGESTION (cdr_manager.c:101-127);
  coobill records CONGESTION as FAILED, for Cdr events and Master.csv alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from coobill.services.commands import DialOutcome, Disposition

log = logging.getLogger("coobill.ami")

CDR_TIME = "%Y-%m-%d %H:%M:%S"

DISPOSITIONS = {
    "ANSWERED": Disposition.ANSWERED,
    "BUSY": Disposition.BUSY,
    "NO ANSWER": Disposition.NO_ANSWER,
    "FAILED": Disposition.FAILED,
    "CANCEL": Disposition.CANCEL,
    "CONGESTION": Disposition.FAILED,
}

# cdr_csv's columns, in order; uniqueid only with loguniqueid = yes.
MASTER_CSV = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
              "lastdata", "start", "answer", "end", "duration", "billsec", "disposition",
              "amaflags", "uniqueid")

_QUOTED_CALLERID = re.compile(r'^\s*"(?P<name>(?:[^"\\]|\\.)*)"\s*<(?P<num>[^>]*)>\s*$')
_PLAIN_CALLERID = re.compile(r"^\s*(?P<name>[^<]*?)\s*<(?P<num>[^>]*)>\s*$")


def known(value: str) -> str:
    value = value.strip()
    return "" if value in ("<unknown>", "unknown") else value


def parse_callerid(value: str) -> tuple[str, str]:
    """Split `"Name" <number>` into (name, number); Asterisk's `<unknown>` becomes ""."""
    value = value.strip()
    match = _QUOTED_CALLERID.match(value) or _PLAIN_CALLERID.match(value)
    if match is not None:
        name = match["name"].replace('\\"', '"').replace("\\\\", "\\")
        return known(name), known(match["num"])
    # ast_callerid_merge writes a bare name or a bare number when only one is set.
    if (value.isascii() and value.isdigit()) or value.startswith("+"):
        return "", value
    return known(value), ""


def trunk_of_channel(channel: str) -> str | None:
    """The endpoint (or, for a Local channel, the context) a dialled channel went out on.

    `PJSIP/carrier-a-00000001` -> `carrier-a` (endpoint names may contain '-', chan_pjsip.c:
    565-573), `Local/13800000000@carrier-00000016;1` -> `carrier`.
    """
    tech, slash, resource = channel.strip().partition("/")
    if not slash or not resource:
        return None
    if tech.lower() == "local":
        name = resource.rsplit(";", 1)[0].rsplit("-", 1)[0]
        _, at, context = name.rpartition("@")
        return context or None if at else None
    return resource.rsplit("-", 1)[0] or None


def disposition_of(text: str, uniqueid: str = "") -> Disposition:
    raw = text.strip().upper()
    found = DISPOSITIONS.get(raw)
    if found is None:
        log.warning("ami.cdr_unknown_disposition uniqueid=%s disposition=%r", uniqueid, raw)
        return Disposition.FAILED
    return found


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """One CDR of one channel (party A)."""

    uniqueid: str
    source: str
    destination: str
    callerid: str
    destination_channel: str
    last_application: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    billable_seconds: int
    disposition: Disposition
    evidence: str = "cdr"
    channel: str = ""  # party A's name

    @property
    def is_dial(self) -> bool:
        return self.last_application.strip().lower() == "dial"

    @classmethod
    def from_event(cls, h: Mapping[str, str]) -> CdrRecord:
        """From a Cdr event's headers (lower-cased names). Raises ValueError on bad times."""
        uniqueid = h.get("uniqueid", "")
        return cls(
            uniqueid=uniqueid, source=h.get("source", ""), destination=h.get("destination", ""),
            callerid=h.get("callerid", ""), destination_channel=h.get("destinationchannel", ""),
            last_application=h.get("lastapplication", ""),
            start=_time(h.get("starttime", "")), answer=_time(h.get("answertime", "")),
            end=_time(h.get("endtime", "")),
            billable_seconds=max(int(h.get("billableseconds", "0") or "0"), 0),
            disposition=disposition_of(h.get("disposition", ""), uniqueid),
            channel=h.get("channel", ""),
        )

    @classmethod
    def from_master_csv(cls, row: Sequence[str], *, gmt: bool) -> CdrRecord | None:
        """From a Master.csv row; None for a row without a uniqueid or that does not parse.
        With `gmt` (cdr.conf usegmtime = yes) the times are GMT and come back aware."""
        if len(row) < len(MASTER_CSV):
            return None
        rec = dict(zip(MASTER_CSV, row, strict=False))
        try:
            return cls(
                uniqueid=rec["uniqueid"], source=rec["src"], destination=rec["dst"],
                callerid=rec["clid"], destination_channel=rec["dstchannel"],
                last_application=rec["lastapp"], start=_time(rec["start"], gmt),
                answer=_time(rec["answer"], gmt), end=_time(rec["end"], gmt),
                billable_seconds=max(int(rec["billsec"] or 0), 0),
                disposition=disposition_of(rec["disposition"], rec["uniqueid"]),
                evidence="cdr_store", channel=rec["channel"],
            )
        except ValueError:
            return None

    def outcome(self, *, billable_seconds: int | None = None, end: datetime | None = None,
                authorization: str | None = None, evidence: str | None = None) -> DialOutcome:
        """This Dial record as settlement takes it (the seconds and end overridable: a
        transferred call lasts beyond its CDR)."""
        return DialOutcome(
            leg=self.destination_channel,
            dialled_number=self.destination,
            start=self.start,
            answer=self.answer,
            end=end or self.end,
            billable_seconds=self.billable_seconds
            if billable_seconds is None
            else billable_seconds,
            disposition=self.disposition,
            trunk=trunk_of_channel(self.destination_channel) if self.destination_channel else None,
            authorization=authorization,
            evidence=evidence or self.evidence,
        )


def dials_of(records: Iterable[CdrRecord]) -> tuple[DialOutcome, ...]:
    """A channel's Dial records, in the order they started."""
    dial = sorted(
        (r for r in records if r.is_dial),
        # DTZ901: a start-less record sorts first among the zone-less times
        key=lambda r: r.start.replace(tzinfo=None) if r.start else datetime.min,  # noqa: DTZ901
    )
    return tuple(r.outcome() for r in dial)


def talk_through_a_transfer(answer: datetime, own_end: datetime,
                            later: Sequence[CdrRecord]) -> int:
    """Seconds an answered Dial talked when its leg went on after the caller's rows ended
    (a transfer): from its answer to the end of the caller's last row, then as long as the
    rows posted later for that leg say (their billsec) - never more than from its answer to
    the last of those rows' end, should two of them overlap (a bridge of several parties)."""
    talk = int((own_end - answer).total_seconds()) + sum(r.billable_seconds for r in later)
    ends = [r.end for r in later if r.end is not None]
    if ends:
        talk = min(talk, int((max(ends) - answer).total_seconds()))
    return talk


def _time(value: str, gmt: bool = False) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    # Asterisk writes the PBX's wall clock without a zone (cdr_manager, ast_localtime)
    parsed = datetime.strptime(value, CDR_TIME)  # noqa: DTZ007 - Asterisk's CDR times carry no zone (cdr_manager)
    return parsed.replace(tzinfo=UTC) if gmt else parsed
