"""The local patient index: identifiers and phone numbers checked at the edge, lookup of callers,
registration, updates from the HIS, and the merge of duplicates that never loses anyone.

Reads for display go through `patients.access`, which audits them; this module does the work.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from pypinyin import Style, lazy_pinyin
from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy import update as update_rows
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, ValidationError

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.config import get_settings
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.i18n import N_
from patientline.core.validation import normalise_phone
from patientline.patients.his import HisPatient
from patientline.patients.models import (
    IdentifierKind,
    Patient,
    PatientFlag,
    PatientIdentifier,
    PatientMerge,
    PatientPhone,
    PatientResult,
    ResultSubscription,
)

Owned = TypeVar("Owned", PatientIdentifier, PatientPhone, PatientFlag)
CANDIDATE_LIMIT = 20
OTHER_IDENTIFIER = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,63}$")
ID_CARD_SHAPE = re.compile(r"^\d{17}[\dX]$")
EARLIEST_BIRTH = date(1900, 1, 1)


# --- checks at the edge ------------------------------------------------------------------------------


def normalise_identifier(kind: str, value: str) -> str:
    """Upper-cased without spaces; an ID card number must pass the GB 11643 checks (date and checksum)."""
    if kind not in IdentifierKind.ALL:
        raise InvalidInput(N_("Unknown kind of identifier."), details={"kind": kind})
    compact = re.sub(r"[\s-]", "", value).upper() if kind == IdentifierKind.ID_CARD else value.strip().upper()
    if kind == IdentifierKind.ID_CARD:
        return _valid_id_card(compact)
    if not OTHER_IDENTIFIER.match(compact):
        raise InvalidInput(N_("Use letters, digits and hyphens only."), details={"kind": kind})
    return compact


def _valid_id_card(number: str) -> str:
    if not ID_CARD_SHAPE.match(number):
        raise InvalidInput(N_("An ID card number has 18 characters: 17 digits and a digit or X."))
    return _checked_id_card(number, _today())


@functools.lru_cache(maxsize=8192)  # an HL7 feed meets each number several times; failures are not kept
def _checked_id_card(number: str, today: date) -> str:
    try:
        ric.validate(number)
    except InvalidChecksum as exc:
        raise InvalidInput(N_("This ID card number fails its check digit: check the digits.")) from exc
    except ValidationError as exc:
        raise InvalidInput(N_("This ID card number holds an impossible birth date or region.")) from exc
    if ric.get_birth_date(number) > today:
        raise InvalidInput(N_("This ID card number holds an impossible birth date or region."))
    return number


def check_birth_date(value: date | None) -> date | None:
    if value is not None and not EARLIEST_BIRTH <= value <= _today():
        raise InvalidInput(
            N_("The birth date cannot be in the future or before 1900."), details={"field": "birth_date"}
        )
    return value


def _today() -> date:
    return clock.today(get_settings().timezone)


def name_pinyin(name: str) -> str:
    """'王小明' -> 'wangxiaoming wxm': full pinyin and initials, so either finds the person."""
    syllables = [s.lower() for s in lazy_pinyin(name, style=Style.NORMAL, errors="default") if s.strip()]
    full = "".join(syllables).replace(" ", "")
    initials = "".join(s[0] for s in syllables if s and s[0].isalnum())
    return f"{full} {initials}"[:200]


def facts_from_id_card(number: str) -> tuple[date, str]:
    """Birth date and sex written in an ID card number (the 17th digit is odd for men)."""
    return ric.get_birth_date(number), ("male" if int(number[16]) % 2 else "female")


# --- reading ----------------------------------------------------------------------------------------


async def get(session: AsyncSession, patient_id: int) -> Patient:
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(N_("There is no such patient."))
    return patient


async def resolve(session: AsyncSession, patient_id: int) -> Patient:
    """The patient, or the survivor it was merged into."""
    patient = await get(session, patient_id)
    seen = {patient.id}
    while patient.merged_into_id is not None and patient.merged_into_id not in seen:
        patient = await get(session, patient.merged_into_id)
        seen.add(patient.id)
    return patient


async def find_by_identifier(session: AsyncSession, kind: str, value: str) -> Patient | None:
    patient_id = await session.scalar(
        select(PatientIdentifier.patient_id).where(PatientIdentifier.kind == kind, PatientIdentifier.value == value)
    )
    return None if patient_id is None else await resolve(session, patient_id)


async def find_by_phone(session: AsyncSession, e164: str) -> list[Patient]:
    """Everyone with this number, a family sharing a mobile included; merged records answer as survivors."""
    rows = await session.scalars(
        select(Patient)
        .join(PatientPhone, PatientPhone.patient_id == Patient.id)
        .where(PatientPhone.phone == e164, Patient.merged_into_id.is_(None))
        .order_by(Patient.birth_date.is_(None), Patient.birth_date, Patient.id)
        .limit(CANDIDATE_LIMIT)
    )
    return list(rows)


async def find_by_any_identifier(session: AsyncSession, value: str) -> list[Patient]:
    """A number typed without saying which card it is: medical-record, visit, health or insurance number."""
    rows = await session.scalars(
        select(PatientIdentifier.patient_id)
        # naming every kind lets the (kind, value) unique index serve the lookup instead of a full scan
        .where(PatientIdentifier.kind.in_(IdentifierKind.ALL), PatientIdentifier.value == value)
        .limit(CANDIDATE_LIMIT)
    )
    found: dict[int, Patient] = {}
    for patient_id in rows:
        patient = await resolve(session, patient_id)
        found[patient.id] = patient
    return list(found.values())


async def find_by_name(session: AsyncSession, text: str) -> list[Patient]:
    """Chinese characters match the name's start; latin letters match full pinyin or initials."""
    query = select(Patient).where(Patient.merged_into_id.is_(None))
    if text.isascii():
        letters = re.sub(r"[^a-z]", "", text.lower())
        if not letters:
            return []
        query = query.where(or_(Patient.name_pinyin.startswith(letters), Patient.name_pinyin.contains(f" {letters}")))
    else:
        query = query.where(Patient.name.startswith(text.strip()))
    rows = await session.scalars(query.order_by(Patient.name, Patient.id).limit(CANDIDATE_LIMIT))
    return list(rows)


