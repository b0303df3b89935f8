"""How the portal's HTTP server treats its connections: bounded in number and in patience.

uvicorn keeps a connection for as long as its client cares to send headers (it has no header
timeout), and accepts as many as the process may open; a few hundred slow clients (one header
line every few seconds) used to run the daemon out of file descriptors. Here:

- a connection beyond `web.max_connections` is closed as soon as it is accepted (no 503: a
  flood gets nothing to read, and the descriptor goes back at once);
- a connection must complete its request headers within `web.header_timeout_seconds` of
  opening, and a kept-alive one within as long of the first byte of its next request (idle
  between requests, uvicorn's `timeout_keep_alive` ends it);
- the request line and headers may be at most `web.max_header_bytes` (h11 answers 400);
- X-Forwarded-For is believed only from `web.trusted_proxies` (uvicorn trusts 127.0.0.1 by
  default, which let anyone on the machine pick the address the login throttle sees).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from coobill.config import WebConfig

log = logging.getLogger("coobill.web")

# A refused connection is logged at most this often: a flood must not fill the journal.
_REFUSAL_LOG_SECONDS = 10.0


class PortalProtocol(H11Protocol):
    """H11Protocol with a connection cap and a header-read deadline (set by `protocol_for`)."""

    max_connections = 256
    header_timeout = 10.0
    _last_refusal_log = 0.0
    _refused_since_log = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse()
            return
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        between_requests = self.cycle is None or self.cycle.response_complete
        if not between_requests:
            self._cancel_deadline()  # the headers are in: the app has the request now
        elif self._header_deadline is None:
            # The first bytes of the next request on a kept-alive connection: its headers
            # get the same time as a new connection's.
            self._header_deadline = self.loop.call_later(self.header_timeout,
                                                         self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.debug("web.header_timeout client=%s", self.client)
            self.transport.close()

    def _refuse(self) -> None:
        self.transport.abort()
        cls = type(self)
        cls._refused_since_log += 1
        now = time.monotonic()
        if now - cls._last_refusal_log >= _REFUSAL_LOG_SECONDS:
            log.warning("web.connections_refused count=%d max_connections=%d",
                        cls._refused_since_log, self.max_connections)
            cls._last_refusal_log, cls._refused_since_log = now, 0


def protocol_for(web: WebConfig) -> type[PortalProtocol]:
    """A PortalProtocol class with this configuration's limits (uvicorn builds the protocol
    from its class, so the limits travel as class attributes)."""
    return type("ConfiguredPortalProtocol", (PortalProtocol,), {
        "max_connections": web.max_connections,
        "header_timeout": web.header_timeout_seconds,
    })


def server_config(app: Any, web: WebConfig) -> uvicorn.Config:
    """uvicorn's configuration for the portal; it serves sockets it is given (Server.serve)."""
    trusted = list(web.trusted_proxies)
    return uvicorn.Config(
        app,
        http=protocol_for(web),
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_keep_alive=web.keep_alive_seconds,
        h11_max_incomplete_event_size=web.max_header_bytes,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def listen(web: WebConfig) -> socket.socket:
    """The portal's listening socket, bound by the daemon: the port is known (and a taken port
    is an error) before the portal process starts, and it stays the same across restarts,
    connections waiting in the backlog meanwhile."""
    family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
    sock = socket.create_server((web.host, web.port), family=family, backlog=1024)
    sock.set_inheritable(True)
    return sock
