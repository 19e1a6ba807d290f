"""HL7 v2 over MLLP (the minimal lower layer protocol): each message travels as 0x0B <message> 0x1C 0x0D.

`MllpServer` is the listener the `worker` role starts when `hl7_listen` is set ("host:port"): many messages
per connection, one ACK per message in order, with limits (message size, idle time, connections). Bytes
outside a frame are skipped; a frame that is too large is read to its end and answered AR; a frame that is
not HL7 is answered AR by the inbox (`patients.hl7`).

`send(host, port, messages)` is the client (the CLI's `patientline patients hl7-send` and the demo HIS
simulator use it): it sends each message over one connection, waits for its ACK, and returns the ACKs as
text. `ack_code(ack)` reads MSA-1 of one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.patients.hl7 import Header, Hl7Inbox, Note, build_ack, decode

log = logging.getLogger(__name__)

START = b"\x0b"
END = b"\x1c"
CR = b"\x0d"
CHUNK = 65536


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 1024 * 1024  # one message
    idle_seconds: float = 300.0  # a connection with nothing to read for this long is closed
    max_connections: int = 64


@dataclass(frozen=True)
class Frame:
    data: bytes  # the message (for an oversize frame: its first bytes only)
    oversize: bool = False


class FrameReader:
    """Cuts a byte stream into MLLP frames, skipping what lies outside them."""

    def __init__(self, reader: asyncio.StreamReader, max_bytes: int) -> None:
        self.reader, self.max_bytes = reader, max_bytes
        self.buffer = bytearray()

    async def next(self) -> Frame | None:
        """The next frame, or None at the end of the stream (a frame cut short by the end is dropped)."""
        skipping: bytes | None = None  # the first bytes of an oversize frame while its rest is skipped
        while True:
            if skipping is None:
                start = self.buffer.find(START)
                if start < 0:
                    self.buffer.clear()
                else:
                    del self.buffer[:start]
                    restart = self.buffer.find(START, 1)
                    end = self.buffer.find(END, 1)
                    if restart > 0 and (end < 0 or restart < end):  # a new frame began before this one ended
                        del self.buffer[:restart]
                        continue
                    if end > 0:
                        data = bytes(self.buffer[1:end])
                        del self.buffer[: end + 1]
                        return Frame(data[:4096], oversize=True) if len(data) > self.max_bytes else Frame(data)
                    if len(self.buffer) - 1 > self.max_bytes:
                        skipping = bytes(self.buffer[1:4096])
                        self.buffer.clear()
            else:
                end = self.buffer.find(END)
                if end >= 0:
                    del self.buffer[: end + 1]
                    return Frame(skipping, oversize=True)
                self.buffer.clear()
            chunk = await self.reader.read(CHUNK)
            if not chunk:
                return None
            self.buffer += chunk


Handler = Callable[[bytes], Awaitable[bytes]]
Closing = Callable[[], Awaitable[None]]


def oversize_ack(first_bytes: bytes, limit: int, settings: Settings) -> bytes:
    """AR for a message larger than the limit, addressed from its MSH when that much arrived."""
    header = Header()
    with contextlib.suppress(Exception):
        decode(first_bytes, header)
    text = f"The message is larger than {limit} bytes."
    return build_ack(header, "AR", [Note(text, 104)], settings).encode(header.codec, errors="replace")


class MllpServer:
    """`closing` runs once the connections are gone: the inbox finishes what it had in hand."""

    def __init__(self, handler: Handler, *, settings: Settings, host: str = "127.0.0.1", port: int = 2575,
                 limits: Limits | None = None, closing: Closing | None = None) -> None:  # fmt: skip
        self.handler, self.settings, self.host, self.port = handler, settings, host, port
        self.limits, self.closing = limits or Limits(), closing
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self) -> MllpServer:
        self.server = await asyncio.start_server(self._connection, self.host, self.port, limit=CHUNK * 2)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("hl7 listener started", extra={"host": self.host, "port": self.port})
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        for task in list(self.connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.closing is not None:
            await self.closing()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), timeout=5)
            self.server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self.connections) >= self.limits.max_connections or task is None:
            log.warning("hl7 connection refused: too many", extra={"limit": self.limits.max_connections})
            writer.close()
            return
        self.connections.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader, self.limits.max_bytes)
        while True:
            try:
                frame = await asyncio.wait_for(frames.next(), timeout=self.limits.idle_seconds)
            except TimeoutError:
                return
            if frame is None:
                return
            if frame.oversize:
                ack = oversize_ack(frame.data, self.limits.max_bytes, self.settings)
            else:
                ack = await self.handler(frame.data)
            writer.write(START + ack + END + CR)
            await writer.drain()


def parse_listen(value: str) -> tuple[str, int]:
    """'0.0.0.0:2575' -> ('0.0.0.0', 2575); '[::1]:2575' works too."""
    match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d{1,5})", value.strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"hl7_listen must be host:port, not {value!r}")
    return match.group(1) or "127.0.0.1", int(match.group(2))


async def start_listener(db: Database, settings: Settings, *, limits: Limits | None = None) -> MllpServer:
    """The listener of `settings.hl7_listen`, feeding `Hl7Inbox`."""
    host, port = parse_listen(settings.hl7_listen)
    inbox = Hl7Inbox(db, settings)

    async def handle(raw: bytes) -> bytes:
        return (await inbox.receive(raw)).ack

    server = MllpServer(handle, settings=settings, host=host, port=port, limits=limits, closing=inbox.close)
    return await server.start()


# --- the client -----------------------------------------------------------------------------------------------


def encode(message: str | bytes) -> bytes:
    """A message as the bytes to frame: text gets CR between segments and the character set its MSH-18
    declares (UTF-8 when none); bytes are sent as they are."""
    if isinstance(message, bytes):
        return message
    text = re.sub(r"\r\n|\n", "\r", message.strip()) + "\r"
    header = Header()
    with contextlib.suppress(Exception):
        decode(text.encode("utf-8"), header)
    return text.encode(header.codec if header.charset else "utf-8")


def as_text(ack: bytes) -> str:
    header = Header()
    with contextlib.suppress(Exception):
        decode(ack, header)
    return ack.decode(header.codec, errors="replace")


def ack_code(ack: str) -> str:
    """MSA-1 of an ACK: AA, AE, AR (CA, CE, CR in enhanced mode), or '' when there is none."""
    for segment in re.split(r"[\r\n]+", ack):
        if segment.startswith("MSA") and len(segment) > 4:
            return segment.split(segment[3])[1].strip()
    return ""


async def send(host: str, port: int, messages: Iterable[str | bytes], *, ack_seconds: float = 30.0) -> list[str]:
    """Sends the messages in order over one connection, each after the ACK of the one before, and returns
    the ACKs as text. Raises ConnectionError when the listener closes early, TimeoutError when an ACK is
    `ack_seconds` late."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=ack_seconds)
    frames = FrameReader(reader, 16 * 1024 * 1024)
    acks: list[str] = []
    try:
        for message in messages:
            writer.write(START + encode(message) + END + CR)
            await writer.drain()
            frame = await asyncio.wait_for(frames.next(), timeout=ack_seconds)
            if frame is None:
                raise ConnectionError("the HL7 listener closed the connection before answering")
            acks.append(as_text(frame.data))
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return acks


def messages_in(path: Path) -> list[str]:
    """The messages of a file: one or several, each beginning with an MSH line (a UTF-8 BOM is ignored;
    a file declaring another character set in MSH-18 is read in it)."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    header = Header()
    with contextlib.suppress(Exception):
        decode(data, header)
    text = re.sub(r"\r\n|\n", "\r", data.decode(header.codec, errors="strict"))
    messages: list[list[str]] = []
    for line in text.split("\r"):
        if not line.strip():
            continue
        if line.startswith("MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return ["\r".join(lines) + "\r" for lines in messages]
