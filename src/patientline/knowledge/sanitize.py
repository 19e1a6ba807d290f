"""Answers are rich text written by editors and shown to agents and patients: only a small set of
tags survives, links keep to http(s), mail and phone, and pictures only come from our own image
store."""

from __future__ import annotations

import html
import re

import nh3

IMAGE_PATH = "/kb/images/"
ALLOWED_TAGS = {"p", "br", "ul", "ol", "li", "strong", "em", "b", "i", "u", "h3", "h4", "a", "img", "table",
                "thead", "tbody", "tr", "th", "td", "blockquote"}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "td": {"colspan", "rowspan"}}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value.startswith(IMAGE_PATH) and value[len(IMAGE_PATH) :].isdigit() else None
    return value


def clean_html(value: str) -> str:
    return nh3.clean(
        value,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer",
    ).strip()


def plain_text(value: str) -> str:
    """The answer as text, for search, SMS previews and quizzes."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", value))).strip()
