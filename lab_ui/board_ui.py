"""The experiment board page: open a board, take a value and train it, watch every run of the class on one chart.

A board (`lm_core.boards`) varies one setting over a few values; the rest comes from a preset. Whoever opens
the board's link is given the value fewest have (or picks one) and trains it as a normal job of the job
manager, tagged with the board. The board itself is drawn from one shared snapshot per board and poll
interval (`Boards.snapshot`): 30 screens showing it while 30 runs train cost one snapshot a second, and the
figures built from a snapshot are kept for every viewer of the same language too (`_figures`).

What a viewer sees of the others: each run's value, curve, status, speed, greedy line and display name
(shown as text: the table renders nothing, the charts get it HTML-escaped). What a viewer can do: start and
stop their own runs (the job manager checks the owner); the board's opener may also run every value at once
and delete the board. Nobody controls another's run from here.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from lm_core.boards import KIND, VARIABLES, BoardSpec, new_board
from lm_core.corpus import BOOK_FILE, Corpus, read_corpus_bytes
from lm_core.errors import LabError, localized
from lm_core.generation import default_prefixes
from lm_core.limits import (
    MAX_BOARD_EPOCHS,
    MAX_BOARD_RUNS,
    MAX_BOARD_RUNS_PER_STUDENT,
    MAX_BOARD_TITLE,
    MAX_BOARD_VALUES,
    MAX_BOARDS_PER_CLASS,
    MAX_BOARDS_PER_OWNER,
    MAX_LIVE_BOARD_RUNS,
)
from lm_core.messages import Listed
from lm_core.models import MODEL_KINDS
from lm_core.provenance import BOOK_NAME
from lm_core.serve.board_runs import BoardRun, Boards, BoardSnapshot
from lm_core.serve.board_store import BoardStore
from lm_core.songci import songci_corpus
from lm_core.training import TrainConfig, Trainer

from . import corpus_ui, identity, jobs_ui, lesson, presets, session, settings, turns
from .board_charts import Baseline, BoardLine, ValuePoint, by_value_figure, curves_figure, value_colors
from .i18n import N_, current_lang, labels, model_label, multiselect_words, t
from .process_state import process_object
from .text import escape_markdown

PAGE = "board"
URL_PARAM = "board"
POLL_SECONDS = 2.0  # a board with runs queued or training is redrawn this often, from the shared snapshot
IDLE_POLL_SECONDS = 10.0  # a quiet board still looks for runs someone starts
NUM_STEPS_OPTIONS = (1, 2, 5, 10, 20, 35, 50, 100, 200)  # num_steps is a plain slider elsewhere: steps worth comparing
CLIP_OFF = "off"  # how the page names clipping off among θ values (the board stores None)
FIGURE_CACHE = 64  # boards × languages whose figures are kept
# The settings a board varies, the options the page offers for each, and each one's name (the settings' own).
OPTIONS: dict[str, tuple[Any, ...]] = {
    "lr": settings.LR_OPTIONS,
    "hidden": settings.HIDDEN_OPTIONS,
    "num_steps": NUM_STEPS_OPTIONS,
    "batch_size": settings.BATCH_OPTIONS,
    "sampling": ("random", "adjacent"),
    "clip": (CLIP_OFF, *settings.CLIP_OPTIONS),
    "model": MODEL_KINDS,
}
ORDERED = ("lr", "hidden", "num_steps", "batch_size", "clip")  # values with an order: a sequential colour scale
LOG_X_SETTINGS = ("lr", "clip")
DEFAULT_EPOCHS = 20  # a board's runs, unless its opener says otherwise: short enough for one lesson


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a board: the browser's owner id and, for a student of a class, their class."""

    owner: str
    class_id: str | None = None
    teacher: bool = False


