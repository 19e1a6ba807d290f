"""The HIS port: what PatientLine asks of the hospital's information systems (HIS/EMR/LIS/RIS).

Adapters: `fhir.FhirHis` (FHIR R4 over HTTP) and `simulator.SimulatedHis` (the demo and tests); the HL7 v2
listener (`hl7`) pushes changes the other way. Callers do not use an adapter directly but `gateway`, which
time-limits each call, opens a circuit breaker after repeated failures and falls back to the last good
answer with its age, so a slow or absent HIS never blocks an agent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict


class HisError(Exception):
    """The HIS failed: unreachable, timed out, answered an error or something unreadable."""


class HisRecord(BaseModel):
    model_config = ConfigDict(frozen=True)


class HisPatient(HisRecord):
    his_id: str  # the HIS's id for the person (FHIR Patient.id, HL7 PID-3 with the MRN's authority)
    identifiers: dict[str, str] = {}  # IdentifierKind -> value, e.g. {"mrn": "M0001", "id_card": "110…"}
    name: str
    sex: Literal["male", "female", "unknown"] = "unknown"
    birth_date: date | None = None
    phones: list[str] = []  # E.164


class Visit(HisRecord):
    id: str
    kind: Literal["outpatient", "inpatient", "emergency", "other"] = "outpatient"
    department: str = ""
    doctor: str = ""
    start: datetime | None = None
    end: datetime | None = None
    status: str = ""  # FHIR Encounter.status: planned, in-progress, finished, cancelled…


class Appointment(HisRecord):
    id: str
    start: datetime | None = None
    department: str = ""
    doctor: str = ""
    status: str = ""  # FHIR Appointment.status: booked, fulfilled, cancelled, noshow…


class ResultStatus(HisRecord):
    order_number: str  # the placer/filler order or report number the patient has on the slip
    name: str = ""
    category: Literal["lab", "imaging"] = "lab"
    status: str = "registered"  # FHIR DiagnosticReport.status: registered, partial, preliminary, final…
    issued_at: datetime | None = None
    conclusion: str = ""

    @property
    def ready(self) -> bool:
        return self.status in READY_STATUSES


READY_STATUSES = frozenset({"final", "amended", "corrected", "appended"})


class HIS(Protocol):
    """Every method raises `HisError` on failure; none of them retries (the gateway decides)."""

    name: str

    async def find_patients(self, *, kind: str | None = None, value: str | None = None,
                            phone: str | None = None) -> list[HisPatient]: ...  # fmt: skip

    async def visits(self, his_id: str) -> list[Visit]: ...

    async def appointments(self, his_id: str) -> list[Appointment]: ...

    async def results(self, his_id: str) -> list[ResultStatus]: ...

    async def close(self) -> None: ...
