"""Shared set-up: no test module passes its torch thread count on to the next."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def torch_thread_count_restored():
    """Give torch back, after each module, the thread count it had before.

    The tests of tiny models set one thread (fastest for tiny matrices). Without this,
    every module after them ran on one thread too, the generator's comparisons with
    `generate` in test_decoding included.
    """
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
