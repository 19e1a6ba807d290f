"""`patientline` command line."""

from __future__ import annotations

import asyncio
import getpass
import json
import math
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from patientline.assistant.cli import assistant_app
from patientline.contacts.cli import contacts_app
from patientline.core.config import get_settings
from patientline.knowledge.cli import kb_app
from patientline.patients.cli import patients_app

app = typer.Typer(help="PatientLine: patient-service contact centre for hospitals.", no_args_is_help=True)
calendar_app = typer.Typer(help="The working-day calendar.", no_args_is_help=True)
app.add_typer(assistant_app, name="assistant")
app.add_typer(calendar_app, name="calendar")
app.add_typer(contacts_app, name="contacts")
app.add_typer(kb_app, name="kb")
app.add_typer(patients_app, name="patients")
routing_app = typer.Typer(help="The router (ACD): simulation of a queue.", no_args_is_help=True)
app.add_typer(routing_app, name="routing")
voice_app = typer.Typer(help="The phone line: retention of call recordings.", no_args_is_help=True)
app.add_typer(voice_app, name="voice")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default from settings: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    roles: Annotated[str | None, typer.Option(help="comma-separated roles: web,worker,router")] = None,
) -> None:
    """Serve the web UI and API (and the worker, unless --roles says otherwise)."""
    import os

    import uvicorn

    from patientline.core.observability import configure_logging

    if roles:
        os.environ["PATIENTLINE_ROLES"] = roles
        get_settings.cache_clear()
    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "patientline.web.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from patientline.core.migrations import upgrade

    upgrade(get_settings().effective_database_url)
    typer.echo("database is up to date")


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo hospital (once; running it again changes nothing)."""
    from patientline.demo import seed

    outcome = asyncio.run(seed(get_settings()))
    typer.echo(outcome)


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Argument(help="login name")],
    display_name: Annotated[str, typer.Option(help="name shown in the UI")] = "Administrator",
    password: Annotated[
        str | None, typer.Option(help="initial password (asked for when omitted)", envvar="PATIENTLINE_ADMIN_PASSWORD")
    ] = None,
) -> None:
    """Create an administrator, who must choose a new password at first login."""
    from patientline.core.auth.actor import SYSTEM
    from patientline.core.auth.service import create_user
    from patientline.core.db import Database
    from patientline.core.errors import DomainError

    settings = get_settings()
    secret = password or getpass.getpass("Initial password: ")

    async def run() -> None:
        db = Database(settings.effective_database_url)
        try:
            async with db.sessions() as session, session.begin():
                await create_user(
                    session,
                    actor=SYSTEM,
                    settings=settings,
                    username=username,
                    display_name=display_name,
                    password=secret,
                    roles=["admin"],
                )
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except DomainError as exc:
        typer.echo(f"error: {exc.message.format(**exc.params)}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created administrator {username}")


async def _calendar() -> object:
    from patientline.core import workcal
    from patientline.core.db import Database

    settings = get_settings()
    db = Database(settings.effective_database_url)
    try:
        async with db.sessions() as session:
            return await workcal.load(session, timezone=settings.timezone)
    finally:
        await db.dispose()


@calendar_app.command("check")
def calendar_check(year: Annotated[int, typer.Argument(min=2000, max=2100)]) -> None:
    """Say whether YEAR's holidays and make-up workdays are known. Exits 1 when they are not."""
    from patientline.core.workcal import Coverage, WorkCalendar

    calendar = asyncio.run(_calendar())
    assert isinstance(calendar, WorkCalendar)  # noqa: S101
    coverage = calendar.year_coverage(year)
    messages = {
        Coverage.PACKAGE: f"{year}: covered by the built-in holiday table",
        Coverage.OVERRIDES: f"{year}: covered by admin overrides (the built-in table lacks it)",
        Coverage.NONE: f"{year}: NOT covered: enter its holidays and make-up workdays as overrides; "
        "until then Monday to Friday count as working days",
    }
    typer.echo(messages[coverage])
    if coverage is Coverage.NONE:
        raise typer.Exit(1)


