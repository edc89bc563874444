"""Generate and Hidden states open on the all-Song-ci model (`songci-all-lstm.pt`) when it is shipped.

The small shipped models recite their 10,000 characters; the large one writes new ci, so it is what a visitor
sees first. Without it the first readable shipped file stays the default, with no error.
"""

from __future__ import annotations

import os
from pathlib import Path

import apptest_helpers_models as helpers
import pytest

from lab_ui import model_cache, model_source
from lab_ui.model_cache import CHECKPOINT_ENV, REPO_CHECKPOINTS
from lab_ui.model_source import PREFERRED_SHIPPED

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind


@pytest.mark.parametrize(
    ("page", "picker"), [("generate", "generate:model_source"), ("hidden_states", "hidden:model_source")]
)
def test_the_all_song_ci_model_is_the_default_even_when_not_first_by_name(shipped, trained, page, picker) -> None:
    folder = shipped("gru")  # 0_gru.pt sorts before songci-all-lstm.pt, so "first file" would pick it
    (folder / PREFERRED_SHIPPED).write_bytes(trained["rnn"])  # a tiny stand-in under the shipped name
    at = helpers.open_page(page)
    assert at.selectbox(key=picker).value == f"shipped:{PREFERRED_SHIPPED}"
    assert "torch.nn.RNN, 16 hidden units" in helpers.texts(at)  # the stand-in's description, not the GRU's
    assert any(o.startswith("Shipped: 0_gru.pt") for o in at.selectbox(key=picker).options)  # still offered


def test_without_the_file_the_old_default_stays(shipped) -> None:
    shipped("gru", "rnn")
    at = helpers.open_page("generate")
    assert at.selectbox(key="generate:model_source").value == "shipped:0_gru.pt"
    assert not at.error


def test_an_unreadable_all_song_ci_file_is_not_the_default(shipped) -> None:
    folder = shipped("gru")
    (folder / PREFERRED_SHIPPED).write_bytes(b"not a checkpoint")
    at = helpers.open_page("generate")
    assert at.selectbox(key="generate:model_source").value == "shipped:0_gru.pt"


def test_a_session_run_still_comes_before_the_shipped_model() -> None:
    opts = {
        f"shipped:{PREFERRED_SHIPPED}": model_source.Option("big", "shipped"),
        "session:train:abc:0": model_source.Option("mine", "session"),
    }
    assert model_source.default_option(opts) == "session:train:abc:0"


REAL = REPO_CHECKPOINTS / PREFERRED_SHIPPED


@pytest.mark.skipif(
    not REAL.is_file() and os.environ.get("CI", "").lower() != "true",
    reason=f"{REAL.name} is built by checkpoints/build.sh and committed on main; in CI (CI=true) it must exist",
)
def test_the_repository_ships_the_all_song_ci_model_and_generate_opens_on_it(monkeypatch) -> None:
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert model_cache.checkpoint_dir() == REPO_CHECKPOINTS
    assert REAL.is_file(), f"{REAL} is missing"
    at = helpers.open_page("generate")
    assert at.selectbox(key="generate:model_source").value == f"shipped:{PREFERRED_SHIPPED}"
    choice_ckpt, error = model_cache.load_shipped(Path(REAL))
    assert error is None and choice_ckpt is not None
    assert choice_ckpt.config.model == "lstm" and len(choice_ckpt.vocab) > 5000  # all of Song ci, not 10k chars
    assert at.session_state["generate:result"].main.generation.generated  # lyrics written at once
