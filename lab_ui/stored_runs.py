"""A run the store keeps but no server trains now (after a restart): how it ended, in words, and Resume.

My runs and a training page opened by the run's own link (`?job=`) both show such a run; they say the same thing
and resume it the same way, so that lives here once.
"""

from __future__ import annotations

import streamlit as st

from lm_core.errors import LabError, localized
from lm_core.serve.store import RunRecord
from lm_core.training import TrainConfig

from . import jobs_ui, settings
from .i18n import current_lang, t
from .session import manager, owner_id

KIND_PAGES = {"train": "pages/train.py", "sampling": "pages/sampling.py", "clipping": "pages/clipping.py"}


def status_text(record: RunRecord) -> str:
    """The run's status in words; an interrupted run says at which epoch."""
    status = record.status
    text = t(jobs_ui.STATUS_LABELS[status]) if status in jobs_ui.STATUS_LABELS else status
    return t("my_runs.status_at_epoch", status=text, e=record.epoch) if status == "interrupted" else text


def resume(record: RunRecord, extra: int) -> None:
    """Continue the run's whole job from the store and show it on the page that started it."""
    try:
        job = manager().resume_stored(record.job_id, owner_id(), extra_epochs=extra)
    except LabError as exc:
        st.error(localized(exc, current_lang()))
        return
    if job is None:
        return
    st.session_state[jobs_ui.job_key(record.kind)] = job.id
    st.query_params["job"] = job.id
    if record.kind in KIND_PAGES:
        if st.session_state.get("page") != record.kind:  # on its own page the settings are drawn already
            _show_settings_of(record)
        st.switch_page(KIND_PAGES[record.kind])


def _show_settings_of(record: RunRecord) -> None:
    """Set the run's page's settings to the run's own, so the page describes the run that trains (its settings box,
    Continue, its lesson link), not the defaults or another run's settings. The comparison choice stays: a record
    is one run of its job."""
    try:
        values = settings.defaults_from(TrainConfig.from_dict(record.config))
    except (TypeError, ValueError):  # a record written by an older version: the page keeps what it shows
        return
    names = [name for name in settings.PAGE_FIELDS.get(record.kind, ()) if name != "compare" and name in values]
    settings.apply_values(record.kind, {name: values[name] for name in names})


def stored_job_ui(page: str) -> None:
    """The page's link names this browser's saved run that no server trains now: say where it stopped and, when it
    was interrupted before its planned epochs, offer Resume here; else send the reader to My runs.

    Shown until the page has a run again (resumed here, or a new one), so the Resume button outlives its click.
    """
    key = jobs_ui.stored_job_key(page)
    job_id = st.session_state.get(key)
    if not job_id:
        return
    store = manager().store
    records = [r for r in store.runs(owner_id()) if r.job_id == job_id] if store is not None else []
    if not records or jobs_ui.page_job(page) is not None:
        st.session_state.pop(key, None)
        return
    record = min(records, key=lambda r: r.run_index)  # runs of one job train in lockstep: the first speaks for all
    if record.status == "interrupted" and record.epoch < record.planned:
        st.warning(t("stored_runs.interrupted", e=record.epoch, planned=record.planned))
        if st.button(t("my_runs.resume", e=record.epoch), key=f"{page}:stored_resume:{record.id}", type="primary"):
            resume(record, 0)
    else:
        st.info(t("common.stored_job"))
    st.page_link("pages/my_runs.py", label=t("common.page_my_runs"), icon=":material/history:")
