"""The Gradient clipping page: its controls, a clipped and an unclipped run, divergence, and the norm chart."""

from __future__ import annotations

import json

import apptest_helpers as h
import pytest
from streamlit.testing.v1 import AppTest

from lab_ui import charts, session
from lab_ui.settings import widget_key

PAGE = "clipping"


def test_page_shows_settings_without_a_clipping_toggle(at: AppTest) -> None:
    assert not at.exception
    assert at.button(key="clipping:start").label == "开始训练"
    keys = {w.key for w in (*at.radio, *at.selectbox, *at.select_slider, *at.slider, *at.toggle)}
    assert {widget_key(PAGE, n) for n in ("model", "sampling", "hidden", "batch_size", "lr", "clip", "epochs")} <= keys
    assert widget_key(PAGE, "clip_on") not in keys  # the page always compares clipped with not clipped
    assert "θ/‖g‖" in h.all_text(at)


def test_page_in_english_with_book_defaults() -> None:
    # Opened directly (no other page's settings in the URL), so the page's own defaults show.
    with h.english_page("pages/clipping.py") as at:
        assert not at.exception
        assert at.title[0].value == "Gradient clipping"
        assert at.button(key="clipping:start").label == "Train"
        assert "norm lr × θ ≈ 1" in h.all_text(at)
        # The book's scratch RNN, but 30 epochs so it is quick.
        book = {"model": "scratch-rnn", "lr": 100.0, "clip": 0.01, "hidden": 256, "epochs": 30, "sampling": "random"}
        assert h.setting_values(at, PAGE, list(book)) == book


def test_train_clipped_and_unclipped_in_lockstep(at: AppTest) -> None:
    job = h.start_tiny_job(at, PAGE, lr=1.0)  # small enough that the unclipped run survives too
    at.run()
    assert not at.exception

    view = session.manager().view(job)
    assert view.status == "finished"
    assert [r.config["clip"] for r in view.runs] == [0.01, None]
    assert [len(r.history) for r in view.runs] == [2, 2]
    assert all(view.runs[0].step_clipped) and not any(view.runs[1].step_clipped)

    ppl = h.chart_titled(at, "训练困惑度")
    assert {"裁剪（θ = 0.01）", "不裁剪"} <= set(h.trace_names(ppl))
    norms = h.chart_titled(at, "梯度范数")
    assert {"裁剪（θ = 0.01）", "不裁剪"} <= set(h.trace_names(norms))
    assert [s["y0"] for s in norms["layout"]["shapes"]] == [0.01]  # the θ line
    assert norms["layout"]["yaxis"]["type"] == "log"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["被裁剪"] == "100% 的步"
    assert "‖g‖ > θ（未裁剪）" in metrics


def test_unclipped_run_diverges_without_crashing_the_page(at: AppTest) -> None:
    job = h.start_tiny_job(at, PAGE, lr=1000.0)
    at.run()
    assert not at.exception

    clipped, unclipped = session.manager().view(job).runs
    assert unclipped.status == "diverged"
    assert clipped.status != "diverged" and len(clipped.history) == 2  # clipping keeps lr 1000 finite
    # The progress bar follows the run still training, not the one that stopped in epoch 1.
    assert at.get("progress")[0].proto.text.startswith("第 2/2 个周期")
    errors = [e.value for e in at.error]
    assert any(e.startswith("「不裁剪」在第 1 个周期第") and "步发散" in e for e in errors), errors
    ppl = h.chart_titled(at, "训练困惑度")
    marker = next(tr for tr in ppl["data"] if tr["name"] == "不裁剪 ✕")
    assert marker["x"] == [1]  # diverged during epoch 1
    norms = h.chart_titled(at, "梯度范数")
    assert any(tr["name"] == "不裁剪 ✕" for tr in norms["data"])
    # The unclipped run's own norms are drawn (a few steps: with markers, or a line of one or two points is
    # invisible), and where it diverged is marked and said on the chart, not only by a ✕ at its edge.
    steps = len(unclipped.step_norms)
    line = next(tr for tr in norms["data"] if tr["name"] == "不裁剪")
    assert list(line["y"]) == unclipped.step_norms and steps >= 1
    assert "markers" in line["mode"]
    assert [s["x0"] for s in norms["layout"]["shapes"] if s["xref"] == "x"] == [steps + 1]
    texts = [a["text"] for a in norms["layout"]["annotations"]]
    assert f"「不裁剪」在第 {steps + 1} 步发散" in texts, texts


def test_grad_norm_figure_draws_theta_and_keeps_spikes() -> None:
    flat = [0.5] * 9_000
    flat[6_001] = 300.0
    fig = charts.grad_norm_figure(
        [charts.NormTrace("a", flat), charts.NormTrace("b", [2.0, 4.0, 8.0], diverged=True)],
        0.01,
        "norms",
        "step",
        "‖g‖",
        theta_label="θ",
        planned_steps=9_000,
        max_points=1_000,
    ).to_plotly_json()
    a, b, b_end = fig["data"]
    assert len(a["x"]) <= 1_000
    assert 300.0 in list(a["y"]) and 6_002 in list(a["x"])  # the spike survives at its own step
    assert list(b["y"]) == [2.0, 4.0, 8.0]
    assert b_end["name"] == "b ✕" and list(b_end["x"]) == [4]
    line = fig["layout"]["shapes"][0]
    assert (line["y0"], line["y1"]) == (0.01, 0.01)
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert list(fig["layout"]["xaxis"]["range"]) == [0, 9_001]


def test_grad_norm_figure_is_deterministic_and_skips_bad_values() -> None:
    traces = [charts.NormTrace("a", [1.0, float("nan"), 0.0, 3.0])]
    one = charts.grad_norm_figure(traces, 0.5, "t", "x", "y").to_json()
    two = charts.grad_norm_figure(traces, 0.5, "t", "x", "y").to_json()
    assert one == two
    ys = json.loads(one)["data"][0]["y"]
    assert ys[0] == 1.0 and ys[3] == 3.0 and ys[1] is None and ys[2] is None


def test_downsample_max_is_exact_when_short() -> None:
    assert charts.downsample_max([3.0, 1.0], 10) == ([1, 2], [3.0, 1.0])


def test_line_labels_sit_on_their_lines_on_log_axes() -> None:
    # On a log axis Plotly reads an annotation's y as log10(y); add_hline's own label would fly off the chart.
    norms = charts.grad_norm_figure([charts.NormTrace("a", [1.0])], 0.01, "t", "x", "y", theta_label="θ")
    assert [(a.text, a.y) for a in norms.layout.annotations] == [("θ", pytest.approx(-2.0))]
    ppl = charts.perplexity_figure([charts.Curve("a", [1], [500.0])], 5, "t", "x", "y", 1000, "uniform")
    assert [(a.text, a.y) for a in ppl.layout.annotations] == [("uniform", pytest.approx(3.0))]
