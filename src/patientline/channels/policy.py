"""Sending policy shared by the SMS pieces: which settings apply, phone numbers (E.164, masked for
lists), quiet hours, and how many parts a text takes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from patientline.core.config import Settings, get_settings
from patientline.core.errors import InvalidInput

DEFAULT_REGION = "CN"
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")  # two septets each
MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)

_configured: Settings | None = None


def configure(settings: Settings | None) -> None:
    """The settings channels use; without this, the process settings (`get_settings()`)."""
    global _configured
    _configured = settings


def settings() -> Settings:
    return _configured if _configured is not None else get_settings()


def mobile_number(raw: str, *, field: str = "phone") -> str:
    """E.164 of a number that can receive text messages, or a 422 that says what is wrong."""
    try:
        parsed = phonenumbers.parse(raw.strip(), DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("This is not a phone number.", details={field: ["invalid"]}) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(
            "This phone number does not exist; check the digits and the area code.", details={field: ["invalid"]}
        )
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        raise InvalidInput(
            "This number cannot receive text messages: it is not a mobile number.", details={field: ["not_mobile"]}
        )
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def mask_phone(e164: str) -> str:
    """'+8613812345678' -> '+86 138****5678': enough to tell numbers apart, not to call them."""
    try:
        parsed = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return "****"
    national = str(parsed.national_number)
    keep_head = 3 if len(national) >= 10 else max(len(national) - 6, 0)
    masked = national[:keep_head] + "****" + national[-4:] if len(national) > 4 else "****"
    return f"+{parsed.country_code} {masked}"


def sms_parts(text: str) -> int:
    """Segments a handset receives: GSM 7-bit 160 (153 each when split), otherwise UCS-2 70 (67)."""
    if set(text) <= GSM7_BASIC | GSM7_EXTENDED:
        septets = len(text) + sum(1 for ch in text if ch in GSM7_EXTENDED)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-be")) // 2  # characters outside the BMP take two
    return 1 if units <= 70 else -(-units // 67)


def signed(body: str, sign_name: str) -> str:
    """Chinese carriers require the sender's signature 【…】 at the start of every text."""
    return f"【{sign_name}】{body}" if sign_name else body


def parse_quiet_hours(spec: str) -> tuple[time, time] | None:
    if not spec:
        return None
    start, end = (time.fromisoformat(part) for part in spec.split("-"))
    return (start, end) if start != end else None


def quiet_hours_end(moment: datetime, *, spec: str, timezone: str) -> datetime | None:
    """When quiet hours that contain `moment` end (UTC-aware), or None outside them. '21:00-08:00'
    spans midnight."""
    window = parse_quiet_hours(spec)
    if window is None:
        return None
    start, end = window
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    now = local.time()
    inside = (start <= now < end) if start < end else (now >= start or now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(moment.tzinfo)
