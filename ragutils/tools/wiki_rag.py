"""The course's RAG over the wiki, assembled by name: what ``ragutils ask``, ``ragutils eval`` and the RAG table run.

``rag`` holds the pipeline itself and the wiki's documents and retrievers by name, as
the notebooks use them; this module only adds what the command line needs: the
generator of the chosen profile, loaded while the corpus is indexed.
"""

from __future__ import annotations

from ..errors import CourseError
from ..rag import RETRIEVERS, ChatGenerator, RAGPipeline, make_retriever, wiki_documents



def make_pipeline(retriever: str = "bm25", k: int = 3, closed_book: bool = False,
                  profile: str | None = None, answer_mode: str = "generate") -> RAGPipeline:
    """The course's RAG pipeline over the wiki: a named retriever and the profile's generator."""
    from concurrent.futures import ThreadPoolExecutor

    from .. import models
    from ..data import wiki_records

    if closed_book:
        k = 0
    if k < 0:
        raise CourseError(f"k must be 0 or more, not {k}")
    if retriever not in RETRIEVERS:  # before any slow work
        raise CourseError(f"unknown retriever {retriever!r}; choose one of: {', '.join(RETRIEVERS)}")
    # transformers resolves its names lazily and not thread-safely: import them here, once.
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    # Reading the generator's weights and indexing the corpus are independent: on two
    # cores, doing them at once saves most of a second of every `ragutils ask`.
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(models.load, "generator", profile)
        records = wiki_records()
        chosen = make_retriever(retriever, records) if k > 0 else None
        model, tokenizer = loading.result()
    return RAGPipeline(chosen, ChatGenerator(model, tokenizer), wiki_documents(records), k=k,
                       answer_mode=answer_mode)