def current_viewer() -> Viewer:
    """This browser as a board sees it: its owner, a signed-in student's class, and the teacher's unlock."""
    student = identity.current_student()
    return Viewer(
        session.owner_id(),
        class_id=student.class_id if student is not None else None,
        teacher=identity.teacher_unlocked(),
    )


@process_object
def boards() -> Boards:
    """The server's boards, beside its job manager; kept in the run store's data folder (else in memory)."""
    mgr = session.manager()
    store = None
    if mgr.store is not None:
        try:
            store = BoardStore(mgr.store.folder)
        except OSError:
            store = None
    return Boards(store or BoardStore(), mgr, mgr.store)


# -- words -------------------------------------------------------------------------------------------------------


def setting_label(setting: str) -> str:
    return t(settings.FIELDS[setting].label_key)


def value_label(setting: str, value: Any) -> str:
    """A value as the page shows it: numbers as written (1e-3 as 0.001), choices by name, θ None as "off"."""
    if value is None or value == CLIP_OFF:
        return t("board.clip_off")
    if setting == "model":
        return model_label(value)
    if setting == "sampling":
        return t(settings.SAMPLING_LABELS[value])
    return f"{value:g}" if isinstance(value, float) else str(value)


def board_title(board: BoardSpec) -> str:
    return board.title or t("board.default_title", setting=setting_label(board.setting))


def display_name(owner: str) -> str | None:
    """The name this viewer may know `owner` by (a student of their class), else None: "Visitor n" then.

    Browsers alone have no names; a class's students get theirs from the class (`lab_ui.identity`).
    """
    return identity.display_name(owner)


def people(snapshot: BoardSnapshot) -> dict[str, str]:
    """Each owner on the board as this viewer names them: a display name (plain text) or "Visitor n"."""
    named: dict[str, str] = {}
    for run in snapshot.runs:
        if run.owner not in named:
            named[run.owner] = display_name(run.owner) or t("board.anonymous", n=run.person)
    return named


def _corpus_label(spec: dict[str, Any]) -> str:
    if spec["source"] == "songci":
        return t("corpus.songci_name", subset=corpus_ui.subset_label(spec["subset"]))
    return t("corpus.src_book")


# -- the corpus of a board -----------------------------------------------------------------------------------------


class _BookMissing(Exception):
    """The server has no book's corpus (the operator did not provide it)."""


@st.cache_resource(max_entries=8, show_spinner=False)
def _cached_corpus(source: str, subset: str | None, max_chars: int | None) -> Corpus:
    if source == "songci":
        return songci_corpus(subset or "", max_chars)
    data = corpus_ui.operator_book_bytes()
    if data is None:
        raise _BookMissing  # not cached: the operator may provide it later
    return Corpus.from_text(read_corpus_bytes(data, BOOK_FILE), name=BOOK_NAME, max_chars=max_chars)


def board_corpus(board: BoardSpec) -> Corpus:
    """The board's corpus, the same for every student (the Song ci subset or the operator's book file)."""
    spec = board.corpus
    try:
        return _cached_corpus(spec["source"], spec.get("subset"), spec.get("max_chars"))
    except _BookMissing:
        raise LabError(N_("corpus.book_missing")) from None


# -- opening a board ------------------------------------------------------------------------------------------------


def _default_values(setting: str, base: TrainConfig) -> list[Any]:
    """Four values around the preset's own, every other option apart (a wide enough range to see an effect);
    for sampling and the model, the choices themselves; for θ, clipping off first."""
    if setting == "sampling":
        return list(OPTIONS[setting])
    if setting == "model":
        return ["scratch-rnn", "rnn", "gru", "lstm"]
    numeric = [o for o in OPTIONS[setting] if o != CLIP_OFF]
    current = getattr(base, setting)
    if current is None:
        return [CLIP_OFF, *numeric[2:7:2]]
    nearest = min(range(len(numeric)), key=lambda i: abs(math.log(numeric[i]) - math.log(current)))
    start = max(0, min(nearest - 4, len(numeric) - 7))
    chosen = list(numeric[start : start + 7 : 2])
    return [CLIP_OFF, *chosen[1:]] if setting == "clip" else chosen


