"""Message catalogues: zh_CN (the default language) translates every message the code and templates can
show; placeholders survive translation; English falls back to the msgids."""

from __future__ import annotations

import ast
import configparser
import re
from collections.abc import Iterator
from pathlib import Path

import chinese_calendar
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.pofile import read_po

from patientline.core.i18n import LOCALE_DIR, SUPPORTED, translations
from patientline.core.workcal import DayReason

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "patientline"
BRACE_FIELD = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
PERCENT_FIELD = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def _catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


MessageText = str | tuple[str, ...] | list[str] | None


def _strings(value: MessageText) -> tuple[str, ...]:
    """A message's id or translation as a tuple: one string, or the plural forms."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _msgid(message_id: MessageText) -> str:
    strings = _strings(message_id)
    return strings[0] if strings else ""


def _entries(catalog: Catalog) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    for message in catalog:
        if message.id:
            yield _strings(message.id), _strings(message.string)


def _babel_cfg() -> tuple[list[tuple[str, str]], dict[str, dict[str, str]], dict[str, object]]:
    """babel.cfg as `pybabel extract -F babel.cfg` reads it: method map, options, keywords."""
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "babel.cfg", encoding="utf-8")
    extractors = dict(parser.items("extractors")) if parser.has_section("extractors") else {}
    keywords: dict[str, object] = dict(DEFAULT_KEYWORDS)
    method_map: list[tuple[str, str]] = []
    options_map: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        if section == "extractors":
            continue
        method, pattern = (part.strip() for part in section.split(":", 1))
        options = dict(parser.items(section))
        keywords.update(parse_keywords(options.pop("keywords", "").split()))
        method_map.append((pattern, extractors.get(method, method)))
        options_map[pattern] = options
    return method_map, options_map, keywords


def _extracted() -> dict[str, list[str]]:
    """msgid -> where it was found, for every message babel.cfg extracts from src/."""
    method_map, options_map, keywords = _babel_cfg()
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT,
        method_map,
        options_map,
        keywords=keywords,  # type: ignore[arg-type]
    ):
        msgid = _msgid(message)
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def _data_labels() -> dict[str, str]:
    """Text kept in data structures and shown through `_(variable)` in templates: extraction cannot see
    it, so the catalogue carries it by hand."""
    from patientline.core.jobs import JobStatus
    from patientline.directory.pages import KIND_LABELS, PAGES
    from patientline.web.errors import HTTP_MESSAGES
    from patientline.web.nav import NAV

    labels: dict[str, str] = {}

    def add(where: str, *texts: str) -> None:
        for text in texts:
            if text:
                labels.setdefault(text, where)

    for item in NAV:
        add("web/nav.py NAV", item.label, item.section)
    for page in PAGES.values():
        add(
            f"directory/pages.py PAGES[{page.path!r}]",
            page.title,
            page.singular,
            *(label for _attr, label in page.columns),
        )
        for field in page.fields:
            add(f"directory/pages.py PAGES[{page.path!r}].fields", field.label, field.hint)
    add("directory/pages.py KIND_LABELS", *KIND_LABELS.values())
    add("core/workcal.py DayReason (calendar.html `_(s.reason.value)`)", *(r.value for r in DayReason))
    add("chinese_calendar holiday names (calendar.html `_(s.detail)`)", *(h.value for h in chinese_calendar.Holiday))
    for node in ast.walk(ast.parse((SRC / "web" / "home.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):  # the start page's tiles: {"label": "...", ...}
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "label"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    add("web/home.py tiles", value.value)
    statuses = [value for name, value in vars(JobStatus).items() if name.isupper() and isinstance(value, str)]
    add("core/jobs.py JobStatus (jobs.html `_(s or 'all')`)", *statuses, "all")
    add("web/errors.py HTTP_MESSAGES", *HTTP_MESSAGES.values())
    return labels


def _domain_error_classes() -> set[str]:
    """Names of DomainError and every subclass defined anywhere in src/ (found by reading the source)."""
    bases: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names = {
                    b.id if isinstance(b, ast.Name) else b.attr
                    for b in node.bases
                    if isinstance(b, ast.Name | ast.Attribute)
                }
                bases.setdefault(node.name, set()).update(names)
    errors = {"DomainError"}
    while True:
        more = {name for name, parents in bases.items() if parents & errors} - errors
        if not more:
            return errors
        errors |= more


def test_zh_cn_translates_every_entry_and_nothing_is_fuzzy() -> None:
    catalog = _catalog("zh_CN")
    assert not catalog.fuzzy, "the zh_CN header is marked fuzzy"
    assert catalog.num_plurals == 1
    untranslated = [ids[0] for ids, strings in _entries(catalog) if not strings or any(not s.strip() for s in strings)]
    fuzzy = [_msgid(m.id) for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"untranslated zh_CN entries: {untranslated}"
    assert not fuzzy, f"fuzzy zh_CN entries (check, then drop the flag): {fuzzy}"


def test_babel_cfg_lists_every_domain_error_as_a_keyword() -> None:
    _, _, keywords = _babel_cfg()
    missing = sorted(_domain_error_classes() - set(keywords))
    assert not missing, f"add these error classes to `keywords` in babel.cfg: {missing}"


def test_every_extracted_message_is_in_the_zh_cn_catalogue() -> None:
    extracted = _extracted()
    assert "Log in" in extracted  # templates
    assert "Wrong user name or password." in extracted  # a domain error's message
    assert "The request body is not valid JSON." in extracted  # gettext() in Python
    known = {ids[0] for ids, _ in _entries(_catalog("zh_CN"))}
    missing = {msgid: where for msgid, where in extracted.items() if msgid not in known}
    assert not missing, (
        "new messages missing from src/patientline/locale/zh_CN/LC_MESSAGES/messages.po "
        f"(re-extract with `pybabel extract -F babel.cfg` and translate them): {missing}"
    )


def test_labels_held_in_data_structures_are_in_the_zh_cn_catalogue() -> None:
    known = {ids[0] for ids, _ in _entries(_catalog("zh_CN"))}
    missing = {label: where for label, where in _data_labels().items() if label not in known}
    assert not missing, f"labels missing from the zh_CN catalogue: {missing}"


@pytest.mark.parametrize("pattern", [BRACE_FIELD, PERCENT_FIELD], ids=["brace", "percent"])
def test_translations_keep_the_placeholders(pattern: re.Pattern[str]) -> None:
    wrong = []
    for ids, strings in _entries(_catalog("zh_CN")):
        expected = {frozenset(pattern.findall(i)) for i in ids}
        for string in strings:
            if string and frozenset(pattern.findall(string)) not in expected:
                wrong.append((ids[0], string))
    assert not wrong, f"placeholders differ between msgid and msgstr: {wrong}"


def test_translations_have_no_stray_percent_sign() -> None:
    """Jinja's newstyle gettext formats every translated template string with `%`."""
    stray = [
        (ids[0], s)
        for ids, strings in _entries(_catalog("zh_CN"))
        for s in strings
        if "%" in PERCENT_FIELD.sub("", s).replace("%%", "")
    ]
    assert not stray, f"write a literal percent sign as %%: {stray}"


def test_zh_cn_is_used_at_runtime() -> None:
    zh = translations("zh_CN")
    assert zh.gettext("Log in") == "登录"
    assert zh.gettext("Audit log") == "审计日志"
    assert zh.ngettext("%(num)d record", "%(num)d records", 1) % {"num": 1} == "共 1 条"
    assert zh.ngettext("%(num)d record", "%(num)d records", 7) % {"num": 7} == "共 7 条"
    message = zh.gettext(
        "The password must have at least {min_length} characters, contain letters and "
        "digits, and must not contain the user name or be a common password."
    )
    assert "12" in message.format(min_length=12)


def test_english_falls_back_to_the_msgids() -> None:
    assert set(SUPPORTED) == {"zh_CN", "en"}
    catalog = _catalog("en")
    assert not catalog.fuzzy
    blank = [ids[0] for ids, strings in _entries(catalog) if any(not s for s in strings)]
    assert not blank, f"empty translations in the en catalogue are compiled as empty text: {blank}"
    en = translations("en")
    assert en.gettext("Log in") == "Log in"
    assert en.ngettext("%(num)d record", "%(num)d records", 1) == "%(num)d record"
    assert en.ngettext("%(num)d record", "%(num)d records", 2) == "%(num)d records"
