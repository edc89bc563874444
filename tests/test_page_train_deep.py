"""The Train page's issue-11 settings: layers, dropout, embedding, minibatches per epoch, validation, patience.

Widgets with the engine's defaults, values from a lesson link, bad combinations said before Train is pressed
(and refused, without a traceback, when it is), and a real short run that uses every one of them.
"""

from __future__ import annotations

import pytest
from apptest_helpers import (
    REPO,
    TIMEOUT,
    _clean_runtime,
    all_text,
    set_settings,
    setting_values,
    setting_widget,
    use_tiny_settings,
    wait_for_job,
)
from streamlit.testing.v1 import AppTest

from lab_ui import session
from lab_ui.jobs_ui import job_key
from lm_core.limits import MAX_LAYERS
from lm_core.training import TrainConfig

PAGE = "train"
NEW = ("num_layers", "dropout", "embed", "steps_per_epoch", "val_fraction", "patience")


def test_the_new_settings_are_widgets_with_the_engines_defaults(at: AppTest) -> None:
    assert not at.exception
    engine = TrainConfig()
    assert setting_values(at, PAGE, NEW) == {name: getattr(engine, name) for name in NEW}
    layers = setting_widget(at, PAGE, "num_layers")
    assert layers.max == MAX_LAYERS == 3  # the limit, where the user meets it
    assert "1-3" in layers.help or "1–3" in layers.help


def test_a_lesson_link_sets_them_and_a_bad_value_is_reset_and_named() -> None:
    with _clean_runtime():
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.query_params.update(
            {"model": "lstm", "layers": "2", "dropout": "0.3", "embedding": "64", "epoch_steps": "50", "val": "0.12"}
        )
        at.query_params["patience"] = "999"
        at.run()
        assert not at.exception
        got = setting_values(at, PAGE, NEW)
        assert got == {
            "num_layers": 2,
            "dropout": 0.3,
            "embed": 64,
            "steps_per_epoch": 50,
            "val_fraction": 0.12,
            "patience": 0,
        }
        assert "patience=999" in all_text(at)
        assert at.query_params["layers"] in ("2", ["2"]) and at.query_params["val"] in (
            "0.12",
            ["0.12"],
        )  # written back


def test_dropout_with_one_layer_is_explained_before_and_refused_at_train(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="gru", dropout=0.3)
    assert "丢弃" in all_text(at) and "2 或 3 层" in all_text(at)  # said under the settings at once
    at.button(key="train:start").click().run()
    assert not at.exception
    assert job_key(PAGE) not in at.session_state or at.session_state[job_key(PAGE)] is None  # nothing started
    assert any("丢弃" in e.value for e in at.error)
    set_settings(at, PAGE, {"num_layers": 2})
    assert "2 或 3 层" not in all_text(at)


@pytest.mark.parametrize(
    ("share", "said"),
    [(0.1, "验证集只有"), (0.02, "验证集比例内放不下一整篇文本")],  # fewer than 32 × 36 characters; no whole ci
)
def test_a_validation_split_too_small_is_explained_before_and_at_train(at: AppTest, share: float, said: str) -> None:
    use_tiny_settings(at, PAGE, model="gru", val_fraction=share, batch_size=32, num_steps=35)
    assert any(said in w.value for w in at.warning)  # before Train is pressed
    at.button(key="train:start").click().run()
    assert not at.exception
    assert any(said in e.value for e in at.error)


def test_a_run_uses_every_new_setting(at: AppTest) -> None:
    use_tiny_settings(
        at, PAGE, model="gru", num_layers=2, dropout=0.2, embed=16, steps_per_epoch=10, val_fraction=0.2, patience=5
    )
    assert "丢弃" not in "".join(w.value for w in at.warning)
    at.button(key="train:start").click().run()
    assert not at.exception
    job = wait_for_job(at, PAGE)
    cfg = job.config(0)
    assert (cfg.num_layers, cfg.dropout, cfg.embed, cfg.steps_per_epoch, cfg.val_fraction, cfg.patience) == (
        2,
        0.2,
        16,
        10,
        0.2,
        5,
    )
    view = session.manager().view(job)
    assert [h["steps"] for h in view.runs[0].history] == [10, 10]
    assert all(h["val_perplexity"] is not None for h in view.runs[0].history)
    at.run()
    assert "epoch" in all_text(at) or "周期" in all_text(at)
    # patience on and the run used all its epochs: the page names the epoch whose weights are kept
    best = view.runs[0].history[-1]["best_epoch"]
    assert job.checkpoint(0).best_epoch == best
    assert f"第 {best} 个周期的权重" in all_text(at)
