"""What the work-order pages call things: statuses, timeline entries, reasons and outcomes in the
reader's language, the one-line summary of a timeline entry, and the texts the page script shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from patientline.core.config import get_settings
from patientline.core.i18n import N_, gettext
from patientline.workorders.models import TimelineEntry
from patientline.workorders.policy import Explanation

STATUS_LABELS = {
    "new": N_("Registered"),
    "dispatched": N_("Dispatched"),
    "accepted": N_("Accepted"),
    "replied": N_("Replied"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "returned": N_("Returned"),
    "merged": N_("Merged"),
}
URGENCY_LABELS = {
    "overdue": N_("Overdue"),
    "soon": N_("Due soon"),
    "paused": N_("Paused"),
    "escalated": N_("Escalated"),
}
ACTION_LABELS = {
    "created": N_("Registered"),
    "dispatch": N_("Dispatched"),
    "accept": N_("Accepted"),
    "return": N_("Returned: not ours"),
    "reply": N_("Replied"),
    "resolve": N_("Result recorded"),
    "evaluate": N_("Evaluation recorded"),
    "close": N_("Closed"),
    "reopen": N_("Reopened"),
    "merge": N_("Merged into another order"),
    "merged_in": N_("A duplicate was merged in"),
    "note": N_("Note"),
    "pause": N_("Clock stopped"),
    "resume": N_("Clock running again"),
    "extension_requested": N_("Extension requested"),
    "extension_approved": N_("Extension approved"),
    "extension_refused": N_("Extension refused"),
    "callback_scheduled": N_("Callback scheduled"),
    "callback_attempt": N_("Callback attempt"),
    "linked": N_("Linked"),
    "attachment": N_("Evidence attached"),
    "reminder": N_("Reminder from the service centre"),
    "alert": N_("Deadline alert"),
}
ALERT_LABELS = {
    "warn_reply": N_("The reply is due soon"),
    "breach_reply": N_("The reply is overdue"),
    "warn_resolve": N_("The result is due soon"),
    "breach_resolve": N_("The result is overdue"),
    "escalate": N_("Escalated to level {level}"),
}
CLOSE_REASON_LABELS = {
    "answered": N_("Answered on the call"),
    "no_evaluation": N_("No evaluation received"),
    "withdrawn": N_("Withdrawn by the caller"),
    "unreachable": N_("Caller unreachable"),
    "wrong_number": N_("Wrong number"),
    "duplicate": N_("Duplicate"),
    "other": N_("Other"),
    "evaluated": N_("Evaluated by the patient"),
}
OUTCOME_LABELS = {
    "reached": N_("Reached"),
    "no_answer": N_("No answer"),
    "voicemail": N_("Voicemail"),
    "wrong_number": N_("Wrong number"),
}
SMS_STATUS_LABELS = {
    "queued": N_("queued"),
    "held": N_("held for quiet hours"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "suppressed": N_("not sent"),
}
EXTENSION_LABELS = {
    "pending": N_("waiting for a decision"),
    "approved": N_("approved"),
    "refused": N_("refused"),
}
WEEKDAY_LABELS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
CLIENT_TEXTS = {
    "due_in": N_("due in {time}"),
    "overdue_by": N_("overdue {time}"),
    "minutes": N_("{n} min"),
    "hours": N_("{n} h"),
    "days": N_("{n} d"),
    "stale": N_("Someone else changed this order meanwhile. Reload the page to see the change, then try again."),
    "reload": N_("Reload"),
    "no_reference": N_("No work order has this reference."),
    "too_large": N_("A file may be at most {mb} MB."),
    "choose_file": N_("Choose a file first."),
    "required": N_("This field is required."),
}


def client_texts() -> dict[str, str]:
    return {key: gettext(text) for key, text in CLIENT_TEXTS.items()}


def _local(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y-%m-%d %H:%M")


def describe_entry(entry: TimelineEntry, department_names: dict[int, str]) -> str:
    """The details of a timeline entry in a few words (its note is shown apart)."""
    details = entry.details or {}

    def department(value: Any) -> str:
        return department_names.get(value, "") if isinstance(value, int) else ""

    if entry.action == "dispatch":
        text = gettext("To {department}").format(department=department(details.get("department_id")))
        others = [department(value) for value in details.get("co_department_ids") or []]
        if others:
            text += " · " + gettext("co-handled by {departments}").format(departments="、".join(others))
        return text
    if entry.action == "return":
        return gettext("By {department}").format(department=department(details.get("department_id")))
    if entry.action == "evaluate":
        return gettext("Satisfied") if details.get("satisfied") else gettext("Not satisfied")
    if entry.action == "close" and details.get("reason"):
        reason = str(details["reason"])
        return gettext(CLOSE_REASON_LABELS.get(reason, reason))
    if entry.action == "callback_attempt":
        outcome = str(details.get("outcome", ""))
        return gettext("{outcome} (attempt {n})").format(
            outcome=gettext(OUTCOME_LABELS.get(outcome, outcome)), n=details.get("attempt", "")
        )
    if entry.action == "callback_scheduled" and details.get("at"):
        return gettext("Call back at {time}").format(time=_local(details["at"]))
    if entry.action == "linked":
        return str(details.get("target", ""))
    if entry.action == "merge":
        return gettext("Into {reference}").format(reference=details.get("into", ""))
    if entry.action == "merged_in":
        return gettext("From {reference}").format(reference=details.get("from", ""))
    if entry.action.startswith("extension_") and "amount" in details:
        return gettext("{n} more").format(n=details["amount"])
    if entry.action == "alert":
        kind = str(details.get("kind", ""))
        return gettext(ALERT_LABELS.get(kind, kind)).format(level=details.get("level", ""))
    return ""


def explanation_view(item: Explanation, label: str, *, round_the_clock: bool) -> dict[str, Any]:
    """A deadline's explanation with the days' reasons and holiday names in the reader's language."""
    days = [
        {
            "day": day.day,
            "working": day.is_working_day,
            "reason": gettext(day.reason.value),
            "detail": gettext(day.detail) if day.detail else "",
        }
        for day in item.days
    ]
    return {
        "label": label,
        "round_the_clock": round_the_clock,
        "start": item.start,
        "period": item.period,
        "due_at": item.due_at,
        "days": days,
        "fallback_years": item.fallback_years,
        "pauses": item.pauses,
    }
