"""Knowledge import and export API: items from and to .xlsx or CSV, and empty templates to fill in."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Response, UploadFile
from pydantic import BeforeValidator, Field

from patientline.core.auth.permissions import Permission
from patientline.core.validation import MAX_ID
from patientline.directory.imports import ImportReport
from patientline.knowledge import transfer
from patientline.web.deps import CurrentActor, Session

router = APIRouter(prefix="/api/kb", tags=["knowledge"])


def _empty_is_none(value: object) -> object:
    return value or None  # the export form on the page sends `category_id=` for "all"


CategoryFilter = Annotated[
    Annotated[int, Field(ge=1, le=MAX_ID)] | None, BeforeValidator(_empty_is_none), Query(description="and below")
]
StatusFilter = Annotated[
    Literal["draft", "in_review", "published", "archived"] | None, BeforeValidator(_empty_is_none), Query()
]
FILES = {
    "xlsx": transfer.XLSX_MEDIA_TYPE,
    "csv": "text/csv; charset=utf-8",
}


def _download(body: bytes, filename: str) -> Response:
    media_type = FILES[filename.rsplit(".", 1)[1]]
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post("/import", response_model=ImportReport, summary="Import items from .xlsx or CSV")
async def import_items(
    actor: CurrentActor,
    session: Session,
    file: Annotated[UploadFile, File(description=".xlsx workbook (first sheet) or CSV, with a header row")],
    dry_run: bool = True,
) -> ImportReport:
    """Creates or updates items by `key`. Writes nothing unless every row is valid; `dry_run` (the
    default) only reports what would happen. The request size limit applies to the file."""
    actor.require(Permission.EDIT_KNOWLEDGE)
    raw = await file.read()
    async with session.begin():
        return await transfer.run_import(session, actor=actor, raw=raw, dry_run=dry_run)


@router.get("/export.xlsx", summary="Export items (working copies) as .xlsx")
async def export_xlsx(
    actor: CurrentActor, session: Session, category_id: CategoryFilter = None, status: StatusFilter = None
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    rows = await transfer.export_rows(session, category_id=category_id, status=status)
    return _download(transfer.to_xlsx(rows), "knowledge.xlsx")


@router.get("/export.csv", summary="Export items (working copies) as CSV")
async def export_csv(
    actor: CurrentActor, session: Session, category_id: CategoryFilter = None, status: StatusFilter = None
) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    rows = await transfer.export_rows(session, category_id=category_id, status=status)
    return _download(transfer.to_csv(rows), "knowledge.csv")


@router.get("/import-template.xlsx", summary="An import template: the header row and one example")
async def template_xlsx(actor: CurrentActor) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    return _download(transfer.to_xlsx([transfer.TEMPLATE_ROW]), "knowledge-template.xlsx")


@router.get("/import-template.csv", summary="An import template: the header row and one example")
async def template_csv(actor: CurrentActor) -> Response:
    actor.require(Permission.EDIT_KNOWLEDGE)
    return _download(transfer.to_csv([transfer.TEMPLATE_ROW]), "knowledge-template.csv")
