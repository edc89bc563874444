"""`lab_ui.session`: the owner id from the lab's identity cookie, and the entrypoint guard every page starts with."""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab_ui import identity, session, web

TOKEN = "A" * 43  # the shape of the token lab_ui.web issues (secrets.token_urlsafe(32))


def _fake_streamlit(monkeypatch: pytest.MonkeyPatch, cookies: dict[str, Any] | None) -> dict[str, Any]:
    """A plain dict for `st.session_state` and the given cookies for `st.context` (None: no request).

    No class store: a browser alone (the owner of a student who joined a class: tests/test_classes_ui.py).
    """
    state: dict[str, Any] = {}

    class _NoRequest:
        @property
        def cookies(self) -> dict[str, Any]:
            raise RuntimeError("no request context")

    context = _NoRequest() if cookies is None else SimpleNamespace(cookies=cookies)
    fake = SimpleNamespace(session_state=state, context=context, query_params={})
    monkeypatch.setattr(session, "st", fake)
    monkeypatch.setattr(identity, "st", fake)
    monkeypatch.setattr(identity, "class_store", lambda: None)
    return state


def test_owner_id_is_a_hash_of_the_labs_cookie_never_the_token_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _fake_streamlit(monkeypatch, {web.COOKIE: TOKEN})
    owner = session.owner_id()
    assert owner == hashlib.sha256(f"rnnlab-owner:{TOKEN}".encode()).hexdigest()[:16] == state["owner"]
    assert TOKEN not in owner
    _fake_streamlit(monkeypatch, {web.COOKIE: TOKEN, "_streamlit_xsrf": "2|00|11|1"})
    assert session.owner_id() == owner  # a new session of the same browser: the same owner
    _fake_streamlit(monkeypatch, {web.COOKIE: "B" * 43})
    assert session.owner_id() != owner


@pytest.mark.parametrize(
    "cookies",
    [
        None,  # no request context
        {},  # no cookie
        {"_streamlit_xsrf": "2|00|11|1"},  # Streamlit's own cookie is not an identity any more
        {web.COOKIE: "short"},  # not a token the lab issued
        {web.COOKIE: "A" * 42 + "!"},
    ],
)
def test_without_a_cookie_the_owner_is_random_but_kept_for_the_session(
    monkeypatch: pytest.MonkeyPatch, cookies: dict[str, Any] | None
) -> None:
    state = _fake_streamlit(monkeypatch, cookies)
    owner = session.owner_id()
    assert len(owner) == 16 and int(owner, 16) >= 0
    assert session.owner_id() == owner == state["owner"]
    other = _fake_streamlit(monkeypatch, cookies)
    assert session.owner_id() != owner  # another session draws its own
    assert other["owner"] != owner


def test_a_page_run_without_the_entrypoint_runs_the_entrypoint_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(session.runpy, "run_path", lambda path, **_: calls.append(f"run {Path(path).name}"))
    # No st.stop(): Streamlit would count the run as premature and skip its end-of-run bookkeeping.
    monkeypatch.setattr(session, "st", SimpleNamespace(stop=lambda: calls.append("stop")))
    assert session.entrypoint_ran_instead() is True
    assert calls == ["run streamlit_app.py"]
    calls.clear()
    with session.routed_by_entrypoint():
        assert session.entrypoint_ran_instead() is False
    assert calls == []
    assert session.entrypoint_ran_instead() is True  # the mark ends with the routed run
    assert calls == ["run streamlit_app.py"]


def _page_constant(path: Path) -> str:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PAGE":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no PAGE")


def test_the_entrypoint_names_each_page_by_its_own_page_key() -> None:
    """`st.session_state["page"]` (set by the entrypoint) must equal the `PAGE` the page keys its widgets with."""
    from apptest_helpers import entrypoint_pages

    pages = entrypoint_pages()
    assert sorted(pages.values()) == sorted(f"pages/{p.name}" for p in (REPO / "pages").glob("*.py"))
    for key, file in pages.items():
        assert _page_constant(REPO / file) == key, file


