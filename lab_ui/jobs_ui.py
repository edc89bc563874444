"""A page's training job: start it, control it, and redraw it while it runs.

The job itself lives in the process-wide `JobManager` (a background thread);
the page keeps only its id, in `st.session_state` and in the URL (`job`), so
switching pages or reloading the tab finds the same job. `live_ui` draws the
run in a fragment that is redrawn only when the run has news: its first
element, the poll component (`lab_ui.poll`), asks an HTTP route about the run
(no script run) and reruns the fragment when the answer differs from what it
drew; the route also keeps an open tab's job from being reaped. The
Pause/Resume/Step/Stop buttons only flip the trainer's events, so they answer
at once even in the middle of an epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from lm_core import memory
from lm_core.errors import LabError, localized
from lm_core.serve.job import FAILED, Job, ran_out_of_memory
from lm_core.serve.views import JobView
from lm_core.training import Trainer, check_validation

from . import settings, turns
from .charts import Curve, perplexity_figure
from .corpus_ui import CorpusChoice, corpus_summary_ui
from .i18n import N_, current_lang, run_label, t
from .poll import view_poll_element
from .runs import curves_from_view
from .session import MAX_RUNNING_JOBS, manager, owner_id
from .text import escape_markdown

# A job's status (lm_core.serve) in words; "queued" takes the place in line and the cap (see `status_text`).
STATUS_LABELS = {
    "queued": N_("common.status_queued"),
    "running": N_("common.status_running"),
    "paused": N_("common.status_paused"),
    "finished": N_("common.status_finished"),
    "stopped": N_("common.status_stopped"),
    "diverged": N_("common.status_diverged"),
    "error": N_("common.status_error"),
    "failed": N_("common.status_failed"),
    "interrupted": N_("common.status_interrupted"),
    "ready": N_("common.status_ready"),
}


def job_key(page: str) -> str:
    """The session-state key holding the id of `page`'s job for this browser.

    My runs sets it to send a run back to its page; tests read it to find the job a page started.
    Both build it here so the key has one spelling.
    """
    return f"{page}:job"


def page_job(page: str) -> Job | None:
    """This page's job for this browser, re-attached from the URL after a reload."""
    job_id = st.session_state.get(job_key(page))
    if job_id is None and f"{page}:url_checked" not in st.session_state:
        st.session_state[f"{page}:url_checked"] = True
        url_id = st.query_params.get("job")
        if url_id:
            found = manager().get(url_id, owner_id())
            if found is not None and found.kind == page:
                st.session_state[job_key(page)] = job_id = url_id
            elif found is None:
                store = manager().store
                if store is not None and any(r.job_id == url_id for r in store.runs(owner_id())):
                    st.session_state[stored_job_key(page)] = url_id  # see `stored_runs.stored_job_ui`
                else:
                    st.session_state[f"{page}:foreign_job"] = True
        if job_id is None:  # a reload without the id in the URL: this browser's latest run of the page
            latest = manager().latest(owner_id(), page)
            if latest is not None:
                st.session_state[job_key(page)] = job_id = latest.id
    job = manager().get(job_id, owner_id())
    if job is not None and st.session_state.get("page") == page:
        st.query_params["job"] = job.id
    return job


def foreign_job_notice(page: str) -> None:
    """Say so when the URL names a job this browser cannot see."""
    if st.session_state.pop(f"{page}:foreign_job", False):
        st.info(t("common.foreign_job"))


def stored_job_key(page: str) -> str:
    """The session-state key holding the id of the saved, not running, job that `page`'s link named."""
    return f"{page}:stored_job"


def check_room(page: str) -> None:
    """Raise `LabFull` when the server, or this browser, has no room for another job: before a page builds a model.

    The page's own run does not count: a new one replaces it.
    """
    old = page_job(page)
    manager().check_room(owner_id(), replacing=old.id if old is not None else None)


def start_job(
    page: str, trainers: list[Trainer], labels: list[str], prefixes: tuple[str, ...] = (), sample_every: int = 10
) -> Job:
    """Replace this page's job by a new one (the old one is stopped, not leaked; kept if the new one cannot fit)."""
    manager().check_fits(trainers)
    old = page_job(page)
    if old is not None and not old.done:
        old.stop()
    job = manager().submit(owner_id(), trainers, labels, prefixes=prefixes, sample_every=sample_every, kind=page)
    st.session_state[job_key(page)] = job.id
    st.query_params["job"] = job.id
    return job


