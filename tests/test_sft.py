"""ragutils.sft: the examples, the labels, the loss and LoRA, on a tiny random Llama with the real tokenizer."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from ragutils import models, rag, sft
from ragutils.errors import CourseError


@pytest.fixture(scope="module")
def tokenizer():
    # The generator's own tokenizer (and chat template), read from the cached model folder.
    return AutoTokenizer.from_pretrained(models.model_path("generator", "offline"), local_files_only=True)


def tiny_model(tokenizer, layers=4, seed=0):
    """A random Llama with SmolLM2's vocabulary and 4 small layers: seconds to build, run and train."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval()


DOCUMENTS = {"d1": ("Ghana", "Ghana is a country in West Africa. Its capital is Accra."),
             "d2": ("Accra", "Accra is the capital and largest city of Ghana."),
             "d3": ("Lagos", "Lagos is the largest city of Nigeria.")}


class FixedRetriever:
    """Returns the same ranking for every query: the tests decide where the gold passage sits."""

    def __init__(self, ranking):
        self.ranking = ranking

    def search(self, queries, k):
        return [[(doc_id, 1.0 / rank) for rank, doc_id in enumerate(self.ranking[:k], start=1)] for _ in queries]


def row(doc_id="d2", answer="Accra", question="What is the capital of Ghana?"):
    return {"id": "q1", "question": question, "answers": [answer, "Akra"], "doc_id": doc_id, "title": "Accra"}


# --- examples -------------------------------------------------------------------------------


def test_the_citation_points_to_the_gold_passage_and_the_prompt_is_the_pipelines():
    retriever = FixedRetriever(["d1", "d2", "d3"])
    [example] = sft.sft_examples([row("d2")], retriever, DOCUMENTS, k=3)
    assert example.target == "Accra [2]"
    assert example.gold == 2 and example.passages[example.gold - 1].doc_id == "d2"
    assert example.messages == rag.chat_messages(row()["question"], example.passages)
    [first] = sft.sft_examples([row("d3", answer="Lagos")], retriever, DOCUMENTS, k=3)
    assert first.target == "Lagos [3]"
    # rag.split_citations reads the same number back, and strips it before scoring.
    assert rag.split_citations(example.target, 3) == ("Accra", [2])


def test_questions_whose_gold_passage_is_not_retrieved_are_left_out():
    retriever = FixedRetriever(["d1", "d3", "d2"])
    rows = [row("d2"), {**row("d1", answer="Ghana"), "id": "q2"}]
    examples = sft.sft_examples(rows, retriever, DOCUMENTS, k=2)
    assert [e.id for e in examples] == ["q2"]
    assert examples[0].target == "Ghana [1]"


def test_without_citation_the_target_is_the_answer_alone():
    [example] = sft.sft_examples([row("d2")], FixedRetriever(["d1", "d2"]), DOCUMENTS, k=2, cite=False)
    assert example.target == "Accra"


def test_bad_example_requests_are_clear_errors():
    retriever = FixedRetriever(["d1"])
    with pytest.raises(CourseError, match="k >= 1"):
        sft.sft_examples([row()], retriever, DOCUMENTS, k=0)
    with pytest.raises(CourseError, match="no QA rows"):
        sft.sft_examples([], retriever, DOCUMENTS)
    with pytest.raises(CourseError, match="missing doc_id"):
        sft.sft_examples([{"id": "q", "question": "Q?", "answers": ["A"]}], retriever, DOCUMENTS)
    with pytest.raises(CourseError, match="non-empty answer"):
        sft.target_text("  ", 1)
    with pytest.raises(CourseError, match="no answer"):
        sft.sft_examples([{**row("d1"), "answers": []}], retriever, DOCUMENTS, k=1)


# --- tokens and labels -------------------------------------------------------------------------


def test_encode_renders_the_prompt_as_the_chat_generator_does_and_ends_the_target_with_end_of_turn(tokenizer):
    messages = rag.chat_messages("What is the capital of Ghana?", [rag.Passage(1, "d2", "Accra", "Accra is.", 1.0)])
    prompt_ids, target_ids = sft.encode(messages, "Accra [1]", tokenizer)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt_ids == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(prompt_ids).endswith("<|im_start|>assistant\n")
    assert target_ids[-1] == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.decode(target_ids) == "Accra [1]<|im_end|>"


