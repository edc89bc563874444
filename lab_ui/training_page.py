"""The frame every training page (Train, Sampling, Clipping, Memorise or generalise) is drawn in.

The four pages differ in what they train and what they show beside the
perplexity chart, not in how a visitor gets there: title and intro, corpus
picker in the sidebar (a lesson brings its own corpora), presets and the
"Book settings" button, the settings expander, the Train button (with its
replace question) and the run below it. `training_page_ui` draws that frame
once, in that order, so a change to it (a key, a string, the order) happens on
every training page or on none; a page passes its own words and fills the few
places it differs (`StartPlan`, the hooks) and keeps only what is really its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from lm_core import memory
from lm_core.errors import LabError, localized
from lm_core.serve.job import Job
from lm_core.serve.manager import LabFull
from lm_core.serve.views import JobView

from . import corpus_ui, identity, jobs_ui, lesson, presets, settings, stored_runs
from .corpus_ui import CorpusChoice
from .i18n import current_lang, t
from .runs import shown_epochs_table
from .text import escape_markdown


@dataclass(frozen=True)
class PageTexts:
    """The catalogue keys of a training page's own words, each given as `N_("page.key")`.

    `no_job` is shown where the run will be until there is one.
    """

    title: str
    intro: str
    book_preset_help: str
    no_job: str


@dataclass(frozen=True)
class TrainingPage:
    """One training page's own parts.

    Its words are catalogue keys (`texts`, and the optional label and note), looked up
    when drawn, so in the language of that script run.
    """

    key: str  # prefix of the page's widget keys, and the kind of its jobs
    fields: Sequence[str]  # the settings the page shows (settings.FIELDS names)
    defaults: Mapping[str, Any]  # their first values; the Book button restores them
    texts: PageTexts
    book_label_key: str = ""  # key of the page's own label for the Book button; empty: the shared "Book settings"
    start_label_key: str = ""  # key of the page's own label for Train; empty: the shared one
    corpus_picker: bool = True  # the sidebar's corpus picker; False: the page trains on corpora of its own
    presets_menu: bool = True  # the preset picker above the Book button
    preset_help_key: str = ""  # key of why a preset applies only in part here; empty: no such note
    lesson_link: bool = False  # "Share this lesson" between the Train button and the run
    # The sidebar corpus picker's values (`corpus_ui.WIDGET_KEYS`) the Book button sets too: a page whose lesson
    # shows on its own slice of the corpus.
    corpus_values: Mapping[str, Any] = field(default_factory=dict)

    def page_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Only the settings this page shows: a preset must not set widgets the page does not have."""
        return {k: v for k, v in values.items() if k in self.fields}


@dataclass(frozen=True)
class StartPlan:
    """What pressing Train does on a page, and what the page adds to its start section.

    `beside` draws a second column next to Train (the Train page's Continue) and
    returns what to run when its own button was pressed, else None. `blocked`
    says why Train is off although there is a corpus (empty: it is not).
    """

    start: Callable[[], None]
    blocked: str = ""
    beside: Callable[[], Callable[[], None] | None] | None = None
    replace_note: bool = False  # say, while the page has a run, that Train replaces it


Plan = Callable[[dict[str, Any], CorpusChoice], StartPlan]  # the settings and corpus -> what Train does
NO_CORPUS = CorpusChoice(None, None, "")  # what a page without the corpus picker gets as its choice


