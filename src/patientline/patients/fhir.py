"""The HIS port over FHIR R4: Patient, Encounter, Appointment and DiagnosticReport searches through
httpx, answers read with the fhir.resources R4B models (wire-compatible with R4 for these resources).

Searches used (all standard R4 search parameters):
  Patient?identifier=<system>|<value>     by a card or record number, the system from `IDENTIFIER_SYSTEMS`
  Patient?phone=<E.164>                   by phone number
  Encounter?patient=<id>                  visits
  Appointment?patient=<id>                appointments
  DiagnosticReport?subject=Patient/<id>   lab and imaging results (status, not content)

Every failure becomes a `HisError` whose message says what went wrong with the server (timeout, HTTP
status, unreadable answer, an OperationOutcome's issue codes) and never what was asked for or answered:
no identifier, phone number, name or diagnostics text, which may carry patient data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.diagnosticreport import DiagnosticReport as FhirDiagnosticReport
from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from patientline.core.errors import InvalidInput
from patientline.patients import index
from patientline.patients.his import Appointment, HisError, HisPatient, ResultStatus, Visit
from patientline.patients.models import IdentifierKind

log = logging.getLogger(__name__)

# IdentifierKind -> the FHIR Identifier.system the hospital's HIS uses for it. These defaults are the
# PatientLine namespace; a hospital passes its own (often OIDs, "urn:oid:2.16.156...") to `FhirHis`.
IDENTIFIER_SYSTEMS: dict[str, str] = {
    IdentifierKind.MRN: "urn:patientline:identifier:mrn",
    IdentifierKind.ID_CARD: "urn:patientline:identifier:id-card",
    IdentifierKind.VISIT_CARD: "urn:patientline:identifier:visit-card",
    IdentifierKind.HEALTH_CARD: "urn:patientline:identifier:health-card",
    IdentifierKind.INSURANCE: "urn:patientline:identifier:insurance",
}
# Identifier.type codes (HL7 v2 table 0203) that say the kind when the system is not one we know.
IDENTIFIER_TYPES: dict[str, str] = {
    "MR": IdentifierKind.MRN,
    "NI": IdentifierKind.ID_CARD,
    "NNCHN": IdentifierKind.ID_CARD,
}

# Encounter.class (v3 ActCode) -> Visit.kind
ENCOUNTER_KINDS: dict[str, Literal["outpatient", "inpatient", "emergency", "other"]] = {
    "AMB": "outpatient",
    "VR": "outpatient",
    "HH": "outpatient",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "SS": "inpatient",
    "PRENC": "outpatient",
    "OBSENC": "inpatient",
    "EMER": "emergency",
}
# DiagnosticReport.category codes meaning imaging (v2-0074 diagnostic service sections, LOINC part)
IMAGING_CATEGORIES = frozenset(
    {"RAD", "CT", "MR", "NMR", "NMS", "US", "CUS", "OUS", "RUS", "VUS", "XRC", "RX", "IMG", "LP29684-5"}
)

PAGE_SIZE = 50
MAX_PAGES = 5  # a patient's search answers at most 250 resources; later pages are not fetched
FHIR_JSON = "application/fhir+json"

R = TypeVar("R", bound=Resource)


class FhirHis:
    """`patients.his.HIS` over a FHIR R4 server."""

    name = "fhir"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 1.5,
        identifier_systems: Mapping[str, str] | None = None,
        timezone: str = "Asia/Shanghai",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("the FHIR base URL must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.systems = dict(identifier_systems or IDENTIFIER_SYSTEMS)
        unknown = set(self.systems) - set(IdentifierKind.ALL)
        if unknown:
            raise ValueError(f"unknown identifier kinds: {sorted(unknown)}")
        self.kinds_by_system = {system: kind for kind, system in self.systems.items()}
        self.timezone = ZoneInfo(timezone)
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._origin = _origin(self.base_url)
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    # ---- the port ---------------------------------------------------------------------------------

    async def find_patients(
        self, *, kind: str | None = None, value: str | None = None, phone: str | None = None
    ) -> list[HisPatient]:
        if kind is not None and value:
            if kind not in self.systems:
                raise HisError(f"no FHIR identifier system is configured for {kind!r}")
            params = {"identifier": f"{self.systems[kind]}|{value}"}
        elif phone:
            params = {"phone": phone}
        else:
            raise HisError("a patient search needs an identifier or a phone number")
        found = await self._search("Patient", params, FhirPatient)
        return [self._patient(p) for p in found if p.id]

    async def visits(self, his_id: str) -> list[Visit]:
        found = await self._search("Encounter", {"patient": _checked_id(his_id)}, FhirEncounter)
        visits = [self._visit(e) for e in found if e.id]
        return sorted(visits, key=lambda v: v.start or _EPOCH, reverse=True)

    async def appointments(self, his_id: str) -> list[Appointment]:
        found = await self._search("Appointment", {"patient": _checked_id(his_id)}, FhirAppointment)
        appointments = [self._appointment(a) for a in found if a.id]
        return sorted(appointments, key=lambda a: a.start or _EPOCH)

    async def results(self, his_id: str) -> list[ResultStatus]:
        params = {"subject": f"Patient/{_checked_id(his_id)}"}
        found = await self._search("DiagnosticReport", params, FhirDiagnosticReport)
        results = [self._result(r) for r in found]
        return sorted(results, key=lambda r: r.issued_at or _EPOCH, reverse=True)

    async def check(self) -> None:
        """The server answers its CapabilityStatement (the admin page's connection test)."""
        body = await self._get(f"{self.base_url}/metadata", None)
        if body.get("resourceType") != "CapabilityStatement":
            raise HisError("the FHIR server's /metadata is not a CapabilityStatement")

    # ---- HTTP and Bundles -------------------------------------------------------------------------

    async def _search(self, resource_type: str, params: dict[str, str], model: type[R]) -> list[R]:
        """The matching resources over at most MAX_PAGES pages; entries that are not `resource_type`
        (an OperationOutcome with search mode "outcome", included resources) are passed over."""
        url: str | None = f"{self.base_url}/{resource_type}"
        query: dict[str, str] | None = {**params, "_count": str(PAGE_SIZE)}
        found: list[R] = []
        skipped = 0
        for _page in range(MAX_PAGES):
            if url is None:
                break
            body = await self._get(url, query)
            if body.get("resourceType") != "Bundle":
                raise HisError(f"the FHIR server answered a {_kind_of(body)} where a Bundle was expected")
            entries = body.get("entry") or []
            if not isinstance(entries, list):
                raise HisError("the FHIR server answered a Bundle whose entries are not a list")
            for entry in entries:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict):
                    raise HisError("the FHIR server answered a Bundle entry without a resource")
                if resource.get("resourceType") != resource_type:
                    continue
                try:
                    found.append(model.model_validate(resource))
                except ValidationError:
                    skipped += 1
            url, query = self._next_link(body), None
        if skipped:
            log.warning("FHIR resources skipped as invalid", extra={"resource": resource_type, "skipped": skipped})
        return found

    def _next_link(self, bundle: dict[str, Any]) -> str | None:
        links = bundle.get("link") or []
        if not isinstance(links, list):
            raise HisError("the FHIR server answered a Bundle whose links are not a list")
        for link in links:
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                url: str = link["url"]
                if _origin(url) != self._origin:  # never send the token elsewhere
                    raise HisError("the FHIR server's next page is on another server")
                return url
        return None

    async def _get(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        try:
            response = await self._client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise HisError("the FHIR server did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise HisError(f"the FHIR server cannot be reached ({type(exc).__name__})") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise HisError(f"the FHIR server answered HTTP {response.status_code}{_outcome_codes(body)}")
        if not isinstance(body, dict):
            raise HisError(f"the FHIR server answered HTTP {response.status_code} with something that is not FHIR JSON")
        if body.get("resourceType") == "OperationOutcome":
            raise HisError(f"the FHIR server answered an OperationOutcome{_outcome_codes(body)}")
        return body

    # ---- FHIR -> the port's records ---------------------------------------------------------------

    def _patient(self, resource: FhirPatient) -> HisPatient:
        identifiers: dict[str, str] = {}
        for identifier in resource.identifier or []:
            kind = self.kinds_by_system.get(identifier.system or "")
            if kind is None and identifier.type is not None:
                codes = [c.code for c in identifier.type.coding or [] if c.code]
                kind = next((IDENTIFIER_TYPES[c] for c in codes if c in IDENTIFIER_TYPES), None)
            if kind is None or kind in identifiers or not identifier.value:
                continue
            try:
                identifiers[kind] = index.normalise_identifier(kind, identifier.value)
            except InvalidInput:
                log.warning("HIS identifier dropped as invalid", extra={"kind": kind, "his_id": resource.id})
        phones = []
        for contact in resource.telecom or []:
            if contact.system in ("phone", "sms") and contact.value:
                e164 = index.as_phone(contact.value)
                if e164 and e164 not in phones:
                    phones.append(e164)
        sex: Literal["male", "female", "unknown"] = (
            resource.gender if resource.gender in ("male", "female") else "unknown"  # type: ignore[assignment]
        )
        birth = resource.birthDate if isinstance(resource.birthDate, date) else None
        return HisPatient(
            his_id=str(resource.id),
            identifiers=identifiers,
            name=_name(resource.name or []) or "?",
            sex=sex,
            birth_date=birth,
            phones=phones,
        )

    def _visit(self, resource: FhirEncounter) -> Visit:
        code = resource.class_fhir.code if resource.class_fhir is not None else None
        department = ""
        if resource.serviceType is not None:
            department = _concept_text(resource.serviceType)
        if not department and resource.serviceProvider is not None:
            department = resource.serviceProvider.display or ""
        if not department:
            department = next((loc.location.display or "" for loc in resource.location or [] if loc.location), "")
        doctor = next((p.individual.display or "" for p in resource.participant or [] if p.individual), "")
        period = resource.period
        return Visit(
            id=str(resource.id),
            kind=ENCOUNTER_KINDS.get(code or "", "other"),
            department=department[:100],
            doctor=doctor[:100],
            start=self._instant(period.start if period else None),
            end=self._instant(period.end if period else None),
            status=str(resource.status or ""),
        )

    def _appointment(self, resource: FhirAppointment) -> Appointment:
        department = ""
        for concept in [*(resource.serviceType or []), *(resource.specialty or [])]:
            department = _concept_text(concept)
            if department:
                break
        doctor = ""
        for participant in resource.participant or []:
            actor = participant.actor
            if actor is None:
                continue
            reference = actor.reference or ""
            if reference.startswith(("Practitioner/", "PractitionerRole/")) and not doctor:
                doctor = actor.display or ""
            elif reference.startswith(("HealthcareService/", "Location/")) and not department:
                department = actor.display or ""
        return Appointment(
            id=str(resource.id),
            start=self._instant(resource.start),
            department=department[:100],
            doctor=doctor[:100],
            status=str(resource.status or ""),
        )

    def _result(self, resource: FhirDiagnosticReport) -> ResultStatus:
        codes = {c.code for concept in resource.category or [] for c in concept.coding or [] if c.code}
        texts = " ".join((concept.text or "") for concept in resource.category or []).lower()
        imaging = bool(codes & IMAGING_CATEGORIES) or "imaging" in texts or "radiology" in texts
        number = next((i.value for i in resource.identifier or [] if i.value), None)
        if number is None:
            orders = [ref.identifier.value for ref in resource.basedOn or [] if ref.identifier and ref.identifier.value]
            number = orders[0] if orders else None
        return ResultStatus(
            order_number=(number or str(resource.id or ""))[:64],
            name=_concept_text(resource.code)[:200],
            category="imaging" if imaging else "lab",
            status=str(resource.status or "registered"),
            issued_at=self._instant(resource.issued),
            conclusion=resource.conclusion or "",
        )

    def _instant(self, value: object) -> datetime | None:
        """FHIR instants and dateTimes as aware datetimes; a date alone is the start of that day in the
        hospital's time zone; a partial date (a year or a month) tells no time and is dropped."""
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=self.timezone)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=self.timezone)
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _checked_id(his_id: str) -> str:
    """FHIR ids are [A-Za-z0-9-.]{1,64}; anything else would change the query."""
    if not his_id or len(his_id) > 64 or not all(c.isascii() and (c.isalnum() or c in "-.") for c in his_id):
        raise HisError("this HIS id is not a FHIR id")
    return his_id


