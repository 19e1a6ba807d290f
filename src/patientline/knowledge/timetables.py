"""Doctors and their clinic timetables: the regular weekly sessions, one-off stops (停诊) and
substitutions (替诊), and the questions agents and the bot ask of them ("is Dr X in on Tuesday
afternoon?").

Writes follow the directory's rules: references are checked, codes are unique (409), stale versions are
refused (409), every change writes an audit row and records a `TimetableChanged` event. Routes check
`EDIT_TIMETABLES`; this module checks the actor's department scope, which depends on the doctor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from patientline.core import audit, clock, events
from patientline.core.auth.actor import Actor
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, require_version
from patientline.core.i18n import N_, gettext
from patientline.directory.models import Department, Site
from patientline.knowledge.models import ClinicChange, ClinicSession, Doctor, HalfDay
from patientline.knowledge.timetable_events import TIMETABLE_READERS, TimetableChanged

WEEKDAYS = range(1, 8)  # 1 = Monday, as date.isoweekday()
HALF_DAYS: tuple[str, ...] = tuple(h.value for h in HalfDay)
DOCTOR_FIELDS = ("code", "name", "title", "site_id", "department_id", "speciality", "introduction", "is_active")
SESSION_FIELDS = ("weekday", "half_day", "kind", "room", "note")

WEEKDAY_LABELS = {
    1: N_("Monday"),
    2: N_("Tuesday"),
    3: N_("Wednesday"),
    4: N_("Thursday"),
    5: N_("Friday"),
    6: N_("Saturday"),
    7: N_("Sunday"),
}
HALF_DAY_LABELS = {
    HalfDay.MORNING.value: N_("Morning"),
    HalfDay.AFTERNOON.value: N_("Afternoon"),
    HalfDay.NIGHT.value: N_("Evening"),
}


class ChangeKind(StrEnum):
    STOP = "stop"  # 停诊
    SUBSTITUTE = "substitute"  # 替诊


class Status(StrEnum):
    IN = "in"
    STOPPED = "stopped"
    SUBSTITUTED = "substituted"
    NOT_SCHEDULED = "not_scheduled"


STATUS_LABELS = {
    Status.IN.value: N_("In clinic"),
    Status.STOPPED.value: N_("Clinic cancelled"),
    Status.SUBSTITUTED.value: N_("Substituted"),
    Status.NOT_SCHEDULED.value: N_("No clinic"),
}


# ---- doctors ---------------------------------------------------------------------------------


def snapshot(doctor: Doctor) -> dict[str, Any]:
    return {key: getattr(doctor, key) for key in ("id", *DOCTOR_FIELDS, "version")}


async def get_doctor(session: AsyncSession, *, doctor_id: int) -> Doctor:
    doctor = await session.get(Doctor, doctor_id)
    if doctor is None:
        raise NotFound("No such doctor.", details={"id": doctor_id})
    return doctor


def check_scope(actor: Actor, *, site_id: int, department_id: int) -> None:
    """Department editors change only their own departments' doctors; unscoped users change all."""
    if not actor.sees(site_id=site_id, department_id=department_id):
        raise PermissionDenied(
            "You can change the timetables of your own departments only.",
            details={"department_id": department_id},
        )


def can_edit(actor: Actor, doctor: Doctor, permission: str) -> bool:
    return actor.can(permission) and actor.sees(site_id=doctor.site_id, department_id=doctor.department_id)


async def _check_placement(session: AsyncSession, *, site_id: int, department_id: int) -> None:
    site = await session.get(Site, site_id)
    department = await session.get(Department, department_id)
    if site is None or department is None:
        missing = {"site_id": site_id} if site is None else {}
        missing |= {"department_id": department_id} if department is None else {}
        raise InvalidInput(
            "Some referenced records do not exist.", details={"missing": missing}, error_id="unknown_reference"
        )
    if department.site_id != site_id:
        raise InvalidInput(
            "The department {department} is not at this site.",
            params={"department": department.name},
            details=[
                {
                    "field": "department_id",
                    "problem": "other_site",
                    "message": gettext("Choose a department of the site."),
                }
            ],
            error_id="department_not_at_site",
        )


async def _check_code_free(session: AsyncSession, *, code: str, own_id: int | None) -> None:
    existing = await session.scalar(select(Doctor).where(func.lower(Doctor.code) == code.lower()))
    if existing is not None and existing.id != own_id:
        raise Conflict(
            "The code {code} is already used by another doctor.",
            params={"code": code},
            details={"code": code, "existing_id": existing.id},
            error_id="duplicate_code",
        )


