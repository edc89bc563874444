"""My runs: every run this browser started, kept in the run store across reloads and server restarts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from lab_ui import charts, corpus_ui, jobs_ui, session
from lab_ui.i18n import N_, current_lang, model_label, run_label, t
from lab_ui.session import manager, owner_id
from lm_core.errors import LabError, localized
from lm_core.limits import MAX_BYTES_PER_OWNER, MAX_RUNS_PER_OWNER
from lm_core.messages import Listed
from lm_core.serve.store import RunRecord

PAGE = "my_runs"
KIND_PAGES = {"train": "pages/train.py", "sampling": "pages/sampling.py", "clipping": "pages/clipping.py"}
MAX_EXTRA_EPOCHS = 1000
REMOTE_BUTTONS = (N_("my_runs.r_pause"), N_("my_runs.r_resume"), N_("my_runs.r_stop"))  # pause, resume, stop


def _status(record: RunRecord) -> str:
    status = record.status
    text = t(jobs_ui.STATUS_LABELS[status]) if status in jobs_ui.STATUS_LABELS else status
    return t("my_runs.status_at_epoch", status=text, e=record.epoch) if status == "interrupted" else text


def _date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _table(records: list[RunRecord]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            t("my_runs.col_run"): [run_label(r.label) for r in records],
            t("my_runs.col_status"): [_status(r) for r in records],
            t("my_runs.col_model"): [model_label(r.config.get("model", "")) for r in records],
            t("my_runs.col_corpus"): [corpus_ui.corpus_display_name(r.corpus_name) for r in records],
            t("my_runs.col_epochs"): [f"{r.epoch} / {r.planned}" for r in records],
            t("my_runs.col_best"): [round(r.best_perplexity, 2) if r.best_perplexity else None for r in records],
            t("my_runs.col_date"): [_date(r.created) for r in records],
        }
    )


def _option(record: RunRecord) -> str:
    """Language-free (a selectbox may format its options outside the session, where the language is unknown)."""
    return f"{record.label} · {_date(record.created)} · {record.epoch}/{record.planned}"


def _curve(record: RunRecord) -> charts.Curve:
    history = manager().store.history(record.id)
    diverged = (history[-1]["epoch"] if history else 0) + 1 if record.status == "diverged" else None
    return charts.Curve(
        f"{record.label} · {_date(record.created)}",
        [h["epoch"] for h in history],
        [h["perplexity"] for h in history],
        diverged_at=diverged,
    )


def _resume(record: RunRecord, extra: int) -> None:
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
        st.switch_page(KIND_PAGES[record.kind])


def _run_ui(record: RunRecord) -> None:
    st.plotly_chart(
        charts.perplexity_figure(
            [_curve(record)],
            max(record.planned, record.epoch),
            t("my_runs.chart_title"),
            t("common.epoch"),
            t("common.perplexity"),
        ),
        width="stretch",
        key=f"{PAGE}:chart",
    )
    if record.message:
        planned = record.epoch if record.status == "finished" else record.planned
        ended = jobs_ui.ended_text(record.status, record.epoch, planned, record.message, record.stopped_early)
        st.caption(t("my_runs.message", msg=ended))
    live = manager().get(record.job_id, owner_id())
    if live is not None and not live.done:
        st.info(t("my_runs.live"))
        if record.kind in KIND_PAGES and st.button(t("my_runs.go_page"), key=f"{PAGE}:go"):
            st.session_state[jobs_ui.job_key(record.kind)] = live.id
            st.switch_page(KIND_PAGES[record.kind])
        return
    if live is None and record.live and manager().live_elsewhere(record.job_id):
        _elsewhere_ui(record)
        return
    cols = st.columns(4)
    with cols[0]:
        if record.epoch < record.planned:
            if st.button(t("my_runs.resume", e=record.epoch), key=f"{PAGE}:resume", type="primary"):
                _resume(record, 0)
        else:
            extra = st.number_input(t("my_runs.extra"), 1, MAX_EXTRA_EPOCHS, 10, key=f"{PAGE}:extra")
            if st.button(t("my_runs.continue", n=extra), key=f"{PAGE}:continue"):
                _resume(record, int(extra))
    path = manager().store.checkpoint_path(record.id)
    with cols[1]:
        if path.is_file():
            st.download_button(
                t("my_runs.download_ckpt"),
                data=lambda: path.read_bytes() if path.is_file() else b"",
                file_name=f"{record.config.get('model', 'model')}-epoch{record.epoch}.pt",
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{PAGE}:dl",
                icon=":material/download:",
            )
    with cols[2]:
        st.download_button(
            t("my_runs.download_csv"),
            data=lambda: pd.DataFrame(manager().store.history(record.id)).to_csv(index=False).encode("utf-8"),
            file_name="perplexity.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"{PAGE}:dl:csv",
            icon=":material/table:",
        )
    with cols[3]:
        if st.button(t("my_runs.delete"), key=f"{PAGE}:delete"):
            manager().store.delete(record.id, owner_id())
            st.session_state.pop(f"{PAGE}:open", None)
            st.rerun()
    st.caption(t("my_runs.use_note"))


def _elsewhere_ui(record: RunRecord) -> None:
    """Controls for the owner's run that another server on the same Ray cluster drives (found by name on Ray)."""
    st.info(t("my_runs.elsewhere"))
    cols = st.columns(4)
    for col, action, key in zip(cols, ("pause", "resume", "stop"), REMOTE_BUTTONS, strict=False):
        with col:
            clicked = st.button(t(key), key=f"{PAGE}:remote:{action}")
            if clicked and not manager().control_remote(record.job_id, owner_id(), action):
                st.warning(t("my_runs.r_gone"))
    with cols[3]:
        if st.button(t("my_runs.r_refresh"), key=f"{PAGE}:remote:refresh"):
            st.rerun()
    _elsewhere_watch(record.job_id, record.id, record.epoch, record.status)


