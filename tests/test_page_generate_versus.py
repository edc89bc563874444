"""Generate's "compare with another model": two models' lines from one prefix, each with its copied share."""

from __future__ import annotations

import re
import shutil

import apptest_helpers_models as helpers
import pytest

from lab_ui.model_cache import REPO_CHECKPOINTS
from lm_core.checkpoint import load

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
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