@dataclass(frozen=True)
class Lookup:
    by: str  # phone, id_card, identifier, name
    patients: list[Patient]


async def lookup(session: AsyncSession, text: str) -> Lookup:
    """One search box: an ID card number, a phone number, a card or record number, or a name in
    characters or pinyin — recognised by its shape."""
    text = text.strip()
    if not text:
        raise InvalidInput(N_("Type a phone number, an ID card or record number, or a name."))
    plain = re.sub(r"\s", "", text).upper()  # a card number keeps its hyphens
    compact = plain.replace("-", "")  # a phone or ID card number loses them
    if ID_CARD_SHAPE.match(compact):
        patient = await find_by_identifier(session, IdentifierKind.ID_CARD, normalise_identifier("id_card", compact))
        return Lookup("id_card", [patient] if patient else [])
    if re.fullmatch(r"\+?[\d()]{5,20}", compact):
        by_card = await find_by_any_identifier(session, plain)
        phone = as_phone(compact)
        by_phone = await find_by_phone(session, phone) if phone else []
        if by_phone or not by_card:
            return Lookup("phone", by_phone + [p for p in by_card if p not in by_phone])
        return Lookup("identifier", by_card)
    if OTHER_IDENTIFIER.match(plain) and any(c.isdigit() for c in plain):
        return Lookup("identifier", await find_by_any_identifier(session, plain))
    return Lookup("name", await find_by_name(session, text))


def as_phone(text: str) -> str | None:
    """The number in E.164, or None when it cannot be a phone number."""
    try:
        return normalise_phone(text)
    except ValueError:
        return None


