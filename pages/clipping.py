"""Gradient clipping: the same model trained with and without clipping in lockstep, and its gradient norms."""

from __future__ import annotations

import statistics

import streamlit as st

from lab_ui import charts, corpus_ui, jobs_ui, presets, session, settings, training_page
from lab_ui.i18n import N_, t
from lab_ui.runs import curves_from_view
from lm_core.sampling import minibatches_per_epoch
from lm_core.serve.job import Job
from lm_core.serve.views import JobView, RunView
from lm_core.training import Trainer

PAGE = "clipping"
FIELDS = settings.PAGE_FIELDS[PAGE]
DEFAULTS = {**presets.PRESETS["book_random"], "epochs": 30}  # the book's run, short enough to watch
MAX_POINTS = 4000  # per trace in the gradient-norm chart


TEXTS = training_page.PageTexts(
    N_("clipping.title"), N_("clipping.intro"), N_("clipping.book_preset_help"), N_("clipping.no_job")
)
FRAME = training_page.TrainingPage(
    PAGE, FIELDS, DEFAULTS, TEXTS, book_label_key=N_("clipping.book_preset_30"), presets_menu=False
)


def _start(values: dict, choice: corpus_ui.CorpusChoice) -> None:
    """Two trainers from one config and one seed: clipped at θ, and clip=None."""
    trainers = [Trainer(choice.corpus, settings.to_config({**values, "clip_on": on})) for on in (True, False)]
    jobs_ui.start_job(PAGE, trainers, ["clip", "noclip"])  # keys; _draw names them in the current language


def _steps_per_epoch(job: Job, run: RunView) -> int:
    cfg = run.config
    n_chars = job.train_chars(0)  # fixed when the job was built
    return minibatches_per_epoch(n_chars, cfg["batch_size"], cfg["num_steps"], cfg["sampling"])


def _norm_traces(view: JobView, labels: list[str]) -> list[charts.NormTrace]:
    """Each run's norms; a run still training only up to its last finished epoch.

    Cutting at epoch boundaries keeps the figure identical between two polls in
    the same epoch, so Streamlit does not re-mount it twice a second.
    """
    traces = []
    for run, label in zip(view.runs, labels, strict=True):
        norms = run.step_norms
        if run.status in ("running", "paused", "queued"):
            norms = norms[: sum(h["steps"] for h in run.history)]
        diverged = run.status == "diverged"
        said = t("clipping.diverged_at", run=label, s=len(norms) + 1) if diverged else ""
        traces.append(charts.NormTrace(label, norms, diverged=diverged, diverged_text=said))
    return traces


def _share_ui(view: JobView, labels: list[str], theta: float) -> None:
    """Per run: share of steps clipped (or, unclipped, above θ) and the median norm before clipping."""
    for col, run, label in zip(st.columns(len(view.runs)), view.runs, labels, strict=True):
        n = len(run.step_norms)
        if not n:
            continue
        with col:
            st.markdown(f"**{label}**")
            left, right = st.columns(2)
            if run.config["clip"] is not None:
                share = 100 * sum(run.step_clipped) / n
                left.metric(
                    t("clipping.share_clipped"), t("clipping.share_value", p=share), help=t("clipping.share_help", n=n)
                )
            else:
                share = 100 * sum(v > theta for v in run.step_norms) / n
                left.metric(
                    t("clipping.share_above"),
                    t("clipping.share_value", p=share),
                    help=t("clipping.share_above_help", n=n),
                )
            right.metric(
                t("clipping.median_norm"), f"{statistics.median(run.step_norms):.3g}", help=t("clipping.median_help")
            )


def _draw(job: Job, view: JobView) -> None:
    theta = view.runs[0].config["clip"]
    labels = jobs_ui.run_labels(view)  # in the current language, whatever it was at start
    curves = curves_from_view(view, labels=labels)
    jobs_ui.run_header_ui(PAGE, job, view, t("clipping.chart_title"), curves)
    per_epoch = _steps_per_epoch(job, view.runs[0])
    norm_fig = charts.grad_norm_figure(
        _norm_traces(view, labels),
        theta,
        t("clipping.norm_title"),
        t("clipping.norm_x", n=per_epoch),
        t("clipping.norm_y"),
        theta_label=t("clipping.theta_line", theta=f"{theta:g}"),
        planned_steps=per_epoch * view.planned_epochs,
        max_points=MAX_POINTS,
    )
    st.plotly_chart(norm_fig, width="stretch", key=f"{PAGE}:norms")
    st.caption(t("clipping.norm_note", n=MAX_POINTS))
    _share_ui(view, labels, theta)
    training_page.metrics_ui(view, labels)


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    training_page.training_page_ui(FRAME, training_page.plain_start(_start), _draw)
    with st.expander(t("clipping.explain_header"), expanded=True):
        st.markdown(t("clipping.explain"))


main()
