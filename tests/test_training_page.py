"""The frame the training pages share (`lab_ui.training_page`), drawn for a made-up page.

The page tests check each real page through it; these check the frame's own
promises with a page that has none of their particulars: the page's texts
where they belong, the Book button restoring only the page's fields, Train off
with the page's reason, a button beside Train, and a refused start said in words.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import apptest_helpers as h
import pytest
from streamlit.testing.v1 import AppTest

from lab_ui.settings import widget_key
from lm_core.messages import text

PAGE = "demo"


def zh(key: str) -> str:
    return text(key, "zh")


# The fields the start section needs (batch and steps: the corpus summary), and a default not among them.
FIELDS = ("hidden", "epochs", "batch_size", "num_steps")


def _script(plan_kw: dict, page_kw: dict) -> None:
    """The AppTest script: a page drawn only by the scaffold; Train and the button beside it count their clicks.

    Its words are the Train page's (any catalogue keys would do).

    Run as a script of its own (no `from __future__` there), so its annotations name only what it imports.
    """
    import streamlit as st

    from lab_ui import training_page
    from lm_core.errors import LabError

    def start() -> None:
        st.session_state["started"] = st.session_state.get("started", 0) + 1
        if plan_kw.get("fail"):
            raise LabError("error.bptt.empty_text")  # any catalogue sentence

    def beside() -> object:
        if not st.button("Other", key="demo:other"):
            return None
        return lambda: st.session_state.__setitem__("other", st.session_state.get("other", 0) + 1)

    texts = training_page.PageTexts("train.title", "train.intro", "train.book_preset_help", "train.no_job")
    page = training_page.TrainingPage(
        "demo",
        ("hidden", "epochs", "batch_size", "num_steps"),
        {"hidden": 256, "epochs": 30, "batch_size": 32, "num_steps": 35, "compare": "none"},
        texts,
        **page_kw,
    )

    def plan(values: dict, choice: object) -> training_page.StartPlan:
        st.session_state["plan_saw"] = (values["epochs"], choice.corpus is not None)
        return training_page.StartPlan(
            start,
            blocked=plan_kw.get("blocked", ""),
            beside=beside if plan_kw.get("beside") else None,
            replace_note=plan_kw.get("replace_note", False),
        )

    training_page.training_page_ui(
        page, plan, lambda job, view: None, under_settings=lambda values: st.caption(f"under {values['hidden']}")
    )


@pytest.fixture
def demo() -> Iterator[Any]:
    """`demo(plan_kw, page_kw)`: the made-up page, run once."""
    with h._clean_runtime():

        def run(plan_kw: dict[str, Any] | None = None, page_kw: dict[str, Any] | None = None) -> AppTest:
            at = AppTest.from_function(_script, default_timeout=h.TIMEOUT, args=(plan_kw or {}, page_kw or {}))
            return at.run()

        yield run


def test_frame_shows_the_page_texts_and_shared_parts(demo: Any) -> None:
    at = demo()
    assert not at.exception
    assert at.title[0].value == zh("train.title")
    assert at.caption[0].value == zh("train.intro")
    book = at.button(key=f"{PAGE}:book")
    assert book.label == "恢复书中设置"  # the shared label when the page has none of its own
    assert book.help == zh("train.book_preset_help")
    assert f"{PAGE}:preset" in [s.key for s in at.selectbox]  # the preset menu, on by default
    assert not at.button(key=f"{PAGE}:apply").help  # no note on what the page leaves out of a preset
    settings = next(e for e in at.expander if e.label == "设置")
    assert {w.key for w in (*settings.select_slider, *settings.slider)} == {widget_key(PAGE, n) for n in FIELDS}
    assert "under 256" in [c.value for c in settings.caption]  # the page's note inside the settings
    assert at.button(key=f"{PAGE}:start").label == "开始训练"
    assert not at.button(key=f"{PAGE}:start").disabled  # the default corpus is there
    assert zh("train.no_job") in [i.value for i in at.info]
    assert at.session_state["plan_saw"] == (30, True)
    assert not any(e.label == "分享这节课" for e in at.expander)  # the lesson link only where asked for


def test_page_options_book_label_no_presets_and_lesson_link(demo: Any) -> None:
    at = demo(page_kw={"book_label_key": "clipping.book_preset_30", "presets_menu": False, "lesson_link": True})
    assert not at.exception
    assert at.button(key=f"{PAGE}:book").label == "恢复书中设置（30 个周期）"
    assert f"{PAGE}:preset" not in [s.key for s in at.selectbox]
    assert any(e.label == "分享这节课" for e in at.expander)


def test_a_page_with_corpora_of_its_own_has_no_corpus_picker_and_its_own_words(demo: Any) -> None:
    """A lesson (Memorise or generalise) trains on its own corpora: no sidebar picker, Train on without it."""
    at = demo(page_kw={"corpus_picker": False, "start_label_key": "generalise.start"})
    assert not at.exception
    assert not _corpus_widgets(at) and _corpus_widgets(demo())  # the default page has the picker
    assert at.session_state["plan_saw"] == (30, False)
    start = at.button(key=f"{PAGE}:start")
    assert start.label == zh("generalise.start") and not start.disabled
    start.click().run()
    assert at.session_state["started"] == 1


def _corpus_widgets(at: AppTest) -> list[Any]:
    kinds = ("radio", "selectbox", "number_input", "text_area")
    return [w for kind in kinds for w in at.sidebar.get(kind) if (w.key or "").startswith("corpus:")]


def test_preset_note_from_the_page_texts(demo: Any) -> None:
    at = demo(page_kw={"preset_help_key": "sampling.preset_sampling_note"})
    assert at.button(key=f"{PAGE}:apply").help == zh("sampling.preset_sampling_note")


def test_book_button_restores_only_the_page_fields(demo: Any) -> None:
    at = demo()
    at.slider(key=widget_key(PAGE, "epochs")).set_value(5).run()
    at.select_slider(key=widget_key(PAGE, "hidden")).set_value(32).run()
    assert at.slider(key=widget_key(PAGE, "epochs")).value == 5
    at.button(key=f"{PAGE}:book").click().run()
    assert not at.exception
    assert at.slider(key=widget_key(PAGE, "epochs")).value == 30
    assert at.select_slider(key=widget_key(PAGE, "hidden")).value == 256
    assert widget_key(PAGE, "compare") not in at.session_state  # a default the page does not show sets no widget


def test_train_starts_the_plan(demo: Any) -> None:
    at = demo()
    at.button(key=f"{PAGE}:start").click().run()
    assert not at.exception
    assert at.session_state["started"] == 1


def test_blocked_plan_turns_train_off_and_says_why(demo: Any) -> None:
    at = demo(plan_kw={"blocked": "Fix the checkpoint first."})
    assert at.button(key=f"{PAGE}:start").disabled
    assert "Fix the checkpoint first." in [w.value for w in at.warning]


def test_button_beside_train_runs_its_action_not_the_start(demo: Any) -> None:
    at = demo(plan_kw={"beside": True})
    at.button(key="demo:other").click().run()
    assert not at.exception
    assert at.session_state["other"] == 1
    assert "started" not in at.session_state
    at.button(key=f"{PAGE}:start").click().run()
    assert at.session_state["started"] == 1 and at.session_state["other"] == 1


def test_a_refused_start_is_said_in_the_page_language(demo: Any) -> None:
    at = demo(plan_kw={"fail": True})
    at.button(key=f"{PAGE}:start").click().run()
    assert not at.exception
    assert any("请先输入一段文字。" in e.value for e in at.error)


def test_replace_note_only_with_a_run(demo: Any) -> None:
    at = demo(plan_kw={"replace_note": True})
    assert "开始新的训练会替换" not in h.all_text(at)  # no run on the page yet


def test_metrics_expander_tables_every_run() -> None:
    def script(view: object) -> None:
        from lab_ui import training_page

        training_page.metrics_ui(view, ["first", "second"])

    runs = [SimpleNamespace(label=k, history=[{"epoch": 1, "perplexity": p}]) for k, p in (("a", 9.0), ("b", 7.0))]
    at = AppTest.from_function(script, args=(SimpleNamespace(runs=runs),)).run()
    assert not at.exception
    assert at.expander[0].label == "每个周期的数据"
    table = at.dataframe[0].value
    assert list(table["训练"]) == ["first", "second"] and list(table["困惑度"]) == [9.0, 7.0]  # headers in 中文


def test_train_wins_over_the_button_beside_it(demo: Any) -> None:
    at = demo(plan_kw={"beside": True})
    at.button(key="demo:other").click()
    at.button(key=f"{PAGE}:start").click().run()  # both in one script run: only the new run starts
    assert at.session_state["started"] == 1
    assert "other" not in at.session_state
