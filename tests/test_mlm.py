"""ragutils.mlm: pseudo-perplexity against brute force, masking, blocks, NSP pairs, a tiny training run, the cache."""

import math

import pytest

from ragutils import mlm, nsp
from ragutils.tools import store
from ragutils.errors import CourseError

TEXTS = [
    "A hacker is a person who enjoys exploring the details of programmable systems.",
    "Foo is the first metasyntactic variable. Bar comes second.",
    "A kludge is a clever programming trick intended to solve a particular nasty case.",
    "The daemon runs in the background, waiting for something to do.",
] * 3


@pytest.fixture(scope="module")
def tiny(encoder_tokenizer, tiny_bert):
    """A tiny random BERT with an MLM head and the course's real tokenizer."""
    from transformers import BertForMaskedLM

    return tiny_bert(BertForMaskedLM, len(encoder_tokenizer), max_positions=64)


def brute_force_log_probs(model, encoder_tokenizer, text, max_length):
    """Mask one token at a time, run the whole model on that one copy, read the true token's log-probability."""
    import torch

    ids = encoder_tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    values = []
    for pos in range(1, len(ids) - 1):  # every token but [CLS] and [SEP]
        masked = list(ids)
        masked[pos] = encoder_tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([masked])).logits[0, pos]
        values.append(torch.log_softmax(logits.double(), dim=-1)[ids[pos]].item())
    return values


def test_pseudo_perplexity_equals_a_brute_force_loop(tiny, encoder_tokenizer):
    texts = ["Foo and bar are variables.", "The kludge worked, barely."]  # two lengths: batches need padding
    slow = [value for text in texts for value in brute_force_log_probs(tiny, encoder_tokenizer, text, 16)]
    scored = mlm.token_log_probs(tiny, encoder_tokenizer, texts, max_length=16, batch_size=3)
    fast = [value for item in scored for value in item.log_probs]
    assert fast == pytest.approx(slow, abs=1e-5)
    assert [len(item.tokens) for item in scored] == [len(item.log_probs) for item in scored]
    assert scored[0].tokens[0] == "foo"
    expected = math.exp(-sum(slow) / len(slow))
    assert mlm.pseudo_perplexity(tiny, encoder_tokenizer, texts, max_length=16, batch_size=3) == pytest.approx(expected,
                                                                                                       rel=1e-5)


def test_pseudo_perplexity_does_not_depend_on_the_batch_size(tiny, encoder_tokenizer):
    one = mlm.pseudo_perplexity(tiny, encoder_tokenizer, TEXTS[:4], max_length=12, batch_size=1)
    many = mlm.pseudo_perplexity(tiny, encoder_tokenizer, TEXTS[:4], max_length=12, batch_size=50)
    assert many == pytest.approx(one, rel=1e-5)
    # A random model is close to a uniform guess over the vocabulary, never far better.
    assert one > len(encoder_tokenizer) / 10


def test_masked_lm_loss_equals_the_model_loss(tiny, encoder_tokenizer):
    blocks = mlm.mlm_dataset(TEXTS, encoder_tokenizer, block_size=16)
    batch = mlm.mask_collator(encoder_tokenizer)([blocks[i] for i in range(4)])
    assert (batch["labels"] != mlm.IGNORE).any()
    with __import__("torch").no_grad():
        assert mlm.masked_lm_loss(tiny, **batch).item() == pytest.approx(tiny(**batch).loss.item(), abs=1e-5)


def test_mlm_dataset_cuts_the_token_stream_into_equal_blocks(encoder_tokenizer):
    blocks = mlm.mlm_dataset(TEXTS[:4], encoder_tokenizer, block_size=10)
    assert blocks.column_names == ["input_ids"]
    cls, sep = encoder_tokenizer.cls_token_id, encoder_tokenizer.sep_token_id
    assert all(len(ids) == 10 and ids[0] == cls and ids[-1] == sep for ids in blocks["input_ids"])
    stream = [t for text in TEXTS[:4] for t in encoder_tokenizer(text, add_special_tokens=False)["input_ids"] + [sep]]
    bodies = [t for ids in blocks["input_ids"] for t in ids[1:-1]]
    assert bodies == stream[:len(bodies)] and len(stream) - len(bodies) < 8  # only a short tail is dropped


