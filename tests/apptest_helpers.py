"""Shared pieces for the page tests that drive the app with Streamlit's AppTest.

A plain module (not conftest.py): test modules import it and wrap `app_page`
in their own fixture. Every test gets a fresh `st.cache_resource` (so a fresh
job manager) and, whatever happens, the manager is shut down afterwards so no
training thread outlives the test.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab_ui import jobs_ui, session, settings
from lm_core.serve.job import Job
from lm_core.serve.manager import BACKEND_ENV

TIMEOUT = 60  # seconds per script run; a loaded 2-core machine can be slow to import torch

# The smallest settings that still train both runs for real: with the first TINY_CHARS characters of the
# default corpus an epoch is 37 minibatches, well under a second for both runs even on a busy machine.
TINY = {"hidden": 16, "epochs": 2, "batch_size": 8, "num_steps": 10}
TINY_CHARS = 3000


@contextmanager
def app_page(page: str, backend: str = "thread", lang: str = "zh") -> Iterator[AppTest]:
    """The app switched to `page` (e.g. "pages/sampling.py"), torn down cleanly afterwards.

    Runs train in threads of the test process by default, so tests can watch
    and patch them; `backend="process"` uses the app's default worker processes.

    In Chinese, the default: AppTest calls a selectbox's `format_func` again in
    the test's own thread, where there is no session and `current_lang()` falls
    back to Chinese, so in another language the options would not match their
    labels when a test sets them (reading them is fine). Another `lang` is
    chosen with the sidebar's language switch before the page is opened.
    """
    with _clean_runtime(backend):
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.run()
        if lang != "zh":
            at.radio(key="_lang_widget").set_value(lang)
        at.switch_page(page).run()
        yield at


@contextmanager
def english_page(page: str) -> Iterator[AppTest]:
    """`page` opened by a deep link with `?lang=en`, one run: enough to read its English text (see `app_page`).

    Before the first run AppTest names the page by its file name, which is its
    URL path too, so the entrypoint routes straight to it.
    """
    with _clean_runtime():
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.query_params["lang"] = "en"
        yield at.switch_page(page).run()


@contextmanager
def _clean_runtime(backend: str = "thread") -> Iterator[None]:
    """A fresh job manager and cached resources; afterwards every training thread stopped and joined."""
    session.shutdown_manager()
    st.cache_resource.clear()
    before = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = backend
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = before
        session.shutdown_manager()
        st.cache_resource.clear()


def use_tiny_settings(at: AppTest, page: str, **overrides: Any) -> None:
    """A short corpus and `TINY` settings (plus `overrides`), ready to press Train."""
    at.number_input(key="corpus:max_chars").set_value(TINY_CHARS).run()
    set_settings(at, page, {**TINY, **overrides})


def set_settings(at: AppTest, page: str, values: dict[str, Any]) -> None:
    """Set setting widgets by their keys (see `lab_ui.settings.widget_key`) and rerun after each."""
    for name, value in values.items():
        setting_widget(at, page, name).set_value(value).run()


SETTING_KINDS = ("select_slider", "slider", "selectbox", "radio", "toggle", "number_input")  # settings.Field.widget


def setting_widget(at: AppTest, page: str, name: str) -> Any:
    """The widget of setting `name` on `page` (key: `lab_ui.settings.widget_key`), of any kind."""
    key = settings.widget_key(page, name)
    found = [w for kind in SETTING_KINDS for w in at.get(kind) if w.key == key]
    assert len(found) == 1, f"expected one widget {key!r}, found {len(found)}"
    return found[0]


def setting_values(at: AppTest, page: str, names: Sequence[str]) -> dict[str, Any]:
    """What the setting widgets `names` on `page` show, by name."""
    return {name: setting_widget(at, page, name).value for name in names}


def start_tiny_job(at: AppTest, page: str, **overrides: Any) -> Job:
    """`TINY` settings (plus `overrides`), the page's Train button pressed, and its job once it has finished.

    The page is not rerun afterwards: a test that wants the finished run drawn calls `at.run()`.
    """
    use_tiny_settings(at, page, **overrides)
    at.button(key=f"{page}:start").click().run()
    assert not at.exception, at.exception
    return wait_for_job(at, page)


def wait_for_job(at: AppTest, page: str, timeout: float = 60.0) -> Job:
    """The page's job, after its worker thread has finished."""
    job = session.manager().get(at.session_state[jobs_ui.job_key(page)], at.session_state["owner"])
    assert job is not None, "the page did not start a job"
    assert job.thread is not None
    job.thread.join(timeout)
    assert not job.thread.is_alive(), f"training did not finish within {timeout} s"
    return job


def shows_options(widget: Any, options: Sequence[Any]) -> bool:
    """Whether a selectbox or select slider offers exactly `options`, in order, each labelled by its format_func.

    A check that a control exists says nothing; this one fails when a picker loses, gains or reorders a choice.
    """
    return widget.options == [str(widget.format_func(o)) for o in options]


def plotly_specs(at: AppTest) -> list[dict[str, Any]]:
    """The figure JSON of every Plotly chart on the page (AppTest knows them only as unknown elements)."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def trace_names(spec: dict[str, Any]) -> list[str]:
    return [tr.get("name", "") for tr in spec.get("data", [])]


def chart_titled(at: AppTest, title: str) -> dict[str, Any]:
    """The one chart whose title contains `title`."""
    found = [s for s in plotly_specs(at) if title in _title(s)]
    assert len(found) == 1, f"expected one chart titled {title!r}, got {[_title(s) for s in plotly_specs(at)]}"
    return found[0]


def _title(spec: dict[str, Any]) -> str:
    title = spec.get("layout", {}).get("title", "")
    return title.get("text", "") if isinstance(title, dict) else str(title)


def shown(markdown: str) -> str:
    """What a reader sees of Markdown source: backslash escapes removed (the app escapes every outside string)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def all_text(at: AppTest) -> str:
    """Every message a reader sees in the main area: errors, warnings, infos, successes, markdown, captions."""
    elements = (*at.error, *at.warning, *at.info, *at.success, *at.markdown, *at.caption)
    return "\n".join(shown(str(el.value)) for el in elements)


def entrypoint_pages() -> dict[str, str]:
    """The entrypoint's `PAGES`: page key -> page file, read from its source (running it needs Streamlit)."""
    tree = ast.parse(session.ENTRYPOINT.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PAGES":
            assert isinstance(node.value, ast.Dict)
            return {
                ast.literal_eval(key): ast.literal_eval(call.args[0])
                for key, call in zip(node.value.keys, node.value.values, strict=True)
                if key is not None and isinstance(call, ast.Call)
            }
    raise AssertionError("the entrypoint has no PAGES")