def new_board_ui(viewer: Viewer) -> None:
    """The form that opens a board: the setting and its values, the preset, epochs, a title; the corpus is the
    sidebar's."""
    st.subheader(t("board.new"))
    with st.sidebar:
        choice = corpus_ui.corpus_ui()
    setting = st.selectbox(
        t("board.setting"),
        list(VARIABLES),
        key=f"{PAGE}:setting",
        format_func=labels(VARIABLES, setting_label),
        help=t("board.setting_help"),
    )
    preset = st.selectbox(
        t("common.preset"),
        list(presets.PRESETS),
        key=f"{PAGE}:preset",
        format_func=labels(presets.PRESETS, lambda k: t(presets.PRESET_LABELS[k])),
        help=t("board.preset_help"),
    )
    st.caption(t(presets.PRESET_NOTES[preset]))
    base = settings.to_config(presets.PRESETS[preset])
    options = OPTIONS[setting]
    values_key = f"{PAGE}:values:{setting}:{preset}"
    if values_key not in st.session_state:
        st.session_state[values_key] = _default_values(setting, base)
    with st.form(f"{PAGE}:new_form", border=True):
        values = st.multiselect(
            t("board.values", setting=setting_label(setting)),
            list(options),
            key=values_key,
            max_selections=MAX_BOARD_VALUES,
            format_func=labels(options, lambda v: value_label(setting, v)),
            help=t("board.values_help", n=MAX_BOARD_VALUES),
            **multiselect_words(),
        )
        epochs = st.number_input(
            t("common.epochs"),
            1,
            MAX_BOARD_EPOCHS,
            DEFAULT_EPOCHS,
            key=f"{PAGE}:epochs",
            help=t("board.epochs_help", n=MAX_BOARD_EPOCHS),
        )
        title = st.text_input(
            t("board.title_label"),
            key=f"{PAGE}:title",
            max_chars=MAX_BOARD_TITLE,
            placeholder=t("board.default_title", setting=setting_label(setting)),
        )
        opened = st.form_submit_button(t("board.open"), type="primary")
    st.caption(t("board.caps_note", boards=MAX_BOARDS_PER_OWNER, cls=MAX_BOARDS_PER_CLASS, runs=MAX_BOARD_RUNS))
    if not opened:
        return
    if choice.corpus is None:
        st.error(t.md("common.corpus_error", msg=choice.error or ""))
        return
    corpus_spec = {
        "source": st.session_state.get("corpus:source"),
        "subset": st.session_state.get("corpus:subset"),
        "max_chars": st.session_state.get("corpus:max_chars") or None,
    }
    try:
        board = new_board(
            viewer.owner,
            setting,
            [None if v == CLIP_OFF else v for v in values],
            TrainConfig.from_dict({**base.to_dict(), "epochs": int(epochs)}),
            corpus_spec,
            preset=preset,
            title=title,
            class_id=viewer.class_id if viewer.teacher else None,
        )
        boards().store.create(board)
    except LabError as exc:
        st.error(t.md("board.cannot_open", msg=localized(exc, current_lang())))
        return
    st.query_params[URL_PARAM] = board.id
    st.rerun()


def my_boards_ui(viewer: Viewer) -> None:
    """Links to the boards this browser opened (and its class's)."""
    mine = boards().store.boards(viewer.owner, viewer.class_id)
    if not mine:
        return
    st.subheader(t("board.mine"))
    for board in mine:
        st.page_link(
            "pages/board.py",
            label=escape_markdown(board_title(board)),
            query_params={URL_PARAM: board.id, "lang": current_lang()},
            icon=":material/leaderboard:",
        )


# -- a board -------------------------------------------------------------------------------------------------------


