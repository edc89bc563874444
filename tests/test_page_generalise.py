"""Memorise or generalise: one model on 10,000 characters and on all of Song ci, in lockstep."""

from __future__ import annotations

from dataclasses import replace

from apptest_helpers import all_text, english_page, plotly_specs, set_settings, wait_for_job
from streamlit.testing.v1 import AppTest

from lab_ui import session
from lm_core import lessons
from lm_core.training import evaluate_perplexity

PAGE = "generalise"


def test_lesson_trainers_differ_only_in_corpus_and_validation_share() -> None:
    small, large = lessons.corpora()
    assert len(small) == lessons.SMALL_CHARS and len(large) > 1_000_000
    a, b = lessons.trainers(replace(lessons.PRESET, steps_per_epoch=0), small, large)
    assert a.config.steps_per_epoch == b.config.steps_per_epoch == lessons.PRESET.steps_per_epoch  # a fixed budget
    assert replace(a.config, val_fraction=0) == replace(b.config, val_fraction=0)
    # Each validation split holds at least one minibatch, so both curves get validation points.
    for trainer in (a, b):
        need = trainer.config.batch_size * (trainer.config.num_steps + 1)
        assert len(trainer.val_ids) >= need
        assert evaluate_perplexity(trainer.model, trainer.val_ids, trainer.config.num_steps, 16) is not None
    assert len(b.val_ids) > len(small)  # the large corpus's held-out ci outnumber the whole small corpus


def test_page_opens_with_the_lesson_settings() -> None:
    with english_page("pages/generalise.py") as at:
        assert not at.exception
        _lesson_defaults(at)


def _lesson_defaults(at: AppTest) -> None:
    values = {w.key.split(":")[-1]: w.value for w in (*at.slider, *at.select_slider) if w.key.startswith(PAGE)}
    assert values["hidden"] == lessons.PRESET.hidden and values["embed"] == lessons.PRESET.embed
    assert values["steps_per_epoch"] == lessons.PRESET.steps_per_epoch
    assert "all Song ci" in all_text(at) and "held out" in all_text(at)


def test_both_models_train_in_lockstep_with_validation_on_one_chart(at: AppTest) -> None:
    tiny = {"model": "gru", "lr": 0.01, "hidden": 16, "embed": 16, "num_steps": 24, "batch_size": 8}
    set_settings(at, PAGE, {**tiny, "steps_per_epoch": 10, "epochs": 2})  # (a link may have set other values)
    at.button(key=f"{PAGE}:start").click().run()
    assert not at.exception
    job = wait_for_job(at, PAGE, timeout=180)
    at.run()
    assert not at.exception
    view = session.manager().view(job)
    assert [r.label for r in view.runs] == ["small", "large"]
    assert [len(job.corpus(i)) for i in range(2)] == [lessons.SMALL_CHARS, len(lessons.corpora()[1])]
    for run in view.runs:
        assert [h["steps"] for h in run.history] == [10, 10]
        assert all(h["val_perplexity"] is not None for h in run.history)
    names = [tr.get("name", "") for spec in plotly_specs(at) for tr in spec["data"]]
    assert sum("训练" in n for n in names) == 2 and sum("验证" in n for n in names) == 2
    # the models are offered to Generate and Hidden states
    at.switch_page("pages/generate.py").run()
    assert not at.exception
    options = at.selectbox(key="generate:model_source").options
    assert sum("背诵还是创作" in o for o in options) == 2
