"""Retrieval-augmented generation: retrieve passages, build a prompt, generate, cite.

A :class:`RAGPipeline` takes any retriever (anything with
``search(queries, k) -> [[(doc_id, score), ...], ...]``) and any generator (anything
with ``generate(prompts) -> [text, ...]`` over the prompts that ``build_prompt``
makes), so BM25, dense, hybrid and engine retrievers, and instruct or seq2seq
generators, all plug into the same code.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import CourseError
from .metrics import mean_answer_scores, normalize_answer
from .retriever import Retriever
from .text import validate_query

# Questions longer than this many words are cut (with a warning): a question is
# never that long, and a huge one would crowd the passages out of the prompt.
MAX_QUESTION_WORDS = 128
# Each passage is cut to this many words in the prompt, so k passages fit the
# generator's context and the prompt stays fast to encode on a CPU.
MAX_PASSAGE_WORDS = 64

SYSTEM_PROMPT = (
    "You answer questions using the numbered passages. Reply with the shortest answer "
    "(a name or a short phrase), then the number of the passage you used in brackets, like: Paris [2]"
)
# How the answer is made: "generate" writes it freely; "title" lets the generator pick the
# likeliest retrieved title (answers only questions whose answer is an article's subject);
# "extract" lets a span reader (``reader.SpanReader``) read it out of the passages.
ANSWER_MODES = ("generate", "title", "extract")
DEFAULT_ANSWER_MODE = "extract"  # of `ragutils ask` and `eval`: the best on fact-QA dev (README, "RAG")

CLOSED_BOOK_SYSTEM_PROMPT = "You answer questions. Reply with the shortest answer (a name or a short phrase)."

# The course's own retrievers, and the same three on Milvus (ragutils.milvus_search, notebook 16).
RETRIEVERS = ("bm25", "dense", "hybrid", "milvus-bm25", "milvus-dense", "milvus-hybrid")

# Reciprocal rank fusion settings chosen on the dev split in notebook 04 (never on test).
HYBRID_SETTINGS = {"k_rrf": 10, "depth": 100, "weights": (1.0, 1.5)}


class Generator(Protocol):
    """Anything that turns a batch of prompts into a batch of answers. Used in notebook 07."""

    def generate(self, prompts: Sequence[Any]) -> list[str]:
        """One answer per prompt."""


@dataclass
class Passage:
    """A retrieved passage, numbered as the prompt shows it. Used in notebook 06, section 9."""

    number: int
    doc_id: str
    title: str
    text: str
    score: float


@dataclass
class Answer:
    """A generated answer with the passages it was given and those it cites. Used in notebook 11, section 7."""

    question: str
    answer: str
    passages: list[Passage] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)  # passage numbers named in the answer
    seconds: float = 0.0
    sentence: str = ""  # the sentence a read answer came from (answer mode "extract")
    abstained: bool = False  # the reader found no answer in the passages (answer mode "extract")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the answer, and each passage's title and score."""
        return {
            "question": self.question,
            "answer": self.answer,
            "cited": self.cited,
            "sentence": self.sentence,
            "abstained": self.abstained,
            "passages": [{"number": p.number, "doc_id": p.doc_id, "title": p.title,
                          "score": round(p.score, 4)} for p in self.passages],
            "seconds": round(self.seconds, 3),
        }


def clean_question(question: str, max_words: int = MAX_QUESTION_WORDS) -> str:
    """The question stripped; CourseError if empty; cut to max_words with a warning if longer. Used in notebook 07."""
    question = validate_query(question)
    words = question.split()
    if len(words) > max_words:
        warnings.warn(f"question cut from {len(words)} to {max_words} words", stacklevel=2)
        question = " ".join(words[:max_words])
    return question


def shorten(text: str, max_words: int) -> str:
    """The first max_words words of a text, with an ellipsis if it was longer. Derived in notebook 07, section 1."""
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + " …"


