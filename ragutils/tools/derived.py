"""The derived sets of data/derived, made from the committed corpora only: what each item is, and its split.

``derived_sets`` turns the wiki articles and the Jargon File entries into the course's
training and evaluation sets (``data.DERIVED``): retrieval queries (an article's short
description), cloze-style questions (from an article's defining first sentence), topic
labels, retriever training pairs and the Jargon File held out for masked-LM perplexity.
Every article is in the split of its title (``data.article_split``) in every set, so no
set leaks a test article into training. Writing them is ``tools.data_build``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from ..data import SPLITS, article_split, split_of
from ..text import first_sentence

# A QA question is made of the rest of a definition sentence ("X is <rest>"):
# with fewer words it is too vague to have one answer, with more too long to read.
QA_MIN_WORDS, QA_MAX_WORDS = 5, 40


def _base_title(title: str) -> str:
    """A title without its disambiguation: "Cell (biology)" → "Cell"."""
    return re.sub(r"\s*\([^()]*\)$", "", title)


def _query_key(text: str) -> str:
    """A query as compared for duplicates: lower-cased, spaces collapsed."""
    return " ".join(text.lower().split())


def _retrieval_items(articles: list[dict]) -> tuple[list[dict], Counter]:
    """(description → article) queries that name exactly one article, and the drop counts."""
    # Compare descriptions case-blind: "State in eastern India" and "State in
    # Eastern India" are the same query to a retriever.
    counts = Counter(_query_key(a["description"]) for a in articles)
    items, dropped = [], Counter()
    for a in articles:
        query = a["description"]
        if not query:
            dropped["empty description"] += 1
        elif counts[_query_key(query)] > 1:  # "Family of birds" fits 34 articles: ambiguous
            dropped["description shared by several articles (ignoring case)"] += 1
        elif _base_title(a["title"]).lower() in query.lower():  # too easy: the answer is in the query
            dropped["description contains the title"] += 1
        else:
            items.append({"query": query, "doc_id": a["id"], "title": a["title"]})
    return items, dropped


# "[In field, ]Subject[, also known as X,][ (dates)] is|was|are|were rest."
_DEFINITION = re.compile(
    r"(?P<prefix>In [^,;()]{3,60}, )?"
    r"(?P<subject>[^,;:()]+?)"
    r"(?P<alias>, (?:also |commonly |sometimes |often |formally |officially |or )?"
    r"(?:known|called|referred to|abbreviated)(?: as)? [^,;()]+,)?"
    r"(?P<paren> \([^()]*(?:\([^()]*\)[^()]*)*\))?"
    r" (?P<verb>is|was|are|were) (?P<rest>.+)\.",
    re.S,
)
_ARTICLE = re.compile(r"(?:The|A|An)\s+", re.I)


def _words(text: str) -> list[str]:
    """Lower-cased whitespace tokens."""
    return text.lower().split()


def _answer_span(subject: str, title: str, person: bool) -> str | None:
    """The span of the subject that names the article, or None if it names something else."""
    names = {" ".join(_words(title)), " ".join(_words(_base_title(title))),
             " ".join(_words(title.split(", ")[0]))}
    if " ".join(_words(subject)) in names:
        return subject
    bare = _ARTICLE.sub("", subject, count=1) if _ARTICLE.match(subject) else subject
    if " ".join(_words(bare)) in names:
        return bare  # "A cherry is ..." → "cherry"
    if person:
        # A person's first sentence often gives the full name: the title
        # "Georges Danton" opens "Georges Jacques Danton was ...".
        # The title's words must appear in order: `in` on an iterator consumes
        # it up to the match, so each word is looked for after the previous one.
        subject_words = iter(_words(subject))
        if len(_words(subject)) <= 6 and all(w in subject_words for w in _words(_base_title(title))):
            return subject
    return None


def _is_person(article: dict) -> bool:
    """Whether an article is about a person: its topic says so, or two of three clues do."""
    if article["topic"] == "People":
        return True
    if article["topic"] != "Uncategorized":
        return False
    # "Uncategorized" holds many people too (Albert Einstein, Cleopatra), but
    # any one clue misfires alone: "Shia Islam" keeps saying "his" (of
    # Muhammad), "Genetics" has a sentence "He observed ..." (of Mendel).
    text, description = article["text"], article["description"]
    clues = [
        len(re.findall(r"\b(?:he|she|his|him)\b", text, re.I)) >= 2,
        re.search(r"(?:^|[.!?]\s+)(?:He|She)\s", text) is not None,
        re.search(r"\([^()]*\d{2,4}[^()]*\)$|from \d+ to \d+", description) is not None,  # life or reign dates
    ]
    return sum(clues) >= 2


def qa_item(article: dict) -> tuple[dict | None, str]:
    """A cloze-style question from the article's first sentence, or None and why not."""
    sentence = first_sentence(article["text"].split("\n", 1)[0])
    if sentence is None:
        return None, "no first sentence found"
    match = _DEFINITION.fullmatch(sentence)
    if not match:
        return None, "first sentence is not 'X is/was ...'"
    person = _is_person(article)
    answer = _answer_span(match["subject"].strip(), article["title"], person)
    if answer is None:
        return None, "subject of the sentence is not the title"
    rest = match["rest"].strip()
    # Chemical elements: "a chemical element; it has symbol As and atomic number 33".
    rest = re.sub(r"; it has (?:the )?symbol", " with the symbol", rest)
    rest = rest.split(";", 1)[0].strip()  # a second clause after ';' reads badly in a question
    rest = re.sub(r"\s+", " ", rest).rstrip(" ,:")  # also turns no-break spaces into spaces
    if len(rest.split()) < QA_MIN_WORDS:
        return None, f"rest of the sentence shorter than {QA_MIN_WORDS} words"
    if len(rest.split()) > QA_MAX_WORDS:
        return None, f"rest of the sentence longer than {QA_MAX_WORDS} words"
    if rest.count("(") != rest.count(")") or rest.count("“") != rest.count("”") or rest.count('"') % 2:
        return None, "unbalanced brackets or quotes"
    wh = "Who" if person else "What"
    prefix = match["prefix"] or ""
    question = f"{prefix}{wh.lower() if prefix else wh} {match['verb']} {rest}?"
    if answer.lower() in question.lower():  # "Paris is the capital of France; Paris ..."
        return None, "question contains the answer"
    answers = [answer]
    title = _base_title(article["title"])
    if title.lower() != answer.lower() and title in article["text"] and title.lower() not in question.lower():
        answers.append(title)
    return {"question": question, "answers": answers, "doc_id": article["id"], "title": article["title"]}, "kept"


