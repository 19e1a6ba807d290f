"""The chat assistant's turn: what it answers to one patient message.

Order of business: the emergency guard (an instruction to call 120 and nothing else), then a question
the assistant asked (a complaint or a message being taken), then the intent. It answers only from
published public knowledge, above a confidence threshold; when unsure it offers the best three as
buttons, or says so and offers a person. It never diagnoses: triage names departments, with the words
that point there. Handing over to a person is the caller's work (`handoff`): the turn only asks for it."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import weakref
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant import service as triage_service
from patientline.assistant.emergency import Alarm, emergency_in
from patientline.assistant.entities import Entities, Intent, day_in, entities_of, intent_of
from patientline.channels import policy
from patientline.core import clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import DomainError, InvalidInput
from patientline.core.i18n import current_locale, gettext
from patientline.directory.models import Department
from patientline.knowledge import candidates, timetables
from patientline.knowledge.live_index import Filters, LiveSearch
from patientline.knowledge.models import Doctor
from patientline.knowledge.sanitize import plain_text
from patientline.knowledge.search.text import fold
from patientline.workorders import service as workorders
from patientline.workorders.forms import FieldKind, FormField, clean_values, parse_fields
from patientline.workorders.models import WorkOrderType
from patientline.workorders.schemas import OrderCreate

log = logging.getLogger(__name__)

BOT = Actor(user_id=None, username="assistant", display_name="Assistant", roles=(), via="system",
            permissions=frozenset({Permission.READ_KNOWLEDGE, Permission.CREATE_WORK_ORDERS}))  # fmt: skip
CHOICES = 3
COMPLAINT_TYPE = "complaint"
MESSAGE_TYPE = "callback"
ENOUGH_TO_GO_ON = 12  # characters: a complaint this long already says what happened
TRIES = 3
NAMES_SECONDS = 30.0
NO = re.compile(r"^(不|否|没|无|no\b)")


@dataclass
class Reply:
    kind: str  # text, answer, choices, triage, emergency, timetable, handoff, registered
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    intent: str
    replies: list[Reply] = field(default_factory=list)
    dialog: dict[str, Any] = field(default_factory=dict)  # the question the assistant is waiting on
    handoff: bool = False
    department: str | None = None  # a department the patient named: its seat group may take the chat
    alarm: Alarm | None = None
    work_order_id: int | None = None

    def say(self, kind: str, text: str, **data: Any) -> Turn:
        self.replies.append(Reply(kind, text, data))
        return self


@dataclass(frozen=True)
class Patient:
    """What the assistant knows of who is writing."""

    conversation_ref: str
    phone: str | None
    patient_id: int | None


@dataclass(frozen=True)
class Context:
    """What a turn knows besides the message: who writes, the knowledge, the answering threshold, the day."""

    patient: Patient
    search: LiveSearch
    confidence: float
    today: date


async def respond(
    session: AsyncSession, *, text: str, choice: str | None, dialog: dict[str, Any], context: Context
) -> Turn:
    if alarm := emergency_in(text):
        return Turn("emergency", alarm=alarm).say(
            "emergency", alarm.instruction(current_locale.get()), category=alarm.category
        )
    if choice is not None:
        return await _chosen(choice, context.search)
    entities = await _entities(session, text, context.today)
    turn = await _understood(session, text=text, entities=entities, dialog=dialog, context=context)
    turn.department = entities.department
    return turn


async def _understood(
    session: AsyncSession, *, text: str, entities: Entities, dialog: dict[str, Any], context: Context
) -> Turn:
    patient, today = context.patient, context.today
    intent = intent_of(text, entities)
    if dialog.get("flow") and intent != Intent.HUMAN:
        return await _continue(session, text=text, dialog=dialog, patient=patient, today=today)
    if intent == Intent.HUMAN:
        return _person(intent, gettext("I'll put you through to a person. Please wait a moment."))
    if intent == Intent.BOOKING:
        return _person(intent, gettext("A person will help you with appointments. Please wait a moment."))
    if intent == Intent.COMPLAINT:
        return await _complaint(session, text=text, patient=patient, today=today)
    if intent == Intent.TIMETABLE and entities.doctor is not None:
        return await _timetable(session, entities.doctor, entities, today)
    if intent == Intent.TRIAGE:
        return await _triage(session, text, entities, asked=True)
    return await _question(session, text=text, entities=entities, search=context.search, confidence=context.confidence)


def _person(intent: str, text: str) -> Turn:
    turn = Turn(intent, handoff=True)
    return turn.say("handoff", text)


async def _entities(session: AsyncSession, text: str, today: date) -> Entities:
    doctors, departments = await NAMES.get(session)
    return entities_of(text, today=today, doctors=doctors, departments=departments)


class Names:
    """The active doctors' and departments' names, read at most every NAMES_SECONDS per database and
    process: every message looks for them, and a new doctor may take that long to be recognised."""

    def __init__(self) -> None:
        self.by_database: weakref.WeakKeyDictionary[object, tuple[float, list[str], list[str]]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self, session: AsyncSession) -> tuple[list[str], list[str]]:
        database = session.bind
        read_at, doctors, departments = self.by_database.get(database, (-math.inf, [], []))
        if clock.monotonic() - read_at >= NAMES_SECONDS:
            doctors = list(await session.scalars(select(Doctor.name).where(Doctor.is_active.is_(True))))
            departments = list(await session.scalars(select(Department.name).where(Department.is_active.is_(True))))
            self.by_database[database] = (clock.monotonic(), doctors, departments)
        return doctors, departments


NAMES = Names()


# --- knowledge -----------------------------------------------------------------------------------------


async def _question(
    session: AsyncSession, *, text: str, entities: Entities, search: LiveSearch, confidence: float
) -> Turn:
    result = await search.search(text, limit=CHOICES, filters=Filters(public_only=True))
    hits = [hit for hit in result.hits if int(hit.doc_id) in search.items]
    if hits and hits[0].confidence >= confidence:
        return _answer(Turn(Intent.QUESTION.value), search, int(hits[0].doc_id))
    if entities.symptoms:
        return await _triage(session, text, entities, asked=False)
    await _collect(session, text)
    turn = Turn(Intent.QUESTION.value)
    if hits and not result.no_good_match:
        options = [{"choice": f"item:{hit.doc_id}", "label": search.items[int(hit.doc_id)].question} for hit in hits]
        return turn.say("choices", gettext("Did you mean one of these?"), options=[*options, _person_option()])
    return turn.say(
        "choices", gettext("Sorry, I don't know the answer to that. Would you like to ask a person?"),
        options=[_person_option()],
    )  # fmt: skip


async def _collect(session: AsyncSession, text: str) -> None:
    """The question goes to the editors as a candidate; the answer to the patient goes out regardless."""
    try:
        async with session.begin_nested():
            await candidates.suggest(session, actor=BOT, text=text, source="chat")
    except SQLAlchemyError:
        log.exception("an unanswered chat question could not be collected")


def _person_option() -> dict[str, str]:
    return {"choice": "human", "label": gettext("Talk to a person")}


def _answer(turn: Turn, search: LiveSearch, item_id: int) -> Turn:
    item = search.items[item_id]
    html = str(item.content.get("answer_html", ""))
    return turn.say(
        "answer", plain_text(html) or str(item.content.get("spoken", "")),
        item_id=item_id, question=item.question, html=html, url=f"/faq/items/{item_id}",
    )  # fmt: skip


async def _chosen(choice: str, search: LiveSearch) -> Turn:
    kind, _, value = choice.partition(":")
    if kind == "item" and value.isdigit() and int(value) in search.items:
        item = search.items[int(value)]
        if item.content.get("public", True):
            return _answer(Turn(Intent.QUESTION.value), search, int(value))
    if kind == "human":
        return _person(Intent.HUMAN.value, gettext("I'll put you through to a person. Please wait a moment."))
    if kind == "message":
        return Turn("message", dialog={"flow": "message", "step": "what"}).say(
            "text", gettext("Please write your message. We will call you back.")
        )
    return Turn(Intent.QUESTION.value).say("text", gettext("That choice is no longer available. Please ask again."))


# --- triage and timetable ------------------------------------------------------------------------------


async def _triage(session: AsyncSession, text: str, entities: Entities, *, asked: bool) -> Turn:
    answer = await triage_service.triage(session, text=text, age=entities.age, sex=entities.sex)
    turn = Turn(Intent.TRIAGE.value)
    if not answer.advice or (not asked and not answer.advice[0].suggestion.terms):
        return turn.say("text", gettext("Please describe the symptoms: what, where, since when, and the age."))
    options = [
        {
            "department": advice.suggestion.department,
            "reason": "、".join(advice.suggestion.terms),
            "clinics": [{"name": d.name, "location": d.location} for d in advice.departments],
        }
        for advice in answer.advice
    ]
    return turn.say(
        "triage",
        gettext("These departments may suit. This is guidance, not a diagnosis: a doctor decides."),
        suggestions=options,
    )


async def _timetable(session: AsyncSession, doctor: str, entities: Entities, today: date) -> Turn:
    day = entities.day or today
    text = await timetables.answer_is_in(session, doctor_name_or_id=doctor, day=day, half_day=entities.half_day)
    return Turn(Intent.TIMETABLE.value).say("timetable", text, doctor=doctor, day=day.isoformat())


# --- complaints and messages ---------------------------------------------------------------------------


async def _complaint(session: AsyncSession, *, text: str, patient: Patient, today: date) -> Turn:
    dialog = {"flow": "complaint", "step": "what"}
    if len(text.strip()) < ENOUGH_TO_GO_ON:
        return Turn(Intent.COMPLAINT.value, dialog=dialog).say(
            "text", gettext("I'm sorry to hear that. Please tell us what happened: when, where and who.")
        )
    return await _continue(session, text=text, dialog=dialog, patient=patient, today=today)


async def _continue(session: AsyncSession, *, text: str, dialog: dict[str, Any], patient: Patient, today: date) -> Turn:
    """The answer to the question the assistant asked: what happened, each field the work-order type
    requires, then a number to reach them on."""
    flow = str(dialog["flow"])
    kind = await _order_type(session, flow)
    if kind is None:
        return _person(flow, gettext("A person will take this from here. Please wait a moment."))
    step = dialog.get("step")
    if step == "what":
        dialog = {"flow": flow, "what": text.strip()[:2000], "values": {}, "tries": 0}
    elif step == "field":
        dialog = _take_field(dialog, kind, text, today)
        if "problem" in dialog:
            return _retry(flow, dialog, str(dialog.pop("problem")))
    elif step == "phone":
        try:
            return await _register(
                session, kind, dialog=dialog, phone=policy.mobile_number(text.strip()), patient=patient
            )
        except DomainError:
            return _retry(flow, dialog, gettext("That does not look like a mobile number. Please write the 11 digits."))
    return await _next_question(session, kind, dialog=dialog, patient=patient)


async def _order_type(session: AsyncSession, flow: str) -> WorkOrderType | None:
    code = COMPLAINT_TYPE if flow == "complaint" else MESSAGE_TYPE
    return await session.scalar(select(WorkOrderType).where(WorkOrderType.code == code, WorkOrderType.is_active))


async def _next_question(
    session: AsyncSession, kind: WorkOrderType, *, dialog: dict[str, Any], patient: Patient
) -> Turn:
    flow = str(dialog["flow"])
    for spec in parse_fields(kind.fields):
        if spec.required and spec.key not in dialog["values"]:
            ask = dialog | {"step": "field", "field": spec.key, "tries": 0}
            hint = gettext(" (for example 2026-11-20, or yesterday)") if spec.kind is FieldKind.DATE else ""
            return Turn(flow, dialog=ask).say("text", gettext("{label}?").format(label=spec.label) + hint)
    if patient.phone is None:
        ask = dialog | {"step": "phone", "tries": 0}
        return Turn(flow, dialog=ask).say("text", gettext("Which mobile number can we reach you on?"))
    return await _register(session, kind, dialog=dialog, phone=patient.phone, patient=patient)


def _take_field(dialog: dict[str, Any], kind: WorkOrderType, text: str, today: date) -> dict[str, Any]:
    """The dialog with the answer to the field asked for, or with the `problem` to say."""
    spec = next((f for f in parse_fields(kind.fields) if f.key == dialog.get("field")), None)
    if spec is None:
        return dialog
    try:
        value = clean_values([spec], {spec.key: _chat_value(spec, text, today)})[spec.key]
    except InvalidInput as exc:
        problems = exc.details if isinstance(exc.details, dict) else {}
        return dialog | {"problem": str(problems.get(spec.key) or exc.message)}
    return dialog | {"values": dialog["values"] | {spec.key: value}}


def _chat_value(spec: FormField, text: str, today: date) -> Any:
    """A form value from how people write it in a chat."""
    words = text.strip()
    if spec.kind is FieldKind.DATE:
        day = day_in(fold(words), today)
        return day.isoformat() if day else words
    if spec.kind is FieldKind.NUMBER:
        with contextlib.suppress(ValueError):
            return float(words) if "." in words else int(words)
    if spec.kind is FieldKind.YES_NO:
        return None if not words else not NO.search(fold(words))
    if spec.kind is FieldKind.CHOICE:
        return next((choice for choice in spec.choices if choice in words), words)
    return words


def _retry(flow: str, dialog: dict[str, Any], problem: str) -> Turn:
    tries = int(dialog.get("tries", 0)) + 1
    if tries >= TRIES:
        return _person(flow, gettext("Let me put you through to a person instead."))
    return Turn(flow, dialog=dialog | {"tries": tries}).say("text", problem)


async def _register(
    session: AsyncSession, kind: WorkOrderType, *, dialog: dict[str, Any], phone: str, patient: Patient
) -> Turn:
    flow = str(dialog["flow"])
    what = str(dialog["what"])
    category = "其他" if "其他" in kind.categories else (kind.categories[0] if kind.categories else "")
    data = OrderCreate(type_id=kind.id, category=category, subject=what[:60], description=what, channel="chat",
                       values=dialog.get("values", {}), caller_phone=phone, patient_id=patient.patient_id,
                       client_key=f"chat-{patient.conversation_ref}-{flow}")  # fmt: skip
    try:
        async with session.begin_nested():
            order = await workorders.create(session, actor=BOT, data=data)
    except DomainError:
        return _person(flow, gettext("A person will take this from here. Please wait a moment."))
    turn = Turn(flow, work_order_id=order.id)
    if flow == "complaint":
        text = gettext("Your complaint is registered as {reference}. The department will answer; we will text you.")
    else:
        text = gettext("Your message is registered as {reference}. We will call you back.")
    return turn.say("registered", text.format(reference=order.reference), reference=order.reference)
