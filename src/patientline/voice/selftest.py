"""The line's self-test (CH6): every `voice_self_test_minutes` a free media worker calls the hotline like
a patient would, through Kamailio, and checks that the line answers, that a prompt is heard, and that the
IVR (the keys `voice_self_test_keys` pressed) reaches an open queue, a callback or a voicemail.

The answering side knows the call for a test by a token in `X-PatientLine-Self-Test`, new for each
call: it runs the live flow as for anyone but puts nothing in the router, records nothing and writes no
call record; the result is a `VoiceSelfTest` row. A failure shows on the wallboard and is texted to the
on-call contact (`voice_oncall_phone`, SMS template `line_alarm`), at most once an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.errors import Conflict, DomainError
from patientline.core.i18n import N_, gettext
from patientline.voice.link import WorkerGone
from patientline.voice.media import CallerGone, Media
from patientline.voice.models import VoiceSelfTest
from patientline.voice.ports import SELF_TEST_HEADER
from patientline.voice.schemas import SelfTestRead

log = logging.getLogger(__name__)

PROBE_LEG = "probe"
ANSWER_LIMIT_S = 10.0  # about three rings
LISTEN_S = 2.5  # what the caller hears first: the greeting
IVR_LIMIT_S = 120.0
PROMPT_LEVEL = 200.0  # RMS of 16-bit audio: a spoken prompt is in the thousands, silence near 0
FIRST_RUN_S = 60.0  # the first test after the line starts
ALARM_TEMPLATE = "line_alarm"
PASSING = ("queue", "callback", "voicemail")
PROBLEMS = {
    "not_answered": N_("the line did not answer"),
    "no_prompt": N_("no greeting was heard"),
    "no_queue": N_("the menu did not reach a queue"),
    "queue_closed": N_("the menu led to a closed queue"),
    "worker_failed": N_("a media worker failed"),
    "error": N_("the test could not run"),
}
ALARMS = {
    "texted": N_("Texted to the on-call phone (message {id})"),
    "no_oncall_phone": N_("No on-call phone is set"),
    "not_texted": N_("Not texted: {why}"),
}


@dataclass
class Probe:
    """What the answering side saw of a test call: where the IVR sent it."""

    outcome: str = ""
    path: list[str] = field(default_factory=list)
    queue_open: bool = True


@dataclass
class SelfTester:
    """Runs the test calls for the voice role; `pending` maps a test call's token to its probe's answer."""

    controller: Any  # voice.controller.Controller (which imports this module)
    recordings: Path
    pending: dict[str, asyncio.Future[Probe]] = field(default_factory=dict)
    _loop: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def settings(self) -> Any:
        return self.controller.plant.settings

    def start(self) -> None:
        if self.settings.voice_self_test_minutes > 0:
            self._loop = asyncio.create_task(self._every(), name="voice-self-test")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def _every(self) -> None:
        await asyncio.sleep(FIRST_RUN_S)
        while True:
            try:
                await self.run()
            except Conflict:
                log.info("line self-test skipped: the line is busy")
            except Exception:
                log.exception("line self-test failed to run")
            await asyncio.sleep(self.settings.voice_self_test_minutes * 60)

    async def run(self) -> VoiceSelfTest:
        """One test call, its result stored (and the alarm raised when it failed)."""
        async with self._lock:
            result = await self._call()
            async with self.controller.plant.db.sessions() as session, session.begin():
                if not result.ok:
                    result.alarm = await _alarm(session, self.settings, result)
                session.add(result)
            return result

    async def _call(self) -> VoiceSelfTest:
        number = next(n for n in self.settings.voice_numbers.split(",") if n.strip())
        result = VoiceSelfTest(started_at=clock.now(), ok=False, number=number, ivr_path=[], problem="", alarm="")
        link = self.controller.free_link()
        if link is None or self.controller.free_count() < 2:  # one calls, another answers
            raise Conflict("Every line is busy; the line is tested again later.", error_id="lines_busy")
        token = secrets.token_hex(16)
        answer: asyncio.Future[Probe] = asyncio.get_running_loop().create_future()
        self.pending[token] = answer
        media = Media(link, PROBE_LEG)
        self.controller.reserve(link, media)
        try:
            result.problem = await self._probe(media, number, token, answer, result)
        except WorkerGone:
            result.problem = "worker_failed"
        except Exception:
            log.exception("line self-test call failed")
            result.problem = "error"
        finally:
            self.pending.pop(token, None)
            with contextlib.suppress(WorkerGone):
                await media.hang_up(PROBE_LEG)
            self.controller.release(link)
        result.ok = not result.problem
        return result

    async def _probe(self, media: Media, number: str, token: str, answer: asyncio.Future[Probe],
                     result: VoiceSelfTest) -> str:  # fmt: skip
        front = self.controller.plant.front
        began = clock.monotonic()
        await media.send(cmd="dial", leg=PROBE_LEG, uri=f"sip:{number}@{front}", headers={SELF_TEST_HEADER: token})
        try:
            if not await _answered(media, ANSWER_LIMIT_S):
                return "not_answered"
        except CallerGone:  # refused: no worker free, no flow on the number
            return "not_answered"
        result.answer_ms = round((clock.monotonic() - began) * 1000)
        try:
            result.prompt_level = await self._listen(media, token)
            if result.prompt_level < PROMPT_LEVEL:
                return "no_prompt"
            if self.settings.voice_self_test_keys:
                await media.send(cmd="send_dtmf", leg=PROBE_LEG, digits=self.settings.voice_self_test_keys)
        except CallerGone:
            pass  # the line ended the call early: its report says how far the IVR went
        try:
            probe = await asyncio.wait_for(asyncio.shield(answer), IVR_LIMIT_S)
        except TimeoutError:
            return "no_queue"
        result.outcome, result.ivr_path = probe.outcome, probe.path
        if probe.outcome not in PASSING:
            return "no_queue"
        return "" if probe.queue_open else "queue_closed"

    async def _listen(self, media: Media, token: str) -> float:
        """The loudness of what the test caller hears first (the file is deleted after)."""
        path = self.recordings / "self-test" / f"{token}.wav"
        await media.send(cmd="record", name="probe", file=str(path), legs=[PROBE_LEG])
        await asyncio.sleep(LISTEN_S)
        await media.send(cmd="stop_record", name="probe")
        await _recorded(media, 3.0)
        try:
            return _loudness(path)
        finally:
            path.unlink(missing_ok=True)

    def answering(self, token: str) -> Callable[[Probe], None] | None:
        """For the answering side: how to report a test call's IVR outcome, if `token` is one of ours."""
        future = self.pending.get(token) if token else None
        if future is None:
            return None
        return lambda probe: None if future.done() else future.set_result(probe)


