"""HL7 v2 ingest over MLLP: how many messages a second the listener takes, each acknowledged.

    .venv/bin/python bench/patients_mllp.py                        # SQLite and PostgreSQL, 5,000 messages
    .venv/bin/python bench/patients_mllp.py --backend sqlite --messages 20000 --connections 16
    .venv/bin/python bench/patients_mllp.py --preload 0              # into an empty, never analysed index

For each backend: a fresh database (var/bench/patients_mllp.db; on PostgreSQL a database pl_bench_patients_mllp on
the server of PATIENTLINE_BENCH_DATABASE_URL, default the local test server) migrated with Alembic and
holding `--preload` patients (default 100,000; bulk-loaded as the lookup benchmark builds its million, then
analysed as autovacuum or SQLite's checkpoints would have done by then): a hospital's index is never empty,
and PostgreSQL plans the lookups of a table it has never analysed as if it held nothing. The
product's listener (`patients.mllp.MllpServer` feeding `patients.hl7.Hl7Inbox`, as the worker role runs it,
on the event loop `patientline serve` runs it on: uvicorn's choice, uvloop) listens on 127.0.0.1 on a free
port; `--connections` senders in a separate process (so that their work is
not counted against the listener's loop) each send their share of the messages one after the other, each
after the ACK of the one before, as an interface engine does. Half the messages are ADT^A01 (a new patient
with a Chinese name, a valid ID card number, an MRN and a mobile number: the index upsert, identifiers,
phones, audit row), half ORU^R01 (that patient's lab result turning final: the result row, its event, audit
row). Every message is its own transaction with its idempotency row, as in production.

Figure: messages per second from the first send to the last ACK. Target >= 500 messages/s. Prints the
figures and one JSON line; exits 1 when a target is missed (or when any ACK is not AA).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
from datetime import UTC, datetime
from typing import Any

import patients_lookup
from measures import create_database, drop_database, machine, run_as_served
from stdnum.cn import ric

from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.migrations import upgrade
from patientline.patients.hl7 import Hl7Inbox
from patientline.patients.mllp import Limits, MllpServer

DATABASE = "patients_mllp"
TARGET_MESSAGES_PER_S = 500.0
PRELOAD = 100_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英"


def _id_card(rng: random.Random) -> str:
    base = f"110105{rng.randint(1950, 2015)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return base + ric.calc_check_digit(base + "0")


def build_messages(count: int, *, seed: int = 2575) -> list[str]:
    """ADT^A01 for patient k, then ORU^R01 (final) for the same patient: pairs, in order."""
    rng = random.Random(seed)
    messages: list[str] = []
    for k in range((count + 1) // 2):
        name = f"{rng.choice(SURNAMES)}^{''.join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))}"
        mrn, card, phone = f"B{k:07d}", _id_card(rng), f"13{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"
        birth, sex = card[6:14], "M" if int(card[16]) % 2 else "F"
        pid = f"PID|1||{mrn}^^^HIS^MR~{card}^^^CHN^NNCHN||{name}||{birth}|{sex}|||||{phone}"
        messages.append(f"MSH|^~\\&|HIS|HOSP|PL|CC|20261123100000||ADT^A01^ADT_A01|A{k}|P|2.5\rEVN|A01\r{pid}\r")
        if len(messages) < count:
            obr = f"OBR|1|P{k}|L{k}|血常规^血常规^L|||20261123080000|||||||||||||||20261123093000+0800||HM|F"
            obx = "OBX|1|NM|718-7^血红蛋白^LN||135|g/L|115-150|N|||F"
            messages.append(
                f"MSH|^~\\&|LIS|HOSP|PL|CC|20261123100000||ORU^R01^ORU_R01|R{k}|P|2.5\r{pid}\r{obr}\r{obx}\r"
            )
    return messages


SENDER = """
import asyncio, json, sys, time
from patientline.patients.mllp import ack_code, send

async def run():
    host, port, shares = json.loads(sys.stdin.read())
    start = time.perf_counter()
    acks = await asyncio.gather(*(send(host, port, share, ack_seconds=120) for share in shares))
    return time.perf_counter() - start, [ack_code(a) for share in acks for a in share]

