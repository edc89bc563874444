"""Train page: pick corpus, model and hyperparameters, press Train, watch it learn."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import streamlit as st

from lab_ui import (
    corpus_ui,
    identity,
    jobs_ui,
    model_cache,
    model_source,
    persist,
    presets,
    session,
    settings,
    training_page,
)
from lab_ui.highlight import copied_html
from lab_ui.i18n import N_, current_lang, t
from lab_ui.runs import epochs_table
from lab_ui.text import escape_markdown
from lm_core import checkpoint, memory
from lm_core.checkpoint import Checkpoint
from lm_core.corpus import Corpus
from lm_core.errors import LabError, localized
from lm_core.generation import default_prefixes
from lm_core.limits import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from lm_core.serve.job import Job
from lm_core.serve.views import JobView
from lm_core.training import Trainer

PAGE = "train"
FIELDS = settings.PAGE_FIELDS[PAGE]


TEXTS = training_page.PageTexts(N_("train.title"), N_("train.intro"), N_("train.book_preset_help"), N_("train.no_job"))
FRAME = training_page.TrainingPage(PAGE, FIELDS, presets.PRESETS["book_random"], TEXTS, lesson_link=True)


def _labels(values: dict) -> list[str]:
    """Model kinds (or "detach"/"no_detach"), not names: the job keeps them and each drawing translates them
    (jobs_ui.run_labels)."""
    if values["compare"] == settings.NOT_DETACHED:
        return ["detach", "no_detach"]
    names = [values["model"]]
    if values["compare"] != "none":
        names.append(values["compare"])
    return names


def _start_from_ui() -> tuple[Checkpoint | None, bool]:
    """Optionally start from a shipped or uploaded checkpoint instead of random weights.

    Returns the checkpoint (None: a new model) and whether the choice is usable:
    a checkpoint that was picked but is missing or refused must not quietly
    become a new random model, so the page turns Train off until it is fixed.
    """
    files = model_cache.shipped_files()
    options = ["new", *[f.name for f in files], "upload"]
    labels = {"new": t("train.from_new"), "upload": t("train.from_upload")}
    persist.restore(f"{PAGE}:from")
    if st.session_state.get(f"{PAGE}:from") not in options:
        st.session_state[f"{PAGE}:from"] = "new"
    pick = st.selectbox(
        t("train.start_from"),
        options,
        key=f"{PAGE}:from",
        help=t("train.start_from_help"),
        format_func=lambda o: labels.get(o, o),
    )
    persist.save(f"{PAGE}:from")
    ckpt, error = None, None
    if pick == "upload":
        up = st.file_uploader(
            t("train.from_upload"),
            type=["pt"],
            key=f"{PAGE}:from_upload",
            help=t("common.upload_limit", mb=MAX_UPLOAD_MB),
            max_upload_size=MAX_UPLOAD_MB,
        )
        if up is not None:
            ckpt, error = model_cache.parse_upload(up.getvalue(), up.name)
        else:
            st.info(t("train.from_upload_first"))
    elif pick != "new":
        ckpt, error = model_cache.load_shipped(next(f for f in files if f.name == pick))
    if error:
        st.error(escape_markdown(error))
    if ckpt is not None:
        st.caption(t.md("train.from_note", d=model_source.describe(ckpt)))
        if ckpt.optimizer_dropped:
            st.caption(t("train.opt_dropped"))
    return ckpt, pick == "new" or ckpt is not None


def _resumed(ckpt: Checkpoint, corpus: Corpus, values: dict) -> Trainer:
    """A trainer that carries on from `ckpt`: its model, optimiser state and history, plus
    `values["epochs"]` more epochs with the other settings as they are now."""
    arch = ("model", "hidden", "num_layers", "dropout", "embed", "nonlinearity")  # the checkpoint's, not the widgets'
    cfg = settings.to_config({**values, **{k: getattr(ckpt.config, k) for k in arch}})
    return checkpoint.resume(ckpt, corpus, cfg, more_epochs=values["epochs"])


def _start(values: dict, choice: corpus_ui.CorpusChoice, base: Checkpoint | None = None) -> None:
    """Build trainers from the settings (or continue a checkpoint) and hand them to the job manager."""
    if base is not None:  # the checkpoint decides the model; the settings decide how to train it further
        trainers = [_resumed(base, choice.corpus, values)]
        labels = [base.config.model]
    else:
        configs = settings.run_configs(values)
        # Both runs' memory, as the one worker that trains them holds it, before either model is built.
        memory.check_runs_memory(configs, choice.corpus.vocab_size, len(choice.corpus))
        trainers = [Trainer(choice.corpus, config) for config in configs]
        labels = _labels(values)
    epochs = trainers[0].config.epochs
    jobs_ui.start_job(
        PAGE, trainers, labels, prefixes=default_prefixes(choice.corpus), sample_every=max(1, epochs // 25)
    )


def _draw(job: Job, view: JobView) -> None:
    jobs_ui.run_header_ui(PAGE, job, view, t("train.chart_title"))
    labels = jobs_ui.run_labels(view)
    if len(view.runs) > 1:  # right under the chart: what the "do not detach" lesson asks the student to compare
        with st.container():
            training_page.side_by_side_ui(job, view, labels)
    with st.container():  # samples appear after the first epoch: the elements below keep their places
        for run, label in zip(view.runs, labels, strict=True):
            if not run.samples:
                continue
            last = max(run.samples)
            st.markdown(f"**{escape_markdown(label)}** · " + t("train.samples", e=last))
            for prefix, text in run.samples[last].items():
                # HTML with every character escaped, not Markdown: a prefix such as "**" (an English corpus's
                # first characters) would leave bold markers unclosed and show stray asterisks.
                st.html(copied_html(text, len(prefix), [], "", t("train.prefix_title")))
    training_page.metrics_ui(view, labels)
    with st.container():
        if view.epoch > 0:
            _downloads(job, view, labels)


def _downloads(job: Job, view: JobView, labels: list[str]) -> None:
    """Checkpoint and CSV of the current run; built only when clicked."""
    cols = st.columns(len(view.runs) + 1)
    for i, run in enumerate(view.runs):
        with cols[i]:
            try:
                ckpt = job.checkpoint(i)
            except LabError as exc:  # its weights cannot be loaded: say so, the other runs' buttons stay
                st.caption(t("train.ckpt_unusable", m=labels[i], msg=localized(exc, current_lang())))
                continue
            undetached = "" if ckpt.config.detach else "-not-detached"  # the comparison's two files differ
            name = f"{ckpt.config.model}{undetached}-epoch{len(run.history)}"
            st.download_button(
                t("train.download_ckpt", m=labels[i]),
                data=lambda i=i: checkpoint.to_bytes(job.checkpoint(i)),
                file_name=f"{name}.pt",
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{PAGE}:dl:{i}",
                icon=":material/download:",
            )
            _upload_limit_note(ckpt, i, name)
    with cols[-1]:
        st.download_button(
            t("train.download_csv"),
            data=lambda: epochs_table(job.snapshot(), labels).to_csv(index=False).encode("utf-8"),
            file_name="perplexity.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"{PAGE}:dl:csv",
            icon=":material/table:",
        )


def _slim_bytes(ckpt: Checkpoint) -> bytes:
    return checkpoint.to_bytes(dataclasses.replace(ckpt, optimizer_state=None))


def _upload_limit_note(ckpt: Checkpoint, i: int, name: str) -> None:
    """A checkpoint the app made must load back into it: say when it is over the upload limit.

    When only the optimiser state (Adam's two moments) makes it too big, offer
    the file without it, which the app (and Continue) accept.
    """
    full = checkpoint.estimated_bytes(ckpt)
    if full <= MAX_UPLOAD_BYTES:
        return
    slim = checkpoint.estimated_bytes(ckpt, with_optimizer=False)
    if ckpt.optimizer_state and slim <= MAX_UPLOAD_BYTES:
        st.caption(t("train.download_slim_fits", mb=full / 2**20, limit=MAX_UPLOAD_MB))
        st.download_button(
            t("train.download_slim", mb=slim / 2**20),
            data=lambda: _slim_bytes(ckpt),
            file_name=f"{name}-slim.pt",
            mime="application/octet-stream",
            on_click="ignore",
            key=f"{PAGE}:dl_slim:{i}",
            icon=":material/download:",
        )
    else:
        st.caption(t("train.download_too_big", mb=full / 2**20, limit=MAX_UPLOAD_MB))


def _continue(job: Job, values: dict) -> None:
    """Train this page's finished or stopped run further: same models, optimiser states and histories."""
    try:
        trainers = [_resumed(job.checkpoint(i), job.corpus(i), values) for i in range(len(job.labels))]
    except LabError as exc:
        st.error(t("train.continue_unusable", msg=localized(exc, current_lang())))
        return
    jobs_ui.start_job(PAGE, trainers, list(job.labels), prefixes=job.prefixes, sample_every=job.sample_every)


def _continue_corpus_note(job: Job, choice: corpus_ui.CorpusChoice) -> None:
    """Say which corpus Continue trains on, loudly when the sidebar now shows another one."""
    name = corpus_ui.corpus_display_name(job.corpus(0).name)
    now = choice.corpus
    if now is not None and now.text != job.corpus_text(0):
        st.warning(t("train.continue_other_corpus", name=name, now=corpus_ui.corpus_display_name(now.name)))
    else:
        st.caption(t("train.continue_corpus", name=name))


def _continue_ui(values: dict, choice: corpus_ui.CorpusChoice) -> Callable[[], None] | None:
    """Continue beside Train: on only when this page's run is over; returns the continuation when it was pressed."""
    job = jobs_ui.page_job(PAGE)
    more = job is not None and job.done and job.epochs_done(0) > 0
    go_on = st.button(
        t("train.continue", n=values["epochs"]),
        key=f"{PAGE}:continue",
        disabled=not more,
        help=t("train.continue_help"),
    )
    if more:
        _continue_corpus_note(job, choice)
    return (lambda: _continue(job, values)) if go_on and job is not None else None


def _plan(values: dict, choice: corpus_ui.CorpusChoice) -> training_page.StartPlan:
    """The start-from picker, then what Train (a new model or the picked checkpoint) and Continue do.

    Under a lesson lock that fixes settings there is no picker: a checkpoint would bring its own model.
    """
    base, base_ok = None, True
    if not identity.settings_fixed(PAGE, FIELDS):
        with st.expander(t("train.start_from"), expanded=st.session_state.get(f"{PAGE}:from", "new") != "new"):
            base, base_ok = _start_from_ui()
    return training_page.StartPlan(
        start=lambda: _start(values, choice, base),
        blocked="" if base_ok else t("train.from_missing"),
        beside=lambda: _continue_ui(values, choice),
        replace_note=True,
    )


def _settings_notes(values: dict) -> None:
    """What is risky or invalid in the settings, said as soon as it is chosen, not only when Train is pressed."""
    if not values["clip_on"]:
        st.caption(t("train.clip_note_off"))
    training_page.setting_problem_ui(values)


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    training_page.training_page_ui(FRAME, _plan, _draw, under_settings=_settings_notes)


main()