def test_mlm_dataset_accepts_a_dataset_and_refuses_nonsense(encoder_tokenizer):
    import datasets

    from_dataset = mlm.mlm_dataset(datasets.Dataset.from_dict({"text": TEXTS[:2], "id": ["a", "b"]}), encoder_tokenizer, 8)
    assert from_dataset["input_ids"] == mlm.mlm_dataset(TEXTS[:2], encoder_tokenizer, 8)["input_ids"]
    with pytest.raises(CourseError, match="no texts"):
        mlm.mlm_dataset([], encoder_tokenizer)
    with pytest.raises(CourseError, match="block_size"):
        mlm.mlm_dataset(TEXTS, encoder_tokenizer, block_size=2)
    with pytest.raises(CourseError, match="'text' column"):
        mlm.mlm_dataset(datasets.Dataset.from_dict({"body": ["x"]}), encoder_tokenizer)


def test_the_collator_masks_fifteen_percent_eighty_ten_ten(encoder_tokenizer):
    import torch

    blocks = mlm.mlm_dataset(TEXTS * 20, encoder_tokenizer, block_size=32)
    features = [blocks[i] for i in range(len(blocks))]
    batch = mlm.mask_collator(encoder_tokenizer, mlm.MLMRecipe(seed=3))(features)
    again = mlm.mask_collator(encoder_tokenizer, mlm.MLMRecipe(seed=3))(features)
    assert torch.equal(batch["labels"], again["labels"]) and torch.equal(batch["input_ids"], again["input_ids"])
    original = torch.tensor([f["input_ids"] for f in features])
    special = (original == encoder_tokenizer.cls_token_id) | (original == encoder_tokenizer.sep_token_id)
    chosen = batch["labels"] != mlm.IGNORE
    assert not chosen[special].any(), "[CLS] and [SEP] are never targets"
    assert torch.equal(batch["labels"][chosen], original[chosen])  # a label is the original token
    share = chosen.sum().item() / (~special).sum().item()
    assert 0.13 < share < 0.17, share  # about 4,000 ordinary tokens: 15% ± 2 points
    inputs = batch["input_ids"][chosen]
    as_mask = (inputs == encoder_tokenizer.mask_token_id).float().mean().item()
    unchanged = (inputs == original[chosen]).float().mean().item()
    assert 0.75 < as_mask < 0.85 and 0.07 < unchanged < 0.13
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])  # everything else is left alone


DOCS = [[f"d{d}s{i}" for i in range(n)] for d, n in enumerate([5, 4, 1, 6, 3])]


@pytest.mark.parametrize("seed", range(4))
def test_nsp_pairs_are_half_next_and_take_random_sentences_from_other_documents(seed):
    pairs = nsp.nsp_pairs(DOCS, seed=seed)
    assert len(pairs) == 4 + 3 + 0 + 5 + 2  # one pair per sentence that has a successor
    labels = [pair.label for pair in pairs]
    assert labels.count(nsp.IS_NEXT) == 7 and labels.count(nsp.NOT_NEXT) == 7
    for pair in pairs:
        d, i = pair.first_doc, DOCS[pair.first_doc].index(pair.first)
        assert pair.second in DOCS[pair.second_doc]
        if pair.label == nsp.IS_NEXT:
            assert pair.second_doc == d and pair.second == DOCS[d][i + 1]
        else:
            assert pair.second_doc != d
    assert nsp.nsp_pairs(DOCS, seed=seed) == pairs
    assert nsp.NSP_LABELS == {0: "IsNext", 1: "NotNext"}


def test_nsp_pairs_differ_between_seeds_and_refuse_impossible_input():
    assert nsp.nsp_pairs(DOCS, seed=0) != nsp.nsp_pairs(DOCS, seed=1)
    with pytest.raises(CourseError, match="two sentences"):
        nsp.nsp_pairs([["only one"], ["another"]])
    with pytest.raises(CourseError, match="another one"):
        nsp.nsp_pairs([["a", "b", "c"]])