def format_passages(passages: Sequence[Passage], max_words: int = MAX_PASSAGE_WORDS) -> str:
    """The passages as a numbered list: "[1] Title: text". Used in notebook 14, section 1."""
    return "\n".join(f"[{p.number}] {p.title}: {shorten(p.text, max_words)}" for p in passages)


def chat_messages(question: str, passages: Sequence[Passage], system_prompt: str = SYSTEM_PROMPT,
                  closed_book_prompt: str = CLOSED_BOOK_SYSTEM_PROMPT,
                  max_words: int = MAX_PASSAGE_WORDS) -> list[dict[str, str]]:
    """The chat prompt of an instruct model: system rules, then the passages and the question (closed-book if none).

    Derived in notebook 07, section 3.
    """
    if not passages:
        return [{"role": "system", "content": closed_book_prompt},
                {"role": "user", "content": question}]
    return [{"role": "system", "content": system_prompt},
            {"role": "user", "content": f"Passages:\n{format_passages(passages, max_words)}\n\nQuestion: {question}"}]


def chat_text(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The chat prompt as the generator reads it: the model's own template, the assistant's turn opened.

    Used in notebook 07.
    """
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def seq2seq_prompt(question: str, passages: Sequence[Passage]) -> str:
    """The classic RAG prompt of a seq2seq model: "question: … context: …". Derived in notebook 07, section 3."""
    context = " ".join(f"{p.title}: {shorten(p.text, MAX_PASSAGE_WORDS)}" for p in passages)
    return f"question: {question} context: {context}".strip()


_CITATION = re.compile(r"\[(\d+)\]")


def split_citations(text: str, n_passages: int) -> tuple[str, list[int]]:
    """The answer without its "[n]" markers, and the valid passage numbers it cited.

    Derived in notebook 07, section 4.
    """
    cited = []
    for number in map(int, _CITATION.findall(text)):
        if 1 <= number <= n_passages and number not in cited:
            cited.append(number)
    answer = _CITATION.sub("", text)
    # Small models often trail off into a sentence; the answer is the first line.
    answer = answer.strip().splitlines()[0] if answer.strip() else ""
    return answer.strip(" .;,"), cited


class ChatGenerator:
    """Greedy answers from an instruct model, batched with left padding. Derived in notebook 07, section 4."""

    prompt_style = "chat"

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 24, batch_size: int = 8) -> None:
        """Wrap a causal LM and its tokenizer (which must have a chat template)."""
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(self, prompts: Sequence[list[dict[str, str]]]) -> list[str]:
        """One greedy answer per chat prompt."""
        import torch

        answers: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            texts = [chat_text(self.tokenizer, messages) for messages in prompts[start:start + self.batch_size]]
            # Decoder-only models continue the *right* end of each row: pad on the left
            # (per call, so the caller's tokenizer keeps its own padding side).
            batch = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left",
                                   add_special_tokens=False)
            batch = batch.to(self.model.device)
            with torch.inference_mode():
                output = self.model.generate(
                    **batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id)
            new_tokens = output[:, batch["input_ids"].shape[1]:]
            answers += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return answers


    def candidate_scores(self, prompt: list[dict[str, str]], candidates: Sequence[str]) -> list[float]:
        """The mean log-probability per token of each candidate answer after the chat prompt.

        The prompt is read once; its key-value cache is then copied for every
        candidate, so k candidates cost one prompt plus k short continuations,
        not k whole prompts.
        """
        import torch

        from .decoding import forward_options, next_token_logits

        text = chat_text(self.tokenizer, prompt)
        prompt_ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        candidate_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in candidates]
        device = self.model.device
        first_logits, cache = next_token_logits(self.model, prompt_ids.to(device))
        first_log_probs = torch.log_softmax(first_logits[0], dim=-1)  # predicts each candidate's first token

        # All candidates at once, padded on the right: position t's logits predict token t + 1.
        width, pad = max(map(len, candidate_ids)), self.tokenizer.pad_token_id
        rows = torch.tensor([ids + [pad] * (width - len(ids)) for ids in candidate_ids], device=device)
        mask = torch.tensor([[1] * (prompt_ids.shape[1] + len(ids)) + [0] * (width - len(ids))
                             for ids in candidate_ids], device=device)
        cache.batch_repeat_interleave(len(candidates))  # the prompt's keys and values, once per candidate
        keyword, _ = forward_options(type(self.model))  # `cache` or `past_key_values`
        with torch.inference_mode():
            logits = self.model(input_ids=rows, attention_mask=mask, use_cache=True, **{keyword: cache}).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        scores = []
        for row, ids in enumerate(candidate_ids):
            total = first_log_probs[ids[0]] + sum(log_probs[row, t, ids[t + 1]] for t in range(len(ids) - 1))
            scores.append(float(total) / len(ids))
        return scores


class Seq2SeqGenerator:
    """Beam-search answers from an encoder-decoder model, batched. Derived in notebook 07, section 8."""

    prompt_style = "seq2seq"

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 24, num_beams: int = 4,
                 batch_size: int = 8) -> None:
        """Wrap a seq2seq model and its tokenizer."""
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.num_beams, self.batch_size = max_new_tokens, num_beams, batch_size

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """One answer per "question: … context: …" prompt."""
        import torch

        answers: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(list(prompts[start:start + self.batch_size]), return_tensors="pt",
                                   padding=True, truncation=True).to(self.model.device)
            with torch.inference_mode():
                output = self.model.generate(**batch, max_new_tokens=self.max_new_tokens,
                                             num_beams=self.num_beams)
            answers += self.tokenizer.batch_decode(output, skip_special_tokens=True)
        return answers


def check_answer_mode(answer_mode: str, k: int) -> None:
    """CourseError unless the answer mode is known and has what it needs (a reader needs k >= 1).

    Used in notebook 07.
    """
    if answer_mode not in ANSWER_MODES:
        raise CourseError(f"unknown answer mode {answer_mode!r}; choose one of: {', '.join(ANSWER_MODES)}")
    if answer_mode == "extract" and k == 0:
        raise CourseError("an extractive reader needs passages to read: use k >= 1, not closed-book")


class RAGPipeline:
    """Retrieve k passages, prompt the generator with them, and return cited answers.

    Derived in notebook 07, section 2.
    """

    def __init__(self, retriever: Retriever | None, generator: Generator,
                 documents: Mapping[str, tuple[str, str]], k: int = 3, answer_mode: str = "generate") -> None:
        """`documents` maps a doc_id to its (title, text); k = 0 or no retriever is closed-book.

        `answer_mode` is "generate" (the generator writes the answer freely),
        "title" (the generator only picks which retrieved passage's title answers
        best, by its likelihood: a shortcut that answers only "which entity" questions)
        or "extract" (the generator is a ``reader.SpanReader``, which reads a span out
        of the passages, citing the passage it came from, or abstains).
        """
        if k < 0:
            raise CourseError(f"k must be 0 (closed-book) or more, not {k}")
        if k > 0 and retriever is None:
            raise CourseError("a RAG pipeline with k > 0 needs a retriever")
        check_answer_mode(answer_mode, k)
        if answer_mode == "extract" and not hasattr(generator, "read"):
            raise CourseError("answer mode 'extract' needs a span reader (reader.SpanReader) as its generator")
        self.retriever, self.generator, self.documents, self.k = retriever, generator, documents, k
        self.answer_mode = answer_mode

    def retrieve(self, questions: Sequence[str]) -> list[list[Passage]]:
        """The top-k passages of each question, numbered from 1."""
        if self.k == 0:
            return [[] for _ in questions]
        results = self.retriever.search(list(questions), self.k)
        return [[Passage(number, doc_id, *self.documents[doc_id], score)
                 for number, (doc_id, score) in enumerate(ranked, start=1)] for ranked in results]

    def build_prompt(self, question: str, passages: Sequence[Passage]) -> Any:
        """The prompt in the style the generator expects (chat messages or a seq2seq string)."""
        if getattr(self.generator, "prompt_style", "chat") == "seq2seq":
            return seq2seq_prompt(question, passages)
        return chat_messages(question, passages)

    def ask_many(self, questions: Sequence[str]) -> list[Answer]:
        """Answer a batch of questions; each answer carries its passages and citations."""
        start = time.perf_counter()
        questions = [clean_question(question) for question in questions]
        passages = self.retrieve(questions)
        if self.answer_mode == "extract":
            answers = self.extract(questions, passages)
        elif self.answer_mode == "title" and self.k > 0:
            prompts = [self.build_prompt(q, p) for q, p in zip(questions, passages)]
            answers = [self.choose(question, found, prompt)
                       for question, found, prompt in zip(questions, passages, prompts)]
        else:
            prompts = [self.build_prompt(q, p) for q, p in zip(questions, passages)]
            answers = []
            for question, found, output in zip(questions, passages, self.generator.generate(prompts)):
                text, cited = split_citations(output, len(found))
                answers.append(Answer(question, text, found, cited))
        seconds = (time.perf_counter() - start) / max(len(questions), 1)
        for answer in answers:
            answer.seconds = seconds
        return answers

    def extract(self, questions: Sequence[str], passages: Sequence[Sequence[Passage]]) -> list[Answer]:
        """The reader's span for each question, citing the passage it is in, or "not in the passages"."""
        read = self.generator.read(questions, passages, [[p.score for p in found] for found in passages])
        return [Answer(question, r.answer, list(found), [] if r.abstains else [found[r.passage].number],
                       sentence="" if r.abstains else r.sentence, abstained=r.abstains)
                for question, found, r in zip(questions, passages, read)]

    def choose(self, question: str, passages: Sequence[Passage], prompt: Any) -> Answer:
        """The retrieved title the generator finds likeliest as the answer, citing its passage."""
        # An answer does not repeat what the question already names ("the capital of
        # Hubei" is not Hubei), so such titles are no candidates, unless all are.
        asked = f" {normalize_answer(question)} "
        candidates = [p for p in passages if f" {normalize_answer(p.title)} " not in asked] or list(passages)
        if not candidates:
            return Answer(question, "", [], [])
        if len(candidates) == 1:  # nothing to choose between: no need to run the model
            return Answer(question, candidates[0].title, list(passages), [candidates[0].number])
        scores = self.generator.candidate_scores(prompt, [p.title for p in candidates])
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))  # ties: the better-ranked passage
        return Answer(question, candidates[best].title, list(passages), [candidates[best].number])

    def ask(self, question: str) -> Answer:
        """Answer one question."""
        return self.ask_many([question])[0]