async def identifiers_of(session: AsyncSession, patient_ids: Sequence[int]) -> dict[int, list[PatientIdentifier]]:
    rows = await session.scalars(
        select(PatientIdentifier)
        .where(PatientIdentifier.patient_id.in_(patient_ids))
        .order_by(PatientIdentifier.kind, PatientIdentifier.id)
    )
    return _by_patient(patient_ids, rows)


async def phones_of(session: AsyncSession, patient_ids: Sequence[int]) -> dict[int, list[PatientPhone]]:
    rows = await session.scalars(
        select(PatientPhone).where(PatientPhone.patient_id.in_(patient_ids)).order_by(PatientPhone.id)
    )
    return _by_patient(patient_ids, rows)


async def active_flags(session: AsyncSession, patient_ids: Sequence[int]) -> dict[int, list[PatientFlag]]:
    rows = await session.scalars(
        select(PatientFlag)
        .where(PatientFlag.patient_id.in_(patient_ids), PatientFlag.cleared_at.is_(None))
        .order_by(PatientFlag.id)
    )
    return _by_patient(patient_ids, rows)


def _by_patient(patient_ids: Sequence[int], rows: Iterable[Owned]) -> dict[int, list[Owned]]:
    """Rows grouped by their patient, every patient asked for present (with none: an empty list)."""
    found: dict[int, list[Owned]] = {pid: [] for pid in patient_ids}
    for row in rows:
        found[row.patient_id].append(row)
    return found


# --- verification -------------------------------------------------------------------------------


async def verify(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: int,
    birth_date: date | None = None,
    id_digits: str | None = None,
) -> tuple[str, bool]:
    """The caller proves who they are by their birth date or the last digits of their ID card number.
    Answers the method and whether it matched; both outcomes are audited, so the caller commits either way."""
    patient = await resolve(session, patient_id)
    if (birth_date is None) == (id_digits is None):
        raise InvalidInput(N_("Give the birth date or the last digits of the ID card number."))
    if birth_date is not None:
        method, matched = "birth_date", patient.birth_date is not None and patient.birth_date == birth_date
    else:
        digits = (id_digits or "").strip().upper()
        if not re.fullmatch(r"[\dX]{4,6}", digits):
            raise InvalidInput(N_("Give the last 4 to 6 characters of the ID card number."))
        card = await _identifier_value(session, patient.id, IdentifierKind.ID_CARD)
        method, matched = "id_digits", card is not None and card.endswith(digits)
    audit.record(
        session, actor=actor, action="patients.verified" if matched else "patients.verify_failed",
        target_type="patient", target_id=patient.id, after={"method": method},
    )  # fmt: skip
    return method, matched


class VerificationFailed(InvalidInput):
    error_id = "verification_failed"

    def __init__(self) -> None:
        super().__init__(N_("The answer does not match our records; the caller is not verified."))


async def _identifier_value(session: AsyncSession, patient_id: int, kind: str) -> str | None:
    value: str | None = await session.scalar(
        select(PatientIdentifier.value).where(
            PatientIdentifier.patient_id == patient_id, PatientIdentifier.kind == kind
        )
    )
    return value


# --- writing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A person as an agent registers or corrects them; everything checked already (schemas)."""

    name: str
    sex: str = "unknown"
    birth_date: date | None = None
    phones: Sequence[str] = ()
    identifiers: Mapping[str, str] = field(default_factory=dict)


async def register(session: AsyncSession, *, actor: Actor, person: Person, details: Mapping[str, Any]) -> Patient:
    """A caller the index does not know yet: a prospective patient until the HIS sends their record."""
    identifiers = _checked_identifiers(person.identifiers)
    birth_date, sex = _consistent(person.birth_date, person.sex, identifiers)
    await _refuse_taken(session, identifiers, patient_id=None)
    patient = Patient(
        name=person.name, name_pinyin=name_pinyin(person.name), sex=sex, birth_date=birth_date, prospective=True,
        version=1, **details,
    )  # fmt: skip
    session.add(patient)
    await flush_or_conflict(session)
    await _replace_identifiers(session, patient.id, identifiers)
    await _replace_phones(session, patient.id, person.phones)
    await flush_or_conflict(session)
    audit.record(
        session, actor=actor, action="patients.registered", target_type="patient", target_id=patient.id,
        after={"identifier_kinds": sorted(identifiers), "phones": len(person.phones)},
    )  # fmt: skip
    return patient


