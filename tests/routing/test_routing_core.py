"""The router core, command by command: offers, strategies, wrap-up, overflow, widening, supervisors, errors."""

from __future__ import annotations

import pytest

from patientline.routing.core import (
    AgentChanged,
    AgentProfile,
    Effect,
    Logged,
    Offered,
    OfferEnded,
    QueueConfig,
    Reason,
    Router,
    RouterConfig,
    RoutingError,
    Status,
    Strategy,
    TaskExpired,
    TaskSpec,
    TaskState,
    WrapUpPolicy,
)

VOICE = "voice"


def router(*queues: QueueConfig, **config: object) -> Router:
    core = Router(RouterConfig(**config))  # type: ignore[arg-type]
    for queue in queues or (QueueConfig(1),):
        core.set_queue(queue)
    return core


def ready_agent(core: Router, agent_id: int, now: float = 0.0, *, queues: dict[int, int] | None = None,
                capacities: dict[str, int] | None = None, skills: dict[str, int] | None = None,
                handled_today: int = 0) -> list[Effect]:  # fmt: skip
    profile = AgentProfile(agent_id, capacities or {VOICE: 1, "chat": 3}, skills or {}, queues or {1: 1}, handled_today)
    core.login(profile, now)
    return core.ready(agent_id, now)


def offers(effects: list[Effect]) -> list[tuple[int, int]]:
    return [(e.task, e.agent) for e in effects if isinstance(e, Offered)]


def logged(effects: list[Effect], event: str) -> list[Logged]:
    return [e for e in effects if isinstance(e, Logged) and e.event == event]


def submit(core: Router, task_id: int, now: float, *, queue: int = 1, channel: str = VOICE, priority: int = 0,
           entered_at: float | None = None) -> list[Effect]:  # fmt: skip
    return core.submit(TaskSpec(task_id, queue, channel, priority, entered_at), now)


# ---- the basic cycle -----------------------------------------------------------------------------


def test_login_ready_offer_accept_complete() -> None:
    core = router()
    login = core.login(AgentProfile(7, {VOICE: 1}, queues={1: 1}), 0)
    assert [e.event for e in login if isinstance(e, Logged)] == ["login", "pause"]
    assert core.agent(7).status is Status.NOT_READY and core.agent(7).reason is Reason.OTHER
    assert offers(submit(core, 100, 1)) == []  # not ready yet
    assert core.task(100).position == 1
    effects = core.ready(7, 2)
    assert logged(effects, "unpause")[0].duration_s == 2
    assert offers(effects) == [(100, 7)]
    offer = next(e for e in effects if isinstance(e, Offered))
    assert offer.expires_at == 17.0 and offer.queue == 1 and offer.channel == VOICE
    assert effects[-1] == AgentChanged(7, Status.OFFERED, None, 2)
    accepted = core.accept(100, 7, 5)
    assert logged(accepted, "accept")[0].wait_s == 4
    assert core.agent(7).status is Status.BUSY and core.agent(7).handled_today == 1
    assert core.task(100).state is TaskState.ACTIVE
    done = core.complete(100, 65)
    assert logged(done, "complete")[0].duration_s == 60
    assert core.agent(7).status is Status.READY and core.agent(7).idle_since == 65
    with pytest.raises(RoutingError) as error:
        core.task(100)
    assert error.value.code == "unknown_task"


def test_a_task_submitted_with_a_ready_agent_is_offered_at_once() -> None:
    core = router()
    ready_agent(core, 1)
    assert offers(submit(core, 10, 5)) == [(10, 1)]
    assert core.queue_stats(1, 5).ringing == 1


def test_the_same_commands_give_the_same_effects() -> None:
    def run() -> list[Effect]:
        core = router(QueueConfig(1, aging_per_minute=1, widen_after_s=(10,)), QueueConfig(2, priority=1))
        out: list[Effect] = []
        for agent in range(1, 6):
            out += ready_agent(core, agent, queues={1: 1 + agent % 2, 2: 1})
        for task in range(20):
            out += submit(core, task, task, queue=1 + task % 2, priority=task % 3)
        out += core.tick(30)
        return out

    assert run() == run()


# ---- ordering of tasks ---------------------------------------------------------------------------


def test_first_in_first_out_within_equal_priority() -> None:
    core = router()
    for task in range(5):
        submit(core, task, task)
    assert [t.id for t in core.waiting(1)] == [0, 1, 2, 3, 4]
    ready_agent(core, 1, 10)
    assert core.agent(1).offer == 0


