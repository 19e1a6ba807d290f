"""Masking of personal data in lists, logs and anything shown before a reveal (PIPL: least exposure)."""

from __future__ import annotations


def mask_phone(e164: str | None) -> str:
    """+8613812345678 -> 138****5678: enough to recognise, not enough to dial."""
    if not e164:
        return ""
    digits = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_identifier(value: str | None) -> str:
    """110105194912310021 -> 110105********0021 (an ID card keeps its region and last four);
    shorter numbers keep their last four only."""
    if not value:
        return ""
    if len(value) == 18:
        return f"{value[:6]}{'*' * 8}{value[-4:]}"
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def mask_name(name: str | None) -> str:
    """王小明 -> 王*明, 王明 -> 王*, Smith -> S****: the agent can greet without the list showing who."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*" * (len(name) - 1)
    if name.isascii():
        return name[0] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]
