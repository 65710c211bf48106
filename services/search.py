"""Search that understands people, in front of the FTS5 product index.

A query is read word by word. Each word is casefolded and transliterated to Latin
(``геншин`` -> ``genshin``); an owner's alias replaces it (``hsr`` -> ``honkai star rail``,
table ``search_aliases``). A word that begins no word of any product is corrected against
the catalogue's vocabulary: same consonant skeleton (``stim``/``steam``, ``pabg``/``pubg``)
or rapidfuzz ``ratio`` >= 80 of the word or of its skeleton (``genshn``/``genshin``,
``плейстейшн``/``playstation``). The FTS5 index then finds products having every word (as a
prefix, in any order), and rapidfuzz ranks them by how close the name is to the query
(``WRatio``; plain ``ratio`` past :data:`RANK_LIMIT` products). Nothing found: products
having a word close to one of the query's are offered instead (else the closest names).

The vocabulary and names live in memory (:class:`_Index`, about 2.6 MB for 12,700 products),
rebuilt when the catalogue's products are (``CatalogueRepository.generation``).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from services.memory import release_freed_memory
from services.shared_state import SEARCH_ALIASES, CacheBus
from storage.catalogue import CatalogueRepository, Product, StoredOffer
from storage.db import Row

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
_VOWELS = frozenset("aeiouy")
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
    "я": "ya", "і": "i", "ї": "i", "є": "e", "ґ": "g",
}  # fmt: skip
_TRANSLIT = str.maketrans(_CYRILLIC)
MAX_WORDS = 8
#: products ranked by WRatio; a query matching more is ranked by the cheaper ratio
RANK_LIMIT = 400
#: at most this many products are found for one query (a page count stays honest below it)
MATCH_LIMIT = 5000
FUZZY_CUTOFF = 80
SUGGESTIONS = 3


def transliterate(text: str) -> str:
    """Casefolded ``text`` with Cyrillic letters spelled in Latin (``Геншин`` -> ``genshin``)."""
    return text.casefold().translate(_TRANSLIT)


def words(text: str) -> list[str]:
    """The transliterated words of ``text`` (``"Honkai: Star Rail"`` -> ``[honkai, star, rail]``)."""
    return _WORD.findall(transliterate(text))


def skeleton(word: str) -> str:
    """``word`` without vowels after its first letter and with doubled letters once:
    how a word survives vowel slips and transliteration (``steam``, ``stim`` -> ``stm``)."""
    out: list[str] = []
    for index, char in enumerate(word):
        if index and char in _VOWELS:
            continue
        if out and out[-1] == char:
            continue
        out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of a search: ``items`` (at most the page size), ``total`` products found,
    and when nothing was found, the ``suggestions`` closest to the query."""

    items: list[Product]
    total: int
    suggestions: list[Product] = field(default_factory=list)


class _Texts:
    """Strings kept as one ``str`` and the offsets where each ends: ``texts[i]`` is a slice
    of it, equal to the ``i``-th string added. A few bytes a string instead of a ``str``
    object each (49 bytes and up, and a pointer). Filled by :meth:`extend`, then
    :meth:`seal` once."""

    __slots__ = ("_chunks", "_ends", "_text")

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._ends = array("Q")
        self._text = ""

    def extend(self, texts: Iterable[str]) -> None:
        end = self._ends[-1] if self._ends else 0
        parts = []
        for text in texts:
            parts.append(text)
            end += len(text)
            self._ends.append(end)
        self._chunks.append("".join(parts))

    def seal(self) -> None:
        self._text, self._chunks = "".join(self._chunks), []

    def __getitem__(self, at: int) -> str:
        return self._text[self._ends[at - 1] if at else 0 : self._ends[at]]


class _Products:
    """The listed products of the index in flat arrays instead of a :class:`Product` and
    its four ``str`` each (about 50 instead of 350 bytes a product); :meth:`get` makes the
    few a page shows. Filled by :meth:`extend` with rows ``(rowid, supplier, product_id,
    name, category, offer_count, ...)`` in rowid order, then :meth:`seal` once."""

    __slots__ = ("_counts", "_ids", "_kind_of", "_kinds", "_names", "_sources", "rowids")

    def __init__(self) -> None:
        self.rowids = array("q")  # ascending
        self._ids = _Texts()
        self._names = _Texts()
        self._kind_of: dict[tuple[str, str], int] = {}  # (supplier, category) -> kind
        self._sources: tuple[tuple[str, str], ...] = ()  # (supplier, category) of each kind
        self._kinds = array("L")
        self._counts = array("q")

    def extend(self, rows: Sequence[Row]) -> None:
        self.rowids.extend(row[0] for row in rows)
        self._ids.extend(row[2] for row in rows)
        self._names.extend(row[3] for row in rows)
        kind_of = self._kind_of
        self._kinds.extend(kind_of.setdefault((row[1], row[4]), len(kind_of)) for row in rows)
        self._counts.extend(row[5] for row in rows)

    def seal(self) -> None:
        self._ids.seal()
        self._names.seal()
        self._sources = tuple(self._kind_of)

    def __len__(self) -> int:
        return len(self.rowids)

    def get(self, rowid: int) -> Product | None:
        """The product of ``rowid``, or ``None`` when the index has none."""
        at = bisect.bisect_left(self.rowids, rowid)
        if at == len(self.rowids) or self.rowids[at] != rowid:
            return None
        supplier, category = self._sources[self._kinds[at]]
        return Product(supplier, self._ids[at], self._names[at], category, self._counts[at])


