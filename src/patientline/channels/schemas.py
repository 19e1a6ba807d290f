"""What the channels API reads and writes. Lists show masked phone numbers and email addresses;
only a message's detail (an audited read) shows the full number."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from patientline.channels.models import EmailMessage, SmsMessage, SmsOptOut
from patientline.channels.policy import mask_phone
from patientline.core.validation import Code, Name, ReadModel, StrictModel, Version

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=40)]
# the service checks emptiness and the 500-character limit, so the error names the field
Body = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
ProviderCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
PhoneText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Value = Annotated[str, StringConstraints(max_length=200)]


class TemplateFields(StrictModel):
    name: Name
    body: Body
    variables: Annotated[list[VariableName], Field(max_length=20)] = []
    provider_template_code: ProviderCode = ""
    audience: Literal["patient", "code", "staff"] = "patient"
    is_active: bool = True


class TemplateCreate(TemplateFields):
    code: Code


class TemplateUpdate(TemplateFields):
    version: Version


class TemplateRead(ReadModel):
    id: int
    code: str
    name: str
    body: str
    variables: list[str]
    provider_template_code: str
    audience: str
    is_active: bool
    version: int
    updated_at: datetime


class OptOutCreate(StrictModel):
    phone: PhoneText
    reason: Reason = ""


class OptOutRead(BaseModel):
    id: int
    phone: str  # masked
    reason: str
    source: str
    created_at: datetime
    created_by_id: int | None

    @classmethod
    def of(cls, row: SmsOptOut) -> OptOutRead:
        return cls(
            id=row.id,
            phone=mask_phone(row.phone),
            reason=row.reason,
            source=row.source,
            created_at=row.created_at,
            created_by_id=row.created_by_id,
        )


class SmsCheck(StrictModel):
    """A test text an administrator sends to check a template and the provider."""

    phone: PhoneText
    template: Code
    variables: Annotated[dict[VariableName, Value], Field(max_length=20)] = {}


class EmailCheck(StrictModel):
    to: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(max_length=10_000)]  # emptiness: the service says which field


class SmsRead(BaseModel):
    """A message in a list: the number masked."""

    id: int
    phone: str
    patient_id: int | None
    template_code: str
    audience: str
    text: str
    parts: int
    status: str
    suppress_reason: str | None
    provider: str | None
    attempts: int
    last_error: str | None
    related_type: str | None
    related_id: int | None
    created_at: datetime
    send_after: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, row: SmsMessage) -> SmsRead:
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "phone"}
        return cls(phone=mask_phone(row.phone), **fields)


class SmsDetail(SmsRead):
    phone_e164: str
    variables: dict[str, str]
    provider_ids: list[str]
    idempotency_key: str | None

    @classmethod
    def of(cls, row: SmsMessage) -> SmsDetail:
        listed = SmsRead.of(row).model_dump()
        return cls(
            **listed,
            phone_e164=row.phone,
            variables={k: str(v) for k, v in row.variables.items()},
            provider_ids=list(row.provider_ids),
            idempotency_key=row.idempotency_key,
        )


class SmsPage(BaseModel):
    items: list[SmsRead]
    total: int


def mask_email(address: str) -> str:
    """'zhang.san@example.com' -> 'z***@example.com'."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


class EmailRead(BaseModel):
    id: int
    to: str  # masked
    subject: str
    status: str
    provider: str | None
    attempts: int
    last_error: str | None
    related_type: str | None
    related_id: int | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, row: EmailMessage) -> EmailRead:
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "to"}
        return cls(to=mask_email(row.to), **fields)


class EmailDetail(EmailRead):
    to_address: str
    body: str
    provider_id: str | None

    @classmethod
    def of(cls, row: EmailMessage) -> EmailDetail:
        return cls(**EmailRead.of(row).model_dump(), to_address=row.to, body=row.body, provider_id=row.provider_id)


class EmailPage(BaseModel):
    items: list[EmailRead]
    total: int


class CallbackAnswer(BaseModel):
    """What the provider expects back from a report push."""

    code: int = 0
    msg: str = "成功"
    accepted: int = 0
