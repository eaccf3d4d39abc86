"""ragutils: the helper package of the course "RAG and fine-tuning, from first principles".

Each concept module keeps one idea, which the notebook in the right column derives
by hand before taking it from here (data, models and plots it only uses, and config
and errors are set-up). Each function's and class's docstring names its notebook in
one phrase: "Derived in notebook 02, section 2.5." or "Used in notebook 07."

======================  ================================================================  ==========
module                  the idea                                                          notebook
======================  ================================================================  ==========
``similarity``          text as vectors; dot product, cosine and Euclidean distance       01
``text``                tokens, sentences, word chunks, lead baselines                    02, 07
``bm25``                BM25 in five variants, and a fast sparse index                    02
``dense``               the encoder (mean pooling) and the dense retriever                03
``embeddings``          a corpus encoded once, its vectors cached on disk                 03
``faiss_index``         Faiss indexes, exact and approximate, and what they cost          03
``faiss_scaling``       when approximate search pays off: 200,000 vectors                 03
``retriever``           the interface every retriever satisfies, and its k                04
``hybrid``              reciprocal rank fusion of several retrievers                      04
``engines``             the same interface over a real search engine (tantivy)            04
``metrics``             retrieval (recall@k, MRR, nDCG) and answer metrics (EM, F1, ...)  02, 04, 07
``decoding``            greedy, beam search and sampling from scratch                     05
``seq2seq``             a small BART pretrained from scratch                              06
``rag``                 the RAG pipeline: prompts, generators, citations, evaluation      07
``classifier``          a pretrained encoder fine-tuned into a topic classifier           08
``mlm``                 domain adaptation by masked language modelling                    09
``nsp``                 next-sentence prediction: BERT's second objective                 09
``finetune``            what every training loop of the course shares                     08-12
``retriever_training``  the retriever's contrastive loss and hard negatives               10
``joint``               RAG's joint losses: the retriever learns from the generator       12
``sft``                 supervised fine-tuning of the generator with LoRA                 11
``applications``        one RAG pipeline, several jobs                                    13
``robustness``          attacks on retrieved passages, defences, attributions             14
``live_index``          a knowledge base kept current: adds, updates, deletes             14
``live_bm25``           BM25 that takes adds, updates and deletes without a rebuild       14
``live_faiss``          exact Faiss search that takes adds, updates and deletes           14
``index_store``         live indexes saved in versions a crash cannot break               14
``reader``              the extractive reader: a span head reads the answer out           15
``baselines``           the no-model rules a reader must beat (title, first typed span)   15
``reader_training``     the span reader fine-tuned on fact QA, and its cache              15
``milvus_search``       the knowledge base on Milvus: embedded, or a cluster by URI       16
``data``                the loaders of data/: corpora and derived sets                    00 on
``models``              models by role, from a profile                                    00 on
``plots``               the figures several notebooks share                               01, 10
``config``              where things live (data/, the cache), torch threads               set-up
``errors``              ``CourseError``: a problem the learner can fix, said in one line  set-up
======================  ================================================================  ==========

``tools`` holds the machinery that teaches nothing: the command line, the course
runner, the benchmarks, building data/, and the store of trained artefacts.
"""

__version__ = "0.1.0"

# The one place that names the course repository: the Colab badges and the
# Colab install cell of every notebook are written from it (ragutils.tools.course).
REPO = "rag-course/rag-from-first-principles"
REPO_URL = f"https://github.com/{REPO}"
