"""Worker processes give way to the web process: a lower CPU priority, and reaped as soon as they exit.

The niceness is read from /proc (Linux), where the class's server runs; the speed it buys is measured by
tests/load_bench.py and what it costs a run by `python -m lm_core.bench.throughput`, not here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import TIMEOUT, wait_until

from lm_core.corpus import Corpus
from lm_core.serve import niceness, process_pool
from lm_core.serve.manager import JobManager
from lm_core.training import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
CONFIG = {"model": "scratch-rnn", "hidden": 8, "num_steps": 5, "batch_size": 4, "lr": 1.0, "clip": 1.0}


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def nice_of(pid: int) -> int:
    return int(_stat(pid)[16])


def zombie_children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] == "Z":
                found.append(int(entry.name))
    return found


def test_workers_train_at_a_lower_priority_than_the_web_process(
    job_manager: Callable[..., JobManager], tiny_corpus: Corpus
) -> None:
    manager = job_manager(backend="process", max_running=1)
    mine = nice_of(os.getpid())
    job = manager.submit("alice", [Trainer(tiny_corpus, TrainConfig(**CONFIG, epochs=2))])
    assert wait_until(lambda: job.worker is not None and manager.view(job).epoch >= 1, TIMEOUT)
    expected = min(19, mine + niceness.WORKER_NICENESS)
    assert nice_of(job.worker.pid) == expected
    job.thread.join(TIMEOUT)
    assert nice_of(os.getpid()) == mine  # the web process keeps its own priority
    for spare in process_pool.idle_workers():  # the spare ones too, from their start (torch's import)
        assert wait_until(lambda spare=spare: nice_of(spare.pid) == expected, TIMEOUT)


def test_a_worker_the_pool_does_not_keep_is_reaped_when_it_exits(
    job_manager: Callable[..., JobManager], tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_pool, "MAX_IDLE", 1)  # two runs at once: one worker is kept, one exits
    manager = job_manager(backend="process", max_running=2)
    jobs = [manager.submit("alice", [Trainer(tiny_corpus, TrainConfig(**CONFIG, epochs=2))]) for _ in range(2)]
    for job in jobs:
        job.thread.join(TIMEOUT)
        assert manager.view(job).status == "finished"
    exited = {job.worker.pid for job in jobs if job.worker not in process_pool.idle_workers()}
    assert exited, "both workers were kept: nothing exited"
    assert wait_until(lambda: not exited & set(zombie_children()), 30.0), f"zombie workers: {zombie_children()}"


def test_a_machine_with_few_cores_keeps_a_cores_share_for_the_web_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab_ui import session

    assert [session.default_workers(c) for c in (1, 2, 3, 4)] == [1, 1, 2, 3]  # one core's share kept
    assert [session.default_workers(c) for c in (5, 8, 64)] == [5, 8, 64]  # enough cores: niceness suffices
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv(session.WORKERS_ENV, raising=False)
    assert session._workers() == 1
    for value, workers in (("2", 2), ("7", 7), ("0", 1), ("many", 1), ("999", 256)):
        monkeypatch.setenv(session.WORKERS_ENV, value)  # the operator's choice wins (bad values: the default)
        assert session._workers() == workers, value