def test_higher_priority_first_and_queue_priority_counts() -> None:
    core = router(QueueConfig(1), QueueConfig(2, priority=3))
    submit(core, 1, 0, queue=1)
    submit(core, 2, 1, queue=1, priority=5)  # VIP
    submit(core, 3, 2, queue=2)
    submit(core, 4, 3, queue=2, priority=1)
    assert [t.id for t in core.waiting(1)] == [2, 1]
    effects = ready_agent(core, 9, 10, queues={1: 1, 2: 1})
    assert offers(effects) == [(2, 9)]  # 0 + 5 beats 3 + 1
    core.accept(2, 9, 11)
    assert offers(core.complete(2, 20)) == [(4, 9)]


def test_aging_lets_an_old_low_priority_task_go_before_newer_urgent_ones() -> None:
    core = router(QueueConfig(1, aging_per_minute=1.0))  # 2 priority points = 2 minutes of waiting
    submit(core, 1, 0)
    submit(core, 2, 100, priority=2)  # urgent, 100 s later: still ahead
    submit(core, 3, 200, priority=2)  # urgent, 200 s later: behind
    assert [t.id for t in core.waiting(1, 300)] == [2, 1, 3]
    without_aging = router()
    for task, at in ((1, 0), (2, 100), (3, 200)):
        submit(without_aging, task, at, priority=0 if task == 1 else 2)
    assert [t.id for t in without_aging.waiting(1, 300)] == [2, 3, 1]


def test_aging_across_queues_changes_the_order_with_time() -> None:
    core = router(QueueConfig(1, priority=3), QueueConfig(2, aging_per_minute=1.0))
    submit(core, 1, 0, queue=1)
    submit(core, 2, 0, queue=2)
    ready_agent(core, 1, 120, queues={1: 1, 2: 1})
    assert core.agent(1).offer == 1  # 3 against 2
    core.accept(1, 1, 121)
    assert offers(core.complete(1, 600)) == [(2, 1)]
    submit(core, 3, 600, queue=1)
    ready_agent(core, 2, 601, queues={1: 1, 2: 1})
    assert core.agent(2).offer == 3


def test_entered_at_keeps_a_patients_place() -> None:
    core = router()
    submit(core, 1, 10)
    submit(core, 2, 20, entered_at=5)  # e.g. transferred in or rebuilt
    assert [t.id for t in core.waiting(1)] == [2, 1]


# ---- choosing the agent --------------------------------------------------------------------------


def test_longest_idle_agent_first() -> None:
    core = router()
    ready_agent(core, 1, 10)
    ready_agent(core, 2, 5)
    ready_agent(core, 3, 20)
    assert offers(submit(core, 1, 30)) == [(1, 2)]
    assert offers(submit(core, 2, 31)) == [(2, 1)]


def test_fewest_today_then_longest_idle() -> None:
    core = router(QueueConfig(1, strategy=Strategy.FEWEST_TODAY))
    ready_agent(core, 1, 0, handled_today=4)
    ready_agent(core, 2, 5, handled_today=1)
    ready_agent(core, 3, 3, handled_today=1)
    assert offers(submit(core, 1, 10)) == [(1, 3)]
    core.new_day()
    assert core.agent(1).handled_today == 0
    assert offers(submit(core, 2, 11)) == [(2, 1)]


def test_round_robin_goes_round() -> None:
    core = router(QueueConfig(1, strategy=Strategy.ROUND_ROBIN))
    for agent in (3, 1, 2):
        ready_agent(core, agent, 0)
    got = []
    for task in range(6):
        (offer,) = offers(submit(core, task, task))
        core.accept(task, offer[1], task)
        core.complete(task, task + 0.5)
        got.append(offer[1])
    assert got == [1, 2, 3, 1, 2, 3]


def test_best_skill_then_longest_idle() -> None:
    core = router(QueueConfig(1, strategy=Strategy.BEST_SKILL, skill="peds"))
    ready_agent(core, 1, 0, skills={"peds": 3})
    ready_agent(core, 2, 5, skills={"peds": 5})
    ready_agent(core, 3, 1, skills={"peds": 5})
    ready_agent(core, 4, 0)
    assert [o[1] for o in offers(submit(core, 1, 10))] == [3]
    assert [o[1] for o in offers(submit(core, 2, 10))] == [2]
    assert [o[1] for o in offers(submit(core, 3, 10))] == [1]
    assert [o[1] for o in offers(submit(core, 4, 10))] == [4]


