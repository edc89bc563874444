"""The run store when something is gone or refused: a missing checkpoint, corpus files past their runs, a store
that becomes unwritable while the server runs. Nothing is lost or rewritten without a word."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import TIMEOUT

from lm_core.corpus import Corpus
from lm_core.errors import LabError
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

CONFIG = {"model": "scratch-gru", "hidden": 16, "num_steps": 8, "batch_size": 4, "lr": 1.0, "clip": 1.0, "seed": 3}


def _train(manager: JobManager, corpus: Corpus, epochs: int = 2, owner: str = "alice") -> str:
    job = manager.submit(owner, [Trainer(corpus, TrainConfig(**CONFIG, epochs=epochs))], ["GRU"])
    job.thread.join(TIMEOUT)
    assert manager.view(job).status == "finished"
    return job.id


def test_continue_without_its_checkpoint_is_refused_and_keeps_the_stored_epochs(
    tmp_path: Path, tiny_corpus: Corpus
) -> None:
    manager = JobManager(store=RunStore(tmp_path))
    try:
        job_id = _train(manager, tiny_corpus)
        store = manager.store
        before = store.history(f"{job_id}-0")
        store.checkpoint_path(f"{job_id}-0").unlink()
        with pytest.raises(LabError) as refused:
            manager.resume_stored(job_id, "alice", extra_epochs=3)
        assert refused.value.key == "error.runs.checkpoint_missing"
        assert "GRU" in str(refused.value) and "\n" not in str(refused.value)
        record = store.run(f"{job_id}-0", "alice")
        assert (record.status, record.epoch, record.planned) == ("finished", 2, 2)
        assert store.history(f"{job_id}-0") == before
    finally:
        manager.shutdown()
