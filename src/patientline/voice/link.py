"""The controller's end of a media worker's control socket: commands out, events in, as JSON lines.

A link keeps trying to connect while the worker starts (or restarts after a crash); each time the
connection drops, whoever holds the worker hears `lost`, so no conversation waits on a dead process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RECONNECT_S = 0.2
Event = dict[str, Any]


class WorkerGone(Exception):
    """The worker's socket closed: the process ended or crashed."""


class WorkerLink:
    def __init__(self, name: str, socket_path: Path, sip_port: int, on_event: Callable[[WorkerLink, Event], None],
                 on_lost: Callable[[WorkerLink], None]) -> None:  # fmt: skip
        self.name = name
        self.socket_path = socket_path
        self.sip_port = sip_port
        self._on_event = on_event
        self._on_lost = on_lost
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"voice-link-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._close()

    async def send(self, **command: Any) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise WorkerGone(self.name)
        writer.write(json.dumps(command, ensure_ascii=False).encode() + b"\n")
        try:
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            raise WorkerGone(self.name) from exc

    async def _run(self) -> None:
        while True:
            try:
                reader, self._writer = await asyncio.open_unix_connection(str(self.socket_path), limit=1 << 20)
            except OSError:
                await asyncio.sleep(RECONNECT_S)
                continue
            self.connected.set()
            try:
                await self._read(reader)
            finally:
                self.connected.clear()
                self._close()
                self._on_lost(self)
            await asyncio.sleep(RECONNECT_S)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("unreadable event from worker %s", self.name)
                continue
            if isinstance(event, dict):
                self._on_event(self, event)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
