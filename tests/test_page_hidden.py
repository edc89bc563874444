"""Hidden states page: the units × characters heatmap, gates, unit ordering and the coloured text."""

from __future__ import annotations

import re

import apptest_helpers_models as helpers
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from lab_ui import charts
from lab_ui.highlight import activation_html
from lab_ui.text import visible_char

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
HEATMAP = "hidden:heatmap"


def _page(shipped, *kinds: str, lang: str = "en") -> AppTest:
    shipped(*(kinds or ("gru",)))
    return helpers.open_page("hidden_states", lang=lang)


def _heat(at: AppTest) -> tuple[np.ndarray, dict]:
    trace = helpers.figure(at, HEATMAP)["data"][0]
    return np.asarray(helpers.decode(trace["z"])), trace


def test_heatmap_has_one_row_per_unit_and_one_column_per_character(shipped) -> None:
    at = _page(shipped)
    text = at.text_area(key="hidden:text").value
    assert len(text) == 40  # no corpus text: the model's own greedy lines from 分开
    assert text.startswith("分开")
    z, trace = _heat(at)
    assert z.shape == (16, 40)  # all 16 units (fewer than the default 32 rows)
    assert np.all(np.abs(z) <= 1)  # tanh-bounded
    fig = helpers.figure(at, HEATMAP)
    assert fig["layout"]["xaxis"]["ticktext"] == [visible_char(c) for c in text]
    assert trace["zmid"] == 0 and trace["zmin"] == -1 and trace["zmax"] == 1

    at.slider(key="hidden:top").set_value(5).run()
    helpers.assert_ok(at)
    assert _heat(at)[0].shape == (5, 40)


def test_units_are_ordered_by_activity_variance_or_index(shipped) -> None:
    at = _page(shipped)
    z, trace = _heat(at)
    assert np.all(np.diff(z.var(axis=1)) <= 1e-6)  # the default: units that change most first
    assert at.number_input(key="hidden:unit").value == int(trace["y"][0].replace("▶ #", ""))
    at.selectbox(key="hidden:sort").set_value("activity").run()
    z, _ = _heat(at)
    assert np.all(np.diff(np.abs(z).mean(axis=1)) <= 1e-6)  # most active first
    at.selectbox(key="hidden:sort").set_value("index").run()
    _, trace = _heat(at)
    assert [label.replace("▶ ", "") for label in trace["y"]] == [f"#{u}" for u in range(16)]


def test_gate_selector_appears_for_gru_and_lstm_only(shipped) -> None:
    at = _page(shipped, "gru", "scratch-lstm", "rnn")
    assert at.radio(key="hidden:source").options == ["H hidden state", "Z update gate", "R reset gate"]
    at.radio(key="hidden:source").set_value("Z").run()
    helpers.assert_ok(at)
    z, trace = _heat(at)
    assert trace["zmin"] == 0 and trace["zmax"] == 1 and np.all((z >= 0) & (z <= 1))
    assert "Z update gate" in helpers.figure(at, HEATMAP)["layout"]["title"]["text"]

    at.selectbox(key="hidden:model_source").set_value("shipped:1_scratch-lstm.pt").run()
    helpers.assert_ok(at)
    assert [o.split()[0] for o in at.radio(key="hidden:source").options] == ["H", "I", "F", "O", "C"]
    at.radio(key="hidden:source").set_value("C").run()
    z, trace = _heat(at)
    assert trace["zmid"] == 0 and trace["zmax"] == -trace["zmin"] >= np.abs(z).max() - 1e-6  # the cell is unbounded

    at.selectbox(key="hidden:model_source").set_value("shipped:2_rnn.pt").run()
    helpers.assert_ok(at)
    assert not at.get("radio") or not any(r.key == "hidden:source" for r in at.radio)
    assert "H hidden state" in helpers.figure(at, HEATMAP)["layout"]["title"]["text"]


def test_settings_survive_a_model_with_another_size(shipped) -> None:
    at = _page(shipped, "gru", "gru-h8")
    at.slider(key="hidden:top").set_value(5).run()
    at.number_input(key="hidden:unit").set_value(12).run()
    at.selectbox(key="hidden:model_source").set_value("shipped:1_gru-h8.pt").run()
    helpers.assert_ok(at)
    assert at.slider(key="hidden:top").value == 5  # still fits: kept (a new slider range must not reset it)
    z, trace = _heat(at)
    assert z.shape == (5, 40)
    unit = at.number_input(key="hidden:unit").value
    assert unit == int(trace["y"][0].replace("▶ #", "")) < 8  # unit 12 does not exist here: back to the top unit


