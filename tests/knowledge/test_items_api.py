"""Knowledge items through /api/kb: categories, the review workflow, revisions, variants, candidates,
synonyms, feedback, favourites, pictures, and search that follows every publish."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from helpers import Client, assert_error
from patientline.core.events import replay

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def category(client: Client, code: str = "OPD", parent_id: int | None = None, name: str = "门诊") -> int:
    body = await ok(
        await client.post("/api/kb/categories", json={"code": code, "name": name, "parent_id": parent_id}), 201
    )
    return int(body["id"])


async def item(client: Client, category_id: int, **fields: Any) -> dict[str, Any]:
    body = {"category_id": category_id, "question": "怎么预约挂号？", "answer_html": "<p>可通过 8585 预约</p>",
            "spoken": "可以拨打 8585 或在公众号预约。"} | fields  # fmt: skip
    created: dict[str, Any] = await ok(await client.post("/api/kb/items", json=body), 201)
    return created


async def step(client: Client, item_id: int, name: str, version: int, note: str = "") -> dict[str, Any]:
    response = await client.post(f"/api/kb/items/{item_id}/transitions/{name}", json={"version": version, "note": note})
    body: dict[str, Any] = await ok(response)
    return body


async def publish(client: Client, row: dict[str, Any]) -> dict[str, Any]:
    submitted = await step(client, row["id"], "submit", row["version"])
    return await step(client, row["id"], "publish", submitted["version"])


async def search(client: Client, q: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await ok(await client.get("/api/kb/search", params={"q": q, **params}))
    return body


OTHER_QUESTIONS = (
    "医院停车场在哪里？",
    "住院押金怎么交？",
    "CT 检查要空腹吗？",
    "出院结算在哪里办理？",
    "门诊报销比例是多少？",
)


async def other_items(client: Client, category_id: int) -> None:
    """A small base around the item under test, so that scores mean something."""
    for question in OTHER_QUESTIONS:
        await publish(client, await item(client, category_id, question=question, answer_html="", spoken=""))


def top(result: dict[str, Any]) -> int | None:
    return result["hits"][0]["item_id"] if result["hits"] and not result["no_good_match"] else None


async def test_category_tree_refuses_cycles_and_deleting_a_used_category(admin: Client) -> None:
    domain = await category(admin)
    area = await category(admin, "OPD-REG", domain, "挂号预约")
    moved = await admin.patch(f"/api/kb/categories/{domain}", json={"version": 1, "parent_id": area})
    assert_error(moved, 422)
    tree = await ok(await admin.get("/api/kb/categories"))
    assert [(row["code"], row["depth"]) for row in tree] == [("OPD", 0), ("OPD-REG", 1)]
    await item(admin, area)
    assert_error(await admin.delete(f"/api/kb/categories/{area}"), 409, "in_use")
    assert_error(await admin.post("/api/kb/categories", json={"code": "OPD", "name": "x"}), 409)


async def test_an_item_goes_through_review_and_is_searchable_once_published(admin: Client) -> None:
    leaf = await category(admin)
    row = await item(admin, leaf, variants=["在哪里挂号", "挂号有哪些渠道"])
    assert row["status"] == "draft" and row["allowed_transitions"] == ["submit", "archive"]
    assert top(await search(admin, "怎么预约挂号")) is None  # a draft is not live
    published = await publish(admin, row)
    assert published["status"] == "published" and published["live_revision_id"]
    assert top(await search(admin, "怎么预约挂号")) == row["id"]
    assert top(await search(admin, "掛號有哪些渠道")) == row["id"]  # a variant, in traditional characters


async def test_editing_a_published_item_keeps_the_live_answer_until_the_new_one_is_published(admin: Client) -> None:
    leaf = await category(admin)
    await other_items(admin, leaf)
    row = await publish(admin, await item(admin, leaf))
    changed = await ok(
        await admin.put(
            f"/api/kb/items/{row['id']}",
            json={"version": row["version"], "category_id": leaf, "question": "医保卡丢了怎么补办？",
                  "answer_html": "<p>到医保窗口</p>", "note": "rewrite"},
        )
    )  # fmt: skip
    assert changed["status"] == "draft" and changed["revision"] == 2
    assert changed["live_revision_id"] == row["live_revision_id"]
    assert top(await search(admin, "怎么预约挂号")) == row["id"]
    assert top(await search(admin, "医保卡丢了怎么补办")) is None
    await publish(admin, changed)
    assert top(await search(admin, "医保卡丢了怎么补办")) == row["id"]


async def test_invalid_transitions_answer_409_with_the_allowed_steps(admin: Client) -> None:
    row = await item(admin, await category(admin))
    body = assert_error(
        await admin.post(f"/api/kb/items/{row['id']}/transitions/publish", json={"version": row["version"]}),
        409,
        "invalid_transition",
    )
    assert body["details"]["allowed"] == ["submit", "archive"]
    stale = await admin.post(f"/api/kb/items/{row['id']}/transitions/submit", json={"version": row["version"] + 5})
    assert_error(stale, 409, "stale_version")
    assert_error(await admin.post(f"/api/kb/items/{row['id']}/transitions/fly", json={"version": 1}), 422)


async def test_bad_content_is_refused_and_nothing_is_written(admin: Client) -> None:
    leaf = await category(admin)
    long_spoken = await admin.post(
        "/api/kb/items", json={"category_id": leaf, "question": "问题", "spoken": "长" * 201}
    )
    assert_error(long_spoken, 422)
    dates = {"category_id": leaf, "question": "春节门诊", "valid_from": "2027-02-10", "valid_to": "2027-02-01"}
    assert_error(await admin.post("/api/kb/items", json=dates), 422)
    assert_error(await admin.post("/api/kb/items", json={"category_id": 999999, "question": "问题"}), 422)
    assert_error(await admin.post("/api/kb/items", json={"category_id": leaf, "question": "问题", "colour": 1}), 422)
    listed = await ok(await admin.get("/api/kb/items"))
    assert listed["total"] == 0


async def test_answers_are_sanitised(admin: Client) -> None:
    html = '<p onclick="x()">请到<script>alert(1)</script><strong>1 层</strong><img src="http://evil/x.png"></p>'
    row = await item(admin, await category(admin), answer_html=html)
    assert row["answer_html"] == "<p>请到<strong>1 层</strong><img></p>"
    preview = await ok(await admin.post("/api/kb/preview", json={"answer_html": '<a href="javascript:x">y</a>'}))
    assert "javascript" not in preview["html"]


async def test_revisions_diff_and_restore(admin: Client) -> None:
    leaf = await category(admin)
    row = await item(admin, leaf)
    body = {"category_id": leaf, "question": "怎么预约挂号？", "answer_html": "<p>可通过 8585 或 APP 预约</p>"}
    changed = await ok(await admin.put(f"/api/kb/items/{row['id']}", json=body | {"version": row["version"]}))
    revisions = await ok(await admin.get(f"/api/kb/items/{row['id']}/revisions"))
    assert [r["number"] for r in revisions] == [2, 1]
    diff = await ok(await admin.get(f"/api/kb/items/{row['id']}/diff", params={"from": 1, "to": 2}))
    assert [c["field"] for c in diff["changes"]] == ["answer_html", "spoken"]
    assert ["insert", "或 APP "] in diff["changes"][0]["pieces"]
    page = await admin.get(f"/kb/edit/{row['id']}/diff", params={"from": 1, "to": 2})
    assert page.status_code == 200 and "<ins>或 APP </ins>" in page.text
    restored = await ok(
        await admin.post(f"/api/kb/items/{row['id']}/restore", json={"version": changed["version"], "revision": 1})
    )
    assert restored["revision"] == 3 and restored["answer_html"] == row["answer_html"]
    assert_error(await admin.get(f"/api/kb/items/{row['id']}/diff", params={"from": 1, "to": 9}), 404)


async def test_agents_read_but_do_not_edit_and_handlers_edit_their_departments_items(
    admin: Client, as_user: Any
) -> None:
    leaf = await category(admin)
    site = await ok(await admin.post("/api/directory/sites", json={"code": "MAIN", "name": "院本部"}), 201)
    departments = [
        await admin.post("/api/directory/departments", json={"code": code, "name": code, "site_id": site["id"]})
        for code in ("XHNK", "GK")
    ]
    mine, other = [(await ok(response, 201))["id"] for response in departments]
    async with as_user("agent7", ["agent"]) as agent:
        assert_error(await agent.post("/api/kb/items", json={"category_id": leaf, "question": "问题"}), 403)
        assert (await agent.get("/api/kb/items")).status_code == 200
    async with as_user("handler1", ["handler"], department_ids=[mine]) as handler:
        own = await item(handler, leaf, owner_department_id=mine)
        foreign = await handler.post(
            "/api/kb/items", json={"category_id": leaf, "question": "问题", "owner_department_id": other}
        )
        assert_error(foreign, 403)
        assert_error(await handler.post("/api/kb/items", json={"category_id": leaf, "question": "无主问题"}), 422)
        submitted = await step(handler, own["id"], "submit", own["version"])
        publish = await handler.post(
            f"/api/kb/items/{own['id']}/transitions/publish", json={"version": submitted["version"]}
        )
        assert_error(publish, 403)


async def test_candidates_fold_near_duplicates_and_become_variants_or_items(admin: Client) -> None:
    leaf = await category(admin)
    row = await publish(admin, await item(admin, leaf))
    first = await ok(await admin.post("/api/kb/candidates", json={"text": "挂号怎么挂啊"}), 201)
    again = await ok(
        await admin.post("/api/kb/candidates", json={"text": "挂号怎么挂啊？", "context": "contact:9"}), 201
    )
    assert again["id"] == first["id"] and again["count"] == 2
    other = await ok(await admin.post("/api/kb/candidates", json={"text": "停车场在哪里"}), 201)
    listed = await ok(await admin.get("/api/kb/candidates"))
    assert [c["id"] for c in listed] == [first["id"], other["id"]]

    attached = await ok(
        await admin.post(
            f"/api/kb/candidates/{first['id']}/attach", json={"version": again["version"], "item_id": row["id"]}
        )
    )
    assert attached["status"] == "attached"
    assert top(await search(admin, "挂号怎么挂啊")) == row["id"]
    again_attach = await admin.post(
        f"/api/kb/candidates/{first['id']}/attach", json={"version": attached["version"], "item_id": row["id"]}
    )
    assert_error(again_attach, 409)

    made = await ok(
        await admin.post(
            f"/api/kb/candidates/{other['id']}/item",
            json={"candidate_version": other["version"], "category_id": leaf, "question": "医院停车场在哪里？"},
        ),
        201,
    )
    assert made["status"] == "draft" and [v["text"] for v in made["variants"]] == ["停车场在哪里"]


async def test_a_final_search_that_finds_nothing_is_collected(admin: Client) -> None:
    leaf = await category(admin)
    await other_items(admin, leaf)
    await publish(admin, await item(admin, leaf))
    result = await search(admin, "火星上的天气怎么样", final="true")
    assert result["no_good_match"]
    misses = await ok(await admin.get("/api/kb/candidates", params={"source": "search_miss"}))
    assert [c["text"] for c in misses] == ["火星上的天气怎么样"]


async def test_synonyms_change_what_search_finds(admin: Client) -> None:
    leaf = await category(admin)
    await other_items(admin, leaf)
    row = await publish(admin, await item(admin, leaf, question="陪护证在哪里办理？"))
    group = await ok(await admin.post("/api/kb/synonyms", json={"terms": ["陪护证", "陪床卡"], "note": "callers"}), 201)
    assert top(await search(admin, "陪床卡在哪办")) == row["id"]
    assert_error(await admin.post("/api/kb/synonyms", json={"terms": ["只有一个"]}), 422)
    assert_error(await admin.put(f"/api/kb/synonyms/{group['id']}", json={"version": 9, "terms": ["a", "b"]}), 409)


async def test_archiving_takes_an_item_out_of_search(admin: Client) -> None:
    leaf = await category(admin)
    await other_items(admin, leaf)
    row = await publish(admin, await item(admin, leaf))
    await step(admin, row["id"], "archive", row["version"], "replaced")
    result = await search(admin, "怎么预约挂号")
    assert row["id"] not in [hit["item_id"] for hit in result["hits"]]


async def test_public_search_sees_only_public_live_items(admin: Client, anon: Client) -> None:
    leaf = await category(admin)
    await publish(admin, await item(admin, leaf, question="坐席如何处理加号请求？", public=False))
    public = await publish(admin, await item(admin, leaf))
    result = await ok(await anon.get("/api/public/kb/search", params={"q": "加号请求怎么处理"}))
    assert all(hit["public"] for hit in result["hits"])
    found = await ok(await anon.get("/api/public/kb/search", params={"q": "怎么预约挂号"}))
    assert found["hits"][0]["item_id"] == public["id"]
    assert "<mark>" in found["hits"][0]["highlighted"]


async def test_feedback_reaches_the_owner_and_favourites_are_personal(admin: Client, db: Any) -> None:
    row = await publish(admin, await item(admin, await category(admin)))
    await ok(
        await admin.post(f"/api/kb/items/{row['id']}/feedback", json={"kind": "outdated", "comment": "电话改了"}), 201
    )
    assert_error(await admin.post(f"/api/kb/items/{row['id']}/feedback", json={"kind": "meh"}), 422)
    open_feedback = await ok(await admin.get("/api/kb/feedback", params={"open_only": "true"}))
    assert [f["comment"] for f in open_feedback] == ["电话改了"]
    async with db.sessions() as session:
        titles = [e.payload.get("title") for e in await replay(session, after_id=0) if e.type == "notification"]
    assert "An answer was marked outdated" in titles
    resolved = await ok(await admin.post(f"/api/kb/feedback/{open_feedback[0]['id']}/resolve"))
    assert resolved["resolved_at"]
    assert (await admin.put(f"/api/kb/items/{row['id']}/favourite")).status_code == 204
    assert (await admin.delete(f"/api/kb/items/{row['id']}/favourite")).status_code == 204
    assert_error(await admin.put("/api/kb/items/999999/favourite"), 404)


async def test_pictures_are_checked_by_content_and_served_by_item_visibility(admin: Client, anon: Client) -> None:
    row = await item(admin, await category(admin))
    uploaded = await ok(
        await admin.post(
            "/api/kb/images", params={"item_id": row["id"]}, files={"file": ("map.png", PNG, "image/png")}
        ),
        201,
    )
    assert uploaded["content_type"] == "image/png" and uploaded["url"] == f"/kb/images/{uploaded['id']}"
    fake = await admin.post("/api/kb/images", files={"file": ("map.png", b"<svg onload=alert(1)>", "image/png")})
    assert_error(fake, 422)
    huge = await admin.post("/api/kb/images", files={"file": ("big.png", PNG + b"0" * (1024 * 1024), "image/png")})
    assert_error(huge, 413)
    assert (await admin.get(uploaded["url"])).content == PNG
    assert (await anon.get(uploaded["url"])).status_code == 404  # the item is a draft
    await publish(admin, row)
    served = await anon.get(uploaded["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"


async def test_pictures_follow_the_live_answer_not_the_draft(admin: Client, anon: Client) -> None:
    leaf = await category(admin)
    internal = await item(admin, leaf, public=False)
    picture = await ok(
        await admin.post("/api/kb/images", params={"item_id": internal["id"]}, files={"file": ("a.png", PNG)}), 201
    )
    published = await publish(admin, internal)
    body = {"category_id": leaf, "question": "怎么预约挂号？", "public": True, "version": published["version"]}
    await ok(await admin.put(f"/api/kb/items/{internal['id']}", json=body))  # an unreviewed draft says public
    assert (await anon.get(picture["url"])).status_code == 404
    expired = await item(admin, leaf, question="去年的春节门诊安排", valid_from="2000-01-01", valid_to="2000-01-10")
    old = await ok(
        await admin.post("/api/kb/images", params={"item_id": expired["id"]}, files={"file": ("b.png", PNG)}), 201
    )
    await publish(admin, expired)
    assert (await anon.get(old["url"])).status_code == 404
    assert (await admin.get(old["url"])).status_code == 200


async def test_the_same_wording_heard_at_once_counts_every_time(admin: Client) -> None:
    responses = await asyncio.gather(
        *(admin.post("/api/kb/candidates", json={"text": "停车场收费标准是多少"}) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    listed = await ok(await admin.get("/api/kb/candidates"))
    assert sum(c["count"] for c in listed) == 4


async def test_a_category_holding_a_live_answer_is_not_deleted(admin: Client) -> None:
    first, second = await category(admin), await category(admin, "INP", name="住院")
    row = await publish(admin, await item(admin, first))
    moved = {"category_id": second, "question": "怎么预约挂号？", "version": row["version"]}
    await ok(await admin.put(f"/api/kb/items/{row['id']}", json=moved))  # the draft moves, the live answer stays
    assert_error(await admin.delete(f"/api/kb/categories/{first}"), 409, "in_use")


async def test_a_blank_key_gets_a_generated_one(admin: Client) -> None:
    row = await item(admin, await category(admin), key="   ")
    assert row["key"] == f"KB{row['id']:05d}"


async def test_department_editors_see_the_feedback_of_their_own_items(admin: Client, as_user: Any) -> None:
    leaf = await category(admin)
    site = await ok(await admin.post("/api/directory/sites", json={"code": "MAIN", "name": "院本部"}), 201)
    departments = [
        await admin.post("/api/directory/departments", json={"code": code, "name": code, "site_id": site["id"]})
        for code in ("XHNK", "GK")
    ]
    mine, other = [(await ok(response, 201))["id"] for response in departments]
    for owner, comment in ((mine, "ours"), (other, "theirs")):
        row = await publish(admin, await item(admin, leaf, question=f"问题{comment}", owner_department_id=owner))
        await ok(
            await admin.post(f"/api/kb/items/{row['id']}/feedback", json={"kind": "outdated", "comment": comment}), 201
        )
    async with as_user("handler2", ["handler"], department_ids=[mine]) as handler:
        seen = await ok(await handler.get("/api/kb/feedback"))
    assert [f["comment"] for f in seen] == ["ours"]
    assert {f["comment"] for f in await ok(await admin.get("/api/kb/feedback"))} == {"ours", "theirs"}
