"""Issue 7 through the pages (AppTest): what a hostile visitor can reach with crafted URLs and files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apptest_helpers import all_text, app_page
from streamlit.testing.v1 import AppTest

from lab_ui import corpus_ui


@pytest.fixture()
def at() -> Iterator[AppTest]:
    with app_page("pages/train.py") as app:
        yield app


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(str(el.value) for el in (*at.sidebar.error, *at.sidebar.warning, *at.sidebar.info))


# -- 1: no visitor names a server path ------------------------------------------------------------------


def test_book_source_has_no_path_box_and_never_shows_a_server_file(
    at: AppTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Even an operator's misconfigured path that is not the book is neither read out nor named."""
    monkeypatch.setattr(corpus_ui, "OPERATOR_BOOK_PATH", "/etc/passwd")
    monkeypatch.setattr(corpus_ui, "DATA_DIR", tmp_path)
    at.selectbox(key="corpus:source").set_value("book").run()
    assert not at.exception
    assert not at.sidebar.text_input, "a visitor must not be able to type a server path"
    shown = all_text(at) + _sidebar_text(at) + "\n".join(str(x.value) for x in at.text)
    assert "root:" not in shown and "/etc/passwd" not in shown
    assert "jaychou_lyrics" in all_text(at).replace("\\", "")  # says what to upload instead (escaped)


def test_book_source_uses_the_operators_file_when_it_is_the_book(
    at: AppTest, monkeypatch: pytest.MonkeyPatch, book_zip: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(corpus_ui, "OPERATOR_BOOK_PATH", str(book_zip))
    monkeypatch.setattr(corpus_ui, "DATA_DIR", tmp_path)
    at.selectbox(key="corpus:source").set_value("book").run()
    assert not at.exception
    assert corpus_ui.t.strings["recognised_book"][0] in all_text(at)
    assert str(book_zip.parent) not in all_text(at)