def abstains(answer: Answer) -> bool:
    """Whether an answer says the passages hold none: the reader's abstention, or a generator writing it out.

    Used in notebook 07.
    """
    from .reader import NOT_IN_PASSAGES

    return answer.abstained or normalize_answer(answer.answer) == normalize_answer(NOT_IN_PASSAGES)


def answer_scores(answers: Sequence[Answer], rows: Sequence[Mapping[str, Any]], k: int) -> dict[str, float]:
    """Exact match and token F1 over the answerable rows, recall@k over those with a title, and abstention.

    A row with ``"answerable": false`` (its answers empty) asks for something the
    corpus does not hold; when there are such rows, three more numbers say how the
    system abstained: the share of unanswerable rows it abstained on (recall of
    abstaining), the share of answerable ones (a cost: each scores 0), and the share of
    its abstentions that were right (precision).

    Used in notebook 07.
    """
    if len(answers) != len(rows):
        raise CourseError(f"{len(answers)} answers for {len(rows)} questions")
    if not rows:
        raise CourseError("no answers to score")
    answerable = [(a, r) for a, r in zip(answers, rows) if r.get("answerable", True)]
    unanswerable = [a for a, r in zip(answers, rows) if not r.get("answerable", True)]
    scores: dict[str, float] = {}
    if answerable:
        means = mean_answer_scores([a.answer for a, _ in answerable], [r["answers"] for _, r in answerable])
        scores["exact_match"], scores["f1"] = means["EM"], means["F1"]
    # Recall by title: the question's article was among the passages the generator was shown.
    titled = [(a, r) for a, r in answerable if r.get("title")]
    if titled and k > 0:
        scores[f"recall@{k}"] = sum(any(p.title == r["title"] for p in a.passages) for a, r in titled) / len(titled)
    if unanswerable:
        abstained_right = sum(map(abstains, unanswerable))
        abstained_wrong = sum(abstains(a) for a, _ in answerable)
        scores["abstained_unanswerable"] = abstained_right / len(unanswerable)
        if answerable:
            scores["abstained_answerable"] = abstained_wrong / len(answerable)
        scores["abstention_precision"] = (abstained_right / (abstained_right + abstained_wrong)
                                          if abstained_right + abstained_wrong else 0.0)
    return scores


