"""The lexicon: how Chinese text becomes search terms.

Every text (a stored question or a caller's query) goes through the same steps:

1. fold: NFKC (full-width -> half-width), lower case, traditional -> simplified (OpenCC t2s);
2. dialect and colloquial wording -> standard wording (啥 -> 什么, 咋整 -> 怎么办, 娃 -> 孩子);
3. spoken fillers removed (你好, 请问, 那个, 就是 ...); in a query, the part before an introducer
   (想问一下, 请问 ...) is kept as a low-weight preamble;
4. synonyms rewritten to the first term of their group (医疗保险 -> 医保, 彩超/B超 -> 超声, MRI -> 磁共振);
5. terms: jieba words (with the hospital user dictionary), character bigrams, single characters and
   toneless pinyin bigrams (so 挂好 still meets 挂号, and "guahao" does too).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from patientline.knowledge.search.text import (
    LATIN_OR_DIGIT,
    char_pinyin,
    fold,
    is_cjk,
    pinyin_readings,
    split_pinyin,
)

if TYPE_CHECKING:
    import jieba

DATA_DIR = Path(__file__).parent / "data"

# Term namespaces: the first character of every term says what kind of term it is.
WORD, BIGRAM, CHAR, PINYIN, NAME = "w", "b", "c", "p", "n"

PREAMBLE_WEIGHT = 0.35
# Query terms made only of question-intent words (怎么, 是多少, 在哪里) count this much in ranking:
# each intent word yields several terms (word, characters, bigrams, pinyin), which otherwise let a
# shared "是多少" outweigh the one topic word (投诉电话是多少 -> 报销比例是多少).
INTENT_WEIGHT = 0.7
# Short clauses recur across texts and queries (怎么办, 需要带什么, 在哪里办理); long ones rarely do.
CLAUSE_CACHE_SIZE = 8192
CACHED_CLAUSE_LENGTH = 8
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]")
_CLAUSE_SPLIT = re.compile(r"[,.;:!?，。；：！？、…~～\n\r\t()（）\[\]【】\"'“”‘’<>《》/|]+")
_SPACES = re.compile(r"\s+")
_PINYIN_RUN = re.compile(r"(?<![a-z0-9])[a-z]{4,}(?![a-z0-9])")
# A clause that ends in 不/没/没有 is a yes/no question in spoken Chinese (能挂上不 = 能挂上吗).
_TRAILING_PARTICLE = re.compile(r"(?:没有|不|没|么|呢|吗|啊|呀|吧|嘛|哈)+$")

_tokenizer_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_added_words: set[str] = set()


def _jieba() -> jieba.Tokenizer:
    """One jieba tokenizer per process (its dictionary is large), with the hospital dictionary."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                import jieba  # its import alone takes about 50 MB: only processes that search pay it

                tokenizer = jieba.Tokenizer()
                jieba.setLogLevel(60)
                tokenizer.initialize()
                tokenizer.load_userdict(str(DATA_DIR / "hospital_dict.txt"))
                _tokenizer = tokenizer
    return _tokenizer


def _ensure_words(words: Iterable[str]) -> None:
    tokenizer = _jieba()
    with _tokenizer_lock:
        for word in words:
            if word and word not in _added_words and len(word) > 1:
                tokenizer.add_word(word, freq=20000)
                _added_words.add(word)


