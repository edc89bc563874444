"""The Random vs adjacent page: its controls, a real two-run job, and the minibatch picture."""

from __future__ import annotations

import apptest_helpers as h
import pytest
from streamlit.testing.v1 import AppTest

from lab_ui import charts, presets, session, settings
from lm_core.messages import text
from lm_core.sampling import describe_minibatches

PAGE = "sampling"

# The picture's words when a test draws it without a page: English, from the catalogue.
CARRIED = text("sampling.mb_carried", "en")


def test_page_shows_settings_without_a_sampling_choice(at: AppTest) -> None:
    assert not at.exception
    assert at.button(key="sampling:start").label == "开始训练"
    book = presets.PRESETS["book_random"]  # the page's defaults
    for name in ("hidden", "batch_size", "lr", "clip"):
        slider = at.select_slider(key=settings.widget_key(PAGE, name))
        assert slider.value == book[name], name
        assert h.shows_options(slider, settings.FIELDS[name].options), (name, slider.options)
    for name in ("num_steps", "epochs"):
        slider = at.slider(key=settings.widget_key(PAGE, name))
        assert slider.value == book[name], name
        assert (slider.min, slider.max) == settings.FIELDS[name].bounds, name
    keys = {w.key for w in (*at.radio, *at.selectbox, *at.select_slider, *at.slider, *at.toggle)}
    assert settings.widget_key(PAGE, "sampling") not in keys  # the page trains both modes
    assert {*(settings.widget_key(PAGE, n) for n in ("model", "optimizer", "clip_on")), f"{PAGE}:preset"} <= keys


def test_page_draws_both_minibatch_pictures_before_training(at: AppTest) -> None:
    random_fig = h.chart_titled(at, "随机采样：窗口打乱")
    adjacent_fig = h.chart_titled(at, "相邻采样：每行是一段连续文本")
    assert "32 行中均匀选取 8 行" in h._title(random_fig)
    assert "状态传递（分离计算图）" in h.trace_names(adjacent_fig)
    assert "状态传递（分离计算图）" not in h.trace_names(random_fig)
    assert "为什么相邻采样通常前期更低" in h.all_text(at)
    assert "59.5" in h.all_text(at)


def test_page_in_english_with_book_defaults() -> None:
    # Opened directly (no other page's settings in the URL), so the page's own defaults show.
    with h.english_page("pages/sampling.py") as at:
        assert not at.exception
        assert at.title[0].value == "Random vs adjacent sampling"
        assert at.button(key="sampling:start").label == "Train"
        book = {"model": "scratch-rnn", "hidden": 256, "batch_size": 32, "num_steps": 35, "lr": 100.0, "epochs": 250}
        assert h.setting_values(at, PAGE, [*book, "clip_on"]) == {**book, "clip_on": True}
        adjacent = h.chart_titled(at, "Adjacent sampling: each row is one contiguous slice, state carried")
        assert "state carried (detached)" in h.trace_names(adjacent)
        assert "Why adjacent usually gets lower early" in h.all_text(at)


def test_train_runs_random_and_adjacent_in_lockstep(at: AppTest) -> None:
    job = h.start_tiny_job(at, PAGE)
    at.run()
    assert not at.exception

    view = session.manager().view(job)
    assert view.status == "finished"
    assert [r.config["sampling"] for r in view.runs] == ["random", "adjacent"]
    first, second = ({k: v for k, v in r.config.items() if k != "sampling"} for r in view.runs)
    assert first == second  # same seed, model and settings: only the sampling differs
    assert first["hidden"] == 16 and first["batch_size"] == 8
    assert [len(r.history) for r in view.runs] == [2, 2]

    spec = h.chart_titled(at, "训练困惑度")
    curves = {tr["name"]: tr for tr in spec["data"] if tr.get("name") in ("随机采样", "相邻采样")}
    assert set(curves) == {"随机采样", "相邻采样"}
    assert all(len(tr["x"]) == 2 for tr in curves.values())
    labels = [m.label for m in at.metric]
    assert any(label.startswith("相邻采样 · 第 2 周期") for label in labels)


def _adjacent_figure(rows: int = 8) -> tuple[list, dict]:
    spans = describe_minibatches(10_000, 32, 35, "adjacent", k=4)
    fig = charts.minibatch_figure(spans, 10_000, "adjacent", max_rows=rows, row_len=10_000 // 32)
    return spans, fig.to_plotly_json()


def test_minibatch_figure_shows_adjacent_rows_continuing() -> None:
    _, fig = _adjacent_figure()
    left = {tr["name"]: tr for tr in fig["data"] if tr.get("xaxis", "x") == "x" and tr["name"].startswith("minibatch")}
    assert len(left) == 4
    cells = {}  # (minibatch, drawn row) -> (first, last position)
    for i in range(4):
        xs, ys = left[f"minibatch {i + 1}"]["x"], left[f"minibatch {i + 1}"]["y"]
        for j in range(0, len(xs), 3):  # (start, end, None) per row
            cells[(i, ys[j])] = (xs[j], xs[j + 1])
    drawn = sorted({y for _, y in cells})
    assert drawn == list(range(8))  # 8 of the 32 rows
    assert list(fig["layout"]["yaxis"]["ticktext"]) == ["1", "5", "10", "14", "19", "23", "28", "32"]
    for y in drawn:
        for i in range(3):
            assert cells[(i + 1, y)][0] == cells[(i, y)][1] + 1  # the next minibatch picks up where this one ended
    assert cells[(0, 7)][0] == 31 * (10_000 // 32)  # the last row is the corpus's last slice
    carried = next(tr for tr in fig["data"] if tr["name"] == CARRIED)
    assert sum(x is not None for x in carried["x"]) == 2 * 3 * 8  # one arrow per row between 4 minibatches
    reset = next(tr for tr in fig["data"] if tr["name"] == text("sampling.mb_reset", "en"))
    assert list(reset["x"]) == pytest.approx([1 - 0.36] * 8)  # only the epoch's first minibatch starts from zeros


def test_minibatch_figure_random_resets_every_minibatch() -> None:
    spans = describe_minibatches(10_000, 4, 35, "random", k=3, seed=7)
    fig = charts.minibatch_figure(spans, 10_000, "random").to_plotly_json()
    names = [tr["name"] for tr in fig["data"]]
    assert CARRIED not in names and CARRIED == "state carried (detached)"
    reset = next(tr for tr in fig["data"] if tr["name"] == text("sampling.mb_reset", "en"))
    assert len(reset["x"]) == 3 * 4
    assert all(s.start % 35 == 0 for s in spans)  # windows start at multiples of T
    assert fig["layout"]["xaxis"]["range"] == [0, 10_000]


def test_minibatch_figure_is_deterministic() -> None:
    spans = describe_minibatches(5_000, 32, 35, "random", k=4, seed=3)
    one = charts.minibatch_figure(spans, 5_000, "r").to_json()
    two = charts.minibatch_figure(list(spans), 5_000, "r").to_json()
    assert one == two
