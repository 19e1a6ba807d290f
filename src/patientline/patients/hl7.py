"""Inbound HL7 v2 from the hospital's systems: ADT keeps the patient index fresh, ORU^R01 reports results.

`Hl7Inbox.receive(raw)` takes one message (bytes, without MLLP framing) and answers its ACK (bytes in the
message's own character set). A message has all its effects, or none; messages that arrive together share
a transaction (see `Hl7Inbox`).

ACK codes (MSA-1), with an ERR segment (HL7 table 0357 code, text) and the text in MSA-3 too:
- AR (rejected, nothing done): not decodable in the declared MSH-18 character set, not HL7 (no MSH first,
  bad separators, control characters, a line that is no segment, several messages in one frame), MSH-9 or
  MSH-10 missing, a version other than 2.x, a processing id other than P/T/D, a message type we do not take
  (SIU, ORM, OML, ACK…: code 200, "unsupported message type").
- AE (valid HL7, bad content, nothing done): PID-3 missing, an ID card number failing GB 11643, an impossible
  or future birth date, a name missing, MRG missing in A40, an OBR without order number or patient, or an
  internal error (207).
- AA: done. Warnings (ERR severity W) list what was left out: phone numbers that cannot exist, identifiers
  that cannot be stored. ADT events other than A01/A04/A08/A31/A40 (A02, A03…) are accepted with no effect
  (severity I): interface engines often broadcast a whole ADT feed.
A message accepted once (same sender MSH-3/4, control id MSH-10 and content) is answered the same ACK
again and changes nothing (table `hl7_messages`).

PID-3 identifier type codes (CX-5) and what they become (`IdentifierKind`); others are ignored:
MR, MRN, MRT, PT -> mrn; NNCHN, NI, CZ, ID, SFZ -> id_card; HC, JHN, JKK -> health_card; VC, JZK -> visit_card;
SS, NIIP, SN, MB, YB -> insurance. The HIS's own id of the person (`his_id`) is the PI identifier when there is
one, else the MR one, else the first: a HIS that also answers FHIR should send its FHIR Patient.id as PI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.core.errors import DomainError
from patientline.core.validation import normalise_phone
from patientline.patients import index, results
from patientline.patients.his import HisPatient, ResultStatus
from patientline.patients.models import Hl7Message, IdentifierKind, Patient, PatientIdentifier

log = logging.getLogger(__name__)

HL7_ACTOR = Actor(
    user_id=None, username="hl7", display_name="HL7 interface", roles=(), permissions=frozenset(), via="system"
)
ADT_UPDATES = frozenset({"A01", "A04", "A08", "A31"})
VERSION = re.compile(r"^2\.[1-9](\.\d+)*$")
SEGMENT = re.compile(r"^[A-Z][A-Z0-9]{2}$")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CHARSETS = {
    "": "utf-8", "ASCII": "utf-8", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "UTF8": "utf-8",
    "GB 18030-2000": "gb18030", "GB18030": "gb18030", "GB 18030": "gb18030", "GBK": "gb18030",
    "GB2312": "gb18030", "GB 2312": "gb18030", "8859/1": "latin-1", "BIG-5": "big5",
}  # fmt: skip
"""MSH-18 (HL7 table 0211, and the names Chinese systems write) -> codec; ASCII is read as UTF-8."""
IDENTIFIER_TYPES = {
    **dict.fromkeys(("MR", "MRN", "MRT", "PT"), IdentifierKind.MRN),
    **dict.fromkeys(("NNCHN", "NI", "CZ", "ID", "SFZ"), IdentifierKind.ID_CARD),
    **dict.fromkeys(("HC", "JHN", "JKK"), IdentifierKind.HEALTH_CARD),
    **dict.fromkeys(("VC", "JZK"), IdentifierKind.VISIT_CARD),
    **dict.fromkeys(("SS", "NIIP", "SN", "MB", "YB"), IdentifierKind.INSURANCE),
}
RESULT_STATUS = {
    "F": "final", "C": "corrected", "P": "preliminary", "A": "partial", "I": "registered", "R": "registered",
    "S": "registered", "O": "registered", "X": "cancelled", "D": "entered-in-error", "W": "entered-in-error",
}  # fmt: skip
"""OBR-25 (HL7 table 0123) -> FHIR DiagnosticReport.status."""
IMAGING_SECTIONS = frozenset(
    {"RAD", "CT", "CUS", "NMR", "NMS", "OUS", "RUS", "RX", "VUS", "XRC", "MR", "MRI", "US", "DX", "CR", "DR", "MG",
     "XA", "PET", "PT", "NM", "IMG", "RIS", "ECHO"}
)  # fmt: skip
"""OBR-24 diagnostic service sections (table 0074 and DICOM modalities) that are imaging."""
IMAGING_WORDS = re.compile(
    r"\b(CT|MRI?|X-?RAY|XR|ULTRASOUND|US|PET|MAMMO\w*|RADIOGRAPH\w*|ANGIO\w*|ECHO\w*|SCAN)\b|"
    r"超声|彩超|B超|磁共振|核磁|放射|影像|胸片|X线|造影|钼靶|平扫|增强扫描|DR|CT",
    re.IGNORECASE,
)
IMAGING_CODINGS = frozenset({"DCM", "RADLEX", "RSNA", "RID"})
TEXT_VALUE_TYPES = frozenset({"NM", "SN", "ST", "TX", "FT", "CE", "CWE", "CNE", "CF", "NR", "DT", "TM", "DTM", "TS"})
MAX_WARNINGS = 10
MAX_ROUND = 64
"""Messages written in one transaction at most."""
GATHER_SECONDS = 0.002
CLOSE_SECONDS = 10.0


class Hl7Problem(Exception):
    """A message we answer AR (`reject`) or AE: HL7 error code (table 0357), text and where."""

    def __init__(self, text: str, *, code: int, where: str = "", reject: bool = False) -> None:
        super().__init__(text)
        self.text, self.code, self.where, self.reject = text, code, where, reject


def _reject(text: str, code: int, where: str = "") -> Hl7Problem:
    return Hl7Problem(text, code=code, where=where, reject=True)


@dataclass
class Note:
    text: str
    code: int
    where: str = ""
    severity: str = "W"  # W warning, I information


# --- decoding and the header ------------------------------------------------------------------------------


@dataclass
class Header:
    field_sep: str = "|"
    encoding: str = "^~\\&"
    raw: list[str] = field(default_factory=list)  # MSH fields as sent: raw[n] is MSH-n (n >= 3)
    codec: str = "utf-8"
    charset: str = ""  # MSH-18 as sent, once known to be one we read
    message_type: str = ""
    trigger: str = ""
    control_id: str = ""
    version: str = ""

    def get(self, n: int) -> str:
        return self.raw[n] if n < len(self.raw) else ""

    @property
    def component_sep(self) -> str:
        return self.encoding[0]

    @property
    def repetition_sep(self) -> str:
        return self.encoding[1] if len(self.encoding) > 1 else "~"

    @property
    def subcomponent_sep(self) -> str:
        return self.encoding[3] if len(self.encoding) > 3 else "&"


def _peek_header(data: bytes, header: Header) -> None:
    """The MSH line read byte for byte (its fields are ASCII) to learn separators and the character set;
    `header` keeps what could be read, so even a rejection can answer the sender."""
    first = re.split(rb"\r\n|\r|\n", data, maxsplit=1)[0].decode("latin-1")
    if not first.startswith("MSH"):
        raise _reject("The message does not begin with an MSH segment.", 100, "MSH")
    if len(first) < 8:
        raise _reject("The MSH segment is truncated.", 101, "MSH^1^1")
    parts = first.split(first[3])
    separator, encoding = first[3], parts[1]
    allowed = len(set(encoding + separator)) == len(encoding) + 1
    if separator.isalnum() or separator.isspace() or not allowed or len(encoding) not in (4, 5) \
            or any(c.isalnum() or c.isspace() for c in encoding):  # fmt: skip
        raise _reject("MSH-1 and MSH-2 must be a field separator and four distinct encoding characters.", 102,
                      "MSH^1^2")  # fmt: skip
    header.field_sep, header.encoding = first[3], parts[1]
    header.raw = ["MSH", header.field_sep, *parts[1:]]
    header.control_id = header.get(10).split(header.component_sep)[0][:199]
    header.trigger = header.get(9).split(header.component_sep)[1][:3] if header.component_sep in header.get(9) else ""
    charset = header.get(18).split(header.repetition_sep)[0].split(header.component_sep)[0].strip().upper()
    codec = CHARSETS.get(charset)
    if codec is None:
        raise _reject(f"Character set {charset[:40]} (MSH-18) is not supported; use UNICODE UTF-8 or GB 18030-2000.",
                      103, "MSH^1^18")  # fmt: skip
    header.codec, header.charset = codec, header.get(18)


def decode(raw: bytes, header: Header) -> str:
    """The message as text with CR between segments (`header` filled in); AR for anything unreadable."""
    data = raw.removeprefix(b"\xef\xbb\xbf").strip(b" \t\r\n")
    _peek_header(data, header)
    try:
        text = data.decode(header.codec)
    except UnicodeDecodeError:
        raise _reject(f"The message is not valid {header.codec} as MSH-18 declares.", 102, "MSH^1^18") from None
    text = re.sub(r"\r\n|\n", "\r", text)
    if CONTROL.search(text):
        raise _reject("The message holds control characters.", 102)
    return text


def _parse(text: str, header: Header) -> list[Seg]:
    """The segments, each line checked to be one; their fields are split when read."""
    lines = [line for line in text.split("\r") if line.strip()]
    for number, line in enumerate(lines, start=1):
        name = line.split(header.field_sep, 1)[0]
        if not SEGMENT.match(name) or (len(line) > 3 and line[3] != header.field_sep):
            raise _reject(f"Line {number} is not an HL7 segment.", 100)
        if name == "MSH" and number > 1:
            raise _reject("Send one message per frame (a second MSH segment was found).", 100, f"MSH^{number}")
        if name in ("BHS", "FHS"):
            raise _reject("Batches are not taken; send each message on its own.", 100)
    return [Seg(line, header) for line in lines]


def _check_header(msh: Seg, header: Header) -> None:
    header.raw = msh.fields
    header.message_type = msh.value(9).upper()
    header.trigger = msh.value(9, comp=2).upper()
    header.control_id = msh.value(10)
    header.version = msh.value(12)
    if not header.message_type:
        raise _reject("MSH-9 (message type) is missing.", 101, "MSH^1^9")
    if not header.control_id:
        raise _reject("MSH-10 (message control id) is missing.", 101, "MSH^1^10")
    if len(header.control_id) > 199:
        raise _reject("MSH-10 (message control id) is too long.", 104, "MSH^1^10")
    if not VERSION.match(header.version):
        raise _reject("MSH-12 must name an HL7 version 2.x.", 203, "MSH^1^12")
    if msh.value(11)[:1].upper() not in ("", "P", "T", "D"):
        raise _reject("MSH-11 (processing id) must be P, T or D.", 202, "MSH^1^11")
    if header.message_type not in ("ADT", "ORU") or (header.message_type == "ORU" and header.trigger != "R01"):
        raise _reject(f"Message type {header.message_type}^{header.trigger} is not taken here (ADT, ORU^R01).", 200,
                      "MSH^1^9")  # fmt: skip
    if not header.trigger:
        raise _reject("MSH-9 has no trigger event.", 201, "MSH^1^9")


# --- reading fields ----------------------------------------------------------------------------------------


class Seg:
    """One segment: fields as repetitions of components of subcomponents, values unescaped.

    The encoding rules (ER7) nest four separators, so a field is read by splitting it at each in turn, and
    only when it is first asked for; escape sequences hold no separator, so values are unescaped after."""

    def __init__(self, line: str, header: Header) -> None:
        self.header = header
        self.esc = header.encoding[2]
        fields = line.split(header.field_sep)
        self.name = fields[0]
        # MSH-1 is the field separator itself: counted, so that fields[n] is field n in every segment
        self.fields = [fields[0], header.field_sep, *fields[1:]] if self.name == "MSH" else fields
        self._reps: dict[int, list[list[list[str]]]] = {}

    def reps(self, n: int) -> list[list[list[str]]]:
        if n not in self._reps:
            self._reps[n] = self._read_reps(n)
        return self._reps[n]

    def _read_reps(self, n: int) -> list[list[list[str]]]:
        text = self.fields[n] if n < len(self.fields) else ""
        if self.name == "MSH" and n <= 2:  # the separators and encoding characters, as they are
            return [[[text]]] if text else []
        h = self.header
        reps = [
            [component.split(h.subcomponent_sep) for component in rep.split(h.component_sep)]
            for rep in text.split(h.repetition_sep)
        ]
        return [r for r in reps if any(any(c) for c in r)]

    def value(self, n: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
        reps = self.reps(n)
        return component(reps[rep - 1], comp, sub, self) if len(reps) >= rep else ""

    def unescape(self, text: str) -> str:
        if self.esc not in text:
            return text.strip()
        seps = {"F": self.header.field_sep, "S": self.header.component_sep, "R": self.header.repetition_sep,
                "T": self.header.subcomponent_sep, "E": self.esc}  # fmt: skip

        def replace(match: re.Match[str]) -> str:
            code = match.group(1)
            if code in seps:
                return seps[code]
            if code.startswith("X") and re.fullmatch(r"X([0-9A-Fa-f]{2})+", code):
                return bytes.fromhex(code[1:]).decode(self.header.codec, errors="replace")
            return " " if code in (".br", ".sp", ".ce", ".sk") else ""

        pattern = re.escape(self.esc) + r"([^" + re.escape(self.esc) + r"]*)" + re.escape(self.esc)
        return CONTROL.sub(" ", re.sub(pattern, replace, text).replace("\r", " ")).strip()


def component(rep: list[list[str]], comp: int, sub: int, seg: Seg) -> str:
    if comp > len(rep) or sub > len(rep[comp - 1]):
        return ""
    return seg.unescape(rep[comp - 1][sub - 1])


# --- PID -> HisPatient ---------------------------------------------------------------------------------------


def his_patient(pid: Seg, notes: list[Note]) -> HisPatient:
    identifiers, his_id = _identifiers(pid, notes)
    return HisPatient(
        his_id=his_id, identifiers=identifiers, name=_name(pid), sex=_sex(pid.value(8)),
        birth_date=_birth_date(pid.value(7), notes), phones=_phones(pid, notes),
    )  # fmt: skip


def _identifiers(pid: Seg, notes: list[Note]) -> tuple[dict[str, str], str]:
    found: list[tuple[str, str]] = []  # (type code, value)
    for rep in pid.reps(3):
        value = component(rep, 1, 1, pid)
        if value:
            found.append((component(rep, 5, 1, pid).upper(), value))
    if not found and pid.value(2):  # PID-2, the external id of older versions
        found.append(("PT", pid.value(2)))
    if not found:
        raise Hl7Problem("PID-3 (patient identifier list) is missing.", code=101, where="PID^1^3")
    by_type = dict(reversed(found))  # the first of each type
    his_id = by_type.get("PI") or by_type.get("MR") or found[0][1]
    if len(his_id) > 64:
        raise Hl7Problem("The patient identifier in PID-3 is longer than 64 characters.", code=104, where="PID^1^3")
    identifiers: dict[str, str] = {}
    for type_code, value in found:
        kind = IDENTIFIER_TYPES.get(type_code)
        if kind is None or kind in identifiers:
            continue
        if kind == IdentifierKind.ID_CARD:
            identifiers[kind] = index.normalise_identifier(kind, value)  # a bad checksum is an AE
            continue
        try:
            identifiers[kind] = index.normalise_identifier(kind, value)
        except DomainError:
            notes.append(Note(f"A PID-3 identifier of type {type_code} cannot be stored and was left out.", 102,
                              "PID^1^3"))  # fmt: skip
    return identifiers, his_id


def _name(pid: Seg) -> str:
    names = pid.reps(5)
    legal = [rep for rep in names if component(rep, 7, 1, pid).upper() == "L"]
    chosen = (legal or names or [[[""]]])[0]
    family, given, middle = component(chosen, 1, 1, pid), component(chosen, 2, 1, pid), component(chosen, 3, 1, pid)
    parts = [p for p in (family, given, middle) if p]
    cjk = any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in "".join(parts))
    name = ("" if cjk else " ").join(parts)[:100].strip()
    if not name:
        raise Hl7Problem("PID-5 (patient name) is missing.", code=101, where="PID^1^5")
    return name


def _sex(code: str) -> Any:
    return {"M": "male", "F": "female", "1": "male", "2": "female"}.get(code.strip().upper()[:1], "unknown")


def _birth_date(text: str, notes: list[Note]) -> date | None:
    digits = text.strip()
    if not digits:
        return None
    if not re.match(r"^\d{4}", digits):
        raise Hl7Problem("PID-7 (birth date) is not a date.", code=102, where="PID^1^7")
    if not re.match(r"^\d{8}", digits):
        notes.append(Note("PID-7 (birth date) has no day and was left out.", 102, "PID^1^7"))
        return None
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise Hl7Problem("PID-7 (birth date) is not a possible date.", code=102, where="PID^1^7") from None
    try:
        return index.check_birth_date(born)
    except DomainError:
        raise Hl7Problem("PID-7 (birth date) is in the future or before 1900.", code=102, where="PID^1^7") from None


def _phones(pid: Seg, notes: list[Note]) -> list[str]:
    phones: list[str] = []
    dropped = 0
    for number in (13, 14):
        for rep in pid.reps(number):
            use, equipment = component(rep, 2, 1, pid).upper(), component(rep, 3, 1, pid).upper()
            if use == "NET" or equipment in ("INTERNET", "X.400", "FX", "BP"):
                continue
            raw = component(rep, 12, 1, pid) or component(rep, 1, 1, pid)
            if not raw and component(rep, 7, 1, pid):
                country = component(rep, 5, 1, pid)
                raw = (f"+{country.lstrip('+')} " if country else "") + component(rep, 6, 1, pid) + component(
                    rep, 7, 1, pid)  # fmt: skip
            if not raw:
                continue
            try:
                phones.append(normalise_phone(raw))
            except ValueError:
                dropped += 1
    if dropped:
        notes.append(Note(f"{dropped} phone number(s) in PID-13/14 cannot exist and were left out.", 102, "PID^1^13"))
    return list(dict.fromkeys(phones))


# --- what a message asks for --------------------------------------------------------------------------------


@dataclass
class Work:
    """One message read and checked: what it asks the index to do, not done yet."""

    header: Header
    segments: list[Seg]
    text: str
    notes: list[Note] = field(default_factory=list)
    updates: list[HisPatient] = field(default_factory=list)  # ADT: the patients to refresh or add
    owners: list[HisPatient] = field(default_factory=list)  # ORU: each PID, found or else added
    results: list[tuple[int, ResultStatus]] = field(default_factory=list)  # ORU: (index into owners, status)
    answer: asyncio.Future[Answer] | None = None

    @property
    def merges(self) -> bool:
        return self.header.trigger == "A40" and self.header.message_type == "ADT"

    @property
    def sender(self) -> str:
        return f"{self.header.get(3)}|{self.header.get(4)}"[:200]

    @functools.cached_property
    def key(self) -> tuple[str, str, str]:
        """The idempotency key: sender, control id and a digest of the content."""
        body = self.text.split("\r", 1)[1] if "\r" in self.text else ""
        digest = hashlib.sha256(f"{self.header.get(9)}\r{body}".encode()).hexdigest()
        return self.sender, self.header.control_id, digest

    def touches(self) -> set[tuple[str, str]]:
        """The patients' ids and identifiers: messages sharing one are applied one after the other."""
        people = self.updates + self.owners
        return (
            {("message", "|".join(self.key))}
            | {("his", p.his_id) for p in people}
            | {item for p in people for item in p.identifiers.items()}
        )


