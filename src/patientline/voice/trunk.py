"""Calls through the trunk and what they show. Caller-ID policy: the patient sees one of the
hospital's own numbers (`voice_caller_ids`, the first unless the agent picks another) and never a
number the hospital does not hold; where `voice_withheld_allowed`, the agent may withhold it
(`Privacy: id`; the trunk still learns the hotline's number from `P-Asserted-Identity`). Calls abroad
only where `voice_calls_abroad`."""

from __future__ import annotations

from typing import Any

import phonenumbers

from patientline.core.config import Settings
from patientline.core.errors import Conflict, InvalidInput
from patientline.core.validation import DEFAULT_REGION, normalise_phone
from patientline.voice.talk import Ring

WITHHELD = "withheld"
ANONYMOUS = '"Anonymous" <sip:anonymous@anonymous.invalid>'


def caller_ids(settings: Settings) -> list[str]:
    """The numbers agents may show, the default first, then WITHHELD where the policy allows it."""
    numbers = [n.strip() for n in settings.voice_caller_ids.split(",") if n.strip()]
    return numbers + ([WITHHELD] if settings.voice_withheld_allowed else [])


def caller_id(settings: Settings, asked: str | None) -> str:
    allowed = caller_ids(settings)
    if asked is None:
        return allowed[0]
    if asked not in allowed:
        raise InvalidInput("Patients may only be shown one of the hospital's numbers: {numbers}.",
                           details={"field": "caller_id"}, params={"numbers": ", ".join(allowed)})  # fmt: skip
    return asked


def number(settings: Settings, raw: str) -> str:
    try:
        number = normalise_phone(raw)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "number"}) from exc
    if not settings.voice_calls_abroad and phonenumbers.parse(number).country_code != 86:
        raise InvalidInput("Calls abroad are not allowed on this line.", details={"field": "number"})
    return number


def presented(settings: Settings, caller_id: str) -> dict[str, Any]:
    """The `from` and headers of a call to the trunk showing `caller_id` (or withholding it)."""
    own = f"sip:{{}}@{settings.voice_sip_host}"
    if caller_id == WITHHELD:
        asserted = own.format(caller_ids(settings)[0])
        return {"from": ANONYMOUS, "headers": {"Privacy": "id", "P-Asserted-Identity": f"<{asserted}>"}}
    return {"from": f"<{own.format(caller_id)}>", "headers": {}}


def outside_uri(settings: Settings, front: str, raw: str) -> str:
    """The trunk's URI for an outside number, checked against the policy like a call out."""
    return f"sip:{trunk_digits(number(settings, raw))}@{front}"


def trunk_digits(e164: str) -> str:
    """The digits the trunk is sent: as dialled in China (0 before an area code, 00 abroad)."""
    parsed = phonenumbers.parse(e164)
    dialled = phonenumbers.format_out_of_country_calling_number(parsed, DEFAULT_REGION)
    return "".join(ch for ch in dialled if ch.isdigit())


def forwarded(settings: Settings, front: str, raw: str) -> Ring:
    """A call passed on to an outside number (a consultation, a transfer, the IVR's): the line's own
    number is shown."""
    require_trunk(settings)
    shown = presented(settings, caller_ids(settings)[0])
    return Ring(outside_uri(settings, front, raw), shown["headers"], shown["from"])


def require_trunk(settings: Settings) -> None:
    if not settings.voice_trunk.strip():
        raise Conflict("Outside numbers cannot be called: this line has no trunk.", error_id="no_trunk")
