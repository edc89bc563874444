"""My runs: every run this browser started, kept in the run store across reloads and server restarts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from lab_ui import charts, corpus_ui, jobs_ui, session
from lab_ui.i18n import Translator, current_lang, model_label, run_label
from lab_ui.session import manager, owner_id
from lab_ui.text import escape_markdown
from lm_core.errors import LabError, localized
from lm_core.limits import MAX_BYTES_PER_OWNER, MAX_RUNS_PER_OWNER
from lm_core.serve.store import RunRecord

PAGE = "my_runs"
KIND_PAGES = {"train": "pages/train.py", "sampling": "pages/sampling.py", "clipping": "pages/clipping.py"}
MAX_EXTRA_EPOCHS = 1000

t = Translator(
    {
        "title": ("我的训练", "My runs"),
        "intro": (
            "这个浏览器开始的每一次训练都保存在服务器上：重新加载页面或服务器重启后仍然在。"
            "每人最多保留 {n} 次训练、{mb} MB 检查点；超出时最早结束的训练会被删除。",
            "Every run this browser started is kept on the server: it is still here after a reload or a server "
            "restart. Each person keeps at most {n} runs and {mb} MB of checkpoints; beyond that the oldest "
            "finished runs are removed.",
        ),
        "no_store": (
            "这个服务器不保存训练记录，所以这里没有内容。",
            "This server does not save runs, so there is nothing here.",
        ),
        "none": ("还没有训练。到「训练」页开始一次。", "No runs yet. Start one on the Train page."),
        "evicted": (
            "为了不超过配额，删除了最早结束的训练：{labels}。",
            "To stay within the quota, the oldest finished runs were removed: {labels}.",
        ),
        "col_run": ("训练", "Run"),
        "col_status": ("状态", "Status"),
        "col_model": ("模型", "Model"),
        "col_corpus": ("语料", "Corpus"),
        "col_epochs": ("周期", "Epochs"),
        "col_best": ("最佳困惑度", "Best perplexity"),
        "col_date": ("日期", "Date"),
        "open": ("打开一次训练", "Open a run"),
        "chart_title": ("训练困惑度（对数坐标）", "Training perplexity (log scale)"),
        "overlay": ("叠加比较两次训练", "Overlay two runs"),
        "overlay_help": ("最多选两次训练，把它们的曲线画在同一张图里。", "Pick up to two runs to draw on one chart."),
        "overlay_title": ("两次训练的困惑度（对数坐标）", "Perplexity of two runs (log scale)"),
        "resume": ("继续训练（从第 {e} 个周期）", "Resume (from epoch {e})"),
        "continue": ("再训练 {n} 个周期", "Train {n} more epochs"),
        "extra": ("再训练的周期数", "More epochs"),
        "live": ("这次训练正在进行：在它的页面上查看和控制。", "This run is live: watch and control it on its page."),
        "go_page": ("打开它的页面", "Open its page"),
        "elsewhere": (
            "这次训练正在另一台网页服务器上进行（同一个 Ray 集群）：曲线来自共享的训练记录，可以在这里暂停、继续或停止。",
            "This run is training through another web server on the same Ray cluster: the curve comes from the shared "
            "run store, and you can pause, resume or stop it here.",
        ),
        "r_pause": ("暂停", "Pause"),
        "r_resume": ("继续", "Resume"),
        "r_stop": ("停止", "Stop"),
        "r_refresh": ("刷新", "Refresh"),
        "r_gone": (
            "这次训练已经不在集群上了；刷新后可以从它的检查点继续。",
            "This run is no longer on the cluster; refresh to resume it from its checkpoint.",
        ),
        "delete": ("删除", "Delete"),
        "deleted": ("已删除。", "Deleted."),
        "download_ckpt": ("下载检查点", "Download checkpoint"),
        "download_csv": ("下载困惑度 CSV", "Download metrics CSV"),
        "use_note": (
            "在「隐藏状态」和「生成歌词」页可以直接选用这次训练的模型。",
            "The Hidden states and Generate pages can use this run's model.",
        ),
        "message": ("说明：{msg}", "Note: {msg}"),
    }
)


def _status(record: RunRecord) -> str:
    text = t(f"status_{record.status}") if record.status in _STATUSES else record.status
    if record.status == "interrupted":
        text += f" (epoch {record.epoch})" if current_lang() == "en" else f"（第 {record.epoch} 周期）"
    return text


_STATUSES = ("queued", "running", "paused", "finished", "stopped", "diverged", "error", "failed", "interrupted")


def _date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _table(records: list[RunRecord]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            t("col_run"): [run_label(r.label) for r in records],
            t("col_status"): [_status(r) for r in records],
            t("col_model"): [model_label(r.config.get("model", "")) for r in records],
            t("col_corpus"): [corpus_ui.corpus_display_name(r.corpus_name) for r in records],
            t("col_epochs"): [f"{r.epoch} / {r.planned}" for r in records],
            t("col_best"): [round(r.best_perplexity, 2) if r.best_perplexity else None for r in records],
            t("col_date"): [_date(r.created) for r in records],
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
            [_curve(record)], max(record.planned, record.epoch), t("chart_title"), t("epoch"), t("perplexity")
        ),
        width="stretch",
        key=f"{PAGE}:chart",
    )
    if record.message:
        planned = record.epoch if record.status == "finished" else record.planned
        ended = jobs_ui.ended_text(record.status, record.epoch, planned, record.message, record.stopped_early)
        st.caption(t("message", msg=ended))
    live = manager().get(record.job_id, owner_id())
    if live is not None and not live.done:
        st.info(t("live"))
        if record.kind in KIND_PAGES and st.button(t("go_page"), key=f"{PAGE}:go"):
            st.session_state[jobs_ui.job_key(record.kind)] = live.id
            st.switch_page(KIND_PAGES[record.kind])
        return
    if live is None and record.live and manager().live_elsewhere(record.job_id):
        _elsewhere_ui(record)
        return
    cols = st.columns(4)
    with cols[0]:
        if record.epoch < record.planned:
            if st.button(t("resume", e=record.epoch), key=f"{PAGE}:resume", type="primary"):
                _resume(record, 0)
        else:
            extra = st.number_input(t("extra"), 1, MAX_EXTRA_EPOCHS, 10, key=f"{PAGE}:extra")
            if st.button(t("continue", n=extra), key=f"{PAGE}:continue"):
                _resume(record, int(extra))
    path = manager().store.checkpoint_path(record.id)
    with cols[1]:
        if path.is_file():
            st.download_button(
                t("download_ckpt"),
                data=lambda: path.read_bytes() if path.is_file() else b"",
                file_name=f"{record.config.get('model', 'model')}-epoch{record.epoch}.pt",
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{PAGE}:dl",
                icon=":material/download:",
            )
    with cols[2]:
        st.download_button(
            t("download_csv"),
            data=lambda: pd.DataFrame(manager().store.history(record.id)).to_csv(index=False).encode("utf-8"),
            file_name="perplexity.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"{PAGE}:dl:csv",
            icon=":material/table:",
        )
    with cols[3]:
        if st.button(t("delete"), key=f"{PAGE}:delete"):
            manager().store.delete(record.id, owner_id())
            st.session_state.pop(f"{PAGE}:open", None)
            st.rerun()
    st.caption(t("use_note"))


def _elsewhere_ui(record: RunRecord) -> None:
    """Controls for the owner's run that another server on the same Ray cluster drives (found by name on Ray)."""
    st.info(t("elsewhere"))
    cols = st.columns(4)
    for col, action, key in zip(cols, ("pause", "resume", "stop"), ("r_pause", "r_resume", "r_stop"), strict=False):
        with col:
            clicked = st.button(t(key), key=f"{PAGE}:remote:{action}")
            if clicked and not manager().control_remote(record.job_id, owner_id(), action):
                st.warning(t("r_gone"))
    with cols[3]:
        if st.button(t("r_refresh"), key=f"{PAGE}:remote:refresh"):
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
    st.title(t("title"))
    st.caption(t("intro", n=MAX_RUNS_PER_OWNER, mb=MAX_BYTES_PER_OWNER // 2**20))
    store = manager().store
    if store is None:
        st.info(t("no_store"))
        return
    evicted = manager().evicted.pop(owner_id(), [])
    if evicted:
        st.info(t("evicted", labels="、".join(escape_markdown(x) for x in evicted)))
    records = store.runs(owner_id())
    if not records:
        st.info(t("none"))
        return
    st.dataframe(_table(records), hide_index=True, width="stretch")
    by_id = {r.id: r for r in records}
    if st.session_state.get(f"{PAGE}:open") not in by_id:
        st.session_state[f"{PAGE}:open"] = records[0].id
    picked = st.selectbox(t("open"), list(by_id), key=f"{PAGE}:open", format_func=lambda i: _option(by_id[i]))
    _run_ui(by_id[picked])
    pair = st.multiselect(
        t("overlay"),
        list(by_id),
        max_selections=2,
        key=f"{PAGE}:pair",
        format_func=lambda i: _option(by_id[i]),
        help=t("overlay_help"),
    )
    if len(pair) == 2:
        curves = [_curve(by_id[i]) for i in pair]
        planned = max(by_id[i].planned for i in pair)
        st.plotly_chart(
            charts.perplexity_figure(curves, planned, t("overlay_title"), t("epoch"), t("perplexity")),
            width="stretch",
            key=f"{PAGE}:overlay",
        )


main()
