"""The one store of trained artefacts: names, checksums, all-or-nothing writes, ready / save / load."""

import hashlib
import json

import pytest

from ragutils import models
from ragutils.errors import CourseError
from ragutils.tools import store


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(models.model_path("encoder"), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16, max_position_embeddings=32)
    return BertModel(config), tokenizer


def test_fingerprint_is_stable_order_free_and_short():
    assert store.fingerprint({"a": 1, "b": [2]}) == store.fingerprint({"b": [2], "a": 1})
    assert store.fingerprint({"a": 1}) != store.fingerprint({"a": 2})
    # A string is hashed as it is, anything else as sorted JSON: the keys of existing caches stay valid.
    assert store.fingerprint("x\x1fy") == hashlib.sha256(b"x\x1fy").hexdigest()[:16]
    settings = {"steps": 3, "seed": 0}
    assert store.fingerprint(settings) == hashlib.sha256(
        json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def test_file_sha256_equals_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 5000)  # more than one read block
    assert store.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_atomic_write_keeps_the_old_file_when_the_writer_crashes(tmp_path):
    path = tmp_path / "sub" / "table.json"
    store.atomic_write_text(path, "old")

    def crash(temp):
        with open(temp, "w") as handle:
            handle.write("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        store.atomic_write(path, crash)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["table.json"]  # no temporary file left
    store.atomic_write_text(path, "new", durable=True)
    assert path.read_text() == "new" and oct(path.stat().st_mode & 0o777) == "0o644"


def test_staged_folder_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "index"
    with store.staged_folder(target) as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), store.staged_folder(target) as staging:
        (staging / "a.txt").write_text("second")
        raise RuntimeError("crash before the rename")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_save_ready_load_round_trip(cache, tiny_model):
    from transformers import AutoModel

    model, tokenizer = tiny_model
    assert not store.ready("tiny") and store.read_meta("tiny") == {}
    with pytest.raises(CourseError, match="not in the cache yet; run notebook 99"):
        store.load("tiny", AutoModel, hint="run notebook 99")
    folder = store.save(model, tokenizer, "tiny", key="k1", meta={"note": "first"}, losses=[2.0, 1.0000004])
    assert folder == cache / "models" / "tiny"
    assert store.ready("tiny") and store.ready("tiny", "k1") and not store.ready("tiny", "k2")
    assert store.read_meta("tiny")["note"] == "first"
    assert store.losses("tiny") == [2.0, 1.0]
    reloaded, _ = store.load("tiny", AutoModel)
    assert not reloaded.training
    assert all((a == b).all() for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))


def test_a_save_that_crashes_keeps_the_previous_model(cache, tiny_model, monkeypatch):
    from transformers import AutoModel

    model, tokenizer = tiny_model
    store.save(model, tokenizer, "tiny", key="first")

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(type(tokenizer), "save_pretrained", crash)  # the model is written, then the crash
    with pytest.raises(RuntimeError, match="killed mid-write"):
        store.save(model, tokenizer, "tiny", key="second")
    assert store.ready("tiny", "first")
    assert [p.name for p in (cache / "models").iterdir()] == ["tiny"]  # no staging folder left
    AutoModel.from_pretrained(store.artefact_dir("tiny"))  # still a complete checkpoint


def test_unreadable_meta_and_bad_names(cache):
    folder = store.artefact_dir("broken")
    folder.mkdir(parents=True)
    (folder / store.META_FILE).write_text("{not json")
    assert store.read_meta("broken") == {} and not store.ready("broken")
    with pytest.raises(CourseError, match="no training losses"):
        store.losses("broken")
    for bad in ("", "../escape", ".hidden"):
        with pytest.raises(CourseError, match="not a valid artefact name"):
            store.artefact_dir(bad)
