"""Events of the outbox, for people who manage messaging (the outbox page, the tray). They carry
masked numbers only."""

from __future__ import annotations

from typing import ClassVar

from patientline.core.auth.permissions import Permission
from patientline.core.events import Audience, Event

MESSAGING = Audience(permission=Permission.MANAGE_MESSAGING.value)


class SmsEvent(Event):
    message_id: int
    template: str
    phone: str  # masked
    related_type: str | None = None
    related_id: int | None = None


class SmsSent(SmsEvent):
    type: ClassVar[str] = "sms.sent"
    parts: int


class SmsDelivered(SmsEvent):
    type: ClassVar[str] = "sms.delivered"


class SmsFailed(SmsEvent):
    type: ClassVar[str] = "sms.failed"
    error: str


class EmailSent(Event):
    type: ClassVar[str] = "email.sent"
    message_id: int
    related_type: str | None = None
    related_id: int | None = None


class EmailFailed(Event):
    type: ClassVar[str] = "email.failed"
    message_id: int
    error: str
    related_type: str | None = None
    related_id: int | None = None
