"""The one way to the HIS: every call time-limited and behind a circuit breaker, answers kept as
snapshots, and the last snapshot (with its age) shown when the HIS is slow or down, so the workbench
always opens. One gateway per process (`AppState.his`), built from the settings: off, the simulator or
FHIR R4.

The breaker: `his_breaker_failures` failed calls in a row open it; while open, calls fail at once
(no waiting on a dead server); after `his_breaker_seconds` it is half-open and lets one trial call
through: success closes it, failure opens it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.config import Settings
from patientline.core.errors import DomainError, InvalidInput
from patientline.core.i18n import N_
from patientline.patients.his import HIS, Appointment, HisError, HisPatient, HisRecord, ResultStatus, Visit
from patientline.patients.models import HisSnapshot, Patient, PatientResult
from patientline.patients.simulator import SimulatedHis

log = logging.getLogger(__name__)

SLOW = N_("The hospital system is slow")
UNAVAILABLE = N_("The hospital system is unavailable")
NOT_CONNECTED = N_("The hospital system is not connected")
PROBLEMS = {"slow": SLOW, "unavailable": UNAVAILABLE, "not_connected": NOT_CONNECTED}
MODELS: dict[str, type[HisRecord]] = {"visits": Visit, "appointments": Appointment, "results": ResultStatus}

T = TypeVar("T", bound=HisRecord)
R = TypeVar("R")


class HisUnavailable(DomainError):
    """The HIS cannot answer a search now (slow, down, breaker open, or not connected)."""

    status_code = 503
    error_id = "his_unavailable"

    def __init__(self, reason: str = "unavailable") -> None:
        super().__init__(
            N_("The hospital system cannot answer right now: search the local index, or try again shortly."),
            details={"reason": reason},
        )


@dataclass(frozen=True)
class HisView(Generic[T]):
    """What the workbench shows of one kind: live from the HIS, or the last snapshot with its age
    (`fetched_at` None: nothing was ever fetched). `problem` is an English msgid to translate."""

    items: list[T]
    fetched_at: datetime | None
    live: bool
    problem: str | None = None

    @property
    def age_seconds(self) -> float | None:
        return None if self.fetched_at is None else max((clock.now() - self.fetched_at).total_seconds(), 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [item.model_dump(mode="json") for item in self.items],
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
            "age_seconds": self.age_seconds,
            "live": self.live,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class Overview:
    visits: HisView[Visit]
    appointments: HisView[Appointment]
    results: HisView[ResultStatus]

    @property
    def live(self) -> bool:
        return self.visits.live and self.appointments.live and self.results.live

    @property
    def problem(self) -> str | None:
        """The first problem, for one banner."""
        return self.visits.problem or self.appointments.problem or self.results.problem

    def to_json(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "problem": self.problem,
            "visits": self.visits.to_json(),
            "appointments": self.appointments.to_json(),
            "results": self.results.to_json(),
        }


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # slow, unavailable, not_connected


class Breaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, *, failures: int, seconds: float) -> None:
        self.threshold = failures
        self.seconds = seconds
        self.failures = 0  # in a row
        self.opened_until: datetime | None = None
        self._trial = False  # a half-open trial call is under way

    @property
    def state(self) -> str:
        if self.opened_until is None:
            return self.CLOSED
        return self.OPEN if clock.now() < self.opened_until and not self._trial else self.HALF_OPEN

    def admit(self, *, force: bool = False) -> bool:
        if self.opened_until is None:
            return True
        if force or (clock.now() >= self.opened_until and not self._trial):
            self._trial = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures, self.opened_until, self._trial = 0, None, False

    def abandoned(self) -> None:
        """A call given up before it answered (its caller went away): it proves nothing either way, so a
        half-open breaker lets the next call try."""
        self._trial = False

    def failed(self) -> None:
        self.failures += 1
        if self._trial or self.failures >= self.threshold:
            self.opened_until = clock.now() + timedelta(seconds=self.seconds)
        self._trial = False


class HisGateway:
    def __init__(
        self,
        his: HIS | None,
        *,
        timeout: float = 1.5,
        breaker_failures: int = 3,
        breaker_seconds: float = 30.0,
        not_connected_reason: str = "",
    ) -> None:
        self.his = his
        self.timeout = timeout
        self.breaker = Breaker(failures=breaker_failures, seconds=breaker_seconds)
        self.not_connected_reason = not_connected_reason  # why there is no HIS (shown to administrators)
        self.calls = 0
        self.last_latency_ms: float | None = None
        self.last_error_at: datetime | None = None
        self.last_error: str | None = None
        self.last_success_at: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> HisGateway:
        his: HIS | None = None
        reason = ""
        if settings.his_adapter == "simulator":
            his = SimulatedHis(
                latency_ms=settings.his_simulator_latency_ms, failure_rate=settings.his_simulator_failure_rate
            )
        elif settings.his_adapter == "fhir" and settings.his_fhir_url:
            from patientline.patients.fhir import FhirHis

            his = FhirHis(
                settings.his_fhir_url,
                token=settings.his_fhir_token.get_secret_value() or None,
                timeout=settings.his_timeout_seconds,
                timezone=settings.timezone,
            )
        elif settings.his_adapter == "fhir":
            reason = "PATIENTLINE_HIS_FHIR_URL is not set"
        else:
            reason = "PATIENTLINE_HIS_ADAPTER is off"
        return cls(
            his,
            timeout=settings.his_timeout_seconds,
            breaker_failures=settings.his_breaker_failures,
            breaker_seconds=settings.his_breaker_seconds,
            not_connected_reason=reason,
        )

    @property
    def adapter(self) -> str:
        return self.his.name if self.his is not None else "off"

    @property
    def simulator(self) -> SimulatedHis | None:
        return self.his if isinstance(self.his, SimulatedHis) else None

    def run_beside(self, work: Coroutine[Any, Any, None]) -> None:
        """A task that lives as long as the gateway (the demo's results loop); `close` ends it."""
        self._tasks.add(asyncio.create_task(work, name="his-beside"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.his is not None:
            await self.his.close()

    # ---- calls ------------------------------------------------------------------------------------

    async def _call(self, what: str, call: Callable[[HIS], Awaitable[R]], *, force: bool = False) -> R:
        """One HIS call, time-limited and through the breaker; `_Failed` with the reason otherwise."""
        if self.his is None:
            raise _Failed("not_connected")
        if not self.breaker.admit(force=force):
            raise _Failed("unavailable")
        self.calls += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await call(self.his)
        except asyncio.CancelledError:
            self.breaker.abandoned()
            raise
        except TimeoutError:
            self._failed(what, started, "the HIS did not answer in time")
            raise _Failed("slow") from None
        except HisError as exc:
            self._failed(what, started, str(exc)[:300])
            raise _Failed("unavailable") from None
        except Exception as exc:  # an adapter's bug must not reach the agent either
            self._failed(what, started, f"unexpected {type(exc).__name__}")
            log.exception("HIS adapter failed unexpectedly", extra={"call": what, "adapter": self.adapter})
            raise _Failed("unavailable") from None
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        self.last_success_at = clock.now()
        self.breaker.succeeded()
        return answer

    def _failed(self, what: str, started: float, error: str) -> None:
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        self.last_error_at, self.last_error = clock.now(), error
        self.breaker.failed()
        log.warning(
            "HIS call failed",
            extra={"call": what, "adapter": self.adapter, "error": error, "breaker": self.breaker.state},
        )

    async def _attempt(self, what: str, call: Callable[[HIS], Awaitable[R]]) -> R | _Failed:
        try:
            return await self._call(what, call)
        except _Failed as failed:
            return failed

    # ---- the workbench's view of a patient --------------------------------------------------------

    async def overview(self, session: AsyncSession, patient: Patient) -> Overview:
        """Visits, appointments and results, fetched in parallel; each live, or its last snapshot with
        its age and why. Writes snapshots (and result statuses) in the caller's transaction, which the
        caller commits. Never raises for HIS trouble."""
        his_id = patient.his_id
        if his_id is None:  # a prospective patient: the HIS does not know them yet
            now = clock.now()
            return Overview(HisView([], now, True), HisView([], now, True), HisView([], now, True))
        visits, appointments, results = await asyncio.gather(
            self._attempt("visits", lambda his: his.visits(his_id)),
            self._attempt("appointments", lambda his: his.appointments(his_id)),
            self._attempt("results", lambda his: his.results(his_id)),
        )
        views = await self._views(session, patient.id, {"visits": visits, "appointments": appointments,
                                                        "results": results})  # fmt: skip
        overview = Overview(
            visits=_typed(views["visits"], Visit),
            appointments=_typed(views["appointments"], Appointment),
            results=_typed(views["results"], ResultStatus),
        )
        if overview.results.live:
            await self._record_results(session, patient.id, overview.results.items)
        return overview

    async def refresh_results(self, session: AsyncSession, patient: Patient) -> HisView[ResultStatus]:
        """The patient's result statuses from the HIS, recorded (the sweep for waiting subscriptions)."""
        if patient.his_id is None:
            return HisView([], clock.now(), True)
        his_id = patient.his_id
        answer = await self._attempt("results", lambda his: his.results(his_id))
        view = _typed((await self._views(session, patient.id, {"results": answer}))["results"], ResultStatus)
        if view.live:
            await self._record_results(session, patient.id, view.items)
        return view

    async def _views(
        self, session: AsyncSession, patient_id: int, answers: dict[str, Sequence[HisRecord] | _Failed]
    ) -> dict[str, HisView[Any]]:
        """Live answers become views and snapshots (one statement); failed kinds read their snapshots
        (one query)."""
        now = clock.now()
        views: dict[str, HisView[Any]] = {}
        fresh: dict[str, list[dict[str, Any]]] = {}
        failed: dict[str, _Failed] = {}
        for kind, answer in answers.items():
            if isinstance(answer, _Failed):
                failed[kind] = answer
            else:
                views[kind] = HisView(list(answer), now, True)
                fresh[kind] = [item.model_dump(mode="json") for item in answer]
        if fresh:
            await _save_snapshots(session, patient_id, fresh, now)
        if failed:
            snapshots = {
                row.kind: row
                for row in await session.scalars(
                    select(HisSnapshot).where(HisSnapshot.patient_id == patient_id, HisSnapshot.kind.in_(failed))
                )
            }
            for kind, failure in failed.items():
                snapshot = snapshots.get(kind)
                problem = PROBLEMS[failure.reason]
                if snapshot is None:
                    views[kind] = HisView([], None, False, problem)
                    continue
                items = []
                for data in snapshot.data or []:
                    try:
                        items.append(MODELS[kind].model_validate(data))
                    except ValidationError:  # kept by an older version in another shape
                        continue
                views[kind] = HisView(items, snapshot.fetched_at, False, problem)
        return views

    async def _record_results(self, session: AsyncSession, patient_id: int, results: Sequence[ResultStatus]) -> None:
        """Statuses that changed go to `patient_results` (the simulator counts as FHIR: it stands in for the
        FHIR HIS), so a status that became ready notifies the patients waiting for it."""
        from patientline.patients import results as patient_results

        held = {
            row.order_number: (row.status, row.issued_at)
            for row in await session.execute(
                select(PatientResult.order_number, PatientResult.status, PatientResult.issued_at).where(
                    PatientResult.patient_id == patient_id
                )
            )
        }
        for result in results:
            known = held.get(result.order_number.strip())
            if known is not None and known[0] == result.status and result.issued_at in (None, known[1]):
                continue  # nothing new: no write
            try:
                await patient_results.record_status(session, patient_id=patient_id, status=result, source="fhir")
            except InvalidInput as exc:  # a status outside FHIR's list, an overlong order number: not kept
                log.warning("HIS result status not kept", extra={"patient_id": patient_id, "error_id": exc.error_id})

    # ---- search and administration ----------------------------------------------------------------

    async def search(
        self, *, kind: str | None = None, value: str | None = None, phone: str | None = None
    ) -> list[HisPatient]:
        """Patients the HIS knows by an identifier or a phone number; `HisUnavailable` when it cannot say."""
        try:
            return await self._call("search", lambda his: his.find_patients(kind=kind, value=value, phone=phone))
        except _Failed as failed:
            raise HisUnavailable(failed.reason) from None

    async def test_connection(self) -> dict[str, Any]:
        """A call now, even through an open breaker (which a success closes): the admin page's test."""
        try:
            await self._call("check", _check, force=True)
        except _Failed as failed:
            return {"ok": False, "reason": failed.reason, "problem": PROBLEMS[failed.reason], **self.status()}
        return {"ok": True, "reason": None, "problem": None, **self.status()}

    def status(self) -> dict[str, Any]:
        state = self.breaker.state
        return {
            "adapter": self.adapter,
            "connected": self.his is not None,
            "not_connected_reason": self.not_connected_reason or None,
            "state": state,
            "failures": self.breaker.failures,
            "threshold": self.breaker.threshold,
            "open_until": self.breaker.opened_until.isoformat()
            if self.breaker.opened_until and state == Breaker.OPEN
            else None,
            "timeout_seconds": self.timeout,
            "calls": self.calls,
            "last_latency_ms": None if self.last_latency_ms is None else round(self.last_latency_ms, 1),
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "last_error": self.last_error,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
        }


async def _check(his: HIS) -> None:
    check = getattr(his, "check", None)
    if check is not None:
        await check()
    else:
        await his.find_patients(kind="mrn", value="PATIENTLINE-CONNECTION-TEST")


def _typed(view: HisView[Any], model: type[T]) -> HisView[T]:
    return view


async def _save_snapshots(
    session: AsyncSession, patient_id: int, data: dict[str, list[dict[str, Any]]], at: datetime
) -> None:
    """One row per patient and kind, replaced in one statement (two agents may open the same patient)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{"patient_id": patient_id, "kind": kind, "data": items, "fetched_at": at} for kind, items in data.items()]
    statement = insert(HisSnapshot).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["patient_id", "kind"],
        set_={"data": statement.excluded.data, "fetched_at": statement.excluded.fetched_at},
    )
    await session.execute(statement)


# ---- the process's gateway, for the worker's sweeps ----------------------------------------------

_current: HisGateway | None = None


def install(gateway: HisGateway) -> None:
    global _current  # one gateway per process, set by the app factory
    _current = gateway


def current() -> HisGateway | None:
    return _current