def test_every_page_starts_with_the_guard() -> None:
    for path in sorted((REPO / "pages").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert "    if session.entrypoint_ran_instead():\n        return" in source, path.name
        assert "session.init(" not in source, path.name


def test_a_deep_link_runs_the_page_once_through_the_entrypoint() -> None:
    """A first run straight to a page (Streamlit's legacy `pages/` mode): set up once, the page's key, one radio."""
    from apptest_helpers import _clean_runtime  # the same fresh job manager and cache as the page tests
    from streamlit.testing.v1 import AppTest

    with _clean_runtime():
        at = AppTest.from_file(str(session.ENTRYPOINT), default_timeout=60)
        at.query_params["lang"] = "en"
        at.switch_page("pages/hidden_states.py").run()
        assert not at.exception
        assert at.session_state["page"] == "hidden"  # the page's own PAGE, not its URL path
        assert at.session_state["lang"] == "en"
        assert [r.key for r in at.sidebar.radio].count("_lang_widget") == 1
        assert len(at.title) == 1  # drawn once, not once per route


@pytest.mark.parametrize("lang", ["zh-Hant", "en"])
def test_the_language_of_a_link_is_kept_across_pages(lang: str) -> None:
    """`?lang=zh-Hant` (like `en`) opens the page in it, the switch shows it chosen, and the next page keeps it."""
    from apptest_helpers import _clean_runtime
    from streamlit.testing.v1 import AppTest

    from lm_core.messages import text

    with _clean_runtime():
        at = AppTest.from_file(str(session.ENTRYPOINT), default_timeout=60)
        at.query_params["lang"] = lang
        at.switch_page("pages/clipping.py").run()
        assert not at.exception
        switch = at.sidebar.radio(key="_lang_widget")
        assert switch.value == lang and list(switch.options) == ["中文", "English", "繁體中文"]
        assert at.title[0].value == text("clipping.title", lang)
        at.switch_page("pages/generalise.py").run()
        assert not at.exception
        assert at.session_state["lang"] == lang and at.query_params["lang"] in (lang, [lang])
        assert at.title[0].value == text("generalise.title", lang)


def test_switching_to_traditional_chinese_relabels_the_page() -> None:
    from apptest_helpers import _clean_runtime
    from streamlit.testing.v1 import AppTest

    with _clean_runtime():
        at = AppTest.from_file(str(session.ENTRYPOINT), default_timeout=60).run()
        assert at.title[0].value == "训练一个字符级循环神经网络"
        at.sidebar.radio(key="_lang_widget").set_value("zh-Hant").run()
        assert not at.exception
        assert at.title[0].value == "訓練一個字元層級循環神經網路"
        assert at.query_params["lang"] in ("zh-Hant", ["zh-Hant"])


def test_clearing_streamlit_caches_keeps_the_job_manager_its_store_and_running_jobs(tiny_corpus: Any) -> None:
    """What a `clear_cache` message does on the server (and a developer's "Clear cache"): empty every
    `st.cache_resource`. The job manager (and the boards and class store beside it) is not in one, so the running job stays listed, controllable and
    saved, and the run store keeps its lock instead of a second store being refused it."""
    import streamlit as st

    from lab_ui import board_ui, identity
    from lm_core.training import TrainConfig, Trainer

    session.shutdown_manager()
    try:
        mgr = session.manager()
        assert mgr.store is not None and mgr.store_error is None
        config = TrainConfig(model="rnn", hidden=16, batch_size=4, num_steps=5, epochs=500)
        job = mgr.submit("alice", [Trainer(tiny_corpus, config)], ["rnn"], kind="train")
        boards_before, classes_before = board_ui.boards(), identity._class_store()
        st.cache_resource.clear()
        st.cache_data.clear()
        again = session.manager()
        assert again is mgr
        assert board_ui.boards() is boards_before and identity._class_store() is classes_before
        assert again.get(job.id, "alice") is job and not job.done
        assert again.store is mgr.store and again.store_error is None and not again.store.problem
        job.stop()
        job.thread.join(60)
        assert again.view(job).status == "stopped"
    finally:
        session.shutdown_manager()


def test_a_moved_aside_database_is_told_to_the_log_not_to_visitors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt run database is moved aside under a file name of the operator's folder: a fact for the operator
    (the server's log), never a notice on every visitor's page."""
    import logging

    from apptest_helpers import english_page

    folder = tmp_path / "lab-data"
    folder.mkdir()
    (folder / "runs.sqlite").write_bytes(b"not a database, " * 100)
    monkeypatch.setenv("RNN_LAB_DATA", str(folder))
    with caplog.at_level(logging.WARNING, logger="lab_ui.session"), english_page("pages/train.py") as at:
        assert not at.exception
        shown = " ".join(e.value for kind in (at.info, at.warning) for e in kind if isinstance(e.value, str))
        assert "moved aside" not in shown and "corrupt-" not in shown, shown
    assert list(folder.glob("runs.sqlite.corrupt-*")), "the database was not moved aside: nothing was tested"
    assert any("moved aside" in r.getMessage() and "corrupt-" in r.getMessage() for r in caplog.records)
