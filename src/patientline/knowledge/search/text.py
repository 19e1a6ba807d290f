"""Character-level text helpers: folding (width, case, traditional -> simplified), character classes,
toneless pinyin for Chinese characters and splitting latin letters into pinyin syllables."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the libraries load their large tables on first use, not when the app starts
    import opencc

_converter_lock = threading.Lock()
_converter: opencc.OpenCC | None = None

LATIN_OR_DIGIT = re.compile(r"[a-z0-9]+")
_VOWEL = re.compile(r"[aeiouv]")


def _t2s() -> opencc.OpenCC:
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
    return _converter


def fold(text: str) -> str:
    """Full-width -> half-width (NFKC), lower case, traditional -> simplified. A lone surrogate (valid in
    JSON, not in UTF-8) becomes U+FFFD instead of failing the converter."""
    normal = unicodedata.normalize("NFKC", text).lower()
    try:
        return str(_t2s().convert(normal))
    except UnicodeEncodeError:
        whole = normal.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return str(_t2s().convert(whole))


def fold_char(char: str) -> str:
    """`fold` for one character; may return several characters (NFKC expands some) or none."""
    return str(_t2s().convert(unicodedata.normalize("NFKC", char).lower()))


def is_cjk(char: str) -> bool:
    """True for one Chinese character (CJK unified ideographs, extension A, compatibility)."""
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf" or "\uf900" <= char <= "\ufaff"


@lru_cache(maxsize=1)
def _pinyin_tables() -> tuple[dict[str, str], frozenset[str]]:
    """(character -> its first toneless reading, every toneless syllable)."""
    from pypinyin.pinyin_dict import pinyin_dict

    by_char: dict[str, str] = {}
    syllables: set[str] = set()
    for code, readings in pinyin_dict.items():
        toneless = [_reading_of(r) for r in readings.split(",")]
        by_char[chr(code)] = toneless[0]
        syllables.update(toneless)
    # Interjection readings without a vowel (呣 m, 嗯 ng) would turn abbreviations like "mri" into pinyin.
    return by_char, frozenset(s for s in syllables if _VOWEL.search(s))


def _reading_of(reading: str) -> str:
    decomposed = unicodedata.normalize("NFD", reading.strip())
    out: list[str] = []
    for c in decomposed:
        if c == "\u0308":
            out[-1] = "v"
        elif not unicodedata.combining(c):
            out.append(c)
    return "".join(out)


def pinyin_readings() -> dict[str, str]:
    """Chinese character -> its most common toneless reading (for loops: one lookup per character)."""
    return _pinyin_tables()[0]


def char_pinyin(char: str) -> str | None:
    """Toneless pinyin of one Chinese character (its most common reading), None for others."""
    return _pinyin_tables()[0].get(char)


def name_pinyin(name: str) -> tuple[str, str]:
    """(full toneless pinyin, initials) of a name, with pypinyin's phrase readings (重庆 -> chongqing)."""
    cjk = "".join(c for c in name if is_cjk(c))
    if not cjk:
        return "", ""
    from pypinyin import Style, lazy_pinyin

    full = lazy_pinyin(cjk, style=Style.NORMAL, v_to_u=False)
    return "".join(full), "".join(p[0] for p in full if p)


_MAX_SYLLABLE = 6


@lru_cache(maxsize=4096)
def split_pinyin(letters: str) -> tuple[str, ...] | None:
    """Split a run of latin letters into pinyin syllables (fewest syllables wins), None if it is not
    pinyin. "guahao" -> ("gua", "hao"), "xian" -> ("xian",), "mri" -> None."""
    syllables = _pinyin_tables()[1]
    n = len(letters)
    if n == 0 or n > 60:
        return None
    best: list[tuple[str, ...] | None] = [None] * (n + 1)
    best[0] = ()
    for end in range(1, n + 1):
        for start in range(max(0, end - _MAX_SYLLABLE), end):
            prefix = best[start]
            piece = letters[start:end]
            if prefix is None or piece not in syllables:
                continue
            candidate = (*prefix, piece)
            current = best[end]
            if current is None or len(candidate) < len(current):
                best[end] = candidate
    return best[n]
