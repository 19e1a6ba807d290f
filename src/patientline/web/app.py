"""The application factory: one FastAPI app serving the API, the pages and the event stream."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from patientline.channels import scheduled as chat_sweeps  # noqa: F401 - idle and stranded chats
from patientline.contacts import scheduled as contact_sweeps  # noqa: F401 - retention of old contacts
from patientline.core import scheduled  # noqa: F401 - registers the housekeeping sweepers
from patientline.core.config import Settings, get_settings
from patientline.core.db import Database
from patientline.core.events import make_bus
from patientline.core.jobs import Worker
from patientline.patients import gateway as his_gateway
from patientline.patients import sweeps as patient_sweeps  # noqa: F401 - results of waiting subscriptions
from patientline.routing.demo_traffic import DemoTraffic
from patientline.routing.engine import Engine
from patientline.voice import retention as recording_sweeps  # noqa: F401 - retention of call recordings
from patientline.web import errors
from patientline.web.middleware import EdgeMiddleware
from patientline.web.state import AppState
from patientline.workorders import scheduled as workorder_sweeps  # noqa: F401 - deadline sweeps, recomputation

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Young collections large enough that a request's short-lived objects die young: few reach the old
# generation, so full collections, which visit every open stream's few hundred objects (a third of a
# second at 2,000 chat streams, every few seconds under load with the default 700), stay rare.
GC_THRESHOLDS = (10_000, 20, 100)


def routers() -> list[object]:
    from patientline.assistant import router as assistant_router
    from patientline.channels import chat_desk_router, chat_pages, webchat_router
    from patientline.channels import pages as channels_pages
    from patientline.channels import router as channels_router
    from patientline.contacts import pages as contacts_pages
    from patientline.contacts import router as contacts_router
    from patientline.core import admin
    from patientline.core.auth import pages as auth_pages
    from patientline.core.auth import router as auth_router
    from patientline.core.pages import router as admin_pages
    from patientline.directory import pages as directory_pages
    from patientline.directory import router as directory_router
    from patientline.knowledge import pages as knowledge_pages
    from patientline.knowledge import (
        panel_pages,
        portal_pages,
        timetable_pages,
        timetable_router,
        transfer_pages,
        transfer_router,
    )
    from patientline.knowledge import router as knowledge_router
    from patientline.knowledge.quiz_pages import router as quiz_pages
    from patientline.knowledge.quiz_router import router as quiz_api
    from patientline.patients import his_pages, results_router, workbench_pages
    from patientline.patients import router as patients_router
    from patientline.routing import pages as routing_pages
    from patientline.routing import reports_pages, staffing_pages
    from patientline.routing import router as routing_router
    from patientline.voice import pages as voice_pages
    from patientline.voice import router as voice_router
    from patientline.web import home, system
    from patientline.workorders import pages as workorders_pages
    from patientline.workorders import reports_router as workorder_reports
    from patientline.workorders import router as workorders_router
    from patientline.workorders import supervision_pages as workorder_supervision

    return [
        system.router,
        auth_router.router,
        assistant_router.router,
        auth_pages.router,
        directory_router.router,
        directory_pages.router,
        quiz_api,
        quiz_pages,
        knowledge_router.router,
        knowledge_router.public_router,
        knowledge_pages.router,
        panel_pages.router,
        portal_pages.router,
        timetable_router.router,
        timetable_pages.router,
        transfer_router.router,
        transfer_pages.router,
        workorder_reports.router,  # before workorders_router: /api/workorders/{order_id} would take /reports
        workorder_supervision.router,  # before any /workorders/{order_id} page
        workorders_router.router,
        workorders_pages.router,
        channels_router.router,
        chat_desk_router.router,
        webchat_router.router,
        chat_pages.router,
        channels_pages.router,
        staffing_pages.router,
        reports_pages.router,
        routing_router.router,
        routing_pages.router,
        patients_router.router,
        results_router.router,
        workbench_pages.router,
        his_pages.router,
        contacts_router.router,
        contacts_pages.router,
        voice_router.router,
        voice_pages.router,
        admin.router,
        admin_pages,
        home.router,
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    bus = make_bus(settings.redis_url)
    state = AppState(settings=settings, db=Database(settings.effective_database_url, bus=bus), bus=bus)
    state.his = his_gateway.HisGateway.from_settings(settings)
    bus.subscribe(state.sessions.on_event)
    bus.subscribe(state.directory_cache.on_event)
    state.knowledge.attach(state.db, timezone=settings.timezone)
    bus.subscribe(state.knowledge.on_event)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.bus.start()
        his_gateway.install(state.his)
        if "worker" in settings.role_set:
            state.worker = Worker(state.db, settings=settings)
            state.worker.start()
        if "router" in settings.role_set:
            state.routing = await Engine(state.db, settings=settings, bus=state.bus).start()
            if settings.demo_traffic:
                state.routing.run_beside(DemoTraffic(state.routing).run())
            if "voice" in settings.role_set:
                from patientline.voice.controller import start_voice

                state.voice = await start_voice(settings, state.db, state.bus, state.routing)
        if settings.hl7_listen and "worker" in settings.role_set:
            from patientline.patients.mllp import start_listener

            state.hl7 = await start_listener(state.db, settings)
        if settings.demo_traffic and "worker" in settings.role_set and state.his.simulator is not None:
            from patientline.patients.demo import DemoResults

            state.his.run_beside(DemoResults(state.db, state.his, settings).run())  # results turn ready
        gc.collect()
        gc.freeze()  # what start-up made lives as long as the process: keep it out of every collection
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            if state.hl7 is not None:
                await state.hl7.stop()
            if state.voice is not None:
                await state.voice.stop()
            if state.routing is not None:
                await state.routing.stop()
            if state.worker is not None:
                await state.worker.stop()
            await state.bus.stop()
            await state.his.close()
            await state.db.dispose()

    app = FastAPI(
        title="PatientLine",
        version="0.1.0",
        description='Patient-service contact centre for hospitals. Errors answer `{"error_id", "message", "details"}`.',
        lifespan=lifespan,
    )
    app.state.pl = state
    errors.install(app)
    for router in routers():
        app.include_router(router)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        default_locale=settings.default_locale,
    )
    return app
