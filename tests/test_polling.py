"""Polling stays cheap: a paused run's page polls slowly, a poll with nothing new reuses the chart, and the
server does not force a full garbage collection after every fragment rerun."""

from __future__ import annotations

import tomllib

import pytest
from apptest_helpers import REPO, use_tiny_settings, wait_for_job
from streamlit.testing.v1 import AppTest

from lab_ui import jobs_ui, session
from lm_core.serve.views import JobView

PAGE = "train"


def _view(status: str) -> JobView:
    return JobView(job_id="j", status=status, message="", queue_position=0, epoch=1, planned_epochs=5, version=1,
                   elapsed=0.0, eta_seconds=None, tokens_per_s=None, runs=[])  # fmt: skip


def test_poll_rate_is_fast_while_training_slow_when_paused_and_off_when_done() -> None:
    assert jobs_ui.poll_seconds(_view("running")) == jobs_ui.POLL_SECONDS
    assert jobs_ui.poll_seconds(_view("queued")) == jobs_ui.POLL_SECONDS
    assert jobs_ui.poll_seconds(_view("paused")) == jobs_ui.PAUSED_POLL_SECONDS > jobs_ui.POLL_SECONDS
    for done in ("finished", "stopped", "diverged", "error", "failed"):
        assert jobs_ui.poll_seconds(_view(done)) is None, done


def test_server_skips_the_full_collection_after_each_rerun() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False


def test_a_redraw_without_new_data_reuses_the_chart(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = jobs_ui.perplexity_figure

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs_ui, "perplexity_figure", counting)
    use_tiny_settings(at, PAGE, model="rnn")
    at.button(key="train:start").click().run()
    wait_for_job(at, PAGE)
    at.run()
    before = len(built)
    at.run()
    at.run()
    assert not at.exception
    assert before >= 1 and len(built) == before  # nothing new arrived: no figure was built again
    assert at.get("plotly_chart")  # ... and the chart is still drawn
    other = "en" if at.session_state["lang"] == "zh" else "zh"
    at.radio(key="_lang_widget").set_value(other).run()  # the language changed: the chart is built again
    assert len(built) == before + 1


def test_pause_asks_for_the_slow_rate_and_resume_for_the_fast_one(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="scratch-rnn", epochs=500)
    at.button(key="train:start").click().run()
    job = session.manager().get(at.session_state[jobs_ui.job_key(PAGE)], at.session_state["owner"])
    try:
        at.button(key="train:pause").click().run()
        assert not at.exception
        assert session.manager().view(job).status == "paused"
        assert jobs_ui.poll_seconds(session.manager().view(job)) == jobs_ui.PAUSED_POLL_SECONDS
        assert at.button(key="train:resume").disabled is False  # the page shows Resume at once
        at.button(key="train:resume").click().run()
        assert at.button(key="train:pause").disabled is False
        assert "train:poll_check" not in at.session_state  # the click's rate check was consumed
    finally:
        job.stop()
        job.thread.join(30)
