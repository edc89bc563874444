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

from lab_ui import session, web

TOKEN = "A" * 43  # the shape of the token lab_ui.web issues (secrets.token_urlsafe(32))


def _fake_streamlit(monkeypatch: pytest.MonkeyPatch, cookies: dict[str, Any] | None) -> dict[str, Any]:
    """A plain dict for `st.session_state` and the given cookies for `st.context` (None: no request)."""
    state: dict[str, Any] = {}

    class _NoRequest:
        @property
        def cookies(self) -> dict[str, Any]:
            raise RuntimeError("no request context")

    context = _NoRequest() if cookies is None else SimpleNamespace(cookies=cookies)
    monkeypatch.setattr(session, "st", SimpleNamespace(session_state=state, context=context))
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


def _entrypoint_pages() -> dict[str, str]:
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


def _page_constant(path: Path) -> str:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PAGE":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no PAGE")


def test_the_entrypoint_names_each_page_by_its_own_page_key() -> None:
    """`st.session_state["page"]` (set by the entrypoint) must equal the `PAGE` the page keys its widgets with."""
    pages = _entrypoint_pages()
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
