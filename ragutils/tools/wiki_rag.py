"""The course's RAG over the wiki, assembled by name: what ``ragutils ask``, ``ragutils eval`` and the RAG table run.

``rag`` holds the pipeline itself and the wiki's documents and retrievers by name, as
the notebooks use them; this module only adds what the command line needs: the
generator of the chosen profile, loaded while the corpus is indexed.
"""

from __future__ import annotations

from typing import Any

from ..errors import CourseError
from ..rag import RETRIEVERS, ChatGenerator, RAGPipeline, check_answer_mode, make_retriever, wiki_documents



def make_pipeline(retriever: str = "bm25", k: int = 3, closed_book: bool = False,
                  profile: str | None = None, answer_mode: str = "generate",
                  milvus_uri: str | None = None) -> RAGPipeline:
    """The course's RAG pipeline over the wiki: a named retriever and the profile's generator.

    A Milvus retriever uses the engine at `milvus_uri` (default: ``milvus_search.default_uri()``).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..data import wiki_records

    if closed_book:
        k = 0
    if k < 0:
        raise CourseError(f"k must be 0 or more, not {k}")
    if retriever not in RETRIEVERS:  # before any slow work
        raise CourseError(f"unknown retriever {retriever!r}; choose one of: {', '.join(RETRIEVERS)}")
    check_answer_mode(answer_mode, k)
    if retriever.startswith("milvus-") and k > 0:
        from ..milvus_search import connect

        connect(milvus_uri).close()  # an unreachable cluster is one clear line, before any model loads
    # transformers resolves its names lazily and not thread-safely: import them here, once.
    from transformers import (AutoModel, AutoModelForCausalLM, AutoModelForQuestionAnswering,  # noqa: F401
                              AutoTokenizer)

    # Reading the generator's weights and indexing the corpus are independent: on two
    # cores, doing them at once saves most of a second of every `ragutils ask`.
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(load_reader if answer_mode == "extract" else load_generator, profile)
        records = wiki_records()
        chosen = make_retriever(retriever, records, milvus_uri) if k > 0 else None
        generator = loading.result()
    return RAGPipeline(chosen, generator, wiki_documents(records), k=k, answer_mode=answer_mode)


def load_generator(profile: str | None = None) -> ChatGenerator:
    """The profile's instruct generator, ready for the pipeline."""
    from .. import models

    return ChatGenerator(*models.load("generator", profile))


def load_reader(profile: str | None = None) -> Any:
    """The trained span reader of the profile, training it first (once, several minutes) if it is missing."""
    import sys

    from ..reader_training import ensure_reader, load_reader as load_trained, reader_key, reader_name
    from . import store

    if not store.ready(reader_name(profile), reader_key()):
        print("training the extractive reader once (reader_training.DEFAULT_RECIPE; about 8 minutes on 2 quiet "
              "cores, more on a busy machine) ...", file=sys.stderr, flush=True)
        ensure_reader(profile=profile)
    return load_trained(profile)
