"""The daemon: the gate and settlement in one process beside Asterisk, the portal in a child.

Start: refuse a ledger behind the migrations' head; bind the gate; start the AMI follower
(which keeps reconnecting on its own); bind the portal's port and start the portal's process
(daemon/portal.py: nothing a portal visitor does can delay a gate answer); tell systemd
READY=1.
SIGHUP: reload configuration, rates and settings without dropping calls or connections.
SIGTERM/SIGINT: drain - stop taking AGI requests, let conversations and settlements in
flight finish, close AMI, dispose of the engine, exit 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import resource
import signal
from dataclasses import dataclass, field

from coobill import systemd
from coobill.agi.limits import rate_limited_exception_handler
from coobill.agi.server import GateOptions, GateServer
from coobill.ami.follower import AmiFollower, FollowerOptions
from coobill.bootstrap import bootstrap
from coobill.config import Settings, load_settings
from coobill.daemon.call_index import CallIndexer
from coobill.daemon.events import DaemonEvents
from coobill.daemon.fees import FeeCharger
from coobill.daemon.http import Operations
from coobill.daemon.pbx import PbxLink
from coobill.daemon.portal import PortalProcess
from coobill.daemon.portal_setup import announce_first_admin, portal_hello
from coobill.daemon.status import StatusLine, status_text
from coobill.daemon.webhooks import WebhookSender
from coobill.logs import configure_logging
from coobill.metrics import Metrics
from coobill.services.commands import AuthorizeCall, Settlement, Verdict
from coobill.services.context import BillingContext
from coobill.services.fees import FeeCharged
from coobill.services.gate import authorize_call
from coobill.services.ledger_seal import open_ledger
from coobill.services.pbx_sync import add_phones
from coobill.services.refused import RefusedLog
from coobill.storage import schema

__all__ = ["Daemon", "gate_options", "raise_file_limit", "run_daemon"]

log = logging.getLogger("coobill.daemon")


def gate_options(settings: Settings) -> GateOptions:
    agi = settings.agi
    return GateOptions(host=agi.host, port=agi.port,
                       ring_allowance_seconds=agi.ring_allowance_seconds,
                       deadline_seconds=agi.deadline_seconds, max_env_bytes=agi.max_env_bytes,
                       on_error=agi.on_error, max_connections=agi.max_connections,
                       environment_timeout_seconds=agi.environment_timeout_seconds)


@dataclass
class Daemon:
    """One running coobill. `start()` then `wait()`; tests drive `stop()` and `reload()`, and
    watch `events` (settlements, reconciliations, live checks so far)."""

    settings: Settings
    config_path: str | None = None
    ctx: BillingContext | None = None
    metrics: Metrics = field(default_factory=Metrics)
    gate: GateServer | None = None
    refused: RefusedLog | None = None
    follower: AmiFollower | None = None
    web: PortalProcess | None = None
    pbx: PbxLink | None = None
    webhooks: WebhookSender | None = None
    call_index: CallIndexer | None = None
    fees: FeeCharger | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _reloading: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False
    events: DaemonEvents = field(default_factory=DaemonEvents)
    status: StatusLine | None = None

    async def start(self) -> None:
        self.ctx = self.ctx or bootstrap(self.settings)
        ctx = self.ctx
        await schema.require_head(ctx.uow.engine)
        await open_ledger(ctx)
        if self.settings.agi.enabled:
            refused = self.refused = RefusedLog(ctx)
            refused.start()
            self.metrics.refused_dropped.set_function(lambda: float(refused.dropped))
            self.gate = GateServer(self._authorize, gate_options(self.settings),
                                   on_decision=self._decided)
            await self.gate.start()
        if self.settings.ami.enabled:
            await self._start_follower(ctx)
        if self.settings.web.enabled:
            await self._start_web(ctx)
            await announce_first_admin(ctx, self.settings.web, self.web_port)
        if self.settings.webhooks.urls:
            self.webhooks = WebhookSender(ctx, on_delivered=self.events.webhooks_delivered.add)
            self.webhooks.start()
        self.fees = FeeCharger(ctx, on_checked=self._fees_checked)
        self.fees.start()
        if await CallIndexer.wanted(ctx):
            self.call_index = CallIndexer(ctx, on_indexed=self.events.calls_indexed.add)
            self.call_index.start()
        self.started = True
        self.status = StatusLine(self._status_text)
        self.events.watch(self.status.changed)
        self.status.send()  # before READY=1: whoever waits for it can read the port here
        # What start-up built (modules, the rate book) lives as long as the daemon: keep the
        # collector from walking it again and again (full collections took 40-75 ms).
        gc.freeze()
        systemd.notify("READY=1")
        log.info("daemon.ready")

    def _decided(self, call: AuthorizeCall | None, verdict: Verdict, latency: float) -> None:
        """Each decision of the gate: counted; a DENY queued for its record (no I/O here)."""
        self.metrics.observe_decision(call, verdict, latency)
        if self.refused is not None:
            self.refused.note(call, verdict, latency)

    def _status_text(self) -> str:
        return status_text(self.events, None if self.gate is None else self.gate.port,
                           None if self.follower is None else self.follower.connected)

    async def _authorize(self, call: AuthorizeCall) -> Verdict:
        assert self.ctx is not None
        follower = self.follower
        if follower is not None:
            payer = follower.paid_by(call.uniqueid)
            if payer is not None and payer != call.extension:
                # A transferred external leg dialling on: the extension that placed the call
                # pays for what it dials now, at that number's rate. The payer is the
                # extension the gate identified for that call, so it is trusted as such.
                log.info("gate.transferred uniqueid=%s asked_as=%s paid_by=%s",
                         call.uniqueid, call.extension, payer)
                call = dataclasses.replace(call, extension=payer, payer_source="endpoint")
            earlier = follower.earlier_authorizations(call.uniqueid)
            if earlier:
                call = dataclasses.replace(call, earlier=earlier)
        verdict = await authorize_call(self.ctx, call)
        if verdict.token is not None and follower is not None:
            # Queued before the channel hears the verdict: before its Dial's first event.
            follower.authorized(call.uniqueid, verdict.token, call.channel, call.extension)
        return verdict

    async def _start_follower(self, ctx: BillingContext) -> None:
        self.pbx = PbxLink(ctx, on_settled=self._settlement_done,
                           on_expect=lambda live, legs, gone: self._follower().expect(
                               live, legs, gone),
                           live_channels=lambda: self._follower().live_uniqueids())
        self.follower = AmiFollower(
            FollowerOptions.from_config(self.settings.ami), on_call_ended=self.pbx.call_ended,
            on_reconciled=self._reconciled, on_live_check=self._live_checked,
        )
        await self.follower.start()

    async def _reconciled(self, live: set[str]) -> None:
        """After each login: the holds against the live channels, then the extension list."""
        assert self.ctx is not None
        assert self.pbx is not None
        follower = self._follower()
        self.metrics.ami_reconnects.set(follower.reconnects)
        await self.pbx.reconciled(live, still_live=follower.live_uniqueids)
        self.events.reconciled.add()
        try:
            await add_phones(self.ctx, await follower.list_endpoints())
        except Exception as exc:  # noqa: BLE001 - a PBX without PJSIP/SIP listings still bills
            log.warning("extensions.sync_failed error=%s", exc)

    async def _live_checked(self, live: set[str]) -> None:
        assert self.pbx is not None
        await self.pbx.live_check(live, still_live=self._follower().live_uniqueids)
        self.events.live_checked.add()

    def _follower(self) -> AmiFollower:
        assert self.follower is not None
        return self.follower

    def _settlement_done(self, settlements: list[Settlement]) -> None:
        for settlement in settlements:
            self.metrics.observe_settlement(settlement)
        self.events.settled.add()
        if self.webhooks is not None:
            self.webhooks.nudge()
        if self.call_index is not None:
            self.call_index.nudge()

    def _fees_checked(self, charged: list[FeeCharged]) -> None:
        self.events.fee_checks.add()
        if charged and self.webhooks is not None:
            self.webhooks.nudge()

    async def _start_web(self, ctx: BillingContext) -> None:
        operations = Operations(
            ctx, self.metrics,
            lambda: None if self.follower is None else self.follower.connected,
        )
        self.web = PortalProcess(self.settings.web, await portal_hello(ctx, self.settings),
                                 operations.answer)
        await self.web.start()
        self.web.cpus.keep_daemon_off()  # the portal's CPU is its own (daemon/portal.py)

    @property
    def web_port(self) -> int | None:
        return None if self.web is None else self.web.port

    async def reload(self) -> None:
        """SIGHUP: re-read the configuration; rates and settings are re-read on next use."""
        assert self.ctx is not None
        systemd.notify("RELOADING=1")
        try:
            fresh = load_settings(self.config_path)
        except Exception as exc:  # noqa: BLE001 - a bad reload keeps the running settings
            log.error("daemon.reload_refused error=%s", exc)
            systemd.notify("READY=1")
            return
        for section in ("database", "agi", "ami", "web", "webhooks"):
            old, new = getattr(self.settings, section), getattr(fresh, section)
            if section != "agi" and old != new:
                log.warning("daemon.reload_needs_restart section=%s", section)
        self.settings = fresh
        self.ctx.config = fresh
        self.ctx.rate_cache.version = -1
        if self.gate is not None:
            self.gate.options = gate_options(fresh)
        configure_logging(fresh.log)
        systemd.notify("READY=1")
        log.info("daemon.reloaded")

    def request_stop(self) -> None:
        self._stopping.set()

    def request_reload(self) -> None:
        self._reloading.set()

    async def wait(self) -> None:
        """Until asked to stop: reload when asked, send watchdog heartbeats meanwhile."""
        heartbeat = systemd.watchdog_interval()
        while not self._stopping.is_set():
            stop = asyncio.ensure_future(self._stopping.wait())
            reload = asyncio.ensure_future(self._reloading.wait())
            try:
                await asyncio.wait({stop, reload}, timeout=heartbeat or 3600,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                reload.cancel()
            if self._reloading.is_set() and not self._stopping.is_set():
                self._reloading.clear()
                await self.reload()
            if heartbeat:
                systemd.notify("WATCHDOG=1")
                if self.status is not None:
                    self.status.changed()  # AMI may have come or gone meanwhile

    async def stop(self) -> None:
        """Drain and close; after a failed start, just give back what was opened."""
        if self.status is not None:
            self.status.close()
        if self.started:
            systemd.notify("STOPPING=1")
            log.info("daemon.stopping")
        if self.gate is not None:
            await self.gate.close(drain_timeout=self.settings.agi.deadline_seconds)
        if self.refused is not None:
            await self.refused.stop()  # what the gate refused until it closed
        if self.follower is not None:
            await asyncio.shield(self.follower.stop(drain_seconds=10.0))
        if self.pbx is not None:
            await self.pbx.close()
        if self.web is not None:
            await self.web.stop()
            self.web.cpus.give_back()
        if self.fees is not None:
            await self.fees.stop()
        if self.call_index is not None:
            await self.call_index.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.ctx is not None:
            await self.ctx.uow.dispose()
        if self.started:
            log.info("daemon.stopped")
        self.started = False


def raise_file_limit() -> str:
    """The soft limit on open files up to the hard one (systemd's LimitNOFILE= sets both):
    1024 is what a shell gives, and the gate's and AMI's sockets must never run short. Returns
    the line to log once the daemon has started (a daemon that cannot start says one line)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            return f"daemon.nofile_unchanged soft={soft} hard={hard} error={exc}"
    return f"daemon.nofile soft={hard} hard={hard} was={soft}"


async def run_daemon(settings: Settings, config_path: str | None = None) -> int:
    # Before anything makes a file (the CLI does the same): ledger and keys are private.
    os.umask(0o077)
    configure_logging(settings.log)
    file_limit = raise_file_limit()
    daemon = Daemon(settings, config_path=config_path)
    loop = asyncio.get_running_loop()
    # Out of file descriptors, asyncio reports every failed accept: a bounded rate of lines.
    loop.set_exception_handler(rate_limited_exception_handler())
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()
        raise
    log.info(file_limit)
    loop.add_signal_handler(signal.SIGTERM, daemon.request_stop)
    loop.add_signal_handler(signal.SIGINT, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    try:
        await daemon.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await daemon.stop()
    return 0