def _publish(session: AsyncSession, doctor: Doctor, change: str) -> None:
    events.record(
        session,
        TimetableChanged(
            doctor_id=doctor.id,
            department_id=doctor.department_id,
            name=doctor.name,
            change=change,
            audience=TIMETABLE_READERS,
        ),
    )


async def create_doctor(session: AsyncSession, *, actor: Actor, values: dict[str, Any]) -> Doctor:
    check_scope(actor, site_id=values["site_id"], department_id=values["department_id"])
    await _check_placement(session, site_id=values["site_id"], department_id=values["department_id"])
    await _check_code_free(session, code=values["code"], own_id=None)
    doctor = Doctor(**{k: v for k, v in values.items() if k in DOCTOR_FIELDS}, version=1)
    session.add(doctor)
    await flush_or_conflict(session)
    audit.record(
        session,
        actor=actor,
        action="kb.doctor.create",
        target_type="doctor",
        target_id=doctor.id,
        after=snapshot(doctor),
    )
    _publish(session, doctor, "created")
    return doctor


async def update_doctor(
    session: AsyncSession, *, actor: Actor, doctor_id: int, expected_version: int, changes: dict[str, Any]
) -> Doctor:
    doctor = await get_doctor(session, doctor_id=doctor_id)
    check_scope(actor, site_id=doctor.site_id, department_id=doctor.department_id)
    require_version(expected=expected_version, current=doctor.version)
    if empty := sorted(k for k, v in changes.items() if v is None):
        raise InvalidInput(
            "The field {field} cannot be empty.", params={"field": empty[0]}, details={k: ["required"] for k in empty}
        )
    site_id = changes.get("site_id", doctor.site_id)
    department_id = changes.get("department_id", doctor.department_id)
    if (site_id, department_id) != (doctor.site_id, doctor.department_id):
        check_scope(actor, site_id=site_id, department_id=department_id)  # moving a doctor needs both ends
        await _check_placement(session, site_id=site_id, department_id=department_id)
    if "code" in changes:
        await _check_code_free(session, code=changes["code"], own_id=doctor.id)
    before = snapshot(doctor)
    for key, value in changes.items():
        if key in DOCTOR_FIELDS:
            setattr(doctor, key, value)
    await flush_or_conflict(session)
    old, new = audit.changed_fields(before, snapshot(doctor))
    if not new:
        return doctor  # saved unchanged: no new version, no audit row, no event
    audit.record(
        session,
        actor=actor,
        action="kb.doctor.update",
        target_type="doctor",
        target_id=doctor.id,
        before=old,
        after=new,
    )
    _publish(session, doctor, "deactivated" if new.get("is_active") is False else "updated")
    return doctor


async def deactivate_doctor(
    session: AsyncSession, *, actor: Actor, doctor_id: int, expected_version: int | None = None
) -> Doctor:
    """A doctor who left keeps their history; their sessions stay for a return but no longer show."""
    doctor = await get_doctor(session, doctor_id=doctor_id)
    version = doctor.version if expected_version is None else expected_version
    return await update_doctor(
        session, actor=actor, doctor_id=doctor_id, expected_version=version, changes={"is_active": False}
    )


# ---- weekly sessions -------------------------------------------------------------------------


async def list_sessions(session: AsyncSession, *, doctor_ids: Sequence[int]) -> list[ClinicSession]:
    if not doctor_ids:
        return []
    query = (
        select(ClinicSession)
        .where(ClinicSession.doctor_id.in_(doctor_ids))
        .order_by(ClinicSession.doctor_id, ClinicSession.weekday, ClinicSession.half_day)
    )
    rows = list(await session.scalars(query))
    return sorted(rows, key=lambda s: (s.doctor_id, s.weekday, HALF_DAYS.index(s.half_day)))


def _slot_problem(index: int, message: str) -> dict[str, Any]:
    return {"field": f"sessions.{index}", "problem": "invalid_session", "message": message}