def test_fill_mask_top_k(tiny, encoder_tokenizer):
    rows = mlm.fill_mask_top_k(tiny, encoder_tokenizer, ["A [MASK] is a person.", "Foo and [MASK]."], k=3)
    assert len(rows) == 2 and all(len(row) == 3 for row in rows)
    for row in rows:
        probs = [p for _, p in row]
        assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
        assert all(isinstance(token, str) for token, _ in row)
    with pytest.raises(CourseError, match="exactly one"):
        mlm.fill_mask_top_k(tiny, encoder_tokenizer, ["no mask here"])
    with pytest.raises(CourseError, match="exactly one"):
        mlm.fill_mask_top_k(tiny, encoder_tokenizer, ["[MASK] and [MASK]"])


@pytest.mark.parametrize("call", [
    lambda m, t: mlm.pseudo_perplexity(m, t, []),
    lambda m, t: mlm.token_log_probs(m, t, []),
    lambda m, t: mlm.fill_mask_top_k(m, t, []),
    lambda m, t: mlm.pseudo_perplexity(m, t, ["", "  "]),
])
def test_nothing_to_score_is_one_clear_line(tiny, encoder_tokenizer, call):
    with pytest.raises(CourseError) as error:
        call(tiny, encoder_tokenizer)
    assert "\n" not in str(error.value) and str(error.value)


def test_loss_curve_reads_the_logged_losses():
    history = [{"loss": 9.0, "step": 5}, {"loss": 7.5, "step": 10}, {"train_runtime": 1.0, "step": 10}]
    assert mlm.loss_curve(history) == ([5, 10], [9.0, 7.5])


def test_a_three_step_run_trains_and_survives_the_cache(encoder_tokenizer, tmp_path, monkeypatch):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(encoder_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertForMaskedLM(config)
    before = model.cls.predictions.transform.dense.weight.detach().clone()
    recipe = mlm.MLMRecipe(steps=3, batch_size=4, block_size=16, logging_steps=1, warmup=0, learning_rate=1e-3)
    trainer = mlm.train_mlm(model, encoder_tokenizer, mlm.mlm_dataset(TEXTS, encoder_tokenizer, 16), recipe,
                            output_dir=tmp_path / "trainer")
    steps, losses = mlm.loss_curve(trainer.state.log_history)
    assert steps == [1, 2, 3] and all(math.isfinite(loss) for loss in losses)
    assert not torch.equal(before, model.cls.predictions.transform.dense.weight)
    assert not model.training

    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path / "cache"))
    name = mlm.mlm_name("jargon")
    assert not store.ready(name)
    with pytest.raises(CourseError, match="notebook 09"):
        mlm.load_adapted("jargon")
    key = mlm.run_key([recipe])
    store.save(model, encoder_tokenizer, name, key)
    folder = store.save(model, encoder_tokenizer, name, key)  # replaces cleanly
    assert sorted(p.name for p in folder.parent.iterdir()) == ["mlm-jargon"]  # no staging folders left
    assert store.ready(name, key) and not store.ready(name, mlm.run_key([mlm.MLMRecipe()]))
    reloaded, _ = mlm.load_adapted("jargon")
    text = ["A [MASK] is a person."]
    assert mlm.fill_mask_top_k(reloaded, encoder_tokenizer, text) == mlm.fill_mask_top_k(model, encoder_tokenizer, text)


def test_run_key_and_stages():
    assert mlm.run_key([mlm.MLMRecipe()]) == mlm.run_key([mlm.MLMRecipe()])
    assert mlm.run_key([mlm.MLMRecipe()]) != mlm.run_key([mlm.MLMRecipe(steps=7)])
    assert mlm.mlm_name("general", "offline") == "mlm-general"
    assert mlm.mlm_name("jargon", "hub") == "mlm-jargon-hub"
    with pytest.raises(CourseError, match="unknown MLM stage"):
        mlm.mlm_name("medical")


def test_the_offline_checkpoint_has_no_mlm_head():
    report = mlm.loading_report("offline")
    assert report["missing"] and all(key.startswith("cls.predictions.") for key in report["missing"])
    assert "cls.predictions.transform.dense.weight" in report["missing"]
    # The decoder's weight is tied to the word embeddings, which the checkpoint has.
    assert "cls.predictions.decoder.weight" not in report["missing"]
