"""ragutils.seq2seq: text infilling, the tokenizer, a tiny BART that learns, the atomic cache."""

import numpy as np
import pytest

from ragutils import models, seq2seq
from ragutils.tools import store

MASK = 4
TEXTS = [
    "The aardvark is a medium-sized, burrowing, nocturnal mammal native to Africa.",
    "Paris is the capital and most populous city of France.",
    "A saxophone is a type of single-reed woodwind instrument with a conical body.",
    "The Danube is the second-longest river in Europe, after the Volga in Russia.",
] * 5


def test_text_infilling_is_deterministic_with_a_seed():
    ids = list(range(10, 110))
    assert seq2seq.text_infilling(ids, MASK, seed=3) == seq2seq.text_infilling(ids, MASK, seed=3)
    assert seq2seq.text_infilling(ids, MASK, seed=3) != seq2seq.text_infilling(ids, MASK, seed=4)


@pytest.mark.parametrize("seed", range(5))
def test_text_infilling_masks_thirty_percent_in_merged_spans(seed):
    ids = list(range(10, 210))  # 200 distinct tokens, so we can see which survived
    noisy = seq2seq.text_infilling(ids, MASK, seed=seed, mask_ratio=0.3)
    kept = [token for token in noisy if token != MASK]
    assert len(ids) - len(kept) == 60  # exactly 30% of the tokens are gone
    assert kept == sorted(kept) and set(kept) <= set(ids)  # the rest keep their order
    assert all(not (a == MASK and b == MASK) for a, b in zip(noisy, noisy[1:]))  # one mask per span
    assert 1 <= noisy.count(MASK) < 60  # spans, not single tokens: fewer masks than masked tokens


def test_text_infilling_edge_cases():
    assert seq2seq.text_infilling([], MASK) == []
    assert seq2seq.text_infilling([7, 8, 9], MASK, mask_ratio=0.0) == [7, 8, 9]
    assert seq2seq.text_infilling([7, 8, 9], MASK, mask_ratio=1.0) == [MASK]


@pytest.fixture(scope="module")
def tokenizer():
    return seq2seq.train_tokenizer(TEXTS, vocab_size=300, min_frequency=1)


def test_tokenizer_round_trip_and_special_tokens(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    assert [tokenizer.convert_tokens_to_ids(t) for t in seq2seq.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    text = "Paris is the capital of France."
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == text
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(text)["input_ids"] == ids
    assert reloaded.mask_token_id == 4 and reloaded.pad_token_id == 1


def test_collate_pads_inputs_and_ignores_label_padding():
    batch = seq2seq.collate([([0, 5, 2], [0, 7, 2]), ([0, 5, 6, 6, 2], [0, 2])], pad_id=1)
    assert batch["input_ids"].tolist() == [[0, 5, 2, 1, 1], [0, 5, 6, 6, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[0, 7, 2], [0, 2, -100]]


def test_a_tiny_bart_learns_and_survives_the_cache(tokenizer, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForSeq2SeqLM, BartForConditionalGeneration

    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and immune to busy cores
    torch.manual_seed(0)
    config = seq2seq.tiny_config(tokenizer, d_model=32, layers=1, heads=2, ffn=64, max_positions=64)
    model = BartForConditionalGeneration(config)
    pairs = seq2seq.encode_pairs(tokenizer, TEXTS[:4], [t.split()[1] for t in TEXTS[:4]], 32, 8)
    history = seq2seq.train(model, pairs, tokenizer.pad_token_id, steps=40, batch_size=4, lr=3e-3, warmup=5)
    assert len(history) == 40
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5])

    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    name = models.SEQ2SEQ_DIR
    assert not store.ready(name)
    store.save(model, tokenizer, name, "abc", losses=history)
    folder = store.save(model, tokenizer, name, "abc", losses=history)  # replaces cleanly
    assert sorted(p.name for p in folder.parent.iterdir()) == [name]  # no staging folders left behind
    assert store.ready(name, "abc")
    assert not store.ready(name, "other")
    assert store.losses(name) == pytest.approx(history, abs=1e-5)
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(folder)
    text = ["Paris is the capital"]
    assert seq2seq.generate(reloaded, tokenizer, text, max_new_tokens=4) == \
        seq2seq.generate(model, tokenizer, text, max_new_tokens=4)


def test_smooth():
    assert seq2seq.smooth([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]


def test_fingerprint_is_stable_and_order_free():
    assert store.fingerprint({"a": 1, "b": [2]}) == store.fingerprint({"b": [2], "a": 1})
    assert store.fingerprint({"a": 1}) != store.fingerprint({"a": 2})