def test_labels_are_ignored_exactly_on_prompt_and_padding_and_are_the_ids_on_the_answer():
    pairs = [([5, 6, 7, 8], [9, 10, 2]), ([11, 12], [13, 2])]
    batch = sft.collate(pairs, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 2], [0, 0, 0, 11, 12, 13, 2]]
    assert batch["attention_mask"].tolist() == [[1] * 7, [0, 0, 0, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[-100, -100, -100, -100, 9, 10, 2], [-100, -100, -100, -100, -100, 13, 2]]
    # Positions count from each row's first real token, as generate numbers left-padded rows.
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 1, 2, 3]]


def test_a_pad_id_that_also_occurs_in_the_answer_keeps_its_label():
    # SmolLM2 pads with <|im_end|>, the very token that ends every answer: labels must not come from ids.
    batch = sft.collate([([5], [6, 2]), ([5, 7, 8], [6, 2])], pad_id=2)
    assert batch["labels"].tolist() == [[-100, -100, -100, 6, 2], [-100, -100, -100, 6, 2]]
    assert batch["attention_mask"].tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]


def test_collate_refuses_empty_batches_and_empty_answers():
    with pytest.raises(CourseError, match="empty batch"):
        sft.collate([], pad_id=0)
    with pytest.raises(CourseError, match="target token"):
        sft.collate([([1, 2], [])], pad_id=0)


def test_length_batches_cover_every_example_once_and_group_similar_lengths():
    lengths = [50, 10, 300, 12, 305, 48, 11, 290, 52]  # three clusters of three
    batches = sft.length_batches(lengths, batch_size=3, seed=0)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:  # each batch is one cluster: almost no padding
        assert max(lengths[i] for i in batch) - min(lengths[i] for i in batch) <= 15
    assert sft.length_batches(lengths, 3, seed=0) == batches
    assert sorted(map(len, sft.length_batches(lengths[:8], 3))) == [2, 3, 3]
    with pytest.raises(CourseError, match="batch_size"):
        sft.length_batches(lengths, 0)


# --- the loss --------------------------------------------------------------------------------


def test_answer_loss_equals_the_full_logits_loss_and_ignores_left_padding(tokenizer):
    model = tiny_model(tokenizer)
    pairs = [([10, 11, 12, 13, 14, 15], [20, 21, 2]), ([30, 31], [40, 2])]
    batch = sft.collate(pairs, tokenizer.pad_token_id)
    with torch.no_grad():
        ours = sft.answer_loss(model, batch)
        # transformers' own loss: every position's logits, labels shifted inside the model.
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     position_ids=batch["position_ids"], labels=batch["labels"]).loss
        assert ours.item() == pytest.approx(full.item(), rel=1e-5)
        # The short row alone, unpadded: its per-token losses are the same as inside the padded batch.
        alone = sft.collate(pairs[1:], tokenizer.pad_token_id)
        together = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         position_ids=batch["position_ids"]).logits[1, -3:-1]
        single = model(input_ids=alone["input_ids"], position_ids=alone["position_ids"]).logits[0, -3:-1]
        assert torch.allclose(together, single, atol=1e-5)


def test_answer_loss_needs_target_tokens(tokenizer):
    batch = sft.collate([([1, 2], [3])], pad_id=0)
    batch["labels"][:] = -100
    with pytest.raises(CourseError, match="no target tokens"):
        sft.answer_loss(tiny_model(tokenizer), batch)


# --- LoRA ------------------------------------------------------------------------------------


