"""What the entrypoint sets up for every page: language, owner id, job manager.

`init()` runs once per script run, from the entrypoint, before the chosen
page. Every page's `main()` starts with `if session.entrypoint_ran_instead():
return`, so a page never draws without it (a deep link on a fresh server
would, see that function's docstring).
"""

from __future__ import annotations

import logging
import os
import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from lm_core.errors import LabError, localized
from lm_core.serve import ray_cluster
from lm_core.serve.manager import BACKEND_ENV, BACKENDS, JobManager
from lm_core.serve.store import RunStore, StoreError
from lm_core.serve.warmup import warm_up_in_background

from . import class_ui, identity, process_state
from .i18n import DEFAULT_LANG, LANG_NAMES, LANGS, current_lang, t

WORKERS_ENV = "RNN_LAB_WORKERS"
# Worker processes are the default: they keep training off the server's interpreter, so pages stay
# responsive and each run gets a core. A warm spare worker (torch imported and exercised) draws a run's first
# point in about the time of one epoch.
DEFAULT_BACKEND = "process"
RAY_MAX_RUNNING = 256  # with Ray the cluster queues actors for free CPUs; this only bounds one server's drivers
log = logging.getLogger(__name__)


FEW_CORES = 4  # on a machine with at most this many cores the web process keeps a core's share for itself


def default_workers(cores: int) -> int:
    """Runs that train at once when `RNN_LAB_WORKERS` is not set: one per core (one torch thread each), but one
    core fewer on a machine with few cores, at least one.

    Why: the web process draws every page, answers every click and poll; with a worker on every core it has
    only what the workers' lower priority leaves it (they run niced, see `lm_core.serve.niceness`). On many
    cores one worker more or less changes little; on 2 cores a class of 40 needs the web process to have a
    core's share when it needs it (see the README's serving section for the arithmetic).
    """
    cores = max(1, cores)
    return max(1, cores - 1) if cores <= FEW_CORES else cores


def _workers() -> int:
    """Runs that train at once: `RNN_LAB_WORKERS` (1..256), else `default_workers`."""
    try:
        value = int(os.environ.get(WORKERS_ENV, ""))
    except ValueError:
        value = 0
    return max(1, min(value, 256)) if value > 0 else default_workers(os.cpu_count() or 1)


MAX_RUNNING_JOBS = _workers()


# The job manager is the server's, not a cache's: `st.cache_resource` is emptied by any `clear_cache` message
# (or a developer's "Clear cache"), which would orphan every running job and leave the old run store holding its
# lock. So it is a plain module global, built once under a lock; only `shutdown_manager` lets it go.
_manager: JobManager | None = None
_manager_lock = threading.Lock()


def manager() -> JobManager:
    """One job manager for the whole server process (shared by all sessions), with the run store.

    A data folder that cannot be used (another server holds it, no permission)
    leaves the app working without persistence and says why on every page.
    """
    global _manager
    current = _manager
    if current is not None:
        return current
    with _manager_lock:
        if _manager is None:
            _manager = _start_manager()
        return _manager


def shutdown_manager(timeout: float = 10.0) -> None:
    """Stop the server's job manager and forget it (tests, or a server that stops); the next `manager()` builds anew."""
    global _manager
    with _manager_lock:
        current, _manager = _manager, None
    process_state.reset()  # the boards and the class store sit on the manager's data folder: they go with it
    if current is not None:
        current.shutdown(timeout)