def _kind_of(body: dict[str, Any]) -> str:
    kind = body.get("resourceType")
    return kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 40 else "non-FHIR object"


def _outcome_codes(body: object) -> str:
    """': error/not-found' from an OperationOutcome: severities and codes only, never its diagnostics."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    issues = body.get("issue")
    if not isinstance(issues, list):
        return ""
    codes = []
    for issue in issues[:3]:
        if isinstance(issue, dict):
            severity, code = str(issue.get("severity", "?"))[:12], str(issue.get("code", "?"))[:30]
            if severity.replace("-", "").isalpha() and code.replace("-", "").isalpha():
                codes.append(f"{severity}/{code}")
    return f": {', '.join(codes)}" if codes else ""


def _name(names: Sequence[HumanName]) -> str:
    """The official (else usual, else first) name; Chinese names are family then given, without a space."""
    if not names:
        return ""
    ranked = sorted(names, key=lambda n: {"official": 0, "usual": 1}.get(str(n.use or ""), 2))
    chosen = ranked[0]
    if chosen.text:
        return chosen.text.strip()[:100]
    family, given = (chosen.family or "").strip(), [g.strip() for g in chosen.given or [] if g and g.strip()]
    parts = [family, *given] if family else given
    if any(_is_cjk(c) for part in parts for c in part):
        return "".join(parts)[:100]
    return " ".join([*given, family] if family else given).strip()[:100]


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


def _concept_text(concept: Any) -> str:
    if concept is None:
        return ""
    if concept.text:
        return str(concept.text)
    return next((str(c.display) for c in concept.coding or [] if c.display), "")