def read_work(header: Header, segments: list[Seg], text: str, settings: Settings) -> Work:
    """What the message asks for; an Hl7Problem or DomainError for content we answer AE (nothing done)."""
    work = Work(header, segments, text)
    if header.message_type == "ORU":
        work.owners, work.results = _read_results(segments, settings, work.notes)
    elif work.merges:
        pass  # applied alone (`_merges`): each merge reads the index as the one before left it
    elif header.trigger in ADT_UPDATES:
        work.updates = [his_patient(_first(segments, "PID"), work.notes)]
    else:
        work.notes.append(Note(f"ADT^{header.trigger} is accepted with no effect.", 0, severity="I"))
    return work


def _first(segments: Sequence[Seg], name: str) -> Seg:
    for seg in segments:
        if seg.name == name:
            return seg
    raise Hl7Problem(f"The {name} segment is missing.", code=100, where=name)


async def apply_works(session: AsyncSession, works: Sequence[Work], settings: Settings) -> None:
    """The effects of several messages that touch different patients, in a handful of statements."""
    for work in works:
        if work.merges:
            await _merges(session, work)
    updates = [record for work in works for record in work.updates]
    owners = [record for work in works for record in work.owners]
    found = await index.match_many(session, [(record.his_id, record.identifiers) for record in owners])
    unknown = [record for record, patient in zip(owners, found, strict=True) if patient is None]
    added = iter(await index.upsert_many_from_his(session, actor=HL7_ACTOR, records=updates + unknown))
    for _ in updates:
        next(added)
    owner_ids = [patient.id if patient is not None else next(added).id for patient in found]
    statuses, offset = [], 0
    for work in works:
        statuses += [(owner_ids[offset + owner], status) for owner, status in work.results]
        offset += len(work.owners)
    await results.record_statuses(session, statuses=statuses, source="hl7", actor=HL7_ACTOR,
                                  keep_content=settings.results_show_content)  # fmt: skip