def clean_sessions(sessions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks a weekly set (weekday 1-7, a known half-day, each slot once) and orders it."""
    problems: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    cleaned = []
    for index, raw in enumerate(sessions):
        slot = {"kind": "普通门诊", "room": "", "note": ""} | {k: raw[k] for k in SESSION_FIELDS if k in raw}
        if slot.get("weekday") not in WEEKDAYS:
            problems.append(_slot_problem(index, gettext("The weekday must be 1 (Monday) to 7 (Sunday).")))
        elif slot.get("half_day") not in HALF_DAYS:
            problems.append(_slot_problem(index, gettext("The half-day must be am, pm or night.")))
        elif (slot["weekday"], slot["half_day"]) in seen:
            problems.append(_slot_problem(index, gettext("This weekday and half-day appear more than once.")))
        else:
            seen.add((slot["weekday"], slot["half_day"]))
            cleaned.append(slot)
    if problems:
        raise InvalidInput("Some clinic sessions are not valid.", details=problems, error_id="invalid_sessions")
    return sorted(cleaned, key=lambda s: (s["weekday"], HALF_DAYS.index(s["half_day"])))


def _session_list(rows: Iterable[ClinicSession]) -> list[dict[str, Any]]:
    return [{k: getattr(row, k) for k in SESSION_FIELDS} for row in rows]


async def set_sessions(
    session: AsyncSession, *, actor: Actor, doctor_id: int, expected_version: int, sessions: list[dict[str, Any]]
) -> list[ClinicSession]:
    """Replaces the doctor's weekly set in one go; the doctor's version counts the change."""
    doctor = await get_doctor(session, doctor_id=doctor_id)
    check_scope(actor, site_id=doctor.site_id, department_id=doctor.department_id)
    require_version(expected=expected_version, current=doctor.version)
    wanted = clean_sessions(sessions)
    current = await list_sessions(session, doctor_ids=[doctor_id])
    before = _session_list(current)
    if before == wanted:
        return current
    # Statements, not the unit of work: it would insert before it deletes and trip the
    # one-session-per-slot constraint. The old rows leave the session so a reused id cannot
    # bring them back.
    for row in current:
        session.expunge(row)
    await session.execute(
        delete(ClinicSession).where(ClinicSession.doctor_id == doctor_id).execution_options(synchronize_session=False)
    )
    if wanted:
        now = clock.now()
        rows = [slot | {"doctor_id": doctor_id, "version": 1, "created_at": now, "updated_at": now} for slot in wanted]
        await session.execute(insert(ClinicSession), rows)
    # the sessions are part of the doctor's record: an UPDATE of the doctor bumps its version, even
    # when the clock has not moved since the last change
    doctor.updated_at = clock.now()
    flag_modified(doctor, "updated_at")
    await flush_or_conflict(session)
    audit.record(
        session,
        actor=actor,
        action="kb.doctor.sessions",
        target_type="doctor",
        target_id=doctor_id,
        before={"sessions": before},
        after={"sessions": wanted},
    )
    _publish(session, doctor, "sessions")
    return await list_sessions(session, doctor_ids=[doctor_id])


# ---- stops and substitutions -----------------------------------------------------------------


async def get_change(session: AsyncSession, *, doctor_id: int, change_id: int) -> ClinicChange:
    change = await session.get(ClinicChange, change_id)
    if change is None or change.doctor_id != doctor_id:
        raise NotFound("No such clinic change.", details={"id": change_id})
    return change


async def list_changes(
    session: AsyncSession, *, doctor_ids: Sequence[int], first: date, last: date | None = None
) -> list[ClinicChange]:
    if not doctor_ids:
        return []
    query = select(ClinicChange).where(ClinicChange.doctor_id.in_(doctor_ids), ClinicChange.day >= first)
    if last is not None:
        query = query.where(ClinicChange.day <= last)
    return list(await session.scalars(query.order_by(ClinicChange.day, ClinicChange.id)))


def _change_problem(field_name: str, message: str) -> list[dict[str, Any]]:
    return [{"field": field_name, "problem": "invalid_change", "message": message}]


def _refuse_past(day: date, today: date) -> None:
    if day < today:
        hint = gettext("Choose today or a later date.")
        raise InvalidInput(
            "Stops and substitutions cannot be set on a past date.",
            details=_change_problem("day", hint),
            error_id="date_in_past",
        )


async def _check_scheduled(session: AsyncSession, *, doctor: Doctor, day: date, half_day: str | None) -> None:
    slots = {s.half_day for s in await list_sessions(session, doctor_ids=[doctor.id]) if s.weekday == day.isoweekday()}
    if (half_day is None and not slots) or (half_day is not None and half_day not in slots):
        weekday = gettext(WEEKDAY_LABELS[day.isoweekday()])
        when = weekday if half_day is None else f"{weekday} {gettext(HALF_DAY_LABELS[half_day])}"
        hint = gettext("Choose a date on which the doctor holds a clinic.")
        raise InvalidInput(
            "{doctor} has no clinic on {day} ({when}).",
            params={"doctor": doctor.name, "day": day.isoformat(), "when": when},
            details=_change_problem("day", hint),
            error_id="not_scheduled",
        )


async def _check_substitute(session: AsyncSession, *, doctor: Doctor, substitute_id: int | None) -> None:
    substitute = await session.get(Doctor, substitute_id) if substitute_id else None
    if (
        substitute is None
        or substitute.id == doctor.id
        or not substitute.is_active
        or substitute.department_id != doctor.department_id
    ):
        hint = gettext("Choose another doctor of the department.")
        raise InvalidInput(
            "A substitute must be another active doctor of the same department.",
            details=_change_problem("substitute_id", hint),
            error_id="invalid_substitute",
        )


async def _check_no_overlap(session: AsyncSession, *, doctor_id: int, day: date, half_day: str | None) -> None:
    for existing in await list_changes(session, doctor_ids=[doctor_id], first=day, last=day):
        if half_day is None or existing.half_day is None or existing.half_day == half_day:
            raise Conflict(
                "This clinic already has a stop or substitution on that date; remove it first.",
                details={"existing_id": existing.id},
                error_id="change_exists",
            )


def change_snapshot(change: ClinicChange) -> dict[str, Any]:
    keys = ("id", "doctor_id", "day", "half_day", "kind", "substitute_id", "reason")
    return {k: (v.isoformat() if isinstance(v := getattr(change, k), date) else v) for k in keys}


async def add_change(
    session: AsyncSession, *, actor: Actor, doctor_id: int, values: dict[str, Any], today: date
) -> ClinicChange:
    """A stop or substitution on one date (`half_day` None: the whole day). `today` is the hospital's date."""
    doctor = await get_doctor(session, doctor_id=doctor_id)
    check_scope(actor, site_id=doctor.site_id, department_id=doctor.department_id)
    day: date = values["day"]
    half_day = None if values.get("half_day") is None else str(values["half_day"])
    kind = str(values["kind"])
    _refuse_past(day, today)
    await _check_scheduled(session, doctor=doctor, day=day, half_day=half_day)
    if kind == ChangeKind.SUBSTITUTE:
        await _check_substitute(session, doctor=doctor, substitute_id=values.get("substitute_id"))
    elif values.get("substitute_id") is not None:
        hint = gettext("Leave this empty for a stop.")
        raise InvalidInput(
            "A stop has no substitute; choose a substitution instead.",
            details=_change_problem("substitute_id", hint),
            error_id="invalid_substitute",
        )
    await _check_no_overlap(session, doctor_id=doctor_id, day=day, half_day=half_day)
    change = ClinicChange(
        doctor_id=doctor_id,
        day=day,
        half_day=half_day,
        kind=kind,
        substitute_id=values.get("substitute_id") if kind == ChangeKind.SUBSTITUTE else None,
        reason=values.get("reason", ""),
        created_by_id=actor.user_id,
    )
    session.add(change)
    await flush_or_conflict(session)
    audit.record(
        session,
        actor=actor,
        action=f"kb.doctor.{change.kind}",
        target_type="doctor",
        target_id=doctor_id,
        after=change_snapshot(change),
    )
    _publish(session, doctor, "change_added")
    return change


async def remove_change(session: AsyncSession, *, actor: Actor, doctor_id: int, change_id: int, today: date) -> None:
    """Withdraws a stop or substitution that has not happened yet; past ones are history."""
    doctor = await get_doctor(session, doctor_id=doctor_id)
    check_scope(actor, site_id=doctor.site_id, department_id=doctor.department_id)
    change = await get_change(session, doctor_id=doctor_id, change_id=change_id)
    _refuse_past(change.day, today)
    before = change_snapshot(change)
    await session.delete(change)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"kb.doctor.{before['kind']}.remove",
        target_type="doctor",
        target_id=doctor_id,
        before=before,
    )
    _publish(session, doctor, "change_removed")