def is_opener(board: BoardSpec, viewer: Viewer) -> bool:
    """The board's opener (or the teacher of its class) may run every value at once and delete it."""
    return viewer.owner == board.owner or (viewer.teacher and board.class_id is not None)


def board_head_ui(board: BoardSpec) -> None:
    st.title(escape_markdown(board_title(board)))
    values = [value_label(board.setting, v) for v in board.values]
    preset = presets.PRESET_LABELS.get(board.preset)
    st.markdown(
        t.md(
            "board.definition",
            setting=setting_label(board.setting),
            values=Listed(values),
            preset=t(preset) if preset else board.preset,
            epochs=board.epochs,
            corpus=_corpus_label(board.corpus),
        )
    )
    with st.expander(t("board.share")):
        st.caption(t("board.share_help"))
        st.code(lesson.lesson_url(_page_url(), {URL_PARAM: board.id, "lang": current_lang()}), language=None)
        fixed = {k: v for k, v in board.base.items() if k != board.setting}
        st.dataframe(
            pd.DataFrame({t("board.col_setting"): list(fixed), t("board.col_fixed"): [str(v) for v in fixed.values()]}),
            hide_index=True,
        )


def _page_url() -> str:
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 -- no request context (AppTest)
        url = ""
    return url if isinstance(url, str) else ""


def seat_ui(board: BoardSpec, viewer: Viewer) -> None:
    """Which value this visitor trains (given, or picked), the Train button, and for the opener "Run all values"."""
    opener = is_opener(board, viewer)
    key = f"{PAGE}:{board.id}:value"
    if key not in st.session_state:
        st.session_state[key] = 0 if opener else boards().store.claim_seat(board, viewer.owner)
    given = st.session_state[key]
    if opener:
        st.info(t("board.opener_note"))
    else:
        value = value_label(board.setting, given_value(board, given))
        st.info(t.md("board.given", setting=setting_label(board.setting), value=value))
    pick_col, train_col, all_col = st.columns([2, 1, 1])
    with pick_col:
        index = st.selectbox(
            t("board.your_value"),
            list(range(len(board.values))),
            key=key,
            format_func=labels(range(len(board.values)), lambda i: value_label(board.setting, board.values[i])),
            on_change=None if opener else _moved,
            args=None if opener else (board, viewer, key),
        )
    with train_col:
        st.write("")
        train = st.button(t("board.train"), key=f"{PAGE}:train", type="primary", width="stretch")
    with all_col:
        st.write("")
        run_all = st.button(
            t("board.run_all", n=len(board.values)),
            key=f"{PAGE}:run_all",
            disabled=not opener,
            width="stretch",
            help=t("board.run_all_help"),
        )
    st.caption(t("board.run_caps", student=MAX_BOARD_RUNS_PER_STUDENT, runs=MAX_BOARD_RUNS, live=MAX_LIVE_BOARD_RUNS))
    if train or run_all:
        indexes = list(range(len(board.values))) if run_all else [index]
        try:
            start_runs(board, viewer, indexes)
        except LabError as exc:
            st.error(t.md("board.cannot_train", msg=localized(exc, current_lang())))


def given_value(board: BoardSpec, index: int) -> Any:
    return board.values[index] if 0 <= index < len(board.values) else board.values[0]


def _moved(board: BoardSpec, viewer: Viewer, key: str) -> None:
    """The student picked another value: the board counts them there now (the next visitors fill the gap)."""
    try:
        boards().store.move_seat(board, viewer.owner, int(st.session_state[key]))
    except LabError:
        pass  # only the count of who has which value: the pick itself stands on this page


