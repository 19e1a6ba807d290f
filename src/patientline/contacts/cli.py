"""`patientline contacts …`: the retention run on demand (the worker also runs it daily)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from patientline.core.config import get_settings

contacts_app = typer.Typer(help="Contact records.", no_args_is_help=True)


@contacts_app.callback()
def _contacts() -> None:
    """Contact records."""


@contacts_app.command("retention")
def retention(
    days: Annotated[
        int | None, typer.Option(min=30, help="Anonymise contacts older than this (default: the setting).")
    ] = None,
) -> None:
    """Anonymise contacts past the retention period now; more than one run's share goes on as a job."""
    from patientline.contacts import scheduled
    from patientline.core.db import Database

    settings = get_settings()
    retention_days = days or settings.contact_retention_days

    async def run() -> int:
        db = Database(settings.effective_database_url)
        try:
            async with db.sessions() as session, session.begin():
                return await scheduled.run(session, retention_days=retention_days)
        finally:
            await db.dispose()

    count = asyncio.run(run())
    typer.echo(f"anonymised {count} contact(s) older than {retention_days} days")