@dataclass(frozen=True)
class ChangeView:
    """A stop or substitution with the substitute's name, for lists."""

    id: int
    doctor_id: int
    day: date
    half_day: str | None
    kind: str
    substitute_id: int | None
    substitute_name: str
    reason: str
    created_by_id: int | None


async def upcoming_changes(session: AsyncSession, *, doctor_id: int, today: date) -> list[ChangeView]:
    changes = await list_changes(session, doctor_ids=[doctor_id], first=today)
    names = {i: d.name for i, d in (await doctors_by_id(session, (c.substitute_id for c in changes))).items()}
    return [
        ChangeView(
            id=c.id,
            doctor_id=c.doctor_id,
            day=c.day,
            half_day=c.half_day,
            kind=c.kind,
            substitute_id=c.substitute_id,
            substitute_name=names.get(c.substitute_id, "") if c.substitute_id else "",
            reason=c.reason,
            created_by_id=c.created_by_id,
        )
        for c in changes
    ]


# ---- what the timetable says on a date -------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    day: date
    half_day: str
    status: str
    kind: str = ""
    room: str = ""
    note: str = ""
    reason: str = ""
    change_id: int | None = None
    substitute_id: int | None = None
    substitute_name: str = ""
    substitute_title: str = ""

    @property
    def weekday(self) -> int:
        return self.day.isoweekday()