def start_runs(board: BoardSpec, viewer: Viewer, indexes: Sequence[int]) -> list[str]:
    """Train `indexes`' values for this viewer: normal jobs of the job manager, tagged with the board."""
    corpus = board_corpus(board)
    prefixes = default_prefixes(corpus)[:1]
    mgr = session.manager()
    mgr.check_room(viewer.owner, n=len(indexes))  # a sweep the server has no room for is refused whole

    def submit(config: TrainConfig) -> str:
        trainer = Trainer(corpus, config)
        return mgr.submit(viewer.owner, [trainer], [config.model], prefixes=prefixes, sample_every=1, kind=KIND).id

    return boards().start(board, viewer.owner, indexes, submit, opener=is_opener(board, viewer))


def _stop(job_ids: Sequence[str]) -> None:
    """Stop the viewer's own runs: the manager finds a job only for its owner, so nobody else's stops."""
    for job_id in job_ids:
        job = session.manager().get(job_id, session.owner_id())
        if job is not None and not job.done:
            job.stop()


def delete_ui(board: BoardSpec, viewer: Viewer) -> None:
    """The opener may delete the board (its runs stay in their owners' My runs)."""
    if viewer.owner != board.owner:
        return
    with st.expander(t("board.delete")):
        st.caption(t("board.delete_help"))
        sure = st.checkbox(t("board.delete_sure"), key=f"{PAGE}:delete_sure")
        if st.button(t("board.delete"), key=f"{PAGE}:delete", disabled=not sure):
            boards().store.delete(board.id, viewer.owner)
            boards().invalidate(board.id)
            st.query_params.pop(URL_PARAM, None)
            st.rerun()


# -- the live board ---------------------------------------------------------------------------------------------------


def live_board_ui(board: BoardSpec, viewer: Viewer) -> None:
    """Every run of the board, redrawn from the shared snapshot while runs are queued or training (slowly when none)."""
    live = boards().snapshot(board).live
    rate = POLL_SECONDS if live else IDLE_POLL_SECONDS

    @turns.fragment(run_every=rate)
    def _panel() -> None:
        snapshot = boards().snapshot(board)
        draw_board(board, snapshot, viewer)
        if snapshot.live != live:
            st.rerun()  # the rate changes with the board: a full run sets the new one

    _panel()


class _FigureCache:
    """Figures of a board's snapshot in one language, built once for every viewer (a snapshot never changes)."""

    def __init__(self, size: int = FIGURE_CACHE) -> None:
        self._items: OrderedDict[tuple[str, str, str], tuple[Any, Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, key: tuple[str, str, str], build: Callable[[], tuple[Any, Any, Any]]) -> tuple[Any, Any, Any]:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        made = build()
        with self._lock:
            self._items[key] = made
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return made


_figures = _FigureCache()


def draw_board(board: BoardSpec, snapshot: BoardSnapshot, viewer: Viewer) -> None:
    """The board as one snapshot shows it: counts, the viewer's own runs, three charts, the table, CSV."""
    runs = snapshot.runs
    training = sum(not r.done for r in runs)
    owners = {r.owner for r in runs}
    cols = st.columns(4)
    cols[0].metric(t("board.m_runs"), len(runs))
    cols[1].metric(t("board.m_training"), training)
    cols[2].metric(t("board.m_finished"), sum(r.status == "finished" for r in runs))
    cols[3].metric(t("board.m_people"), len(owners))
    mine_live = [r.job_id for r in runs if r.owner == viewer.owner and not r.done]
    mine_col, stop_col = st.columns([3, 1])
    with mine_col:
        mine = sum(r.owner == viewer.owner for r in runs)
        st.caption(t("board.yours", n=mine, live=len(mine_live)))
    with stop_col:
        st.button(
            t("board.stop_mine"),
            key=f"{PAGE}:stop_mine",
            on_click=_stop,
            args=(mine_live,),
            disabled=not mine_live,
            width="stretch",
        )
    seats = ", ".join(
        f"{value_label(board.setting, v)} × {n}" for v, n in zip(board.values, snapshot.seats, strict=True) if n
    )
    if seats:
        st.caption(t("board.seats", seats=seats))
    if not runs:
        st.info(t("board.no_runs"))
    names = people(snapshot)
    key = (board.id, snapshot.token, current_lang(), hash(tuple(names.items())))
    curves, ppl, speed = _figures.get(key, lambda: board_figures(board, snapshot, names))
    st.plotly_chart(curves, key=f"{PAGE}:curves")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(ppl, key=f"{PAGE}:ppl")
    with right:
        st.plotly_chart(speed, key=f"{PAGE}:speed")
    table = runs_table(board, snapshot, viewer, names)
    widths: dict[str, int | str] = {name: column_width(name, table[name]) for name in table.columns}
    widths[t("board.col_greedy")] = "large"
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={name: st.column_config.Column(width=width) for name, width in widths.items()},
    )
    st.download_button(
        t("board.download_csv"),
        data=lambda: board_csv(board, snapshot, names).encode("utf-8"),
        file_name=f"board-{board.id}.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"{PAGE}:csv",
        icon=":material/table:",
    )


