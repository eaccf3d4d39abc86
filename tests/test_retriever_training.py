"""ragutils.retriever_training: the contrastive loss against hand-computed values, hard negatives, embed."""

import math

import pytest
import torch

from ragutils import retriever_training
from ragutils.bm25 import BM25Retriever
from ragutils.errors import CourseError


def test_contrastive_loss_equals_a_hand_computed_value():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    passages = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    # Cosines: q1·p1 = 1, q1·p2 = 1/sqrt 2; q2·p1 = 0, q2·p2 = 1/sqrt 2. Temperature 0.5 doubles them.
    r = 1 / math.sqrt(2)
    expected = (-(2 - math.log(math.exp(2) + math.exp(2 * r)))
                - (2 * r - math.log(math.exp(0) + math.exp(2 * r)))) / 2
    loss = retriever_training.contrastive_loss(queries, passages, temperature=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_hard_negatives_raise_the_loss_and_the_right_pairing_lowers_it():
    torch.manual_seed(0)
    queries = torch.randn(4, 8)
    aligned = queries + 0.01 * torch.randn(4, 8)
    assert retriever_training.contrastive_loss(queries, aligned).item() < 0.01
    shuffled = aligned[[1, 2, 3, 0]]
    assert retriever_training.contrastive_loss(queries, shuffled).item() > 1.0
    negatives = queries[[1, 0, 3, 2]] * 1.001  # each query's negative looks like another query
    with_negatives = retriever_training.contrastive_loss(queries, torch.cat([aligned, negatives]))
    assert with_negatives.item() >= retriever_training.contrastive_loss(queries, aligned).item()


def test_contrastive_loss_checks_shapes():
    with pytest.raises(CourseError, match="positive passage for each"):
        retriever_training.contrastive_loss(torch.ones(3, 4), torch.ones(2, 4))
    with pytest.raises(CourseError, match="same dim"):
        retriever_training.contrastive_loss(torch.ones(2, 4), torch.ones(2, 5))
    with pytest.raises(CourseError, match="temperature"):
        retriever_training.contrastive_loss(torch.ones(2, 4), torch.ones(2, 4), temperature=0)


def test_mine_hard_negatives_never_returns_the_positive():
    docs = ["cats purr and cats sleep", "dogs bark", "cats and dogs play", "a cat sat", "fish swim"]
    ids = ["c1", "d1", "cd", "c2", "f1"]
    retriever = BM25Retriever(docs, ids)
    negatives = retriever_training.mine_hard_negatives(retriever, ["cats", "dogs bark"], ["c1", "d1"], depth=2,
                                                       per_query=1)
    assert negatives[0][0] in {"cd", "c2"} and negatives[0][0] != "c1"
    assert negatives[1] == ["cd"]  # the only other document with "dogs"
    with pytest.raises(CourseError, match="queries but"):
        retriever_training.mine_hard_negatives(retriever, ["cats"], [], depth=2)


def test_embed_gives_the_encoders_vectors_with_gradients():
    from ragutils.dense import Encoder

    encoder = Encoder()
    texts = ["A cat sat on the mat.", "Aardvarks are burrowing mammals native to Africa, active at night."]
    vectors = retriever_training.embed(encoder.model, encoder.tokenizer, texts, max_length=encoder.max_length)
    assert vectors.requires_grad
    expected = encoder.encode(texts, show_progress=False)
    unit = torch.nn.functional.normalize(vectors.detach(), dim=-1).numpy()
    assert abs(unit - expected).max() < 1e-5
    with pytest.raises(CourseError, match="no texts"):
        retriever_training.embed(encoder.model, encoder.tokenizer, [])