async def _answered(media: Media, within: float) -> bool:
    deadline = clock.monotonic() + within
    while (left := deadline - clock.monotonic()) > 0:
        event = await media.next_event(left)
        if event is None:
            return False
        if event.get("leg") == PROBE_LEG and event.get("event") == "answered":
            return True
        if event.get("leg") == PROBE_LEG and event.get("event") == "error":
            return False
    return False


async def _recorded(media: Media, within: float) -> None:
    deadline = clock.monotonic() + within
    while (left := deadline - clock.monotonic()) > 0:
        event = await media.next_event(left)
        if event is None or event.get("event") == "recorded":
            return


def _loudness(path: Path) -> float:
    """RMS of a 16-bit WAV (0 when it is missing or empty)."""
    try:
        with wave.open(str(path)) as recording:
            data = recording.readframes(recording.getnframes())
    except (OSError, wave.Error, EOFError):
        return 0.0
    samples = memoryview(data[: len(data) // 2 * 2]).cast("h")
    if not len(samples):
        return 0.0
    return float((sum(s * s for s in samples) / len(samples)) ** 0.5)


async def _alarm(session: AsyncSession, settings: Any, result: VoiceSelfTest) -> str:
    """Texts the on-call contact (once an hour at most); what happened, for the record."""
    from patientline.channels import sms

    if not settings.voice_oncall_phone.strip():
        return "no_oncall_phone"
    local = result.started_at.astimezone(ZoneInfo(settings.timezone))
    problem = gettext(PROBLEMS.get(result.problem, result.problem))
    variables = {"hotline": result.number, "time": f"{local:%H:%M}", "problem": problem}
    try:
        message = await sms.send(session, phone=settings.voice_oncall_phone, template=ALARM_TEMPLATE,
                                 variables=variables, idempotency_key=f"voice-self-test:{local:%Y%m%d%H}")  # fmt: skip
    except DomainError as exc:
        log.warning("line alarm not texted", extra={"error_id": exc.error_id})
        return f"not_texted:{exc.error_id}"[:200]
    return f"texted:{message.id}"


async def recent(session: AsyncSession, limit: int) -> list[SelfTestRead]:
    """The latest test calls, newest first."""
    query = select(VoiceSelfTest).order_by(VoiceSelfTest.started_at.desc(), VoiceSelfTest.id.desc()).limit(limit)
    return [shown(row) for row in await session.scalars(query)]


def shown(row: VoiceSelfTest) -> SelfTestRead:
    """A test call as the API and the page show it, its problem in the reader's language."""
    values = {name: getattr(row, name) for name in SelfTestRead.model_fields if not name.endswith("_text")}
    text = gettext(PROBLEMS[row.problem]) if row.problem in PROBLEMS else row.problem
    return SelfTestRead(**values, problem_text=text, alarm_text=_alarm_text(row.alarm))


def _alarm_text(alarm: str) -> str:
    """`texted:12`, `no_oncall_phone` or `not_texted:invalid_input`, in the reader's language."""
    code, _, detail = alarm.partition(":")
    if code not in ALARMS:
        return alarm
    return gettext(ALARMS[code]).format(id=detail, why=detail)