def test_lora_trains_only_adapters_in_the_last_layers_and_starts_as_the_base_model(tokenizer):
    model = tiny_model(tokenizer, layers=4)
    ids = torch.tensor([[1, 50, 60, 70]])
    with torch.no_grad():
        before = model(ids).logits
    lora = sft.add_lora(model, last_layers=2, r=4, modules=sft.ATTENTION_MODULES)
    trainable = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_A" in name or "lora_B" in name for name in trainable)
    assert {int(name.split("layers.")[1].split(".")[0]) for name in trainable} == {2, 3}
    assert not any(p.requires_grad for name, p in lora.named_parameters() if "lora_" not in name)
    # q, k, v, o of 2 layers, each r * (d_in + d_out): hidden 32, key/value width 16.
    assert models.count_parameters(lora, trainable_only=True) == 2 * 4 * ((32 + 32) + (32 + 16) + (32 + 16) + (32 + 32))
    with torch.no_grad():  # B starts at zero: the adapted model computes what the base model did
        assert torch.allclose(lora(ids).logits, before)


def test_a_lora_step_changes_only_the_adapters(tokenizer):
    lora = sft.add_lora(tiny_model(tokenizer), last_layers=1, r=2)
    frozen = {name: p.detach().clone() for name, p in lora.named_parameters() if not p.requires_grad}
    batch = sft.collate([([10, 11, 12], [20, 2])], tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    sft.answer_loss(lora, batch).backward()
    optimizer.step()
    assert all(torch.equal(p, frozen[name]) for name, p in lora.named_parameters() if not p.requires_grad)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.parameters() if p.requires_grad)


def test_train_lora_lowers_the_loss_of_its_examples(tokenizer):
    retriever = FixedRetriever(["d1", "d2", "d3"])
    rows = [{**row("d2"), "id": f"q{i}"} for i in range(8)]
    examples = sft.sft_examples(rows, retriever, DOCUMENTS, k=3)
    lora, history = sft.train_lora(tiny_model(tokenizer), tokenizer, examples, last_layers=2, r=4, lr=3e-2,
                                   warmup=1, batch_size=2, log_every=0)
    assert len(history) == 4 and history[-1] < history[0]
    assert not lora.training
    with pytest.raises(CourseError, match="no SFT examples"):
        sft.train_lora(tiny_model(tokenizer), tokenizer, [])


def test_bad_lora_settings_are_clear_errors(tokenizer):
    with pytest.raises(CourseError, match="between 1 and 4"):
        sft.add_lora(tiny_model(tokenizer), last_layers=5)
    with pytest.raises(CourseError, match="between 1 and 4"):
        sft.add_lora(tiny_model(tokenizer), last_layers=0)
    with pytest.raises(CourseError, match="rank"):
        sft.add_lora(tiny_model(tokenizer), last_layers=1, r=0)


# --- the adapter in the store -----------------------------------------------------------------


# peft 0.21 reads an attribute that transformers 5 deprecates (sft.load silences it the same way).
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_the_store_keeps_only_the_adapter_and_load_puts_it_back_on_the_base_generator(tokenizer, tmp_path,
                                                                                      monkeypatch):
    from ragutils.tools import store

    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    # The profile's generator is the tiny model here: the same base weights every time it is loaded.
    monkeypatch.setattr(models, "load", lambda role, profile=None: models.LoadedModel(tiny_model(tokenizer), tokenizer))
    name = "sft-test"
    with pytest.raises(CourseError, match="run notebook 11"):
        sft.load(name)
    lora = sft.add_lora(tiny_model(tokenizer), last_layers=2, r=2)
    for p in lora.parameters():  # make the adapter non-trivial
        if p.requires_grad:
            torch.nn.init.normal_(p)
    folder = store.save(lora, tokenizer, name, store.fingerprint({"r": 2, "steps": 1}), losses=[2.5, 1.25])
    assert (folder / "adapter_config.json").is_file()
    assert not (folder / "model.safetensors").exists()  # only the adapter, not the base weights
    assert store.losses(name) == [2.5, 1.25]
    ids = torch.tensor([[1, 50, 60]])
    with torch.no_grad():
        expected = lora(ids).logits
        for merge in (True, False):
            model, _ = sft.load(name, merge=merge)
            assert not model.training
            assert torch.allclose(model(ids).logits, expected, atol=1e-5)