async def update(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    phones: Sequence[str] | None = None,
    identifiers: Mapping[str, str] | None = None,
) -> Patient:
    """Corrections and preferences; the audit names the fields that changed, never their values."""
    patient = await resolve(session, patient_id)
    require_version(expected=expected_version, current=patient.version)
    changed = [key for key, value in changes.items() if getattr(patient, key) != value]
    for key, value in changes.items():
        setattr(patient, key, value)
    if "name" in changes:
        patient.name_pinyin = name_pinyin(patient.name)
    checked = None if identifiers is None else _checked_identifiers(identifiers)
    card = await _identifier_value(session, patient.id, IdentifierKind.ID_CARD) if checked is None else None
    _consistent(patient.birth_date, patient.sex, checked if checked is not None else {IdentifierKind.ID_CARD: card})
    if checked is not None:
        await _refuse_taken(session, checked, patient_id=patient.id)
        await _replace_identifiers(session, patient.id, checked)
        changed.append("identifiers")
    if phones is not None:
        await _replace_phones(session, patient.id, phones)
        changed.append("phones")
    await flush_or_conflict(session)
    audit.record(
        session, actor=actor, action="patients.updated", target_type="patient", target_id=patient.id,
        after={"fields": changed},
    )  # fmt: skip
    return patient


