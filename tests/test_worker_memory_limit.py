"""The backstop behind the run-memory estimate: each worker process has a hard memory limit.

A run whose real memory goes past it (the estimate was wrong) fails alone, with one clear sentence, and resumes
from its last stored epoch; the web process, the other runs and the pool go on. The runs here really allocate
(their output layer's logits); only the limit is set low (the operator's setting, or the kernel's own
`prlimit` on the running worker), so the kernel, not a test hook, refuses the memory.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import TIMEOUT, seconds_until, thread_curve

from lm_core.bench.run_memory import synthetic_text
from lm_core.corpus import Corpus
from lm_core.memory import ESTIMATE_TOLERANCE, run_memory_budget
from lm_core.serve import memory_limit, process_pool
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the limit is Linux's RLIMIT_DATA")

SMALL = {"model": "scratch-gru", "hidden": 16, "num_steps": 8, "batch_size": 4, "lr": 1.0, "clip": 1.0, "seed": 3}
# 2,000 distinct characters, 64 × 64 characters a minibatch: each copy of the logits is 4,096 × 2,000 floats
# (33 MB, above glibc's largest mmap threshold, so every step maps them afresh) and a step holds about three.
WIDE = {**SMALL, "hidden": 8, "num_steps": 64, "batch_size": 64}
HEADROOM = 40 * 2**20  # what the small run may add to an idle worker under the test's limit


@pytest.fixture()
def wide_corpus() -> Corpus:
    return Corpus.from_text(synthetic_text(2_000, 16_000), name="wide", max_chars=None)


@pytest.fixture()
def manager(job_manager: Callable[..., JobManager], tmp_path: Path) -> JobManager:
    return job_manager(max_running=2, store=RunStore(tmp_path), backend="process")


def _data_bytes(pid: int) -> int:
    """VmData of a process: what RLIMIT_DATA counts."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmData")


def _idle_worker_bytes() -> int:
    assert process_pool.wait_warm(TIMEOUT)
    return max(_data_bytes(p.pid) for p in process_pool.idle_workers())


def test_the_limit_is_the_budget_with_the_estimates_tolerance_or_the_operators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(memory_limit.ENV, raising=False)
    assert memory_limit.worker_memory_limit() == int(run_memory_budget() * ESTIMATE_TOLERANCE)
    monkeypatch.setenv(memory_limit.ENV, "3G")
    assert memory_limit.worker_memory_limit() == 3 * 2**30
    monkeypatch.setenv(memory_limit.ENV, "off")
    assert memory_limit.worker_memory_limit() is None
    monkeypatch.setenv(memory_limit.ENV, "lots")  # a typo must not lift the limit: the default applies
    assert memory_limit.worker_memory_limit() == int(run_memory_budget() * ESTIMATE_TOLERANCE)


def test_a_run_past_the_workers_memory_limit_fails_alone_and_the_lab_goes_on(
    manager: JobManager, tiny_corpus: Corpus, wide_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(memory_limit.ENV, str(_idle_worker_bytes() + HEADROOM))
    small = manager.submit("bob", [Trainer(tiny_corpus, TrainConfig(**SMALL, epochs=30))])
    seconds_until(lambda: small.status == "running")
    wide = manager.submit("alice", [Trainer(wide_corpus, TrainConfig(**WIDE, epochs=3))])
    wide.thread.join(TIMEOUT)
    view = manager.view(wide)
    assert view.status == "failed", view.message
    assert "ran out of its memory limit" in view.message and "My runs" in view.message
    assert not wide.worker.is_alive() and wide.worker not in process_pool.idle_workers()  # it is not reused
    small.thread.join(TIMEOUT)
    assert manager.view(small).status == "finished" and manager.view(small).epoch == 30  # the other run went on
    record = manager.store.run(f"{wide.id}-0", "alice")
    assert record.status == "failed" and "ran out of its memory limit" in record.message
    after = manager.submit("carol", [Trainer(tiny_corpus, TrainConfig(**SMALL, epochs=2))])
    after.thread.join(TIMEOUT)  # the pool gave it a new worker
    assert manager.view(after).status == "finished" and after.worker.pid != wide.worker.pid


def test_a_run_that_ran_out_of_memory_after_epoch_k_resumes_from_epoch_k(
    manager: JobManager, wide_corpus: Corpus
) -> None:
    """A normal limit until epoch k; then the running worker's limit drops below what a step takes."""
    job = manager.submit("alice", [Trainer(wide_corpus, TrainConfig(**WIDE, epochs=100_000))])
    seconds_until(lambda: manager.view(job).epoch >= 2)
    pid = job.worker.pid
    resource.prlimit(pid, resource.RLIMIT_DATA, (_data_bytes(pid) - HEADROOM, resource.RLIM_INFINITY))
    job.thread.join(TIMEOUT)
    view = manager.view(job)
    assert view.status == "failed" and "ran out of its memory limit" in view.message, view.message
    record = manager.store.run(f"{job.id}-0", "alice")
    assert record.status == "failed" and record.epoch == view.epoch >= 2
    again = manager.resume_stored(job.id, "alice")
    assert again is not None and again.id == job.id
    seconds_until(lambda: manager.view(again).epoch >= record.epoch + 1)
    again.stop()
    again.thread.join(TIMEOUT)
    resumed = [h["perplexity"] for h in manager.store.history(f"{job.id}-0")]
    expected = thread_curve(Trainer(wide_corpus, TrainConfig(**WIDE, epochs=len(resumed))))
    assert resumed == expected  # epochs 1..k kept, k+1.. trained on from the stored checkpoint


def test_a_worker_that_exits_with_the_out_of_memory_code_ends_its_job_the_same_way() -> None:
    """If even reporting fails (a refusal outside the job's own code), the worker's exit code says it."""
    from types import SimpleNamespace

    from lm_core.serve.driver import WorkerLost
    from lm_core.serve.process_backend import ProcessChannel

    def lost(code: int) -> WorkerLost:
        process = SimpleNamespace(exitcode=code, join=lambda timeout=None: None)
        return ProcessChannel(None, SimpleNamespace(process=process))._lost()  # type: ignore[arg-type]

    assert (lost(memory_limit.OUT_OF_MEMORY_EXIT).status, lost(memory_limit.OUT_OF_MEMORY_EXIT).why) == (
        "failed",
        memory_limit.OUT_OF_MEMORY,
    )
    assert lost(-9).why == "exit code -9"
