"""ragutils.classifier: metrics by hand and against scikit-learn, tokenisation, freezing, a tiny training run, the cache."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn import metrics as sk

from ragutils import classifier, config
from ragutils.tools import store
from ragutils.errors import CourseError

LABELS = ["a", "b", "c"]


def test_topic_labels_are_the_twelve_sorted_topics():
    labels = classifier.topic_labels()
    assert len(labels) == 12 and labels == sorted(labels)
    assert "Mathematics" in labels and "Uncategorized" in labels


def test_label_ids_are_positions_and_unknown_labels_are_one_clear_line():
    assert classifier.label_ids(["c", "a", "c"], LABELS) == [2, 0, 2]
    with pytest.raises(CourseError, match="unknown label 'd'") as error:
        classifier.label_ids(["a", "d"], LABELS)
    assert "\n" not in str(error.value)


def test_scores_match_a_hand_computed_example():
    # Confusion matrix (rows true, columns predicted): a -> a, b; b -> b; c -> b.
    y_true, y_pred = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    assert classifier.confusion_matrix(y_true, y_pred, LABELS).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    scores = classifier.classification_scores(y_true, y_pred, LABELS)
    # Precision: a 1/1, b 1/3, c never predicted -> 0. Recall: a 1/2, b 1/1, c 0/1.
    # F1: a 2/3, b 1/2, c 0; macro-F1 = (2/3 + 1/2 + 0) / 3 = 7/18.
    assert scores["accuracy"] == pytest.approx(2 / 4)
    assert scores["precision"] == pytest.approx((1 + 1 / 3) / 3)
    assert scores["recall"] == pytest.approx((1 / 2 + 1) / 3)
    assert scores["f1"] == pytest.approx(7 / 18)
    # Macro-F1 is not the F1 of macro precision and macro recall.
    p, r = scores["precision"], scores["recall"]
    assert scores["f1"] != pytest.approx(2 * p * r / (p + r))
    per_label = classifier.per_label_scores(y_true, y_pred, LABELS)
    assert per_label["b"] == pytest.approx({"precision": 1 / 3, "recall": 1.0, "f1": 0.5, "support": 1})


@pytest.mark.parametrize("seed", range(3))
def test_scores_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = [f"topic {i}" for i in range(6)]
    y_true = list(rng.choice(labels, size=200, p=[0.4, 0.2, 0.2, 0.1, 0.05, 0.05]))
    # Mostly right, sometimes a random label, never the last label: an unpredicted class.
    y_pred = [t if rng.random() < 0.6 else str(rng.choice(labels[:-1])) for t in y_true]
    y_pred = [p if p != labels[-1] else labels[0] for p in y_pred]
    scores = classifier.classification_scores(y_true, y_pred, labels)
    precision, recall, f1, _ = sk.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                  average="macro", zero_division=0)
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert scores["precision"] == pytest.approx(precision)
    assert scores["recall"] == pytest.approx(recall)
    assert scores["f1"] == pytest.approx(f1)
    assert scores["f1"] == pytest.approx(sk.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert (classifier.confusion_matrix(y_true, y_pred, labels)
            == sk.confusion_matrix(y_true, y_pred, labels=labels)).all()


def test_scores_refuse_empty_mismatched_and_unknown_input():
    with pytest.raises(CourseError, match="no predictions"):
        classifier.classification_scores([], [], LABELS)
    with pytest.raises(CourseError, match="2 true labels but 1 predictions"):
        classifier.classification_scores(["a", "b"], ["a"], LABELS)
    with pytest.raises(CourseError, match="unknown label 'z'"):
        classifier.classification_scores(["a"], ["z"], LABELS)


def test_perfect_predictions_score_one():
    y = ["a", "b", "c", "c"]
    assert classifier.classification_scores(y, y, LABELS) == {"accuracy": 1.0, "precision": 1.0,
                                                              "recall": 1.0, "f1": 1.0}


def test_confusion_matrix_plot_rows_are_recalls():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = classifier.confusion_matrix_plot(["a", "a", "b", "c"], ["a", "b", "b", "b"], LABELS)
    shown = ax.images[0].get_array()
    assert np.allclose(shown.sum(axis=1), 1.0)
    assert np.allclose(np.diag(shown), [0.5, 1.0, 0.0])  # the diagonal is each label's recall
    assert [tick.get_text() for tick in ax.get_yticklabels()] == LABELS
    plt.close(ax.figure)


def test_tfidf_baseline_learns_obvious_words():
    texts = ["the violin and the cello", "a symphony for violin", "the piano concerto",
             "a river in the mountains", "the lake and the valley", "mountains above a lake"]
    labels = ["music", "music", "music", "place", "place", "place"]
    pipeline = classifier.tfidf_baseline(texts, labels, min_df=1)
    assert list(pipeline.predict(["a cello concerto", "a valley river"])) == ["music", "place"]
    with pytest.raises(CourseError, match="no training texts"):
        classifier.tfidf_baseline([], [])
    with pytest.raises(CourseError, match="2 texts but 1 labels"):
        classifier.tfidf_baseline(["x", "y"], ["a"])


def test_loss_curve_reads_the_logged_losses():
    history = [{"loss": 2.5, "step": 10, "epoch": 0.1}, {"loss": 1.5, "step": 20, "epoch": 0.2},
               {"train_runtime": 3.0, "step": 20}]
    assert classifier.loss_curve(history) == ([10, 20], [2.5, 1.5])
    assert classifier.loss_curve([]) == ([], [])


# --- with the real tokenizer and model (the offline encoder, local files only) ---------------------

TEXTS = ["Paris is the capital and most populous city of France.",
         "The violin is a wooden string instrument in the violin family.",
         "Photosynthesis is the process by which plants turn light into chemical energy.",
         "Calculus is the mathematical study of continuous change."] * 4
TOPICS = ["Geography", "Arts", "Biology and health sciences", "Mathematics"] * 4


@pytest.fixture(scope="module")
def base():
    import torch

    torch.set_num_threads(1)  # tiny batches: one thread is fastest, and immune to busy cores
    return classifier.load_base_classifier(classifier.topic_labels(), seed=0)


@pytest.fixture(scope="module")
def tiny_set():
    import datasets

    return datasets.Dataset.from_dict({"id": [str(i) for i in range(16)], "text": TEXTS, "label": TOPICS})


def test_tokenize_topics_keeps_only_model_inputs(base, tiny_set):
    labels = classifier.topic_labels()
    encoded = classifier.tokenize_topics(tiny_set, base.tokenizer, labels, max_length=8)
    assert sorted(encoded.column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    assert max(len(ids) for ids in encoded["input_ids"]) == 8  # truncated, not padded
    assert encoded[0]["input_ids"][0] == base.tokenizer.cls_token_id
    assert encoded[0]["input_ids"][-1] == base.tokenizer.sep_token_id
    assert encoded["labels"][:4] == [labels.index(t) for t in TOPICS[:4]]


def test_tokenize_topics_refuses_unknown_labels_and_missing_columns(base, tiny_set):
    import datasets

    wrong = datasets.Dataset.from_dict({"text": ["x"], "label": ["Cooking"]})
    with pytest.raises(CourseError, match="unknown label 'Cooking'"):
        classifier.tokenize_topics(wrong, base.tokenizer, classifier.topic_labels())
    with pytest.raises(CourseError, match="expected 'text' and 'label'"):
        classifier.tokenize_topics(tiny_set.remove_columns("label"), base.tokenizer, classifier.topic_labels())


def test_the_head_is_new_and_seeded(base):
    again = classifier.load_base_classifier(classifier.topic_labels(), seed=0)
    other = classifier.load_base_classifier(classifier.topic_labels(), seed=1)
    assert base.model.config.num_labels == 12 and base.model.config.id2label[5] == "Mathematics"
    assert np.array_equal(base.model.classifier.weight.detach(), again.model.classifier.weight.detach())
    assert not np.array_equal(base.model.classifier.weight.detach(), other.model.classifier.weight.detach())


def test_freeze_lower_layers_counts_and_refuses_impossible_requests():
    base = classifier.load_base_classifier(classifier.topic_labels(), seed=0).model
    total = sum(p.numel() for p in base.parameters())
    layer = sum(p.numel() for p in base.bert.encoder.layer[0].parameters())
    head = sum(p.numel() for p in base.classifier.parameters()) + sum(p.numel() for p in base.bert.pooler.parameters())
    assert classifier.freeze_lower_layers(base, 0) == {"trainable": head, "frozen": total - head}
    assert classifier.freeze_lower_layers(base, 2)["trainable"] == head + 2 * layer
    assert not base.bert.encoder.layer[3].output.dense.weight.requires_grad
    assert base.bert.encoder.layer[4].output.dense.weight.requires_grad
    assert classifier.freeze_lower_layers(base, 6)["trainable"] == total - sum(
        p.numel() for p in base.bert.embeddings.parameters())
    with pytest.raises(CourseError, match="between 0 and 6"):
        classifier.freeze_lower_layers(base, 7)


def test_a_three_step_training_run_moves_only_the_unfrozen_weights(tiny_set, tmp_path):
    import torch

    model, tokenizer = classifier.load_base_classifier(classifier.topic_labels(), seed=0)
    encoded = classifier.tokenize_topics(tiny_set, tokenizer, classifier.topic_labels(), max_length=16)
    recipe = replace(classifier.DEFAULT_RECIPE, steps=3, batch_size=4, logging_steps=1, learning_rate=1e-3,
                     trainable_layers=1)
    frozen_before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    trained_before = model.bert.encoder.layer[5].attention.self.query.weight.detach().clone()
    threads_seen = []

    def cross_entropy(outputs, labels, num_items_in_batch=None):
        threads_seen.append(torch.get_num_threads())
        return torch.nn.functional.cross_entropy(outputs.logits, labels)

    with config.torch_threads(1):
        trainer = classifier.train_topic_classifier(model, tokenizer, encoded, recipe,
                                                    output_dir=tmp_path / "run", loss_func=cross_entropy)
        # Training runs on the recipe's fixed thread count, and the caller's count comes back after.
        assert threads_seen == [recipe.threads] * 3 and recipe.threads == config.TRAINING_THREADS
        assert torch.get_num_threads() == 1
    steps, losses = classifier.loss_curve(trainer.state.log_history)
    assert steps == [1, 2, 3] and all(np.isfinite(losses))
    assert trainer.state.global_step == 3
    assert np.array_equal(model.bert.encoder.layer[0].attention.self.query.weight.detach(), frozen_before)
    assert not np.array_equal(model.bert.encoder.layer[5].attention.self.query.weight.detach(), trained_before)
    assert not model.training  # back in eval mode, ready to predict
    assert not list((tmp_path / "run").glob("checkpoint-*"))  # save_strategy="no"


def test_predictions_come_back_in_input_order(base):
    import torch

    texts = ["Short.", TEXTS[1] * 3, TEXTS[2], "A medium length sentence about rivers."]
    batched = classifier.predict_logits(base.model, base.tokenizer, texts, max_length=32, batch_size=3)
    with torch.inference_mode():
        one_by_one = [base.model(**base.tokenizer(text, truncation=True, max_length=32, return_tensors="pt"))
                      .logits[0].numpy() for text in texts]
    assert np.allclose(batched, np.stack(one_by_one), atol=1e-4)
    names = classifier.predict_topics(base.model, base.tokenizer, texts, max_length=32)
    assert names == [base.model.config.id2label[int(i)] for i in batched.argmax(axis=1)]
    with pytest.raises(CourseError, match="no texts"):
        classifier.predict_logits(base.model, base.tokenizer, [])


def test_save_is_atomic_and_the_cache_round_trips(base, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    name = classifier.classifier_name()
    recipe = classifier.DEFAULT_RECIPE
    assert not store.ready(name)
    with pytest.raises(CourseError, match="run notebook 08"):
        classifier.load_classifier()
    meta = {"test_scores": {"f1": 0.5}}
    store.save(base.model, base.tokenizer, name, classifier.recipe_key(recipe), meta)
    folder = store.save(base.model, base.tokenizer, name, classifier.recipe_key(recipe), meta)  # replacing works too
    assert [path.name for path in folder.parent.iterdir()] == ["classifier-topics"]  # no staging left behind
    assert store.ready(name) and store.ready(name, classifier.recipe_key(recipe))
    assert not store.ready(name, classifier.recipe_key(replace(recipe, steps=recipe.steps + 1)))
    assert store.read_meta(name)["test_scores"] == {"f1": 0.5}
    model, tokenizer = classifier.load_classifier()
    assert model.config.id2label == base.model.config.id2label
    text = [TEXTS[0]]
    assert np.allclose(classifier.predict_logits(model, tokenizer, text),
                       classifier.predict_logits(base.model, base.tokenizer, text), atol=1e-5)
