"""A page's training job: start it, control it, and redraw it while it runs.

The job itself lives in the process-wide `JobManager` (a background thread);
the page keeps only its id, in `st.session_state` and in the URL (`job`), so
switching pages or reloading the tab finds the same job. `live_ui` draws a
fragment that polls the job every half second while it lives (paused too, so
an open tab's job is never reaped) and not at all when it is done; the
Pause/Resume/Step/Stop buttons only flip the trainer's events, so they answer
at once even in the middle of an epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from lm_core.errors import LabError, localized
from lm_core.jobs import Job, JobView
from lm_core.training import Trainer

from .charts import Curve, perplexity_figure
from .corpus_ui import CorpusChoice, corpus_summary_ui
from .i18n import Translator, current_lang, t
from .runs import curves_from_view
from .session import MAX_RUNNING_JOBS, manager, owner_id
from .text import escape_markdown

POLL_SECONDS = 0.5  # also keeps an open tab's job from being reaped
_t = Translator(
    {
        "run_diverged": (
            "「{label}」在第 {e} 个周期第 {s} 步发散：损失变为 {loss}。这次训练已停止，模型回退到上一个周期结束时的权重。",
            "“{label}” diverged at epoch {e}, step {s}: the loss became {loss}. This run stopped; its weights were "
            "rolled back to the end of the previous epoch.",
        ),
        "run_diverged_plain": ("「{label}」发散：{msg}", "“{label}” diverged: {msg}"),
        "job_finished": ("已完成 {n} 个周期。", "Finished {n} epochs."),
    }
)


def _key(page: str) -> str:
    return f"{page}:job"


def page_job(page: str) -> Job | None:
    """This page's job for this browser, re-attached from the URL after a reload."""
    job_id = st.session_state.get(_key(page))
    if job_id is None and f"{page}:url_checked" not in st.session_state:
        st.session_state[f"{page}:url_checked"] = True
        url_id = st.query_params.get("job")
        if url_id:
            found = manager().get(url_id, owner_id())
            if found is not None and found.kind == page:
                st.session_state[_key(page)] = job_id = url_id
            elif found is None:
                st.session_state[f"{page}:foreign_job"] = True
        if job_id is None:  # a reload without the id in the URL: this browser's latest run of the page
            latest = manager().latest(owner_id(), page)
            if latest is not None:
                st.session_state[_key(page)] = job_id = latest.id
    job = manager().get(job_id, owner_id())
    if job is not None and st.session_state.get("page") == page:
        st.query_params["job"] = job.id
    return job


def foreign_job_notice(page: str) -> None:
    """Say so when the URL names a job this browser cannot see."""
    if st.session_state.pop(f"{page}:foreign_job", False):
        st.info(t("foreign_job"))


def start_job(
    page: str, trainers: list[Trainer], labels: list[str], prefixes: tuple[str, ...] = (), sample_every: int = 10
) -> Job:
    """Replace this page's job by a new one (the old one is stopped, not leaked)."""
    old = page_job(page)
    if old is not None and not old.done:
        old.stop()
    job = manager().submit(owner_id(), trainers, labels, prefixes=prefixes, sample_every=sample_every, kind=page)
    st.session_state[_key(page)] = job.id
    st.query_params["job"] = job.id
    return job


def _status_text(view: JobView) -> str:
    if view.status == "queued":
        return t("status_queued", n=max(0, view.queue_position - 1), cap=MAX_RUNNING_JOBS)
    return t(f"status_{view.status}")


def controls_ui(page: str, job: Job, view: JobView) -> None:
    """Pause/Resume, Step and Stop; callbacks only flip events, so they never block."""
    cols = st.columns(3)
    paused = view.status == "paused"
    with cols[0]:
        if paused:
            st.button(t("resume"), key=f"{page}:resume", on_click=job.resume, width="stretch", disabled=view.done)
        else:
            st.button(t("pause"), key=f"{page}:pause", on_click=job.pause, width="stretch", disabled=view.done)
    with cols[1]:
        st.button(
            t("step"), key=f"{page}:step", on_click=job.step_epoch, width="stretch", disabled=view.done or not paused
        )
    with cols[2]:
        st.button(t("stop_run"), key=f"{page}:stop", on_click=job.stop, width="stretch", disabled=view.done)