@dataclass(slots=True)
class _Index:
    generation: int
    products: _Products
    names: dict[int, str]  # rowid -> transliterated words of the name, in rowid order
    vocabulary: list[str]  # sorted transliterated words
    originals: dict[str, set[str]]  # transliterated word -> words as written (casefolded)
    skeletons: dict[str, set[str]]  # skeleton -> transliterated words
    aliases: dict[str, str]


class SearchService:
    """Product search for the text search, its pages and inline mode (see the module)."""

    def __init__(self, repo: CatalogueRepository) -> None:
        self.repo = repo
        self._index: _Index | None = None
        self._lock = asyncio.Lock()
        self._bus = CacheBus()

    def share_through(self, bus: CacheBus) -> None:
        """Tell other processes about new aliases on ``bus``, and rebuild the index when
        another process adds one (several workers)."""
        self._bus = bus
        bus.subscribe(SEARCH_ALIASES, lambda _key: self._forget_index())

    def _forget_index(self) -> None:
        self._index = None

    async def warm(self) -> None:
        """Build the index now if the products changed since it was built (after a sync),
        so that the next customer's search does not wait for it (~0.2 s of CPU for 64,000
        offers). Raises what reading the products raises."""
        await self._current()

    def _fresh(self) -> _Index | None:
        index = self._index
        return index if index is not None and index.generation == self.repo.generation else None

    async def _current(self, *, rebuild: bool = False) -> _Index:
        index = None if rebuild else self._fresh()
        if index is not None:
            return index
        async with self._lock:
            index = None if rebuild else self._fresh()
            if index is None:
                self._index = None  # dropped before building: its memory serves the new one
                index = self._index = await self._build()
                release_freed_memory()  # what the build's chunks of rows took (~2 MiB)
        return index

    async def _build(self) -> _Index:
        generation = self.repo.generation
        products = _Products()
        spelled = _Texts()  # transliterated names, in rowid order
        originals: dict[str, set[str]] = {}
        # read in chunks, and the lasting dict of names made after the last: made among
        # all rows at once (~7 MB for 12,700 products), its strings pinned their memory
        async for rows in self.repo.search_index_rows():
            products.extend(rows)
            spelled.extend(" ".join(words(row[3])) for row in rows)
            for row in rows:
                for word in _WORD.findall(f"{row[3]} {row[6]}".casefold()):
                    if not word.isdigit():
                        originals.setdefault(word.translate(_TRANSLIT), set()).add(word)
        products.seal()
        spelled.seal()
        names = {rowid: spelled[at] for at, rowid in enumerate(products.rowids)}
        del spelled
        skeletons: dict[str, set[str]] = {}
        for word in originals:
            skeletons.setdefault(skeleton(word), set()).add(word)
        aliases = {alias: target for alias, target in await self.repo.aliases()}
        logger.info("search index: %d products, %d words", len(products), len(originals))
        return _Index(generation, products, names, sorted(originals), originals, skeletons, aliases)

    @staticmethod
    def _begins_a_word(index: _Index, word: str) -> bool:
        at = bisect.bisect_left(index.vocabulary, word)
        return at < len(index.vocabulary) and index.vocabulary[at].startswith(word)

    def _alternatives(self, index: _Index, word: str) -> list[str]:
        """What one written word may mean: itself, its transliteration, and when it begins
        no word of the catalogue, the catalogue's words it is a slip of."""
        latin = word.translate(_TRANSLIT)
        found = [word] if latin == word else [word, latin]
        if self._begins_a_word(index, latin):
            return found
        bones = skeleton(latin)
        similar = set(index.skeletons.get(bones, ())) if len(latin) >= 3 else set()
        if len(latin) >= 4:
            similar.update(
                match
                for match, _score, _ in process.extract(
                    latin, index.vocabulary, scorer=fuzz.ratio,
                    score_cutoff=FUZZY_CUTOFF, limit=5,
                )
            )  # fmt: skip
        if len(bones) >= 4:  # transliterated spellings: плейстейшн -> pleisteishn ~ playstation
            for match, _score, _ in process.extract(
                bones, list(index.skeletons), scorer=fuzz.ratio,
                score_cutoff=FUZZY_CUTOFF, limit=3,
            ):  # fmt: skip
                similar.update(index.skeletons[match])
        for match in sorted(similar):
            found.extend(index.originals.get(match, ()))
        return found[:10]

    def _query_words(self, index: _Index, text: str) -> list[str]:
        written = _WORD.findall(text.casefold())[:MAX_WORDS]
        whole = " ".join(written)
        if whole in index.aliases:
            return _WORD.findall(index.aliases[whole].casefold())[:MAX_WORDS]
        out: list[str] = []
        for word in written:
            target = index.aliases.get(word) or index.aliases.get(word.translate(_TRANSLIT))
            out.extend(_WORD.findall(target.casefold()) if target else [word])
        return out[:MAX_WORDS]

    async def search(self, text: str, offset: int = 0, limit: int = 8) -> SearchResult:
        """Products for free ``text``: ``limit`` of them from ``offset`` in rank order, the
        total, and suggestions when there is none (see the module)."""
        index = await self._current()
        query = self._query_words(index, text)
        if not query:
            return SearchResult([], 0)
        groups = [self._alternatives(index, word) for word in query]
        rowids = await self.repo.matching_product_rowids(groups, MATCH_LIMIT)
        if not rowids:
            return SearchResult([], 0, await self._suggest(index, query))
        if rowids[-1] not in index.names or rowids[0] not in index.names:
            del index  # products rebuilt by another process; not held through the rebuild
            index = await self._current(rebuild=True)
        wanted = " ".join(word.translate(_TRANSLIT) for word in query)
        names = [index.names.get(rowid, "") for rowid in rowids]
        # WRatio weighs partial and reordered names well but costs ~3 us a name; past
        # RANK_LIMIT names the plain ratio keeps a page within the time budget. Equal
        # scores keep the index's order (rowid), so pages never overlap.
        scorer = fuzz.WRatio if len(rowids) <= RANK_LIMIT else fuzz.ratio
        ranked = process.extract(wanted, names, scorer=scorer, limit=offset + limit)
        found = (index.products.get(rowids[at]) for _name, _score, at in ranked[offset:])
        return SearchResult([product for product in found if product], len(rowids))

    async def _suggest(self, index: _Index, query: list[str]) -> list[Product]:
        """The products closest to a query that found nothing: those having a word close
        to one of its words, else the names closest to the whole of it."""
        wanted = " ".join(word.translate(_TRANSLIT) for word in query)
        close: set[str] = set()
        for word in query:
            latin = word.translate(_TRANSLIT)
            for match, _score, _ in process.extract(
                latin, index.vocabulary, scorer=fuzz.ratio, score_cutoff=60, limit=2
            ):
                close.update(index.originals[match])
        names: dict[int, str] = {}
        if close:
            rowids = await self.repo.matching_product_rowids([sorted(close)], 50)
            names = {rowid: index.names[rowid] for rowid in rowids if rowid in index.names}
        hits = process.extract(
            wanted, names or index.names, scorer=fuzz.WRatio if names else fuzz.QRatio,
            limit=SUGGESTIONS, score_cutoff=50,
        )  # fmt: skip
        return [product for _name, _score, rowid in hits if (product := index.products.get(rowid))]

    async def offers(self, text: str, limit: int = 20) -> list[StoredOffer]:
        """In-stock offers of the best products for ``text`` (inline mode), at most ``limit``."""
        found: list[StoredOffer] = []
        for product in (await self.search(text, 0, 5)).items:
            offers = await self.repo.offers_of(product.supplier, product.product_id)
            found.extend(offer for offer in offers if offer.in_stock)
            if len(found) >= limit:
                break
        return found[:limit]

    async def aliases(self) -> list[tuple[str, str]]:
        """The alias table ``[(alias, target)]``, by alias."""
        return await self.repo.aliases()

    async def add_alias(self, alias: str, target: str, admin_id: int | None) -> tuple[str, str]:
        """Make search read ``alias`` as ``target``; both are casefolded and reduced to their
        words. Returns what was stored. Raises ``ValueError`` when either has no word."""
        alias_words = _WORD.findall(alias.casefold())
        target_words = _WORD.findall(target.casefold())
        if not alias_words or not target_words:
            raise ValueError("an alias and its target need a word each")
        stored = (" ".join(alias_words), " ".join(target_words[:MAX_WORDS]))
        await self.repo.set_alias(*stored, admin_id)
        if self._index is not None:
            self._index.aliases[stored[0]] = stored[1]
        await self._bus.publish(SEARCH_ALIASES, stored[0])
        return stored
