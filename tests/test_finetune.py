"""ragutils.finetune: the shared training loop, its learning-rate schedule, and the weights' fingerprint."""

import pytest
import torch

from ragutils import config, finetune
from ragutils.errors import CourseError


def test_train_encoder_lowers_the_loss_and_refuses_nan():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.zeros(2))
    target = torch.tensor([1.0, -2.0])
    losses = finetune.train_encoder([weight], list(range(40)), lambda _: ((weight - target) ** 2).sum(),
                                    lr=0.1, warmup=2, log_every=0)
    assert losses[-1] < 0.1 * losses[0]
    with pytest.raises(CourseError, match="not finite|lower the learning rate"):
        finetune.train_encoder([weight], [0], lambda _: weight.sum() * float("nan"), log_every=0)
    with pytest.raises(CourseError, match="no trainable parameters"):
        finetune.train_encoder([torch.nn.Parameter(torch.zeros(1), requires_grad=False)], [0], lambda _: None)


def test_train_encoder_trains_on_the_fixed_thread_count_and_gives_the_count_back():
    weight = torch.nn.Parameter(torch.zeros(2))
    seen = []

    def loss_of_batch(_):
        seen.append(torch.get_num_threads())
        return weight.square().sum()

    with config.torch_threads(1):
        finetune.train_encoder([weight], [0, 1, 2], loss_of_batch, log_every=0)
        assert seen == [config.TRAINING_THREADS] * 3 and torch.get_num_threads() == 1


def test_linear_warmup_decay_rises_then_falls_to_zero():
    factor = finetune.linear_warmup_decay(warmup=2, steps=6)
    assert [factor(step) for step in range(6)] == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert factor(6) == 0.0 and factor(9) == 0.0  # never negative past the last step


def test_weights_fingerprint_changes_with_any_weight():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    before = finetune.weights_fingerprint(layer)
    assert finetune.weights_fingerprint(layer) == before and len(before) == 16
    with torch.no_grad():
        layer.bias[1] += 1e-6
    assert finetune.weights_fingerprint(layer) != before


def test_a_trained_model_in_the_store_keeps_its_weights_fingerprint_and_its_settings(tmp_path, monkeypatch):
    # How notebooks 10 and 12 keep a trained encoder: the settings' fingerprint is the store key.
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ragutils import models
    from ragutils.tools import store

    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(models.model_path("generator", "offline"), local_files_only=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    settings = {"steps": 3, "lr": 1e-4, "seed": 0}
    store.save(model, tokenizer, "toy", store.fingerprint(settings), losses=[2.0, 1.5, 1.25])
    reloaded, _ = store.load("toy", LlamaForCausalLM)
    assert finetune.weights_fingerprint(reloaded) == finetune.weights_fingerprint(model)
    assert store.losses("toy") == [2.0, 1.5, 1.25]
    assert store.ready("toy", store.fingerprint(dict(reversed(settings.items()))))
    assert not store.ready("toy", store.fingerprint({**settings, "steps": 4}))  # other settings: train again
