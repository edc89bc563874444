"""A live panel that is redrawn only when its run has news: a tiny component asks an HTTP route, not the script.

Why: a `run_every` fragment reruns the page's panel on a timer whether or not anything changed, and every such
rerun is a script run in the web process: progress, buttons, chart, samples and the per-epoch table rebuilt and
sent again (a run's epoch comes every few seconds; the timer fired twice a second). With a class of 40 tabs that
was 80 script runs a second holding the interpreter, pages and clicks waited a minute, and most redraws were
dropped unsent because the next one had already started. A fragment run that draws nothing is no way out:
Streamlit then blanks the panel.

How: the panel (`jobs_ui.live_ui`, a fragment without a timer) mounts `poll_element` first. Its JavaScript asks
`GET /_lab/poll?job=<id>` (`poll_endpoint`: on the server's event loop, no script run, a few dictionary
lookups) when the answer says to; the route checks that the browser's identity cookie owns the job, touches it
(an open tab's run is never reaped), and answers the run's `token` (what the panel would draw differently:
the job's version and queue place) and `next`, the seconds until the next question, from `poll_interval`:
slow while queued or paused, none once the run is over, slower when the web process is busy. Only when the
token differs from the one the panel drew does the component set its "news" trigger, which reruns this
fragment alone. A browser the route refuses (no identity cookie: cookies off) redraws on a timer instead.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import web

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from lm_core.serve.job import Job
    from lm_core.serve.manager import JobManager
    from lm_core.serve.views import JobView

ROUTE = "/_lab/poll"
COMPONENT = "rnnlab_poll"  # tests/st_client.py plays this component's part for the load benchmark
JOB_ID = re.compile(r"[0-9a-f]{12}")  # what `lm_core.serve.job.Job` ids look like: anything else is not looked up
# Seconds between two questions, by the run's state, while the web process is not busy.
BASE_SECONDS = {"running": 0.5, "paused": 2.0, "queued": 3.0}  # queued: its place changes only when a run ends
OTHER_SECONDS = 1.0  # a state not listed (a run just starting)
WEB_CORES_AT_EASE = 0.25  # above this the web process is busy: everyone asks proportionally less often
MAX_SLOWDOWN = 4.0  # ... but at most this much less often (a running run's news at most 2 s late)
# A run that has not drawn its first point yet: its student is watching an empty chart, so the tab asks this
# often whatever the load (a poll that finds nothing costs microseconds of the event loop, and only until then).
FIRST_POINT_SECONDS = 0.25
NO_STORE = {"Cache-Control": "no-store"}


def poll_interval(
    status: str, web_cores: float, first_point_pending: bool = False, queue_position: int = 0
) -> float | None:
    """Seconds until a tab asks about its run again; None: never (the run is over, nothing will change).

    `web_cores`: how much CPU the web process used lately (`CpuGauge`). Above `WEB_CORES_AT_EASE` the
    interval grows in proportion, up to `MAX_SLOWDOWN` times: a busy server gets fewer questions.
    `first_point_pending`: the run has no epoch yet. Its first point came 3.1-4.6 s after Train under load,
    seconds of it the tab waiting to ask: a run just submitted is "queued" until its thread takes a slot, and
    a queued run's tab asked after 3 s (up to 12 s on a busy server). Until the first point it asks every
    `FIRST_POINT_SECONDS`, unless it waits behind other runs (`queue_position` > 0) or is paused.
    """
    from lm_core.serve.views import DONE_STATUSES  # here: the app imports this module before torch, for its route

    if status in DONE_STATUSES:
        return None
    if first_point_pending and status != "paused" and not (status == "queued" and queue_position > 0):
        return FIRST_POINT_SECONDS
    slowdown = min(MAX_SLOWDOWN, max(1.0, web_cores / WEB_CORES_AT_EASE))
    return round(BASE_SECONDS.get(status, OTHER_SECONDS) * slowdown, 2)


def news_token(version: int, queue_position: int) -> str:
    """What a panel drew, in one string: a new epoch, status or click changes the version; a run that ended
    ahead in the queue changes the place."""
    return f"{version}.{queue_position}"


class CpuGauge:
    """CPU cores this process used over the last `window` seconds (every thread: pages, polls, drivers).

    Measured lazily, when asked, from `time.process_time`; a poll asks it, so an idle server measures nothing.
    """

    def __init__(
        self,
        window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.window, self._clock, self._cpu = window, clock, cpu
        self._lock = threading.Lock()
        self._at, self._used = clock(), cpu()
        self._cores = 0.0

    def cores(self) -> float:
        with self._lock:
            now, used = self._clock(), self._cpu()
            if now - self._at >= self.window:
                self._cores = (used - self._used) / (now - self._at)
                self._at, self._used = now, used
            return self._cores


GAUGE = CpuGauge()


def job_status(job: Job) -> str:
    """The state a page shows, without a snapshot: a running job whose control is paused is "paused"."""
    status = job.status
    return "paused" if status == "running" and job.control.paused else status


def answer(manager: JobManager | None, job_id: str, token: str | None, web_cores: float) -> tuple[int, dict]:
    """The route's answer as (HTTP status, JSON body): 403 without a valid identity cookie, 404 for a job
    this browser does not own (or that is gone), else the run's news token and when to ask next."""
    if not web.valid_token(token):
        return 403, {"error": "identity"}
    owner = _owner(web.owner_of(token))
    job = manager.get(job_id, owner) if manager is not None and JOB_ID.fullmatch(job_id) else None
    if job is None:  # `get` checks the owner, and touches the job: an open tab keeps its run from being reaped
        return 404, {"error": "run"}
    status, place = job_status(job), manager.queue_position(job)
    return 200, {
        "token": news_token(job.version, place),
        "next": poll_interval(status, web_cores, job.epochs_done() == 0, place),
    }


