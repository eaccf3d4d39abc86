"""ragutils.robustness: bad passages injected by a retriever wrapper, the relevance filter, attributions."""

import numpy as np
import pytest
import torch

from ragutils import rag, robustness
from ragutils.errors import CourseError

DOCUMENTS = {
    "d1": ("Mercury (planet)",
           "Mercury is the smallest planet. Mercury's orbit is the fastest; mercurial moods differ."),
    "d2": ("Venus", "Venus is the second planet from the Sun."),
    "d3": ("Mars", "Mars is the fourth planet."),
}


class FixedRetriever:
    """Returns d1, d2, d3 in that order, scores 3, 2, 1, whatever the query."""

    def search(self, queries, k):
        return [[("d1", 3.0), ("d2", 2.0), ("d3", 1.0)][:k] for _ in queries]


def test_swap_entity_replaces_whole_words_only_and_the_title_without_its_parenthesis():
    text = DOCUMENTS["d1"][1]
    swapped = robustness.swap_entity(text, "Mercury (planet)", "Pluto")
    assert swapped == "Pluto is the smallest planet. Pluto's orbit is the fastest; mercurial moods differ."
    assert robustness.swap_entity("MERCURY (planet) rises", "Mercury (planet)", "X") == "X rises"
    with pytest.raises(CourseError, match="empty"):
        robustness.swap_entity(text, " ", "X")


def test_counterfactual_renames_the_subject_and_injection_names_its_answer():
    title, text = robustness.counterfactual("Venus", DOCUMENTS["d2"][1], "Jupiter")
    assert title == "Jupiter" and text == "Jupiter is the second planet from the Sun."
    title, text = robustness.injection("Jupiter")
    assert title == "Jupiter" and "Jupiter" in text and "Ignore" in text


def test_injecting_retriever_inserts_at_its_rank_with_the_displaced_score():
    made = []

    def make(query, ranked):
        made.append((query, ranked))
        return [("Fake", f"about {query}")]

    injector = robustness.InjectingRetriever(FixedRetriever(), DOCUMENTS, make, position=1)
    [hits] = injector.search(["q"], 2)
    assert made == [("q", [("d1", 3.0), ("d2", 2.0)])]  # the maker sees the real top k
    assert [d for d, _ in hits][0::2] == ["d1", "d2"] and hits[1][0].startswith("injected-")
    assert hits[1][1] == 2.0  # the score of the passage it displaced: no giveaway
    assert injector.documents[hits[1][0]] == ("Fake", "about q")
    assert injector.documents["d3"] == DOCUMENTS["d3"] and hits[1][0] not in DOCUMENTS  # the real store untouched
    # Beyond the end: appended, with the last score.
    [hits] = robustness.InjectingRetriever(FixedRetriever(), DOCUMENTS, make, position=9).search(["q"], 2)
    assert hits[-1][0].startswith("injected-") and hits[-1][1] == 2.0 and len(hits) == 3
    with pytest.raises(CourseError, match="position"):
        robustness.InjectingRetriever(FixedRetriever(), DOCUMENTS, make, position=-1)


def test_injected_passages_reach_the_pipelines_prompt():
    injector = robustness.InjectingRetriever(FixedRetriever(), DOCUMENTS,
                                             lambda q, ranked: [robustness.injection("Pluto")], position=0)
    pipeline = rag.RAGPipeline(injector, None, injector.documents, k=1)
    [passages] = pipeline.retrieve(["Which planet is smallest?"])
    assert [p.title for p in passages] == ["Pluto", "Mercury (planet)"] and [p.number for p in passages] == [1, 2]


def test_relevance_filter_reranks_drops_and_always_keeps_the_best():
    sims = {"d1": 0.2, "d2": 0.9, "d3": 0.5}

    def similarity(queries, doc_ids):
        return [np.array([sims[d] for d in ids]) for ids in doc_ids]

    [hits] = robustness.RelevanceFilter(FixedRetriever(), similarity, 0.4).search(["q"], 3)
    assert hits == [("d2", 0.9), ("d3", 0.5)]
    [hits] = robustness.RelevanceFilter(FixedRetriever(), similarity, 0.95).search(["q"], 3)
    assert hits == [("d2", 0.9)]  # all below the threshold: the most similar stays

    def wrong(queries, doc_ids):
        return [np.zeros(1) for _ in doc_ids]

    with pytest.raises(CourseError, match="scores for 3 passages"):
        robustness.RelevanceFilter(FixedRetriever(), wrong, 0.1).search(["q"], 3)


