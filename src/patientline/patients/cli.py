"""`patientline patients …`: the patient index and the hospital's systems from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

patients_app = typer.Typer(help="Patients and the hospital's systems.", no_args_is_help=True)


@patients_app.callback()
def _patients() -> None:
    """Patients and the hospital's systems."""


@patients_app.command("hl7-send")
def hl7_send(
    files: Annotated[
        list[Path],
        typer.Argument(help="files of HL7 v2 messages (one or several each)", exists=True, dir_okay=False),
    ],
    host: Annotated[str, typer.Option(help="the MLLP listener's address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the MLLP listener's port", min=1, max=65535)] = 2575,
    ack_seconds: Annotated[float, typer.Option(help="how long to wait for each ACK", min=0.1)] = 30.0,
) -> None:
    """Send HL7 v2 messages over MLLP, one after the other's ACK; prints one JSON line per message
    (file, control id, ACK code, ACK text). Exits 1 when any ACK is not AA, 2 when the listener is unreachable."""
    from patientline.patients.mllp import ack_code, messages_in, send

    batch: list[tuple[Path, str]] = []
    for path in files:
        try:
            batch.extend((path, message) for message in messages_in(path))
        except UnicodeDecodeError:
            typer.echo(json.dumps({"file": str(path), "error": "not readable in its declared character set"}), err=True)
            raise typer.Exit(code=2) from None
    try:
        acks = asyncio.run(send(host, port, [message for _, message in batch], ack_seconds=ack_seconds))
    except (OSError, TimeoutError) as exc:
        typer.echo(json.dumps({"error": f"no answer from {host}:{port}: {type(exc).__name__}"}), err=True)
        raise typer.Exit(code=2) from None
    failed = False
    for (path, message), ack in zip(batch, acks, strict=True):
        code = ack_code(ack)
        failed = failed or code not in ("AA", "CA")
        control_id = _control_id(message)
        typer.echo(json.dumps({"file": str(path), "control_id": control_id, "ack": code, "text": ack.strip()},
                              ensure_ascii=False))  # fmt: skip
    if failed:
        raise typer.Exit(code=1)


def _control_id(message: str) -> str:
    first = message.split("\r", 1)[0]
    fields = first.split(first[3]) if len(first) > 3 else []
    return fields[9] if len(fields) > 9 else ""


@patients_app.command("his-simulator")
def his_simulator(
    port: Annotated[int, typer.Option(help="port to serve on", min=1, max=65535)] = 8091,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    seed: Annotated[int | None, typer.Option(help="seed of the made-up patients (default: the demo's)")] = None,
    size: Annotated[int, typer.Option(help="how many made-up patients", min=1, max=100_000)] = 300,
    latency_ms: Annotated[
        int | None, typer.Option(help="delay of each answer (default: PATIENTLINE_HIS_SIMULATOR_LATENCY_MS)", min=0)
    ] = None,
    failure_rate: Annotated[
        float | None, typer.Option(help="share of calls that fail with a 503 (0 to 1)", min=0, max=1)
    ] = None,
) -> None:
    """Serve the demo HIS simulator as a FHIR R4 server on http://HOST:PORT/fhir (the searches the FHIR
    adapter makes). A bearer token is required when PATIENTLINE_HIS_SIMULATOR_TOKEN is set."""
    import os

    from patientline.core.config import get_settings
    from patientline.patients.simulator import DEMO_SEED, SimulatedHis
    from patientline.patients.simulator_fhir import serve

    settings = get_settings()
    his = SimulatedHis(
        seed=DEMO_SEED if seed is None else seed,
        size=size,
        latency_ms=settings.his_simulator_latency_ms if latency_ms is None else latency_ms,
        failure_rate=settings.his_simulator_failure_rate if failure_rate is None else failure_rate,
    )
    typer.echo(f"simulated HIS (FHIR R4) on http://{host}:{port}/fhir with {size} made-up patients", err=True)
    serve(host=host, port=port, his=his, token=os.environ.get("PATIENTLINE_HIS_SIMULATOR_TOKEN") or None)
