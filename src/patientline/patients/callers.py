"""Finding a caller: the local index first, then — when it knows nobody by that phone or number — the
hospital's system, whose answers join the index (`index.upsert_from_his`). The search box and the
screen pop share this; the HIS's trouble never fails the search, it is reported beside the answer.

Names are never sent to the HIS (its search takes identifiers and phone numbers only)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import DomainError
from patientline.core.i18n import gettext
from patientline.patients import access, index
from patientline.patients.gateway import PROBLEMS, HisGateway, HisUnavailable
from patientline.patients.his import HisPatient
from patientline.patients.models import IdentifierKind, Patient

log = logging.getLogger(__name__)

# the card numbers a caller reads out without saying which card it is, most likely first
OTHER_KINDS = (IdentifierKind.MRN, IdentifierKind.VISIT_CARD, IdentifierKind.HEALTH_CARD, IdentifierKind.INSURANCE)


@dataclass(frozen=True)
class Found:
    by: str  # phone, id_card, identifier, name
    patients: list[Patient]
    his_searched: bool = False
    his_problem: str | None = None  # translated: why the hospital's system could not answer


async def search(session: AsyncSession, *, actor: Actor, gateway: HisGateway, text: str, purpose: str) -> Found:
    """The search box: `patients.access.search` (audited), then the HIS for a phone, ID card or card
    number nobody locally has."""
    found = await access.search(session, actor=actor, text=text, purpose=purpose)
    if found.patients or found.by == "name":
        return Found(found.by, found.patients)
    plain = re.sub(r"\s", "", text).upper()
    compact = plain.replace("-", "")
    queries: list[dict[str, str]] = []
    if found.by == "id_card":
        queries.append({"kind": IdentifierKind.ID_CARD, "value": index.normalise_identifier("id_card", compact)})
    else:
        phone = index.as_phone(compact) if found.by == "phone" else None
        if phone is not None:
            queries.append({"phone": phone})
        queries.extend({"kind": kind, "value": plain} for kind in OTHER_KINDS)
    return await _ask_his(session, actor=actor, gateway=gateway, by=found.by, queries=queries, purpose=purpose)


async def by_phone(session: AsyncSession, *, actor: Actor, gateway: HisGateway, phone: str, purpose: str) -> Found:
    """The screen pop: everyone with the caller's number (a family), audited without the number."""
    actor.require(Permission.READ_PATIENTS)
    patients = await index.find_by_phone(session, phone)
    audit.record(
        session, actor=actor, action=access.SEARCH, target_type="patient", reason=purpose,
        after={"by": "phone", "patient_ids": [p.id for p in patients]},
    )  # fmt: skip
    if patients:
        return Found("phone", patients)
    return await _ask_his(session, actor=actor, gateway=gateway, by="phone", queries=[{"phone": phone}],
                          purpose=purpose)  # fmt: skip


async def _ask_his(
    session: AsyncSession,
    *,
    actor: Actor,
    gateway: HisGateway,
    by: str,
    queries: Sequence[dict[str, str]],
    purpose: str,
) -> Found:
    if gateway.his is None or not queries:  # no HIS connected: nothing to ask, nothing to complain about
        return Found(by, [])
    records: list[HisPatient] = []
    for query in queries:
        try:
            records = await gateway.search(**query)
        except HisUnavailable as exc:
            reason = exc.details.get("reason") if isinstance(exc.details, dict) else None
            problem = PROBLEMS.get(str(reason), PROBLEMS["unavailable"])
            return Found(by, [], his_searched=True, his_problem=gettext(problem))
        if records:
            break
    patients: dict[int, Patient] = {}
    for record in records:
        try:
            async with session.begin_nested():  # one unreadable record must not spoil the others
                patient = await index.upsert_from_his(session, actor=actor, record=record)
        except DomainError as exc:
            log.warning("HIS patient not taken into the index", extra={"error_id": exc.error_id})
            continue
        patients[patient.id] = patient
    if records:
        audit.record(
            session, actor=actor, action=access.SEARCH, target_type="patient", reason=purpose,
            after={"by": by, "his": True, "patient_ids": list(patients)},
        )  # fmt: skip
    return Found(by, list(patients.values()), his_searched=True)