async def _merges(session: AsyncSession, work: Work) -> None:
    pid: Seg | None = None
    merged = 0
    for seg in work.segments:
        if seg.name == "PID":
            pid = seg
        elif seg.name == "MRG":
            if pid is None:
                raise Hl7Problem("MRG comes before any PID.", code=100, where="MRG")
            await _merge(session, work.notes, pid, seg)
            pid, merged = None, merged + 1
    if pid is not None or not merged:
        raise Hl7Problem("ADT^A40 needs a PID and an MRG segment for each merge.", code=100, where="MRG")


async def _merge(session: AsyncSession, notes: list[Note], pid: Seg, mrg: Seg) -> None:
    """PID is the survivor, MRG-1 the record that disappears: every identifier either had stays findable."""
    priors = [(component(rep, 5, 1, mrg).upper(), component(rep, 1, 1, mrg)) for rep in mrg.reps(1)]
    priors = [(code, value) for code, value in priors if value]
    if not priors:
        raise Hl7Problem("MRG-1 (prior patient identifier) is missing.", code=101, where="MRG^1^1")
    prior = await _find_prior(session, priors)
    kept = await _identifier_rows(session, prior.id) if prior is not None else []
    survivor = await index.upsert_from_his(session, actor=HL7_ACTOR, record=his_patient(pid, notes))
    if prior is None:
        notes.append(Note("The prior patient in MRG-1 is not in the index: nothing to merge.", 204, "MRG^1^1", "I"))
    elif prior.id != survivor.id:
        await index.merge(session, actor=HL7_ACTOR, survivor_id=survivor.id, merged_id=prior.id, source="hl7",
                          reason="ADT^A40")  # fmt: skip
    await _restore(session, survivor.id, kept)