def _data_lines(name: str) -> list[str]:
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _replacer(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation, longest term first; latin ends only match at word boundaries (ct, not picc)."""
    parts = []
    for term in sorted(set(terms), key=lambda t: (-len(t), t)):
        pattern = re.escape(term)
        if LATIN_OR_DIGIT.match(term[0]):
            pattern = r"(?<![a-z0-9])" + pattern
        if LATIN_OR_DIGIT.match(term[-1]):
            pattern += r"(?![a-z0-9])"
        parts.append(pattern)
    return re.compile("|".join(parts)) if parts else None


def _merge_groups(groups: Iterable[Sequence[str]]) -> list[list[str]]:
    """Groups that share a term become one group; the earliest group's first term stays canonical."""
    merged: list[list[str]] = []
    owner: dict[str, int] = {}
    for group in groups:
        terms = [_SPACES.sub(" ", fold(t)).strip() for t in group]
        terms = [t for t in dict.fromkeys(terms) if t]
        if len(terms) < 2:
            continue
        targets = sorted({owner[t] for t in terms if t in owner})
        if not targets:
            index = len(merged)
            merged.append([])
        else:
            index = targets[0]
            for other in targets[1:]:
                merged[index].extend(merged[other])
                for term in merged[other]:
                    owner[term] = index
                merged[other] = []
        for term in terms:
            if term not in merged[index]:
                merged[index].append(term)
            owner[term] = index
    return [group for group in merged if group]


@dataclass(frozen=True, slots=True)
class Analysis:
    """Terms of one text: term -> weight (term frequency for documents, importance for queries)."""

    terms: dict[str, float]
    # Words of the query as typed and as rewritten, and the synonyms of those: what `highlight` marks.
    surface_words: tuple[str, ...]


class Lexicon:
    """Normalisation rules, the user dictionary and synonyms. Immutable: `with_synonyms` returns a
    new lexicon (an index built with the old one keeps working until it is rebuilt)."""

    def __init__(
        self,
        *,
        synonym_groups: Iterable[Sequence[str]],
        dialect: Iterable[tuple[str, str]],
        fillers: Iterable[str],
        introducers: Iterable[str],
        stopwords: Iterable[str],
    ) -> None:
        self.synonym_groups: tuple[tuple[str, ...], ...] = tuple(tuple(g) for g in _merge_groups(synonym_groups))
        self._dialect = {fold(source): fold(target) for source, target in dialect}
        self._fillers = tuple(fold(f) for f in fillers)
        self._introducers = tuple(fold(i) for i in introducers)
        self._stopwords = frozenset(fold(s) for s in stopwords)
        self._canonical = {term: group[0] for group in self.synonym_groups for term in group}
        self._forms = {group[0]: group for group in self.synonym_groups}
        self._dialect_re = _replacer(self._dialect)
        self._filler_re = _replacer(self._fillers)
        self._synonym_re = _replacer(self._canonical)
        self._introducer_re = _replacer(self._introducers)
        _ensure_words([*self._canonical.values(), *self._dialect.values()])
        self._clause_cache: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
        self._by_pinyin = _pinyin_index([*_dictionary_words(), *self._canonical, *self._dialect.values()])

    @classmethod
    def default(cls) -> Lexicon:
        """The built-in hospital dictionary, default synonyms, dialect map and fillers."""
        return _default_lexicon()

    def with_synonyms(self, groups: Iterable[Sequence[str]]) -> Lexicon:
        """A new lexicon with admin synonym groups added (a group sharing a term with an existing
        group is merged into it)."""
        return Lexicon(
            synonym_groups=[*self.synonym_groups, *groups],
            dialect=self._dialect.items(),
            fillers=self._fillers,
            introducers=self._introducers,
            stopwords=self._stopwords,
        )

    def topic_words(self, terms: dict[str, float]) -> list[tuple[str, float]]:
        """The query's topic words with their importance: its words minus question-intent and function
        words (怎么, 在哪里, 多少钱, 能不能), each weighted by its query weight and its rarity in
        general Chinese (jieba's dictionary frequency), which, unlike the index's idf, means the same
        in a base of one item as in one of ten thousand."""
        intent = _intent_words()
        return [
            (term[1:], weight * _rarity(term[1:]))
            for term, weight in terms.items()
            if term[0] == WORD and term[1:] not in intent and term[1:] not in self._stopwords
        ]

    def synonyms_of(self, term: str) -> tuple[str, ...]:
        """Every form of the group `term` belongs to (just `term` when it has no synonyms)."""
        canonical = self._canonical.get(fold(term), fold(term))
        return self._forms.get(canonical, (canonical,))

    # ---- normalisation -----------------------------------------------------------------------

    def normalise(self, text: str, *, query: bool = True) -> str:
        """The text as the index sees it (folded, dialect, fillers and synonyms rewritten; for a
        query also pinyin typed for words and homophone typos)."""
        return self._rewrite(self._standardise(text, correct=query))

    def _standardise(self, text: str, *, correct: bool = True) -> str:
        text = _SPACES.sub(" ", fold(text)).strip()
        text = _PINYIN_RUN.sub(self._pinyin_to_words, text)
        if self._dialect_re is not None:
            text = self._dialect_re.sub(lambda m: self._dialect[m.group(0)], text)
        # Stored texts are edited by staff; only callers' words get typo correction.
        return self._correct_homophones(text) if correct else text

    def _pinyin_to_words(self, match: re.Match[str]) -> str:
        """Pinyin typed for a dictionary word or words ("guahao", "yibaoka") -> the Chinese words."""
        syllables = split_pinyin(match.group(0))
        if syllables is None or len(syllables) < 2:
            return match.group(0)
        words: list[str] = []
        start = 0
        while start < len(syllables):
            for end in range(len(syllables), start + 1, -1):
                word = self._by_pinyin.get("".join(syllables[start:end]))
                if word is not None:
                    words.append(word)
                    start = end
                    break
            else:
                return match.group(0)
        return "".join(words)

    def _correct_homophones(self, text: str) -> str:
        """2-4 characters that jieba could not make a word of, sounding like a dictionary word with
        one character different, are taken as a typo of it (挂好 -> 挂号, 押今 -> 押金); speech-to-text
        and pinyin input make these common. Only runs of single-character tokens are looked at, so a
        real word next to another (专家号, 手术时间) is never touched."""
        if not self._may_have_typo(text):
            return text
        out: list[str] = []
        run: list[str] = []
        for token in _jieba().cut(text, HMM=False):
            if len(token) == 1 and is_cjk(token):
                run.append(token)
                continue
            out.append(self._correct_run("".join(run)))
            run = []
            out.append(token)
        out.append(self._correct_run("".join(run)))
        return "".join(out)

    def _may_have_typo(self, text: str) -> bool:
        """Cheap pre-check (most texts have no typo, and segmenting is the expensive part)."""
        readings = [char_pinyin(c) or "" for c in text]
        for start in range(len(text) - 1):
            for length in (2, 3, 4):
                window = text[start : start + length]
                if len(window) < length:
                    break
                word = self._by_pinyin.get("".join(readings[start : start + length]))
                if (
                    word is not None
                    and len(word) == length
                    and sum(a != b for a, b in zip(word, window, strict=True)) == 1
                ):
                    return True
        return False

    def _correct_run(self, run: str) -> str:
        if len(run) < 2:
            return run
        out: list[str] = []
        position = 0
        while position < len(run):
            for length in (4, 3, 2):
                window = run[position : position + length]
                if len(window) < length:
                    continue
                word = self._by_pinyin.get(_pinyin_key(window))
                # One wrong character only: two unrelated characters that happen to sound like a
                # word (有几 / 邮寄) are not a typo of it.
                if (
                    word is not None
                    and len(word) == length
                    and sum(a != b for a, b in zip(word, window, strict=True)) == 1
                ):
                    out.append(word)
                    position += length
                    break
            else:
                out.append(run[position])
                position += 1
        return "".join(out)

    def _rewrite(self, text: str) -> str:
        if self._filler_re is not None:
            text = self._filler_re.sub(" ", text)
        if self._synonym_re is not None:
            text = self._synonym_re.sub(lambda m: self._canonical[m.group(0)], text)
        return text

    def _split_preamble(self, text: str) -> tuple[str, str]:
        """(preamble, question): callers often tell their story first and then ask."""
        if self._introducer_re is None:
            return "", text
        last = None
        for match in self._introducer_re.finditer(text):
            last = match
        if last is None:
            return "", text
        question = text[last.end() :]
        if sum(1 for c in question if is_cjk(c) or c.isalnum()) < 4:
            return "", text
        return text[: last.start()], question

    # ---- terms -------------------------------------------------------------------------------

    def analyse_document(self, text: str) -> dict[str, float]:
        """term -> term frequency."""
        counts = Counter(self._terms_of(self._rewrite(self._standardise(text, correct=False))))
        return {term: float(count) for term, count in counts.items()}

    def analyse_query(self, text: str) -> Analysis:
        preamble, question = self._split_preamble(self._standardise(text))
        terms: dict[str, float] = {}
        surface: list[str] = []
        for part, weight in ((preamble, PREAMBLE_WEIGHT), (question, 1.0)):
            if not part.strip():
                continue
            rewritten = self._rewrite(part)
            intent: set[str] = set()
            for term in self._terms_of(rewritten, intent):
                term_weight = weight * INTENT_WEIGHT if term in intent else weight
                terms[term] = max(terms.get(term, 0.0), term_weight)
            surface.extend(self._surface_words(part, rewritten))
        return Analysis(terms=terms, surface_words=tuple(dict.fromkeys(surface)))

    def _surface_words(self, original: str, rewritten: str) -> list[str]:
        words: list[str] = []
        for source in (original, rewritten):
            for clause in _CLAUSE_SPLIT.split(source):
                for token in _jieba().cut(clause, HMM=False):
                    token = token.strip()
                    if len(token) > 1 and token not in self._stopwords:
                        words.extend(self.synonyms_of(token))
        return words

    def _terms_of(self, text: str, intent: set[str] | None = None) -> list[str]:
        """The text's terms; `intent` (when given) receives those made only of question-intent words."""
        terms: list[str] = []
        for raw_clause in _CLAUSE_SPLIT.split(text):
            clause = _TRAILING_PARTICLE.sub("", raw_clause.strip())
            if clause:
                clause_terms, clause_intent = self._clause_terms(clause)
                terms.extend(clause_terms)
                if intent is not None:
                    intent.update(clause_intent)
        return terms

    def _clause_terms(self, clause: str) -> tuple[tuple[str, ...], frozenset[str]]:
        """(terms, the terms made only of intent words) of one clause."""
        if len(clause) > CACHED_CLAUSE_LENGTH:
            return self._segment_clause(clause)
        cached = self._clause_cache.get(clause)
        if cached is None:
            if len(self._clause_cache) >= CLAUSE_CACHE_SIZE:
                self._clause_cache.clear()
            cached = self._clause_cache[clause] = self._segment_clause(clause)
        return cached

    def _segment_clause(self, clause: str) -> tuple[tuple[str, ...], frozenset[str]]:
        out: list[str] = []
        intent: list[str] = []
        intent_words = _intent_words()
        stopwords = self._stopwords
        symbols: list[str] = []  # Chinese characters and latin/digit runs, in order
        symbol_is_intent: list[bool] = []
        for token in _jieba().cut(clause, HMM=False):
            token = token.strip()
            if not token:
                continue
            latin = LATIN_OR_DIGIT.fullmatch(token) is not None
            pieces = [token] if latin else _CJK_CHAR.findall(token)
            is_intent = token in intent_words
            symbols.extend(pieces)
            symbol_is_intent.extend([is_intent] * len(pieces))
            if pieces and token not in stopwords:
                out.append(WORD + token)
                if is_intent:
                    intent.append(WORD + token)
        for symbol, is_intent in zip(symbols, symbol_is_intent, strict=True):
            if symbol not in stopwords and not symbol.isascii():
                out.append(CHAR + symbol)
                if is_intent:
                    intent.append(CHAR + symbol)
        _pair_terms(BIGRAM, symbols, symbol_is_intent, "", out, intent)
        syllables, syllable_is_intent = _syllables(symbols, symbol_is_intent)
        _pair_terms(PINYIN, syllables, syllable_is_intent, " ", out, intent)
        for symbol in symbols:
            if len(symbol) > 1 and symbol.isascii() and symbol.isalpha():
                out.append(NAME + symbol)
        return tuple(out), frozenset(intent)


def _pinyin_key(word: str) -> str:
    return "".join(char_pinyin(c) or c for c in word)


def _pinyin_index(words: Iterable[str]) -> dict[str, str]:
    """Toneless pinyin -> word, for Chinese words of two or more characters (the first word wins)."""
    index: dict[str, str] = {}
    for word in words:
        if len(word) > 1 and all(is_cjk(c) for c in word):
            index.setdefault(_pinyin_key(word), word)
    return index


@lru_cache(maxsize=1)
def _intent_words() -> frozenset[str]:
    return frozenset(" ".join(_data_lines("intent_words.txt")).split())


@lru_cache(maxsize=8192)
def _rarity(word: str) -> float:
    tokenizer = _jieba()
    frequency = tokenizer.FREQ.get(word, 0)
    return min(12.0, max(1.0, math.log(tokenizer.total / (frequency + 1))))


@lru_cache(maxsize=1)
def _dictionary_words() -> tuple[str, ...]:
    return tuple(line.split()[0] for line in _data_lines("hospital_dict.txt"))


def _pair_terms(
    kind: str, pieces: list[str], piece_is_intent: list[bool], joiner: str, out: list[str], intent: list[str]
) -> None:
    for i in range(len(pieces) - 1):
        term = kind + pieces[i] + joiner + pieces[i + 1]
        out.append(term)
        if piece_is_intent[i] and piece_is_intent[i + 1]:
            intent.append(term)


def _syllables(symbols: list[str], symbol_is_intent: list[bool]) -> tuple[list[str], list[bool]]:
    """Toneless pinyin of each Chinese character; a latin run split into pinyin syllables if it is
    pinyin (so "yidi" meets 异地), else kept whole."""
    syllables: list[str] = []
    flags: list[bool] = []
    readings = pinyin_readings()
    for symbol, is_intent in zip(symbols, symbol_is_intent, strict=True):
        reading = readings.get(symbol)
        pieces = (reading,) if reading is not None else (split_pinyin(symbol) or (symbol,))
        syllables.extend(pieces)
        flags.extend([is_intent] * len(pieces))
    return syllables, flags


@lru_cache(maxsize=1)
def _default_lexicon() -> Lexicon:
    dialect = [line.split("\t", 1) for line in _data_lines("dialect.txt")]
    return Lexicon(
        # In the data file a space inside a term is written "_" ("b_chao"), since spaces separate terms.
        synonym_groups=[[t.replace("_", " ") for t in line.split()] for line in _data_lines("synonyms.txt")],
        dialect=[(source, target) for source, target in dialect],
        fillers=_data_lines("fillers.txt"),
        introducers=_data_lines("introducers.txt"),
        stopwords=" ".join(_data_lines("stopwords.txt")).split(),
    )
