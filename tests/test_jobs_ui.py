"""A page's training job (lab_ui.jobs_ui): its panel stays cheap to redraw (a redraw with nothing new reuses the
chart, no full garbage collection after every fragment rerun) and keeps its elements' places whatever the run's
state; a run's state and end are said in words, from its status, never parsed from English text. How the panel
asks for news is tests/test_poll.py."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
from apptest_helpers import REPO, use_tiny_settings, wait_for_job
from streamlit.testing.v1 import AppTest

from lab_ui import jobs_ui, poll, session
from lm_core.serve.views import JobView

PAGE = "train"


def _components(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(e.proto.json) for e in at.get("bidi_component")]


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


def test_pause_and_resume_redraw_the_panel_and_its_poll_rate(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="scratch-rnn", epochs=500)
    at.button(key="train:start").click().run()
    job = session.manager().get(at.session_state[jobs_ui.job_key(PAGE)], at.session_state["owner"])
    try:
        at.button(key="train:pause").click().run()
        assert not at.exception
        assert session.manager().view(job).status == "paused"
        assert at.button(key="train:resume").disabled is False  # the page shows Resume at once
        (data,) = _components(at)
        assert data["first"] == poll.poll_interval("paused", poll.GAUGE.cores())
        assert data["url"] == f"{poll.ROUTE}?job={job.id}"
        at.button(key="train:resume").click().run()
        assert at.button(key="train:pause").disabled is False
        (data,) = _components(at)
        assert data["first"] < poll.BASE_SECONDS["paused"]
    finally:
        job.stop()
        job.thread.join(30)


def _panel_script(status: str) -> None:
    """The top of a live panel (progress, notices, buttons) for a run in `status`."""
    from lab_ui import jobs_ui
    from lm_core.serve.views import JobView

    class _Controls:
        def pause(self) -> None: ...
        def resume(self) -> None: ...
        def step_epoch(self) -> None: ...
        def stop(self) -> None: ...

    view = JobView(job_id="j", status=status, message="", queue_position=3 if status == "queued" else 0, epoch=1,
                   planned_epochs=5, version=1, elapsed=0.0, eta_seconds=None, tokens_per_s=None, runs=[])  # fmt: skip
    jobs_ui.progress_ui(view)
    jobs_ui.controls_ui("panel", _Controls(), view)


def test_the_panels_elements_keep_their_places_whatever_the_runs_state() -> None:
    """A redraw cut short by the next one leaves stale elements; if the buttons moved, two Pause buttons show."""
    layouts = {}
    for status in ("queued", "running", "paused", "finished", "stopped", "error"):
        at = AppTest.from_function(_panel_script, args=(status,), default_timeout=60).run()
        assert not at.exception, status
        layouts[status] = [type(node).__name__ for node in at.main.children.values()]
    assert len({tuple(v) for v in layouts.values()}) == 1, layouts


def test_server_skips_the_full_collection_after_each_rerun() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False


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


def test_a_run_its_memory_limit_stopped_says_so_not_that_the_process_stopped_unexpectedly() -> None:
    """Both end "failed" and resume from My runs; only the memory limit's end tells what to lower."""
    from lm_core.serve.job import MEMORY_LIMIT

    limit = jobs_ui.ended_text("failed", 3, 10, f"The run {MEMORY_LIMIT} after epoch 3; resume it on My runs.")
    crash = jobs_ui.ended_text("failed", 3, 10, "The worker process stopped unexpectedly (exit code -9) ...")
    assert "内存上限" in limit and "3" in limit and "批量" in limit and "我的训练" in limit
    assert "意外停止" in crash and "内存" not in crash
