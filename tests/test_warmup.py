"""The server's warm-up threads: torch's first-use costs once per process, deferred to the server's own warm-up,
and the unit-search trace giving way to the pages drawn meanwhile."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from lm_core.serve import warmup


@pytest.fixture
def fresh_warmup(monkeypatch):
    """The module as in a new process: nothing warmed, nothing deferred; `warm_up_torch` counted, not run."""
    calls: list[str] = []
    monkeypatch.setattr(warmup, "_done", False)
    monkeypatch.setattr(warmup, "_deferred", False)
    monkeypatch.setattr(warmup, "warm_up_torch", lambda: calls.append(threading.current_thread().name))
    return calls


def test_torch_is_warmed_once_whichever_thread_asks(fresh_warmup) -> None:
    threads = [threading.Thread(target=warmup.warm_up_torch_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    warmup.warm_up_torch_once()
    assert len(fresh_warmup) == 1
    assert warmup.warm_up_in_background() is None  # already done: no thread


def test_a_page_starts_no_torch_warm_up_when_the_server_warm_up_will(fresh_warmup) -> None:
    warmup.defer_to_server_warm_up()
    assert warmup.warm_up_in_background() is None
    assert fresh_warmup == []
    warmup.warm_up_torch_once()  # what the server's warm-up thread calls after the models
    assert len(fresh_warmup) == 1


def test_without_a_server_warm_up_a_page_warms_torch_in_the_background(fresh_warmup) -> None:
    thread = warmup.warm_up_in_background()
    assert thread is not None
    thread.join(30)
    assert fresh_warmup == ["torch-warm-up"]


def test_give_way_lowers_only_the_calling_thread() -> None:
    """The warm-up's unit-search trace runs one torch thread at a lower priority; the server's other threads
    (this one stands for a page's script thread) keep theirs."""
    from lab_ui import model_source

    here = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, here), torch.get_num_threads()
    seen = {}

    def warm() -> None:
        tid = threading.get_native_id()
        start = os.getpriority(os.PRIO_PROCESS, tid)
        model_source.give_way()
        seen.update(start=start, after=os.getpriority(os.PRIO_PROCESS, tid), threads=torch.get_num_threads())

    thread = threading.Thread(target=warm)
    thread.start()
    thread.join(30)
    assert seen["threads"] == 1
    assert seen["after"] == min(19, seen["start"] + model_source.WARM_UP_NICENESS)
    assert (os.getpriority(os.PRIO_PROCESS, here), torch.get_num_threads()) == before
