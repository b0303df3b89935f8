"""Calls made up for the fault tests, as the PBX would show them: the FastAGI request of the
gate (the recorded pjsip env block with this call's ids) and the AMI events of a call that is
answered and talks `billsec` seconds (the recorded frames of Alice's call, renumbered)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

from coobill.rating import Tariff, cost
from coobill.services.balances import recharge
from coobill.services.context import BillingContext
from coobill.services.extensions import ExtensionChanges, set_extension
from coobill.services.rate_fields import check_rate_fields
from coobill.services.rates import add_rate
from tests.fakes.ami_server import PJSIP, Frame, event_frames, read_trace, reply_frames
from tests.fakes.asterisk_agi import FakeAsterisk, load_trace_env

# The rate every fault test bills at: 0.01 a second, no connection fee.
TARIFF = Tariff(Decimal(0), 0, Decimal("0.01"), 1)
# The recorded call the made-up ones are copied from (sip_answered in the pjsip lab).
_UID, _DEST_UID = "1795610072.0", "1795610072.1"
_CHANNEL, _DEST_CHANNEL = "PJSIP/100-00000000", "PJSIP/carrier-a-00000001"
_NUMBER = "9138000001"
_START = datetime(2026, 11, 25, 12, 34, 32)


async def billed(
    ctx: BillingContext, extensions: dict[str, str], *, credit: str = "0", remark: str = ""
) -> None:
    """Extensions with billing on, each recharged by its amount, and the rate for 9…."""
    for number, balance in extensions.items():
        await set_extension(
            ctx, number, ExtensionChanges(billing=True, credit_limit=Decimal(credit))
        )
        if Decimal(balance):
            await recharge(ctx, [number], balance)
    await add_rate(
        ctx,
        check_rate_fields(
            prefix="9",
            number_length=0,
            initial_cost=str(TARIFF.initial_cost),
            initial_seconds=0,
            rate=str(TARIFF.rate),
            period_seconds=1,
            extensions="*",
            remark=remark,
        ),
    )


@cache
def _alice() -> tuple[Frame, ...]:
    frames = event_frames(read_trace(PJSIP / "ami-all.txt"))
    return tuple(
        f for f in frames if f.get("Uniqueid") in (_UID, _DEST_UID) or f.get("UniqueID") == _UID
    )


@cache
def live_channel_template() -> Frame:
    recorded = [
        f
        for f in reply_frames(read_trace(PJSIP / "ami-all.txt"), "live")
        if f.event == "CoreShowChannel"
    ]
    return recorded[0]


@dataclass(frozen=True)
class Call:
    """One answered outgoing call: `extension` dials `number` and talks `billsec` seconds."""

    seq: int
    extension: str = "100"
    billsec: int = 6
    number: str = _NUMBER

    @property
    def uniqueid(self) -> str:
        return f"1795700000.{2 * self.seq}"

    @property
    def cost(self) -> Decimal:
        return cost(TARIFF, self.billsec)

    @property
    def channel(self) -> str:
        return f"PJSIP/{self.extension}-{2 * self.seq:08x}"

    def agi_env(self) -> list[tuple[str, str]]:
        env = dict(load_trace_env(PJSIP / "agi-sip_answered.txt"))
        env.update(
            agi_uniqueid=self.uniqueid,
            agi_channel=self.channel,
            agi_callerid=self.extension,
            agi_arg_1=self.extension,
            agi_arg_2=self.number,
            agi_dnid=self.number,
            agi_extension=self.number,
        )
        return list(env.items())

    async def ask_gate(self, port: int) -> dict[str, str]:
        """Run the gate's AGI for this call; the channel variables it set."""
        return (await FakeAsterisk(self.agi_env()).call(port)).variables

    def _renumbered(self, f: Frame) -> Frame:
        answer = _START + timedelta(seconds=1)
        end = answer + timedelta(seconds=self.billsec)
        same = {
            _UID: self.uniqueid,
            _DEST_UID: f"1795700000.{2 * self.seq + 1}",
            _CHANNEL: self.channel,
            _DEST_CHANNEL: f"PJSIP/carrier-a-{2 * self.seq + 1:08x}",
            _NUMBER: self.number,
            "100": self.extension,
            "2026-11-25 12:34:33": f"{answer:%Y-%m-%d %H:%M:%S}",
            "2026-11-25 12:34:39": f"{end:%Y-%m-%d %H:%M:%S}",
            '"Alice" <100>': f'"Alice" <{self.extension}>',
        }
        headers = tuple((k, same.get(v, v)) for k, v in f.headers)
        renamed = Frame(headers, f.t, f.sent)
        if f.event == "Cdr":
            renamed = renamed.replace(
                BillableSeconds=str(self.billsec), Duration=str(self.billsec + 1)
            )
        return renamed

    def begin(self) -> list[Frame]:
        """Dialled and answered: DialBegin, DialEnd ANSWER, the bridge."""
        return [
            self._renumbered(f)
            for f in _alice()
            if f.event in ("DialBegin", "DialEnd", "BridgeEnter")
        ]

    def end(self) -> list[Frame]:
        """Hung up: the Cdr of the dialling leg and both Hangups, as Asterisk posts them."""
        return [self._renumbered(f) for f in _alice() if f.event in ("Cdr", "Hangup")]

    def live(self) -> Frame:
        """This call's line in a CoreShowChannels listing."""
        return live_channel_template().replace(
            Channel=self.channel, Uniqueid=self.uniqueid, Linkedid=self.uniqueid
        )

    def master_csv_row(self) -> str:
        """This call's dialling-leg record in cdr_csv's Master.csv (loguniqueid=yes)."""
        answer = _START + timedelta(seconds=1)
        end = answer + timedelta(seconds=self.billsec)
        return (
            f'"","{self.extension}","{self.number}","sipphones","""Alice"" <{self.extension}>",'
            f'"{self.channel}","PJSIP/carrier-a-{2 * self.seq + 1:08x}","Dial",'
            f'"PJSIP/{self.number[1:]}@carrier-a,20,L(30000)","{_START:%Y-%m-%d %H:%M:%S}",'
            f'"{answer:%Y-%m-%d %H:%M:%S}","{end:%Y-%m-%d %H:%M:%S}",{self.billsec + 1},'
            f'{self.billsec},"ANSWERED","DOCUMENTATION","{self.uniqueid}"\n'
        )
