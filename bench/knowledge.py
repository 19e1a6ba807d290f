"""Knowledge search benchmark: speed, memory and quality of `patientline.knowledge.search`.

    .venv/bin/python bench/knowledge.py            # figures against the targets; exit 1 on a miss
    .venv/bin/python bench/knowledge.py --fit      # also refit the confidence model on the tuning half

1. build: 10,000 synthetic published items (from the eval corpora, with variations), 2-4
   representative questions each; index build time and the RSS the index adds;
2. latency: p50/p95 of 1,000 realistic queries against that index, one at a time;
3. incremental: upsert and remove times on that index, and `compacted()` (run in a thread by the
   app, off the event loop);
4. quality (docs/SEARCH.md, "Tuning protocol"): FAQ items split by id parity into a tuning half
   (odd ids) and a held-back half (even ids); qmatch queries into the first and second 150.
   FAQ "standard" indexes the 200 standard questions and asks all dev paraphrases; FAQ "held-out
   style" indexes each item's first paraphrase as a representative question and asks the other
   (and the other way round), each with the hand-written unanswerable queries of its part
   (faq_null_tuning.jsonl and faq_null_more.jsonl); plus the hand-written noisy sets
   (tests/knowledge/data/faq_noisy.jsonl, faq_noisy_more.jsonl).

Everything is in process; nothing touches the network or the database.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from measures import percentile

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "data" / "eval"
NOISY = ROOT / "tests" / "knowledge" / "data" / "faq_noisy.jsonl"
NULL_TUNING = ROOT / "tests" / "knowledge" / "data" / "faq_null_tuning.jsonl"
# Written by hand in round 2: unanswerable queries ("part": tuning / held_back) and answerable noisy
# queries in the held-out style (never tuned on).
NULL_MORE = ROOT / "tests" / "knowledge" / "data" / "faq_null_more.jsonl"
NOISY_MORE = ROOT / "tests" / "knowledge" / "data" / "faq_noisy_more.jsonl"

sys.path.insert(0, str(ROOT / "src"))

from patientline.knowledge.search import Document, Lexicon, SearchIndex, SearchQuery  # noqa: E402
from patientline.knowledge.search import confidence as conf  # noqa: E402
from patientline.knowledge.search.evaluate import (  # noqa: E402
    LabelledQuery,
    build_documents,
    evaluate_index,
    load_corpus,
    load_queries,
    read_jsonl,
)

# name: (comparison, threshold, unit)
TARGETS: dict[str, tuple[str, float, str]] = {
    "build_s": ("<=", 10.0, "s"),
    "search_p95_ms": ("<=", 15.0, "ms"),
    "index_rss_mb": ("<=", 150.0, "MB"),
    "upsert_p95_ms": ("<=", 50.0, "ms"),
}

SITES = ["总院", "东院区", "西院区", "南院区", "北院区", "儿童医院院区"]
PREFIXES = ["", "请问", "想咨询", "关于", "患者常问：", "【门诊】", "【住院】", "【医保】"]
SUFFIXES = ["", "（{site}）", "——{site}适用", "，{site}怎么办理", "？{site}"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


# ---- synthetic knowledge base -----------------------------------------------------------------


def synthetic_items(count: int, rng: random.Random) -> list[Document]:
    """Items made of the eval texts with a site, a prefix or a suffix, so no two are identical."""
    faq = load_corpus(EVAL / "kb_faq_standard.jsonl")
    paraphrases: dict[str, list[str]] = {}
    for labelled in load_queries(EVAL / "kb_faq_dev.jsonl"):
        paraphrases.setdefault(labelled.match_id or "", []).append(labelled.query)
    medical = [text for _, text in load_corpus(EVAL / "qmatch_corpus_dev.jsonl")]
    items: list[Document] = []
    for number in range(count):
        site = rng.choice(SITES)
        if number % 2 == 0:
            faq_id, question = faq[number // 2 % len(faq)]
            pool = paraphrases.get(faq_id, []) + rng.sample(medical, 2)
        else:
            question = medical[number // 2 % len(medical)]
            pool = rng.sample(medical, 4)
        text = rng.choice(PREFIXES) + question + rng.choice(SUFFIXES).format(site=site)
        variants = [rng.choice(PREFIXES) + v for v in pool[: rng.randint(2, 4)]]
        items.append(
            Document(
                id=number,
                question=text,
                variants=variants,
                names=[site] if number % 5 == 0 else [],
                extra=f"{site} 服务 窗口 电话 {number % 97}",
                category_ids=(number % 40, 1000 + number % 7),
                site_ids=() if number % 3 else (number % 6,),
            )
        )
    return items


def realistic_queries(count: int, rng: random.Random) -> list[str]:
    pool = [q.query for q in load_queries(EVAL / "kb_faq_dev.jsonl")]
    pool += [q.query for q in load_queries(NOISY)]
    pool += [q.query for q in load_queries(EVAL / "qmatch_dev.jsonl")]
    return [rng.choice(pool) for _ in range(count)]


def measure_speed(items: int, queries: int) -> dict[str, float]:
    rng = random.Random(20261123)
    lexicon = Lexicon.default()
    lexicon.analyse_query("预热：挂号")  # jieba's dictionary is a process cost, not the index's
    documents = synthetic_items(items, rng)
    texts = realistic_queries(queries, rng)
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    index = SearchIndex(lexicon)
    index.build(documents)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu_started
    gc.collect()
    index_rss = rss_mb() - before

    for text in texts[:50]:
        index.search(SearchQuery(text=text))
    latencies = []
    for text in texts:
        started = time.perf_counter()
        index.search(SearchQuery(text=text, limit=10))
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()

    upserts = []
    for number in range(200):
        document = documents[rng.randrange(len(documents))]
        changed = Document(id=document.id, question=document.question + f"（第{number}版）", variants=document.variants)
        started = time.perf_counter()
        index.upsert(changed)
        upserts.append((time.perf_counter() - started) * 1000)
    upserts.sort()
    started = time.perf_counter()
    index.remove(documents[0].id)
    remove_ms = (time.perf_counter() - started) * 1000
    cpu_started = time.process_time()
    index.compacted()
    compact_cpu_s = time.process_time() - cpu_started
    return {
        "items": float(items),
        "units": float(sum(1 + len(d.variants) + len(d.names) + bool(d.extra) for d in documents)),
        "build_s": round(build_s, 2),
        "build_cpu_s": round(build_cpu_s, 2),
        "index_rss_mb": round(index_rss, 1),
        "search_p50_ms": round(percentile(latencies, 50), 2),
        "search_p95_ms": round(percentile(latencies, 95), 2),
        "search_max_ms": round(latencies[-1], 2),
        "upsert_p50_ms": round(percentile(upserts, 50), 2),
        "upsert_p95_ms": round(percentile(upserts, 95), 2),
        "remove_ms": round(remove_ms, 3),
        "compact_cpu_s": round(compact_cpu_s, 2),
    }


# ---- quality ----------------------------------------------------------------------------------


def is_tuning(match_id: str | None) -> bool:
    return match_id is None or int(match_id[1:]) % 2 == 1


Selector = Callable[[str | None], bool]


def unanswerable(part: str) -> list[LabelledQuery]:
    """The hand-written unanswerable queries of one part: the tuning part fits the confidence model."""
    more = [LabelledQuery(row["query"], None) for row in read_jsonl(NULL_MORE) if row["part"] == part]
    return (load_queries(NULL_TUNING) if part == "tuning" else []) + more


def faq_figures(select: Selector, nulls: list[LabelledQuery]) -> dict[str, dict[str, Any]]:
    standard = load_corpus(EVAL / "kb_faq_standard.jsonl")
    dev = load_queries(EVAL / "kb_faq_dev.jsonl")
    index = SearchIndex()
    index.build(build_documents(standard))
    out = {"faq_standard": evaluate_index(index, [q for q in dev if select(q.match_id)])}
    first: dict[str, LabelledQuery] = {}
    second: dict[str, LabelledQuery] = {}
    for labelled in dev:
        (second if labelled.match_id in first else first)[labelled.match_id or ""] = labelled
    halves = []
    for indexed, asked in ((first, second), (second, first)):
        index = SearchIndex()
        index.build(build_documents(standard, indexed.values()))
        halves.append(evaluate_index(index, [q for m, q in asked.items() if select(m)] + nulls))
    out["faq_heldout_style"] = {
        key: None if halves[0][key] is None else round((halves[0][key] + halves[1][key]) / 2, 4)
        for key in ("p_at_1", "mrr_at_10", "answer_accuracy", "no_match_accuracy", "n", "latency_ms_p95")
    }
    return out


def qmatch_figures(part: slice) -> dict[str, Any]:
    index = SearchIndex()
    index.build(build_documents(load_corpus(EVAL / "qmatch_corpus_dev.jsonl")))
    return evaluate_index(index, load_queries(EVAL / "qmatch_dev.jsonl")[part])


def noisy_figures() -> dict[str, dict[str, Any]]:
    """The hand-written noisy sets: round 1 (with its own unanswerable queries) and round 2 (with the
    held-back unanswerable part), against the standard questions with and without the dev paraphrases."""
    standard = load_corpus(EVAL / "kb_faq_standard.jsonl")
    dev = load_queries(EVAL / "kb_faq_dev.jsonl")
    sets = {"noisy": load_queries(NOISY), "noisy_more": load_queries(NOISY_MORE) + unanswerable("held_back")}
    out = {}
    for label, variants in (("with_dev_variants", dev), ("standard_only", [])):
        index = SearchIndex()
        index.build(build_documents(standard, variants))
        for name, queries in sets.items():
            out[f"{name}_{label}"] = evaluate_index(index, queries)
    return out


def fit_confidence() -> tuple[tuple[float, ...], float]:
    """Logistic regression of "the top hit is right" on the confidence features, on the tuning half
    (held-out style, plus the unanswerable tuning queries); then the threshold that maximises answer
    accuracy with 7 % unanswerable queries."""
    standard = load_corpus(EVAL / "kb_faq_standard.jsonl")
    dev = load_queries(EVAL / "kb_faq_dev.jsonl")
    nulls = unanswerable("tuning")
    first: dict[str, LabelledQuery] = {}
    second: dict[str, LabelledQuery] = {}
    for labelled in dev:
        (second if labelled.match_id in first else first)[labelled.match_id or ""] = labelled
    rows: list[tuple[tuple[float, ...], bool, bool]] = []
    for indexed, asked in ((first, second), (second, first)):
        index = SearchIndex()
        index.build(build_documents(standard, indexed.values()))
        for labelled in [q for m, q in asked.items() if is_tuning(m)] + nulls:
            features, top_id = index.explain_top(labelled.query)
            if features is not None:
                rows.append((features.vector(), str(top_id) == labelled.match_id, labelled.match_id is None))
    size = len(rows[0][0])
    weights = [0.0] * (size + 1)
    for _ in range(20000):
        gradient = [0.0] * (size + 1)
        for x, y, _null in rows:
            p = 1 / (1 + math.exp(-(weights[0] + sum(w * v for w, v in zip(weights[1:], x, strict=True)))))
            gradient[0] += p - y
            for i in range(size):
                gradient[i + 1] += (p - y) * x[i]
        weights = [
            w - 0.5 * g / len(rows) - (0.0005 * w if i else 0)
            for i, (w, g) in enumerate(zip(weights, gradient, strict=True))
        ]
    coefficients = tuple(round(w, 3) for w in weights)
    best = (0.0, -1.0)
    for step in range(0, 80, 2):
        threshold = step / 100
        matched = [y and conf.estimate(conf.Features(*x), coefficients) >= threshold for x, y, n in rows if not n]
        refused = [conf.estimate(conf.Features(*x), coefficients) < threshold for x, _, n in rows if n]
        accuracy = 0.93 * sum(matched) / len(matched) + 0.07 * sum(refused) / len(refused)
        if accuracy > best[1] + 1e-9:
            best = (threshold, accuracy)
    return coefficients, best[0]


# ---- report -----------------------------------------------------------------------------------


def check(name: str, value: float) -> bool:
    comparison, threshold, _ = TARGETS[name]
    return value <= threshold if comparison == "<=" else value >= threshold


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--fit", action="store_true", help="refit the confidence model on the tuning half")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    speed = measure_speed(args.items, args.queries)
    quality: dict[str, Any] = {}
    for part, select, qpart in (
        ("tuning", is_tuning, slice(0, 150)),
        ("held_back", lambda m: not is_tuning(m), slice(150, 300)),
    ):
        for name, figures in faq_figures(select, unanswerable(part)).items():
            quality[f"{name}/{part}"] = figures
        quality[f"qmatch/{part}"] = qmatch_figures(qpart)
    quality["qmatch/all_dev"] = qmatch_figures(slice(0, 300))
    quality.update(noisy_figures())

    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"knowledge search benchmark ({speed['items']:.0f} items, {speed['units']:.0f} texts)")
    print(f"  machine load average {' '.join(load)} (wall-clock figures; compare on a quiet machine)")
    failed = False
    for name, value in speed.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = check(name, value)
            failed |= not ok
            verdict = f"target {target[0]} {target[1]:g} {target[2]}  {'ok' if ok else 'MISSED'}"
        print(f"  {name:<16} {value:>10g}  {verdict}")
    print("quality (P@1 / MRR@10 / answer accuracy / no-match rate / n)")
    for name, figures in quality.items():
        cells = [figures.get(k) for k in ("p_at_1", "mrr_at_10", "answer_accuracy", "no_match_accuracy", "n")]
        print(f"  {name:<34} " + "  ".join("-" if c is None else f"{c:g}" for c in cells))
    if args.fit:
        coefficients, threshold = fit_confidence()
        print(f"refitted confidence: COEFFICIENTS = {coefficients}, THRESHOLD = {threshold}")
        print(f"(current: {conf.COEFFICIENTS}, {conf.THRESHOLD})")
    if args.json:
        args.json.write_text(json.dumps({"speed": speed, "quality": quality}, ensure_ascii=False, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
