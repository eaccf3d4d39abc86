"""Shared set-up: each test's tier, and no test module passes its torch thread count on to the next.

Tiers (tests/README.md has one command each): ``unit``, fast tests of the package's
own logic; ``reference``, comparisons with the field's own implementations (rank_bm25,
bm25s, Faiss exact search, transformers' ``generate``, trec_eval, ranx); ``data``, tests
that read every committed corpus and set or rebuild them. The notebooks are the fourth
tier, run by nbval (marked in the root conftest.py).
"""

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TIERS = ("unit", "reference", "data")

# Every test file and its tier: a new file gets one line here. A test that belongs to
# another tier than its file's carries that tier's marker itself, which wins.
TIER_OF_FILE = {
    "test_applications.py": "unit",
    "test_baselines.py": "unit",
    "test_bench.py": "unit",
    "test_bench_reading.py": "unit",
    "test_bm25.py": "reference",
    "test_classifier.py": "unit",
    "test_cli.py": "unit",
    "test_config.py": "unit",
    "test_course.py": "unit",
    "test_data.py": "data",
    "test_data_build.py": "data",
    "test_decoding.py": "reference",
    "test_dense.py": "unit",
    "test_derived.py": "unit",
    "test_dictd.py": "unit",
    "test_embeddings.py": "unit",
    "test_engines.py": "unit",
    "test_factqa.py": "data",
    "test_faiss_index.py": "unit",
    "test_finetune.py": "unit",
    "test_hybrid.py": "unit",
    "test_joint.py": "unit",
    "test_live_index.py": "unit",
    "test_metrics.py": "unit",
    "test_milvus_search.py": "unit",
    "test_mlm.py": "unit",
    "test_models.py": "unit",
    "test_prepare.py": "unit",
    "test_rag.py": "unit",
    "test_reader.py": "unit",
    "test_reference_metrics.py": "reference",
    "test_repo.py": "unit",
    "test_retriever_training.py": "unit",
    "test_robustness.py": "unit",
    "test_rst.py": "unit",
    "test_seq2seq.py": "unit",
    "test_sft.py": "unit",
    "test_similarity.py": "unit",
    "test_sources.py": "unit",
    "test_store.py": "unit",
    "test_text.py": "unit",
    "test_translator_role.py": "unit",
    "test_wiki_rag.py": "unit",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test of tests/ with its tier; a file missing from TIER_OF_FILE, or listed but gone, stops the run."""
    gone = sorted(name for name in TIER_OF_FILE if not (TESTS_DIR / name).is_file())
    untiered = set()
    for item in items:
        if not item.path.is_relative_to(TESTS_DIR):
            continue  # the notebooks, when nbval collects them in the same run
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        tier = TIER_OF_FILE.get(item.path.relative_to(TESTS_DIR).as_posix())
        if tier is None:
            untiered.add(item.path.relative_to(TESTS_DIR).as_posix())
        else:
            item.add_marker(getattr(pytest.mark, tier))
    if untiered:
        raise pytest.UsageError(
            f"no test tier for {', '.join(sorted(untiered))}: add each to TIER_OF_FILE in tests/conftest.py "
            f"as one of {', '.join(TIERS)} (see tests/README.md)")
    if gone:
        raise pytest.UsageError(f"TIER_OF_FILE in tests/conftest.py lists test files that do not exist: {', '.join(gone)}")


@pytest.fixture(autouse=True, scope="module")
def torch_thread_count_restored():
    """Give torch back, after each module, the thread count it had before.

    The tests of tiny models set one thread (fastest for tiny matrices). Without this,
    every module after them ran on one thread too, the generator's comparisons with
    `generate` in test_decoding included.
    """
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# --- fixtures several test files share -------------------------------------------------------------

@pytest.fixture(scope="session")
def encoder_tokenizer():
    """The offline encoder's own tokenizer (local files only): real word pieces and offsets."""
    from transformers import AutoTokenizer

    from ragutils import models

    return AutoTokenizer.from_pretrained(models.model_path("classifier_base"), local_files_only=True)


@pytest.fixture(scope="session")
def tiny_bert():
    """Make a tiny random BERT (32 wide, 2 layers) of a given head class: every code path, none of the cost."""
    import torch
    from transformers import BertConfig

    def make(model_class, vocab_size: int, max_positions: int = 512, layers: int = 2):
        torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and immune to busy cores
        torch.manual_seed(0)
        settings = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=max_positions)
        return model_class(settings).eval()

    return make


@pytest.fixture(scope="module")
def one_faiss_thread():
    """Faiss on one thread for a module: for tiny indexes OpenMP's start-up and barriers cost more than the work,
    badly so when other processes share the cores. A module asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_faiss_thread")``."""
    from ragutils import faiss_index

    with faiss_index.faiss_threads(1):
        yield


@pytest.fixture(scope="session")
def encoder():
    """The course's offline sentence encoder (all-MiniLM-L6-v2), loaded once for the whole run."""
    from ragutils import dense

    return dense.Encoder("offline")