def confirm_start(page: str, pressed: bool) -> bool:
    """True when a new run should start now: at once if nothing is running, else only after a confirmation.

    Pressing Train while the page's run is alive asks first (two buttons) instead of silently
    stopping that run; the question stays until answered or the run ends by itself.
    """
    key, go = f"{page}:confirm_replace", f"{page}:replace_go"
    if st.session_state.pop(go, False):  # "replace" was clicked (its callback ran before this script run)
        return True
    job = page_job(page)
    alive = job is not None and not job.done
    if not alive:
        st.session_state.pop(key, None)
        return pressed
    if pressed:
        st.session_state[key] = True
    if not st.session_state.get(key):
        return False
    st.warning(t("jobs.replace_question"))
    yes_col, no_col = st.columns(2)
    yes_col.button(
        t("jobs.replace_yes"), key=f"{page}:replace_yes", type="primary", on_click=_answer, args=(page, True)
    )
    no_col.button(t("jobs.replace_no"), key=f"{page}:replace_no", on_click=_answer, args=(page, False))
    return False


def _answer(page: str, replace: bool) -> None:
    """Callback of the replace question: forget the question, remember a 'yes' for the next run."""
    st.session_state.pop(f"{page}:confirm_replace", None)
    if replace:
        st.session_state[f"{page}:replace_go"] = True


def status_text(view: JobView) -> str:
    """The job's state in words; a queued job says how many wait before it (none: it is starting)."""
    if view.status == "queued":
        if view.queue_position <= 0:  # not in the waiting line: its thread is taking a slot right now
            return t("common.status_starting")
        if view.queue_position == 1:
            return t("common.status_next", cap=MAX_RUNNING_JOBS)
        return t("common.status_queued", n=view.queue_position - 1, cap=MAX_RUNNING_JOBS)
    return t(STATUS_LABELS[view.status]) if view.status in STATUS_LABELS else view.status


def controls_ui(page: str, job: Job, view: JobView) -> None:
    """Pause/Resume, Step and Stop; callbacks only flip events, so they never block."""
    cols = st.columns(3)
    paused = view.status == "paused"
    with cols[0]:
        if paused:
            action, label, key = job.resume, t("common.resume"), f"{page}:resume"
        else:
            action, label, key = job.pause, t("common.pause"), f"{page}:pause"
        st.button(label, key=key, on_click=action, width="stretch", disabled=view.done)
    with cols[1]:
        st.button(
            t("common.step"),
            key=f"{page}:step",
            on_click=job.step_epoch,
            width="stretch",
            disabled=view.done or not paused,
        )
    with cols[2]:
        st.button(
            t("common.stop_run"), key=f"{page}:stop", on_click=job.stop, width="stretch",
            disabled=view.done,
        )  # fmt: skip


def run_labels(view: JobView) -> list[str]:
    """Each run's name in the current language.

    Jobs store language-free keys (model kinds such as "gru"), so a language switch
    relabels a run that started in the other language.
    """
    return [run_label(run.label, run.config.get("clip")) for run in view.runs]


def ended_text(status: str, epoch: int, planned: int, message: str = "", early: bool = False) -> str:
    """How a run ended, in the UI's language, as Markdown, from its status and epoch counts.

    `early`: early stopping ended it. lm_core's own end messages are English only, so they are shown
    only where no status says more; an error's text is escaped (it may quote a file name).
    """
    if status == "finished" and early:
        return t("jobs.job_finished_early", e=epoch)
    if status == "finished":
        return t("jobs.job_finished", n=planned)
    if status == "stopped":
        return t("jobs.job_stopped", e=epoch, n=planned)
    if ran_out_of_memory(status, message):
        return t("jobs.job_out_of_memory", e=epoch)
    if status == "failed":
        return t("jobs.job_failed", e=epoch)
    if status == "interrupted":
        return t("jobs.job_interrupted", e=epoch)
    if status == "diverged":
        return t("jobs.job_diverged", e=epoch)
    if status == "error":
        return t.md("jobs.job_error", msg=message.removeprefix(FAILED))
    return escape_markdown(message)


def end_message(view: JobView) -> str:
    """How a finished job ended (see `ended_text`); every run stopped early is said so, not "finished N"."""
    if view.status == "finished" and view.runs and all(r.stopped_early for r in view.runs):
        return t("jobs.job_finished_early", e=max(len(r.history) for r in view.runs))
    return ended_text(view.status, view.epoch, view.planned_epochs, view.message)


