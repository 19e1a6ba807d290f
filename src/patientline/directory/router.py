"""Directory API: the same five operations for sites, departments, teams, skills and staff, plus CSV
import with a dry run."""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.permissions import Permission
from patientline.core.validation import MAX_ID, PathId, QueryId
from patientline.directory import imports, service
from patientline.directory.schemas import (
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    SiteCreate,
    SiteRead,
    SiteUpdate,
    SkillCreate,
    SkillRead,
    SkillUpdate,
    StaffCreate,
    StaffRead,
    StaffUpdate,
    TeamCreate,
    TeamRead,
    TeamUpdate,
)
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/directory", tags=["directory"])


async def to_read(session: AsyncSession, kind: service.Kind, read: type[BaseModel], row: Any) -> dict[str, Any]:
    data = read.model_validate(row).model_dump(mode="json")
    if kind is service.STAFF:
        data |= await service.staff_links(session, staff_id=row.id)
    return data


def register(
    path: str, kind: service.Kind, create: type[BaseModel], update: type[BaseModel], read: type[BaseModel]
) -> None:
    label = kind.name

    @router.get(f"/{path}", response_model=list[read], summary=f"List {label} records")  # type: ignore[valid-type]
    async def list_(
        request: Request,
        actor: CurrentActor,
        session: Session,
        q: Annotated[str | None, Query(max_length=100)] = None,
        site_id: QueryId = None,
        department_id: QueryId = None,
        active: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> Response:
        actor.require(Permission.READ_DIRECTORY)
        cache = app_state(request).directory_cache
        where = service.ListFilter(q, site_id, department_id, active, limit, offset)
        key = (kind.name, where)
        body = cache.get(key)
        if body is None:
            generation = cache.generation
            rows = await service.list_records(session, kind=kind, fields=list(read.model_fields), where=where)
            body = orjson.dumps(rows)
            cache.put(key, body, generation=generation)
        return Response(body, media_type="application/json")

    async def create_(body: BaseModel, actor: CurrentActor, session: Session) -> Response:
        actor.require(Permission.WRITE_DIRECTORY)
        async with session.begin():
            row = await service.create(session, actor=actor, kind=kind, values=body.model_dump(mode="json"))
            return FastJSONResponse(await to_read(session, kind, read, row), status_code=201)

    create_.__annotations__["body"] = create  # FastAPI reads the body's schema from here
    router.post(f"/{path}", response_model=read, status_code=201, summary=f"Create a {label}")(create_)

    @router.get(f"/{path}/{{entity_id:int}}", response_model=read, summary=f"Read a {label}")
    async def get_(entity_id: PathId, actor: CurrentActor, session: Session) -> Response:
        actor.require(Permission.READ_DIRECTORY)
        row = await service.get(session, kind=kind, entity_id=entity_id)
        return FastJSONResponse(await to_read(session, kind, read, row))

    async def update_(entity_id: PathId, body: BaseModel, actor: CurrentActor, session: Session) -> Response:
        actor.require(Permission.WRITE_DIRECTORY)
        changes = body.model_dump(mode="json", exclude_unset=True, exclude={"version"})
        version = int(getattr(body, "version"))  # noqa: B009 - every update schema has it
        async with session.begin():
            row = await service.update(
                session, actor=actor, kind=kind, entity_id=entity_id, expected_version=version, changes=changes
            )
            return FastJSONResponse(await to_read(session, kind, read, row))

    update_.__annotations__["body"] = update
    router.patch(f"/{path}/{{entity_id:int}}", response_model=read, summary=f"Change a {label}")(update_)

    @router.delete(f"/{path}/{{entity_id:int}}", status_code=204, summary=f"Delete a {label} nothing refers to")
    async def delete_(entity_id: PathId, actor: CurrentActor, session: Session) -> Response:
        actor.require(Permission.WRITE_DIRECTORY)
        async with session.begin():
            await service.remove(session, actor=actor, kind=kind, entity_id=entity_id)
        return Response(status_code=204)

    @router.post(f"/{path}/import", response_model=imports.ImportReport, summary=f"Import {label} records from CSV")
    async def import_(
        actor: CurrentActor,
        session: Session,
        file: Annotated[UploadFile, File(description="UTF-8 CSV with a header row")],
        dry_run: bool = True,
    ) -> imports.ImportReport:
        """Creates or updates by `code`. Writes nothing unless every row is valid; `dry_run` (the
        default) only reports what would happen. The request size limit applies to the file."""
        actor.require(Permission.WRITE_DIRECTORY)
        raw = await file.read()
        async with session.begin():
            return await imports.run_import(session, actor=actor, kind=kind, raw=raw, dry_run=dry_run)

    @router.get(f"/{path}/export.csv", summary=f"Export {label} records as CSV")
    async def export_(actor: CurrentActor, session: Session) -> Response:
        actor.require(Permission.READ_DIRECTORY)
        body = await imports.export_csv(session, kind=kind)
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{path}.csv"'},
        )

    for endpoint in (list_, create_, get_, update_, delete_, import_, export_):
        endpoint.__name__ = f"{endpoint.__name__}{path}"


register("sites", service.SITES, SiteCreate, SiteUpdate, SiteRead)
register("departments", service.DEPARTMENTS, DepartmentCreate, DepartmentUpdate, DepartmentRead)
register("teams", service.TEAMS, TeamCreate, TeamUpdate, TeamRead)
register("skills", service.SKILLS, SkillCreate, SkillUpdate, SkillRead)
register("staff", service.STAFF, StaffCreate, StaffUpdate, StaffRead)