def _start_manager() -> JobManager:
    backend = os.environ.get(BACKEND_ENV, DEFAULT_BACKEND).strip() or DEFAULT_BACKEND
    backend = backend if backend in BACKENDS and backend != "ray" else DEFAULT_BACKEND
    ray_error, ray_cpus = choose_ray()
    if ray_cpus:
        backend = "ray"
    store, error = None, None
    try:
        # Servers on one Ray cluster share the data folder; a local backend keeps it to itself.
        store = RunStore(exclusive=backend != "ray", shared=backend == "ray")
    except StoreError as exc:
        error = exc
    if store is not None and store.notice:  # an operator's fact (a file name in their folder): the log, not visitors
        log.warning("Data folder %s: %s", store.folder, store.notice)
    mgr = JobManager(
        max_running=RAY_MAX_RUNNING if backend == "ray" else MAX_RUNNING_JOBS, store=store, backend=backend
    )
    mgr.store_error = error
    mgr.ray_error = ray_error
    mgr.ray_cpus = ray_cpus
    warm_up_in_background()  # the first Train click builds its model and optimiser in this process
    return mgr


def current_manager() -> JobManager | None:
    """The server's job manager for the lab's HTTP routes (`lab_ui.poll`), which run outside any script run and
    must not build one on the event loop: None until a page made it."""
    return _manager


def choose_ray() -> tuple[LabError | None, int]:
    """Join the Ray cluster named by `RNN_LAB_RAY_ADDRESS`: (why not, cluster CPUs); (None, 0) when unset.

    Ray is imported only when the variable is set. Any failure (Ray missing, cluster unreachable) is
    logged and returned for the sidebar; the caller then trains locally.
    """
    address = ray_cluster.configured_address()
    if not address:
        return None, 0
    try:
        ray_cluster.connect(address)
        cpus = ray_cluster.cluster_cpus()
    except LabError as exc:
        log.warning("Ray backend off, training locally: %s", exc)
        return exc, 0
    except Exception as exc:  # noqa: BLE001 -- whatever Ray raises, the app starts on the local backend
        log.warning("Ray backend off, training locally: %s: %s", type(exc).__name__, exc)
        return LabError("error.ray.failed", kind=type(exc).__name__, error=str(exc)), 0
    if cpus < 1:
        error = LabError("error.ray.no_cpus")
        log.warning("Ray backend off, training locally: %s", error)
        return error, 0
    log.info("Runs train on the Ray cluster at %s (%d CPUs)", address, cpus)
    return None, cpus


def store_status_ui() -> None:
    """Whether runs are being saved, in the sidebar; the data folder's path is never shown."""
    mgr = manager()
    error = mgr.store_error
    with st.sidebar:
        ray_error = mgr.ray_error
        if ray_error is not None:
            st.warning(t.md("session.ray_off", msg=localized(ray_error, current_lang())))
        elif mgr.ray_cpus:
            st.caption(t("session.ray_on", cpus=mgr.ray_cpus))
        if error is not None:
            st.warning(t("session.store_off", msg=localized(error, current_lang())))
        elif mgr.store is not None and mgr.store.problem:
            st.warning(t("session.store_problem", msg=mgr.store.problem))


def owner_id() -> str:
    """Who owns the runs started from this browser: the one owner concept of the lab (see `lab_ui.identity`).

    A browser alone: the hash of the lab's identity cookie (HttpOnly and lasting, `lab_ui.web`), so a reload,
    a new tab or a browser restart finds the same runs, while another browser, even with the same URL (job id
    included), never sees them; the token itself is never stored. A student who joined a class in this
    browser: the student's owner id, the same in every browser where they joined. A client without a valid
    cookie (AppTest, a raw websocket client) gets a random owner for this session only.
    """
    if identity.OWNER_KEY not in st.session_state:
        identity.refresh()
    return st.session_state[identity.OWNER_KEY]


def _on_lang_change() -> None:
    st.session_state["lang"] = st.session_state["_lang_widget"]
    st.query_params["lang"] = st.session_state["lang"]
    _push_widget_values()


