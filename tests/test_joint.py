"""ragutils.joint: RAG's losses against brute-force sums, log p(answer | prompt), the frozen-index retriever."""

import math

import pytest
import torch

from ragutils import joint
from ragutils.errors import CourseError


def test_rag_sequence_loss_equals_the_brute_force_marginal():
    torch.manual_seed(0)
    doc_scores = torch.randn(3, 4)
    answer_log_probs = -torch.rand(3, 4) * 20  # log-probabilities of long answers: tiny probabilities
    expected = 0.0
    for row in range(3):
        prior = [math.exp(s) for s in doc_scores[row].tolist()]
        total = sum(prior)
        marginal = sum(p / total * math.exp(lp) for p, lp in zip(prior, answer_log_probs[row].tolist()))
        expected += -math.log(marginal) / 3
    assert joint.rag_sequence_loss(doc_scores, answer_log_probs).item() == pytest.approx(expected, rel=1e-5)


def test_rag_sequence_loss_sends_gradient_to_the_retriever_scores():
    doc_scores = torch.zeros(1, 3, requires_grad=True)
    answer_log_probs = torch.tensor([[-1.0, -5.0, -9.0]])  # passage 1 explains the answer best
    joint.rag_sequence_loss(doc_scores, answer_log_probs).backward()
    # Descending the gradient raises the score of the helpful passage and lowers the others.
    assert doc_scores.grad[0, 0] < 0 < doc_scores.grad[0, 2]


