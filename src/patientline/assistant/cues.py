"""Who a message is about: age and sex read from how callers speak ("我爸七十二了", "孩子5岁",
"宝宝八个月"), for when a form or an eval line does not give them.

Text here is already folded (`knowledge.search.text.fold`: simplified, half-width, lower case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHINESE_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

_NUMBER = r"(?<![\d百千零一二两三四五六七八九十])(\d{1,3}|[一二两三四五六七八九十]{1,3})"
_YEARS = re.compile(_NUMBER + r"\s*(?:多|来)?\s*(?:周岁|虚岁|岁)")
_BABY = r"(?:宝宝|孩子|娃|婴儿|小孩|儿子|女儿|闺女|孙子|孙女|外孙)"
# "八个月大", "宝宝八个月", "八个月的宝宝": not "胃疼两个月了" or "怀孕五个月"
_MONTHS = re.compile(
    _NUMBER
    + r"\s*(?:个|個)?\s*(?:多)?\s*月(?:大|龄)|"
    + _BABY
    + r"\S{0,3}?"
    + _NUMBER
    + r"\s*(?:个|個)\s*(?:多)?\s*月(?!了)|"
    + _NUMBER
    + r"\s*(?:个|個)\s*(?:多)?\s*月的"
    + _BABY
)
_DAYS = re.compile(_NUMBER + r"\s*(?:天大|天的宝宝|天的孩子)")
_AGE_OF_RELATIVE = re.compile(r"(?:今年|都|已经)\s*" + _NUMBER + r"\s*(?:多)?\s*了")
_DECADE = re.compile(r"(?<![\d百千])([二三四五六七八九])十(?:多|来)\s*(?:岁|了|周岁)")

INFANT_WORDS = ("宝宝", "婴儿", "新生儿", "小宝", "小婴", "娃娃", "小孩", "小儿", "小娃")
CHILD_GUESS_AGE = 6

MALE_WORDS = (
    "我爸", "爸爸", "父亲", "老爷子", "公公", "爷爷", "外公", "姥爷", "老公", "丈夫", "儿子", "哥哥", "弟弟",
    "男朋友", "老头", "大爷", "叔叔", "舅舅", "伯伯", "男孩", "小伙", "男的", "男性", "我是男", "孙子", "外孙",
)  # fmt: skip
FEMALE_WORDS = (
    "我妈", "妈妈", "母亲", "老太太", "婆婆", "奶奶", "外婆", "姥姥", "老婆", "媳妇", "妻子", "女儿", "闺女",
    "姐姐", "妹妹", "女朋友", "老太", "大妈", "阿姨", "女孩", "姑娘", "女的", "女性", "我是女", "孙女",
)  # fmt: skip
# What only one sex's body has settles it, whoever else the message names ("老公陪我来，月经不调").
FEMALE_BODY = (
    "怀孕", "怀宝宝", "怀上", "孕妇", "月经", "白带", "例假", "大姨妈", "产后", "坐月子", "子宫", "卵巢", "阴道",
    "产检", "流产", "宫颈",
)  # fmt: skip
MALE_BODY = ("前列腺", "阳痿", "早泄", "精子", "睾丸", "阴囊", "包皮", "勃起", "遗精")


@dataclass(frozen=True, slots=True)
class Cues:
    age: int | None
    sex: str | None  # "男" or "女"
    age_guessed: bool = False  # no age given or stated; a child's word (宝宝, 小孩) put it at CHILD_GUESS_AGE


def chinese_number(text: str) -> int | None:
    """1–3 Arabic digits, or a Chinese number up to 九十九 (两, 十二, 二十, 七十二); None for anything else."""
    if text.isascii() and text.isdecimal():
        return int(text)
    if "十" not in text:
        return _digit(text)
    tens, _, units = text.partition("十")
    tens_value = 1 if not tens else _digit(tens)
    units_value = 0 if not units else _digit(units)
    if tens_value is None or units_value is None or tens == "两" or units == "两":
        return None
    return tens_value * 10 + units_value


def _digit(text: str) -> int | None:
    value = CHINESE_DIGITS.get(text) if len(text) == 1 else None
    return value or None  # 零 is no digit of an age


def age_in(text: str) -> int | None:
    """The age the message states, in whole years (babies counted in months or days are 0)."""
    if _MONTHS.search(text) or _DAYS.search(text):
        return 0
    for pattern in (_YEARS, _AGE_OF_RELATIVE):
        if match := pattern.search(text):
            value = chinese_number(match.group(1))
            if value is not None and value <= 120:
                return value
    if match := _DECADE.search(text):
        return CHINESE_DIGITS[match.group(1)] * 10
    return None


def sex_in(text: str) -> str | None:
    """The sex the message implies: by what only one sex's body has, else by whom it speaks of first."""
    female_body = any(word in text for word in FEMALE_BODY)
    if female_body != any(word in text for word in MALE_BODY):
        return "女" if female_body else "男"
    male = _first(text, MALE_WORDS)
    female = _first(text, FEMALE_WORDS)
    if male is None:
        return None if female is None else "女"
    if female is None:
        return "男"
    return "男" if male < female else "女"


def _first(text: str, words: tuple[str, ...]) -> int | None:
    positions = [position for word in words if (position := text.find(word)) >= 0]
    return min(positions) if positions else None


def cues_of(text: str, *, age: int | None = None, sex: str | None = None) -> Cues:
    """Given values win; the text fills what is missing."""
    sex = sex if sex is not None else sex_in(text)
    if age is None and (age := age_in(text)) is None and any(word in text for word in INFANT_WORDS):
        return Cues(CHILD_GUESS_AGE, sex, age_guessed=True)
    return Cues(age, sex)
