"""The simulated HIS as a FHIR R4 server: the searches `fhir.FhirHis` makes, answered from a
`SimulatedHis` (with its latency and failures), so the FHIR adapter can be pointed at the demo HIS
(`patientline patients his-simulator --port 8091`, then PATIENTLINE_HIS_ADAPTER=fhir and
PATIENTLINE_HIS_FHIR_URL=http://127.0.0.1:8091/fhir).

  GET /fhir/metadata
  GET /fhir/Patient?identifier=<system>|<value>   GET /fhir/Patient?phone=<E.164>   (telecom= too)
  GET /fhir/Patient/<id>
  GET /fhir/Encounter?patient=<id>                (or subject=Patient/<id>)
  GET /fhir/Appointment?patient=<id>              (or actor=Patient/<id>)
  GET /fhir/DiagnosticReport?subject=Patient/<id> (or patient=<id>)
Searches page with _count (default 20, at most 100) and _offset, with a `next` link; a failure of the
simulated HIS is a 503 OperationOutcome.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from patientline.patients.fhir import IDENTIFIER_SYSTEMS
from patientline.patients.his import Appointment, HisError, HisPatient, ResultStatus, Visit
from patientline.patients.simulator import SimulatedHis

FHIR_JSON = "application/fhir+json"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DIAGNOSTIC_SECTIONS = "http://terminology.hl7.org/CodeSystem/v2-0074"
ENCOUNTER_CLASSES = {"outpatient": "AMB", "inpatient": "IMP", "emergency": "EMER"}
DEFAULT_COUNT, MAX_COUNT = 20, 100


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def outcome(status: int, code: str, text: str) -> FhirResponse:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return FhirResponse(body, status_code=status)


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def patient_resource(record: HisPatient, systems: Mapping[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": record.his_id,
        "identifier": [{"system": systems[k], "value": v} for k, v in record.identifiers.items() if k in systems],
        "name": [{"use": "official", "text": record.name, "family": record.name[:1], "given": [record.name[1:]]}],
        "gender": record.sex,
        "telecom": [{"system": "phone", "value": p, "use": "mobile"} for p in record.phones],
    }
    if record.birth_date is not None:
        resource["birthDate"] = record.birth_date.isoformat()
    return resource


def encounter_resource(visit: Visit, his_id: str) -> dict[str, Any]:
    code = ENCOUNTER_CLASSES.get(visit.kind)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": visit.id,
        "status": visit.status or "finished",
        "class": {"system": ACT_CODE, "code": code} if code else {"code": "OTHER"},
        "subject": {"reference": f"Patient/{his_id}"},
        "period": {k: v for k, v in (("start", _instant(visit.start)), ("end", _instant(visit.end))) if v},
    }
    if visit.department:
        resource["serviceType"] = {"text": visit.department}
    if visit.doctor:
        resource["participant"] = [{"individual": {"display": visit.doctor}}]
    return resource


def appointment_resource(appointment: Appointment, his_id: str) -> dict[str, Any]:
    participants: list[dict[str, Any]] = [{"actor": {"reference": f"Patient/{his_id}"}, "status": "accepted"}]
    if appointment.doctor:
        participants.append(
            {"actor": {"reference": f"Practitioner/{appointment.id}-doctor", "display": appointment.doctor},
             "status": "accepted"}
        )  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appointment.id,
        "status": appointment.status or "booked",
        "participant": participants,
    }
    if appointment.start is not None:
        resource["start"] = _instant(appointment.start)
    if appointment.department:
        resource["serviceType"] = [{"text": appointment.department}]
    return resource


def report_resource(result: ResultStatus, his_id: str) -> dict[str, Any]:
    section = "RAD" if result.category == "imaging" else "LAB"
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": result.order_number.replace("_", "-")[:64],
        "identifier": [{"value": result.order_number}],
        "status": result.status,
        "category": [{"coding": [{"system": DIAGNOSTIC_SECTIONS, "code": section}]}],
        "code": {"text": result.name or result.order_number},
        "subject": {"reference": f"Patient/{his_id}"},
    }
    if result.issued_at is not None:
        resource["issued"] = _instant(result.issued_at)
    if result.conclusion:
        resource["conclusion"] = result.conclusion
    return resource


def _patient_of(request: Request, *names: str) -> str | None:
    """The patient id of `patient=<id>`, `subject=Patient/<id>` or `actor=Patient/<id>`."""
    for name in names:
        value = request.query_params.get(name)
        if value:
            return value.removeprefix("Patient/")
    return None


def create_fhir_app(his: SimulatedHis, *, identifier_systems: Mapping[str, str] | None = None,
                    token: str | None = None) -> FastAPI:  # fmt: skip
    systems = dict(identifier_systems or IDENTIFIER_SYSTEMS)
    kinds = {system: kind for kind, system in systems.items()}
    app = FastAPI(title="PatientLine simulated HIS (FHIR R4)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return outcome(401, "login", "a bearer token is required")
        return await call_next(request)

    @app.exception_handler(HisError)
    async def his_failed(request: Request, exc: HisError) -> FhirResponse:
        return outcome(503, "transient", "the simulated HIS failed")

    def bundle(request: Request, resources: list[dict[str, Any]]) -> FhirResponse:
        try:
            count = min(max(int(request.query_params.get("_count", DEFAULT_COUNT)), 1), MAX_COUNT)
            offset = max(int(request.query_params.get("_offset", 0)), 0)
        except ValueError:
            return outcome(400, "invalid", "_count and _offset are whole numbers")
        page = resources[offset : offset + count]
        base = str(request.url).split("?")[0]
        kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("_count", "_offset")]

        def link(relation: str, at: int) -> dict[str, str]:
            return {"relation": relation, "url": f"{base}?{urlencode([*kept, ('_count', count), ('_offset', at)])}"}

        links = [link("self", offset)]
        if offset + count < len(resources):
            links.append(link("next", offset + count))
        body = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "link": links,
            "entry": [
                {"fullUrl": f"{str(request.base_url).rstrip('/')}/fhir/{r['resourceType']}/{r['id']}",
                 "resource": r, "search": {"mode": "match"}}
                for r in page
            ],
        }  # fmt: skip
        return FhirResponse(body)

    @app.get("/fhir/metadata")
    async def metadata() -> FhirResponse:
        await his.check()
        resources = [{"type": t, "interaction": [{"code": "search-type"}]}
                     for t in ("Patient", "Encounter", "Appointment", "DiagnosticReport")]  # fmt: skip
        return FhirResponse({
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01", "kind": "instance",
            "fhirVersion": "4.0.1", "format": ["json"],
            "software": {"name": "PatientLine simulated HIS"},
            "rest": [{"mode": "server", "resource": resources}],
        })  # fmt: skip

    @app.get("/fhir/Patient")
    async def search_patients(request: Request) -> FhirResponse:
        identifier = request.query_params.get("identifier")
        phone = request.query_params.get("phone") or request.query_params.get("telecom")
        if identifier:
            system, _, value = identifier.rpartition("|")
            kind = kinds.get(system)
            found = await his.find_patients(kind=kind, value=value) if kind and value else []
        elif phone:
            found = await his.find_patients(phone=phone.removeprefix("phone|"))
        else:
            return outcome(400, "too-costly", "search patients by identifier or phone")
        return bundle(request, [patient_resource(p, systems) for p in found])

    @app.get("/fhir/Patient/{his_id}")
    async def read_patient(his_id: str) -> FhirResponse:
        person = his.people.get(his_id)
        if person is None:
            return outcome(404, "not-found", "no such patient")
        return FhirResponse(patient_resource(person.record, systems))

    @app.get("/fhir/Encounter")
    async def search_encounters(request: Request) -> FhirResponse:
        his_id = _patient_of(request, "patient", "subject")
        if his_id is None:
            return outcome(400, "too-costly", "search encounters by patient")
        return bundle(request, [encounter_resource(v, his_id) for v in await his.visits(his_id)])

    @app.get("/fhir/Appointment")
    async def search_appointments(request: Request) -> FhirResponse:
        his_id = _patient_of(request, "patient", "actor")
        if his_id is None:
            return outcome(400, "too-costly", "search appointments by patient")
        return bundle(request, [appointment_resource(a, his_id) for a in await his.appointments(his_id)])

    @app.get("/fhir/DiagnosticReport")
    async def search_reports(request: Request) -> FhirResponse:
        his_id = _patient_of(request, "subject", "patient")
        if his_id is None:
            return outcome(400, "too-costly", "search diagnostic reports by patient")
        return bundle(request, [report_resource(r, his_id) for r in await his.results(his_id)])

    return app


def serve(*, host: str, port: int, his: SimulatedHis, token: str | None = None) -> None:
    """Runs the facade until interrupted (the CLI's `patients his-simulator`)."""
    import uvicorn

    uvicorn.run(create_fhir_app(his, token=token), host=host, port=port, log_level="warning")
