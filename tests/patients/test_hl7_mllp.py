"""MLLP over a real socket: framing, several messages per connection, oversize frames, garbage, limits, the
client, the CLI, and the listener the worker role starts."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hl7_build import SAMPLES, adt, oru
from sqlalchemy import func, select
from typer.testing import CliRunner

from patientline.cli import app as cli_app
from patientline.core.config import Settings
from patientline.patients.hl7 import Hl7Inbox
from patientline.patients.mllp import END, START, Limits, MllpServer, ack_code, messages_in, send
from patientline.patients.models import Patient, PatientResult
from patientline.web.app import create_app


@pytest.fixture
async def listener(db: Any, settings: Settings) -> AsyncIterator[MllpServer]:
    inbox = Hl7Inbox(db, settings)

    async def handle(raw: bytes) -> bytes:
        return (await inbox.receive(raw)).ack

    limits = Limits(max_bytes=8192, idle_seconds=30, max_connections=3)
    server = await MllpServer(handle, settings=settings, host="127.0.0.1", port=0, limits=limits).start()
    try:
        yield server
    finally:
        await server.stop()


async def read_acks(reader: asyncio.StreamReader, n: int) -> list[str]:
    acks: list[str] = []
    buffer = b""
    while len(acks) < n:
        chunk = await asyncio.wait_for(reader.read(4096), timeout=10)
        assert chunk, "the listener closed the connection"
        buffer += chunk
        while END in buffer:
            frame, buffer = buffer.split(END, 1)
            assert frame.startswith(START)
            acks.append(frame[1:].decode())
            buffer = buffer.removeprefix(b"\r")
    return acks


async def patients(db: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Patient)) or 0)


async def test_several_messages_per_connection_one_ack_each(listener: MllpServer, db: Any) -> None:
    messages = [adt("A01", "S1", pid3="S-1^^^HIS^MR"), adt("A04", "S2", pid3="S-2^^^HIS^MR"), "this is garbage",
                oru("S3"), adt("A08", "S1", pid3="S-1^^^HIS^MR", name="王^大明")]  # fmt: skip
    acks = await send("127.0.0.1", listener.port, messages)
    assert [ack_code(a) for a in acks] == ["AA", "AA", "AR", "AA", "AA"]
    assert "MSA|AA|S2|" in acks[1] and "MSA|AA|S3|" in acks[3]
    assert await patients(db) == 3  # S-1, S-2 and the ORU's patient M001


async def test_framing_split_writes_junk_between_frames_and_two_frames_at_once(listener: MllpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        first = START + adt("A01", "F1", pid3="F-1^^^HIS^MR").encode() + END + b"\r"
        writer.write(b"noise before the frame\r\n" + first[:20])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(first[20:])
        second = START + adt("A01", "F2", pid3="F-2^^^HIS^MR").encode() + END + b"\r"
        third = START + adt("A01", "F3", pid3="F-3^^^HIS^MR").encode() + END + b"\r"
        writer.write(b"\x00\x00junk" + second + third)
        await writer.drain()
        acks = await read_acks(reader, 3)
        assert [a.split("\r")[1].split("|")[1:3] for a in acks] == [["AA", "F1"], ["AA", "F2"], ["AA", "F3"]]
        broken = START + b"MSH|^~\\&|HIS|H|PL|CC|2026||ADT^A01|LOST|P|2.5\rPID|1"  # never ended: the next start wins
        writer.write(broken + START + adt("A01", "F4", pid3="F-4^^^HIS^MR").encode() + END + b"\r")
        await writer.drain()
        (ack,) = await read_acks(reader, 1)
        assert "MSA|AA|F4|" in ack
    finally:
        writer.close()


async def test_oversize_frame_is_rejected_and_the_connection_goes_on(listener: MllpServer, db: Any) -> None:
    big = adt("A01", "BIG", segments=["EVN|A01", "NTE|1||" + "x" * 20000])
    acks = await send("127.0.0.1", listener.port, [big, adt("A01", "SMALL", pid3="OK-1^^^HIS^MR")])
    assert [ack_code(a) for a in acks] == ["AR", "AA"]
    assert "MSA|AR|BIG|" in acks[0] and "larger than 8192 bytes" in acks[0] and "|104^" in acks[0]
    assert await patients(db) == 1


async def test_a_connection_over_the_limit_is_closed(listener: MllpServer) -> None:
    held = [await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(3)]
    try:
        for reader, writer in held:  # each of the three is served
            writer.write(START + adt("A01", "L1", pid3="L-1^^^HIS^MR").encode() + END + b"\r")
            await writer.drain()
            assert ack_code((await read_acks(reader, 1))[0]) == "AA"
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await asyncio.wait_for(reader.read(100), timeout=10) == b""  # the fourth is closed at once
        writer.close()
    finally:
        for _, writer in held:
            writer.close()


async def test_an_idle_connection_is_closed(db: Any, settings: Settings) -> None:
    async def handle(raw: bytes) -> bytes:
        return b"unused"

    server = await MllpServer(handle, settings=settings, port=0, limits=Limits(idle_seconds=0.2)).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(100), timeout=10) == b""
        writer.close()
    finally:
        await server.stop()


async def test_send_reports_a_listener_that_is_not_there() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        await send("127.0.0.1", port, [adt()])


def test_messages_in_reads_one_or_several_messages(tmp_path: Path) -> None:
    assert len(messages_in(SAMPLES / "ADT-A40-02.hl7")) == 1
    assert len(messages_in(SAMPLES / "ORM-O01-01.hl7")) == 1  # with a UTF-8 BOM
    two = tmp_path / "two.hl7"
    two.write_text(adt("A01", "T1").replace("\r", "\n") + adt("A01", "T2").replace("\r", "\n"))
    assert [m.split("\r")[0].split("|")[9] for m in messages_in(two)] == ["T1", "T2"]
    chinese = tmp_path / "gb.hl7"
    chinese.write_bytes(adt("A01", "G1", charset="GB 18030-2000", name="欧阳^娜娜").encode("gb18030"))
    assert "欧阳^娜娜" in messages_in(chinese)[0]


async def test_cli_hl7_send(listener: MllpServer, db: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    files = [str(SAMPLES / "ADT-A01-02.hl7"), str(SAMPLES / "ORU-R01-RMGEAD.hl7")]
    args = ["patients", "hl7-send", "--host", "127.0.0.1", "--port", str(listener.port), *files]
    result = await asyncio.to_thread(runner.invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["control_id"], line["ack"]) for line in lines] == [("MSG00001", "AA"), ("CNTRL-3456", "AA")]
    async with db.sessions() as session:
        assert await session.scalar(select(PatientResult.status)) == "final"
    rejected = await asyncio.to_thread(runner.invoke, cli_app, [*args[:6], str(SAMPLES / "SIU-S12-01.hl7")])
    assert rejected.exit_code == 1 and json.loads(rejected.stdout)["ack"] == "AR"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = await asyncio.to_thread(runner.invoke, cli_app, [*args[:4], "--port", str(closed), files[0]])
    assert unreachable.exit_code == 2


async def test_the_worker_role_starts_the_listener(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configured = settings.model_copy(update={"hl7_listen": f"127.0.0.1:{port}", "roles": "web,worker"})
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        assert application.state.pl.hl7 is not None
        acks = await send("127.0.0.1", port, [adt("A01", "W1")])
        assert ack_code(acks[0]) == "AA"
    assert application.state.pl.hl7.server is None  # stopped with the app
    web_only = create_app(settings.model_copy(update={"hl7_listen": f"127.0.0.1:{port}"}))
    async with web_only.router.lifespan_context(web_only):
        assert web_only.state.pl.hl7 is None
