"""Generate page: prefix checks, greedy vs sampled text, next-character bars, the memorisation meter."""

from __future__ import annotations

import re
import shutil

import apptest_helpers_models as helpers
import pytest
from apptest_helpers import shown
from streamlit.testing.v1 import AppTest

from lab_ui import charts
from lab_ui.highlight import copied_html
from lab_ui.model_cache import REPO_CHECKPOINTS
from lm_core.checkpoint import load

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
CONTROLS = ("prefix", "length", "strategy", "temperature", "top_k", "seed")


def _page(shipped, lang: str = "en", kind: str = "gru") -> AppTest:
    shipped(kind)
    return helpers.open_page("generate", lang=lang)


def _generate(at: AppTest) -> AppTest:
    at.button(key="generate:run").click().run()
    helpers.assert_ok(at)
    return at


def _result(at: AppTest):
    return at.session_state["generate:result"]


def test_controls_exist_and_the_book_prefix_is_the_default(shipped) -> None:
    at = _page(shipped)
    assert at.text_input(key="generate:prefix").value == "分开"
    assert at.slider(key="generate:length").value == 50
    assert at.radio(key="generate:strategy").value == "greedy"
    assert at.select_slider(key="generate:temperature").value == 1.0
    assert at.select_slider(key="generate:top_k").value == "off"
    assert at.number_input(key="generate:seed").value == 0
    assert not at.button(key="generate:run").disabled
    # A class sees lyrics the moment the page opens, before anyone clicks.
    assert _result(at).main.generation.text.startswith("分开")
    assert at.get("plotly_chart")


def test_generate_writes_from_the_prefix_and_draws_the_probabilities(shipped) -> None:
    at = _generate(_page(shipped))
    gen = _result(at).main.generation
    assert gen.text.startswith("分开") and len(gen.generated) == 50
    assert gen.text in [helpers.html_text(h) for h in helpers.html_bodies(at)]

    first = helpers.figure(at, "generate:probs_first")
    bars = first["data"][0]
    assert bars["type"] == "bar" and len(bars["x"]) == 10
    probs = list(helpers.decode(bars["y"]))
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert bars["x"][0] == gen.generated[0]  # greedy writes the most likely character
    assert "Step 1" in first["layout"]["title"]["text"]

    at.slider(key="generate:step").set_value(7).run()
    helpers.assert_ok(at)
    step = helpers.figure(at, "generate:probs_step")
    assert "Step 7" in step["layout"]["title"]["text"]
    assert step["data"][0]["x"][0] == gen.generated[6]


def test_greedy_and_sampled_texts_are_side_by_side_and_reproducible(shipped) -> None:
    at = _page(shipped)
    at.radio(key="generate:strategy").set_value("sample").run()  # enables temperature and top-k
    at.select_slider(key="generate:temperature").set_value(0.7)
    at.select_slider(key="generate:top_k").set_value(5)
    at.number_input(key="generate:seed").set_value(3).run()
    _generate(at)
    result = _result(at)
    labels = [w.label_key for w in result.variants]
    assert labels == ["generate.v_greedy", "generate.v_temp", "generate.v_temp", "generate.v_temp", "generate.v_yours"]
    assert all(w.generation.text.startswith("分开") for w in result.variants)
    assert result.variants[-1].generation.text == result.main.generation.text  # "your settings" column
    page = helpers.texts(at)
    assert "Greedy (the book)" in page and "Your settings · temperature 0.7, top-k 5" in page
    # top-k 5: every step drew from at most five characters
    assert all(sum(c.prob > 0 for c in step) <= 5 for step in result.main.generation.steps)
    text = result.main.generation.text
    _generate(at)
    assert _result(at).main.generation.text == text


def test_new_seed_button_generates_with_another_seed(shipped) -> None:
    at = _page(shipped)
    at.radio(key="generate:strategy").set_value("sample").run()
    at.button(key="generate:reseed").click().run()
    helpers.assert_ok(at)
    assert _result(at).settings["seed"] == at.number_input(key="generate:seed").value


@pytest.mark.parametrize(
    ("prefix", "named"),
    [("😀", "😀"), ("", "at least one character"), ("分😀开🎵", "😀 🎵"), ("ABC", "A B C")],
    ids=["emoji", "empty", "partly-unknown", "only-unknown"],
)
def test_unusable_prefix_is_named_and_nothing_breaks(shipped, prefix: str, named: str) -> None:
    at = _page(shipped)
    at.text_input(key="generate:prefix").set_value(prefix).run()
    helpers.assert_ok(at)
    assert any(named in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="generate:run").disabled
    assert not at.get("plotly_chart")


def test_partly_unknown_prefix_offers_to_drop_the_unknown_characters(shipped) -> None:
    at = _page(shipped)
    at.text_input(key="generate:prefix").set_value("分😀开").run()
    # The label names the removed character and the resulting prefix apart, so neither is mistaken for the other.
    assert at.button(key="generate:strip").label == "Remove the unknown characters (😀) and use the prefix “分开”"
    at.button(key="generate:strip").click().run()
    helpers.assert_ok(at)
    assert at.text_input(key="generate:prefix").value == "分开"
    assert not at.error
    _generate(at)
    assert _result(at).main.generation.text.startswith("分开")


def test_chinese_error_names_the_characters(shipped) -> None:
    at = _page(shipped, lang="zh")
    at.text_input(key="generate:prefix").set_value("😀").run()
    helpers.assert_ok(at)
    assert any("😀" in e.value and "词典" in e.value for e in at.error)
    at.button(key="generate:use_default").click().run()
    assert at.text_input(key="generate:prefix").value == "分开"
    _generate(at)
    assert "生成的歌词" in [s.value for s in at.subheader]


