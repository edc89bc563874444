"""My runs: every run this browser started, kept in the run store across reloads and server restarts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from lab_ui import charts, corpus_ui, jobs_ui, session, stored_runs, turns
from lab_ui.i18n import N_, model_label, multiselect_words, stored_run_label, t
from lab_ui.session import manager, owner_id
from lm_core.limits import MAX_BYTES_PER_OWNER, MAX_RUNS_PER_OWNER
from lm_core.messages import Listed
from lm_core.serve.store import RunRecord, short_ids

PAGE = "my_runs"
MAX_EXTRA_EPOCHS = 1000
CONFIRM_KEY = f"{PAGE}:confirm_delete"  # the id of the run whose Delete waits for a yes or no
REMOTE_BUTTONS = (N_("my_runs.r_pause"), N_("my_runs.r_resume"), N_("my_runs.r_stop"))  # pause, resume, stop


def _date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _best(record: RunRecord) -> str:
    """The best perplexity as text: a run with none says why (it diverged, or no epoch ended), never "None"."""
    if record.best_perplexity is not None:
        return f"{record.best_perplexity:,.2f}"
    return t("my_runs.best_diverged") if record.status == "diverged" else "—"


def _table(records: list[RunRecord], tags: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            t("my_runs.col_run"): [stored_run_label(r) for r in records],
            t("my_runs.col_status"): [stored_runs.status_text(r) for r in records],
            t("my_runs.col_model"): [model_label(r.config.get("model", "")) for r in records],
            t("my_runs.col_corpus"): [corpus_ui.corpus_display_name(r.corpus_name) for r in records],
            t("my_runs.col_epochs"): [f"{r.epoch} / {r.planned}" for r in records],
            t("my_runs.col_best"): [_best(r) for r in records],
            t("my_runs.col_date"): [_date(r.created) for r in records],
            t("my_runs.col_id"): [f"#{tags[r.id]}" for r in records],
        }
    )


def _option(record: RunRecord, tag: str) -> str:
    """A run's name in the pickers: its name, corpus and date, so runs of one model read apart at a glance.

    Made during the script run (the caller binds it), so in the page's language. Unique per run (`tag`): the
    browser sends back the name it shows, and the page acts on the run of that name.
    """
    corpus = corpus_ui.corpus_display_name(record.corpus_name)
    return f"{stored_run_label(record)} · {corpus} · {_date(record.created)} · {record.epoch}/{record.planned} · #{tag}"


def _curve(record: RunRecord, tag: str) -> charts.Curve:
    history = manager().store.history(record.id)
    diverged = (history[-1]["epoch"] if history else 0) + 1 if record.status == "diverged" else None
    return charts.Curve(
        f"{stored_run_label(record)} · {_date(record.created)} · #{tag}",
        [h["epoch"] for h in history],
        [h["perplexity"] for h in history],
        diverged_at=diverged,
    )


def _run_ui(record: RunRecord, tag: str) -> None:
    """The open run: its curve and its actions, each keyed by its run id, so a click acts on the run it was drawn for."""
    rid = record.id
    st.plotly_chart(
        charts.perplexity_figure(
            [_curve(record, tag)],
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
        if record.kind in stored_runs.KIND_PAGES and st.button(t("my_runs.go_page"), key=f"{PAGE}:go:{rid}"):
            st.session_state[jobs_ui.job_key(record.kind)] = live.id
            st.switch_page(stored_runs.KIND_PAGES[record.kind])
        return
    if live is None and record.live and manager().live_elsewhere(record.job_id):
        _elsewhere_ui(record)
        return
    cols = st.columns(4)
    with cols[0]:
        if record.epoch < record.planned:
            if st.button(t("my_runs.resume", e=record.epoch), key=f"{PAGE}:resume:{rid}", type="primary"):
                stored_runs.resume(record, 0)
        else:
            extra = st.number_input(t("my_runs.extra"), 1, MAX_EXTRA_EPOCHS, 10, key=f"{PAGE}:extra:{rid}")
            if st.button(t("my_runs.continue", n=extra), key=f"{PAGE}:continue:{rid}"):
                stored_runs.resume(record, int(extra))
    path = manager().store.checkpoint_path(record.id)
    with cols[1]:
        if path.is_file():
            st.download_button(
                t("my_runs.download_ckpt"),
                data=lambda: path.read_bytes() if path.is_file() else b"",
                file_name=f"{record.config.get('model', 'model')}-epoch{record.epoch}.pt",
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{PAGE}:dl:{rid}",
                icon=":material/download:",
            )
    with cols[2]:
        st.download_button(
            t("my_runs.download_csv"),
            data=lambda: pd.DataFrame(manager().store.history(record.id)).to_csv(index=False).encode("utf-8"),
            file_name="perplexity.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"{PAGE}:dl:csv:{rid}",
            icon=":material/table:",
        )
    with cols[3]:
        if st.button(t("my_runs.delete"), key=f"{PAGE}:delete:{rid}"):
            st.session_state[CONFIRM_KEY] = rid
    if st.session_state.get(CONFIRM_KEY) == rid:
        _confirm_delete_ui(record)
    st.caption(t("my_runs.use_note"))


def _confirm_delete_ui(record: RunRecord) -> None:
    """Delete removes the curve and the weights for good, so it asks first, naming the run."""
    rid = record.id
    st.warning(t.md("my_runs.delete_ask", label=stored_run_label(record), date=_date(record.created)))
    yes_col, no_col, _ = st.columns([1, 1, 2])
    with yes_col:
        yes = st.button(t("my_runs.delete_yes"), key=f"{PAGE}:delete_yes:{rid}", type="primary")
    with no_col:
        no = st.button(t("my_runs.delete_no"), key=f"{PAGE}:delete_no:{rid}")
    if yes:
        manager().store.delete(rid, owner_id())
        st.session_state.pop(f"{PAGE}:open", None)
    if yes or no:
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


def _elsewhere_ui(record: RunRecord) -> None:
    """Controls for the owner's run that another server on the same Ray cluster drives (found by name on Ray)."""
    st.info(t("my_runs.elsewhere"))
    cols = st.columns(4)
    for col, action, key in zip(cols, ("pause", "resume", "stop"), REMOTE_BUTTONS, strict=False):
        with col:
            clicked = st.button(t(key), key=f"{PAGE}:remote:{action}:{record.id}")
            if clicked and not manager().control_remote(record.job_id, owner_id(), action):
                st.warning(t("my_runs.r_gone"))
    with cols[3]:
        if st.button(t("my_runs.r_refresh"), key=f"{PAGE}:remote:refresh:{record.id}"):
            st.rerun()
    _elsewhere_watch(record.job_id, record.id, record.epoch, record.status)


