"""Polling costs (almost) nothing (lab_ui.poll): a tab asks an HTTP route about its run, and its panel is
redrawn only on news.

The route's answer is checked without timing: it answers only the run's owner, touches the run (an open tab's
run is never reaped), builds no snapshot of the run (no histories copied, nothing drawn), and its token
changes exactly when the panel would draw something new. The poll rate is a pure function of the run's state
and the web process's load. Speed figures live in tests/load_bench.py, not here.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apptest_helpers import use_tiny_settings, wait_for_job
from streamlit.testing.v1 import AppTest
from testkit import wait_until

from lab_ui import poll, session, web
from lm_core.corpus import Corpus
from lm_core.serve.job import Job
from lm_core.serve.manager import JobManager
from lm_core.serve.views import DONE_STATUSES
from lm_core.training import TrainConfig, Trainer

PAGE = "train"


# -- the rate, a pure function -------------------------------------------------------------------------------


def test_poll_rate_is_fast_while_training_slow_when_queued_or_paused_and_off_when_done() -> None:
    running, paused, queued = (poll.poll_interval(s, 0.0) for s in ("running", "paused", "queued"))
    assert running == poll.BASE_SECONDS["running"] == 0.5
    assert paused is not None and queued is not None and paused > running and queued > running
    for done in DONE_STATUSES:
        assert poll.poll_interval(done, 0.0) is None, done
        assert poll.poll_interval(done, 5.0) is None, done


def test_poll_rate_slows_with_the_web_process_load_up_to_a_cap() -> None:
    loads = [0.0, 0.1, poll.WEB_CORES_AT_EASE, 0.4, 0.5, 0.8, 1.0, 1.5, 2.0]
    for status in ("running", "paused", "queued"):
        rates = [poll.poll_interval(status, load) for load in loads]
        assert rates == sorted(rates), status  # never faster when busier
        at_ease = poll.poll_interval(status, 0.0)
        assert poll.poll_interval(status, poll.WEB_CORES_AT_EASE) == at_ease  # no slowdown until busy
        assert poll.poll_interval(status, 2 * poll.WEB_CORES_AT_EASE) == pytest.approx(2 * at_ease)
        assert max(rates) == pytest.approx(poll.MAX_SLOWDOWN * at_ease)  # a running tab still hears every 2 s


def test_a_run_without_its_first_point_is_asked_about_often_whatever_the_load() -> None:
    """Until its first epoch arrives a run just submitted ("queued" but not waiting behind anyone), starting or
    running is asked about every `FIRST_POINT_SECONDS`, on a busy server too (its student watches an empty
    chart); one waiting in the queue, a paused or a finished one, as before."""
    for load in (0.0, 1.0, 2.0):
        for status in ("queued", "starting", "running"):
            assert poll.poll_interval(status, load, first_point_pending=True) == poll.FIRST_POINT_SECONDS
        assert poll.poll_interval("queued", load, True, queue_position=2) == poll.poll_interval("queued", load)
        assert poll.poll_interval("paused", load, first_point_pending=True) == poll.poll_interval("paused", load)
        assert poll.poll_interval("finished", load, first_point_pending=True) is None
    assert poll.FIRST_POINT_SECONDS < poll.BASE_SECONDS["running"]


def test_cpu_gauge_measures_the_cores_used_over_its_window() -> None:
    now, used = [100.0], [10.0]
    gauge = poll.CpuGauge(window=2.0, clock=lambda: now[0], cpu=lambda: used[0])
    assert gauge.cores() == 0.0
    now[0], used[0] = 101.0, 10.9  # inside the window: the last figure stands
    assert gauge.cores() == 0.0
    now[0], used[0] = 102.0, 11.0  # two seconds, one CPU second: half a core
    assert gauge.cores() == pytest.approx(0.5)
    now[0], used[0] = 106.0, 11.0
    assert gauge.cores() == pytest.approx(0.0)


# -- the route's answer ----------------------------------------------------------------------------------------


@pytest.fixture()
def manager(job_manager: Callable[..., JobManager]) -> JobManager:
    """One training slot (a second run queues), threads of this process."""
    return job_manager(max_running=1)


def _long_job(mgr: JobManager, tiny_corpus: Corpus, owner: str) -> Job:
    config = TrainConfig(model="rnn", hidden=8, batch_size=4, num_steps=5, epochs=500, lr=0.01, optimizer="adam")
    return mgr.submit(owner, [Trainer(tiny_corpus, config)], ["rnn"])


def _token() -> str:
    return secrets.token_urlsafe(32)


def test_the_route_answers_only_the_browser_that_owns_the_run(manager: JobManager, tiny_corpus: Corpus) -> None:
    mine, other = _token(), _token()
    job = _long_job(manager, tiny_corpus, web.owner_of(mine))
    assert poll.answer(manager, job.id, None, 0.0)[0] == 403  # no identity cookie
    assert poll.answer(manager, job.id, "not-a-token", 0.0)[0] == 403
    assert poll.answer(manager, job.id, other, 0.0) == (404, {"error": "run"})  # another browser
    assert poll.answer(manager, "../" + job.id, mine, 0.0)[0] == 404
    assert poll.answer(None, job.id, mine, 0.0)[0] == 404  # no page has made the manager yet
    code, body = poll.answer(manager, job.id, mine, 0.0)
    assert code == 200 and set(body) == {"token", "next"}


def test_a_poll_touches_the_run_so_an_open_tab_keeps_it(manager: JobManager, tiny_corpus: Corpus) -> None:
    mine = _token()
    job = _long_job(manager, tiny_corpus, web.owner_of(mine))
    job.last_seen -= 1000  # nobody looked for a long time
    before = job.last_seen
    assert poll.answer(manager, job.id, mine, 0.0)[0] == 200
    assert job.last_seen > before + 900
    manager.retention.reap_after = 100.0
    assert job.id not in manager.reap()  # polled just now: not reaped


def test_an_idle_poll_builds_nothing_and_its_token_is_what_the_panel_drew(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = _token()
    job = _long_job(manager, tiny_corpus, web.owner_of(mine))
    assert wait_until(lambda: manager.view(job).epoch >= 1)
    job.pause()
    # The worker's own word that it paused (its status, a news event), not the click's: the page shows "paused" at
    # once, and the worker's word comes when it reaches the next minibatch; fifty quiet polls come after both.
    assert wait_until(lambda: job.status == "paused")
    view = manager.view(job)
    drawn = poll.news_token(view.version, view.queue_position)
    built: list[str] = []
    real_snapshot, real_view = Job.snapshot, JobManager.view
    monkeypatch.setattr(Job, "snapshot", lambda self, *a: built.append("snapshot") or real_snapshot(self, *a))
    monkeypatch.setattr(JobManager, "view", lambda self, j: built.append("view") or real_view(self, j))
    answers = [poll.answer(manager, job.id, mine, 0.0) for _ in range(50)]
    assert built == []  # fifty polls with nothing new: no snapshot, no view, nothing drawn
    assert all(a == (200, {"token": drawn, "next": poll.BASE_SECONDS["paused"]}) for a in answers)
    job.resume()  # news: the token moves on at once, and the tab asks at the running rate once the worker trains
    code, body = poll.answer(manager, job.id, mine, 0.0)
    assert code == 200 and body["token"] != drawn
    assert wait_until(lambda: poll.answer(manager, job.id, mine, 0.0)[1]["next"] == poll.BASE_SECONDS["running"])
    job.stop()
    assert wait_until(lambda: job.done)
    assert poll.answer(manager, job.id, mine, 0.0)[1]["next"] is None  # done: the tab stops asking


def test_the_route_asks_again_soon_until_the_runs_first_point(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's `next` is `FIRST_POINT_SECONDS` while the running run has no epoch, the running rate after."""
    mine = _token()
    job = _long_job(manager, tiny_corpus, web.owner_of(mine))
    assert wait_until(lambda: job.epochs_done() >= 1)
    assert poll.answer(manager, job.id, mine, 0.0)[1]["next"] == poll.BASE_SECONDS["running"]
    monkeypatch.setattr(Job, "epochs_done", lambda self, run=0: 0)  # as it was before its first epoch arrived
    assert poll.answer(manager, job.id, mine, 2.0)[1]["next"] == poll.FIRST_POINT_SECONDS
    job.stop()