def test_meter_is_unavailable_for_a_checkpoint_of_an_unknown_corpus(shipped) -> None:
    at = _generate(_page(shipped))
    assert at.metric[0].value == "n/a"
    assert any("memorisation meter is unavailable" in c.value for c in at.caption)


def test_lstm_and_rnn_checkpoints_generate_too(shipped) -> None:
    shipped("scratch-lstm", "rnn")
    at = helpers.open_page("generate")
    for value in ("shipped:0_scratch-lstm.pt", "shipped:1_rnn.pt"):
        at.selectbox(key="generate:model_source").set_value(value).run()
        _generate(at)
        assert _result(at).main.generation.text.startswith("分开")


# -- the pieces, without the page ----------------------------------------------------------------------------------


def test_copied_html_marks_copied_stretches_and_escapes_everything() -> None:
    html = copied_html("分开<b>&的手在风里", 2, [(5, 10)], "copied", "prefix")
    assert '<b title="prefix" style="color:#555">分开</b>' in html
    assert "&lt;b&gt;" in html and "&amp;" in html and "<b>&" not in html
    assert html.count("<mark") == 1
    assert '">&amp;的手在风</mark>里</div>' in html  # characters 5..9 marked, the last one not


def test_prob_bars_are_deterministic_and_highlight_the_written_character() -> None:
    cands = [("花", 0.5), (" ", 0.3), ("1", 0.2)]
    a, b = charts.prob_bars(cands, "t", chosen=" "), charts.prob_bars(cands, "t", chosen=" ")
    assert a.to_json() == b.to_json()
    bar = a.data[0]
    assert list(bar.x) == ["花", "␣", "1"]  # a space is drawn visibly
    assert a.layout.xaxis.type == "category"  # "1" stays a label, not a number
    assert bar.marker.color[1] != bar.marker.color[0] == bar.marker.color[2]


def test_strip_button_in_chinese_names_removed_characters_and_the_new_prefix(shipped) -> None:
    """Like the walk-through's 夕阳 case: the button must not read as if the kept character were the unknown one."""
    at = _page(shipped, lang="zh")
    at.text_input(key="generate:prefix").set_value("分😀开🎵").run()
    assert at.button(key="generate:strip").label == "删除不认识的字（😀 🎵），改用前缀「分开」"


def test_strip_button_names_at_most_twenty_unknown_characters(shipped) -> None:
    """A pasted line of emoji must not fill the button: the shared cap (`lm_core.vocab.SHOWN_CHARS`) applies."""
    emoji = [chr(0x1F600 + i) for i in range(25)]
    at = _page(shipped)
    at.text_input(key="generate:prefix").set_value("分" + "".join(emoji) + "开").run()
    label = shown(at.button(key="generate:strip").label)
    assert label == f"Remove the unknown characters ({' '.join(emoji[:20])} (and 5 more)) and use the prefix “分开”"


def test_generated_text_wraps_latin_at_spaces_not_mid_word() -> None:
    """English in the narrow comparison columns must break between words; CJK still wraps anywhere."""
    html = copied_html("based on the river", 0, [], "copied", "prefix")
    assert "break-all" not in html  # break-all split "b|ased" in the walk-through
    assert "overflow-wrap:anywhere" in html  # only a word wider than the column is split


# -- a second model beside the first -------------------------------------------------------------------------------
# Generate's "compare with another model": two models' lines from one prefix, each with its copied share.


PICK = "generate:compare_with"


def test_a_second_model_writes_beside_the_first_with_its_copied_share(shipped) -> None:
    folder = shipped()
    for name in ("songci-gru.pt", "songci-scratch-rnn.pt"):  # both know 辛弃疾's ci, so both have a meter
        shutil.copy(REPO_CHECKPOINTS / name, folder / name)
    at = helpers.open_page("generate")
    assert at.selectbox(key=PICK).value == "none" and "generate:versus" not in at.session_state
    at.selectbox(key=PICK).set_value("shipped:songci-scratch-rnn.pt").run()
    helpers.assert_ok(at)
    written = at.session_state["generate:versus"][1]
    result = at.session_state["generate:result"]
    prefix = result.main.generation.prefix
    assert written.generation.text.startswith(prefix) and len(written.generation.generated) == 50
    assert written.generation.text != result.main.generation.text  # another model, another text
    assert written.copied_share() is not None
    bodies = [helpers.html_text(h) for h in helpers.html_bodies(at)]
    assert written.generation.text in bodies
    # one "copied" caption per decoding variant, plus the two columns of the comparison
    assert len(re.findall(r"copied \d+%", helpers.texts(at))) == len(result.variants) + 2
    # the other model follows the settings: sampling writes it again
    at.radio(key="generate:strategy").set_value("sample").run()
    at.button(key="generate:run").click().run()
    assert at.session_state["generate:versus"][1].generation.text != written.generation.text


def test_a_prefix_the_other_model_cannot_read_is_said_not_raised(shipped) -> None:
    folder = shipped("gru")
    shutil.copy(REPO_CHECKPOINTS / "songci-gru.pt", folder / "songci-gru.pt")
    theirs = set(load(folder / "songci-gru.pt").vocab)
    at = helpers.open_page("generate")
    ours = [ch for ch in "".join(helpers.LINES) if ch not in theirs]
    assert ours, "the synthetic lines share every character with 辛弃疾's ci"
    at.text_input(key="generate:prefix").set_value(ours[0]).run()
    at.selectbox(key=PICK).set_value("shipped:songci-gru.pt").run()
    helpers.assert_ok(at)
    assert "The other model cannot read this prefix" in helpers.texts(at)
