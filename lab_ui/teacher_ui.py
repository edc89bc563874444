"""The Teacher page's parts: unlock with the key, make classes, watch and steer a class, lock a lesson, export.

Only a browser unlocked with the teacher key (`identity.teacher_unlocked`) gets past `unlock_ui`. The class
view reads the run store (so it sees the runs of every server sharing the data folder, live at each epoch)
and acts through the job manager with the student's owner id, which only this page may do: a student's own
pages only ever act on their own owner's runs. Student names are a visitor's text: they are shown in
dataframes and selectboxes (which render no Markdown) or escaped.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

import pandas as pd
import streamlit as st

from lm_core import limits
from lm_core.classroom.errors import ClassError
from lm_core.classroom.lesson import make_lock
from lm_core.classroom.report import result_row, results_csv
from lm_core.classroom.store import ClassInfo, ClassStore, StudentInfo
from lm_core.errors import LabError, localized
from lm_core.serve.store import RunRecord

from . import identity, jobs_ui, turns
from .i18n import N_, PAGE_TITLES, current_lang, labels, model_label, multiselect_words, stored_run_label, t
from .presets import PRESET_LABELS, PRESETS
from .session import manager
from .settings import FIELDS
from .text import escape_markdown

PAGE = "teacher"
LIVE_SECONDS = 2.0  # the class's runs are redrawn this often (from the run store: one epoch is the news)
CURVE_POINTS = 200  # the last epochs drawn in a run's small curve
DIVERGED_MARK = "⚠ "
ACTIONS = ("pause", "resume", "stop")
ACTION_LABELS = {
    "pause": N_("teacher.pause"),
    "resume": N_("teacher.resume"),
    "stop": N_("teacher.stop"),
    "delete": N_("teacher.delete"),
}


def _error(exc: LabError) -> None:
    """An error in the reader's language, escaped (it may quote what someone typed)."""
    st.error(escape_markdown(localized(exc, current_lang())))


# -- unlocking ---------------------------------------------------------------------------------------------
def _unlock() -> None:
    st.session_state.pop(f"{PAGE}:unlock_error", None)
    try:
        identity.unlock_teacher(st.session_state.get(f"{PAGE}:key", ""))
    except ClassError as exc:
        st.session_state[f"{PAGE}:unlock_error"] = exc
    st.session_state[f"{PAGE}:key"] = ""  # the key never waits in the form


def unlock_ui() -> None:
    """The key form; the unlock is kept on the server for this browser, never in the URL or the page."""
    st.caption(t("teacher.unlock_intro"))
    with st.form(f"{PAGE}:unlock"):
        st.text_input(t("teacher.key"), key=f"{PAGE}:key", type="password", max_chars=200)
        st.form_submit_button(t("teacher.unlock"), on_click=_unlock, type="primary")
    error = st.session_state.get(f"{PAGE}:unlock_error")
    if error is not None:
        _error(error)