def board_figures(board: BoardSpec, snapshot: BoardSnapshot, people_: dict[str, str]) -> tuple[Any, Any, Any]:
    """The three charts of a snapshot in this run's language: curves, best perplexity and seconds per epoch by value.

    `people_`: each owner's name for this viewer (`people`).
    """
    labels_ = [value_label(board.setting, v) for v in board.values]
    colors = value_colors(len(board.values), board.setting in ORDERED)
    names = [people_[r.owner] for r in snapshot.runs]
    lines = [
        BoardLine(
            r.value_index,
            name,
            r.epochs,
            r.perplexity,
            diverged_at=(r.epochs[-1] if r.epochs else 0) + 1 if r.status == "diverged" else None,
        )
        for r, name in zip(snapshot.runs, names, strict=True)
    ]
    setting = setting_label(board.setting)
    baseline = _baseline(board)
    curves = curves_figure(
        lines,
        labels_,
        colors,
        board.epochs,
        t("board.curves_title"),
        t("common.epoch"),
        t("common.perplexity"),
        baseline,
    )
    point_names = (t("board.finished"), t("board.training"), t("board.median"))
    ppl_points = [
        ValuePoint(r.value_index, r.best, name, r.done, r.status == "diverged")
        for r, name in zip(snapshot.runs, names, strict=True)
        if r.best is not None
    ]
    ppl = by_value_figure(
        ppl_points, labels_, colors, t("board.ppl_title"), setting, t("board.best_ppl"), True, *point_names, baseline
    )
    speed_points = [
        ValuePoint(r.value_index, r.seconds_per_epoch, name, r.done)
        for r, name in zip(snapshot.runs, names, strict=True)
        if r.seconds_per_epoch is not None
    ]
    speed = by_value_figure(
        speed_points, labels_, colors, t("board.speed_title"), setting, t("board.seconds"), False, *point_names
    )
    return curves, ppl, speed


def _baseline(board: BoardSpec) -> Baseline | None:
    """The uniform guess of the board's corpus (None when the corpus cannot be built here)."""
    try:
        corpus = board_corpus(board)
    except LabError:
        return None
    return Baseline(corpus.vocab_size, t("common.baseline"))


def status_label(run: BoardRun) -> str:
    """A run's state in a table cell: a queued run says its place in line (none: it is taking a slot now)."""
    if run.status == "queued":
        return t("board.st_queued", n=run.queue_position) if run.queue_position > 0 else t("common.status_starting")
    return t(jobs_ui.STATUS_LABELS[run.status]) if run.status in jobs_ui.STATUS_LABELS else run.status