def evaluate(pipeline: RAGPipeline, rows: Sequence[Mapping[str, Any]], batch_size: int = 8,
             progress: bool = True, keep_answers: bool = False) -> dict[str, Any]:
    """Exact match, token F1, recall@k (rows with a title) and seconds per question; the answers too if asked.

    Derived in notebook 07, section 5.
    """
    from tqdm.auto import tqdm

    from .config import progress_disabled

    start = time.perf_counter()
    answers: list[Answer] = []
    with tqdm(total=len(rows), unit="question", disable=progress_disabled(progress)) as bar:
        for first in range(0, len(rows), batch_size):
            batch = rows[first:first + batch_size]
            answers += pipeline.ask_many([row["question"] for row in batch])
            bar.update(len(batch))
    seconds = time.perf_counter() - start
    scores = answer_scores(answers, rows, pipeline.k)
    result: dict[str, Any] = {
        "questions": len(rows),
        "k": pipeline.k,
        **{name: scores.pop(name) for name in ("exact_match", "f1") if name in scores},
        "seconds_per_question": seconds / len(rows),
        **scores,  # recall@k, when there is one
    }
    if keep_answers:  # not JSON: the CLI never asks for them
        result["answers"] = answers
    return result


def wiki_documents(records: list[dict] | None = None) -> dict[str, tuple[str, str]]:
    """The wiki corpus as doc_id -> (title, text), the document store of the course's RAG.

    `records` are the rows of `data.wiki_records()`, if the caller has them already.

    Derived in notebook 07, section 1.
    """
    from .data import wiki_records

    records = wiki_records() if records is None else records
    return {r["id"]: (r["title"], r["text"]) for r in records}


