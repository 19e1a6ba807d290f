"""Quiz pages: my quizzes, taking one and its marked result, and the supervisors' list, new quiz form,
quiz results, a person's and a team's page; each with its empty state."""

from __future__ import annotations

from typing import Any

import pytest
from quiz_base import Base, add_team, build_base, logged_in

from helpers import Client


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


@pytest.fixture
async def base(db: Any) -> Base:
    return await build_base(db)


@pytest.fixture
def english(admin: Client) -> Client:
    admin.http.cookies.set("pl_lang", "en")
    return admin


async def test_empty_states(english: Client, as_user: Any) -> None:
    page = html(await english.get("/kb/quizzes/manage"))
    assert "No quizzes yet." in page and 'href="/kb/quizzes/new"' in page and "No teams yet." in page
    assert 'href="/kb/quizzes"' in page  # the tab back to my own quizzes
    new = html(await english.get("/kb/quizzes/new"))
    assert "No categories yet: questions come from the whole base." in new
    assert "My quizzes" in html(await english.get("/kb/quizzes"))
    async with as_user("amy", ["agent"]) as amy:
        amy.http.cookies.set("pl_lang", "en")
        mine = html(await amy.get("/kb/quizzes"))
        assert "No quizzes for you yet." in mine and "Manage quizzes" not in mine
        assert 'href="/kb/quizzes"' in mine  # the navigation entry
        me = (await amy.get("/api/auth/me")).json()["id"]
        own = html(await amy.get(f"/kb/quizzes/people/{me}"))
        assert "No quiz submitted yet." in own and "No answers yet" in own
        assert html(await amy.get("/kb/quizzes/manage"), 403)


async def test_the_new_quiz_form_offers_the_category_tree(english: Client, base: Base) -> None:
    page = html(await english.get("/kb/quizzes/new"))
    assert 'data-action="/api/kb/quizzes"' in page and 'name="category_ids" multiple' in page
    assert f'<option value="{base.categories["APPT"]}">　　预约</option>' in page  # indented under 门诊 / 挂号
    assert 'name="include_timetable"' in page and 'type="datetime-local"' in page


async def test_taking_a_quiz_and_seeing_the_corrections(
    english: Client, app: Any, db: Any, base: Base, make_user: Any
) -> None:
    amy = await make_user("amy", ["agent"])
    team = await add_team(db, code="HOT", user_ids=[amy])
    created = (await english.post("/api/kb/quizzes", json={"title": "第一周", "count": 4, "seed": 3})).json()
    quiz_id = created["id"]
    empty = html(await english.get(f"/kb/quizzes/{quiz_id}"))
    assert "Not assigned to anybody yet" in empty and 'name="team_ids"' in empty
    await english.post(f"/api/kb/quizzes/{quiz_id}/assignments", json={"team_ids": [team]})

    async with logged_in(app, "amy") as client:
        client.http.cookies.set("pl_lang", "en")
        mine = html(await client.get("/kb/quizzes"))
        assignment_id = (await client.get("/api/kb/quizzes/mine")).json()[0]["id"]
        assert f'href="/kb/quizzes/take/{assignment_id}"' in mine and "第一周" in mine
        form = html(await client.get(f"/kb/quizzes/take/{assignment_id}"))
        assert form.count('type="radio"') == 16 and "<kbd>4</kbd>" in form and "Submit answers" in form
        assert "your answer" not in form

        first = created["questions"][0]
        answers = {str(q["id"]): q["correct"] for q in created["questions"]}
        answers[str(first["id"])] = (first["correct"] + 1) % 4
        await client.post(f"/api/kb/quizzes/assignments/{assignment_id}/submit", json={"answers": answers})
        result = html(await client.get(f"/kb/quizzes/take/{assignment_id}"))
        assert "75%" in result and "3 of 4 right" in result and 'type="radio"' not in result
        assert f'href="/kb?item={first["item_id"]}"' in result and "right answer" in result

    results = html(await english.get(f"/kb/quizzes/{quiz_id}"))
    assert "1 of 1 submitted" in results and "quiz-score ok" not in results and "75%" in results
    person = html(await english.get(f"/kb/quizzes/people/{amy}"))
    assert "<svg" in person and "<circle" in person and "Weak areas" in person and "门诊" in person
    team_page = html(await english.get(f"/kb/quizzes/teams/{team}"))
    assert f'href="/kb/quizzes/people/{amy}"' in team_page and "75%" in team_page
    listing = html(await english.get("/kb/quizzes/manage"))
    assert f'href="/kb/quizzes/{quiz_id}"' in listing and f'href="/kb/quizzes/teams/{team}"' in listing


async def test_pages_are_for_the_people_they_belong_to(english: Client, as_user: Any, base: Base) -> None:
    async with as_user("bob", ["agent"]) as bob:
        assert html(await bob.get("/kb/quizzes/new"), 403)
        assert html(await bob.get("/kb/quizzes/1"), 403)
        assert html(await bob.get("/kb/quizzes/take/99999"), 404)
    assert html(await english.get("/kb/quizzes/99999"), 404)