def resolve(
    day: date,
    half_day: str,
    clinic: ClinicSession | None,
    changes: Iterable[ClinicChange],
    doctors: dict[int, Doctor],
) -> Availability:
    """One half-day: the regular session, overridden by a stop or substitution for it or the whole day."""
    if clinic is None:
        return Availability(day=day, half_day=half_day, status=Status.NOT_SCHEDULED)
    regular = Availability(
        day=day, half_day=half_day, status=Status.IN, kind=clinic.kind, room=clinic.room, note=clinic.note
    )
    change = next((c for c in changes if c.day == day and c.half_day in (None, half_day)), None)
    if change is None:
        return regular
    changed = replace(regular, status=Status.STOPPED, reason=change.reason, change_id=change.id)
    substitute = doctors.get(change.substitute_id) if change.substitute_id else None
    if change.kind != ChangeKind.SUBSTITUTE or substitute is None:
        return changed  # a substitute who was deleted since leaves a plain stop
    return replace(
        changed,
        status=Status.SUBSTITUTED,
        substitute_id=substitute.id,
        substitute_name=substitute.name,
        substitute_title=substitute.title,
    )


async def doctors_by_id(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, Doctor]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {d.id: d for d in await session.scalars(select(Doctor).where(Doctor.id.in_(wanted)))}


async def availability(
    session: AsyncSession, *, doctor_id: int, day: date, half_day: str | None = None
) -> list[Availability]:
    """The doctor's status for one half-day, or for each of the day's three; a doctor who left has no clinic."""
    doctor = await get_doctor(session, doctor_id=doctor_id)
    asked = [half_day] if half_day else list(HALF_DAYS)
    sessions = {
        s.half_day: s for s in await list_sessions(session, doctor_ids=[doctor_id]) if s.weekday == day.isoweekday()
    }
    if not doctor.is_active:
        sessions = {}
    changes = await list_changes(session, doctor_ids=[doctor_id], first=day, last=day)
    substitutes = await doctors_by_id(session, (c.substitute_id for c in changes))
    return [resolve(day, h, sessions.get(h), changes, substitutes) for h in asked]


@dataclass
class WeekDoctor:
    id: int
    code: str
    name: str
    title: str
    department_id: int
    slots: list[Availability] = field(default_factory=list)

    def on(self, day: date) -> list[Availability]:
        return [s for s in self.slots if s.day == day]


@dataclass
class WeekDepartment:
    id: int
    name: str
    site_id: int
    site_name: str
    doctors: list[WeekDoctor] = field(default_factory=list)


@dataclass
class Week:
    start: date
    days: list[date]
    departments: list[WeekDepartment]

    @property
    def end(self) -> date:
        return self.days[-1]


def monday_of(day: date) -> date:
    return day - timedelta(days=day.isoweekday() - 1)