def progress_ui(view: JobView) -> None:
    """Progress bar with epoch, time left and characters per second."""
    epoch, eta = view.epoch, view.eta_seconds
    frac = epoch / view.planned_epochs if view.planned_epochs else 0.0
    parts = [t("epoch_of", e=epoch, n=view.planned_epochs), _status_text(view)]
    if eta is not None and view.status == "running":
        parts.append(t("time_left", s=_fmt_seconds(eta)))
    if view.tokens_per_s:
        parts.append(t("tokens_s", v=view.tokens_per_s))
    st.progress(min(1.0, frac), text=" · ".join(parts))
    if view.status == "queued":
        st.info(_status_text(view))
    divergence_ui(view)
    covered = view.status in ("diverged", "finished") and any(r.status == "diverged" for r in view.runs)
    if view.status == "finished" and not covered:
        st.success(_t("job_finished", n=view.planned_epochs))  # lm_core's own message is English only
    elif view.message and view.done and not covered:
        (st.error if view.status in ("error", "diverged") else st.success)(escape_markdown(view.message))


def divergence_ui(view: JobView) -> None:
    """One error per diverged run, as soon as it happens: in a comparison the other run trains on."""
    for run in view.runs:
        if run.status != "diverged":
            continue
        end = run.end
        if end is not None and end.loss is not None:
            st.error(_t.md("run_diverged", label=run.label, e=end.epoch + 1, s=end.step, loss=f"{end.loss:g}"))
        else:
            st.error(_t.md("run_diverged_plain", label=run.label, msg=run.message))


def _fmt_seconds(s: float) -> str:
    s = round(s)
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def live_ui(page: str, draw: Callable[[Job, JobView], None]) -> None:
    """Draw `draw(job, view)` in a fragment that polls while the job is alive.

    The polling rate never changes while the job lives (paused included): a full
    rerun to change it could swallow a Pause/Stop click made in that instant.
    The one full rerun comes when the job ends, to stop polling and refresh the
    page's other buttons (Continue, downloads).
    """
    job = page_job(page)
    if job is None:
        return
    alive = not manager().view(job).done

    @st.fragment(run_every=POLL_SECONDS if alive else None)
    def _panel() -> None:
        job = page_job(page)
        if job is None:
            return
        view = manager().view(job)
        draw(job, view)
        if alive and view.done:
            st.rerun()

    _panel()


def corpus_status_ui(choice: CorpusChoice, values: dict[str, Any]) -> None:
    """Why the corpus cannot be used, or its size, vocabulary and minibatches for these settings."""
    if choice.error:
        st.warning(t.md("corpus_error", msg=choice.error))
    else:
        corpus_summary_ui(choice, values["batch_size"], values["num_steps"])


def start_section_ui(page: str, choice: CorpusChoice, values: dict[str, Any], start: Callable[[], None]) -> None:
    """Corpus status and the Train button; a `LabError` from `start` becomes a message."""
    corpus_status_ui(choice, values)
    if st.button(t("start"), key=f"{page}:start", type="primary", disabled=choice.corpus is None):
        try:
            start()
        except LabError as exc:
            st.error(t.md("bad_setting", msg=localized(exc, current_lang())))


def run_section_ui(page: str, draw: Callable[[Job, JobView], None], no_job_text: str) -> None:
    """The page's run: a notice for a foreign job id, a hint when there is none, else the live view."""
    foreign_job_notice(page)
    if page_job(page) is None:
        st.info(no_job_text)
    live_ui(page, draw)


def _ngram_lines(job: Job) -> list[tuple[float, str]]:
    """Unigram / bigram validation perplexities of the first run's split (runs in lockstep share the corpus)."""
    b = job.trainers[0].baselines if job.trainers else None
    return [(b.unigram, f"unigram {b.unigram:.0f}"), (b.bigram, f"bigram {b.bigram:.0f}")] if b else []


def run_header_ui(page: str, job: Job, view: JobView, title: str, curves: list[Curve] | None = None) -> None:
    """Progress, the run buttons and the perplexity chart every training page starts its live view with.

    `curves` defaults to one per run, labelled as the job labelled them.
    """
    progress_ui(view)
    controls_ui(page, job, view)
    fig = perplexity_figure(
        curves if curves is not None else curves_from_view(view),
        view.planned_epochs,
        title,
        t("epoch"),
        t("perplexity"),
        vocab_size=len(job.checkpoint(0).vocab),
        baseline_label=t("baseline"),
        baselines=_ngram_lines(job),
    )
    st.plotly_chart(fig, width="stretch", key=f"{page}:chart")
