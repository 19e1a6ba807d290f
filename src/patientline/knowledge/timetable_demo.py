"""The demo hospital's doctors and clinic timetables, from demo_content/doctors.json, plus a few stops
and substitutions next week so the timetable shows them. Loading twice changes nothing: doctors whose
code exists are left as they are, and only doctors created in this run get demo changes."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import SYSTEM
from patientline.knowledge import timetables
from patientline.knowledge.models import Doctor
from patientline.knowledge.timetable_schemas import DoctorCreate, SessionIn

log = logging.getLogger(__name__)

DOCTORS_FILE = Path(__file__).resolve().parent / "demo_content" / "doctors.json"
STOP_REASONS = ("外出会诊", "参加学术会议", "休假")
SUBSTITUTE_REASON = "临时公务"


def read_doctors(path: Path) -> list[dict[str, Any]]:
    """The file's doctors; none when the file is not there (the demo works without them)."""
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return entries


def _doctor_values(entry: dict[str, Any], *, department_id: int, site_id: int) -> dict[str, Any]:
    fields = ("code", "name", "title", "speciality", "introduction")
    values = {k: entry[k] for k in fields if entry.get(k) is not None}
    return DoctorCreate.model_validate(values | {"site_id": site_id, "department_id": department_id}).model_dump()


def _session_values(entry: dict[str, Any]) -> list[dict[str, Any]]:
    sessions = []
    for raw in entry.get("sessions", []):
        values = {k: raw[k] for k in ("weekday", "half_day", "kind", "room") if raw.get(k) is not None}
        values["note"] = raw.get("fee_note") or raw.get("note") or ""
        sessions.append(SessionIn.model_validate(values).model_dump(mode="json"))
    return sessions


async def _create(
    session: AsyncSession, entry: dict[str, Any], *, departments: dict[str, int], sites: dict[str, int]
) -> Doctor | None:
    department_id, site_id = departments.get(entry.get("department", "")), sites.get(entry.get("site", ""))
    if department_id is None or site_id is None:
        log.warning("demo doctor %s: unknown department or site, left out", entry.get("code"))
        return None
    values = _doctor_values(entry, department_id=department_id, site_id=site_id)
    doctor = await timetables.create_doctor(session, actor=SYSTEM, values=values)
    await timetables.set_sessions(
        session, actor=SYSTEM, doctor_id=doctor.id, expected_version=doctor.version, sessions=_session_values(entry)
    )
    return doctor


async def _first_clinic_next_week(session: AsyncSession, doctor: Doctor, today: date) -> tuple[date, str] | None:
    sessions = await timetables.list_sessions(session, doctor_ids=[doctor.id])
    if not sessions:
        return None
    next_monday = timetables.monday_of(today) + timedelta(days=7)
    return next_monday + timedelta(days=sessions[0].weekday - 1), sessions[0].half_day


async def _demo_changes(session: AsyncSession, created: list[Doctor], today: date) -> None:
    """Three stops and two substitutions among the doctors just created, the same on every run."""
    stops, substitutions = 0, 0
    for doctor in sorted(created, key=lambda d: d.code):
        slot = await _first_clinic_next_week(session, doctor, today)
        if slot is None:
            continue
        day, half_day = slot
        colleague = next((d for d in created if d.department_id == doctor.department_id and d.id != doctor.id), None)
        if substitutions < 2 and colleague is not None and stops >= 1:
            values = {"day": day, "half_day": half_day, "kind": "substitute", "substitute_id": colleague.id}
            await timetables.add_change(
                session, actor=SYSTEM, doctor_id=doctor.id, values=values | {"reason": SUBSTITUTE_REASON}, today=today
            )
            substitutions += 1
        elif stops < len(STOP_REASONS):
            values = {"day": day, "half_day": half_day, "kind": "stop", "reason": STOP_REASONS[stops]}
            await timetables.add_change(session, actor=SYSTEM, doctor_id=doctor.id, values=values, today=today)
            stops += 1
        if stops >= len(STOP_REASONS) and substitutions >= 2:
            return


async def load_demo_timetables(
    session: AsyncSession,
    *,
    departments: dict[str, int],
    sites: dict[str, int],
    path: Path = DOCTORS_FILE,
    timezone: str = "Asia/Shanghai",
) -> None:
    """Caller owns the transaction. `departments` and `sites` map the file's codes to ids."""
    entries = read_doctors(path)
    existing = set(await session.scalars(select(Doctor.code)))
    created = []
    for entry in entries:
        if entry.get("code") in existing:
            continue
        doctor = await _create(session, entry, departments=departments, sites=sites)
        if doctor is not None:
            created.append(doctor)
            existing.add(doctor.code)
    if created:
        await _demo_changes(session, created, clock.today(timezone))
