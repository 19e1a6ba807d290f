"""Names shown for the contacts' stored values (English msgids; translated where shown)."""

from __future__ import annotations

from patientline.core.i18n import N_, gettext

CHANNEL_LABELS = {
    "voice": N_("Phone call"),
    "chat": N_("Web chat"),
    "sms": N_("Text message"),
    "email": N_("Email"),
    "wechat": N_("WeChat"),
    "callback": N_("Callback attempt"),
    "walk_in": N_("Walk-in"),
}
DIRECTION_LABELS = {"inbound": N_("Inbound"), "outbound": N_("Outbound")}
STATUS_LABELS = {"open": N_("Open"), "closed": N_("Closed")}
VERIFIED_LABELS = {"": N_("Not verified"), "birth_date": N_("Birth date"), "id_digits": N_("Last digits of the ID")}
SHIFT_LABELS = {"day": N_("Day shift"), "evening": N_("Evening shift"), "night": N_("Night shift")}
LINK_LABELS = {"knowledge": N_("Knowledge item"), "workorder": N_("Work order")}


def translated(*tables: dict[str, str]) -> dict[str, str]:
    """One table of stored value -> label in the reader's language (for the CSV export)."""
    merged: dict[str, str] = {}
    for table in tables:
        merged |= {key: gettext(label) for key, label in table.items()}
    return merged
