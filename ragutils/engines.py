"""The course's retriever interface over a real search engine: tantivy, a Rust library like Lucene.

`TantivyRetriever(docs, doc_ids).search(queries, k)` gives the same ranked
(doc_id, score) lists as `ragutils.bm25.BM25Retriever`, from an inverted index
that tantivy builds, stores (in memory or on disk) and searches.

Three choices make its results comparable with `BM25Retriever(variant="lucene",
k1=1.2, b=0.75)`:

1. The same tokens. Tantivy's "default" analyzer splits on characters that are
   not letters or digits (so "foo_bar" becomes two tokens, where our `\\w+` keeps
   one), drops tokens longer than 40 bytes, and lower-cases *after* splitting.
   The course analyzer registered here is a regex tokenizer that matches
   Python's `\\w` (`[\\p{L}\\p{N}_]+`: letters, digits and the underscore),
   followed by lower-casing; and the text is lower-cased by Python *before*
   tantivy sees it, because `ragutils.text.tokenize` lower-cases first ("İzmir"
   lower-cases to "i" + a combining dot + "zmir", which then splits in two).
   On every character that Python's Unicode tables know, the tokens are then
   exactly `ragutils.text.tokenize`'s (the tests check it); only characters
   that Rust's newer Unicode tables assign and Python 3.11's do not would differ.
2. Queries are never parsed. Tantivy's query parser gives meaning to `+ - " ( ) :`
   and AND/OR/NOT, so user text such as `C++ "foo` is a syntax error there.
   Here a query is tokenised by `ragutils.text.tokenize` and becomes an OR of
   term queries, one per token (a repeated word counts twice, as in BM25Retriever).
3. The same formula. Tantivy's BM25 is Lucene's (idf = ln(1 + (N - n + 0.5) /
   (n + 0.5)), k1 = 1.2, b = 0.75), times the constant (k1 + 1), which does not
   change rankings. What does differ: tantivy stores each document's length as
   a one-byte "fieldnorm" code, exact up to 40 tokens and rounded down beyond
   (see `stored_length`), and it computes in float32. Both can swap documents
   whose scores are close.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import cache_dir
from .errors import CourseError
from .retriever import Ranking, check_k, query_list
from .text import tokenize, validate_query
from .tools import store

if TYPE_CHECKING:
    import tantivy

# Python's `\w` (str.isalnum() or "_") in the syntax of Rust's regex crate.
WORD_PATTERN = r"[\p{L}\p{N}_]+"
ANALYZER = "course"
# Tantivy's BM25 constants (fixed in the library).
K1, B = 1.2, 0.75
# Written next to an on-disk index: what it was built from, so a stale index is rebuilt.
FINGERPRINT_FILE = "ragutils-fingerprint.txt"
SCHEMA_VERSION = "tantivy-retriever-v1"


# ----------------------------------------------------------------------------
# Analyzers
# ----------------------------------------------------------------------------


def course_analyzer() -> tantivy.TextAnalyzer:
    """Tantivy's analyzer that matches `ragutils.text.tokenize` on lower-cased text: `\\w+` runs, lower-cased.

    Used in notebook 04, section 4.
    """
    import tantivy

    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(WORD_PATTERN)).filter(tantivy.Filter.lowercase()).build()


def default_analyzer() -> tantivy.TextAnalyzer:
    """Tantivy's own "default" analyzer: split on non-alphanumerics, drop tokens over 40 bytes, lower-case.

    Used in notebook 04, section 4.
    """
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .build()
    )


# ----------------------------------------------------------------------------
# Field norms: the document lengths tantivy's BM25 actually uses
# ----------------------------------------------------------------------------


def _fieldnorm_table() -> np.ndarray:
    """The 256 lengths a fieldnorm byte can stand for (tantivy's FIELD_NORMS_TABLE)."""
    # Codes 0-23 are the lengths themselves; above, 24 + a tiny float (3 bits of
    # mantissa, 5 of exponent): steps of 2 from 40, 4 from 56, 8 from 88, 16 from 152...
    table = []
    for code in range(256):
        if code < 24:
            table.append(code)
        else:
            exp_part = code - 24
            bits, shift = exp_part & 0b111, exp_part >> 3
            table.append(24 + (bits if shift == 0 else (bits | 8) << (shift - 1)))
    return np.array(table, dtype=np.int64)


FIELDNORM_TABLE = _fieldnorm_table()


def fieldnorm_code(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """The one-byte code tantivy stores for each document length (in tokens).

    Used in notebook 04, section 4.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 0).any():
        raise CourseError("document lengths must be >= 0")
    # The largest table entry <= length: lengths are rounded *down*.
    return (np.searchsorted(FIELDNORM_TABLE, lengths, side="right") - 1).astype(np.uint8)


def stored_length(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """The length tantivy's BM25 sees for each true length: exact up to 40, then rounded down.

    Used in notebook 04, section 4.
    """
    return FIELDNORM_TABLE[fieldnorm_code(lengths)]


# ----------------------------------------------------------------------------
# The retriever
# ----------------------------------------------------------------------------


def corpus_fingerprint(docs: Sequence[str], doc_ids: Sequence[str]) -> str:
    """A hash of the documents, their ids, the schema and tantivy's version: names an on-disk index.

    Used in notebook 04, section 4.
    """
    import importlib.metadata

    return store.fingerprint([SCHEMA_VERSION, WORD_PATTERN, importlib.metadata.version("tantivy"),
                              list(doc_ids), list(docs)])


def default_index_dir(docs: Sequence[str], doc_ids: Sequence[str]) -> Path:
    """A folder in the course cache for the on-disk index of these documents.

    Used in notebook 04, section 4.
    """
    return cache_dir("engines") / f"tantivy-{corpus_fingerprint(docs, doc_ids)}"


class TantivyRetriever:
    """BM25 search with tantivy: `search(queries, k)` gives ranked (doc_id, score) lists, best first.

    Used in notebook 04, section 4.
    """

    def __init__(
        self,
        docs: Sequence[str],
        doc_ids: Sequence[str],
        index_dir: str | Path | None = None,
        heap_size: int = 64_000_000,
    ) -> None:
        """Index `docs` (ids `doc_ids`) in memory, or in `index_dir` (reused if built there from the same docs)."""
        import tantivy

        if isinstance(docs, str):
            raise CourseError("docs must be a list of texts, not one string")
        if isinstance(doc_ids, str):
            raise CourseError("doc_ids must be a list of ids, not one string")
        docs, doc_ids = list(docs), list(doc_ids)
        if len(docs) != len(doc_ids):
            raise CourseError(f"got {len(docs)} documents but {len(doc_ids)} ids: give one id per document")
        if not docs:
            raise CourseError("cannot build a search index from an empty corpus: give at least one document")
        if not all(isinstance(doc, str) for doc in docs) or not all(isinstance(i, str) for i in doc_ids):
            raise CourseError("documents and their ids must be text (str)")
        if len(set(doc_ids)) != len(doc_ids):
            raise CourseError("document ids must be unique")
        self.doc_ids = doc_ids
        self.position = {doc_id: i for i, doc_id in enumerate(doc_ids)}

        builder = tantivy.SchemaBuilder()
        # doc_id: stored, so a hit can say which document it is; indexed whole ("raw").
        builder.add_text_field("doc_id", stored=True, tokenizer_name="raw", index_option="basic")
        # text: indexed with term frequencies (BM25 needs them), not stored, no positions
        # (no phrase queries here): a smaller index.
        builder.add_text_field("text", stored=False, tokenizer_name=ANALYZER, index_option="freq")
        self.schema = builder.build()

        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.reused = False
        if self.index_dir is None:
            self.index = tantivy.Index(self.schema)
        else:
            key = corpus_fingerprint(docs, doc_ids)
            self.reused = self._prepare_dir(self.index_dir, key)
            self.index = tantivy.Index(self.schema, path=str(self.index_dir), reuse=self.reused)
        # Analyzers are not saved with an index: register ours every time, before any write or search.
        self.index.register_tokenizer(ANALYZER, course_analyzer())
        if not self.reused:
            self._add(docs, heap_size)
            if self.index_dir is not None:
                store.atomic_write_text(self.index_dir / FINGERPRINT_FILE, key + "\n")
        self.index.reload()
        self.searcher = self.index.searcher()
        if self.searcher.num_docs != len(doc_ids):
            raise CourseError(f"the index in {self.index_dir} holds {self.searcher.num_docs} documents, "
                              f"not {len(doc_ids)}: delete the folder and build it again")

    @staticmethod
    def _prepare_dir(folder: Path, key: str) -> bool:
        """True if `folder` holds an index of the same documents; else empty it (only if we made it)."""
        marker = folder / FINGERPRINT_FILE
        if marker.is_file():
            if marker.read_text(encoding="utf-8").strip() == key:
                return True
            shutil.rmtree(folder)  # a stale index that this class built: rebuild it
        elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise CourseError(f"{folder} is not empty and holds no course index: give an empty or new folder")
        folder.mkdir(parents=True, exist_ok=True)
        return False

    def _add(self, docs: list[str], heap_size: int) -> None:
        """Add every document, in order, with one writer thread, and commit."""
        import tantivy

        # One thread writes one segment in corpus order, so tantivy's internal doc
        # numbers follow the corpus and its ties (broken by doc number) come out in
        # corpus order, as in BM25Retriever.
        writer = self.index.writer(heap_size=heap_size, num_threads=1)
        for doc_id, doc in zip(self.doc_ids, docs):
            # Lower-cased by Python first: see the module docstring.
            writer.add_document(tantivy.Document(doc_id=doc_id, text=doc.lower()))
        writer.commit()
        writer.wait_merging_threads()

    def __repr__(self) -> str:
        where = "in memory" if self.index_dir is None else "on disk"
        return f"TantivyRetriever({len(self.doc_ids)} documents, {where})"

    def analyze(self, text: str) -> list[str]:
        """The tokens the index holds for `text`."""
        return course_analyzer().analyze(text.lower())

    def build_query(self, query: str) -> tantivy.Query:
        """A query as tantivy objects: an OR of one term query per token, so no character is syntax."""
        import tantivy

        tokens = tokenize(validate_query(query))
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "text", token, index_option="freq"))
                   for token in tokens]
        return tantivy.Query.boolean_query(clauses)

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, up to k (doc_id, score) pairs, best first; [] when no document matches."""
        queries = query_list(queries)
        check_k(k)
        built = [self.build_query(query) for query in queries]  # every query checked before any search
        searcher, position = self.searcher, self.position
        results = []
        for query in built:
            hits = searcher.search(query, limit=int(k), count=False).hits
            found = [(searcher.doc(address)["doc_id"][0], float(score)) for score, address in hits]
            # Already in this order (score, then doc number = corpus order); sorting makes it explicit.
            found.sort(key=lambda hit: (-hit[1], position[hit[0]]))
            results.append(found)
        return results

    def explain(self, query: str, doc_id: str) -> dict[str, Any]:
        """Tantivy's own account of one document's score for one query (idf, tf, dl, avgdl per term)."""
        import tantivy

        if doc_id not in self.position:
            raise CourseError(f"unknown document id {doc_id!r}")
        built = self.build_query(query)
        find = tantivy.Query.term_query(self.schema, "doc_id", doc_id, index_option="basic")
        address = self.searcher.search(find, limit=1, count=False).hits[0][1]
        try:
            return json.loads(built.explain(self.searcher, address).to_json())
        except ValueError:
            raise CourseError(f"document {doc_id!r} shares no word with the query {query!r}: its score is 0") from None
