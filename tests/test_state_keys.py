"""The session-state key builders tests and pages share (`settings.widget_key`, `jobs_ui.job_key`).

The spellings are pinned: a shared lesson link restores settings into these keys, and My runs
sends a run back to its page through `job_key`, so a changed spelling would silently lose state.
A plain dict stands in for `st.session_state`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from lab_ui import jobs_ui, persist, settings
from lab_ui.jobs_ui import job_key
from lab_ui.settings import widget_key


@pytest.fixture()
def state(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The session state `settings`, `persist` and `jobs_ui` see: one plain dict."""
    fake: dict[str, Any] = {}
    for module in (settings, persist, jobs_ui):
        monkeypatch.setattr(module, "st", SimpleNamespace(session_state=fake, query_params={}))
    return fake


def test_key_spellings_are_unchanged() -> None:
    assert widget_key("train", "epochs") == "train:w:epochs"
    assert job_key("train") == "train:job"


def test_each_page_keeps_its_own_copy_of_a_setting() -> None:
    assert widget_key("train", "lr") != widget_key("clipping", "lr")
    assert widget_key("train", "lr") != widget_key("train", "clip")


def test_apply_values_sets_the_widget_under_widget_key_and_remembers_it(state: dict[str, Any]) -> None:
    settings.apply_values("train", {"epochs": 3, "model": "gru"})
    assert state[widget_key("train", "epochs")] == 3
    assert state[widget_key("train", "model")] == "gru"
    assert state[persist.saved_key(widget_key("train", "epochs"))] == 3  # survives a page switch


def test_page_job_reads_the_id_stored_under_job_key(state: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    state[job_key("train")] = "job-1"
    monkeypatch.setattr(jobs_ui, "owner_id", lambda: "me")
    monkeypatch.setattr(jobs_ui, "manager", lambda: SimpleNamespace(get=lambda job_id, owner: (job_id, owner)))
    assert jobs_ui.page_job("train") == ("job-1", "me")
