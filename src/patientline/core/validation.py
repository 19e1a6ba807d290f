"""Shared input types for schemas: strict models, phone numbers, codes."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any

import phonenumbers
from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from patientline.core.i18n import N_, gettext

DEFAULT_REGION = "CN"


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab and newlines are text


class StrictModel(BaseModel):
    """Input models: unknown fields are an error, strings are trimmed and hold no control characters
    (a NUL byte cannot be stored in PostgreSQL text)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and CONTROL_CHARACTERS.search(t) for t in texts):
            raise ValueError(gettext("Control characters are not allowed."))
        return value


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@functools.lru_cache(maxsize=8192)  # feeds and lists meet the same numbers again and again; errors are not kept
def normalise_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """E.164, e.g. '010-6709 8585' -> '+861067098585'. Raises ValueError for a number that cannot exist."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(gettext("This is not a phone number.")) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(gettext("This phone number does not exist; check the digits and the area code."))
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def display_phone(e164: str | None) -> str:
    """'+861065550000' -> '010 6555 0000' for numbers at home, international form otherwise."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 86
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(parsed, style))


def _optional_phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return normalise_phone(value.strip())


Phone = Annotated[str | None, AfterValidator(_optional_phone)]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_ID = 2_147_483_647  # the database's integer range: larger ids cannot exist, so they are bad input


def id_from_header(raw: str | None) -> int | None:
    """A Last-Event-ID-style header as an id within bounds; None when it is not a number."""
    with contextlib.suppress(TypeError, ValueError):
        return min(max(0, int(raw)), MAX_ID)  # type: ignore[arg-type]
    return None


DbId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
Version = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


FIELD_PROBLEMS = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not expected."),
    "string_type": N_("Enter text."),
    "string_too_short": N_("Enter at least {min_length} characters."),
    "string_too_long": N_("Enter at most {max_length} characters."),
    "string_pattern_mismatch": N_("The format is not valid."),
    "int_type": N_("Enter a whole number."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "bool_type": N_("Enter yes or no."),
    "bool_parsing": N_("Enter yes or no."),
    "greater_than_equal": N_("Enter a value of at least {ge}."),
    "less_than_equal": N_("Enter a value of at most {le}."),
    "enum": N_("Choose one of: {expected}."),
    "literal_error": N_("Choose one of: {expected}."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "datetime_parsing": N_("Enter a date and time such as 2026-11-22T09:30:00+08:00."),
    "datetime_from_date_parsing": N_("Enter a date and time such as 2026-11-22T09:30:00+08:00."),
    "too_short": N_("Choose at least {min_length}."),
    "list_type": N_("Enter a list."),
    "json_invalid": N_("The request body is not valid JSON."),
}


def field_message(err: Mapping[str, Any]) -> str:
    """pydantic's problem in the user's language; our own validators' messages are translated already."""
    template = FIELD_PROBLEMS.get(str(err.get("type")))
    if template is None:
        return str(err.get("ctx", {}).get("error") or err.get("msg"))
    try:
        return gettext(template).format(**{k: v for k, v in err.get("ctx", {}).items()})
    except (KeyError, IndexError):
        return gettext(template)