async def week(
    session: AsyncSession,
    *,
    start: date,
    department_id: int | None = None,
    site_id: int | None = None,
    doctor_id: int | None = None,
    q: str | None = None,
) -> Week:
    """Seven days from `start` for the active doctors that match, by department, stops and substitutions
    applied. Doctors without a session in those days are left out."""
    days = [start + timedelta(days=n) for n in range(7)]
    doctors = await find_doctors(session, q=q, department_id=department_id, site_id=site_id, limit=None)
    if doctor_id is not None:
        doctors = [d for d in doctors if d.id == doctor_id]
    ids = [d.id for d in doctors]
    sessions: dict[int, dict[tuple[int, str], ClinicSession]] = defaultdict(dict)
    for row in await list_sessions(session, doctor_ids=ids):
        sessions[row.doctor_id][(row.weekday, row.half_day)] = row
    changes: dict[int, list[ClinicChange]] = defaultdict(list)
    for change in await list_changes(session, doctor_ids=ids, first=days[0], last=days[-1]):
        changes[change.doctor_id].append(change)
    substitutes = await doctors_by_id(session, (c.substitute_id for cs in changes.values() for c in cs))
    departments = await _departments(session, {d.department_id for d in doctors if sessions[d.id]})
    for doctor in sorted(doctors, key=lambda d: (pinyin_keys(d.name)[0], d.code)):
        regular = sessions[doctor.id]
        slots = [
            resolve(day, half, regular[(day.isoweekday(), half)], changes[doctor.id], substitutes)
            for day in days
            for half in HALF_DAYS
            if (day.isoweekday(), half) in regular
        ]
        if slots:
            line = WeekDoctor(doctor.id, doctor.code, doctor.name, doctor.title, doctor.department_id, slots)
            departments[doctor.department_id].doctors.append(line)
    ordered = sorted(departments.values(), key=lambda d: (d.site_id, d.name))
    return Week(start=start, days=days, departments=[d for d in ordered if d.doctors])


async def _departments(session: AsyncSession, ids: set[int]) -> dict[int, WeekDepartment]:
    if not ids:
        return {}
    query = (
        select(Department.id, Department.name, Department.site_id, Site.name)
        .join(Site, Site.id == Department.site_id)
        .where(Department.id.in_(ids))
    )
    return {
        dep_id: WeekDepartment(dep_id, name, site_id, site_name)
        for dep_id, name, site_id, site_name in await session.execute(query)
    }


# ---- finding doctors -------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def pinyin_keys(name: str) -> tuple[str, str]:
    """张伟 -> ("zhangwei", "zw"): what callers type when they only know how the name sounds."""
    from pypinyin import lazy_pinyin  # its tables are large: loaded on the first name search

    syllables = [s.lower() for s in lazy_pinyin(name) if s.strip()]
    return "".join(syllables).replace(" ", ""), "".join(s[0] for s in syllables)


def _match_rank(doctor: Doctor, text: str) -> int | None:
    """0 the name itself, 1 the name's start, 2 part of the name or its pinyin, 3 title, speciality or
    code; None: no match."""
    name = doctor.name.lower()
    if text == name:
        return 0
    if name.startswith(text):
        return 1
    compact = text.replace(" ", "")
    full, initials = pinyin_keys(doctor.name)
    sounds_like = compact.isascii() and compact.isalpha() and (compact in full or initials.startswith(compact))
    if text in name or sounds_like:
        return 2
    others = (doctor.title, doctor.speciality, doctor.code)
    return 3 if any(text in value.lower() for value in others) else None


async def find_doctors(
    session: AsyncSession,
    *,
    q: str | None = None,
    department_id: int | None = None,
    site_id: int | None = None,
    active: bool | None = True,
    limit: int | None = 200,
) -> list[Doctor]:
    """By name, pinyin ("zhang", "zhangwei") or initials ("zw"), title, speciality or code; best
    matches first. Matching happens here rather than in SQL because pinyin is not in the database."""
    query = select(Doctor)
    if department_id is not None:
        query = query.where(Doctor.department_id == department_id)
    if site_id is not None:
        query = query.where(Doctor.site_id == site_id)
    if active is not None:
        query = query.where(Doctor.is_active.is_(active))
    doctors = list(await session.scalars(query))
    text = (q or "").strip().lower()
    if text:
        ranked = [(rank, d) for d in doctors if (rank := _match_rank(d, text)) is not None]
        doctors = [d for _rank, d in sorted(ranked, key=lambda pair: (pair[0], pinyin_keys(pair[1].name)[0]))]
    else:
        doctors.sort(key=lambda d: (pinyin_keys(d.name)[0], d.code))
    return doctors if limit is None else doctors[:limit]


