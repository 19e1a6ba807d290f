"""What a patient's message is about (intent) and what it names (entities): department, doctor,
day and half-day, symptoms and body parts, age and sex. Rules over folded text: fast, explainable,
and the same in every process."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from patientline.assistant.cues import chinese_number, cues_of
from patientline.assistant.triage import default_triage, matched_terms
from patientline.knowledge.search.text import fold


class Intent(StrEnum):
    QUESTION = "question"  # the knowledge base answers
    TRIAGE = "triage"
    TIMETABLE = "timetable"
    COMPLAINT = "complaint"
    BOOKING = "booking"
    HUMAN = "human"


WHICH_DEPARTMENT = re.compile(
    r"(挂|看|去|找)(什么|哪个|哪一个|哪|啥)(个)?科|什么科室|哪个科室|which (department|clinic)"
)
HUMAN = re.compile(
    r"人工|真人|转人|客服|接线员|坐席|找个人|\b(human|agent|real person|operator)\b|speak to (a|someone)"
)
COMPLAINT = re.compile(r"投诉|举报|态度(太)?(差|恶劣|不好)|不满意|complain")
BOOKING = re.compile(  # asking to have it done, not how it is done (a question for the knowledge base)
    r"(我|帮我|给我|替我)(要|想|需要)?(挂|预约|约|加|退|改).{0,8}?(号|专家|门诊|医生|大夫|主任)"
    r"|\b(book me|i want to book|i'd like to book|make an appointment for me)\b"
)
CLINIC_WORDS = re.compile(r"出诊|坐诊|门诊|停诊|上班|在不在|在吗|值班|\b(clinic|in on|working|available)\b")
HALF_DAYS = (
    ("上午", "am"),
    ("早上", "am"),
    ("下午", "pm"),
    ("晚上", "night"),
    ("夜间", "night"),
    ("morning", "am"),
    ("afternoon", "pm"),
    ("evening", "night"),
)  # the timetable's half-days; fmt: skip
WEEKDAY = re.compile(r"(下)?(周|星期|礼拜)([一二三四五六日天])")
WEEKDAY_NUMBER = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7}
ENGLISH_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTH_DAY = re.compile(r"(\d{1,2}|[一二三四五六七八九十]{1,3})月(\d{1,2}|[一二三四五六七八九十]{1,3})[日号]")
RELATIVE_DAYS = (("大后天", 3), ("后天", 2), ("明天", 1), ("明日", 1), ("今天", 0), ("今日", 0), ("前天", -2),
                 ("昨天", -1), ("day after tomorrow", 2), ("tomorrow", 1), ("today", 0), ("yesterday", -1))  # fmt: skip


@dataclass(frozen=True)
class Entities:
    department: str | None = None
    doctor: str | None = None
    day: date | None = None
    half_day: str | None = None
    symptoms: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    age: int | None = None
    sex: str | None = None


def entities_of(text: str, *, today: date, doctors: Iterable[str] = (), departments: Iterable[str] = ()) -> Entities:
    folded = fold(text)
    terms = matched_terms(folded, default_triage().lexicon)
    cues = cues_of(folded)
    return Entities(
        department=_longest_in(folded, departments),
        doctor=_longest_in(folded, doctors),
        day=day_in(folded, today),
        half_day=next((value for word, value in HALF_DAYS if word in folded), None),
        symptoms=tuple(term.text for term in terms if not term.body_part),
        body_parts=tuple(term.text for term in terms if term.body_part),
        age=cues.age,
        sex=cues.sex,
    )


def _longest_in(text: str, names: Iterable[str]) -> str | None:
    found = [name for name in names if len(name) >= 2 and fold(name) in text]
    return max(found, key=len) if found else None


def day_in(text: str, today: date) -> date | None:
    """The day a message names: yesterday, today, tomorrow, a weekday (this or next week), or a month and day."""
    for word, offset in RELATIVE_DAYS:
        if word in text:
            return today + timedelta(days=offset)
    if match := WEEKDAY.search(text):
        return _weekday(today, WEEKDAY_NUMBER[match.group(3)], next_week=bool(match.group(1)))
    for number, name in enumerate(ENGLISH_WEEKDAYS, start=1):
        if re.search(rf"\b(next )?{name}\b", text):
            return _weekday(today, number, next_week=f"next {name}" in text)
    if match := MONTH_DAY.search(text):
        return _month_day(today, match.group(1), match.group(2))
    return None


def _weekday(today: date, weekday: int, *, next_week: bool) -> date:
    """The coming such weekday (today counts); "next" means the one in the week after this."""
    if next_week:
        return today + timedelta(days=7 - today.isoweekday() + weekday)
    return today + timedelta(days=(weekday - today.isoweekday()) % 7)


def _month_day(today: date, month_text: str, day_text: str) -> date | None:
    month, day = chinese_number(month_text), chinese_number(day_text)
    if month is None or day is None:
        return None
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today - timedelta(days=1):
            return candidate
    return None


def intent_of(text: str, entities: Entities) -> Intent:
    """The first rule that fits: a person, a complaint, a doctor's clinic, booking, which department,
    else a question for the knowledge base."""
    folded = fold(text)
    if HUMAN.search(folded):
        return Intent.HUMAN
    if COMPLAINT.search(folded):
        return Intent.COMPLAINT
    if entities.doctor is not None and (CLINIC_WORDS.search(folded) or entities.day is not None):
        return Intent.TIMETABLE
    if WHICH_DEPARTMENT.search(folded):
        return Intent.TRIAGE
    if BOOKING.search(folded):
        return Intent.BOOKING
    return Intent.QUESTION