def _push_widget_values() -> None:
    """Send every widget's value to the browser again, so it is shown under the new language's labels.

    The browser keeps a selectbox's or radio's choice as the *label* it showed: once `format_func`
    returns another language, no new label matches, so a selectbox went on showing the old label and a
    radio showed nothing selected (the server still held the right value). Assigning a value through
    `st.session_state` is Streamlit's public way to make the browser adopt it, labels included.
    Only option values are pushed (text, numbers, tuples): a button's or a checkbox's value is a bool and
    an uploader's a file or None, and a button's key may not be assigned at all (Streamlit refuses it
    later, when the button is drawn).
    """
    for key in list(st.session_state.keys()):
        value = st.session_state[key]
        if key == "_lang_widget" or isinstance(value, bool) or not isinstance(value, str | int | float | tuple):
            continue
        try:
            st.session_state[key] = value
        except StreamlitAPIException:
            pass


def init() -> None:
    """Language (URL `lang`), who this browser is (owner, class, teacher), the language radio, the class box and
    the store status: once per run, by the entrypoint."""
    if "lang" not in st.session_state:
        lang = st.query_params.get("lang", "")
        st.session_state["lang"] = lang if lang in LANGS else current_lang()
    identity.refresh()  # who this browser is now: joined, left or unlocked in another tab since the last run
    names = {code: t(LANG_NAMES[code]) for code in LANGS}  # bound now: AppTest formats options outside a run
    with st.sidebar:
        st.session_state["_lang_widget"] = st.session_state["lang"]
        st.radio(
            t("common.lang_label"),
            LANGS,
            format_func=names.get,
            key="_lang_widget",
            horizontal=True,
            on_change=_on_lang_change,
        )
    if st.session_state["lang"] != DEFAULT_LANG or "lang" in st.query_params:
        st.query_params["lang"] = st.session_state["lang"]
    class_ui.class_box()
    store_status_ui()


# Set while the entrypoint runs the page it routed to (see `entrypoint_ran_instead`).
_ROUTED: ContextVar[bool] = ContextVar("routed_by_entrypoint", default=False)
ENTRYPOINT = Path(__file__).resolve().parents[1] / "streamlit_app.py"


@contextmanager
def routed_by_entrypoint() -> Iterator[None]:
    """The entrypoint runs the chosen page inside this, so the page's `entrypoint_ran_instead` lets it draw."""
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def entrypoint_ran_instead() -> bool:
    """First line of every page's `main()`: True when this run came without the entrypoint, which then ran instead.

    Why: the pages live in `pages/`, which Streamlit also reads as its legacy
    auto-discovered folder. In Streamlit 1.67, `PagesManager.__init__` sets the
    class-wide `uses_pages_directory` from the mere existence of `pages/`
    (streamlit/runtime/pages_manager.py, lines 60-63), and while it is set the
    script runner calls `_mpa_v1` instead of running the entrypoint
    (streamlit/runtime/scriptrunner/script_runner.py, `_mpa_v1` at line 144,
    called at lines 933-934): a deep link such as /clipping on a fresh server
    runs pages/clipping.py alone, with a sidebar of raw file names and no
    session set-up. Only `st.navigation` clears the flag
    (streamlit/commands/navigation.py, line 399; documented as "as soon as any
    session executes st.navigation, the app ignores the pages/ directory"), and
    no config option turns legacy mode off (`client.showSidebarNavigation` only
    hides the menu). A served app clears the flag before its first session
    (`streamlit_app._leave_legacy_pages_mode`), so under `streamlit run` this
    stays a second line; AppTest resets the flag before every run
    (streamlit/testing/v1/app_test.py, line 666), so in tests every page run
    after `switch_page` comes this way.

    So, with public API only: the entrypoint marks the run of the page it
    chose (`routed_by_entrypoint`); a page that finds no mark runs the
    entrypoint in its place, whose `st.navigation` leaves legacy mode for the
    whole server and runs this same page (URL and widget events intact, no
    rerun); the outer page then returns without drawing, so nothing is drawn
    twice. It returns rather than calling `st.stop()`: a stopped run counts as
    premature to Streamlit, which then skips its end-of-run bookkeeping
    (button triggers reset, widgets no longer drawn dropped).
    """
    if _ROUTED.get():
        return False
    runpy.run_path(str(ENTRYPOINT), run_name="__main__")  # as Streamlit runs it: the script, not the ASGI app
    return True
