"""Shared input types for schemas: strict models, phone numbers, codes."""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

DEFAULT_REGION = "CN"


class StrictModel(BaseModel):
    """Input models: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def normalise_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """E.164, e.g. '010-6709 8585' -> '+861067098585'. Raises ValueError for a number that cannot exist."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def display_phone(e164: str | None) -> str:
    """'+861065550000' -> '010 6555 0000' for numbers at home, international form otherwise."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return e164
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 86
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return str(phonenumbers.format_number(parsed, style))


def mask_phone(e164: str) -> str:
    """'+8613812345678' -> '138****5678' (national form, middle hidden)."""
    national = e164[3:] if e164.startswith("+86") else e164
    if len(national) < 7:
        return "*" * len(national)
    return national[:3] + "*" * (len(national) - 7) + national[-4:]


def _optional_phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return normalise_phone(value.strip())


Phone = Annotated[str | None, AfterValidator(_optional_phone)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_ID = 2_147_483_647  # the database's integer range: larger ids cannot exist, so they are bad input
DbId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
Version = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