async def _find_prior(session: AsyncSession, priors: list[tuple[str, str]]) -> Patient | None:
    by_type = dict(reversed(priors))
    his_id = by_type.get("PI") or by_type.get("MR") or priors[0][1]
    patient_id = await session.scalar(select(Patient.id).where(Patient.his_id == his_id))
    if patient_id is not None:
        return await index.resolve(session, patient_id)
    for code, value in priors:
        kind = IDENTIFIER_TYPES.get(code) or IdentifierKind.MRN
        try:
            found = await index.find_by_identifier(session, kind, index.normalise_identifier(kind, value))
        except DomainError:
            continue
        if found is not None:
            return found
    return None


async def _identifier_rows(session: AsyncSession, patient_id: int) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(PatientIdentifier.kind, PatientIdentifier.value).where(PatientIdentifier.patient_id == patient_id)
    )
    return [(kind, value) for kind, value in rows.tuples()]


async def _restore(session: AsyncSession, survivor_id: int, identifiers: list[tuple[str, str]]) -> None:
    """An identifier the prior record held that the update replaced (the HIS matched the survivor to the
    prior record itself) goes back on the survivor, so the old number still finds the person."""
    for kind, value in identifiers:
        if await index.find_by_identifier(session, kind, value) is None:
            session.add(PatientIdentifier(patient_id=survivor_id, kind=kind, value=value))
    await session.flush()