def test_only_members_with_capacity_on_the_channel() -> None:
    core = router(QueueConfig(1), QueueConfig(2))
    ready_agent(core, 1, 0, queues={2: 1})
    ready_agent(core, 2, 1, capacities={"chat": 2})
    ready_agent(core, 3, 2, capacities={VOICE: 1})
    assert offers(submit(core, 1, 5, channel=VOICE)) == [(1, 3)]
    assert offers(submit(core, 2, 5, channel="chat")) == [(2, 2)]
    assert offers(submit(core, 3, 5, channel="email")) == []


def test_chats_in_parallel_up_to_capacity_and_voice_alone() -> None:
    core = router()
    ready_agent(core, 1, 0, capacities={VOICE: 1, "chat": 2})
    for task in (1, 2, 3):
        submit(core, task, task, channel="chat")
    core.accept(1, 1, 4)
    assert core.agent(1).offer == 2
    core.accept(2, 1, 5)
    assert core.agent(1).offer is None and core.agent(1).status is Status.BUSY  # at capacity
    submit(core, 4, 6, channel=VOICE)
    assert offers(core.complete(1, 7)) == [(3, 1)]  # a chat, not the call: it needs a free agent
    core.accept(3, 1, 8)
    core.complete(2, 9)
    assert offers(core.complete(3, 10)) == [(4, 1)]
    core.accept(4, 1, 11)
    submit(core, 5, 12, channel="chat")
    assert core.agent(1).offer is None  # on a call: nothing else


def test_multi_chat_agents_least_loaded_first() -> None:
    core = router()
    ready_agent(core, 1, 0, capacities={"chat": 3})
    ready_agent(core, 2, 5, capacities={"chat": 3})
    submit(core, 1, 10, channel="chat")
    core.accept(1, 1, 10)
    assert offers(submit(core, 2, 11, channel="chat")) == [(2, 2)]


# ---- offers that are not taken -------------------------------------------------------------------


def test_offer_timeout_goes_to_the_next_agent_and_back_to_its_place() -> None:
    core = router()
    ready_agent(core, 1, 0)
    ready_agent(core, 2, 1)
    submit(core, 1, 10)
    assert core.next_due() == 25
    assert core.tick(24) == []
    effects = core.tick(25)
    assert OfferEnded(1, 1, "timeout") in effects
    assert logged(effects, "ring_no_answer")[0].reason == "timeout"
    assert offers(effects) == [(1, 2)]
    assert core.agent(1).missed == 1 and core.agent(1).status is Status.READY


def test_two_missed_offers_set_the_agent_not_ready() -> None:
    core = router()
    ready_agent(core, 1, 0)
    submit(core, 1, 10)
    assert offers(core.tick(25)) == [(1, 1)]  # no one else: the same agent again
    effects = core.tick(40)
    assert core.agent(1).status is Status.NOT_READY and core.agent(1).reason is Reason.MISSED_OFFERS
    assert logged(effects, "pause")[0].reason == "missed_offers"
    assert core.task(1).state is TaskState.WAITING and core.next_due() is None


def test_an_accepted_offer_resets_the_missed_count() -> None:
    core = router(max_missed_offers=2)
    ready_agent(core, 1, 0)
    submit(core, 1, 0)
    core.tick(15)
    core.accept(1, 1, 16)
    assert core.agent(1).missed == 0
    core.complete(1, 20)
    submit(core, 2, 21)
    core.tick(36)
    assert core.agent(1).status is Status.OFFERED and core.agent(1).missed == 1


def test_decline_is_not_a_miss_and_the_decliner_comes_last() -> None:
    core = router()
    ready_agent(core, 1, 0)
    ready_agent(core, 2, 5)
    submit(core, 1, 10)
    effects = core.decline(1, 1, 12)
    assert OfferEnded(1, 1, "declined") in effects and offers(effects) == [(1, 2)]
    assert core.agent(1).missed == 0 and core.agent(1).status is Status.READY
    core.decline(1, 2, 13)
    assert core.agent(1).offer == 1  # both declined: the longest idle again


def test_not_ready_while_ringing_puts_the_task_back() -> None:
    core = router()
    ready_agent(core, 1, 0)
    submit(core, 1, 10)
    effects = core.not_ready(1, Reason.BREAK, 11)
    assert OfferEnded(1, 1, "withdrawn") in effects
    assert core.task(1).state is TaskState.WAITING and core.agent(1).missed == 0


