"""The pure parts of the sending policy: masking, parts, quiet hours, unsubscribe words."""

from __future__ import annotations

from datetime import datetime

import pytest
from outbox import SHANGHAI

from patientline.channels.optouts import is_unsubscribe
from patientline.channels.policy import mask_phone, quiet_hours_end, sms_parts


@pytest.mark.parametrize(
    ("e164", "masked"),
    [("+8613812345678", "+86 138****5678"), ("+85251234567", "+852 51****4567"), ("+861065550000", "+86 106****0000")],
)
def test_numbers_are_masked_but_still_told_apart(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


@pytest.mark.parametrize(
    ("text", "parts"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("{" * 80, 1), ("{" * 81, 2),
     ("您" * 70, 1), ("您" * 71, 2), ("您" * 134, 2), ("您" * 135, 3), ("a" * 69 + "您", 1)],
)  # fmt: skip
def test_parts_follow_gsm_and_ucs2_limits(text: str, parts: int) -> None:
    assert sms_parts(text) == parts


@pytest.mark.parametrize(
    ("hour", "minute", "held_until_hour"),
    [(20, 59, None), (21, 0, 8), (23, 59, 8), (0, 0, 8), (7, 59, 8), (8, 0, None), (12, 0, None)],
)
def test_quiet_hours_span_midnight(hour: int, minute: int, held_until_hour: int | None) -> None:
    moment = datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI)
    end = quiet_hours_end(moment, spec="21:00-08:00", timezone="Asia/Shanghai")
    assert (end.astimezone(SHANGHAI).hour if end else None) == held_until_hour
    assert end is None or end > moment
    assert quiet_hours_end(moment, spec="", timezone="Asia/Shanghai") is None


@pytest.mark.parametrize("text", ["TD", "td", " T ", "退订", "退订。", "ＴＤ", "STOP"])
def test_unsubscribe_words(text: str) -> None:
    assert is_unsubscribe(text)


@pytest.mark.parametrize("text", ["", "5", "谢谢", "TDD", "不要退订", "N"])
def test_other_replies_are_not_unsubscribes(text: str) -> None:
    assert not is_unsubscribe(text)