@dataclass
class Order:
    obr: Seg
    observations: list[Seg] = field(default_factory=list)


def _read_results(
    segments: Sequence[Seg], settings: Settings, notes: list[Note]
) -> tuple[list[HisPatient], list[tuple[int, ResultStatus]]]:
    """Each PID as a patient record, and each OBR's status with the index of the PID it follows."""
    owners: list[HisPatient] = []
    orc: Seg | None = None
    orders: list[tuple[int, Seg | None, Order]] = []
    for seg in segments:
        if seg.name == "PID":
            owners.append(his_patient(seg, notes))
        elif seg.name == "ORC":
            orc = seg
        elif seg.name == "OBR":
            orders.append((len(owners) - 1, orc, Order(seg)))
        elif seg.name == "OBX" and orders:
            orders[-1][2].observations.append(seg)
    if not orders:
        raise Hl7Problem("ORU^R01 holds no OBR segment.", code=100, where="OBR")
    statuses: list[tuple[int, ResultStatus]] = []
    for number, (owner, order_control, order) in enumerate(orders, start=1):
        if owner < 0:
            raise Hl7Problem("An OBR comes before any PID.", code=100, where=f"OBR^{number}")
        statuses.append((owner, _result_status(order, order_control, settings, number)))
    return owners, statuses


