"""Random vs adjacent sampling: one model trained both ways in lockstep, and a picture of the minibatches."""

from __future__ import annotations

import streamlit as st

from lab_ui import charts, corpus_ui, jobs_ui, session, settings, training_page
from lab_ui.i18n import N_, current_lang, run_label, t
from lab_ui.runs import curves_from_view
from lm_core import lessons
from lm_core.sampling import describe_minibatches
from lm_core.serve.job import Job
from lm_core.serve.views import JobView
from lm_core.songci import DEFAULT_SUBSET
from lm_core.training import Trainer

PAGE = "sampling"
FIELDS = settings.PAGE_FIELDS[PAGE]  # every setting except `sampling`: the page trains both modes
MODES = ("random", "adjacent")  # run 0 and run 1 of the job, in this order
PICTURE_MINIBATCHES = 4
PICTURE_ROWS = 8
PICTURE_TITLES = {"random": N_("sampling.mb_title_random"), "adjacent": N_("sampling.mb_title_adjacent")}


# The lesson's settings, not the book's: on the book's 10,000 characters the two curves overlap and cross for about
# 40 epochs; on 5,000 with batch 16 adjacent is lower from epoch 27-28 on every seed (see lessons.SAMPLING_PRESET).
DEFAULTS = settings.defaults_from(lessons.SAMPLING_PRESET)
LESSON_CORPUS = {"corpus:source": "songci", "corpus:subset": DEFAULT_SUBSET, "corpus:max_chars": lessons.SAMPLING_CHARS}

TEXTS = training_page.PageTexts(
    N_("sampling.title"), N_("sampling.intro"), N_("sampling.lesson_preset_help"), N_("sampling.no_job")
)
FRAME = training_page.TrainingPage(
    PAGE,
    FIELDS,
    DEFAULTS,
    TEXTS,
    book_label_key=N_("sampling.lesson_preset"),
    preset_help_key=N_("sampling.preset_sampling_note"),
    corpus_values=LESSON_CORPUS,
)


def _start(values: dict, choice: corpus_ui.CorpusChoice) -> None:
    """Two trainers from one config and one seed, so both start from the same weights."""
    trainers = [Trainer(choice.corpus, settings.to_config({**values, "sampling": mode})) for mode in MODES]
    jobs_ui.start_job(PAGE, trainers, list(MODES))  # keys; _draw names them in the current language


def _latest_ui(view: JobView) -> None:
    """Both runs' perplexity at the last epoch they share, and the gap."""
    if view.epoch < 1 or any(len(r.history) < view.epoch for r in view.runs):
        return
    rnd, adj = (r.history[view.epoch - 1]["perplexity"] for r in view.runs)
    cols = st.columns(2)
    cols[0].metric(f"{t('common.run_random')} · {t('sampling.latest', e=view.epoch)}", f"{rnd:,.1f}")
    cols[1].metric(
        f"{t('common.run_adjacent')} · {t('sampling.latest', e=view.epoch)}",
        f"{adj:,.1f}",
        delta=f"{adj - rnd:+,.1f}",
        delta_color="inverse",
        help=t("sampling.gap_help"),
    )


def _draw(job: Job, view: JobView) -> None:
    labels = jobs_ui.run_labels(view)  # follow the language switch, not the language at start
    curves = curves_from_view(view, labels=labels)
    jobs_ui.run_header_ui(PAGE, job, view, t("sampling.chart_title"), curves)
    st.caption(t("sampling.lesson_shows"))
    _latest_ui(view)
    training_page.metrics_ui(view, labels)


def _minibatches_ui(n_chars: int, values: dict) -> None:
    """The first minibatches of epoch 1 in both modes, with the text that explains them."""
    b, s, seed = values["batch_size"], values["num_steps"], values["seed"]
    st.subheader(t("sampling.mb_header"))
    st.caption(t("sampling.mb_caption", k=PICTURE_MINIBATCHES, b=b, s=s, seed=seed))
    note = t("sampling.mb_rows_note", n=PICTURE_ROWS, b=b) if b > PICTURE_ROWS else ""
    text = charts.MinibatchText.in_language(current_lang())
    for mode in MODES:
        spans = describe_minibatches(n_chars, b, s, mode, k=PICTURE_MINIBATCHES, seed=seed)
        if not spans:
            st.warning(t("sampling.mb_none", mode=run_label(mode)))
            continue
        fig = charts.minibatch_figure(
            spans,
            n_chars,
            t(PICTURE_TITLES[mode], note=note),
            text=text,
            max_rows=PICTURE_ROWS,
            row_len=n_chars // b if mode == "adjacent" else None,
        )
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:mb:{mode}")
    st.markdown(t("sampling.explain"))
    st.info(t("sampling.behaviour_note"))


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice, values = training_page.training_page_ui(FRAME, training_page.plain_start(_start), _draw)
    if choice.corpus is not None:
        _minibatches_ui(len(choice.corpus), values)


main()
