"""The wiki RAG assembled by name (rag.wiki_documents, rag.make_retriever, tools.wiki_rag), end to end on the real corpus and generator."""

import pytest

from ragutils import rag
from ragutils.errors import CourseError
from ragutils.tools import wiki_rag

RECORDS = [{"id": "d1", "title": "Wuhan", "text": "Wuhan is the capital of Hubei, China."},
           {"id": "d2", "title": "Hubei", "text": "Hubei is a province of China."}]


def test_wiki_documents_map_each_id_to_its_title_and_text():
    assert rag.wiki_documents(RECORDS) == {"d1": ("Wuhan", "Wuhan is the capital of Hubei, China."),
                                           "d2": ("Hubei", "Hubei is a province of China.")}


def test_bm25_retriever_by_name_searches_the_given_records():
    retriever = rag.make_retriever("bm25", RECORDS)
    (ranked,) = retriever.search(["capital of Hubei"], k=2)
    assert [doc_id for doc_id, _ in ranked] == ["d1", "d2"]


def test_unknown_retriever_or_negative_k_fail_before_any_model_loads():
    with pytest.raises(CourseError, match="unknown retriever 'grep'"):
        rag.make_retriever("grep")
    with pytest.raises(CourseError, match="unknown retriever 'grep'"):
        wiki_rag.make_pipeline("grep")
    with pytest.raises(CourseError, match="k must be 0 or more"):
        wiki_rag.make_pipeline("bm25", k=-1)


def test_pipeline_end_to_end_retrieves_and_cites_real_passages():
    pipeline = wiki_rag.make_pipeline("bm25", k=2)
    answer = pipeline.ask("What is the capital of Hubei?")
    titles = [passage.title for passage in answer.passages]
    assert "Hubei" in titles or "Wuhan" in titles
    assert [p.number for p in answer.passages] == [1, 2]
    assert answer.answer  # the generator said something
    assert all(1 <= number <= 2 for number in answer.cited)
    record = answer.to_dict()
    assert set(record) >= {"answer", "passages"} and set(record["passages"][0]) >= {"title", "score"}


def test_title_mode_answers_with_a_retrieved_title_and_cites_it():
    pipeline = wiki_rag.make_pipeline("bm25", k=3, answer_mode="title")
    answer = pipeline.ask("What is the capital of Hubei?")
    assert answer.answer in [passage.title for passage in answer.passages]
    (number,) = answer.cited
    assert answer.passages[number - 1].title == answer.answer


def test_title_mode_skips_titles_the_question_already_names():
    pipeline = wiki_rag.make_pipeline("bm25", k=3, answer_mode="title")
    answer = pipeline.ask("What is the capital of Hubei?")
    assert answer.answer != "Hubei"
    assert "Hubei" in [passage.title for passage in answer.passages]  # retrieved, but not an answer
