"""Work-order reports API: the figures of a period and the export of its orders (CSV, .xlsx).

Registered before the orders' router, whose `/api/workorders/{order_id}` would otherwise take
`/api/workorders/reports`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator, Field

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import current_locale
from patientline.core.validation import MAX_ID
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse
from patientline.workorders import reports

router = APIRouter(prefix="/api/workorders/reports", tags=["work-order reports"])


def _empty_is_none(value: object) -> object:
    return value or None  # the period form sends `type_id=` for "all"


FromDate = Annotated[
    date | None, BeforeValidator(_empty_is_none), Query(alias="from", description="first day (default: 30 days ago)")
]
ToDate = Annotated[date | None, BeforeValidator(_empty_is_none), Query(alias="to", description="last day, included")]
FilterId = Annotated[Annotated[int, Field(ge=1, le=MAX_ID)] | None, BeforeValidator(_empty_is_none), Query()]


def _authorise(actor: Actor) -> None:
    actor.require(Permission.READ_WORK_ORDER_REPORTS)


def report_filter(
    request: Request, date_from: date | None, date_to: date | None, type_id: int | None, department_id: int | None
) -> reports.ReportFilter:
    return reports.make_filter(
        timezone=app_state(request).settings.timezone, date_from=date_from, date_to=date_to, type_id=type_id,
        department_id=department_id,
    )  # fmt: skip


def _filename(where: reports.ReportFilter, extension: str) -> str:
    return f"workorders-{where.date_from:%Y%m%d}-{where.date_to:%Y%m%d}.{extension}"


@router.get("", summary="A period's figures: counts, on-time rates, handling time, reopenings, satisfaction, days")
async def report(
    request: Request,
    actor: CurrentActor,
    session: Session,
    date_from: FromDate = None,
    date_to: ToDate = None,
    type_id: FilterId = None,
    department_id: FilterId = None,
) -> Response:
    _authorise(actor)
    where = report_filter(request, date_from, date_to, type_id, department_id)
    return FastJSONResponse((await reports.build(session, where=where)).to_dict())


@router.get("/export.csv", summary="The period's orders as CSV (masked numbers, no free text; at most 100,000)")
async def export_csv(
    request: Request,
    actor: CurrentActor,
    session: Session,
    date_from: FromDate = None,
    date_to: ToDate = None,
    type_id: FilterId = None,
    department_id: FilterId = None,
) -> Response:
    _authorise(actor)
    where = report_filter(request, date_from, date_to, type_id, department_id)
    await reports.check_export_size(session, where=where)
    database, locale = app_state(request).db, current_locale.get()

    async def body() -> AsyncIterator[bytes]:
        # a session of its own: the request's may be closed before the last row is sent
        current_locale.set(locale)
        async with database.sessions() as own:
            async for chunk in reports.csv_chunks(own, where=where):
                yield chunk

    return StreamingResponse(
        body(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(where, "csv")}"'},
    )  # fmt: skip


@router.get("/export.xlsx", summary="The period's orders as an .xlsx workbook (at most 100,000)")
async def export_xlsx(
    request: Request,
    actor: CurrentActor,
    session: Session,
    date_from: FromDate = None,
    date_to: ToDate = None,
    type_id: FilterId = None,
    department_id: FilterId = None,
) -> Response:
    _authorise(actor)
    where = report_filter(request, date_from, date_to, type_id, department_id)
    await reports.check_export_size(session, where=where)
    body = await reports.xlsx_bytes(session, where=where)
    return Response(
        body, media_type=reports.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{_filename(where, "xlsx")}"'},
    )  # fmt: skip
