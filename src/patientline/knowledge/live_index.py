"""The search index of the live knowledge base, one per process, kept current by events: a publish,
an archive or a new variant on any node reaches every node's index through the bus within moments.
The first search builds it from the database; a synonym or category change rebuilds it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.db import Database
from patientline.core.events import Published
from patientline.directory.models import Department
from patientline.knowledge import service
from patientline.knowledge.events import ItemChanged, SynonymsChanged, TreeChanged
from patientline.knowledge.search import Document, Lexicon, SearchIndex, SearchQuery, SearchResult
from patientline.knowledge.service import CategoryTree, LiveItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    category_id: int | None = None
    site_id: int | None = None
    on: date | None = None  # validity on this day; None: today
    public_only: bool = False


@dataclass
class LiveSearch:
    db: Database | None = None
    timezone: str = "Asia/Shanghai"
    index: SearchIndex | None = None
    items: dict[int, LiveItem] = field(default_factory=dict)
    tree: CategoryTree = field(default_factory=lambda: CategoryTree({}))
    department_names: dict[int, str] = field(default_factory=dict)
    _pending: set[int] = field(default_factory=set)
    _stale: bool = True
    _work: asyncio.Task[None] | None = None
    _build_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Items changed while a compaction runs in a thread: applied to its result before the swap.
    _changed_during_compaction: set[int] | None = None
    _compaction: asyncio.Task[None] | None = None
    # A refresh and the compaction's replay-and-swap never interleave (a refresh waiting on the
    # database across the swap would update the index that was just replaced).
    _refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def attach(self, db: Database, *, timezone: str) -> None:
        self.db, self.timezone = db, timezone

    # ---- events ---------------------------------------------------------------------------

    def on_event(self, published: Published) -> None:
        if published.type == ItemChanged.type and published.payload.get("live"):
            self._pending.add(int(published.payload["item_id"]))
        elif published.type in (SynonymsChanged.type, TreeChanged.type):
            self._stale = True
        else:
            return
        if self.index is not None:
            self._schedule()

    def _schedule(self) -> None:
        if self._work is None or self._work.done():
            try:
                self._work = asyncio.get_running_loop().create_task(self._catch_up())
            except RuntimeError:  # no loop (a command-line tool): the next search catches up
                self._work = None

    async def _catch_up(self) -> None:
        try:
            while self._stale or self._pending:
                if self._stale or self.index is None:
                    await self._build()
                else:
                    await self._refresh(self.index)
        except Exception:
            log.exception("knowledge index update failed; the next search retries")
            self._stale = True

    # ---- building -------------------------------------------------------------------------

    async def _load(self, session: AsyncSession) -> tuple[Lexicon, list[LiveItem]]:
        groups = await service.synonym_groups(session, active_only=True)
        lexicon = Lexicon.default().with_synonyms([list(group.terms) for group in groups])
        self.tree = await CategoryTree.load(session)
        self.department_names = dict((await session.execute(select(Department.id, Department.name))).tuples().all())
        return lexicon, await service.live_items(session)

    def _database(self) -> Database:
        if self.db is None:
            raise RuntimeError("the knowledge index has no database: call attach() first")
        return self.db

    async def _build(self) -> SearchIndex:
        async with self._build_lock:
            self._stale = False
            self._pending.clear()
            async with self._database().sessions() as session:
                lexicon, items = await self._load(session)
            index = SearchIndex(lexicon)
            documents = [self._document(item) for item in items]
            await asyncio.to_thread(index.build, documents)
            self.items = {item.item_id: item for item in items}
            self.index = index
            self._changed_during_compaction = None  # a compaction of the old index is now moot
            return index

    async def _refresh(self, index: SearchIndex) -> None:
        async with self._refresh_lock:
            index = self.index if self.index is not None else index  # a compaction may have swapped it
            changed, self._pending = self._pending, set()
            async with self._database().sessions() as session:
                fresh = {item.item_id: item for item in await service.live_items(session, changed)}
            for item_id in changed:
                item = fresh.get(item_id)
                if item is None:
                    self.items.pop(item_id, None)
                else:
                    self.items[item_id] = item
                self._apply(index, item_id)
            if self._changed_during_compaction is not None:
                self._changed_during_compaction.update(changed)
            elif index.needs_compaction:
                self._start_compaction(index)

    def _apply(self, index: SearchIndex, item_id: int) -> None:
        """Bring one item of `index` in line with `self.items`."""
        item = self.items.get(item_id)
        if item is None:
            index.remove(item_id)
        else:
            index.upsert(self._document(item))

    # ---- compaction -----------------------------------------------------------------------

    def _start_compaction(self, index: SearchIndex) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: compaction waits for the next refresh on a loop
            return
        changed: set[int] = set()
        self._changed_during_compaction = changed
        self._compaction = loop.create_task(self._compact(index, changed))

    async def _compact(self, index: SearchIndex, changed: set[int]) -> None:
        """Build a compacted copy in a thread (searches and updates go on meanwhile), replay the
        items changed in the meantime, then swap; dropped if a full rebuild replaced the index."""
        try:
            compacted = await asyncio.to_thread(index.compacted)
            async with self._refresh_lock:
                if self._changed_during_compaction is not changed or self.index is not index:
                    return
                for item_id in changed:
                    self._apply(compacted, item_id)
                self.index = compacted
        except Exception:
            log.exception("knowledge index compaction failed; the old index stays in use")
        finally:
            if self._changed_during_compaction is changed:
                self._changed_during_compaction = None

    def _document(self, item: LiveItem) -> Document:
        content = item.content
        return Document(
            id=item.item_id,
            question=item.question,
            variants=list(item.variants),
            names=[self.department_names[d] for d in content.get("department_ids", []) if d in self.department_names],
            extra=" ".join([*content.get("tags", []), content.get("spoken", "")]),
            category_ids=self.tree.ancestors(int(content["category_id"])),
            site_ids=tuple(content.get("site_ids", [])),
            valid_from=date.fromisoformat(content["valid_from"]) if content.get("valid_from") else None,
            valid_to=date.fromisoformat(content["valid_to"]) if content.get("valid_to") else None,
            public=bool(content.get("public", True)),
        )

    async def ready(self) -> SearchIndex:
        """The index, built or caught up with every change this node has heard of."""
        if self._work is not None and not self._work.done():
            await self._work
        index = await self._build() if self.index is None or self._stale else self.index
        if self._pending:
            await self._refresh(index)
        return index

    # ---- searching ------------------------------------------------------------------------

    async def search(self, text: str, *, limit: int = 10, filters: Filters = Filters()) -> SearchResult:
        index = await self.ready()
        query = SearchQuery(
            text=text,
            limit=limit,
            category_id=filters.category_id,
            site_id=filters.site_id,
            on=filters.on or clock.today(self.timezone),
            public_only=filters.public_only,
        )
        return index.search(query)