# ---- patients leaving ----------------------------------------------------------------------------


def test_abandon_while_waiting_and_while_ringing() -> None:
    core = router()
    submit(core, 1, 0)
    assert logged(core.abandon(1, 30), "abandon")[0].wait_s == 30
    ready_agent(core, 1, 40)
    submit(core, 2, 50)
    effects = core.abandon(2, 53)
    assert OfferEnded(2, 1, "abandoned") in effects and not logged(effects, "ring_no_answer")
    assert core.agent(1).status is Status.READY and core.next_due() is None


def test_keep_place_turns_the_task_into_a_callback_in_its_place() -> None:
    core = router()
    submit(core, 1, 0)
    submit(core, 2, 1)
    core.keep_place(1, 5)
    assert [(t.id, t.channel) for t in core.waiting(1)] == [(1, "callback"), (2, VOICE)]
    ready_agent(core, 1, 10, capacities={VOICE: 1})
    assert core.agent(1).offer == 2  # no callback capacity
    ready_agent(core, 2, 11, capacities={"callback": 1})
    assert core.agent(2).offer == 1


# ---- wrap-up -------------------------------------------------------------------------------------


def busy_agent(core: Router, queue: int = 1) -> None:
    ready_agent(core, 1, 0, queues={queue: 1})
    submit(core, 1, 0, queue=queue)
    core.accept(1, 1, 1)


def test_mandatory_wrap_up_ends_by_time_or_early() -> None:
    core = router(QueueConfig(1, wrap_up=WrapUpPolicy.MANDATORY, wrap_up_s=30))
    busy_agent(core)
    core.complete(1, 10)
    assert core.agent(1).status is Status.WRAP_UP and core.agent(1).wrap_up_until == 40
    submit(core, 2, 11)
    assert core.agent(1).offer is None
    effects = core.tick(40)
    assert logged(effects, "wrap_end")[0].duration_s == 30 and offers(effects) == [(2, 1)]
    core.accept(2, 1, 41)
    core.complete(2, 50)
    effects = core.end_wrap_up(1, 55)
    assert logged(effects, "wrap_end")[0].duration_s == 5 and core.agent(1).status is Status.READY
    assert core.end_wrap_up(1, 56) == []
    assert core.tick(80) == []  # the old timer is stale


def test_wrap_up_on_request_only_when_asked_and_never_without_policy() -> None:
    core = router(QueueConfig(1, wrap_up=WrapUpPolicy.ON_REQUEST, wrap_up_s=60), QueueConfig(2))
    busy_agent(core)
    core.complete(1, 10)
    assert core.agent(1).status is Status.READY
    submit(core, 2, 11)
    core.accept(2, 1, 12)
    core.complete(2, 20, wrap_up=True)
    assert core.agent(1).wrap_up_until == 80
    core2 = router(QueueConfig(1, wrap_up=WrapUpPolicy.NONE, wrap_up_s=60))
    busy_agent(core2)
    core2.complete(1, 10, wrap_up=True)
    assert core2.agent(1).status is Status.READY


def test_pausing_during_a_call_takes_effect_after_it() -> None:
    core = router(QueueConfig(1, wrap_up=WrapUpPolicy.MANDATORY, wrap_up_s=10))
    busy_agent(core)
    core.not_ready(1, Reason.MEAL, 5)
    assert core.agent(1).status is Status.BUSY and core.agent(1).presence is Status.NOT_READY
    core.complete(1, 20)
    core.tick(30)
    assert core.agent(1).status is Status.NOT_READY and core.agent(1).reason is Reason.MEAL


# ---- overflow, maximum wait, widening ------------------------------------------------------------


def test_overflow_at_the_threshold_on_arrival() -> None:
    core = router(QueueConfig(1, overflow_queue=2, overflow_threshold=2), QueueConfig(2))
    submit(core, 1, 0)
    submit(core, 2, 1)
    effects = submit(core, 3, 2)
    assert [(e.event, e.queue, e.reason) for e in effects if isinstance(e, Logged)] == [
        ("enter", 1, None), ("transfer", 1, "overflow"), ("enter", 2, None)]  # fmt: skip
    assert core.task(3).queue == 2 and core.queue_stats(1, 2).waiting == 2


