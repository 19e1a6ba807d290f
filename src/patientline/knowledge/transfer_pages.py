"""The knowledge import and export page: upload for a dry run, read the report, then import for real;
export links with filters, and the templates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from patientline.core.auth.permissions import Permission
from patientline.core.errors import DomainError
from patientline.core.i18n import gettext
from patientline.knowledge import service, transfer
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render

router = APIRouter(prefix="/kb", include_in_schema=False)


@router.get("/transfer")
async def transfer_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    tree = await service.CategoryTree.load(session)
    aliases: dict[str, list[str]] = {}
    for alias, column in transfer.ALIASES.items():
        aliases.setdefault(column, []).append(alias)
    return render(
        request,
        "knowledge/transfer.html",
        {
            "columns": transfer.COLUMNS,
            "aliases": aliases,
            "max_rows": transfer.MAX_ROWS,
            "categories": [(row.id, tree.path(row.id)) for row, _ in tree.walk()],
            "can_publish": actor.can(Permission.REVIEW_KNOWLEDGE),
        },
    )


@router.post("/transfer")
async def transfer_submit(
    request: Request,
    actor: CurrentActor,
    session: Session,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = True,
) -> Response:
    """An htmx fragment: the report, or why the file could not be read."""
    actor.require(Permission.EDIT_KNOWLEDGE)
    try:
        raw = await file.read()
        async with session.begin():
            report = await transfer.run_import(session, actor=actor, raw=raw, dry_run=dry_run)
    except DomainError as exc:
        context = {"failure": exc.localized_message(gettext), "details": exc.details}
        return render(request, "knowledge/transfer_report.html", context)
    return render(request, "knowledge/transfer_report.html", {"report": report})