def _checked_identifiers(identifiers: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for kind, value in identifiers.items():
        try:
            checked[kind] = normalise_identifier(kind, value)
        except InvalidInput as exc:
            exc.details = {"field": f"identifiers.{kind}"}
            raise
    return checked


def _consistent(birth_date: date | None, sex: str, identifiers: Mapping[str, str | None]) -> tuple[date | None, str]:
    """An ID card number fixes birth date and sex: fill them in, or refuse a contradiction."""
    check_birth_date(birth_date)
    card = identifiers.get(IdentifierKind.ID_CARD)
    if not card:
        return birth_date, sex
    card_birth, card_sex = facts_from_id_card(card)
    if birth_date is not None and birth_date != card_birth:
        raise InvalidInput(
            N_("The birth date differs from the one in the ID card number."), details={"field": "birth_date"}
        )
    if sex not in ("unknown", card_sex):
        raise InvalidInput(N_("The sex differs from the one in the ID card number."), details={"field": "sex"})
    return card_birth, card_sex


async def _refuse_taken(session: AsyncSession, identifiers: Mapping[str, str], *, patient_id: int | None) -> None:
    for kind, value in identifiers.items():
        holder = await find_by_identifier(session, kind, value)
        if holder is not None and holder.id != patient_id:
            raise Conflict(
                N_("Another patient already has this number; open that record or merge the two."),
                error_id="identifier_taken",
                details={"field": f"identifiers.{kind}", "patient_id": holder.id},
            )


async def _replace_identifiers(session: AsyncSession, patient_id: int, identifiers: Mapping[str, str]) -> None:
    await session.execute(delete(PatientIdentifier).where(PatientIdentifier.patient_id == patient_id))
    await session.flush()
    session.add_all(PatientIdentifier(patient_id=patient_id, kind=k, value=v) for k, v in identifiers.items())


async def _replace_phones(session: AsyncSession, patient_id: int, phones: Iterable[str]) -> None:
    await session.execute(delete(PatientPhone).where(PatientPhone.patient_id == patient_id))
    await session.flush()
    unique = list(dict.fromkeys(phones))
    session.add_all(PatientPhone(patient_id=patient_id, phone=p, label="mobile") for p in unique)


# --- from the HIS ----------------------------------------------------------------------------------------


async def upsert_from_his(session: AsyncSession, *, actor: Actor, record: HisPatient) -> Patient:
    return (await upsert_many_from_his(session, actor=actor, records=[record]))[0]


async def upsert_many_from_his(session: AsyncSession, *, actor: Actor, records: Sequence[HisPatient]) -> list[Patient]:
    """The HIS is the source of truth for who a patient is: each record finds its patient by the HIS's id, then
    by any of its identifiers (a prospective patient becomes a real one), else adds them; then refreshes them.
    A handful of statements for the lot; records that meet the same patient are applied one after another."""
    checked = [(_checked_identifiers(r.identifiers), check_birth_date(r.birth_date)) for r in records]
    found = await match_many(
        session, [(r.his_id, identifiers) for r, (identifiers, _) in zip(records, checked, strict=True)]
    )
    if len(records) > 1 and not _apart(records, found):
        return [(await upsert_many_from_his(session, actor=actor, records=[r]))[0] for r in records]
    patients: list[Patient] = []
    for record, (_, birth_date), patient in zip(records, checked, found, strict=True):
        if patient is None:
            patient = Patient(name=record.name, version=1)
            session.add(patient)
        _refresh(patient, record, birth_date)
        patients.append(patient)
    await flush_or_conflict(session)
    fresh = {patient.id for patient, earlier in zip(patients, found, strict=True) if earlier is None}
    await _take_identifiers(
        session, {p.id: identifiers for p, (identifiers, _) in zip(patients, checked, strict=True)}, fresh=fresh
    )
    await _add_phones(session, {p.id: r.phones for p, r in zip(patients, records, strict=True)}, fresh=fresh)
    await flush_or_conflict(session)
    for patient, earlier in zip(patients, found, strict=True):
        audit.record(
            session, actor=actor, action="patients.synced", target_type="patient", target_id=patient.id,
            after={"created": earlier is None},
        )  # fmt: skip
    return patients


def _refresh(patient: Patient, record: HisPatient, birth_date: date | None) -> None:
    patient.his_id = record.his_id
    patient.name = record.name
    patient.name_pinyin = name_pinyin(record.name)
    patient.sex = record.sex
    patient.birth_date = birth_date
    patient.prospective = False
    patient.his_synced_at = clock.now()


def _apart(records: Sequence[HisPatient], found: Sequence[Patient | None]) -> bool:
    """No two records share an id, an identifier or the patient they found."""
    keys = [("his", r.his_id) for r in records] + [item for r in records for item in r.identifiers.items()]
    matched = [p.id for p in found if p is not None]
    return len(set(keys)) == len(keys) and len(set(matched)) == len(matched)


MATCH_ORDER = tuple(dict.fromkeys((IdentifierKind.MRN, IdentifierKind.ID_CARD, *IdentifierKind.ALL)))


async def match_many(session: AsyncSession, wanted: Sequence[tuple[str, Mapping[str, str]]]) -> list[Patient | None]:
    """For each (HIS id, identifiers): the patient with that HIS id, else the one holding the first identifier
    found (medical-record number, then ID card, then the rest); merged records answer as survivors."""
    if not wanted:
        return []
    his_ids = [his_id for his_id, _ in wanted if his_id]
    by_his = {p.his_id: p for p in await session.scalars(select(Patient).where(Patient.his_id.in_(his_ids)))}
    pending = [identifiers for his_id, identifiers in wanted if his_id not in by_his]
    holders = await _holders(session, pending)
    owners = await _survivors(session, set(holders.values()))
    matched: list[Patient | None] = []
    for his_id, identifiers in wanted:
        held = [(kind, identifiers[kind]) for kind in MATCH_ORDER if (kind, identifiers.get(kind)) in holders]
        matched.append(by_his.get(his_id) or (owners[holders[held[0]]] if held else None))
    return matched


async def _holders(session: AsyncSession, pending: Sequence[Mapping[str, str]]) -> dict[tuple[str, str], int]:
    """(kind, value) -> the patient holding it, for the identifiers asked."""
    pairs = {item for identifiers in pending for item in identifiers.items()}
    if not pairs:
        return {}
    rows = await session.execute(
        select(PatientIdentifier.kind, PatientIdentifier.value, PatientIdentifier.patient_id).where(
            PatientIdentifier.kind.in_({kind for kind, _ in pairs}),
            PatientIdentifier.value.in_({value for _, value in pairs}),
        )
    )
    return {(kind, value): patient_id for kind, value, patient_id in rows.tuples() if (kind, value) in pairs}


async def _survivors(session: AsyncSession, patient_ids: set[int]) -> dict[int, Patient]:
    if not patient_ids:
        return {}
    loaded = {p.id: p for p in await session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))}
    return {pid: await resolve(session, pid) if p.merged_into_id is not None else p for pid, p in loaded.items()}