print(json.dumps(asyncio.run(run())))
"""
"""The senders, in a process of their own so that their work is not counted against the listener's loop."""


async def _send_elsewhere(port: int, shares: list[list[str]]) -> tuple[float, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SENDER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate(json.dumps(["127.0.0.1", port, shares]).encode())
    if process.returncode != 0:
        raise RuntimeError(f"the senders failed (exit {process.returncode})")
    elapsed, codes = json.loads(out)
    return float(elapsed), list(codes)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def prepare(url: str, backend: str, *, preload: int = PRELOAD, seed: int = 8585) -> dict[str, Any]:
    """Migrates the fresh database and fills the index with `preload` patients."""
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    if not preload:
        return {"preloaded": 0}
    population = patients_lookup.Population(preload, seed, datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    loaded = await patients_lookup.load(url, backend, population)
    return {"preloaded": preload, "preload_s": loaded["build_s"]}


async def measure(database_url: str, *, messages: int = 5000, connections: int = 8) -> dict[str, Any]:
    """The figures of one run against a migrated database."""
    settings = Settings(database_url=database_url, roles="worker", _env_file=None)  # type: ignore[call-arg]
    db = Database(database_url)
    inbox = Hl7Inbox(db, settings)

    async def handle(raw: bytes) -> bytes:
        return (await inbox.receive(raw)).ack

    server = MllpServer(handle, settings=settings, host="127.0.0.1", port=_free_port(),
                        limits=Limits(max_connections=max(64, connections)))  # fmt: skip
    await server.start()
    batch = build_messages(messages)
    pairs = [batch[i : i + 2] for i in range(0, len(batch), 2)]
    shares = [[m for pair in pairs[c::connections] for m in pair] for c in range(connections)]
    try:
        elapsed, codes = await _send_elsewhere(server.port, shares)
    finally:
        await server.stop()
        await db.dispose()
    not_accepted = sum(code != "AA" for code in codes)
    return {
        "messages": len(codes),
        "connections": connections,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(codes) / elapsed, 1),
        "not_accepted": not_accepted,
    }


async def measure_mllp(database_url: str, *, messages: int = 5000, connections: int = 8) -> float:
    """Messages per second through the MLLP listener into a migrated database (ADT^A01 and ORU^R01 alike,
    each waiting for its ACK, over `connections` connections)."""
    return float((await measure(database_url, messages=messages, connections=connections))["messages_per_s"])


# ---- main ---------------------------------------------------------------------------------------------


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    url = await create_database(backend, DATABASE)
    try:
        prepared = await prepare(url, backend, preload=args.preload)
        figures = {**prepared, **await measure(url, messages=args.messages, connections=args.connections)}
        refused = f", {figures['not_accepted']} not accepted" if figures["not_accepted"] else ""
        print(f"{backend}: {figures['messages']:,} messages over {figures['connections']} connections in "
              f"{figures['seconds']} s: {figures['messages_per_s']} messages/s{refused}", flush=True)  # fmt: skip
        return {"backend": backend, **figures}
    finally:
        if args.keep:
            print(f"  kept {url}")
        else:
            await drop_database(backend, url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--preload", type=int, default=PRELOAD, help="patients in the index before the messages")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {"machine": machine(), "backends": []}
    misses: list[str] = []
    for backend in backends:
        result = run_as_served(run_backend(backend, args))  # the loop the worker role listens on
        results["backends"].append(result)
        if result["messages_per_s"] < TARGET_MESSAGES_PER_S:
            misses.append(f"{backend}: {result['messages_per_s']} messages/s < {TARGET_MESSAGES_PER_S:.0f}")
        if result["not_accepted"]:
            misses.append(f"{backend}: {result['not_accepted']} messages not accepted")
    print(json.dumps(results, ensure_ascii=False))
    for miss in misses:
        print(f"MISSED {miss}")
    if not misses:
        print(f"all targets met (MLLP ingest >= {TARGET_MESSAGES_PER_S:.0f} messages/s)")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
