"""The course's machinery, which teaches nothing by itself.

The notebooks learn from the concept modules one level up; what sits here runs the
course, measures it and makes its files:

- ``store``: the one store of trained artefacts (models, adapters, encodings, indexes):
  fingerprints, checksums, atomic writes, one folder layout, ``ready`` / ``save`` / ``load``.
- ``cli``: the ``ragutils`` command line (also ``python -m ragutils``).
- ``course``: runs the notebooks headless and keeps their Colab cells in step; ``prepare``: the
  one-time work before them (``make caches``).
- ``wiki_rag``: the RAG pipeline over the wiki assembled by name (retriever, generator, loading
  thread) that ``ragutils ask``, ``ragutils eval`` and the RAG table run.
- ``bench``: speed benchmarks beside the reference libraries; ``bench_rag``: the RAG table;
  ``bench_reading``: the span reader on fact QA beside the no-model baselines; ``bench_milvus``: Milvus
  Lite's build and queries/s beside ragutils.bm25 and Faiss.
- building data/ from its sources: ``data_build`` (the build), ``sources`` (the pinned
  archives), ``dictd``, ``rst`` (two source formats), ``derived`` (the derived sets),
  ``data_readmes`` (the READMEs of data/); the fact-QA questions: ``factqa_build`` (the set and its
  checks), ``factqa_rules`` (what the rules share; works, events, names), ``factqa_places`` (places and
  sizes), ``factqa_people`` (people).
"""