def _qa_items(articles: list[dict]) -> tuple[list[dict], Counter]:
    """Cloze-style QA items for the articles that allow one, and why the others do not."""
    items, reasons = [], Counter()
    for article in articles:
        item, reason = qa_item(article)
        reasons[reason] += 1
        if item:
            items.append(item)
    # A question that two articles produce has two right answers: drop both.
    counts = Counter(_query_key(item["question"]) for item in items)
    kept = [item for item in items if counts[_query_key(item["question"])] == 1]
    reasons["kept"] = len(kept)
    if len(items) > len(kept):
        reasons["same question from several articles"] = len(items) - len(kept)
    return kept, reasons


def _with_ids(prefix: str, items: list[dict]) -> list[dict]:
    """Number the items of a set: "<prefix>-00000", "<prefix>-00001", ..."""
    return [{"id": f"{prefix}-{n:05d}", **item} for n, item in enumerate(items)]


def _by_split(items: list[dict], split_of_item: Callable[[dict], str]) -> dict[str, list[dict]]:
    """Group items by split, keeping their order."""
    groups: dict[str, list[dict]] = {}
    for item in items:
        groups.setdefault(split_of_item(item), []).append(item)
    return {split: groups[split] for split in SPLITS if split in groups}


def derived_sets(articles: list[dict], jargon: list[dict]) -> tuple[dict[str, dict[str, list[dict]]], dict]:
    """Every derived set as {set: {split: items}}, and the numbers its README reports."""
    # ONE split of the articles, by title, that every set follows: an article
    # in test is test everywhere, so no set leaks a test article into training.
    doc_split = {a["id"]: article_split(a["title"]) for a in articles}

    def split_of_item(item: dict) -> str:
        return doc_split[item["doc_id"]]

    retrieval, retrieval_dropped = _retrieval_items(articles)
    qa, qa_reasons = _qa_items(articles)
    topics = [{"doc_id": a["id"], "text": a["text"], "label": a["topic"]} for a in articles]
    text_of = {a["id"]: a["text"] for a in articles}
    pairs = [{"query": item["query"], "doc_id": item["doc_id"], "title": item["title"]} for item in retrieval]
    pairs += [{"query": item["question"], "doc_id": item["doc_id"], "title": item["title"]} for item in qa]
    pairs.sort(key=lambda item: item["doc_id"])  # stable: descriptions before questions
    query_counts = Counter(_query_key(item["query"]) for item in pairs)
    pairs = [{**item, "passage": text_of[item["doc_id"]]} for item in pairs
             if query_counts[_query_key(item["query"])] == 1]
    # The jargon file is one domain, not articles: hold out 10% of the
    # entries to measure masked-LM perplexity on unseen text. Hash the text,
    # not the headword: "cold boot" and "warm boot" both read "See boot.", and
    # a text in both splits would not be unseen.
    jargon_items = [{"headword": e["headword"], "text": e["text"]} for e in jargon]

    sets = {
        "retrieval": _by_split(_with_ids("retrieval", retrieval), split_of_item),
        "qa": _by_split(_with_ids("qa", qa), split_of_item),
        "topics": _by_split(_with_ids("topics", topics), split_of_item),
        "retriever_pairs": _by_split(_with_ids("pairs", pairs), split_of_item),
        "jargon_mlm": _by_split(_with_ids("jargon-mlm", jargon_items),
                                lambda item: split_of(item["text"], train=90, dev=0)),
    }
    stats = {"articles": len(articles), "jargon": len(jargon), "retrieval_dropped": retrieval_dropped,
             "qa_reasons": qa_reasons, "labels": Counter(a["topic"] for a in articles),
             "split_articles": Counter(doc_split.values())}
    return sets, stats