def test_the_picked_unit_colours_the_text_with_values_in_tooltips(shipped) -> None:
    at = _page(shipped)
    at.number_input(key="hidden:unit").set_value(3).run()
    helpers.assert_ok(at)
    text = at.text_area(key="hidden:text").value
    body = next(h for h in helpers.html_bodies(at) if "background:" in h)
    assert body.count("<span") == len(text)
    values = [float(v) for v in re.findall(r'title="[^"]*· ([+-]\d\.\d{3})"', body)]
    assert len(values) == len(text) and all(-1 <= v <= 1 for v in values)
    z, trace = _heat(at)
    row = [label.replace("▶ ", "") for label in trace["y"]].index("#3")
    assert trace["y"][row] == "▶ #3"  # the picked unit is marked on the heatmap
    assert np.allclose(z[row], values, atol=1e-3)
    assert "unit #3" in " ".join(s.value for s in at.subheader)


def test_unknown_characters_are_skipped_and_named(shipped) -> None:
    at = _page(shipped)
    at.text_area(key="hidden:text").set_value("分开😀了ABC").run()
    helpers.assert_ok(at)
    assert any("😀" in w.value and "A B C" in w.value for w in at.warning), [w.value for w in at.warning]
    assert _heat(at)[0].shape[1] == 3  # 分开了


def test_text_of_only_unknown_characters_stops_with_a_message_and_can_be_reset(shipped) -> None:
    at = _page(shipped)
    default = at.text_area(key="hidden:text").value
    at.text_area(key="hidden:text").set_value("😀🎵").run()
    helpers.assert_ok(at)
    assert any("😀 🎵" in w.value for w in at.warning)
    assert not at.get("plotly_chart")
    at.button(key="hidden:reset").click().run()
    assert at.text_area(key="hidden:text").value == default
    assert at.get("plotly_chart")


def test_empty_text_asks_for_one(shipped) -> None:
    at = _page(shipped)
    at.text_area(key="hidden:text").set_value("").run()
    helpers.assert_ok(at)
    assert at.info and not at.get("plotly_chart")


def test_session_model_reads_the_start_of_its_corpus_in_chinese(shipped) -> None:
    shipped()
    at = helpers.open_page("hidden_states", lang="zh", prepare=helpers.with_train_job("gru", "gru"))
    assert at.text_area(key="hidden:text").value == helpers.tiny_corpus().text.strip()[:40]
    assert _heat(at)[0].shape == (16, 40)
    assert "隐藏状态" in at.title[0].value
    assert not at.get("toggle"), "no Follow toggle once training is over"


# -- the figure builders, without the page ------------------------------------------------------------------------


def test_hidden_heatmap_is_deterministic_and_keeps_repeated_characters_apart() -> None:
    values = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    a = charts.hidden_heatmap(values, list("分 分开"[:4]), [7, 2, 5], "t", marked_unit=2)
    b = charts.hidden_heatmap(values, list("分 分开"[:4]), [7, 2, 5], "t", marked_unit=2)
    assert a.to_json() == b.to_json()
    assert list(a.layout.xaxis.ticktext) == ["分", "␣", "分", "开"]  # two 分 columns, a visible space
    assert list(a.data[0].y) == ["#7", "▶ #2", "#5"]
    assert a.data[0].zmid == 0


def test_value_colors_match_the_heatmap_scale_and_text_stays_readable() -> None:
    low, mid, high = charts.value_colors([-1.0, 0.0, 1.0], (-1.0, 1.0), charts.SIGNED_SCALE)
    assert mid.replace(" ", "") == "rgb(247,247,247)"  # white at zero
    assert charts.is_dark(low) and charts.is_dark(high) and not charts.is_dark(mid)
    html = activation_html(["<", "a"], [low, mid], ["< · -1.000", "a · +0.000"])
    assert "&lt;" in html and "color:#fff" in html and "color:#111" in html


