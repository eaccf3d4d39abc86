"""Tests of ragutils.tools.derived: cloze questions from first sentences, and every set in its articles' split."""

from collections import Counter

from ragutils.data import article_split
from ragutils.tools.derived import derived_sets, qa_item


def test_qa_item_from_a_first_sentence():
    article = {"id": "wiki-1", "title": "Cell (biology)", "topic": "Biology and health sciences",
               "description": "", "text": "The cell is the basic structural and functional unit of all "
                                          "forms of life. Every cell consists of cytoplasm."}
    item, reason = qa_item(article)
    assert reason == "kept"
    assert item["question"] == "What is the basic structural and functional unit of all forms of life?"
    assert item["answers"] == ["cell"]
    person = {"id": "wiki-2", "title": "Georges Danton", "topic": "People", "description": "",
              "text": "Georges Jacques Danton (26 October 1759 – 5 April 1794) was a French lawyer and "
                      "a leading figure of the French Revolution. He was executed."}
    item, _ = qa_item(person)
    assert item["question"] == "Who was a French lawyer and a leading figure of the French Revolution?"
    assert item["answers"] == ["Georges Jacques Danton"]
    short = {**article, "text": "The cell is a unit of life."}
    assert qa_item(short)[0] is None


def test_derived_sets_follow_the_split_of_each_article():
    articles = [{"id": f"wiki-{n}", "title": f"Thing {n}", "topic": "Physical sciences",
                 "description": f"Kind number {n}", "text": f"Thing {n} is a kind of object with number {n} on it."}
                for n in range(40)]
    jargon = [{"headword": f"word{n}", "text": f"Sense {n}."} for n in range(40)]
    sets, stats = derived_sets(articles, jargon)
    split_of_doc = {a["id"]: article_split(a["title"]) for a in articles}
    for name in ("retrieval", "qa", "topics", "retriever_pairs"):
        for split, items in sets[name].items():
            assert all(split_of_doc[item["doc_id"]] == split for item in items), name
    assert sum(len(items) for items in sets["topics"].values()) == 40
    assert set(sets["jargon_mlm"]) <= {"train", "test"}
    assert stats["articles"] == 40 and stats["jargon"] == 40
    assert stats["split_articles"] == Counter(split_of_doc.values())
