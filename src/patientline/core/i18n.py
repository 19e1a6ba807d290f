"""Message catalogues (Babel .po files under patientline/locale). English msgids; zh_CN is the default
language of the product, English the second."""

from __future__ import annotations

import gettext as gettext_module
import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SUPPORTED = ("zh_CN", "en")
current_locale: ContextVar[str] = ContextVar("current_locale", default="zh_CN")


@lru_cache(maxsize=len(SUPPORTED))
def translations(locale: str) -> gettext_module.NullTranslations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return gettext_module.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def pick_locale(*candidates: str | None) -> str:
    for candidate in candidates:
        if not candidate:
            continue
        normal = candidate.replace("-", "_")
        if normal in SUPPORTED:
            return normal
        if normal.lower().startswith("zh"):
            return "zh_CN"
        if normal.lower().startswith("en"):
            return "en"
    return SUPPORTED[0]


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


def gettext_all(texts: Any) -> Any:
    """A table of msgids (nested dicts) in the current language: what a page's script will say."""
    if isinstance(texts, dict):
        return {key: gettext_all(value) for key, value in texts.items()}
    return gettext(texts)


def N_(message: str) -> str:
    """Marks a msgid for extraction where it is translated later, e.g. in a table of messages."""
    return message
