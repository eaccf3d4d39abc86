"""ragutils.tools.bench_reading: the pieces of the reading table, on passages written for the test."""

import pytest

from ragutils import rag
from ragutils.errors import CourseError
from ragutils.metrics import mean_answer_scores
from ragutils.tools import bench_reading

GOLD = rag.Passage(1, "ada", "Ada Lovelace", "She was born on 10 December 1815 in London.", 0.0)
OTHERS = [rag.Passage(1, "babbage", "Charles Babbage", "Babbage designed the Analytical Engine.", 9.0),
          rag.Passage(2, "ada", "Ada Lovelace", "(the gold article, found by the retriever too)", 8.0),
          rag.Passage(3, "menabrea", "Luigi Menabrea", "Menabrea was born in 1809 in Chambéry.", 7.0)]
ROW = {"question": "When was Ada Lovelace born?", "answers": ["10 December 1815"], "answer_type": "date",
       "title": "Ada Lovelace"}


@pytest.mark.parametrize("position, titles", [
    (1, ["Ada Lovelace", "Charles Babbage", "Luigi Menabrea"]),
    (2, ["Charles Babbage", "Ada Lovelace", "Luigi Menabrea"]),
    (3, ["Charles Babbage", "Luigi Menabrea", "Ada Lovelace"]),
])
def test_at_position_moves_the_gold_passage_and_drops_its_copy(position, titles):
    passages = bench_reading.at_position(GOLD, OTHERS, position, k=3)
    assert [p.title for p in passages] == titles
    assert [p.number for p in passages] == [1, 2, 3]
    assert passages[position - 1].text == GOLD.text


def test_answer_in_is_retrievals_part():
    assert bench_reading.answer_in([OTHERS[0], GOLD], ["10 december 1815"])
    assert not bench_reading.answer_in(OTHERS, ["10 December 1815", "1815"])


def test_baselines_read_passage_one():
    answers = bench_reading.baseline_answers([ROW, ROW], [[GOLD, OTHERS[0]], [OTHERS[2], GOLD]])
    assert answers["title of passage 1"] == ["Ada Lovelace", "Luigi Menabrea"]
    assert answers["first span of the type in passage 1"] == ["10 December 1815", "1809"]
    assert mean_answer_scores(answers["first span of the type in passage 1"], [ROW["answers"]] * 2) == \
        {"EM": 0.5, "F1": 0.5}


def test_gold_passages_need_the_article():
    documents = {"ada": ("Ada Lovelace", GOLD.text)}
    assert bench_reading.gold_passages([ROW], documents)[0].doc_id == "ada"
    with pytest.raises(CourseError, match="no wiki article titled 'Nobody'"):
        bench_reading.gold_passages([{**ROW, "title": "Nobody"}], documents)
