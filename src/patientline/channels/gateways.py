"""The ports to the outside: an `SmsGateway` and an `EmailGateway`, the adapter chosen by settings
(`PATIENTLINE_SMS_ADAPTER`, `PATIENTLINE_EMAIL_ADAPTER`), and the development sinks.

Adapters raise `TemporaryFailure` for what may pass (network, throttling: the delivery job is
retried with backoff) and `PermanentFailure` for what will not (an invalid number, a rejected
template: the message fails at once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from patientline.channels.policy import sms_parts
from patientline.core.config import Settings


class TemporaryFailure(Exception):
    """Try again later."""


class PermanentFailure(Exception):
    """Retrying cannot help; `code` is the provider's reason."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class OutboundSms:
    message_id: int
    phone: str  # E.164
    text: str  # signature included
    template_code: str
    provider_template_code: str
    variables: dict[str, str]


@dataclass(frozen=True)
class Receipt:
    """A delivery report for one provider reference."""

    provider: str
    ref: str
    delivered: bool
    error: str | None = None


@dataclass(frozen=True)
class Reply:
    """A text a patient sent back (mobile-originated)."""

    phone: str  # E.164
    text: str


@dataclass(frozen=True)
class SendResult:
    provider: str
    refs: list[str]  # one per part (SMPP) or one per message (cloud APIs); may be empty
    parts: int
    inbound: list[Receipt | Reply] = field(default_factory=list)  # heard while connected (SMPP)


class SmsGateway(Protocol):
    name: str
    simulates_receipts: bool

    async def send(self, message: OutboundSms) -> SendResult: ...


@dataclass(frozen=True)
class OutboundEmail:
    message_id: int
    to: str
    subject: str
    body: str


class EmailGateway(Protocol):
    name: str

    async def send(self, message: OutboundEmail) -> str:
        """Returns the Message-ID."""
        ...


class SinkSms:
    """Development sink: accepts everything and reports delivery shortly after (the delivery job
    schedules the receipt), so the whole flow is visible on /messages without a provider."""

    name = "sink"
    simulates_receipts = True

    async def send(self, message: OutboundSms) -> SendResult:
        return SendResult(provider=self.name, refs=[f"sink-{message.message_id}"], parts=sms_parts(message.text))


class SinkEmail:
    name = "sink"

    async def send(self, message: OutboundEmail) -> str:
        return f"<sink-{message.message_id}@patientline.invalid>"


def sms_gateway(settings: Settings) -> SmsGateway:
    if settings.sms_adapter == "smpp":
        from patientline.channels.smpp import SmppGateway

        return SmppGateway.from_settings(settings)
    if settings.sms_adapter == "http":
        from patientline.channels.cloud import CloudSmsGateway

        return CloudSmsGateway.from_settings(settings)
    return SinkSms()


def email_gateway(settings: Settings) -> EmailGateway:
    if settings.email_adapter == "smtp":
        from patientline.channels.smtp import SmtpGateway

        return SmtpGateway.from_settings(settings)
    return SinkEmail()
