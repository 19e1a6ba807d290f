"""The Chinese search engine through its public interface."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from patientline.knowledge.search import (
    Document,
    Lexicon,
    SearchIndex,
    SearchQuery,
    highlight,
    highlight_html,
)

DOCS = [
    Document(id=1, question="怎么预约挂号？有哪些预约渠道？", variants=["在哪里挂号"], category_ids=(10, 1)),
    Document(id=2, question="预约挂号成功后怎么取消预约？", category_ids=(10, 1)),
    Document(id=3, question="消化内科在几楼？", names=["消化内科"], category_ids=(20,)),
    Document(id=4, question="门诊看病医疗保险能报销多少比例？", category_ids=(30,)),
    Document(id=5, question="腹部超声检查需要空腹吗？", category_ids=(40,)),
    Document(id=6, question="住院押金要交多少？可以用什么方式交？", category_ids=(50,)),
    Document(id=7, question="医院有停车场吗？停车怎么收费？", site_ids=(2,), category_ids=(60,)),
    Document(id=8, question="周末门诊开不开？", valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30)),
    Document(id=9, question="员工内部的排班规则是什么？", public=False),
    Document(id="F10", question="就诊卡丢了怎么补办？", extra="补卡 工本费 身份证"),
]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    built = SearchIndex(Lexicon.default())
    built.build(DOCS)
    return built


def top(index: SearchIndex, text: str, **filters: object) -> object:
    result = index.search(SearchQuery(text=text, **filters))  # type: ignore[arg-type]
    return result.hits[0].doc_id if result.hits else None


def test_traditional_query_finds_simplified_item(index: SearchIndex) -> None:
    assert top(index, "預約掛號成功後怎麼取消預約") == 2


def test_full_width_letters_and_digits(index: SearchIndex) -> None:
    lexicon = Lexicon.default()
    assert lexicon.normalise("ＣＴ１２３") == "ct123"
    assert top(index, "ｘｈｎｋ") == 3


def test_pinyin_initials_and_full_pinyin_of_names(index: SearchIndex) -> None:
    assert top(index, "xhnk") == 3
    assert top(index, "xiaohuaneike") == 3


def test_pinyin_typed_for_a_word(index: SearchIndex) -> None:
    assert top(index, "guahao有哪些渠道") == 1


def test_synonyms_both_ways(index: SearchIndex) -> None:
    assert top(index, "门诊医保报销比例") == 4
    assert top(index, "做B超要空腹吗") == 5
    assert top(index, "彩超前能吃饭吗") == 5


def test_admin_synonyms_return_a_new_lexicon() -> None:
    base = Lexicon.default()
    extended = base.with_synonyms([["排班规则", "值班安排"]])
    assert extended is not base
    assert extended.normalise("值班安排") == "排班规则"
    assert base.normalise("值班安排") == "值班安排"
    index = SearchIndex(extended)
    index.build(DOCS)
    assert top(index, "值班安排是什么") == 9


def test_homophone_typo(index: SearchIndex) -> None:
    assert Lexicon.default().normalise("挂好") == "挂号"
    assert top(index, "住院押今要交多少") == 6


def test_fillers_and_dialect(index: SearchIndex) -> None:
    assert top(index, "喂你好，我想问一下那个就诊卡丢了咋整") == "F10"


def test_unrelated_question_is_no_good_match(index: SearchIndex) -> None:
    result = index.search(SearchQuery(text="你们医院能做试管婴儿吗"))
    assert result.no_good_match
    confident = index.search(SearchQuery(text="预约挂号成功后怎么取消预约"))
    assert not confident.no_good_match
    assert confident.hits[0].confidence > 0.5


def test_hit_reports_the_matched_text_and_field(index: SearchIndex) -> None:
    hit = index.search(SearchQuery(text="在哪里挂号")).hits[0]
    assert (hit.doc_id, hit.matched, hit.field) == (1, "在哪里挂号", "variant")
    assert 0.0 <= hit.confidence <= 1.0


def test_category_filter_matches_ancestors(index: SearchIndex) -> None:
    assert top(index, "取消预约", category_id=1) == 2
    assert top(index, "取消预约", category_id=30) in (None, 4)


def test_site_filter_keeps_items_for_all_sites(index: SearchIndex) -> None:
    assert top(index, "停车场收费", site_id=2) == 7
    assert top(index, "停车场收费", site_id=3) != 7
    assert top(index, "就诊卡丢了", site_id=3) == "F10"


def test_validity_dates(index: SearchIndex) -> None:
    assert top(index, "周末门诊开不开", on=date(2026, 3, 1)) == 8
    assert top(index, "周末门诊开不开", on=date(2026, 7, 1)) != 8
    assert top(index, "周末门诊开不开", on=date(2025, 12, 31)) != 8


def test_public_only(index: SearchIndex) -> None:
    assert top(index, "排班规则") == 9
    assert top(index, "排班规则", public_only=True) != 9


def test_upsert_and_remove_are_visible_in_the_next_search() -> None:
    index = SearchIndex()
    index.build(DOCS)
    assert top(index, "狂犬疫苗在哪打") != 100
    index.upsert(Document(id=100, question="被狗咬了去哪里打狂犬疫苗？"))
    assert top(index, "狂犬疫苗在哪打") == 100
    index.upsert(Document(id=100, question="医院有母婴室吗？"))
    assert top(index, "狂犬疫苗在哪打") != 100
    assert top(index, "哺乳室在哪") == 100
    assert index.remove(100)
    assert top(index, "哺乳室在哪") != 100
    assert not index.remove(100)
    assert len(index) == len(DOCS)


def test_upserts_never_rebuild_and_compacted_drops_superseded_units() -> None:
    index = SearchIndex()
    index.build(DOCS)
    postings = index._postings
    for round_ in range(2100):  # past the compaction point
        index.upsert(Document(id="moving", question=f"第{round_}号通知：体检报告怎么领取"))
    assert index._postings is postings  # not rebuilt inside upsert
    assert index.needs_compaction
    compacted = index.compacted()
    assert not compacted.needs_compaction
    assert len(compacted) == len(index)
    for index_ in (index, compacted):
        assert top(index_, "体检报告怎么领") == "moving"
        assert top(index_, "预约挂号成功后怎么取消预约") == 2


def test_compacted_in_a_thread_while_upserting() -> None:
    index = SearchIndex()
    index.build(DOCS)
    result: list[SearchIndex] = []
    worker = threading.Thread(target=lambda: result.append(index.compacted()))
    worker.start()
    for round_ in range(300):
        index.upsert(Document(id=f"new{round_}", question=f"第{round_}号窗口在哪里"))
    worker.join()
    assert len(result[0]) >= len(DOCS)
    assert top(index, "第299号窗口在哪里") == "new299"


SIX = [
    "怎么预约挂号？",
    "医院停车场在哪里",
    "住院押金怎么交",
    "CT检查要空腹吗",
    "出院结算在哪里办理",
    "医保报销比例是多少",
]


def small_index(questions: list[str]) -> SearchIndex:
    index = SearchIndex()
    index.build([Document(id=number, question=question) for number, question in enumerate(questions)])
    return index


def test_one_item_base_does_not_answer_an_unrelated_question() -> None:
    index = small_index(["怎么预约挂号？"])
    assert index.search(SearchQuery(text="医保卡丢了怎么补办")).no_good_match
    assert not index.search(SearchQuery(text="怎么预约挂号")).no_good_match


def test_sharing_only_a_question_word_is_not_a_match() -> None:
    index = small_index(SIX)
    answered = index.search(SearchQuery(text="怎么预约挂号"))
    assert answered.hits[0].doc_id == 0 and not answered.no_good_match
    assert index.remove(0)
    result = index.search(SearchQuery(text="怎么预约挂号"))
    assert result.no_good_match  # 住院押金怎么交 shares only 怎么
    assert all(hit.confidence < result.threshold for hit in result.hits)


def test_small_base_still_answers_paraphrases_and_noisy_queries() -> None:
    index = small_index(SIX)
    for text, expected in (("车停哪里", 1), ("住院押今咋交", 2), ("做ct要不要空腹", 3), ("醫保能報多少", 5)):
        result = index.search(SearchQuery(text=text))
        assert (result.hits[0].doc_id, result.no_good_match) == (expected, False), text


def test_question_words_alone_are_no_good_match() -> None:
    index = small_index(SIX)
    for text in ("怎么办", "在哪里", "多少钱啊", "能不能"):
        assert index.search(SearchQuery(text=text)).no_good_match, text


def test_live_search_compacts_in_the_background_and_keeps_changes_made_meanwhile() -> None:
    import asyncio

    from patientline.knowledge.live_index import LiveSearch

    index = SearchIndex()
    index.build(DOCS)
    live = LiveSearch(index=index)
    live._document = lambda item: item  # type: ignore[assignment,method-assign,return-value]

    async def scenario() -> None:
        live._start_compaction(index)
        live.items[200] = Document(id=200, question="医院有自助打印机吗")  # type: ignore[assignment]
        live._apply(index, 200)
        live._changed_during_compaction.add(200)  # type: ignore[union-attr]
        assert live._compaction is not None
        await live._compaction

    # a loop of its own, in a thread of its own: the suite's thread may be inside another loop already
    runner = threading.Thread(target=lambda: asyncio.run(scenario()))
    runner.start()
    runner.join(30)
    assert live.index is not index
    assert top(live.index, "自助打印机") == 200
    assert len(live.index) == len(DOCS) + 1


def test_readers_in_another_thread_see_whole_items() -> None:
    index = SearchIndex()
    index.build(DOCS)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                for hit in index.search(SearchQuery(text="体检报告怎么领")).hits:
                    if hit.doc_id == "x":
                        assert hit.matched in {"体检报告怎么领取", "体检报告在哪里领"}
        except BaseException as error:
            errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    for round_ in range(300):
        index.upsert(Document(id="x", question="体检报告怎么领取" if round_ % 2 else "体检报告在哪里领"))
    stop.set()
    reader.join()
    assert not errors


def test_with_lexicon_rebuilds_for_new_synonyms(index: SearchIndex) -> None:
    rebuilt = index.with_lexicon(Lexicon.default().with_synonyms([["押金", "保证金"]]))
    assert top(rebuilt, "住院保证金交多少") == 6
    assert len(rebuilt) == len(index)


def test_highlight_spans_cover_synonyms_and_traditional(index: SearchIndex) -> None:
    result = index.search(SearchQuery(text="醫保報銷"))
    text = "门诊看病医疗保险能报销多少比例？"
    spans = highlight(text, result)
    marked = [text[start:end] for start, end in spans]
    assert "医疗保险" in marked
    assert "报销" in marked


def test_highlight_html_escapes() -> None:
    html = highlight_html("<b>挂号</b>", ["挂号"])
    assert html == "&lt;b&gt;<mark>挂号</mark>&lt;/b&gt;"
    assert highlight("ＣＴ检查", ["ct"]) == [(0, 2)]