def _result_status(order: Order, orc: Seg | None, settings: Settings, number: int) -> ResultStatus:
    obr = order.obr
    order_number = obr.value(3) or obr.value(2) or (orc.value(3) or orc.value(2) if orc else "")
    if not order_number:
        raise Hl7Problem("OBR-3 and OBR-2 (order numbers) are both missing.", code=101, where=f"OBR^{number}^3")
    if len(order_number) > 64:
        raise Hl7Problem("The order number is longer than 64 characters.", code=104, where=f"OBR^{number}^3")
    code = obr.value(25).upper()
    if code:
        status = RESULT_STATUS.get(code[:1], "unknown")
    else:
        observed = {obx.value(11).upper()[:1] for obx in order.observations} - {""}
        status = "final" if observed and observed <= {"F", "C"} else ("preliminary" if observed else "registered")
    name = obr.value(4, comp=2) or obr.value(4, comp=9) or obr.value(4)
    return ResultStatus(
        order_number=order_number, name=name[:200], category=_category(obr), status=status,
        issued_at=_timestamp(obr.value(22), settings.timezone), conclusion=_conclusion(order),
    )  # fmt: skip


def _category(obr: Seg) -> Any:
    section = obr.value(24).upper()
    if section:
        return "imaging" if section in IMAGING_SECTIONS else "lab"
    coding = {obr.value(4, comp=3).upper(), obr.value(4, comp=6).upper()}
    text = " ".join((obr.value(4, comp=2), obr.value(4, comp=9), obr.value(4, comp=1)))
    return "imaging" if coding & IMAGING_CODINGS or IMAGING_WORDS.search(text) else "lab"


