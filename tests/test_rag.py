"""ragutils.rag: prompts, citations, question checks, and the pipeline end to end."""

import pytest

from ragutils import rag
from ragutils.errors import CourseError

PASSAGES = [rag.Passage(1, "d1", "Wuhan", "Wuhan is the capital of Hubei, China.", 7.0),
            rag.Passage(2, "d2", "Hubei", "Hubei is a province of China.", 6.5)]


def test_chat_prompt_numbers_the_passages_and_asks_the_question():
    system, user = rag.chat_messages("What is the capital of Hubei?", PASSAGES)
    assert system["role"] == "system" and "[2]" in system["content"]
    assert "[1] Wuhan: Wuhan is the capital" in user["content"]
    assert "[2] Hubei: Hubei is a province" in user["content"]
    assert user["content"].endswith("Question: What is the capital of Hubei?")


def test_closed_book_prompt_has_no_passages():
    messages = rag.chat_messages("What is the capital of Hubei?", [])
    assert messages[-1]["content"] == "What is the capital of Hubei?"


def test_chat_text_is_the_generators_template_with_the_answer_turn_opened():
    from transformers import AutoTokenizer

    from ragutils import models

    tokenizer = AutoTokenizer.from_pretrained(models.model_path("generator", "offline"), local_files_only=True)
    text = rag.chat_text(tokenizer, rag.chat_messages("What is the capital of Hubei?", PASSAGES))
    assert "[1] Wuhan: Wuhan is the capital" in text
    # SmolLM2's template: the user's turn closed, the assistant's opened and left empty for the model.
    assert text.endswith("Question: What is the capital of Hubei?<|im_end|>\n<|im_start|>assistant\n")


def test_seq2seq_prompt_is_question_then_context():
    prompt = rag.seq2seq_prompt("What is the capital of Hubei?", PASSAGES)
    assert prompt.startswith("question: What is the capital of Hubei? context: Wuhan: Wuhan is")


@pytest.mark.parametrize("output, answer, cited", [
    ("Wuhan [1]", "Wuhan", [1]),
    ("Wuhan [1][2] [1]", "Wuhan", [1, 2]),
    ("Wuhan [7]", "Wuhan", []),  # no passage 7: not a citation
    ("Wuhan.\nIt is a city in China [2].", "Wuhan", [2]),
    ("", "", []),
])
def test_split_citations(output, answer, cited):
    assert rag.split_citations(output, n_passages=2) == (answer, cited)


def test_long_question_is_cut_with_a_warning():
    with pytest.warns(UserWarning, match="cut from 300 to 128 words"):
        question = rag.clean_question("word " * 300)
    assert len(question.split()) == 128


def test_empty_question_is_refused():
    with pytest.raises(CourseError, match="empty query"):
        rag.clean_question("  ")


def test_pipeline_checks_k_and_retriever():
    with pytest.raises(CourseError, match="needs a retriever"):
        rag.RAGPipeline(None, generator=None, documents={}, k=3)
    with pytest.raises(CourseError, match="k must be"):
        rag.RAGPipeline(None, generator=None, documents={}, k=-1)


class TwoPassages:
    """A retriever that returns d1 then d2 for every question."""

    def search(self, queries, k):
        return [[("d1", 7.0), ("d2", 6.5)][:k] for _ in queries]


class Parrot:
    """A generator that answers every prompt with the same text."""

    prompt_style = "chat"

    def __init__(self, text):
        self.text = text

    def generate(self, prompts):
        return [self.text for _ in prompts]


DOCUMENTS = {p.doc_id: (p.title, p.text) for p in PASSAGES}
ROWS = [{"question": "What is the capital of Hubei?", "answers": ["Wuhan"], "title": "Wuhan"},
        {"question": "Which province has Wuhan as its capital?", "answers": ["Hubei"], "title": "Hubei"},
        {"question": "What is the capital of France?", "answers": ["Paris"], "title": "Paris"}]


def test_answer_scores_by_hand():
    answers = [rag.Answer(ROWS[0]["question"], "Wuhan", PASSAGES[:1]),
               rag.Answer(ROWS[1]["question"], "Hubei province", PASSAGES[:1]),
               rag.Answer(ROWS[2]["question"], "Lyon", PASSAGES[:1])]
    # EM: 1, 0, 0; F1: 1, 2/3 (P = 1/2, R = 1), 0; recall@1 by title: Wuhan only.
    scores = rag.answer_scores(answers, ROWS, k=1)
    assert scores == pytest.approx({"exact_match": 1 / 3, "f1": (1 + 2 / 3) / 3, "recall@1": 1 / 3})
    assert list(rag.answer_scores(answers, ROWS, k=0)) == ["exact_match", "f1"]  # closed-book: no recall
    with pytest.raises(CourseError, match="2 answers for 3 questions"):
        rag.answer_scores(answers[:2], ROWS, k=1)


def test_evaluate_scores_the_pipeline_and_keeps_its_answers_when_asked():
    pipeline = rag.RAGPipeline(TwoPassages(), Parrot("Wuhan [1]"), DOCUMENTS, k=2)
    result = rag.evaluate(pipeline, ROWS, batch_size=2, progress=False, keep_answers=True)
    answers = result.pop("answers")
    assert [a.answer for a in answers] == ["Wuhan"] * 3 and answers[0].cited == [1]
    assert list(result) == ["questions", "k", "exact_match", "f1", "seconds_per_question", "recall@2"]
    assert result["questions"] == 3 and result["k"] == 2
    assert {name: result[name] for name in ("exact_match", "f1", "recall@2")} == rag.answer_scores(answers, ROWS, 2)
    assert result["recall@2"] == pytest.approx(2 / 3)  # Paris was never retrieved
    assert "answers" not in rag.evaluate(pipeline, ROWS, progress=False)


