"""Shared fixtures: the book's corpus (read in place, never copied), a tiny synthetic corpus, an app page,
tiny trained checkpoints.

The Streamlit ones import the UI inside the fixture, so the engine's tests never load Streamlit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so that plain `pytest` (not only `python -m pytest`) finds lm_core
    sys.path.insert(0, str(REPO))

from testkit import tiny_text

from lm_core.corpus import BOOK_FILE, Corpus
from lm_core.serve.manager import BACKEND_ENV, JobManager

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

BOOK_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / BOOK_FILE


@pytest.fixture(autouse=True)
def _thread_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's runs train in threads of the test process unless a test asks for another backend.

    The app's default, a worker process per run, costs every page test that trains a spawn or a
    warm worker's epochs on a loaded machine; the process and Ray backends have their own tests.
    """
    monkeypatch.setenv(BACKEND_ENV, "thread")


@pytest.fixture(autouse=True)
def _own_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own run store folder, so no test writes to the repository's lab-data/."""
    folder = tmp_path_factory.mktemp("lab-data")
    monkeypatch.setenv("RNN_LAB_DATA", str(folder))
    return folder


@pytest.fixture(scope="session")
def book_zip() -> Path:
    """Path of the book's corpus beside the repository; skip (or fail in CI) when it is missing."""
    if not BOOK_ZIP.is_file():
        message = f"the book's corpus is missing at {BOOK_ZIP}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return BOOK_ZIP


@pytest.fixture(scope="session")
def book_corpus(book_zip: Path) -> Corpus:
    """The book's corpus with the book's preprocessing (10,000 characters)."""
    return Corpus.from_file(book_zip)


@pytest.fixture(scope="session")
def tiny_corpus() -> Corpus:
    """A small synthetic Chinese corpus (all characters kept) for fast training tests."""
    return Corpus.from_text(tiny_text(), name="tiny", max_chars=None)


@pytest.fixture()
def job_manager() -> Iterator[Callable[..., JobManager]]:
    """`job_manager(**options)`: a JobManager that is shut down after the test, with each job's worker checked
    to have ended, so no training thread or process outlives its test."""
    made: list[JobManager] = []

    def make(**options: object) -> JobManager:
        made.append(JobManager(**options))
        return made[-1]

    try:
        yield make
    finally:
        for mgr in made:
            mgr.shutdown()
            for job in mgr.jobs():
                for worker in (job.thread, job.worker):  # the driver thread; a worker process
                    assert not getattr(worker, "is_alive", lambda: False)(), f"job {job.id} outlived its test"


@pytest.fixture()
def manager(job_manager: Callable[..., JobManager]) -> JobManager:
    """Two training slots, threads of this process (a module may override it with another backend)."""
    return job_manager(max_running=2)


@pytest.fixture()
def at(request: pytest.FixtureRequest) -> Iterator[AppTest]:
    """The app switched to the test module's page, `pages/<PAGE>.py`, in Chinese; torn down cleanly.

    Each page's test module names its page once (`PAGE = "train"`); see `apptest_helpers.app_page`.
    """
    from apptest_helpers import app_page

    with app_page(f"pages/{request.module.PAGE}.py") as app:
        yield app


@pytest.fixture()
def clean_streamlit() -> Iterator[None]:
    """Fresh caches for a test; every training thread stopped and joined afterwards.

    The model pages' modules use it for every test (`pytestmark = pytest.mark.usefixtures(...)`).
    """
    import streamlit as st

    from lab_ui import session

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    session.manager().shutdown()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture()
def trained_checkpoints() -> dict[str, bytes]:
    """Checkpoint bytes of tiny trained models: "gru", "rnn", "scratch-lstm" (16 units) and "gru-h8".

    Trained once per process, whichever test module asks first.
    """
    from apptest_helpers_models import trained_bytes

    return trained_bytes()


@pytest.fixture()
def shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained_checkpoints: dict[str, bytes]
) -> Callable[..., Path]:
    """`shipped("gru", "rnn")` writes those checkpoints (in that order) as the app's shipped models."""
    from lab_ui.model_cache import CHECKPOINT_ENV

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv(CHECKPOINT_ENV, str(folder))

    def make(*kinds: str) -> Path:
        for i, kind in enumerate(kinds):
            (folder / f"{i}_{kind}.pt").write_bytes(trained_checkpoints[kind])
        return folder

    return make