def _timestamp(text: str, timezone: str) -> datetime | None:
    match = re.match(r"^(\d{8})(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$", text.strip())
    if not match:
        return None
    day, hour, minute, second, offset = match.groups()
    zone = datetime.strptime(offset, "%z").tzinfo if offset else ZoneInfo(timezone)
    try:
        moment = datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), int(hour or 0), int(minute or 0),
                          int(second or 0), tzinfo=zone)  # fmt: skip
    except ValueError:
        return None
    return moment.astimezone(UTC)


def _conclusion(order: Order) -> str:
    """OBX values in a line each: name, value, units, abnormal flag (encapsulated data and links left out)."""
    lines: list[str] = []
    for obx in order.observations:
        if obx.value(2).upper() not in TEXT_VALUE_TYPES:
            continue
        label = obx.value(3, comp=2) or obx.value(3)
        values = []
        for rep in obx.reps(5):
            if obx.value(2).upper() in ("CE", "CWE", "CNE"):
                values.append(component(rep, 2, 1, obx) or component(rep, 1, 1, obx))
            else:
                values.append("".join(component(rep, c, 1, obx) for c in range(1, len(rep) + 1)))
        line = f"{label}: {', '.join(v for v in values if v)} {obx.value(6)}".strip()
        flag = obx.value(8)
        lines.append(f"{line} [{flag}]" if flag else line)
    return "\n".join(lines)[: results.MAX_CONCLUSION]


# --- the ACK --------------------------------------------------------------------------------------------


def _escape(text: str, header: Header) -> str:
    esc = header.encoding[2] if len(header.encoding) > 2 else "\\"
    out = text.replace(esc, f"{esc}E{esc}").replace(header.field_sep, f"{esc}F{esc}")
    out = out.replace(header.component_sep, f"{esc}S{esc}").replace(header.repetition_sep, f"{esc}R{esc}")
    if len(header.encoding) > 3:
        out = out.replace(header.encoding[3], f"{esc}T{esc}")
    return out


def build_ack(header: Header, code: str, notes: Sequence[Note], settings: Settings) -> str:
    """MSH (sender and receiver swapped, a new control id, ACK^<trigger>^ACK), MSA with the original control
    id, an ERR per note (the error first)."""
    fs, cs = header.field_sep, header.component_sep
    local = clock.now().astimezone(ZoneInfo(settings.timezone)).strftime("%Y%m%d%H%M%S%z")
    version = header.version if VERSION.match(header.version) else "2.5"
    msh = [
        "MSH", header.encoding, header.get(5), header.get(6), header.get(3), header.get(4), local, "",
        f"ACK{cs}{_escape(header.trigger, header)}{cs}ACK", "A" + secrets.token_hex(8).upper(),
        header.get(11) or "P", version, "", "", "", "", "", header.charset,
    ]  # fmt: skip
    while msh and not msh[-1]:
        msh.pop()
    first = notes[0].text if code != "AA" and notes else ""
    segments = [fs.join(msh), fs.join(["MSA", code, _escape(header.control_id, header), _escape(first, header)])]
    for note in list(notes)[:MAX_WARNINGS]:
        severity = "E" if code != "AA" else note.severity
        segments.append(fs.join([
            "ERR", "", note.where, f"{note.code}{cs}{_escape(_code_text(note.code), header)}{cs}HL70357", severity,
            "", "", "", _escape(note.text, header),
        ]))  # fmt: skip
    return "\r".join(segments) + "\r"


def _code_text(code: int) -> str:
    return {
        0: "Message accepted", 100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
        103: "Table value not found", 104: "Value too long", 200: "Unsupported message type",
        201: "Unsupported event code", 202: "Unsupported processing id", 203: "Unsupported version id",
        204: "Unknown key identifier", 207: "Application internal error",
    }.get(code, "Application error")  # fmt: skip


# --- one message in, one ACK out -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    code: str  # AA, AE, AR
    ack: bytes
    replayed: bool = False  # a resend answered from hl7_messages