def best_weights_ui(view: JobView, labels: list[str]) -> None:
    """Which epoch's weights each run keeps when early stopping chose them: the weights say where they came from."""
    for run, label in zip(view.runs, labels, strict=True):
        if not run.config.get("patience") or not run.history:
            continue
        best = run.end.best_epoch if run.end is not None else None
        best = best or run.history[-1].get("best_epoch")  # a run that used all its epochs has no end event
        if best is None:
            continue
        if run.stopped_early:
            st.info(t.md("jobs.run_early", label=label, p=run.config["patience"], best=best))
        elif view.status == "finished" and run.status == "finished":
            st.caption(t.md("jobs.run_best_kept", label=label, best=best, e=len(run.history)))


def progress_ui(view: JobView, labels: list[str] | None = None) -> None:
    """Progress bar with epoch, time left and characters per second."""
    epoch, eta = view.epoch, view.eta_seconds
    frac = epoch / view.planned_epochs if view.planned_epochs else 0.0
    parts = [t("common.epoch_of", e=epoch, n=view.planned_epochs), status_text(view)]
    if eta is not None and view.status == "running":
        parts.append(t("common.time_left", s=_fmt_seconds(eta)))
    if view.tokens_per_s:
        parts.append(t("common.tokens_s", v=view.tokens_per_s))
    st.progress(min(1.0, frac), text=" · ".join(parts))
    # Notices come and go with the run's state; in one container they never move what follows (the buttons):
    # a redraw cut short by the next one leaves no stale copy of a button beside the new one.
    with st.container():
        notices_ui(view, labels)


def notices_ui(view: JobView, labels: list[str] | None = None) -> None:
    """What the run's state calls for: its place in the queue, divergence, kept weights, how it ended."""
    if view.status == "queued":
        st.info(status_text(view))
    divergence_ui(view, labels)
    best_weights_ui(view, labels or run_labels(view))
    covered = view.status in ("diverged", "finished") and any(r.status == "diverged" for r in view.runs)
    if view.status == "failed":
        st.error(ended_text(view.status, view.epoch, view.planned_epochs, view.message))
        st.page_link("pages/my_runs.py", label=t("common.page_my_runs"), icon=":material/history:")
    elif view.status == "interrupted":  # a Ray node or the cluster went away; the store has every finished epoch
        st.warning(t("jobs.job_interrupted", e=view.epoch))
        st.page_link("pages/my_runs.py", label=t("common.page_my_runs"), icon=":material/history:")
    elif view.done and not covered:
        (st.error if view.status in ("error", "diverged") else st.success)(end_message(view))


def divergence_ui(view: JobView, labels: list[str] | None = None) -> None:
    """One error per diverged run, as soon as it happens: in a comparison the other run trains on."""
    labels = labels or run_labels(view)
    for run, label in zip(view.runs, labels, strict=True):
        if run.status != "diverged":
            continue
        end = run.end
        if end is not None and end.loss is not None:
            st.error(t.md("jobs.run_diverged", label=label, e=end.epoch + 1, s=end.step, loss=f"{end.loss:g}"))
        else:
            st.error(t.md("jobs.run_diverged_plain", label=label, msg=run.message))