def test_units_marking_a_span_are_found_again_in_the_corpus(shipped, trained_checkpoints, monkeypatch) -> None:
    """LSTMVis-style search: listed units are on over the span and off before it; each place has them all on."""
    from lab_ui import model_cache
    from lm_core.checkpoint import from_bytes

    corpus = helpers.tiny_corpus().text  # what the tiny models were trained on
    monkeypatch.setattr(model_cache, "find_training_text", lambda name, vocab: (corpus, "songci", {"n": len(corpus)}))
    at = _page(shipped)
    text = at.text_area(key="hidden:text").value
    assert corpus.startswith(text)  # the default text now comes from the (patched) training text
    ckpt = from_bytes(trained_checkpoints["gru"])
    model = ckpt.build_model()
    H = model.trace(torch.tensor([[ckpt.vocab.index(c) for c in text]]))["H"][:, 0].numpy()  # (T, h)
    thr = 0.2
    start = next(s for s in range(3, len(text)) if ((H[s : s + 2] >= thr).all(0) & (H[s - 1] < thr)).any())
    at.number_input(key="hidden:pat_start").set_value(start + 1).run()
    at.number_input(key="hidden:pat_end").set_value(start + 2).run()
    at.slider(key="hidden:pat_thr").set_value(thr).run()
    helpers.assert_ok(at)
    caption = next(c.value for c in at.caption if "units match" in c.value)
    units = [int(u) for u in re.findall(r"#(\d+)", caption)]
    assert units and all((H[start : start + 2, u] >= thr).all() and H[start - 1, u] < thr for u in units)
    used_caption = next(c.value for c in at.caption if "Searching for" in c.value)
    used = [int(u) for u in re.findall(r"#(\d+)", used_caption)]
    assert used == units[: min(3, len(units))]  # the most decisive first, 3 by default
    body = next(b for b in helpers.html_bodies(at) if "corpus characters" in b)
    places = [
        (int(a.replace(",", "")), int(b.replace(",", "")))
        for a, b in re.findall(r"corpus characters ([\d,]+)–([\d,]+)", body)
    ]
    assert 1 <= len(places) <= 10
    ids = [ckpt.vocab.index(c) for c in corpus]
    full = bptt_states(model, ids)
    for a, b in places:
        assert (full[a - 1 : b][:, used] >= thr).all()  # every unit used is on over the whole place
        assert a == 1 or not (full[a - 2, used] >= thr).all()  # and the place is maximal
    marked = [helpers.html_text(m) for m in re.findall(r"<mark[^>]*>(.*?)</mark>", body)]
    assert [corpus[a - 1 : b] for a, b in places] == marked  # the marked text is that place of the corpus


def bptt_states(model, ids: list[int]) -> np.ndarray:
    """H over the corpus read the way the page reads it (64 rows from zero states), independently traced."""
    rows = 64
    n = len(ids) // rows * rows
    X = torch.tensor(ids[:n]).view(rows, -1)
    out = np.zeros((n, model.num_hiddens), dtype=np.float32)
    for r in range(rows):
        out[r * X.shape[1] : (r + 1) * X.shape[1]] = model.trace(X[r : r + 1])["H"][:, 0].numpy()
    return out


def test_unit_search_says_why_when_nothing_matches_or_the_corpus_is_missing(shipped) -> None:
    at = _page(shipped)  # the tiny test checkpoints name a corpus the app cannot rebuild
    at.slider(key="hidden:pat_thr").set_value(1.0).run()  # tanh never reaches 1: no unit can be "on"
    helpers.assert_ok(at)
    assert any("No unit is on" in i.value for i in at.info)
    at.slider(key="hidden:pat_thr").set_value(-1.0).run()  # nothing is below −1: no unit is "off" before
    assert any("No unit is on" in i.value for i in at.info)
    for thr in (0.0, 0.1, -0.1, 0.2, -0.2):
        at.slider(key="hidden:pat_thr").set_value(thr).run()
        if any("units match" in c.value for c in at.caption):
            break
    else:
        pytest.skip("no unit switches on over the default span of this tiny model")
    assert any("not available" in i.value for i in at.info)


def test_a_warmed_server_opens_the_page_without_loading_or_tracing(shipped, monkeypatch) -> None:
    """After the server's warm-up (`model_source.warm_default_model`, run when it starts), the first visit of
    Hidden states parses no checkpoint, builds no model, finds no training text again and traces no corpus:
    those once-per-server costs (9.5 s to the first figure on a loaded machine) were paid before anyone asked."""
    from lab_ui import model_cache, model_source
    from lm_core.analysis import bptt
    from lm_core.checkpoint import Checkpoint

    corpus = helpers.tiny_corpus().text
    monkeypatch.setattr(model_cache, "find_training_text", lambda name, vocab: (corpus, "songci", {"n": len(corpus)}))
    shipped("gru", "rnn")
    model_source.warm_default_model()
    paid: list[str] = []

    def counted(name: str, real):
        return lambda *args, **kwargs: paid.append(name) or real(*args, **kwargs)

    searched: list[int] = []
    monkeypatch.setattr(model_cache, "read_file", counted("parse", model_cache.read_file))
    monkeypatch.setattr(model_cache, "find_training_text", counted("text", model_cache.find_training_text))
    monkeypatch.setattr(bptt, "corpus_states", counted("trace corpus", bptt.corpus_states))
    monkeypatch.setattr(Checkpoint, "build_model", counted("build", Checkpoint.build_model))
    monkeypatch.setattr(bptt, "units_on_span", lambda *args: [0])  # unit #0 marks the span: the search runs
    real_find = bptt.find_unit_pattern
    monkeypatch.setattr(
        bptt, "find_unit_pattern", lambda states, *a: searched.append(len(states)) or real_find(states, *a)
    )
    at = helpers.open_page("hidden_states", lang="en")
    helpers.assert_ok(at)
    assert helpers.figure(at, HEATMAP)["data"], "the heatmap is drawn"
    assert searched, "the unit search ran over the corpus"
    assert paid == []