def test_overflow_chains_stop_at_a_cycle() -> None:
    core = router(QueueConfig(1, overflow_queue=2, overflow_threshold=0), QueueConfig(2, overflow_queue=1,
                  overflow_threshold=0))  # fmt: skip
    submit(core, 1, 0)
    assert core.task(1).queue == 2


def test_max_wait_moves_to_the_overflow_queue_keeping_the_entry_time() -> None:
    core = router(QueueConfig(1, max_wait_s=60, overflow_queue=2), QueueConfig(2, max_wait_s=60))
    submit(core, 1, 0)
    assert core.next_due() == 60
    effects = core.tick(60)
    assert logged(effects, "transfer")[0].wait_s == 60
    assert core.task(1).queue == 2 and core.task(1).entered_at == 0
    effects = core.tick(120)  # the overflow queue's own maximum counts from arrival there
    assert TaskExpired(1, 2) in effects and logged(effects, "expire")[0].wait_s == 120


def test_max_wait_while_ringing_waits_for_the_offer() -> None:
    core = router(QueueConfig(1, max_wait_s=10))
    ready_agent(core, 1, 0)
    submit(core, 1, 0)
    assert not [e for e in core.tick(10) if isinstance(e, TaskExpired)]
    core.decline(1, 1, 12)  # offered again to the same agent
    core.not_ready(1, Reason.BREAK, 13)
    assert TaskExpired(1, 1) in core.tick(13)


def test_tiers_open_with_waiting_time() -> None:
    core = router(QueueConfig(1, widen_after_s=(30, 90)))
    ready_agent(core, 2, 0, queues={1: 2})
    ready_agent(core, 3, 0, queues={1: 3})
    ready_agent(core, 4, 0, queues={1: 4})  # no threshold for tier 4: never
    submit(core, 1, 0)
    submit(core, 2, 20)
    assert core.agent(2).offer is None
    assert core.next_due() == 30
    assert offers(core.tick(30)) == [(1, 2)]
    core.accept(1, 2, 31)
    assert offers(core.tick(90)) == []
    assert offers(core.tick(110)) == [(2, 3)]
    assert core.agent(4).offer is None


def test_a_tier_two_agent_freed_late_takes_the_oldest_qualifying_task() -> None:
    core = router(QueueConfig(1, widen_after_s=(30,)))
    submit(core, 1, 0)
    submit(core, 2, 50)
    assert offers(ready_agent(core, 2, 60, queues={1: 2})) == [(1, 2)]
    core.accept(1, 2, 61)
    assert offers(core.complete(1, 70)) == []  # task 2 has waited 20 s only
    assert offers(core.tick(80)) == [(2, 2)]


# ---- supervisors ---------------------------------------------------------------------------------


def test_forced_presence_is_logged_with_the_supervisor() -> None:
    core = router()
    ready_agent(core, 1, 0)
    effects = core.not_ready(1, Reason.SUPERVISOR, 5, by=99)
    assert logged(effects, "pause")[0].by == 99
    effects = core.ready(1, 6, by=99)
    assert logged(effects, "unpause")[0].by == 99
    assert core.ready(1, 7) == []


def test_logout_is_refused_with_live_work_unless_forced() -> None:
    core = router()
    busy_agent(core)
    submit(core, 2, 2)
    with pytest.raises(RoutingError) as error:
        core.logout(1, 3)
    assert error.value.code == "busy"
    effects = core.logout(1, 3, by=99)
    assert logged(effects, "logout")[0].by == 99
    assert core.agent(1).status is Status.BUSY and core.agent(1).presence is Status.OFFLINE
    with pytest.raises(RoutingError):
        core.ready(1, 4)
    core.complete(1, 10)
    with pytest.raises(RoutingError) as error:
        core.agent(1)
    assert error.value.code == "unknown_agent"
    assert core.task(2).state is TaskState.WAITING


def test_forced_logout_puts_a_ringing_task_back() -> None:
    core = router()
    ready_agent(core, 1, 0)
    ready_agent(core, 2, 1)
    submit(core, 1, 2)
    effects = core.logout(1, 3, by=99)
    assert OfferEnded(1, 1, "withdrawn") in effects and offers(effects) == [(1, 2)]