# ---- the bot's answer ------------------------------------------------------------------------


def day_label(day: date) -> str:
    return gettext("{date} ({weekday})").format(date=day.isoformat(), weekday=gettext(WEEKDAY_LABELS[day.isoweekday()]))


def _clinic_text(slot: Availability, department_name: str) -> str:
    clinic = slot.kind if slot.kind.startswith(department_name) else f"{department_name}{slot.kind}"
    return gettext("{clinic}, {room}").format(clinic=clinic, room=slot.room) if slot.room else clinic


def _slot_text(slot: Availability, when: str, department_name: str) -> str:
    reason = gettext(" ({reason})").format(reason=slot.reason) if slot.reason else ""
    if slot.status == Status.IN:
        return gettext("{when} in clinic: {clinic}").format(when=when, clinic=_clinic_text(slot, department_name))
    if slot.status == Status.SUBSTITUTED:
        substitute = f"{slot.substitute_name} {slot.substitute_title}".strip()
        return gettext("{when} clinic cancelled{reason}, substitute: {substitute}, {clinic}").format(
            when=when, reason=reason, substitute=substitute, clinic=_clinic_text(slot, department_name)
        )
    if slot.status == Status.STOPPED:
        return gettext("{when} clinic cancelled{reason}").format(when=when, reason=reason)
    return gettext("{when} no clinic").format(when=when)


async def _doctor_for_answer(session: AsyncSession, doctor_name_or_id: str | int) -> Doctor | list[Doctor]:
    """The one doctor meant, or the candidates (none, or several of the same name)."""
    if isinstance(doctor_name_or_id, int) or doctor_name_or_id.strip().isdigit():
        doctor = await session.get(Doctor, int(doctor_name_or_id))
        return doctor if doctor is not None else []
    name = doctor_name_or_id.strip()
    same_name = list(await session.scalars(select(Doctor).where(Doctor.name == name, Doctor.is_active.is_(True))))
    if len(same_name) == 1:
        return same_name[0]
    if same_name:
        return same_name
    found = await find_doctors(session, q=name, limit=5)
    return found[0] if len(found) == 1 else found


async def answer_is_in(
    session: AsyncSession, *, doctor_name_or_id: str | int, day: date, half_day: str | None = None
) -> str:
    """A short sentence in the current language, e.g. "张伟 主任医师 2026-11-24（周二）下午 出诊：
    消化内科专家门诊，门诊楼 3 层 C 区 12 诊室"."""
    found = await _doctor_for_answer(session, doctor_name_or_id)
    if isinstance(found, list):
        if not found:
            return gettext("No doctor called {name} was found.").format(name=doctor_name_or_id)
        departments = await _departments(session, {d.department_id for d in found})
        choices = _join(N_("{first}, {then}"), [f"{d.name}（{departments[d.department_id].name}）" for d in found])
        return gettext("Several doctors match {name}: {choices}. Which one?").format(
            name=doctor_name_or_id, choices=choices
        )
    doctor = found
    department = await session.get(Department, doctor.department_id)
    department_name = department.name if department else ""
    who = f"{doctor.name} {doctor.title}".strip()
    slots = await availability(session, doctor_id=doctor.id, day=day, half_day=half_day)
    if half_day is not None:
        when = gettext("{day} {half_day}").format(day=day_label(day), half_day=gettext(HALF_DAY_LABELS[half_day]))
        return f"{who} {_slot_text(slots[0], when, department_name)}"
    scheduled = [s for s in slots if s.status != Status.NOT_SCHEDULED]
    if not scheduled:
        return gettext("{doctor} has no clinic on {day}.").format(doctor=who, day=day_label(day))
    parts = [_slot_text(s, gettext(HALF_DAY_LABELS[s.half_day]), department_name) for s in scheduled]
    return gettext("{doctor} {day}: {clinics}").format(
        doctor=who, day=day_label(day), clinics=_join(N_("{first}; {then}"), parts)
    )


def _join(pattern: str, parts: list[str]) -> str:
    """Joins with the language's punctuation, e.g. "{first}; {then}" becomes "{first}；{then}" in Chinese."""
    joined = parts[0]
    for part in parts[1:]:
        joined = gettext(pattern).format(first=joined, then=part)
    return joined