@calendar_app.command("add-working-days")
def calendar_add_working_days(
    start: Annotated[str, typer.Argument(help="ISO date or date-time; local time when no offset is given")],
    n: Annotated[int, typer.Argument(min=1, max=1000)],
    explain: Annotated[bool, typer.Option(help="also list the days skipped")] = False,
) -> None:
    """Print the moment N working days after START ends: 24:00 local time of the Nth working day."""
    from patientline.core.workcal import WorkCalendar

    calendar = asyncio.run(_calendar())
    assert isinstance(calendar, WorkCalendar)  # noqa: S101
    moment = _parse_start(start, calendar.timezone)
    due = calendar.add_working_days(moment, n)
    typer.echo(due.isoformat())
    if explain:
        for day in calendar.explain(moment, due):
            typer.echo(json.dumps(day.to_dict(), ensure_ascii=False))


def _parse_start(text: str, timezone: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text), time(0))
        except ValueError as exc:
            raise typer.BadParameter(f"not an ISO date or date-time: {text}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(timezone))


@voice_app.command("retention")
def voice_retention(
    days: Annotated[
        int | None, typer.Option(min=1, help="Delete recordings of calls older than this (default: the setting).")
    ] = None,
) -> None:
    """Delete call recordings past the retention period now; more than one run's share goes on as a job."""
    from patientline.core.db import Database
    from patientline.voice import retention

    settings = get_settings()
    retention_days = days or settings.voice_recording_retention_days

    async def run() -> retention.Outcome:
        db = Database(settings.effective_database_url)
        try:
            async with db.sessions() as session, session.begin():
                return await retention.run(session, settings=settings, retention_days=retention_days)
        finally:
            await db.dispose()

    outcome = asyncio.run(run())
    typer.echo(f"deleted the recordings of {outcome.calls} call(s) older than {retention_days} days")
    if outcome.refused:
        typer.echo(f"{outcome.refused} path(s) outside the recordings directory were forgotten, not deleted")
    if outcome.more:
        typer.echo("more are due: the worker carries on with them")


if __name__ == "__main__":
    app()


class OutputFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


@routing_app.command("simulate")
def routing_simulate(
    agents: Annotated[int, typer.Option(min=1, help="agents ready for the queue")],
    calls_per_hour: Annotated[float, typer.Option(min=0.001, help="mean arrival rate (Poisson)")],
    aht: Annotated[float, typer.Option(min=0.001, help="mean handling time in seconds (exponential)")],
    hours: Annotated[float, typer.Option(min=0.001, help="simulated hours measured (after the warm-up)")],
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same figures")] = 1,
    patience: Annotated[
        float | None, typer.Option(min=0.001, help="mean patience in seconds (exponential); none: nobody hangs up")
    ] = None,
    sl_seconds: Annotated[float, typer.Option(min=0, help="service-level threshold T in seconds")] = 20.0,
    warmup_hours: Annotated[float, typer.Option(min=0, help="simulated first, not counted")] = 1.0,
    answer_after: Annotated[float, typer.Option(min=0, help="seconds an offer rings before it is answered")] = 0.0,
    output: Annotated[OutputFormat, typer.Option("--format", help="json: one object; text: a table")] = (
        OutputFormat.JSON
    ),
) -> None:
    """Simulate one queue through the real router, with Erlang C (or A, with patience) alongside."""
    from patientline.routing.erlang import erlang_a, erlang_c
    from patientline.routing.simulate import Scenario, simulate

    scenario = Scenario(agents, calls_per_hour, aht, hours, seed, patience, sl_seconds, warmup_hours, answer_after)
    outcome = simulate(scenario).to_dict()
    if patience is None:
        model, erlang = "erlang_c", erlang_c(agents, calls_per_hour, aht, sl_seconds)
    else:
        model, erlang = "erlang_a", erlang_a(agents, calls_per_hour, aht, patience, sl_seconds)
    predicted = {key: getattr(erlang, key) for key in _ERLANG_FIGURES}
    outcome[model] = predicted
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(_finite(outcome), ensure_ascii=False))
        return
    typer.echo(f"{'':24}{'simulated':>12}{model.replace('_', ' ').title():>12}")
    for key in _ERLANG_FIGURES:
        typer.echo(f"{key:24}{_figure(outcome[key]):>12}{_figure(predicted[key]):>12}")
    for key in ("offered", "answered", "abandoned", "aht_measured_s"):
        typer.echo(f"{key:24}{_figure(outcome[key]):>12}")


_ERLANG_FIGURES = ("service_level", "service_level_offered", "asa_s", "abandon_rate", "occupancy")


def _finite(value: object) -> object:
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else "-"
    return str(value)
