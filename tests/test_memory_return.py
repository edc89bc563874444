"""The web process's memory returns after a class leaves: a done job nobody looks at lets go of its corpus (the
run store keeps the text) and reads it back when a page asks; without a store it keeps it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import TIMEOUT

from lm_core.corpus import Corpus
from lm_core.serve import retention
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

CONFIG = TrainConfig(model="scratch-gru", hidden=16, num_steps=8, batch_size=4, lr=1.0, clip=1.0, seed=3, epochs=1)


@pytest.mark.parametrize("stored", [True, False])
def test_a_done_job_nobody_looks_at_lets_go_of_its_corpus_and_reads_it_back(
    job_manager: Callable[..., JobManager],
    tmp_path: Path,
    tiny_corpus: Corpus,
    monkeypatch: pytest.MonkeyPatch,
    stored: bool,
) -> None:
    monkeypatch.setattr(retention, "LET_GO_CHARS", 1)  # the tiny corpus counts as large here
    manager = job_manager(store=RunStore(tmp_path) if stored else None)
    job = manager.submit("alice", [Trainer(tiny_corpus, CONFIG)])
    job.thread.join(TIMEOUT)
    assert job.done and job.corpus(0) is tiny_corpus
    manager.reap(now=time.time() + 60)  # looked at a minute ago: it keeps its corpus
    assert job.corpus(0) is tiny_corpus
    manager.reap(now=time.time() + manager.retention.reap_after + 1)
    again = job.corpus(0)
    if not stored:
        assert again is tiny_corpus  # nowhere to read it back from: kept
        return
    assert again is not tiny_corpus  # let go, then read back from the store
    assert again.text == tiny_corpus.text and again.idx_to_char == tiny_corpus.idx_to_char
    assert job.corpus_text(0) == tiny_corpus.text and job.corpus(0) is again