def training_page_ui(
    page: TrainingPage,
    plan: Plan,
    draw: Callable[[Job, JobView], None],
    under_settings: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[CorpusChoice, dict[str, Any]]:
    """Draw the frame of a training page and return the corpus choice and settings, for what the page adds below.

    `plan(values, choice)` runs after the settings (it may draw, e.g. the Train
    page's start-from picker) and says what Train does; `draw` is the live view
    of the page's run; `under_settings(values)` adds notes inside the settings expander.
    """
    st.title(t(page.texts.title))
    st.caption(t(page.texts.intro))
    choice = NO_CORPUS
    if page.corpus_picker:
        with st.sidebar:
            choice = corpus_ui.corpus_ui()
    locked = identity.settings_fixed(page.key, page.fields)  # a lesson fixes some settings: no preset overrides them
    if page.presets_menu and not locked:
        note = t(page.preset_help_key) if page.preset_help_key else None
        presets.preset_ui(page.key, only=page.page_values, help_=note)
    if not locked:
        book_preset_button(page)
    with st.expander(t("common.settings"), expanded=True):
        values = settings.settings_ui(page.key, page.fields, page.defaults, columns=3)
        if under_settings is not None:
            under_settings(values)
    start_section_ui(page, choice, values, plan(values, choice))
    if page.lesson_link:
        lesson.lesson_link_ui()
    stored_runs.stored_job_ui(page.key)
    jobs_ui.run_section_ui(page.key, draw, t(page.texts.no_job))
    return choice, values


def plain_start(start: Callable[[dict[str, Any], CorpusChoice], None]) -> Plan:
    """The plan of a page whose Train only starts `start(values, choice)`: never blocked, nothing beside it."""
    return lambda values, choice: StartPlan(lambda: start(values, choice))


def book_preset_button(page: TrainingPage) -> None:
    """One click back to the page's book settings (its defaults), whatever preset or link set them."""
    st.button(
        t(page.book_label_key) if page.book_label_key else t("training_page.book_preset"),
        key=f"{page.key}:book",
        help=t(page.texts.book_preset_help),
        on_click=_apply_defaults,
        args=(page,),
    )


def _apply_defaults(page: TrainingPage) -> None:
    """The Book button's callback: the page's settings, and its corpus if it names one."""
    settings.apply_values(page.key, page.page_values(page.defaults))
    corpus_ui.apply_values(page.corpus_values)


def start_section_ui(frame: TrainingPage, choice: CorpusChoice, values: dict[str, Any], plan: StartPlan) -> None:
    """Corpus status, the Train button (and what the page puts beside it); a `LabError` becomes a message.

    Train asks first when the page's run is still alive (`jobs_ui.confirm_start`);
    a click beside it (Continue) runs only when Train did not start a run.
    """
    page = frame.key
    if frame.corpus_picker:
        jobs_ui.corpus_status_ui(choice, values)
    disabled = (frame.corpus_picker and choice.corpus is None) or bool(plan.blocked)
    label = t(frame.start_label_key) if frame.start_label_key else t("common.start")
    if plan.beside is None:
        pressed = st.button(label, key=f"{page}:start", type="primary", disabled=disabled)
        other = None
    else:
        start_col, beside_col = st.columns([1, 2])
        with start_col:
            pressed = st.button(label, key=f"{page}:start", type="primary", disabled=disabled)
        with beside_col:
            other = plan.beside()
    if plan.blocked:
        st.warning(plan.blocked)
    if plan.replace_note and jobs_ui.page_job(page) is not None:
        st.caption(t("common.replace_warning"))
    go = jobs_ui.confirm_start(page, pressed)
    try:
        if go or other is not None:
            jobs_ui.check_room(page)  # a full server refuses before anything is built
        if go:
            plan.start()
        elif other is not None:
            other()
    except LabFull as exc:
        st.warning(localized(exc, current_lang()))
    except LabError as exc:
        st.error(t.md("common.bad_setting", msg=localized(exc, current_lang())))


def setting_problem_ui(values: dict[str, Any]) -> None:
    """What is invalid in the settings (e.g. dropout with one layer), said as soon as it is chosen, not at Train."""
    problem = settings.config_problem(values)
    if problem:
        st.warning(t.md("common.bad_setting", msg=problem))


def metrics_ui(view: JobView, labels: list[str]) -> None:
    """Every run's numbers per epoch, folded away under the charts."""
    with st.expander(t("training_page.metrics")):
        st.dataframe(shown_epochs_table(view, labels), hide_index=True, width="stretch")


def side_by_side_ui(job: Job, view: JobView, labels: list[str]) -> None:
    """A comparison's runs in columns: seconds per epoch, gradient norm and peak memory, each run's own.

    What the "do not detach" exercise asks about, and worth a glance in any comparison: the runs train in
    lockstep in one worker, so their epochs are timed on the same machine at the same moment.
    """
    for col, (i, run), label in zip(st.columns(len(view.runs)), enumerate(view.runs), labels, strict=True):
        with col:
            st.markdown(f"**{escape_markdown(label)}**")
            corpus = job.corpus(i)
            estimate = memory.estimate_run_memory(job.config(i), corpus.vocab_size, len(corpus)).total
            history = run.history
            if history:
                seconds = sum(h["seconds"] for h in history) / len(history)
                last = history[-1]
                st.metric(
                    t("training_page.seconds_per_epoch"),
                    t("training_page.seconds_value", s=seconds),
                    help=t("training_page.seconds_help", n=len(history)),
                )
                st.metric(
                    t("training_page.grad_norm"),
                    f"{last['grad_norm_mean']:.3g}",
                    help=t("training_page.grad_norm_help", e=last["epoch"], max=f"{last['grad_norm_max']:.3g}"),
                )
            st.metric(
                t("training_page.peak_memory"), memory.size_text(estimate), help=t("training_page.peak_memory_help")
            )
            measured = [h["peak_rss"] for h in history if h.get("peak_rss")]
            if measured:
                st.caption(t("training_page.peak_measured", size=memory.size_text(max(measured))))