def test_a_queued_run_gets_news_when_its_place_changes(manager: JobManager, tiny_corpus: Corpus) -> None:
    mine = _token()
    first = _long_job(manager, tiny_corpus, web.owner_of(mine))
    second = _long_job(manager, tiny_corpus, web.owner_of(mine))
    third = _long_job(manager, tiny_corpus, web.owner_of(mine))
    assert wait_until(lambda: manager.queue_position(third) == 2)
    code, body = poll.answer(manager, third.id, mine, 0.0)
    assert code == 200 and body["next"] == poll.BASE_SECONDS["queued"]
    version = third.version
    second.stop()  # a run ahead of it leaves the queue: its own version did not change, its place did
    assert wait_until(lambda: manager.queue_position(third) == 1)
    assert third.version == version
    assert poll.answer(manager, third.id, mine, 0.0)[1]["token"] != body["token"]
    first.stop()


def test_the_http_route_reads_the_identity_cookie(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.requests import Request

    mine = _token()
    job = _long_job(manager, tiny_corpus, web.owner_of(mine))
    monkeypatch.setattr(poll, "_manager", lambda: manager)

    def get(cookie: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = [(b"cookie", f"{web.COOKIE}={cookie}".encode())] if cookie else []
        scope = {"type": "http", "method": "GET", "path": poll.ROUTE, "query_string": f"job={job.id}".encode(),
                 "headers": headers}  # fmt: skip
        response = asyncio.run(poll.poll_endpoint(Request(scope)))
        return response.status_code, json.loads(response.body), dict(response.headers)

    code, body, headers = get(mine)
    assert code == 200 and body["token"] == poll.news_token(job.version, manager.queue_position(job))
    assert headers["cache-control"] == "no-store"
    assert get(None)[0] == 403 and get(_token())[0] == 404
    assert [r.path for r in poll.routes()] == [poll.ROUTE]


# -- the panel's component -------------------------------------------------------------------------------------


def _components(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(e.proto.json) for e in at.get("bidi_component")]


def test_the_live_panel_mounts_its_poll_component_with_the_token_it_drew(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="rnn")
    at.button(key="train:start").click().run()
    job = wait_for_job(at, PAGE)
    at.run()
    assert not at.exception
    view = session.manager().view(job)
    (data,) = _components(at)
    assert data["token"] == poll.news_token(view.version, view.queue_position)
    assert data["url"] == "" and data["first"] is None  # the run is over: nothing to ask


def test_a_students_run_answers_the_browser_they_joined_in(
    manager: JobManager, tiny_corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A student's runs are filed under the student ("s:<id>"), not the browser: the route asks the class store
    which student a browser joined as, so a signed-in tab polls its run instead of falling back to timers; a
    browser that did not join still gets a 404 for it."""
    from lab_ui import identity
    from lm_core.classroom.store import ClassStore

    store = ClassStore(tmp_path)
    monkeypatch.setattr(identity, "_class_store", lambda: (store, None))
    mine, other = _token(), _token()
    made = store.create_class("Class 3A")
    joined = store.join(made.code, "Ada", "2468", web.owner_of(mine), allow_new=True)
    job = _long_job(manager, tiny_corpus, joined.student.owner)
    assert poll.answer(manager, job.id, mine, 0.0)[0] == 200
    assert poll.answer(manager, job.id, other, 0.0)[0] == 404
