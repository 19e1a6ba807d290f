"""A type's small form: field definitions admins write, and the check of what an agent fills in."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patientline.core.errors import InvalidInput
from patientline.core.i18n import gettext
from patientline.core.validation import Code, normalise_phone

TEXT_LIMIT = 500
LONG_TEXT_LIMIT = 4000


class FieldKind(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"
    PHONE = "phone"
    YES_NO = "yes_no"


class FormField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    key: Code
    label: Annotated[str, Field(min_length=1, max_length=100)]
    kind: FieldKind = FieldKind.TEXT
    required: bool = False
    max_length: Annotated[int | None, Field(ge=1, le=LONG_TEXT_LIMIT)] = None
    choices: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=50)] = []
    minimum: float | None = None
    maximum: float | None = None
    help: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _consistent(self) -> FormField:
        if self.kind is FieldKind.CHOICE and not self.choices:
            raise ValueError(gettext("A choice field needs its choices."))
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(gettext("The minimum cannot be above the maximum."))
        return self

    def limit(self) -> int:
        default = LONG_TEXT_LIMIT if self.kind is FieldKind.TEXTAREA else TEXT_LIMIT
        return self.max_length or default


def parse_fields(raw: list[dict[str, Any]]) -> list[FormField]:
    return [FormField.model_validate(item) for item in raw]


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean_one(spec: FormField, value: Any) -> Any:
    """The stored value, or raises ValueError with the problem in the user's language."""
    if spec.kind is FieldKind.YES_NO:
        if not isinstance(value, bool):
            raise ValueError(gettext("Enter yes or no."))
        return value
    if spec.kind is FieldKind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(gettext("Enter a number."))
        too_low = spec.minimum is not None and value < spec.minimum
        if too_low or (spec.maximum is not None and value > spec.maximum):
            raise ValueError(
                gettext("Enter a number from {low} to {high}.").format(low=spec.minimum, high=spec.maximum)
            )
        return value
    if not isinstance(value, str):
        raise ValueError(gettext("Enter text."))
    text = value.strip()
    if spec.kind is FieldKind.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError as exc:
            raise ValueError(gettext("Enter a date as YYYY-MM-DD.")) from exc
    if spec.kind is FieldKind.PHONE:
        return normalise_phone(text)
    if spec.kind is FieldKind.CHOICE and text not in spec.choices:
        raise ValueError(gettext("Choose one of: {expected}.").format(expected=", ".join(spec.choices)))
    if len(text) > spec.limit():
        raise ValueError(gettext("Enter at most {max_length} characters.").format(max_length=spec.limit()))
    return text


def clean_values(fields: list[FormField], values: dict[str, Any]) -> dict[str, Any]:
    """What the agent filled in, checked against the type's form; every problem is reported at once."""
    known = {spec.key: spec for spec in fields}
    problems: dict[str, str] = {key: gettext("This field is not expected.") for key in values if key not in known}
    cleaned: dict[str, Any] = {}
    for key, spec in known.items():
        value = values.get(key)
        if _is_blank(value):
            if spec.required:
                problems[key] = gettext("This field is required.")
            continue
        try:
            cleaned[key] = _clean_one(spec, value)
        except ValueError as exc:
            problems[key] = str(exc)
    if problems:
        raise InvalidInput(
            "Some fields of the form are missing or not valid.",
            details=[{"field": f"values.{key}", "problem": "form", "message": text} for key, text in problems.items()],
        )
    return cleaned
