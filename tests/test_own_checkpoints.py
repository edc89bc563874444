"""The server reads its own checkpoints under its own bound, not under the visitors' upload limit.

A GRU of 1,024 hidden units with Adam writes ~40 MB per checkpoint (weights and
two moments). The 20 MB upload limit is for files a visitor sends; a worker's
start checkpoint, the checkpoint it publishes each epoch and the run store's
copy were written by this server, and must be readable up to what the largest
model within `MAX_PARAMETERS` takes with its Adam state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import TIMEOUT

from lm_core import checkpoint, limits
from lm_core.corpus import Corpus
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

BIG = {"model": "gru", "hidden": 1024, "num_steps": 5, "batch_size": 4, "optimizer": "adam", "lr": 1e-3}


@pytest.fixture()
def manager(job_manager: Callable[..., JobManager], tmp_path: Path) -> JobManager:
    return job_manager(store=RunStore(tmp_path), backend="process")


def test_a_model_over_the_upload_limit_trains_publishes_and_resumes_on_the_process_backend(
    manager: JobManager, tiny_corpus: Corpus
) -> None:
    trainer = Trainer(tiny_corpus, TrainConfig(**BIG, epochs=1, steps_per_epoch=2))
    job = manager.submit("alice", [trainer], ["GRU 1024"])
    job.thread.join(TIMEOUT)
    view = manager.view(job)
    assert view.status == "finished", view.message

    published = job.checkpoint(0)  # what Generate, Hidden states and the download read
    assert len(published.history) == 1 and published.optimizer_state is not None
    data = checkpoint.to_bytes(published)
    assert len(data) > limits.MAX_CHECKPOINT_BYTES  # the point of the test: above the upload limit

    # The same bytes as a visitor's upload are refused, with the limit stated.
    uploaded, error = checkpoint.read_bytes(data, "run.pt")
    assert uploaded is None and f"checkpoints are limited to {limits.MAX_UPLOAD_MB} MB" in str(error)

    # Continue from the run store: the store's copy is read, and the worker starts from ~40 MB of its own bytes.
    again = manager.resume_stored(job.id, "alice", extra_epochs=1)
    assert again is not None
    again.thread.join(TIMEOUT)
    view = manager.view(again)
    assert view.status == "finished" and view.epoch == 2, view.message
    assert len(again.checkpoint(0).history) == 2


def test_the_servers_own_bound_fits_the_largest_allowed_model_with_adam() -> None:
    assert checkpoint.MAX_OWN_CHECKPOINT_BYTES >= 3 * 4 * limits.MAX_PARAMETERS  # weights and Adam's two moments
    assert checkpoint.MAX_OWN_CHECKPOINT_BYTES > limits.MAX_CHECKPOINT_BYTES