def make_retriever(name: str, records: list[dict] | None = None, milvus_uri: str | None = None) -> Retriever:
    """A retriever over the wiki passages by name: "bm25", "dense" (exact Faiss) or "hybrid" (both, fused).

    "milvus-bm25", "milvus-dense" and "milvus-hybrid" are the same three searches on
    Milvus (`milvus_search`): the embedded engine, or the cluster at `milvus_uri`
    (default: the RAGUTILS_MILVUS_URI environment variable).

    Derived in notebook 07, section 2.
    """
    if name not in RETRIEVERS:
        raise CourseError(f"unknown retriever {name!r}; choose one of: {', '.join(RETRIEVERS)}")
    from .bm25 import BM25Retriever
    from .data import wiki_passages
    from .dense import DenseRetriever
    from .hybrid import HybridRetriever

    if name.startswith("milvus-"):
        from .milvus_search import MilvusKnowledgeBase

        return MilvusKnowledgeBase.from_corpus("wiki", uri=milvus_uri).retriever(name.removeprefix("milvus-"))
    if name == "dense":
        return DenseRetriever.from_corpus("wiki")
    doc_ids, _, passages = wiki_passages(records)
    keyword = BM25Retriever(passages, doc_ids, variant="lucene")
    if name == "bm25":
        return keyword
    return HybridRetriever([keyword, DenseRetriever.from_corpus("wiki")], **HYBRID_SETTINGS)