@turns.fragment(run_every=2.0)
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
    tags = short_ids(records)
    st.dataframe(_table(records, tags), hide_index=True, width="stretch")
    by_id = {r.id: r for r in records}
    names = {i: _option(r, tags[i]) for i, r in by_id.items()}  # bound now: AppTest formats outside the run
    name = lambda i: names.get(i, i)  # a name already formatted stays as it is
    if st.session_state.get(f"{PAGE}:open") not in by_id:
        st.session_state[f"{PAGE}:open"] = records[0].id
    picked = st.selectbox(t("my_runs.open"), list(by_id), key=f"{PAGE}:open", format_func=name)
    _run_ui(by_id[picked], tags[picked])
    if any(i not in by_id for i in st.session_state.get(f"{PAGE}:pair", [])):  # a deleted run leaves the overlay
        st.session_state[f"{PAGE}:pair"] = [i for i in st.session_state[f"{PAGE}:pair"] if i in by_id]
    pair = st.multiselect(
        t("my_runs.overlay"),
        list(by_id),
        max_selections=2,
        key=f"{PAGE}:pair",
        format_func=name,
        help=t("my_runs.overlay_help"),
        **multiselect_words(),
    )
    if len(pair) == 2:
        curves = [_curve(by_id[i], tags[i]) for i in pair]
        planned = max(by_id[i].planned for i in pair)
        st.plotly_chart(
            charts.perplexity_figure(
                curves, planned, t("my_runs.overlay_title"), t("common.epoch"), t("common.perplexity")
            ),
            width="stretch",
            key=f"{PAGE}:overlay",
        )


main()