@st.fragment(run_every=2.0)
def _elsewhere_watch(job_id: str, run_id: str, epoch: int, status: str) -> None:
    """While this tab shows the run: keep it "watched" for its server, and redraw when the store moves on."""
    manager().control_remote(job_id, owner_id(), "touch")
    now = manager().store.run(run_id, owner_id())
    if now is not None and (now.epoch, now.status) != (epoch, status):
        st.rerun(scope="app")


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    st.title(t("my_runs.title"))
    st.caption(t("my_runs.intro", n=MAX_RUNS_PER_OWNER, mb=MAX_BYTES_PER_OWNER // 2**20))
    store = manager().store
    if store is None:
        st.info(t("my_runs.no_store"))
        return
    evicted = manager().evicted.pop(owner_id(), [])
    if evicted:
        st.info(t.md("my_runs.evicted", labels=Listed(evicted)))
    records = store.runs(owner_id())
    if not records:
        st.info(t("my_runs.none"))
        return
    st.dataframe(_table(records), hide_index=True, width="stretch")
    by_id = {r.id: r for r in records}
    if st.session_state.get(f"{PAGE}:open") not in by_id:
        st.session_state[f"{PAGE}:open"] = records[0].id
    picked = st.selectbox(t("my_runs.open"), list(by_id), key=f"{PAGE}:open", format_func=lambda i: _option(by_id[i]))
    _run_ui(by_id[picked])
    pair = st.multiselect(
        t("my_runs.overlay"),
        list(by_id),
        max_selections=2,
        key=f"{PAGE}:pair",
        format_func=lambda i: _option(by_id[i]),
        help=t("my_runs.overlay_help"),
    )
    if len(pair) == 2:
        curves = [_curve(by_id[i]) for i in pair]
        planned = max(by_id[i].planned for i in pair)
        st.plotly_chart(
            charts.perplexity_figure(
                curves, planned, t("my_runs.overlay_title"), t("common.epoch"), t("common.perplexity")
            ),
            width="stretch",
            key=f"{PAGE}:overlay",
        )


main()