def _fmt_seconds(s: float) -> str:
    s = round(s)
    return t("jobs.minutes", m=s // 60, s=s % 60) if s >= 60 else t("jobs.seconds", s=s)


def live_ui(page: str, draw: Callable[[Job, JobView], None]) -> None:
    """Draw `draw(job, view)` in a fragment that is redrawn when the job has news (see the module's docstring).

    The fragment has no timer: its poll component reruns it when the run's
    token changes (an epoch, a status, the queue moving) and a click on one
    of its buttons reruns it too. The one full rerun comes when a job that was
    alive when the page ran in full is seen done: the page's other buttons
    (Continue, downloads) then change. A paused or queued run's tab asks
    slowly, a finished one not at all, and a busy server is asked less often.
    """
    job = page_job(page)
    if job is None:
        return
    alive = not job.done

    @turns.fragment
    def _panel() -> None:
        job = page_job(page)
        if job is None:
            return
        view = manager().view(job)
        view_poll_element(page, job, view)
        draw(job, view)
        if alive and view.done:
            st.rerun()

    _panel()


def corpus_status_ui(choice: CorpusChoice, values: dict[str, Any]) -> None:
    """Why the corpus cannot be used, or its size, vocabulary and minibatches for these settings."""
    if choice.error:
        st.warning(t.md("common.corpus_error", msg=choice.error))
    else:
        corpus_summary_ui(choice, values["batch_size"], values["num_steps"])
        problem = validation_problem(choice, values)
        if problem:
            st.warning(t.md("common.corpus_error", msg=problem))
        memory_ui(choice, values)


def memory_ui(choice: CorpusChoice, values: dict[str, Any]) -> None:
    """The run's estimated memory against what one run may use, said before Train is pressed.

    Over the budget: the engine's own refusal (the setting to lower and the largest value that fits), for the
    run and, in a comparison, for both runs together as their one worker holds them. Without detaching, where
    memory is what the exercise is about: the estimate and the budget.
    """
    if choice.corpus is None or settings.config_problem(values):
        return  # the settings' own problem is said above; there is no run to estimate
    configs = settings.run_configs(values)
    vocab, n_chars = choice.corpus.vocab_size, len(choice.corpus)
    try:
        memory.check_runs_memory(configs, vocab, n_chars)
    except LabError as exc:
        st.warning(t.md("common.bad_setting", msg=localized(exc, current_lang())))
        return
    if all(c.detach for c in configs):
        return
    note = memory.memory_note(configs[0], vocab, n_chars) if len(configs) == 1 else None
    st.caption((note or memory.runs_memory_note(configs, vocab, n_chars)).localize(current_lang()))


def validation_problem(choice: CorpusChoice, values: dict[str, Any]) -> str | None:
    """Why this corpus's validation split cannot fill one minibatch, in the UI's language (None: fine or off).

    Said before Train is pressed: the same check the trainer makes (`check_validation`) on the same split.
    """
    share = values.get("val_fraction") or 0.0
    if choice.corpus is None or share <= 0:
        return None
    try:
        n_val = len(choice.corpus) - choice.corpus.split_point(share)
        check_validation(n_val, values["batch_size"], values["num_steps"])
    except LabError as exc:
        return localized(exc, current_lang())
    return None


def run_section_ui(page: str, draw: Callable[[Job, JobView], None], no_job_text: str) -> None:
    """The page's run: a notice for a foreign job id, a hint when there is none, else the live view."""
    foreign_job_notice(page)
    if page_job(page) is None and stored_job_key(page) not in st.session_state:  # a saved run says its own
        st.info(no_job_text)
    live_ui(page, draw)


def _ngram_lines(job: Job) -> list[tuple[float, str]]:
    """Unigram / bigram validation perplexities of the first run's split (runs in lockstep share the corpus)."""
    b = job.baselines(0)
    return [(b.unigram, f"unigram {b.unigram:.0f}"), (b.bigram, f"bigram {b.bigram:.0f}")] if b else []


def run_header_ui(page: str, job: Job, view: JobView, title: str, curves: list[Curve] | None = None) -> None:
    """Progress, the run buttons and the perplexity chart every training page starts its live view with.

    `curves` defaults to one per run, named by `run_labels` (model names in the current language).
    """
    labels = [c.label for c in curves] if curves is not None else run_labels(view)
    progress_ui(view, labels)
    controls_ui(page, job, view)
    curves = curves if curves is not None else curves_from_view(view, labels=labels)
    # A poll that brought nothing new reuses the figure: building it is most of a redraw's cost.
    key = (job.id, view.planned_epochs, title, current_lang(), repr(curves))
    cached = st.session_state.get(f"{page}:figure")
    if cached is not None and cached[0] == key:
        fig = cached[1]
    else:
        fig = perplexity_figure(
            curves,
            view.planned_epochs,
            title,
            t("common.epoch"),
            t("common.perplexity"),
            vocab_size=_vocab_size(job),
            baseline_label=t("common.baseline"),
            baselines=_ngram_lines(job),
        )
        st.session_state[f"{page}:figure"] = (key, fig)
    st.plotly_chart(fig, width="stretch", key=f"{page}:chart")


def _vocab_size(job: Job) -> int:
    """The run's vocabulary, for the uniform-guess line: its weights' (a run continued from a checkpoint keeps
    that vocabulary), else its corpus's when the weights cannot be loaded."""
    try:
        return len(job.checkpoint(0).vocab)
    except LabError:
        return job.corpus(0).vocab_size
