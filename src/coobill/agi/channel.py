"""One FastAGI connection seen from the server: read the environment, send commands, read replies.

Every read here either returns, raises, or is cut by the caller's deadline: an EOF ends the
read at once (panoramisk spins on it), and the stream limit bounds every line.
"""

from __future__ import annotations

import asyncio

from coobill.agi.protocol import (
    HANGUP,
    ProtocolError,
    Reply,
    decode_line,
    ends_usage_block,
    parse_environment,
    parse_environment_block,
    parse_reply,
    reply_code,
)

# A 520 usage text is a handful of lines; more than this is not Asterisk.
_MAX_USAGE_LINES = 200


class ChannelClosed(Exception):
    """Asterisk closed the connection (or reset it) before the conversation was over."""


class NoRequest(ChannelClosed):
    """The peer connected and left without a byte: a health check or a port scan."""


class EnvironmentTooLarge(Exception):
    """The environment block grew past the configured size without ending."""


class AgiChannel:
    """The server's side of one FastAGI conversation."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.hung_up = False
        self.uniqueid: str | None = None  # once the environment named it, for the logs

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self._writer

    async def read_environment(self, max_bytes: int) -> dict[str, str]:
        """The agi_* block up to its blank line, read in one go (Asterisk ends every line
        with a bare LF: res_agi.c writes `agi_%s: %s\n` and then `\n`).

        Raises NoRequest when the peer leaves without a byte, ChannelClosed when it leaves
        mid-block and EnvironmentTooLarge past `max_bytes` or the stream limit (nothing more
        is read then).
        """
        try:
            block = await self._reader.readuntil(b"\n\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise NoRequest("connection closed before a request") from None
            raise ChannelClosed(
                f"connection closed inside the environment ({len(exc.partial)} bytes)"
            ) from None
        except asyncio.LimitOverrunError as exc:
            raise EnvironmentTooLarge("the environment passed the stream limit") from exc
        except ConnectionError as exc:
            raise ChannelClosed(str(exc)) from exc
        if len(block) > max_bytes:
            raise EnvironmentTooLarge(f"environment passed {max_bytes} bytes")
        text = block[:-2].decode("utf-8", errors="replace")
        if "\r" in text:
            return parse_environment(line.rstrip("\r") for line in text.split("\n"))
        return parse_environment_block(text)

    async def command(self, line: str) -> Reply:
        """Send one command and return its reply, skipping the out-of-band HANGUP notice."""
        await self.send(line)
        first = await self._reply_line()
        code, continues = reply_code(first)
        lines = [first]
        if code == 520 and continues:
            while not ends_usage_block(lines[-1]):
                if len(lines) > _MAX_USAGE_LINES:
                    raise ProtocolError("520 usage block never ended")
                lines.append(await self._read_line())
        return parse_reply(lines)

    async def send(self, line: str) -> None:
        """Write one command line without waiting for its reply."""
        if "\n" in line or "\r" in line:
            raise ValueError("an AGI command is one line")
        try:
            self._writer.write(line.encode("utf-8") + b"\n")
            if self._writer.transport.get_write_buffer_size():  # else nothing to wait for
                await self._writer.drain()
        except ConnectionError as exc:
            raise ChannelClosed(str(exc)) from exc

    async def _reply_line(self) -> str:
        while True:
            line = await self._read_line()
            if line.strip() == HANGUP:
                # Asterisk writes this whenever the caller hangs up; the real reply follows.
                self.hung_up = True
                continue
            return line

    async def _read_line(self) -> str:
        try:
            raw = await self._reader.readline()
        except ValueError as exc:
            raise ProtocolError(str(exc)) from exc
        except ConnectionError as exc:
            raise ChannelClosed(str(exc)) from exc
        if not raw.endswith(b"\n"):
            raise ChannelClosed("connection closed while a reply was expected")
        return decode_line(raw)

    async def close(self, timeout: float = 1.0) -> None:
        """Close the socket; a peer that never reads cannot hold it open past `timeout`."""
        writer = self._writer
        if writer.is_closing():
            return
        writer.close()
        if not writer.transport.get_write_buffer_size():
            return  # nothing left to send: the socket closes on the loop's next turn
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout)
        except TimeoutError:
            writer.transport.abort()
        except (ConnectionError, OSError):
            pass
