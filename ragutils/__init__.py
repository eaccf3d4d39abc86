"""ragutils: the helper package of the course "RAG and fine-tuning, from first principles".

Each module keeps one idea that a notebook derives first:
text, similarity, bm25, dense, hybrid, engines, decoding, seq2seq, rag, classifier,
mlm, finetune, sft, applications, robustness, live_index, metrics, data, models,
plots, bench, course, cli.
"""

__version__ = "0.1.0"

# The one place that names the course repository: the Colab badges and the
# Colab install cell of every notebook are written from it (ragutils.course).
REPO = "rag-course/rag-from-first-principles"
REPO_URL = f"https://github.com/{REPO}"
