"""The sweep's `alerts_in_turn` gives what raising `due_alerts` one at a time would: the same alerts in
the same order, and the same next alert afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from patientline.workorders.policy import DeadlinePolicy
from patientline.workorders.timing import PendingAlert, alerts_in_turn, due_alerts, next_alert

START = datetime(2026, 11, 23, 2, tzinfo=UTC)
KINDS = ["warn_reply", "breach_reply", "warn_resolve", "breach_resolve"]


@dataclass
class Order:
    clock_started_at: datetime = START
    reply_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    replied_at: datetime | None = None
    resolved_at: datetime | None = None
    paused_at: datetime | None = None
    alerts_raised: list[str] = field(default_factory=list)
    escalation_level: int = 0
    is_open: bool = True


hours = st.integers(min_value=1, max_value=300).map(lambda h: START + timedelta(hours=h))
maybe_hours = st.none() | hours
orders = st.builds(
    Order,
    reply_due_at=maybe_hours,
    resolve_due_at=maybe_hours,
    replied_at=st.none() | st.none() | hours,
    resolved_at=st.none() | st.none() | hours,
    paused_at=st.sampled_from([None, None, None, START]),
    alerts_raised=st.lists(st.sampled_from(KINDS), unique=True),
    escalation_level=st.integers(min_value=0, max_value=3),
    is_open=st.sampled_from([True, True, True, False]),
)
policies = st.builds(
    DeadlinePolicy,
    warn_at=st.floats(min_value=0.1, max_value=0.95),
    escalate_after_hours=st.lists(st.integers(min_value=0, max_value=200), max_size=3).map(sorted),
)


def one_at_a_time(order: Order, policy: DeadlinePolicy, moment: datetime, limit: int) -> list[PendingAlert]:
    raised: list[PendingAlert] = []
    while len(raised) < limit and (due := due_alerts(order, policy, moment)):  # type: ignore[arg-type]
        alert = due[0]
        raised.append(alert)
        if alert.kind == "escalate":
            order.escalation_level = alert.level
        else:
            order.alerts_raised = [*order.alerts_raised, alert.kind]
    return raised


@settings(max_examples=300)
@example(  # level 1 comes due with the breach itself: the breach is raised first
    Order(reply_due_at=START + timedelta(hours=10)),
    DeadlinePolicy(escalate_after_hours=[0, 24, 72]),
    START + timedelta(hours=20),
    8,
)
@given(orders, policies, hours, st.integers(min_value=1, max_value=8))
def test_alerts_in_turn_matches_raising_due_alerts_one_at_a_time(
    order: Order, policy: DeadlinePolicy, moment: datetime, limit: int
) -> None:
    raising, following = alerts_in_turn(order, policy, moment, limit=limit)
    expected = one_at_a_time(order, policy, moment, limit)
    assert raising == expected
    assert following == next_alert(order, policy)  # type: ignore[arg-type]