# -- the unlocked page ---------------------------------------------------------------------------------------
def teacher_ui(store: ClassStore) -> None:
    """Lock button, new class, the class picker, then the chosen class's runs, students, lesson lock and export."""
    top, lock_col = st.columns([4, 1])
    top.caption(t("teacher.unlocked", h=int(limits.TEACHER_UNLOCK_SECONDS // 3600)))
    lock_col.button(t("teacher.lock"), key=f"{PAGE}:lock", on_click=identity.lock_teacher, width="stretch")
    _new_class_ui(store)
    classes = store.classes()
    if not classes:
        st.info(t("teacher.no_classes"))
        return
    by_id = {c.id: c for c in classes}
    if st.session_state.get(f"{PAGE}:class") not in by_id:
        st.session_state[f"{PAGE}:class"] = classes[-1].id
    picked = st.selectbox(
        t("teacher.class"),
        list(by_id),
        key=f"{PAGE}:class",
        format_func=labels(by_id, lambda i: f"{by_id[i].name} · {by_id[i].code}"),
    )
    _class_ui(store, by_id[picked])


def _create_class(store: ClassStore) -> None:
    st.session_state.pop(f"{PAGE}:create_error", None)
    try:
        made = store.create_class(st.session_state.get(f"{PAGE}:new_name", ""))
    except ClassError as exc:
        st.session_state[f"{PAGE}:create_error"] = exc
        return
    st.session_state[f"{PAGE}:class"] = made.id
    st.session_state[f"{PAGE}:new_name"] = ""
    st.session_state[f"{PAGE}:created"] = made.name


def _new_class_ui(store: ClassStore) -> None:
    with st.expander(t("teacher.new_class"), expanded=not store.classes()):
        with st.form(f"{PAGE}:create", border=False):
            st.text_input(t("teacher.class_name"), key=f"{PAGE}:new_name", max_chars=limits.MAX_NAME_CHARS)
            st.form_submit_button(t("teacher.create"), on_click=_create_class, args=(store,))
        st.caption(t("teacher.caps", classes=limits.MAX_CLASSES, students=limits.MAX_STUDENTS_PER_CLASS))
        error = st.session_state.get(f"{PAGE}:create_error")
        if error is not None:
            _error(error)
    created = st.session_state.pop(f"{PAGE}:created", None)
    if created is not None:
        st.success(t.md("teacher.created", name=created))


def _class_ui(store: ClassStore, klass: ClassInfo) -> None:
    students = store.students(klass.id)
    _class_header(klass.id, klass.code)
    st.caption(t("teacher.how_to_join"))
    runs_tab, students_tab, lesson_tab, export_tab = st.tabs(
        [t("teacher.tab_runs"), t("teacher.tab_students"), t("teacher.tab_lesson"), t("teacher.tab_export")]
    )
    with runs_tab:
        _runs_panel(klass.id)
    with students_tab:
        _students_ui(store, klass, students)
    with lesson_tab:
        _lesson_ui(store, klass)
    with export_tab:
        _export_ui(store, klass)


@turns.fragment(run_every=LIVE_SECONDS)
def _class_header(class_id: str, code: str) -> None:
    """The code to give the class, and how many have joined (live: students join while the teacher watches)."""
    store = identity.class_store()
    if store is None or not identity.teacher_unlocked():
        return
    code_col, count_col = st.columns(2)
    code_col.metric(t("teacher.code"), code)
    count_col.metric(t("teacher.students"), f"{len(store.students(class_id))} / {limits.MAX_STUDENTS_PER_CLASS}")


# -- the class's runs, live --------------------------------------------------------------------------------
def class_runs(store: ClassStore, class_id: str) -> list[tuple[StudentInfo, RunRecord]]:
    """Every run of every student of the class, live ones first, then the newest."""
    runs = manager().store
    if runs is None:
        return []
    found = [(s, r) for s in store.students(class_id) for r in runs.runs(s.owner)]
    found.sort(key=lambda pair: (not pair[1].live, -pair[1].created))
    return found


def _status(record: RunRecord) -> str:
    """The run's state in a word (the store knows "queued", not the place in line); a diverged run marked."""
    if record.status == "queued":
        return t("teacher.status_queued")
    text = t(jobs_ui.STATUS_LABELS[record.status]) if record.status in jobs_ui.STATUS_LABELS else record.status
    return DIVERGED_MARK + text if record.status == "diverged" else text


def _curve(history: list[dict[str, Any]]) -> list[float]:
    """Perplexity by epoch on a log scale (a run falls from hundreds to a few), finite values only."""
    values = [h.get("perplexity") for h in history[-CURVE_POINTS:]]
    return [round(math.log10(v), 4) for v in values if isinstance(v, int | float) and math.isfinite(v) and v > 0]


def _runs_table(pairs: list[tuple[StudentInfo, RunRecord]]) -> pd.DataFrame:
    rows = []
    for student, record in pairs:
        history = manager().store.history(record.id)
        last = history[-1].get("perplexity") if history else None
        rows.append(
            {
                "student": student.name,
                "run": _run_name(record),
                "status": _status(record),
                "epoch": f"{record.epoch} / {record.planned}",
                "best": round(record.best_perplexity, 2) if record.best_perplexity else None,
                "last": round(last, 2) if isinstance(last, float) and math.isfinite(last) else None,
                "curve": _curve(history),
            }
        )
    return pd.DataFrame(rows, columns=["student", "run", "status", "epoch", "best", "last", "curve"])


def _run_name(record: RunRecord) -> str:
    """The run's name (on the Train page, its model), and its model when the name is something else (a sampling
    mode, clipping on or off)."""
    name = stored_run_label(record)
    model = model_label(record.config.get("model", ""))
    return name if name == model else f"{name} · {model}"


def _run_option(pair: tuple[StudentInfo, RunRecord]) -> str:
    student, record = pair
    when = dt.datetime.fromtimestamp(record.created).strftime("%H:%M")
    return f"{student.name} · {_run_name(record)} · {when} · {_status(record)}"


def control_run(record: RunRecord, owner: str, action: str) -> bool:
    """Pause, resume or stop a student's run (its whole job) for the teacher; False when it is not live anywhere.

    A run of this server is acted on directly; one that another server of the same Ray cluster drives, by its
    actor. Only the Teacher page calls this with someone else's owner id.
    """
    mgr = manager()
    job = mgr.get(record.job_id, owner)
    if job is not None and not job.done:
        {"pause": job.pause, "resume": job.resume, "stop": job.stop}[action]()
        return True
    return mgr.control_remote(record.job_id, owner, action)


def _act(run_id: str, class_id: str, action: str) -> None:
    """A control's callback: find the run again (it may have ended or gone), act, and say what happened."""
    store = identity.class_store()
    pairs = {r.id: (s, r) for s, r in class_runs(store, class_id)} if store is not None else {}
    if run_id not in pairs:
        st.session_state[f"{PAGE}:said"] = ("warning", N_("teacher.run_gone"), "")
        return
    student, record = pairs[run_id]
    if action == "delete":
        if record.live:
            st.session_state[f"{PAGE}:said"] = ("warning", N_("teacher.delete_live"), student.name)
            return
        manager().store.delete(record.id, student.owner)
        st.session_state[f"{PAGE}:said"] = ("success", N_("teacher.deleted"), student.name)
        return
    done = control_run(record, student.owner, action)
    key = {"pause": N_("teacher.paused"), "resume": N_("teacher.resumed"), "stop": N_("teacher.stopped")}[action]
    st.session_state[f"{PAGE}:said"] = (
        ("success", key, student.name) if done else ("warning", N_("teacher.not_live"), "")
    )


@turns.fragment(run_every=LIVE_SECONDS)
def _runs_panel(class_id: str) -> None:
    """Every student's runs (status, epoch, perplexity, a small curve), redrawn from the store every few seconds,
    and the controls. Its layout does not depend on the runs' states (see lab_ui.jobs_ui on stale elements)."""
    store = identity.class_store()
    if store is None or not identity.teacher_unlocked():
        return
    pairs = class_runs(store, class_id)
    st.dataframe(
        _runs_table(pairs),
        hide_index=True,
        width="stretch",
        key=f"{PAGE}:runs",
        column_config={
            "student": st.column_config.TextColumn(t("teacher.col_student")),
            "run": st.column_config.TextColumn(t("teacher.col_run")),
            "status": st.column_config.TextColumn(t("teacher.col_status")),
            "epoch": st.column_config.TextColumn(t("teacher.col_epoch"), width="small"),
            "best": st.column_config.NumberColumn(t("teacher.col_best"), format="%.2f", width="small"),
            "last": st.column_config.NumberColumn(t("teacher.col_last"), format="%.2f", width="small"),
            "curve": st.column_config.LineChartColumn(
                t("teacher.col_curve"), help=t("teacher.col_curve_help"), width="medium"
            ),
        },
    )
    by_id = {r.id: (s, r) for s, r in pairs}
    options = list(by_id) or [""]
    if st.session_state.get(f"{PAGE}:run") not in options:
        st.session_state[f"{PAGE}:run"] = options[0]
    pick_col, *button_cols = st.columns([3, 1, 1, 1, 1])
    with pick_col:
        run_id = st.selectbox(
            t("teacher.pick_run"),
            options,
            key=f"{PAGE}:run",
            format_func=labels(options, lambda i: _run_option(by_id[i]) if i in by_id else t("teacher.no_runs")),
            label_visibility="collapsed",
        )
    for col, action in zip(button_cols, (*ACTIONS, "delete"), strict=True):
        col.button(
            t(ACTION_LABELS[action]),
            key=f"{PAGE}:{action}",
            on_click=_act,
            args=(run_id, class_id, action),
            disabled=run_id not in by_id,
            width="stretch",
        )
    said = st.session_state.get(f"{PAGE}:said")  # the last action's outcome, kept until the next one
    if said is not None:
        kind, key, name = said
        (st.success if kind == "success" else st.warning)(t.md(key, name=name))
    st.caption(t("teacher.controls_note", s=f"{LIVE_SECONDS:g}"))


# -- students ------------------------------------------------------------------------------------------------
def _reset_pin(store: ClassStore, student_id: str) -> None:
    key = f"{PAGE}:new_pin"
    try:
        store.reset_pin(student_id, st.session_state.get(key, ""))
    except ClassError as exc:
        st.session_state[f"{PAGE}:student_said"] = ("error", exc)
    else:
        st.session_state[f"{PAGE}:student_said"] = ("success", N_("teacher.pin_reset"))
    st.session_state[key] = ""


def remove_student(store: ClassStore, student: StudentInfo) -> int:
    """Stop the student's live runs, delete all of them, then the student (their browsers are signed out)."""
    runs = manager().store
    deleted = 0
    if runs is not None:
        for record in runs.runs(student.owner):
            if record.live:
                control_run(record, student.owner, "stop")
            deleted += runs.delete(record.id, student.owner)
    store.remove_student(student.id)
    return deleted


def _remove(store: ClassStore, student: StudentInfo) -> None:
    if not st.session_state.get(f"{PAGE}:confirm_remove"):
        st.session_state[f"{PAGE}:student_said"] = ("warning", N_("teacher.confirm_first"))
        return
    remove_student(store, student)
    st.session_state[f"{PAGE}:confirm_remove"] = False
    st.session_state[f"{PAGE}:student_said"] = ("success", N_("teacher.removed"))


def _students_ui(store: ClassStore, klass: ClassInfo, students: list[StudentInfo]) -> None:
    if not students:
        st.info(t("teacher.no_students"))
        return
    runs = manager().store
    counts = {s.id: runs.runs(s.owner) if runs is not None else [] for s in students}
    st.dataframe(
        pd.DataFrame(
            {
                t("teacher.col_student"): [s.name for s in students],
                t("teacher.col_joined"): [
                    dt.datetime.fromtimestamp(s.created).strftime("%Y-%m-%d %H:%M") for s in students
                ],
                t("teacher.col_runs"): [len(counts[s.id]) for s in students],
                t("teacher.col_live"): [sum(r.live for r in counts[s.id]) for s in students],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    by_id = {s.id: s for s in students}
    if st.session_state.get(f"{PAGE}:student") not in by_id:
        st.session_state[f"{PAGE}:student"] = students[0].id
    picked = st.selectbox(
        t("teacher.pick_student"),
        list(by_id),
        key=f"{PAGE}:student",
        format_func=labels(by_id, lambda i: by_id[i].name),
    )
    student = by_id[picked]
    pin_col, remove_col = st.columns(2)
    with pin_col:
        st.text_input(
            t("teacher.new_pin"),
            key=f"{PAGE}:new_pin",
            type="password",
            max_chars=limits.MAX_PIN_DIGITS,
            help=t("teacher.new_pin_help", lo=limits.MIN_PIN_DIGITS, hi=limits.MAX_PIN_DIGITS),
        )
        st.button(t("teacher.reset_pin"), key=f"{PAGE}:reset_pin", on_click=_reset_pin, args=(store, student.id))
    with remove_col:
        st.checkbox(t("teacher.confirm_remove", n=len(counts[student.id])), key=f"{PAGE}:confirm_remove")
        st.button(t("teacher.remove"), key=f"{PAGE}:remove", on_click=_remove, args=(store, student))
    said = st.session_state.pop(f"{PAGE}:student_said", None)
    if said is not None:
        kind, what = said
        if kind == "error":
            _error(what)
        else:
            (st.success if kind == "success" else st.warning)(t(what))


# -- the lesson lock -----------------------------------------------------------------------------------------
LOCKABLE_PAGES = tuple(page for page in PAGE_TITLES if page != PAGE)  # every page but this one


def _start_lock(store: ClassStore, class_id: str) -> None:
    pages = st.session_state.get(f"{PAGE}:lock_pages") or []
    every = st.session_state.get(f"{PAGE}:lock_every")
    fields = None if every else (st.session_state.get(f"{PAGE}:lock_fields") or [])
    try:
        lock = make_lock(
            class_id,
            pages,
            fields,
            int(st.session_state.get(f"{PAGE}:lock_minutes", 45)),
            preset=st.session_state.get(f"{PAGE}:lock_preset", ""),
        )
        store.set_lock(lock)
    except ClassError as exc:
        st.session_state[f"{PAGE}:lock_error"] = exc


def _until(ends: float) -> str:
    return dt.datetime.fromtimestamp(ends).strftime("%H:%M")


def _lesson_ui(store: ClassStore, klass: ClassInfo) -> None:
    st.caption(t("teacher.lock_intro"))
    lock = store.lock(klass.id)
    if lock is not None:
        pages = ", ".join(t(PAGE_TITLES[p]) for p in LOCKABLE_PAGES if p in lock.pages)
        shown = (
            t("teacher.lock_all_settings")
            if lock.settings is None
            else ", ".join(t(FIELDS[f].label_key) for f in FIELDS if f in lock.settings)
            or t("teacher.lock_no_settings")
        )
        minutes = max(1, math.ceil((lock.ends - time.time()) / 60))
        st.info(t("teacher.lock_on", until=_until(lock.ends), m=minutes, pages=pages, settings=shown))
        st.button(t("teacher.lift"), key=f"{PAGE}:lift", on_click=store.lift_lock, args=(klass.id,))
    else:
        st.caption(t("teacher.lock_off"))
    page_names = {p: t(PAGE_TITLES[p]) for p in LOCKABLE_PAGES}
    field_names = {f: t(FIELDS[f].label_key) for f in FIELDS}
    preset_names = {"": t("teacher.lock_page_defaults"), **{p: t(PRESET_LABELS[p]) for p in PRESETS}}
    with st.form(f"{PAGE}:lock_form"):
        st.multiselect(
            t("teacher.lock_pages"),
            list(page_names),
            default=["train"],
            key=f"{PAGE}:lock_pages",
            format_func=labels(page_names, page_names.get),
            **multiselect_words(),
        )
        st.checkbox(t("teacher.lock_every"), key=f"{PAGE}:lock_every")
        st.multiselect(
            t("teacher.lock_fields"),
            list(field_names),
            default=["epochs", "lr"],
            key=f"{PAGE}:lock_fields",
            format_func=labels(field_names, field_names.get),
            help=t("teacher.lock_fields_help"),
            **multiselect_words(),
        )
        st.selectbox(
            t("teacher.lock_preset"),
            list(preset_names),
            key=f"{PAGE}:lock_preset",
            format_func=labels(preset_names, preset_names.get),
        )
        st.number_input(
            t("teacher.lock_minutes", n=limits.MAX_LESSON_MINUTES),
            min_value=1,
            max_value=limits.MAX_LESSON_MINUTES,
            value=45,
            step=5,
            key=f"{PAGE}:lock_minutes",
        )
        st.form_submit_button(t("teacher.lock_start"), on_click=_start_lock, args=(store, klass.id), type="primary")
    error = st.session_state.pop(f"{PAGE}:lock_error", None)
    if error is not None:
        _error(error)


# -- export, and deleting a class ------------------------------------------------------------------------
def class_csv(store: ClassStore, klass: ClassInfo) -> bytes:
    """The class's results (`lm_core.classroom.report`): a row per run of every student."""
    runs = manager().store
    rows = [result_row(klass, s, r, runs.history(r.id)) for s, r in class_runs(store, klass.id)] if runs else []
    return results_csv(rows)


def _delete_class(store: ClassStore, klass: ClassInfo) -> None:
    if not st.session_state.get(f"{PAGE}:confirm_delete"):
        st.session_state[f"{PAGE}:delete_said"] = N_("teacher.confirm_first")
        return
    for student in store.students(klass.id):
        remove_student(store, student)
    store.delete_class(klass.id)
    st.session_state.pop(f"{PAGE}:class", None)
    st.session_state[f"{PAGE}:confirm_delete"] = False


def _export_ui(store: ClassStore, klass: ClassInfo) -> None:
    st.download_button(
        t("teacher.export"),
        data=lambda: class_csv(store, klass),  # made only when clicked: it reads every run's history
        file_name=f"class-{klass.code}-results.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"{PAGE}:csv",
        icon=":material/table:",
    )
    st.caption(t("teacher.export_help"))
    with st.expander(t("teacher.delete_class")):
        st.checkbox(t.md("teacher.confirm_delete", name=klass.name), key=f"{PAGE}:confirm_delete")
        st.button(t("teacher.delete_class"), key=f"{PAGE}:delete_class", on_click=_delete_class, args=(store, klass))
        said = st.session_state.pop(f"{PAGE}:delete_said", None)
        if said:
            st.warning(t(said))
