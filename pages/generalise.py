"""Memorise or generalise: one model on 10,000 characters and on all of Song ci, in lockstep, validation on both."""

from __future__ import annotations

import streamlit as st

from lab_ui import charts, jobs_ui, session, settings, training_page
from lab_ui.i18n import N_, current_lang, run_label, t
from lm_core import lessons
from lm_core.errors import LabError, localized
from lm_core.serve.job import Job
from lm_core.serve.views import JobView

PAGE = "generalise"
FIELDS = settings.PAGE_FIELDS[PAGE]
DEFAULTS = settings.defaults_from(lessons.PRESET)


def _start(values: dict) -> None:
    """Both trainers from one config (the lesson's corpora and validation shares), in one lockstep job."""
    small, large = lessons.corpora()
    trainers = lessons.trainers(settings.to_config(values, base=lessons.PRESET), small, large)
    jobs_ui.start_job(PAGE, trainers, list(lessons.LABELS))


def _curves(view: JobView, labels: list[str]) -> list[charts.Curve]:
    """Training (solid) and validation (dashed) of each run, one colour per corpus."""
    curves = []
    for i, (run, label) in enumerate(zip(view.runs, labels, strict=True)):
        epochs = [h["epoch"] for h in run.history]
        curves.append(
            charts.Curve(t("generalise.train_of", run=label), epochs, [h["perplexity"] for h in run.history], color=i)
        )
        val = [h["val_perplexity"] for h in run.history]
        curves.append(charts.Curve(t("generalise.val_of", run=label), epochs, val, dash="dash", color=i))
    return curves


def _verdict_ui(view: JobView, labels: list[str]) -> None:
    """Per run: the validation/training ratio now, its best validation epoch, and whether it is overfitting."""
    cols = st.columns(len(view.runs))
    for col, run, label in zip(cols, view.runs, labels, strict=True):
        hist = [h for h in run.history if h.get("val_perplexity") is not None]
        if not hist:
            continue
        last = hist[-1]
        best = min(hist, key=lambda h: h["val_perplexity"])
        with col:
            ratio = last["val_perplexity"] / last["perplexity"]
            shown = f"{ratio:.2f}" if ratio < 10 else f"{ratio:,.0f}"
            st.metric(f"{label} · {t('generalise.gap')}", shown, help=t("generalise.gap_help"))
            st.caption(t("generalise.best", e=best["epoch"], v=best["val_perplexity"]))
            falling = len(hist) >= 2 and hist[-1]["perplexity"] < hist[-2]["perplexity"]
            if best["epoch"] < last["epoch"] and falling:
                st.warning(t.md("generalise.rising", run=label, e=best["epoch"]))


def _draw(job: Job, view: JobView) -> None:
    labels = jobs_ui.run_labels(view)
    jobs_ui.progress_ui(view, labels)
    jobs_ui.controls_ui(PAGE, job, view)
    lines = []
    for i, label in enumerate(labels):
        b = job.baselines(i)
        if b is not None:
            lines.append((b.bigram, t("generalise.bigram", run=label, v=b.bigram)))
    fig = charts.perplexity_figure(
        _curves(view, labels),
        view.planned_epochs,
        t("generalise.chart_title"),
        t("common.epoch"),
        t("common.perplexity"),
        baselines=lines,
    )
    st.plotly_chart(fig, width="stretch", key=f"{PAGE}:chart")
    st.subheader(t("generalise.verdict_title"))
    _verdict_ui(view, labels)
    if view.done:
        st.info(t("generalise.then_generate"))
    training_page.metrics_ui(view, labels)


def _about_ui(values: dict) -> str:
    """The two corpora and what the budget means for each; why not, when the bundled Song ci is missing."""
    try:
        small, large = lessons.corpora()
    except LabError as exc:
        return t.md("generalise.no_songci", msg=localized(exc, current_lang()))
    n_large_val = len(large) - large.split_point(lessons.LARGE_VAL)
    st.caption(
        t.md(
            "generalise.corpora",
            small=run_label("small"),
            sv=lessons.SMALL_VAL,
            large=run_label("large"),
            lv=lessons.LARGE_VAL,
            ln=n_large_val,
        )
    )
    steps = values["steps_per_epoch"] or lessons.PRESET.steps_per_epoch
    if not values["steps_per_epoch"]:
        st.caption(t("generalise.whole_pass_here", n=steps))
    chars = steps * values["batch_size"] * values["num_steps"]
    st.caption(
        t(
            "generalise.budget",
            n=steps,
            b=values["batch_size"],
            s=values["num_steps"],
            r=chars / len(small),
            p=len(large) / chars,
        )
    )
    return ""


def _plan(values: dict, choice: object) -> training_page.StartPlan:
    """What the lesson's corpora make of the budget, then Train: both models, unless Song ci is missing."""
    return training_page.StartPlan(lambda: _start(values), blocked=_about_ui(values))


TEXTS = training_page.PageTexts(
    N_("generalise.title"), N_("generalise.intro"), N_("generalise.preset_help"), N_("generalise.no_job")
)
FRAME = training_page.TrainingPage(
    PAGE,
    FIELDS,
    DEFAULTS,
    TEXTS,
    book_label_key=N_("generalise.preset"),
    start_label_key=N_("generalise.start"),
    presets_menu=False,
    corpus_picker=False,
)


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    training_page.training_page_ui(FRAME, _plan, _draw, under_settings=training_page.setting_problem_ui)


main()