def test_rag_sequence_loss_checks_shapes():
    with pytest.raises(CourseError, match="batch, k"):
        joint.rag_sequence_loss(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragutils import models

    _, tokenizer = models.load("generator")  # the real tokenizer; a tiny random model is enough here
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    return LlamaForCausalLM(config).eval(), tokenizer


def test_sequence_log_probs_equal_scoring_each_pair_alone(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = ["Question: the capital of France? Answer:", "Q: who wrote Hamlet? A:"]
    answers = [" Paris", " William Shakespeare, the playwright"]
    with torch.no_grad():
        batched = joint.sequence_log_probs(model, tokenizer, prompts, answers)
    for row, (prompt, answer) in enumerate(zip(prompts, answers)):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a = tokenizer(answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            log_probs = torch.log_softmax(model(torch.tensor([p + a])).logits[0], dim=-1)
        expected = sum(log_probs[len(p) - 1 + i, token].item() for i, token in enumerate(a))
        assert batched[row].item() == pytest.approx(expected, abs=1e-4)


def test_answer_token_log_probs_are_the_per_token_terms(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = ["Q: who wrote Hamlet? A:", "Question: the capital of France? Answer:"]
    answers = [" William Shakespeare, the playwright", " Paris"]
    with torch.no_grad():
        log_probs, mask = joint.answer_token_log_probs(model, tokenizer, prompts, answers)
        totals = joint.sequence_log_probs(model, tokenizer, prompts, answers)
    for row, (prompt, answer) in enumerate(zip(prompts, answers)):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a = tokenizer(answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            alone = torch.log_softmax(model(torch.tensor([p + a])).logits[0], dim=-1)
        expected = [alone[len(p) - 1 + i, token].item() for i, token in enumerate(a)]
        assert mask[row].sum().item() == len(a)
        assert log_probs[row, :len(a)].tolist() == pytest.approx(expected, abs=1e-4)
        assert log_probs[row, len(a):].abs().sum().item() == 0  # padding contributes nothing
        assert totals[row].item() == pytest.approx(sum(expected), abs=1e-4)


def test_rag_token_loss_equals_the_brute_force_product_of_mixtures():
    torch.manual_seed(1)
    doc_scores = torch.randn(2, 3)
    token_log_probs = -torch.rand(2, 3, 4) * 3
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    prior = torch.softmax(doc_scores, dim=-1)
    expected = 0.0
    for b in range(2):
        for t in range(int(mask[b].sum())):
            expected -= math.log(sum(prior[b, z].item() * math.exp(token_log_probs[b, z, t].item()) for z in range(3)))
    assert joint.rag_token_loss(doc_scores, token_log_probs, mask).item() == pytest.approx(expected / 2, rel=1e-5)
    # With one passage, RAG-Token and RAG-Sequence are the same loss.
    one = joint.rag_token_loss(doc_scores[:, :1], token_log_probs[:, :1], mask)
    sequence = joint.rag_sequence_loss(doc_scores[:, :1], (token_log_probs[:, 0] * mask).sum(-1, keepdim=True))
    assert one.item() == pytest.approx(sequence.item(), rel=1e-6)
    with pytest.raises(CourseError, match="need doc_scores"):
        joint.rag_token_loss(doc_scores, token_log_probs, mask[:, :2])


def test_sequence_log_probs_checks_its_input(tiny_lm):
    model, tokenizer = tiny_lm
    with pytest.raises(CourseError, match="as many answers"):
        joint.sequence_log_probs(model, tokenizer, ["a"], [])
    with pytest.raises(CourseError, match="at least one token"):
        joint.sequence_log_probs(model, tokenizer, ["a question"], [""])


def test_frozen_index_retriever_matches_dense_retrieval_and_passes_gradients():
    from ragutils import data, dense

    encoder = dense.Encoder()
    doc_ids, _, passages = data.wiki_passages()
    doc_ids, passages = doc_ids[:40], passages[:40]
    vectors = encoder.encode(passages, show_progress=False)
    index = dense.build_index(vectors, "flat")
    queries = ["a burrowing mammal of Africa", "the capital of France"]
    reference = dense.DenseRetriever(encoder, doc_ids, vectors, index).search(queries, 5)
    retriever = joint.FrozenIndexRetriever(encoder.model, encoder.tokenizer, index, doc_ids, vectors,
                                           temperature=0.05, max_length=encoder.max_length)
    found = retriever.search(queries, 5)
    assert [[d for d, _ in row] for row in found] == [[d for d, _ in row] for row in reference]
    assert [[s for _, s in row] for row in found] == [pytest.approx([s for _, s in row], abs=1e-5) for row in reference]
    ids, scores = retriever.retrieve(queries, 3, grad=True)
    assert scores.shape == (2, 3) and scores.requires_grad
    scores.sum().backward()
    assert encoder.model.embeddings.word_embeddings.weight.grad is not None
    encoder.model.zero_grad()
    assert not retriever.retrieve(queries, 3)[1].requires_grad
    with pytest.raises(CourseError, match="same passages"):
        joint.FrozenIndexRetriever(encoder.model, encoder.tokenizer, index, doc_ids[:-1], vectors)
    with pytest.raises(CourseError):
        retriever.search(["  "], 3)
    with pytest.raises(CourseError, match="more than the 40 passages"):
        retriever.retrieve(queries, 41)


def test_passage_answer_log_probs_score_one_passage_per_prompt(tiny_lm):
    from ragutils.rag import Passage, chat_messages

    model, tokenizer = tiny_lm
    documents = {"a": ("Paris", "Paris is the capital of France."), "b": ("Lyon", "Lyon is a city in France.")}
    with torch.no_grad():
        scores = joint.passage_answer_log_probs(model, tokenizer, documents, ["Capital of France?"], ["Paris"],
                                                [["a", "b"]])
        assert scores.shape == (1, 2)
        for column, doc_id in enumerate(["a", "b"]):
            prompt = tokenizer.apply_chat_template(
                chat_messages("Capital of France?", [Passage(1, doc_id, *documents[doc_id], 0.0)]),
                add_generation_prompt=True, tokenize=False)
            alone = joint.sequence_log_probs(model, tokenizer, [prompt], ["Paris"])
            assert scores[0, column].item() == pytest.approx(alone.item(), abs=1e-4)
    with pytest.raises(CourseError, match="one answer"):
        joint.passage_answer_log_probs(model, tokenizer, documents, ["q"], [], [["a"]])