def test_move_keeps_the_entry_time_and_withdraws_a_ringing_offer() -> None:
    core = router(QueueConfig(1), QueueConfig(2))
    ready_agent(core, 1, 0)
    submit(core, 1, 5)
    effects = core.move(1, 2, 8, by=99)
    assert OfferEnded(1, 1, "moved") in effects
    transfer = logged(effects, "transfer")[0]
    assert (transfer.queue, transfer.reason, transfer.by, transfer.wait_s) == (1, "moved", 99, 3)
    assert core.task(1).queue == 2 and core.task(1).entered_at == 5
    assert core.agent(1).status is Status.READY


def test_set_priority_reorders_the_queue() -> None:
    core = router()
    for task in range(3):
        submit(core, task, task)
    core.set_priority(2, 9, 5, by=99)
    assert [t.id for t in core.waiting(1)] == [2, 0, 1]
    assert core.task(2).position == 1 and core.task(1).position == 3


def test_transfer_leaves_the_agent_and_waits_afresh_elsewhere() -> None:
    core = router(QueueConfig(1, wrap_up=WrapUpPolicy.MANDATORY, wrap_up_s=30), QueueConfig(2))
    busy_agent(core)
    ready_agent(core, 2, 0, queues={2: 1})
    effects = core.transfer(1, 2, 40, by=None)
    assert [e.event for e in effects if isinstance(e, Logged)][:3] == ["complete", "transfer", "enter"]
    assert logged(effects, "transfer")[0].reason == "agent"
    assert offers(effects) == [(1, 2)]
    assert core.agent(1).status is Status.READY  # no wrap-up after a transfer
    assert core.task(1).entered_at == 40


def test_remove_queue_only_when_empty() -> None:
    core = router(QueueConfig(1), QueueConfig(2))
    submit(core, 1, 0)
    with pytest.raises(RoutingError) as error:
        core.remove_queue(1, 1)
    assert error.value.code == "queue_not_empty"
    core.remove_queue(2, 1)
    assert core.queue_ids() == [1]


def test_changing_a_queue_keeps_its_tasks_and_matches_again() -> None:
    core = router()
    ready_agent(core, 2, 0, queues={1: 2})
    submit(core, 1, 0)
    assert core.agent(2).offer is None
    core.set_queue(QueueConfig(1, widen_after_s=(10,)), 20)
    assert core.agent(2).offer == 1


def test_update_agent_changes_memberships() -> None:
    core = router(QueueConfig(1), QueueConfig(2))
    ready_agent(core, 1, 0)
    submit(core, 1, 1, queue=2)
    effects = core.update_agent(AgentProfile(1, {VOICE: 1}, queues={2: 1}), 2)
    assert offers(effects) == [(1, 1)]
    assert core.agent(1).status is Status.OFFERED


# ---- errors change nothing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (lambda c: c.submit(TaskSpec(1, 9, VOICE), 1), "unknown_queue"),
        (lambda c: c.submit(TaskSpec(1, 1, VOICE), 1), "duplicate_task"),
        (lambda c: c.accept(1, 2, 1), "not_offered"),
        (lambda c: c.accept(9, 1, 1), "unknown_task"),
        (lambda c: c.accept(1, 9, 1), "unknown_agent"),
        (lambda c: c.decline(1, 2, 1), "not_offered"),
        (lambda c: c.complete(1, 1), "not_active"),
        (lambda c: c.transfer(1, 1, 1), "not_active"),
        (lambda c: c.move(1, 9, 1), "unknown_queue"),
        (lambda c: c.ready(9, 1), "unknown_agent"),
        (lambda c: c.logout(1, 1), "busy"),
        (lambda c: c.remove_queue(1, 1), "queue_not_empty"),
        (lambda c: c.remove_queue(9, 1), "unknown_queue"),
        (lambda c: c.update_agent(AgentProfile(9, {VOICE: 1}), 1), "unknown_agent"),
    ],
)
def test_errors_carry_a_code_and_change_nothing(command: object, code: str) -> None:
    core = router()
    ready_agent(core, 1, 0)
    ready_agent(core, 2, 0, capacities={"chat": 1})
    submit(core, 1, 0)
    before = (core.agents(), core.task(1), core.next_due())
    with pytest.raises(RoutingError) as error:
        command(core)  # type: ignore[operator]
    assert error.value.code == code
    assert (core.agents(), core.task(1), core.next_due()) == before


