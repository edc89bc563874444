"""A page's training job (lab_ui.jobs_ui): polling stays cheap (a paused run's page polls slowly, a poll with
nothing new reuses the chart, no full garbage collection after every fragment rerun), and a run's state and end
are said in words, from its status, never parsed from English text."""

from __future__ import annotations

import re
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


# -- how a run ended, and a queued run's place, in words -----------------------------------------------------------


def test_queued_status_says_starting_next_or_how_many_wait() -> None:
    """'Queued: 0 job(s) ahead' read as nonsense: a job out of the line is starting, the first in line is next."""
    from lab_ui import jobs_ui

    def view(position: int) -> JobView:
        return JobView("j", "queued", "", position, 0, 5, 0, 0.0, None, None)

    texts = [jobs_ui.status_text(view(p)) for p in (0, 1, 3)]
    assert texts[0] != texts[1] != texts[2]
    assert not re.search(r"(?<!\d)0(?!\d)", texts[0] + texts[1])  # no "0 ahead"
    assert "2" in texts[2]  # two jobs wait before the third in line


def test_my_runs_says_a_run_stopped_early_not_that_it_finished_its_epochs() -> None:
    from lab_ui import jobs_ui  # outside a session the UI language is the default, 中文

    early = jobs_ui.ended_text("finished", 3, 3, "Stopped early: no better validation perplexity ...", early=True)
    assert "提前停止" in early and "3" in early
    assert "提前停止" not in jobs_ui.ended_text("finished", 8, 8, "Finished 8 epochs.")
    assert "提前停止" not in jobs_ui.ended_text("finished", 8, 8, "Stopped early (a text is not a status)")