def test_candidate_scores_prefer_the_right_answer():
    from ragutils import models

    generator = rag.ChatGenerator(*models.load("generator"))
    prompt = rag.chat_messages("What is the capital of France?", [])
    paris, banana = generator.candidate_scores(prompt, ["Paris", "Banana bread"])
    assert paris > banana


def test_candidate_scores_equal_scoring_each_candidate_alone():
    """The shared prompt cache gives the same mean log-probabilities as one full pass per candidate."""
    import torch

    from ragutils import models

    model, tokenizer = models.load("generator")
    generator = rag.ChatGenerator(model, tokenizer)
    passages = [rag.Passage(1, "x", "France", "France is a country whose capital is Paris.", 1.0)]
    prompt = rag.chat_messages("What is the capital of France?", passages)
    candidates = ["Paris", "Banana bread", "Lyon", "The Eiffel Tower of France"]  # 1 to 6 tokens
    text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    expected = []
    for candidate in candidates:
        ids = tokenizer(candidate, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            log_probs = torch.log_softmax(model(torch.tensor([prompt_ids + ids])).logits[0].float(), dim=-1)
        expected.append(sum(log_probs[len(prompt_ids) - 1 + i, token].item() for i, token in enumerate(ids))
                        / len(ids))
    assert generator.candidate_scores(prompt, candidates) == pytest.approx(expected, abs=1e-4)


def test_unknown_answer_mode():
    with pytest.raises(CourseError, match="unknown answer mode"):
        rag.RAGPipeline(None, generator=None, documents={}, k=0, answer_mode="choose")  # now "title"


def test_batched_answers_equal_one_at_a_time_and_leave_the_tokenizer_alone():
    from ragutils import models

    generator = rag.ChatGenerator(*models.load("generator"), max_new_tokens=12)
    side = generator.tokenizer.padding_side
    questions = ["What is the capital of France?",
                 "Name a planet in the solar system that has rings and many moons."]
    prompts = [rag.chat_messages(question, []) for question in questions]
    # Rows of different lengths: right padding would corrupt the shorter row's answer.
    assert generator.generate(prompts) == [generator.generate([prompt])[0] for prompt in prompts]
    assert generator.tokenizer.padding_side == side


class SecondPassageReader:
    """A span reader that reads "Hubei" out of passage 2 of every question, or abstains when told to."""

    def __init__(self, abstain=False):
        self.abstain, self.seen = abstain, None

    def read(self, questions, passages_per_question, retriever_scores=None):
        from ragutils.reader import ReadAnswer

        self.seen = (passages_per_question, retriever_scores)
        return [ReadAnswer(q, "Hubei", 1, 0, 5, "Hubei is a province of China.", 3.0, 3.0, 1.0, self.abstain)
                for q in questions]


def test_extract_mode_cites_the_passage_the_span_came_from():
    reader = SecondPassageReader()
    answer = rag.RAGPipeline(TwoPassages(), reader, DOCUMENTS, k=2, answer_mode="extract").ask("Which province?")
    assert (answer.answer, answer.cited, answer.abstained) == ("Hubei", [2], False)
    assert answer.sentence == "Hubei is a province of China."
    passages, scores = reader.seen
    assert [p.title for p in passages[0]] == ["Wuhan", "Hubei"] and scores == [[7.0, 6.5]]


def test_extract_mode_abstains_without_a_citation():
    pipeline = rag.RAGPipeline(TwoPassages(), SecondPassageReader(abstain=True), DOCUMENTS, k=2,
                               answer_mode="extract")
    answer = pipeline.ask("Which province?")
    assert (answer.answer, answer.cited, answer.sentence, answer.abstained) == ("not in the passages", [], "", True)
    assert answer.to_dict()["abstained"] is True


@pytest.mark.parametrize("k, generator, needle", [
    (0, SecondPassageReader(), "needs passages to read"),
    (2, Parrot("Wuhan"), "needs a span reader"),
])
def test_extract_mode_needs_passages_and_a_reader(k, generator, needle):
    with pytest.raises(CourseError, match=needle):
        rag.RAGPipeline(TwoPassages(), generator, DOCUMENTS, k=k, answer_mode="extract")


def test_answer_scores_with_unanswerable_rows_by_hand():
    rows = ROWS[:2] + [{"question": "What is the capital of Atlantis?", "answers": [], "answerable": False},
                       {"question": "Who founded Atlantis?", "answers": [], "answerable": False}]
    answers = [rag.Answer(rows[0]["question"], "Wuhan", PASSAGES[:1]),
               rag.Answer(rows[1]["question"], "", PASSAGES[:1], abstained=True),  # a wrong abstention
               rag.Answer(rows[2]["question"], "Not in the passages.", PASSAGES[:1]),  # written out: counts
               rag.Answer(rows[3]["question"], "Poseidon", PASSAGES[:1])]
    scores = rag.answer_scores(answers, rows, k=1)
    # EM and F1 over the two answerable rows only; recall@1 by title over them (Wuhan was shown, Hubei not).
    assert scores == pytest.approx({"exact_match": 0.5, "f1": 0.5, "recall@1": 0.5,
                                    "abstained_unanswerable": 0.5, "abstained_answerable": 0.5,
                                    "abstention_precision": 0.5})