class Hl7Inbox:
    """What the MLLP listener hands each message to.

    Messages that arrive while others are being written wait, then go in together: one transaction and a
    handful of statements for the lot (a statement costs far more than the work in it), so the more
    connections send at once, the more each commit carries. Messages that touch the same patient go in
    separate rounds, in the order they came. When a round fails (a resend, a conflict, an error), each of
    its messages is retried alone, so one message never takes another down."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._waiting: deque[Work] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._last_round = 1
        self._enough = asyncio.Event()  # as many waiting as the last round held

    async def receive(self, raw: bytes) -> Answer:
        header = Header()
        try:
            text = decode(raw, header)
            segments = _parse(text, header)
            _check_header(segments[0], header)
        except Hl7Problem as problem:
            return self._answer(header, "AR", [Note(problem.text, problem.code, problem.where)])
        try:
            work = read_work(header, segments[1:], text, self.settings)
        except (Hl7Problem, DomainError) as exc:
            return await self._refusal(Work(header, segments, text), exc)
        work.answer = asyncio.get_running_loop().create_future()
        self._waiting.append(work)
        if len(self._waiting) >= self._last_round:
            self._enough.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        return await work.answer

    async def close(self) -> None:
        """Finishes the messages in hand (their senders may have gone: a resend will be answered the same)."""
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._writer), CLOSE_SECONDS)

    async def _write_waiting(self) -> None:
        while self._waiting:
            await self._gather()
            works = self._next_round()
            self._last_round = len(works)
            await self._write(works)

    async def _gather(self) -> None:
        """The senders of the last round answer their ACKs at about the same moment: give them a moment to
        arrive so that they share one commit rather than trickle into several."""
        if len(self._waiting) >= self._last_round:
            return
        self._enough.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._enough.wait(), GATHER_SECONDS)

    def _next_round(self) -> list[Work]:
        """The longest run of waiting messages that touch different patients (a merge goes alone)."""
        first = self._waiting.popleft()
        works, touched = [first], first.touches()
        while self._waiting and len(works) < MAX_ROUND and not first.merges and not self._waiting[0].merges:
            following = self._waiting[0].touches()
            if following & touched:
                break
            works.append(self._waiting.popleft())
            touched |= following
        return works

    async def _write(self, works: list[Work]) -> None:
        try:
            answers = await self._commit(works)
        except Exception as exc:
            if len(works) > 1:  # each alone, so that one message never takes another down
                for work in works:
                    await self._write([work])
                return
            answers = [await self._refusal(works[0], exc)]
        for work, answer in zip(works, answers, strict=True):
            if work.answer is not None and not work.answer.done():  # its sender may have gone
                work.answer.set_result(answer)

    async def _commit(self, works: list[Work]) -> list[Answer]:
        async with self.db.sessions() as session, session.begin():
            await apply_works(session, works, self.settings)
            answers = [self._answer(work.header, "AA", work.notes) for work in works]
            # written last, in the same transaction: a resend fails here (unique key) and is rolled back whole,
            # then answered from the first one's row
            await session.execute(insert(Hl7Message), [_logged(w, a) for w, a in zip(works, answers, strict=True)])
        return answers

    async def _refusal(self, work: Work, exc: Exception) -> Answer:
        """An AE, unless the message is a resend of one accepted (answered as the first time)."""
        try:
            stored = await self._stored(work.key)
        except Exception:  # the database itself fails: the AE says the message could not be processed
            stored = None
        return stored or self._failed(work.header, exc)

    def _failed(self, header: Header, exc: Exception) -> Answer:
        if isinstance(exc, Hl7Problem):
            return self._answer(header, "AE", [Note(exc.text, exc.code, exc.where)])
        if isinstance(exc, DomainError):
            where = str(exc.details.get("field", "")) if isinstance(exc.details, dict) else ""
            return self._answer(header, "AE", [Note(exc.localized_message(str), 102, where)])
        # the log carries no patient data: the control id and the kind of failure only
        log.error("hl7 message failed", extra={"control_id": header.control_id, "error": type(exc).__name__})
        return self._answer(header, "AE", [Note("The message could not be processed.", 207)])

    async def _stored(self, key: tuple[str, str, str]) -> Answer | None:
        async with self.db.sessions() as session:
            row = await session.scalar(
                select(Hl7Message).where(
                    Hl7Message.sender == key[0], Hl7Message.control_id == key[1], Hl7Message.digest == key[2]
                )
            )
        if row is None:
            return None
        header = Header()
        _peek_header(row.ack.encode("utf-8"), header)
        return Answer(row.ack_code, row.ack.encode(header.codec, errors="replace"), replayed=True)

    def _answer(self, header: Header, code: str, notes: list[Note]) -> Answer:
        text = build_ack(header, code, notes, self.settings)
        return Answer(code, text.encode(header.codec, errors="replace"))


def _logged(work: Work, answer: Answer) -> dict[str, Any]:
    sender, control_id, digest = work.key
    return {
        "sender": sender, "control_id": control_id, "digest": digest, "ack_code": answer.code,
        "message_type": f"{work.header.message_type}^{work.header.trigger}"[:16],
        "ack": answer.ack.decode(work.header.codec), "received_at": clock.now(),
    }  # fmt: skip
