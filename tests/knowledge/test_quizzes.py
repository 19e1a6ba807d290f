"""Staff quizzes: generation from the published base and the timetable, assignment to people and teams,
taking a quiz once, results by quiz, person and team, and who may do what."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from quiz_base import EDITOR, ITEMS, LONG_QUESTION, Base, add_doctors, add_team, build_base, logged_in
from sqlalchemy import select

from helpers import Client, assert_error
from patientline.core import clock
from patientline.core.events import EventLogEntry
from patientline.knowledge import quizzes
from patientline.knowledge.models import QuizQuestion

DRAFT = "挂号费多少钱？"


@pytest.fixture
async def base(db: Any) -> Base:
    return await build_base(db)


async def generate(db: Any, **options: Any) -> tuple[int, list[QuizQuestion]]:
    values = {"title": "测验", "category_ids": [], "count": 5, "include_timetable": False, "due_at": None, "seed": 1}
    async with db.sessions() as session, session.begin():
        quiz = await quizzes.generate(session, actor=EDITOR, **(values | options))
        return quiz.id, await quizzes.questions_of(session, quiz.id)


async def create_quiz(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/kb/quizzes", json={"title": "第一周测验", "count": 4, "seed": 7} | body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def right_answer(question: dict[str, Any] | QuizQuestion) -> str:
    if isinstance(question, QuizQuestion):
        return question.choices[question.correct]
    return str(question["choices"][question["correct"]])


# ---- generation ------------------------------------------------------------------------------


async def test_questions_come_from_published_items_of_the_chosen_categories(db: Any, base: Base) -> None:
    _, questions = await generate(db, category_ids=[base.categories["REG"]], count=5)
    in_reg = {q for q, code in base.area_of.items() if code in ("REG", "APPT")}
    assert {q.prompt for q in questions} == in_reg  # sub-categories count, the draft does not
    assert DRAFT not in {q.prompt for q in questions}
    for question in questions:
        assert question.kind == "answer" and len(question.choices) == 4
        assert len(set(question.choices)) == 4, question.choices
        assert right_answer(question) == base.answers[question.prompt]
        assert question.item_id == base.items[question.prompt]
        wrong = set(question.choices) - {right_answer(question)}
        same_area = {base.answers[q] for q in in_reg if q != question.prompt}
        assert wrong <= same_area, "distractors come from the same area first"
    assert [q.position for q in questions] == [1, 2, 3, 4, 5]


async def test_distractors_fall_back_to_the_domain_then_anywhere(db: Any, base: Base) -> None:
    _, questions = await generate(db, category_ids=[base.categories["PAY"]], count=2)
    pay = {q for q, _ in ITEMS["PAY"]}
    outpatient = {base.answers[q] for q, code in base.area_of.items() if code in ("REG", "APPT")}
    for question in questions:
        wrong = set(question.choices) - {right_answer(question)}
        other_pay = {base.answers[q] for q in pay if q != question.prompt}
        assert other_pay <= wrong  # the area's only other item
        assert wrong - other_pay <= outpatient  # then the same domain, not the inpatient one

    _, questions = await generate(db, category_ids=[base.categories["ADM"]], count=3)
    for question in questions:
        assert len(set(question.choices)) == 4  # the domain has three items: the rest from anywhere


async def test_a_written_answer_is_shortened_when_there_is_no_spoken_one(db: Any) -> None:
    base = await build_base(db, long_answer=True)
    _, questions = await generate(db, category_ids=[base.categories["ADM"]], count=4)
    long = next(q for q in questions if q.prompt == LONG_QUESTION)
    answer = right_answer(long)
    assert answer.startswith("医院停车场位于门诊楼北侧") and len(answer) <= quizzes.ANSWER_LENGTH
    assert "<p>" not in answer
    assert quizzes.shorten("短。" * 100, limit=11).endswith("。")
    assert quizzes.shorten("无标点" * 100, limit=10) == "无标点无标点无标点…"


async def test_the_same_seed_gives_the_same_quiz(db: Any, base: Base) -> None:
    _, first = await generate(db, count=6, seed=42)
    _, second = await generate(db, count=6, seed=42)
    assert [(q.prompt, q.choices, q.correct) for q in first] == [(q.prompt, q.choices, q.correct) for q in second]


async def test_timetable_questions_ask_who_is_in_and_when(db: Any, base: Base) -> None:
    await add_doctors(db)
    _, questions = await generate(db, count=10, include_timetable=True, seed=3)
    timetable = [q for q in questions if q.kind == "timetable"]
    assert len(timetable) == 3 and len(questions) == 10
    for question in timetable:
        assert len(set(question.choices)) == 4 and question.item_id is None
        assert question.prompt.endswith("？") or question.prompt.endswith("?")
    doctors = {"王芳", "李强", "赵敏", "陈刚", "刘洋"}
    for question in timetable:
        if right_answer(question) in doctors:  # "周二下午哪位医生在消化内科出专家门诊？"
            assert set(question.choices) <= doctors
            assert "消化内科" in question.prompt or "心内科" in question.prompt


async def test_too_few_items_for_the_count_is_refused(admin: Client, db: Any, base: Base) -> None:
    response = await admin.post(
        "/api/kb/quizzes", json={"title": "太多了", "count": 3, "category_ids": [base.categories["PAY"]]}
    )
    body = assert_error(response, 422, "too_few_items")
    assert body["details"] == {"count": 3, "available": 2}
    assert_error(await admin.post("/api/kb/quizzes", json={"title": "x", "count": 11}), 422, "too_few_items")
    assert_error(await admin.post("/api/kb/quizzes", json={"title": "x", "count": 0}), 422)
    assert_error(await admin.post("/api/kb/quizzes", json={"title": "x", "category_ids": [99999]}), 422)
    for due in ("0001-01-01T00:00:00", "9999-12-31T23:59:00-08:00"):
        assert_error(await admin.post("/api/kb/quizzes", json={"title": "x", "count": 1, "due_at": due}), 422)
    assert (await admin.get("/api/kb/quizzes")).json() == []


async def test_an_empty_base_is_refused(admin: Client) -> None:
    assert_error(await admin.post("/api/kb/quizzes", json={"title": "空", "count": 1}), 422, "too_few_items")


# ---- assignment ------------------------------------------------------------------------------


async def test_assigning_a_team_expands_to_its_members_once(admin: Client, db: Any, base: Base, make_user: Any) -> None:
    amy, bob, cat = [await make_user(name, ["agent"]) for name in ("amy", "bob", "cat")]
    team = await add_team(db, code="HOT", user_ids=[amy, bob], without_login=1)
    quiz = await create_quiz(admin)
    response = await admin.post(f"/api/kb/quizzes/{quiz['id']}/assignments", json={"team_ids": [team]})
    assert response.status_code == 200, response.text
    assert response.json() == {"added": [amy, bob], "already": [], "without_login": 1}

    again = await admin.post(f"/api/kb/quizzes/{quiz['id']}/assignments", json={"team_ids": [team], "user_ids": [cat]})
    assert again.json() == {"added": [cat], "already": [amy, bob], "without_login": 1}
    results = (await admin.get(f"/api/kb/quizzes/{quiz['id']}/results")).json()
    assert sorted(a["user_id"] for a in results["assignees"]) == [amy, bob, cat]

    async with db.sessions() as session:
        rows = (await session.scalars(select(EventLogEntry).where(EventLogEntry.type == "notification"))).all()
    assigned = [row for row in rows if row.payload["body"] == "第一周测验"]
    assert sorted(row.audience["user_id"] for row in assigned) == [amy, bob, cat]  # once each
    assert all(row.payload["link"].startswith("/kb/quizzes/take/") for row in assigned)


async def test_assignment_refuses_unknown_people_and_teams(admin: Client, base: Base) -> None:
    quiz = await create_quiz(admin)
    url = f"/api/kb/quizzes/{quiz['id']}/assignments"
    assert_error(await admin.post(url, json={}), 422)
    assert_error(await admin.post(url, json={"user_ids": [99999]}), 422)
    assert_error(await admin.post(url, json={"team_ids": [99999]}), 422)
    assert_error(await admin.post("/api/kb/quizzes/99999/assignments", json={"user_ids": [1]}), 404)


# ---- taking a quiz ---------------------------------------------------------------------------


async def assigned_quiz(admin: Client, make_user: Any, username: str = "amy") -> tuple[dict[str, Any], int]:
    user_id = await make_user(username, ["agent"])
    quiz = await create_quiz(admin)
    response = await admin.post(f"/api/kb/quizzes/{quiz['id']}/assignments", json={"user_ids": [user_id]})
    assert response.status_code == 200, response.text
    return quiz, user_id


async def my_assignment(client: Client) -> dict[str, Any]:
    mine = (await client.get("/api/kb/quizzes/mine")).json()
    assert len(mine) == 1
    assignment: dict[str, Any] = mine[0]
    return assignment


async def test_the_assignee_sees_no_right_answers_before_submitting(
    admin: Client, app: Any, base: Base, make_user: Any
) -> None:
    quiz, _ = await assigned_quiz(admin, make_user)
    assert all("correct" in q for q in quiz["questions"])  # the manager sees them
    async with logged_in(app, "amy") as amy:
        assignment = await my_assignment(amy)
        assert assignment["submitted_at"] is None and assignment["score"] is None
        seen = (await amy.get(f"/api/kb/quizzes/{quiz['id']}")).json()
        assert [q["id"] for q in seen["questions"]] == [q["id"] for q in quiz["questions"]]
        assert all(set(q) == {"id", "position", "kind", "prompt", "choices"} for q in seen["questions"])
        sheet = (await amy.get(f"/api/kb/quizzes/assignments/{assignment['id']}")).json()
        assert all("correct" not in q for q in sheet["questions"])


async def test_submit_scores_once_and_points_to_the_items_to_read(
    admin: Client, app: Any, base: Base, make_user: Any
) -> None:
    quiz, _ = await assigned_quiz(admin, make_user)
    questions = quiz["questions"]
    answers = {str(q["id"]): q["correct"] for q in questions}
    wrong = questions[0]
    answers[str(wrong["id"])] = (wrong["correct"] + 1) % 4
    async with logged_in(app, "amy") as amy:
        assignment = await my_assignment(amy)
        url = f"/api/kb/quizzes/assignments/{assignment['id']}/submit"
        response = await amy.post(url, json={"answers": answers})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["assignment"]["correct_count"] == 3 and result["assignment"]["score"] == 75
        marked = {q["id"]: q for q in result["questions"]}
        assert marked[wrong["id"]]["choice"] == answers[str(wrong["id"])]
        assert marked[wrong["id"]]["correct"] == wrong["correct"]
        assert marked[wrong["id"]]["link"] == f"/kb?item={wrong['item_id']}"
        assert all(q["link"] is None for q in result["questions"] if q["id"] != wrong["id"])

        assert_error(await amy.post(url, json={"answers": answers}), 409, "already_submitted")
        after = (await amy.get(f"/api/kb/quizzes/{quiz['id']}")).json()
        assert all("correct" in q for q in after["questions"])  # revealed once submitted
        assert (await my_assignment(amy))["score"] == 75


async def test_answers_are_checked(admin: Client, app: Any, base: Base, make_user: Any) -> None:
    quiz, _ = await assigned_quiz(admin, make_user)
    ids = [q["id"] for q in quiz["questions"]]
    complete = {str(i): 0 for i in ids}
    async with logged_in(app, "amy") as amy:
        url = f"/api/kb/quizzes/assignments/{(await my_assignment(amy))['id']}/submit"
        missing = assert_error(await amy.post(url, json={"answers": {str(ids[0]): 0}}), 422)
        assert missing["details"] == {"missing_question_ids": ids[1:]}
        unknown = assert_error(await amy.post(url, json={"answers": complete | {"99999": 0}}), 422)
        assert unknown["details"] == {"unknown_question_ids": [99999]}
        out = assert_error(await amy.post(url, json={"answers": complete | {str(ids[1]): 4}}), 422)
        assert out["details"] == {"out_of_range": [ids[1]]}
        assert_error(await amy.post(url, json={"answers": complete | {str(ids[1]): -1}}), 422)
        assert_error(await amy.post(url, json={"answers": {"abc": 1}}), 422)
        assert_error(await amy.post(url, json={}), 422)
        assert (await amy.post(url, json={"answers": complete})).status_code == 200


async def test_only_the_assignee_submits(admin: Client, app: Any, base: Base, make_user: Any) -> None:
    quiz, _ = await assigned_quiz(admin, make_user)
    answers = {str(q["id"]): 0 for q in quiz["questions"]}
    results = (await admin.get(f"/api/kb/quizzes/{quiz['id']}/results")).json()
    url = f"/api/kb/quizzes/assignments/{results['assignees'][0]['assignment_id']}/submit"
    await make_user("bob", ["agent"])
    async with logged_in(app, "bob") as bob:
        assert_error(await bob.post(url, json={"answers": answers}), 403)
        assert_error(await bob.get(url.removesuffix("/submit")), 404)
        assert_error(await bob.get(f"/api/kb/quizzes/{quiz['id']}"), 404)
        assert_error(await bob.post("/api/kb/quizzes/assignments/99999/submit", json={"answers": answers}), 404)
    assert_error(await admin.post(url, json={"answers": answers}), 403)  # not even a manager


# ---- results ---------------------------------------------------------------------------------


async def submit_all(client: Client, quiz: dict[str, Any], *, wrong: int) -> None:
    """Answers the first `wrong` questions wrongly and the rest right."""
    answers = {
        str(q["id"]): (q["correct"] + 1) % 4 if n < wrong else q["correct"] for n, q in enumerate(quiz["questions"])
    }
    assignment = next(a for a in (await client.get("/api/kb/quizzes/mine")).json() if a["quiz_id"] == quiz["id"])
    response = await client.post(f"/api/kb/quizzes/assignments/{assignment['id']}/submit", json={"answers": answers})
    assert response.status_code == 200, response.text


async def test_results_by_quiz_person_and_team(admin: Client, app: Any, db: Any, base: Base, make_user: Any) -> None:
    amy, bob = await make_user("amy", ["agent"]), await make_user("bob", ["agent"])
    team = await add_team(db, code="HOT", user_ids=[amy, bob])
    due = (clock.now() + timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    quiz = await create_quiz(admin, due_at=due.replace(tzinfo=None).isoformat())  # the hospital's local time
    await admin.post(f"/api/kb/quizzes/{quiz['id']}/assignments", json={"team_ids": [team]})
    async with logged_in(app, "amy") as client:
        await submit_all(client, quiz, wrong=1)
        own = (await client.get(f"/api/kb/quizzes/people/{amy}")).json()
        assert [p["score"] for p in own["progress"]] == [75]
        assert_error(await client.get(f"/api/kb/quizzes/people/{bob}"), 403)
        assert_error(await client.get(f"/api/kb/quizzes/{quiz['id']}/results"), 403)
        assert_error(await client.get(f"/api/kb/quizzes/teams/{team}"), 403)

    results = (await admin.get(f"/api/kb/quizzes/{quiz['id']}/results")).json()
    assert results["assigned"] == 2 and results["submitted"] == 1 and results["average"] == 75
    rows = {r["username"]: r for r in results["assignees"]}
    assert rows["amy"]["score"] == 75 and rows["bob"]["score"] is None and not rows["bob"]["overdue"]
    assert datetime.fromisoformat(results["quiz"]["due_at"]) == due

    clock.set_now(clock.now() + timedelta(minutes=10))
    late = (await admin.get(f"/api/kb/quizzes/{quiz['id']}/results")).json()
    assert late["overdue"] == 1 and {r["username"]: r["overdue"] for r in late["assignees"]} == {
        "amy": False,
        "bob": True,
    }
    listed = (await admin.get("/api/kb/quizzes")).json()
    assert [(q["assigned"], q["submitted"], q["overdue"], q["average"]) for q in listed] == [(2, 1, 1, 75)]

    team_results = (await admin.get(f"/api/kb/quizzes/teams/{team}")).json()
    members = {m["user"]["username"]: m for m in team_results["members"]}
    assert members["amy"] | {"user": None} == {
        "user": None, "assigned": 1, "submitted": 1, "overdue": 0, "average": 75, "last": 75,
    }  # fmt: skip
    assert members["bob"]["overdue"] == 1 and members["bob"]["average"] is None
    assert sum(a["answered"] for a in team_results["areas"]) == 4


async def test_weak_areas_put_the_weakest_first(admin: Client, app: Any, base: Base, make_user: Any) -> None:
    amy = await make_user("amy", ["agent"])
    quiz = await create_quiz(admin, count=10, seed=5)
    await admin.post(f"/api/kb/quizzes/{quiz['id']}/assignments", json={"user_ids": [amy]})
    # wrong on every outpatient-payment question, right on everything else
    pay = {base.items[q] for q, _ in ITEMS["PAY"]}
    answers = {str(q["id"]): (q["correct"] + 1) % 4 if q["item_id"] in pay else q["correct"] for q in quiz["questions"]}
    async with logged_in(app, "amy") as client:
        assignment = await my_assignment(client)
        await client.post(f"/api/kb/quizzes/assignments/{assignment['id']}/submit", json={"answers": answers})
    person = (await admin.get(f"/api/kb/quizzes/people/{amy}")).json()
    areas = person["areas"]
    assert areas[0] == {
        "area_id": base.categories["PAY"],
        "name": "门诊 / 缴费",
        "answered": 2,
        "correct": 0,
        "rate": 0.0,
    }
    by_name = {a["name"]: a for a in areas}  # the sub-category 预约 counts towards its area 挂号
    assert by_name["门诊 / 挂号"] == {
        "area_id": base.categories["REG"], "name": "门诊 / 挂号", "answered": 5, "correct": 5, "rate": 1.0,
    }  # fmt: skip
    assert by_name["住院 / 入院"]["answered"] == 3
    assert [a["rate"] for a in areas] == sorted(a["rate"] for a in areas)


# ---- permissions -----------------------------------------------------------------------------


async def test_agents_take_quizzes_but_do_not_manage_them(as_user: Any, base: Base) -> None:
    async with as_user("dan", ["agent"]) as dan:
        assert_error(await dan.post("/api/kb/quizzes", json={"title": "x", "count": 1}), 403)
        assert_error(await dan.get("/api/kb/quizzes"), 403)
        assert_error(await dan.post("/api/kb/quizzes/1/assignments", json={"user_ids": [1]}), 403)
        assert (await dan.get("/api/kb/quizzes/mine")).json() == []
    async with as_user("sue", ["supervisor"]) as sue:
        quiz = await create_quiz(sue)
        assert (await sue.get(f"/api/kb/quizzes/{quiz['id']}/results")).status_code == 200
        assert_error(await sue.get("/api/kb/quizzes/99999"), 404)
        assert_error(await sue.get("/api/kb/quizzes/people/99999"), 404)
        assert_error(await sue.get("/api/kb/quizzes/teams/99999"), 404)


async def test_anonymous_callers_are_refused(anon: Client) -> None:
    assert_error(await anon.get("/api/kb/quizzes/mine"), 401)


async def test_the_service_refuses_an_actor_without_permission(db: Any, base: Base) -> None:
    from patientline.core.auth.actor import SYSTEM
    from patientline.core.errors import PermissionDenied

    async with db.sessions() as session:
        with pytest.raises(PermissionDenied):
            await quizzes.generate(
                session, actor=SYSTEM, title="x", category_ids=[], count=1, include_timetable=False, due_at=None
            )


def test_overdue_is_about_open_assignments_past_their_due_time() -> None:
    from patientline.knowledge.models import Quiz, QuizAssignment

    now = clock.now()
    quiz = Quiz(title="x", due_at=now - timedelta(hours=1))
    assert quizzes.is_overdue(QuizAssignment(submitted_at=None), quiz, now)
    assert not quizzes.is_overdue(QuizAssignment(submitted_at=now), quiz, now)
    assert not quizzes.is_overdue(QuizAssignment(submitted_at=None), Quiz(title="x", due_at=None), now)


# ---- demo ------------------------------------------------------------------------------------


async def test_the_demo_quiz_is_taken_by_two_agents_once(db: Any, settings: Any, make_user: Any) -> None:
    from patientline.knowledge.models import Quiz, QuizAssignment
    from patientline.knowledge.quiz_demo import load_demo_quizzes

    async with db.sessions() as session, session.begin():
        await load_demo_quizzes(session, settings=settings)  # no demo hospital yet: nothing to do
    supervisor = await make_user("supervisor1", ["supervisor"])
    agents = [await make_user(name, ["agent"]) for name in ("agent01", "agent02", "agent03")]
    await build_base(db)
    await add_team(db, code="HOTLINE", user_ids=agents)
    for _ in range(2):
        async with db.sessions() as session, session.begin():
            await load_demo_quizzes(session, settings=settings)
    async with db.sessions() as session:
        quiz = (await session.scalars(select(Quiz))).one()
        assignments = (await session.scalars(select(QuizAssignment).order_by(QuizAssignment.user_id))).all()
    assert quiz.created_by_id == supervisor and quiz.category_ids == []
    assert [a.user_id for a in assignments] == agents
    assert [a.correct_count for a in assignments] == [8, 7, None]  # ten questions; every fifth, every third wrong
