"""The translator role: a hub model only; the offline profile says so in one clear line."""

import pytest

from ragutils import models
from ragutils.errors import CourseError


def test_translator_is_a_hub_seq2seq_model():
    hub = models.spec("translator", "hub")
    assert hub.source == "hub" and "/" in hub.name  # a Hub id, loaded like any other Hub role
    import transformers

    assert models._default_model_class("translator") is transformers.AutoModelForSeq2SeqLM


def test_offline_translator_is_a_clear_error_not_a_download():
    assert models.spec("translator", "offline").source == "unavailable"
    with pytest.raises(CourseError, match="translator.*'offline'.*RAGUTILS_PROFILE=hub") as error:
        models.load("translator", "offline")
    assert "\n" not in str(error.value)


def test_the_other_offline_roles_still_resolve():
    assert models.model_path("encoder", "offline")  # the new branch only catches unavailable roles