async def _take_identifiers(
    session: AsyncSession, wanted: Mapping[int, Mapping[str, str]], *, fresh: Set[int] = frozenset()
) -> None:
    """The HIS's identifiers win: one held by another record moves here (the HIS corrected a mix-up), and
    each patient keeps one identifier of each kind it is given. `fresh` patients were just added because no
    one held their identifiers: theirs go in as they are."""
    rows = [
        {"patient_id": pid, "kind": kind, "value": value}
        for pid, identifiers in wanted.items()
        for kind, value in identifiers.items()
    ]
    if known := [r for r in rows if r["patient_id"] not in fresh]:
        await _drop_replaced(session, known)
    if rows:
        await session.execute(insert(PatientIdentifier), rows)


async def _drop_replaced(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    taken = {(r["kind"], r["value"]) for r in rows}
    replaced = {(r["kind"], r["patient_id"]) for r in rows}
    # kind IN … AND value IN … OR patient_id IN …: both halves served by an index (row values are not)
    candidates = await session.execute(
        select(
            PatientIdentifier.id, PatientIdentifier.kind, PatientIdentifier.value, PatientIdentifier.patient_id
        ).where(
            or_(
                PatientIdentifier.kind.in_({kind for kind, _ in taken})
                & PatientIdentifier.value.in_({value for _, value in taken}),
                PatientIdentifier.patient_id.in_({r["patient_id"] for r in rows}),
            )
        )
    )
    doomed = [
        row_id for row_id, kind, value, pid in candidates.tuples() if (kind, value) in taken or (kind, pid) in replaced
    ]
    if doomed:
        await session.execute(delete(PatientIdentifier).where(PatientIdentifier.id.in_(doomed)))


async def _add_phones(
    session: AsyncSession, wanted: Mapping[int, Iterable[str]], *, fresh: Set[int] = frozenset()
) -> None:
    """Numbers the patients do not have yet (`fresh` ones have none)."""
    held = [pid for pid in wanted if pid not in fresh]
    query = select(PatientPhone.patient_id, PatientPhone.phone).where(PatientPhone.patient_id.in_(held))
    known = set((await session.execute(query)).tuples()) if held else set()
    rows = [
        {"patient_id": pid, "phone": phone, "label": "mobile"}
        for pid, phones in wanted.items()
        for phone in dict.fromkeys(phones)
        if (pid, phone) not in known
    ]
    if rows:
        await session.execute(insert(PatientPhone), rows)


# --- merging duplicates -----------------------------------------------------------------------------


async def merge(
    session: AsyncSession, *, actor: Actor, survivor_id: int, merged_id: int, source: str = "manual", reason: str = ""
) -> Patient:
    """Folds a duplicate into the survivor: identifiers, phones, flags, results and subscriptions move; the
    duplicate stays as a pointer with its old record kept in `patient_merges`. Merging twice is a no-op."""
    survivor = await resolve(session, survivor_id)
    duplicate = await get(session, merged_id)
    if duplicate.merged_into_id is not None and (await resolve(session, merged_id)).id == survivor.id:
        return survivor
    if duplicate.id == survivor.id:
        raise InvalidInput(N_("A patient cannot be merged into themselves."))
    if duplicate.merged_into_id is not None:
        raise Conflict(N_("This record was already merged into another patient."), error_id="already_merged")
    snapshot = await _snapshot(session, duplicate)
    await _move_identifiers(session, duplicate.id, survivor.id)
    await _add_phones(session, {survivor.id: [p["phone"] for p in snapshot["phones"]]})
    await session.execute(delete(PatientPhone).where(PatientPhone.patient_id == duplicate.id))
    for table in (PatientFlag, ResultSubscription):
        await session.execute(update_rows(table).where(table.patient_id == duplicate.id).values(patient_id=survivor.id))
    await _move_results(session, duplicate.id, survivor.id)
    _keep_better_facts(survivor, duplicate)
    duplicate.merged_into_id, duplicate.merged_at, duplicate.his_id = survivor.id, clock.now(), None
    session.add(
        PatientMerge(
            survivor_id=survivor.id,
            merged_id=duplicate.id,
            by_id=actor.user_id,
            source=source,
            reason=reason,
            snapshot=snapshot,
        )
    )
    await flush_or_conflict(session)
    await _repoint_elsewhere(session, duplicate.id, survivor.id)
    audit.record(
        session, actor=actor, action="patients.merged", target_type="patient", target_id=survivor.id,
        after={"merged_id": duplicate.id, "source": source}, reason=reason or None,
    )  # fmt: skip
    return survivor


async def _snapshot(session: AsyncSession, patient: Patient) -> dict[str, Any]:
    identifiers = (await identifiers_of(session, [patient.id]))[patient.id]
    phones = (await phones_of(session, [patient.id]))[patient.id]
    return {
        "name": patient.name,
        "sex": patient.sex,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "his_id": patient.his_id,
        "prospective": patient.prospective,
        "identifiers": [{"kind": i.kind, "value": i.value} for i in identifiers],
        "phones": [{"phone": p.phone, "label": p.label} for p in phones],
    }


async def _move_identifiers(session: AsyncSession, from_id: int, to_id: int) -> None:
    """Every identifier moves; where the survivor has its own of that kind, the duplicate's stays findable
    on the duplicate (which points at the survivor), so lookups by either number reach the survivor."""
    held = set(await session.scalars(select(PatientIdentifier.kind).where(PatientIdentifier.patient_id == to_id)))
    await session.execute(
        update_rows(PatientIdentifier)
        .where(PatientIdentifier.patient_id == from_id, PatientIdentifier.kind.not_in(held))
        .values(patient_id=to_id)
    )


async def _move_results(session: AsyncSession, from_id: int, to_id: int) -> None:
    known = set(await session.scalars(select(PatientResult.order_number).where(PatientResult.patient_id == to_id)))
    await session.execute(
        update_rows(PatientResult)
        .where(PatientResult.patient_id == from_id, PatientResult.order_number.not_in(known))
        .values(patient_id=to_id)
    )


def _keep_better_facts(survivor: Patient, duplicate: Patient) -> None:
    survivor.birth_date = survivor.birth_date or duplicate.birth_date
    survivor.sex = survivor.sex if survivor.sex != "unknown" else duplicate.sex
    survivor.vip_level = max(survivor.vip_level, duplicate.vip_level)
    survivor.sms_opt_in = survivor.sms_opt_in and duplicate.sms_opt_in  # an opt-out is never lost
    survivor.prospective = survivor.prospective and duplicate.prospective


async def _repoint_elsewhere(session: AsyncSession, from_id: int, to_id: int) -> None:
    """Work orders and contacts that named the duplicate now name the survivor."""
    from patientline.contacts.models import Contact
    from patientline.workorders.models import WorkOrder

    for table in (WorkOrder, Contact):
        await session.execute(update_rows(table).where(table.patient_id == from_id).values(patient_id=to_id))


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Patient)) or 0)