class LetterEncoder:
    """A stand-in encoder: unit vectors of letter counts, and a log of what it encoded."""

    dim = 26

    def __init__(self):
        self.encoded = []

    def encode(self, texts, show_progress=True):
        self.encoded += list(texts)
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text.lower():
                if "a" <= char <= "z":
                    out[row, ord(char) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_dense_similarity_uses_known_vectors_and_encodes_the_rest_once():
    encoder = LetterEncoder()
    known = {"d1": encoder.encode(["zzz"])[0]}
    encoder.encoded.clear()
    similarity = robustness.dense_similarity(encoder, DOCUMENTS, known)
    [scores] = similarity(["zz top"], [["d1", "d2"]])
    query = encoder.encode(["zz top"])[0]
    assert scores[0] == pytest.approx(float(known["d1"] @ query))
    assert scores[1] == pytest.approx(float(encoder.encode(["Venus. " + DOCUMENTS["d2"][1]])[0] @ query))
    encoder.encoded.clear()
    similarity(["again"], [["d2"]])
    assert encoder.encoded == ["again"]  # d2 was remembered


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ragutils import models

    tokenizer = AutoTokenizer.from_pretrained(models.model_path("generator"))  # the real tokenizer, a tiny model
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)
    return LlamaForCausalLM(config).eval(), tokenizer


def passages():
    return [rag.Passage(i + 1, d, *DOCUMENTS[d], 1.0) for i, d in enumerate(DOCUMENTS)]


def test_leave_one_out_equals_scoring_each_prompt_alone(tiny_lm):
    from ragutils.joint import sequence_log_probs

    model, tokenizer = tiny_lm
    found = passages()

    def alone(subset):
        text = rag.chat_text(tokenizer, rag.chat_messages("Smallest planet?", subset))
        with torch.no_grad():
            return sequence_log_probs(model, tokenizer, [text], ["Mercury"]).item()

    full, drops = robustness.leave_one_out(model, tokenizer, "Smallest planet?", found, "Mercury")
    assert full == pytest.approx(alone(found), abs=1e-4)
    expected = [alone(found) - alone([p for p in found if p is not left]) for left in found]
    assert np.allclose(drops, expected, atol=1e-4) and np.abs(drops).max() > 1e-3
    with pytest.raises(CourseError, match="at least one passage"):
        robustness.leave_one_out(model, tokenizer, "q", [], "a")


def test_gradient_x_input_matches_the_hand_computation_and_leaves_the_model_as_it_was(tiny_lm):
    model, tokenizer = tiny_lm
    prompt = rag.chat_text(tokenizer, rag.chat_messages("Smallest planet?", passages()))
    tokens, scores = robustness.gradient_x_input(model, tokenizer, prompt, "Mercury")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer("Mercury", add_special_tokens=False)["input_ids"]
    assert len(tokens) == len(scores) == len(prompt_ids) and "".join(tokens) == prompt

    embeddings = model.get_input_embeddings()(torch.tensor([prompt_ids + answer_ids])).detach().requires_grad_()
    log_probs = torch.log_softmax(model(inputs_embeds=embeddings).logits[0], dim=-1)
    total = sum(log_probs[len(prompt_ids) - 1 + i, t] for i, t in enumerate(answer_ids))
    total.backward()
    expected = (embeddings.grad[0, :len(prompt_ids)] * embeddings[0, :len(prompt_ids)]).sum(-1)
    assert np.allclose(scores, expected.detach().numpy(), atol=1e-5) and np.abs(scores).max() > 0
    model.zero_grad(set_to_none=True)
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    assert all(p.grad is None for p in model.parameters())  # and no weight gradient computed


def test_passage_token_spans_cover_each_passage_line(tiny_lm):
    _, tokenizer = tiny_lm
    found = passages()
    prompt = rag.chat_text(tokenizer, rag.chat_messages("Smallest planet?", found))
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    spans = robustness.passage_token_spans(tokenizer, prompt, found)
    assert [a < b for a, b in spans] == [True] * 3 and spans[0][1] <= spans[1][0] <= spans[2][0]
    for (a, b), line in zip(spans, rag.format_passages(found).split("\n")):
        assert line in tokenizer.decode(ids[a:b])
    with pytest.raises(CourseError, match="not found"):
        robustness.passage_token_spans(tokenizer, "no passages here", found)
