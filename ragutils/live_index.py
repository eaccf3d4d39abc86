"""Keeping the knowledge base current: indexes that take adds, updates and deletes without a rebuild.

A RAG system answers from its index, so the index must follow the documents:
an article is edited, a page is retracted, a new one appears. Rebuilding from
scratch is the simple answer: BM25 over the 10,033 wiki passages takes a few
tenths of a second. But the cost grows with the corpus (a dense index must also
re-encode every passage, minutes on a laptop CPU), while changing 3 documents
should cost in proportion to 3 documents: updating 10 wiki passages takes about
a millisecond. Notebook 14 changes its indexes in place and proves them right:
after any sequence of add / update / delete, the results equal those of a full
rebuild on the same documents.

This module holds what every live index promises (``LiveIndex``); one module per system does the rest:

- ``live_bm25.LiveBM25``: BM25 in segments with tombstones, as Lucene does it;
- ``live_faiss.LiveFaiss``: exact Faiss search over vectors known by document id;
- ``index_store.IndexStore``: saved versions of both, written so that a crash never leaves half of one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .errors import CourseError


def check_ids(doc_ids: Sequence[str], action: str) -> list[str]:
    """The ids as a list, after checking they are strings, each given once; CourseError otherwise.

    Used in notebook 14.
    """
    if isinstance(doc_ids, str):
        raise CourseError(f"{action} takes a list of document ids: wrap a single id as [doc_id]")
    ids = list(doc_ids)
    for doc_id in ids:
        if not isinstance(doc_id, str):
            raise CourseError(f"document ids must be strings, not {type(doc_id).__name__} ({doc_id!r})")
    if len(set(ids)) != len(ids):
        repeated = next(doc_id for doc_id, count in Counter(ids).items() if count > 1)
        raise CourseError(f"document id {repeated!r} appears more than once in one {action}: give each id once")
    return ids


class LiveIndex(ABC):
    """Documents known by string ids, changed in place by `add`, `update` and `delete`.

    An update is a delete followed by an add: the old version goes, and the new one
    joins the end of the index order (which only breaks exact ties). A deleted id is
    unknown from then on: `update` and `delete` refuse it, and only an explicit `add`
    brings it back. Each method checks all of its input before changing anything, so
    a call that raises CourseError leaves the index as it was. A subclass says what a
    document holds (a text, a vector) by checking it (`_check_contents`), writing it
    (`_insert`) and taking live documents out (`_remove`).

    Used in notebook 14.
    """

    def add(self, doc_ids: Sequence[str], contents: Any) -> None:
        """Index new documents (texts for LiveBM25, vectors for LiveFaiss); CourseError if an id is already there."""
        ids = check_ids(doc_ids, "add")
        contents = self._check_contents(contents, len(ids))
        for doc_id in ids:
            if doc_id in self:
                raise CourseError(f"document {doc_id!r} is already in the index: use update to change it")
        self._insert(ids, contents)

    def update(self, doc_ids: Sequence[str], contents: Any) -> None:
        """Replace what documents already in the index hold (a delete, then an add)."""
        ids = check_ids(doc_ids, "update")
        contents = self._check_contents(contents, len(ids))
        self._check_known(ids, "update")
        self._remove(ids)
        self._insert(ids, contents)

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents from the index; CourseError if one is not there."""
        ids = check_ids(doc_ids, "delete")
        self._check_known(ids, "delete")
        self._remove(ids)

    def _check_known(self, ids: list[str], action: str) -> None:
        """CourseError if one of the ids is not in the index (deleted documents count as unknown)."""
        for doc_id in ids:
            if doc_id not in self:
                raise CourseError(f"cannot {action} document {doc_id!r}: it is not in the index "
                                  "(never added, or deleted; use add for a new document)")

    @abstractmethod
    def __len__(self) -> int:
        """The number of live documents."""

    @abstractmethod
    def __contains__(self, doc_id: object) -> bool:
        """Whether `doc_id` is a live document (deleted ones are not)."""

    @abstractmethod
    def _check_contents(self, contents: Any, n_ids: int) -> Any:
        """The contents of `n_ids` documents, checked and converted; CourseError if they are not right."""

    @abstractmethod
    def _insert(self, ids: list[str], contents: Any) -> None:
        """Write checked contents under ids that are not in the index."""

    @abstractmethod
    def _remove(self, ids: list[str]) -> None:
        """Take live documents out of the index."""