def test_active_tasks_cannot_be_moved_abandoned_or_reprioritised() -> None:
    core = router(QueueConfig(1), QueueConfig(2))
    busy_agent(core)
    for command in (lambda: core.move(1, 2, 5), lambda: core.abandon(1, 5), lambda: core.set_priority(1, 3, 5),
                    lambda: core.keep_place(1, 5)):  # fmt: skip
        with pytest.raises(RoutingError) as error:
            command()
        assert error.value.code == "not_waiting"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        QueueConfig(1, widen_after_s=(60, 30))
    with pytest.raises(ValueError):
        AgentProfile(1, {VOICE: 1}, queues={1: 0})
    with pytest.raises(ValueError):
        AgentProfile(1, {VOICE: 1}, skills={"x": 6})
    with pytest.raises(ValueError):
        RouterConfig(offer_timeout_s=0)


# ---- rebuild and queries -------------------------------------------------------------------------


def test_restore_puts_agents_and_tasks_back_without_logging() -> None:
    core = router()
    profile = AgentProfile(1, {VOICE: 1, "chat": 2}, queues={1: 1}, handled_today=7)
    assert core.restore_agent(profile, presence=Status.READY, reason=None, since=100, idle_since=90, missed=1,
                              now=200) == []  # fmt: skip
    core.restore_agent(AgentProfile(2, {VOICE: 1}, queues={1: 1}), presence=Status.NOT_READY, reason=Reason.BREAK,
                       since=150, idle_since=150, missed=0, now=200)  # fmt: skip
    assert core.restore_task(TaskSpec(1, 1, VOICE, entered_at=50), now=200, agent=1, accepted_at=60) == []
    view = core.agent(1)
    assert (view.status, view.since, view.handled_today, view.missed, view.active) == (Status.BUSY, 100, 7, 1, (1,))
    effects = core.restore_task(TaskSpec(2, 1, VOICE, entered_at=150), now=200)
    assert offers(effects) == [] and core.task(2).state is TaskState.WAITING
    assert logged(core.complete(1, 210), "complete")[0].duration_s == 150
    assert core.agent(1).offer == 2
    core.ready(2, 220)
    assert core.agent(2).status is Status.READY


def test_queue_stats_count_members_by_status() -> None:
    core = router()
    ready_agent(core, 1, 0)
    ready_agent(core, 2, 0)
    ready_agent(core, 3, 0)
    core.not_ready(3, Reason.BREAK, 1)
    submit(core, 1, 2)
    submit(core, 2, 3)
    core.accept(1, 1, 4)
    for task in (3, 4):
        submit(core, task, 5)
    stats = core.queue_stats(1, 10)
    assert (stats.waiting, stats.ringing, stats.active, stats.longest_wait_s) == (2, 1, 1, 7)
    assert stats.agents[Status.BUSY] == 1 and stats.agents[Status.OFFERED] == 1
    assert stats.agents[Status.NOT_READY] == 1 and stats.agents[Status.READY] == 0


def test_logging_in_again_only_updates_the_profile() -> None:
    core = router(QueueConfig(1), QueueConfig(2))
    ready_agent(core, 1, 0)
    effects = core.login(AgentProfile(1, {VOICE: 1}, queues={2: 1}), 5)
    assert not logged(effects, "login") and core.agent(1).status is Status.READY
    assert offers(submit(core, 1, 6, queue=2)) == [(1, 1)]


def test_another_pause_reason_closes_the_pause_and_opens_another() -> None:
    core = router()
    ready_agent(core, 1, 0)
    core.not_ready(1, Reason.BREAK, 10)
    assert core.not_ready(1, Reason.BREAK, 11) == []
    effects = core.not_ready(1, Reason.MEAL, 40)
    assert [(e.event, e.reason, e.duration_s) for e in effects if isinstance(e, Logged)] == [
        ("unpause", "break", 30), ("pause", "meal", None)]  # fmt: skip
    assert effects[-1] == AgentChanged(1, Status.NOT_READY, Reason.MEAL, 40)
    logout = core.logout(1, 100)
    assert [(e.event, e.duration_s) for e in logout if isinstance(e, Logged)] == [("unpause", 60), ("logout", None)]


def test_a_callback_needs_the_agent_alone_like_a_call() -> None:
    core = router()
    ready_agent(core, 1, 0, capacities={"callback": 1, "chat": 2})
    submit(core, 1, 1, channel="chat")
    core.accept(1, 1, 2)
    submit(core, 2, 3, channel="callback")
    assert core.agent(1).offer is None
    assert offers(core.complete(1, 4)) == [(2, 1)]
