"""ragutils.config: the torch thread count the notebooks start with."""

import os

import pytest
import torch

from ragutils import config
from ragutils.errors import CourseError


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_default_to_the_cores_this_process_may_use(monkeypatch, restore_threads):
    monkeypatch.delenv("RAGUTILS_THREADS", raising=False)
    assert config.set_torch_threads() == len(os.sched_getaffinity(0)) == torch.get_num_threads()


def test_threads_follow_the_environment(monkeypatch, restore_threads):
    monkeypatch.setenv("RAGUTILS_THREADS", "1")
    assert config.set_torch_threads() == 1 == torch.get_num_threads()


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_bad_thread_counts_are_refused_and_torch_is_left_alone(monkeypatch, restore_threads, value):
    torch.set_num_threads(1)
    monkeypatch.setenv("RAGUTILS_THREADS", value)
    with pytest.raises(CourseError, match="RAGUTILS_THREADS"):
        config.set_torch_threads()
    assert torch.get_num_threads() == 1


def test_one_thread_and_two_give_the_same_numbers(restore_threads):
    # Why the inference and LoRA notebooks may use every core: a forward pass and the weight
    # gradients of a real encoder layer (MiniLM's sizes, dropout on) come out bit for bit the
    # same with one thread and with two. (Not LayerNorm's gradients: each is a sum over all
    # positions, which threads split; so training runs on a fixed count, config.TRAINING_THREADS.)
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(384, 12, 1536, batch_first=True)
    inputs = torch.randn(16, 64, 384)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(1)  # the same dropout masks
        layer.zero_grad()
        out = layer(inputs)
        out.square().mean().backward()
        results.append([out.detach().clone()] + [layer.get_submodule(name).weight.grad.clone()
                                                 for name in ("linear1", "linear2", "self_attn.out_proj")])
    assert all(torch.equal(one, two) for one, two in zip(*results))


def test_torch_threads_sets_the_count_for_a_block_and_gives_it_back(restore_threads):
    torch.set_num_threads(1)
    with config.torch_threads(config.TRAINING_THREADS) as threads:
        assert threads == config.TRAINING_THREADS == torch.get_num_threads()
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="inside"), config.torch_threads(3):
        raise ValueError("inside")
    assert torch.get_num_threads() == 1  # given back after an error too
    with pytest.raises(CourseError, match="at least one thread"), config.torch_threads(0):
        pass
    assert torch.get_num_threads() == 1


class Terminal:
    """A stand-in for stderr on a terminal."""

    def isatty(self):
        return True

    def write(self, text):
        return len(text)


def test_progress_bars_only_where_someone_sees_them(monkeypatch):
    import io
    import sys

    from ragutils.config import progress_disabled

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress_disabled() is False and progress_disabled(show=False) is True
    monkeypatch.setenv("TQDM_DISABLE", "1")  # headless notebook runs set it
    assert progress_disabled() is True
    monkeypatch.delenv("TQDM_DISABLE")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, as in a log: no bar
    assert progress_disabled() is True


def test_a_first_read_of_a_corpus_draws_no_bar_into_a_log(tmp_path):
    # datasets converts a JSON Lines file to Arrow once, behind its own "Generating split" bar.
    import os
    import subprocess
    import sys

    from ragutils.tools.course import KERNEL_ENV

    # Not a headless notebook run: without the switches the root conftest.py sets for nbval.
    env = {key: value for key, value in os.environ.items() if key not in KERNEL_ENV}
    env["RAGUTILS_CACHE"] = str(tmp_path)
    code = "from ragutils import data; print(len(data.load_corpus('jargon')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and int(result.stdout) > 0
    assert "Generating" not in result.stderr and "examples/s" not in result.stderr
