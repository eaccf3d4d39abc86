"""ragutils.reader and reader_training: windows and labels, the span loss, n-best decoding, reading and abstaining, training."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from ragutils import config, reader, reader_training
from ragutils.errors import CourseError
from ragutils.tools import store

QUESTION = "When was Ada Lovelace born?"
CONTEXT = ("Ada Lovelace. Augusta Ada King, Countess of Lovelace (born 10 December 1815) was an English "
           "mathematician. She worked on Charles Babbage's Analytical Engine.")
ANSWER = "10 December 1815"
FILLER = " ".join(f"Sentence {i} says nothing at all about the matter." for i in range(12))


@pytest.fixture(scope="module")
def tiny_model(encoder_tokenizer, tiny_bert):
    from transformers import BertForQuestionAnswering

    return tiny_bert(BertForQuestionAnswering, len(encoder_tokenizer))


def planted_model(encoder_tokenizer, word, null=0.0, score=5.0):
    """A stand-in QA model: start and end logits `score` on the token of `word`, `null` at [CLS], 0 elsewhere."""
    import torch

    target = encoder_tokenizer.convert_tokens_to_ids(word)

    class Planted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, **_):
            logits = (input_ids == target).float() * score
            logits[:, 0] = null
            return SimpleNamespace(start_logits=logits, end_logits=logits.clone())

    return Planted()


def answer_at(context, answer):
    return answer, context.index(answer)


# --- windows and labels -------------------------------------------------------------------------

def test_labels_land_on_the_answer_tokens(encoder_tokenizer):
    features = reader.qa_features(encoder_tokenizer, [QUESTION], [CONTEXT], [answer_at(CONTEXT, ANSWER)])
    assert features["example"] == [0]  # one window: the context fits
    start, end = features["start_positions"][0], features["end_positions"][0]
    offsets = features["offset_mapping"][0]
    assert CONTEXT[offsets[start][0]:offsets[end][1]] == ANSWER
    assert encoder_tokenizer.decode(features["input_ids"][0][start:end + 1]) == ANSWER.lower()  # an uncased tokenizer
    # Only context tokens have offsets: the question and the special tokens cannot be answers.
    question_tokens = len(encoder_tokenizer(QUESTION, add_special_tokens=False)["input_ids"])
    assert offsets[:question_tokens + 2] == [None] * (question_tokens + 2) and offsets[-1] is None


def test_a_long_context_is_cut_into_overlapping_windows_and_only_one_holds_the_answer(encoder_tokenizer):
    context = f"{FILLER} Ada Lovelace was born on {ANSWER} in London."
    features = reader.qa_features(encoder_tokenizer, [QUESTION], [context], [answer_at(context, ANSWER)],
                                  max_length=48, stride=12)
    windows = len(features["example"])
    assert windows >= 3 and set(features["example"]) == {0}
    assert all(len(ids) <= 48 for ids in features["input_ids"])
    labelled = [i for i in range(windows) if features["start_positions"][i]]
    assert labelled == [windows - 1]  # the answer is near the end: only the last window has it
    assert features["start_positions"][0] == features["end_positions"][0] == 0  # the null target, [CLS]
    start, end, offsets = features["start_positions"][-1], features["end_positions"][-1], features["offset_mapping"][-1]
    assert context[offsets[start][0]:offsets[end][1]] == ANSWER
    # Neighbouring windows share `stride` context tokens.
    first, second = ([o for o in features["offset_mapping"][i] if o is not None] for i in (0, 1))
    assert first[-12:] == second[:12]


def test_an_answer_cut_by_a_window_edge_is_labelled_in_the_next_window_only(encoder_tokenizer):
    context = f"{FILLER} Ada Lovelace was born on {ANSWER} in London. {FILLER}"
    features = reader.qa_features(encoder_tokenizer, [QUESTION], [context], [answer_at(context, ANSWER)],
                                  max_length=40, stride=10)
    begin = context.index(ANSWER)
    cut = [i for i, offsets in enumerate(features["offset_mapping"])
           if any(o is not None and o[0] <= begin < o[1] for o in offsets)
           and not any(o is not None and o[1] >= begin + len(ANSWER) for o in offsets)]
    for i in cut:
        assert features["start_positions"][i] == 0
    labelled = [i for i, start in enumerate(features["start_positions"]) if start]
    assert labelled and all(context[features["offset_mapping"][i][features["start_positions"][i]][0]:
                                    features["offset_mapping"][i][features["end_positions"][i]][1]] == ANSWER
                            for i in labelled)


def test_bad_input_is_one_clear_line(encoder_tokenizer):
    for questions, contexts, match in ([[" "], [CONTEXT], "empty question"], [[QUESTION], ["  "], "empty passage"],
                                       [[QUESTION, QUESTION], [CONTEXT], "must pair up"], [[], [], "no questions"]):
        with pytest.raises(CourseError, match=match) as error:
            reader.qa_features(encoder_tokenizer, questions, contexts)
        assert "\n" not in str(error.value)
    with pytest.raises(CourseError, match="not at character 3"):
        reader.qa_features(encoder_tokenizer, [QUESTION], [CONTEXT], [(ANSWER, 3)])


def test_a_very_long_question_is_cut_so_the_passage_still_fits(encoder_tokenizer):
    question = "When " + "really " * 5000 + "was she born?"
    with pytest.warns(UserWarning, match="question cut"):
        features = reader.qa_features(encoder_tokenizer, [question], [CONTEXT], [answer_at(CONTEXT, ANSWER)])
    assert len(features["input_ids"][0]) <= 256 and features["start_positions"][0] > 0


# --- the loss -----------------------------------------------------------------------------------

def test_span_loss_is_the_models_own_loss(encoder_tokenizer, tiny_model):
    import torch

    features = reader.qa_features(encoder_tokenizer, [QUESTION, "Who worked on the engine?"], [CONTEXT, CONTEXT],
                                  [answer_at(CONTEXT, ANSWER), None])
    batch = encoder_tokenizer.pad({key: features[key] for key in reader.MODEL_INPUTS}, return_tensors="pt")
    # The second row's positions: the null target, and one past the end (ignored by both).
    starts = torch.tensor([features["start_positions"][0], 0])
    ends = torch.tensor([features["end_positions"][0], batch["input_ids"].shape[1] + 5])
    with torch.no_grad():
        output = tiny_model(**batch, start_positions=starts, end_positions=ends)
    mine = reader.span_loss(output.start_logits, output.end_logits, starts, ends)
    assert torch.allclose(mine, output.loss)
    start_only = torch.nn.functional.cross_entropy(output.start_logits, starts)
    end_only = torch.nn.functional.cross_entropy(output.end_logits[:1], ends[:1])
    assert torch.allclose(mine, (start_only + end_only) / 2)


# --- decoding -----------------------------------------------------------------------------------

def window(encoder_tokenizer, context=CONTEXT):
    features = reader.qa_features(encoder_tokenizer, [QUESTION], [context])
    return features["offset_mapping"][0], len(features["input_ids"][0])


def test_best_spans_picks_a_planted_span_and_maps_it_back_to_characters(encoder_tokenizer):
    offsets, n = window(encoder_tokenizer)
    inside = [i for i, o in enumerate(offsets) if o is not None]
    start, end = np.zeros(n + 3), np.zeros(n + 3)  # padded logits are fine
    first, last = inside[10], inside[13]
    start[first], end[last] = 4.0, 3.0
    start[0], end[0] = 1.0, 0.5
    decoded = reader.best_spans(start, end, offsets, CONTEXT, n_best=5)
    best = decoded.spans[0]
    assert (best.start, best.end) == (offsets[first][0], offsets[last][1])
    assert best.text == CONTEXT[best.start:best.end] and best.score == pytest.approx(7.0)
    assert decoded.null_score == pytest.approx(1.5)
    assert len(decoded.spans) == 5 and [s.score for s in decoded.spans] == sorted(
        (s.score for s in decoded.spans), reverse=True)


def test_best_spans_keeps_start_before_end_within_the_length_limit_and_inside_the_context(encoder_tokenizer):
    offsets, n = window(encoder_tokenizer)
    inside = [i for i, o in enumerate(offsets) if o is not None]
    start, end = np.zeros(n), np.zeros(n)
    start[1], end[1] = 50.0, 50.0  # a question token: never part of an answer
    start[inside[20]], end[inside[5]] = 9.0, 9.0  # end before start: not a span
    spans = reader.best_spans(start, end, offsets, CONTEXT, n_best=1000, max_answer_tokens=4).spans
    assert spans[0].score == pytest.approx(9.0)  # one of the two alone, never 18 or 100
    first_token = {offsets[i][0]: i for i in inside}
    last_token = {offsets[i][1]: i for i in inside}
    assert all(first_token[s.start] <= last_token[s.end] < first_token[s.start] + 4 for s in spans)
    assert len(spans) == sum(min(4, len(inside) - k) for k in range(len(inside)))  # every allowed pair, once

    start, end = np.zeros(n), np.zeros(n)
    start[inside[2]], end[inside[2] + 8] = 2.0, 2.0  # a span nine tokens long
    assert reader.best_spans(start, end, offsets, CONTEXT, max_answer_tokens=4).spans[0].score == pytest.approx(2.0)
    assert reader.best_spans(start, end, offsets, CONTEXT, max_answer_tokens=9).spans[0].score == pytest.approx(4.0)


def test_sentence_bounds_finds_the_answers_sentence():
    begin = CONTEXT.index("Charles")
    assert CONTEXT[slice(*reader.sentence_bounds(CONTEXT, begin, begin + 7))] == (
        "She worked on Charles Babbage's Analytical Engine.")
    both = reader.sentence_bounds(CONTEXT, CONTEXT.index("mathematician"), begin + 7)
    assert CONTEXT[slice(*both)].startswith("Augusta") and CONTEXT[slice(*both)].endswith("Engine.")


# --- reading ------------------------------------------------------------------------------------

PASSAGES = ["Berlin. Berlin is the capital of Germany.", "France. The capital of France is paris, on the Seine.",
            "Lyon. Lyon is a city in France."]


def test_spans_are_ranked_across_passages_and_cite_their_sentence(encoder_tokenizer):
    read = reader.SpanReader(planted_model(encoder_tokenizer, "paris"), encoder_tokenizer)
    [answer] = read.read(["What is the capital of France?"], [PASSAGES])
    assert (answer.text, answer.passage, answer.abstains) == ("paris", 1, False)
    assert PASSAGES[1][answer.start:answer.end] == "paris"
    assert answer.sentence == "The capital of France is paris, on the Seine."
    assert answer.score == pytest.approx(10.0) and answer.answer == "paris"


def test_the_retriever_score_is_an_option_that_can_break_ties(encoder_tokenizer):
    passages = ["A. paris one.", "B. paris two."]
    model = planted_model(encoder_tokenizer, "paris")
    assert reader.SpanReader(model, encoder_tokenizer).read(["q?"], [passages], [[1.0, 3.0]])[0].passage == 0
    weighted = reader.SpanReader(model, encoder_tokenizer, retriever_weight=0.5).read(["q?"], [passages], [[1.0, 3.0]])[0]
    assert weighted.passage == 1 and weighted.score == pytest.approx(10.0 + 1.5)
    assert weighted.span_score == pytest.approx(10.0)
    with pytest.raises(CourseError, match="one score per passage"):
        reader.SpanReader(model, encoder_tokenizer).read(["q?"], [passages], [[1.0]])


def test_the_reader_abstains_when_the_empty_answer_wins(encoder_tokenizer):
    sure_of_nothing = reader.SpanReader(planted_model(encoder_tokenizer, "paris", null=6.0), encoder_tokenizer,
                                        null_threshold=0.0)
    [answer] = sure_of_nothing.read(["What is the capital of France?"], [PASSAGES])
    assert answer.abstains and answer.answer == reader.NOT_IN_PASSAGES
    assert answer.text == "paris" and answer.margin == pytest.approx(-2.0)  # the span is still there to inspect
    lenient = reader.SpanReader(planted_model(encoder_tokenizer, "paris", null=6.0), encoder_tokenizer, null_threshold=-3.0)
    assert not lenient.read(["What is the capital of France?"], [PASSAGES])[0].abstains
    [none] = reader.SpanReader(planted_model(encoder_tokenizer, "paris"), encoder_tokenizer).read(["q?"], [[]])
    assert none.abstains and none.passage == -1
    assert reader.SpanReader(None, None).null_threshold == reader.NULL_THRESHOLD < 0  # the default, chosen on dev


def test_the_null_score_is_the_lowest_over_the_windows(encoder_tokenizer):
    import torch

    class Falling(planted_model(encoder_tokenizer, "paris").__class__):
        def forward(self, input_ids, **kwargs):
            output = super().forward(input_ids, **kwargs)
            output.start_logits[:, 0] = 3.0 + torch.arange(len(input_ids))  # windows in length order: 3, 4, 5
            return output

    [answer] = reader.SpanReader(Falling(), encoder_tokenizer).read(["q?"], [PASSAGES])
    assert answer.null_score == pytest.approx(3.0)


def test_batched_reading_gives_the_logits_of_one_window_at_a_time(encoder_tokenizer, tiny_model):
    import torch

    contexts = [CONTEXT, PASSAGES[0], f"{FILLER} {CONTEXT}", PASSAGES[1]]
    features = reader.qa_features(encoder_tokenizer, [QUESTION] * 4, contexts, max_length=64, stride=16)
    starts, ends = reader.SpanReader(tiny_model, encoder_tokenizer, batch_size=3).logits(features)
    for i, ids in enumerate(features["input_ids"]):
        with torch.inference_mode():
            one = tiny_model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([features["token_type_ids"][i]]))
        assert np.allclose(starts[i], one.start_logits[0].numpy(), atol=1e-5)
        assert np.allclose(ends[i], one.end_logits[0].numpy(), atol=1e-5)


def test_read_refuses_bad_input(encoder_tokenizer, tiny_model):
    read = reader.SpanReader(tiny_model, encoder_tokenizer)
    with pytest.raises(CourseError, match="empty question"):
        read.read([""], [PASSAGES])
    with pytest.raises(CourseError, match="empty passage"):
        read.read(["q?"], [["Title. text", " "]])
    with pytest.raises(CourseError, match="empty passage"):
        read.read(["q?"], [[SimpleNamespace(title="Berlin", text="")]])
    with pytest.raises(CourseError, match="2 questions but 1 lists"):
        read.read(["q?", "r?"], [PASSAGES])


def test_reading_scores_count_an_abstention_as_wrong():
    def answer(text, abstains=False):
        return reader.ReadAnswer("q", text, 0, 0, len(text), "", 1.0, 1.0, 0.0, abstains)

    scores = reader.reading_scores([answer("Paris"), answer("the city of Paris"), answer("Paris", True)],
                                   [["Paris"], ["Paris"], ["Paris"]])
    assert scores["EM"] == pytest.approx(1 / 3) and scores["abstained"] == pytest.approx(1 / 3)
    assert scores["F1"] == pytest.approx((1 + 0.5) / 3)


# --- training -----------------------------------------------------------------------------------

DOCUMENTS = {"wiki-1": ("Ada Lovelace", CONTEXT.removeprefix("Ada Lovelace. ")),
             "wiki-2": ("Paris", "Paris is the capital of France. It has been a centre of finance since 1700. "
                                 "The city lies on the Seine and has about two million people.")}
TEXT = DOCUMENTS["wiki-1"][1]
ROWS = [{"question": QUESTION, "title": "Ada Lovelace", "doc_id": "wiki-1", "answers": [ANSWER],
         "answer_start": TEXT.index(ANSWER)},
        {"question": "Since when has the city been a centre of finance?", "title": "Paris", "doc_id": "wiki-2",
         "answers": ["1700"], "answer_start": DOCUMENTS["wiki-2"][1].index("1700")}]


def test_reading_examples_move_the_offset_into_the_passage():
    examples = reader_training.reading_examples(ROWS, DOCUMENTS)
    first = examples[0]
    assert first.passage == CONTEXT and first.passage[first.start:first.start + len(ANSWER)] == ANSWER
    with pytest.raises(CourseError, match="row 1 .* has no answer span"):
        reader_training.reading_examples([{**ROWS[0], "answers": []}], DOCUMENTS)
    with pytest.raises(CourseError, match="no training rows"):
        reader_training.reading_examples([], DOCUMENTS)
    with pytest.raises(CourseError, match="is not at character 0"):
        reader_training.reading_examples([{**ROWS[0], "answer_start": 0}], DOCUMENTS)


def test_without_answer_drops_the_answers_sentence_unless_the_answer_is_elsewhere_too():
    first = reader_training.reading_examples(ROWS, DOCUMENTS)[1]
    twin = reader_training.without_answer(first)
    assert twin.answer is None and "1700" not in twin.passage
    assert twin.passage == "Paris. Paris is the capital of France. The city lies on the Seine and has about two million people."
    repeated = first._replace(passage=first.passage + " In 1700 it grew.")
    assert reader_training.without_answer(repeated) is None


class Listed:
    """A stand-in retriever: the same ranking of doc ids for every query."""

    def __init__(self, ranking):
        self.ranking = ranking

    def search(self, queries, k):
        return [[(doc, 1.0) for doc in self.ranking[:k]] for _ in queries]


def test_balanced_rows_cap_each_rule_and_keep_the_file_order():
    rows = [{"source": "a", "n": i} for i in range(5)] + [{"source": "b", "n": 5 + i} for i in range(2)] + [
        {"n": 7 + i} for i in range(3)]
    kept = reader_training.balanced_rows(rows, per_rule=2, seed=0)
    assert [row.get("source") for row in kept].count("a") == 2 and len(kept) == 2 + 2 + 3
    assert [row["n"] for row in kept] == sorted(row["n"] for row in kept)
    assert kept == reader_training.balanced_rows(rows, per_rule=2, seed=0)
    assert reader_training.balanced_rows(rows, per_rule=None) == rows


def test_distractors_are_other_articles_without_the_answer():
    documents = {**DOCUMENTS, "wiki-3": ("Lyon", "Lyon is a city in France, a centre of finance since 1700."),
                 "wiki-4": ("Berlin", "Berlin is the capital of Germany and its largest city by population.")}
    found = reader_training.distractor_examples(ROWS[1:], documents, Listed(["wiki-2", "wiki-3", "wiki-4", "wiki-1"]))
    assert [(e.passage.split(".")[0], e.answer) for e in found] == [("Berlin", None)]  # not the gold, not one with 1700
    two = reader_training.distractor_examples(ROWS[1:], documents, Listed(["wiki-4", "wiki-1"]), per_question=2)
    assert len(two) == 2 and reader_training.distractor_examples(ROWS, documents, Listed([]), 0) == []


def test_reader_dataset_keeps_answer_windows_and_a_share_of_null_windows(encoder_tokenizer):
    examples = reader_training.reading_examples(ROWS, DOCUMENTS)
    none = reader_training.reader_dataset(encoder_tokenizer, examples, replace(reader_training.DEFAULT_RECIPE, null_share=0.0))
    every = reader_training.reader_dataset(encoder_tokenizer, examples, replace(reader_training.DEFAULT_RECIPE, null_share=1.0))
    assert sorted(none.column_names) == sorted([*reader.MODEL_INPUTS, "start_positions", "end_positions"])
    assert len(none) == 2 and all(none["start_positions"])
    assert len(every) == 4 and sum(1 for s in every["start_positions"] if s == 0) == 2  # the two twins


def test_a_short_training_run_moves_the_weights_on_the_recipes_threads(encoder_tokenizer, tiny_model, tmp_path):
    import copy

    import torch

    model = copy.deepcopy(tiny_model)
    before = model.qa_outputs.weight.detach().clone()
    recipe = replace(reader_training.DEFAULT_RECIPE, steps=3, batch_size=2, logging_steps=1, learning_rate=1e-3)
    with config.torch_threads(1):
        trainer = reader_training.train_reader(model, encoder_tokenizer, ROWS, recipe, DOCUMENTS, tmp_path / "run",
                                               retriever=Listed(["wiki-2", "wiki-1"]))
        assert torch.get_num_threads() == 1
    assert trainer.state.global_step == 3
    assert all(np.isfinite(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
    assert not torch.equal(before, model.qa_outputs.weight.detach()) and not model.training
    with pytest.raises(CourseError, match="has no answer span"):
        reader_training.train_reader(model, encoder_tokenizer, [{**ROWS[0], "answers": []}], recipe, DOCUMENTS, tmp_path,
                                     retriever=Listed([]))


def test_the_store_round_trips_a_reader_with_its_window_sizes(encoder_tokenizer, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    name = reader_training.reader_name()
    with pytest.raises(CourseError, match="not in the cache"):
        reader_training.load_reader()
    recipe = replace(reader_training.DEFAULT_RECIPE, max_length=128, stride=32)
    store.save(tiny_model, encoder_tokenizer, name, "key", {"recipe": {"max_length": 128, "stride": 32}})
    loaded = reader_training.load_reader(null_threshold=1.5)
    assert (loaded.max_length, loaded.stride, loaded.null_threshold) == (recipe.max_length, recipe.stride, 1.5)
    records = [{"title": title, "text": text} for title, text in DOCUMENTS.values()]
    answers = reader_training.gold_passage_answers(loaded, ROWS, records)
    fresh = reader.SpanReader(tiny_model, encoder_tokenizer, 128, 32, null_threshold=1.5).read(
        [QUESTION, ROWS[1]["question"]], [[CONTEXT], ["Paris. " + DOCUMENTS["wiki-2"][1]]])
    assert [a.text for a in answers] == [a.text for a in fresh]
    assert [a.score for a in answers] == pytest.approx([a.score for a in fresh], abs=1e-5)