def _display_width(text: str) -> int:
    """Columns a text takes in the table's font: a CJK character about two Latin ones."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def column_width(name: str, cells: pd.Series) -> int:
    """Pixels for a table column: its header and its longest cell whole (no header cut to "Best perple"),
    within bounds, so the table reads from the back of a classroom in every language."""
    longest = max([_display_width(name), *(_display_width("" if c is None else str(c)) for c in cells)])
    return max(60, min(240, 24 + 8 * longest))


def runs_table(board: BoardSpec, snapshot: BoardSnapshot, viewer: Viewer, names: dict[str, str]) -> pd.DataFrame:
    """One row per run, in the viewer's language; names and generated text as plain text."""
    rows = []
    for r in snapshot.runs:
        name = names[r.owner]
        rows.append(
            {
                t("board.col_value"): value_label(board.setting, board.values[r.value_index]),
                t("board.col_who"): t("board.you", name=name) if r.owner == viewer.owner else name,
                t("board.col_status"): status_label(r),
                t("board.col_epoch"): f"{len(r.epochs)} / {r.planned}",
                t("board.col_best"): None if r.best is None else round(r.best, 2),
                t("board.col_seconds"): None if r.seconds_per_epoch is None else round(r.seconds_per_epoch, 2),
                t("board.col_greedy"): (r.prefix + r.greedy) if r.greedy else "",
                t("board.col_node"): r.node[:8],
            }
        )
    table = pd.DataFrame(rows, columns=[*_table_columns(), t("board.col_node")])
    if not any(r.node for r in snapshot.runs):  # runs on this machine: no column for it
        table = table.drop(columns=[t("board.col_node")])
    return table


TABLE_COLUMNS = (
    N_("board.col_value"),
    N_("board.col_who"),
    N_("board.col_status"),
    N_("board.col_epoch"),
    N_("board.col_best"),
    N_("board.col_seconds"),
    N_("board.col_greedy"),
)


def _table_columns() -> list[str]:
    return [t(key) for key in TABLE_COLUMNS]


CSV_COLUMNS = (
    "value",
    "run",
    "name",
    "seed",
    "status",
    "epoch",
    "perplexity",
    "seconds",
    "best_perplexity",
    "seconds_per_epoch",
    "greedy",
)


def csv_text(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ (a formula) gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def board_csv(board: BoardSpec, snapshot: BoardSnapshot, names: dict[str, str]) -> str:
    """Every epoch of every run, with the run's value, its owner as the viewer names them, seed and summary.

    The column names are language-free; `names` as for the page (`people`).
    """
    rows = []
    for number, r in enumerate(snapshot.runs, start=1):
        name = csv_text(names[r.owner])
        value = board.values[r.value_index]
        summary = {
            "value": "off" if value is None else value,
            "run": number,
            "name": name,
            "seed": r.seed,
            "status": r.status,
            "best_perplexity": r.best,
            "seconds_per_epoch": r.seconds_per_epoch,
            "greedy": csv_text(r.prefix + r.greedy) if r.greedy else "",
        }
        if not r.epochs:
            rows.append({**summary, "epoch": None, "perplexity": None, "seconds": None})
        for epoch, ppl, seconds in zip(r.epochs, r.perplexity, r.seconds, strict=False):
            rows.append({**summary, "epoch": epoch, "perplexity": ppl, "seconds": seconds})
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(index=False)


# -- the page -----------------------------------------------------------------------------------------------------------


def board_page() -> None:
    """The page: a board when the URL names one, else the boards this browser opened and the form to open one."""
    viewer = current_viewer()
    board_id = st.query_params.get(URL_PARAM, "")
    store = boards().store
    if store.problem:
        st.warning(t("board.store_problem"))
    if not board_id:
        st.title(t("board.page_title"))
        st.caption(t("board.intro"))
        my_boards_ui(viewer)
        new_board_ui(viewer)
        return
    board = boards().board(board_id)
    if board is None:
        st.title(t("board.page_title"))
        st.warning(t("board.not_found"))
        st.page_link("pages/board.py", label=t("board.new"), query_params={"lang": current_lang()})
        return
    board_head_ui(board)
    seat_ui(board, viewer)
    live_board_ui(board, viewer)
    delete_ui(board, viewer)
