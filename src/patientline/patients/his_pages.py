"""The HIS administration page (/admin/his): which adapter this server uses, the circuit breaker and the
last call's latency, a connection test, and for the simulated HIS its delay and failure rate, so the
degraded mode can be shown in the demo. Changes are audited. The state shown is this server process's
(each web node has its own gateway and breaker)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from patientline.core import audit
from patientline.core.auth.permissions import Permission
from patientline.core.errors import Conflict
from patientline.core.i18n import N_, gettext
from patientline.core.validation import StrictModel
from patientline.patients.gateway import HisGateway
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)

STATE_LABELS = {
    "closed": N_("Closed: calls go through"),
    "open": N_("Open: calls are refused until the wait is over"),
    "half_open": N_("Half-open: the next call is a trial"),
}
ADAPTER_LABELS = {"off": N_("Not connected"), "simulator": N_("Simulated HIS (demo)"), "fhir": N_("FHIR R4")}


class SimulatorSettings(StrictModel):
    latency_ms: Annotated[int, Field(ge=0, le=60_000, strict=True)]
    failure_percent: Annotated[int, Field(ge=0, le=100, strict=True)]


def _gateway(request: Request) -> HisGateway:
    return app_state(request).his


def _context(request: Request) -> dict[str, Any]:
    gateway = _gateway(request)
    simulator = gateway.simulator
    settings = app_state(request).settings
    return {
        "status": gateway.status(),
        "state_label": STATE_LABELS[gateway.breaker.state],
        "adapter_label": ADAPTER_LABELS.get(gateway.adapter, gateway.adapter),
        "simulator": None
        if simulator is None
        else {"latency_ms": simulator.latency_ms, "failure_percent": round(simulator.failure_rate * 100)},
        "breaker_seconds": gateway.breaker.seconds,
        "open_until": gateway.breaker.opened_until,
        "last_success_at": gateway.last_success_at,
        "last_error_at": gateway.last_error_at,
        "fhir_url": settings.his_fhir_url if gateway.adapter == "fhir" else "",
    }


@router.get("/admin/his")
async def his_page(request: Request, actor: CurrentActor) -> Response:
    actor.require(Permission.MANAGE_PATIENTS)
    template = "patients/his_status.html" if "hx-request" in request.headers else "patients/his.html"
    return render(request, template, _context(request))


@router.post("/admin/his/test")
async def test_connection(request: Request, actor: CurrentActor, session: Session) -> JSONResponse:
    """One call to the HIS now, even through an open breaker; a success closes the breaker."""
    actor.require(Permission.MANAGE_PATIENTS)
    result = await _gateway(request).test_connection()
    problem = result["problem"]
    result["message"] = gettext(problem) if problem else None  # in the reader's language
    async with session.begin():
        audit.record(
            session, actor=actor, action="his.connection_tested", target_type="his", target_id=result["adapter"],
            after={"ok": result["ok"], "reason": result["reason"], "latency_ms": result["last_latency_ms"]},
        )  # fmt: skip
    return JSONResponse(result)


@router.put("/admin/his/simulator")
async def change_simulator(
    request: Request, body: SimulatorSettings, actor: CurrentActor, session: Session
) -> JSONResponse:
    """The simulated HIS's delay and failure rate, on this server, until it restarts."""
    actor.require(Permission.MANAGE_PATIENTS)
    simulator = _gateway(request).simulator
    if simulator is None:
        raise Conflict(N_("This server does not use the simulated HIS."), error_id="not_simulator")
    before = {"latency_ms": simulator.latency_ms, "failure_percent": round(simulator.failure_rate * 100)}
    simulator.configure(latency_ms=body.latency_ms, failure_rate=body.failure_percent / 100)
    async with session.begin():
        audit.record(
            session, actor=actor, action="his.simulator_changed", target_type="his", target_id="simulator",
            before=before, after=body.model_dump(),
        )  # fmt: skip
    return JSONResponse({**body.model_dump(), "status": _gateway(request).status()})