def _owner(browser: str) -> str:
    """A student's runs are filed under the student, not the browser (`lab_ui.identity`)."""
    from . import identity  # like `session`: imported by the first page run, never first here

    return identity.owner_of_browser(browser)


def _manager() -> JobManager | None:
    from . import session  # imported by the first page run long before a tab polls; never imported here first

    return session.current_manager()


async def poll_endpoint(request: Request) -> Response:
    """GET /_lab/poll?job=<id>: see `answer`. Runs on the event loop: no thread, no script run."""
    from starlette.responses import JSONResponse

    code, body = answer(_manager(), request.query_params.get("job", ""), request.cookies.get(web.COOKIE), GAUGE.cores())
    return JSONResponse(body, status_code=code, headers=NO_STORE)


def routes() -> list[BaseRoute]:
    """The HTTP routes the lab adds to Streamlit's app (`streamlit_app.py` passes them to `App`)."""
    from starlette.routing import Route

    return [Route(ROUTE, poll_endpoint, methods=["GET"])]


# -- the component ------------------------------------------------------------------------------------------

# The component's code and style live beside this module (lab_ui/poll.js, lab_ui/poll.css) and are passed
# inline: Streamlit serves files only for components of an installed package.
ASSETS = Path(__file__).resolve().parent
KEY_SUFFIX = "rnnlab-poll"  # poll.css hides the containers of elements whose key ends so


@cache
def _component() -> Callable[..., Any]:
    import streamlit as st

    js = (ASSETS / "poll.js").read_text(encoding="utf-8")
    css = (ASSETS / "poll.css").read_text(encoding="utf-8")
    return st.components.v2.component(COMPONENT, js=js, css=css, isolate_styles=False)


def element_key(name: str) -> str:
    return f"{name}-{KEY_SUFFIX}"


def poll_element(name: str, job: Job, token: str, status: str, queue_position: int = 0) -> None:
    """The poll component of a panel showing `job` as drawn at `token` with `status`, named `name` on its page.

    Put it first in its fragment: it draws nothing, and its place must not depend on the run's state.
    """
    every = poll_interval(status, GAUGE.cores(), job.epochs_done() == 0, queue_position)
    data = {
        "url": f"{ROUTE}?job={job.id}" if every is not None else "",
        "token": token,
        "first": every,
        "every": max(1.0, every or 0.0),  # the fallback's redraws: never faster than once a second
    }
    _component()(key=element_key(name), data=data, on_news_change=_no_callback)


def view_poll_element(name: str, job: Job, view: JobView) -> None:
    """`poll_element` for a panel that drew `view`."""
    poll_element(name, job, news_token(view.version, view.queue_position), view.status, view.queue_position)


def job_poll_element(name: str, job: Job, manager: JobManager) -> None:
    """`poll_element` for a panel that reads `job` directly (no snapshot)."""
    place = manager.queue_position(job)
    poll_element(name, job, news_token(job.version, place), job_status(job), place)


def _no_callback() -> None:
    """The trigger's rerun is the point; nothing to do before it."""
