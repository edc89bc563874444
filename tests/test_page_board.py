"""The experiment board page (AppTest): open a board, students given values and training them, the opener's sweep,
what a visitor may see and do, the caps where they are met, the CSV, and the page in 中文 and 繁體中文."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pytest
from apptest_helpers import REPO, TIMEOUT, AppTest, all_text, app_page, plotly_specs, shown
from test_zh_walk import CHINESE, _check
from testkit import wait_until

from lab_ui import board_ui, i18n, session
from lm_core import boards
from lm_core.boards import BoardSpec, new_board
from lm_core.limits import MAX_BOARDS_PER_OWNER
from lm_core.serve import board_runs
from lm_core.serve.board_store import BoardRunRecord
from lm_core.training import TrainConfig

PAGE = "board"
SONGCI = {"source": "songci", "subset": "xin", "max_chars": 3000}
TINY = TrainConfig(model="gru", hidden=16, num_steps=10, batch_size=8, lr=0.01, optimizer="adam", epochs=2, seed=3)
WAIT = 120.0


def _board(owner: str = "teacher", values=(0.001, 0.01, 0.1, 1.0), **kw) -> BoardSpec:
    board = new_board(owner, "lr", values, kw.pop("base", TINY), SONGCI, preset="quick_demo", **kw)
    board_ui.boards().store.create(board)
    return board


def _open(board_id: str, lang: str = "en") -> AppTest:
    """Another browser (its own owner) opening the board's link."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params["board"] = board_id
    at.query_params["lang"] = lang
    return at.switch_page("pages/board.py").run()


@pytest.fixture()
def app() -> Iterator[AppTest]:
    with app_page("pages/board.py", lang="en") as at:
        yield at


def _snapshot(board: BoardSpec) -> boards.BoardSnapshot:
    service = board_ui.boards()
    service.invalidate(board.id)
    return service.snapshot(board)


def _all_done(board: BoardSpec, n: int) -> bool:
    snap = _snapshot(board)
    return len(snap.runs) == n and all(r.done for r in snap.runs)


def _points(at: AppTest, title: str, meta: str) -> int:
    """Points of the trace tagged `meta` ("finished" / "training") on the chart whose title has `title`."""
    (spec,) = [s for s in plotly_specs(at) if title in s["layout"]["title"]["text"]]
    return sum(len(tr["x"]) for tr in spec["data"] if tr.get("meta") == meta)


def test_the_form_opens_a_board_whose_link_reproduces_it(app: AppTest) -> None:
    app.number_input(key="corpus:max_chars").set_value(3000).run()
    app.selectbox(key="board:setting").set_value("hidden").run()
    app.selectbox(key="board:preset").set_value("quick_demo").run()
    values = next(m for m in app.multiselect if m.key.startswith("board:values:hidden"))
    values.set_value([8, 32, 16])
    app.number_input(key="board:epochs").set_value(4)
    app.text_input(key="board:title").input("Hidden units **3A** <b>")
    app.button(key="FormSubmitter:board:new_form-Open the board").click().run()
    assert not app.exception
    board_id = app.query_params["board"]
    board_id = board_id[0] if isinstance(board_id, list) else board_id
    board = board_ui.boards().store.board(board_id)
    assert board.setting == "hidden" and board.values == (8, 16, 32) and board.epochs == 4
    assert board.base["model"] == "gru" and board.corpus == SONGCI and board.owner == app.session_state["owner"]
    assert shown(app.title[0].value) == "Hidden units **3A** <b>"  # the title is text, not Markdown or HTML
    assert "8, 16, 32" in all_text(app) and "4 epochs" in all_text(app)

    again = _open(board_id)  # the link, in another browser (after a restart it reads the same file)
    assert not again.exception and shown(again.title[0].value) == "Hidden units **3A** <b>"


def test_students_are_given_the_next_value_and_train_it_on_the_board(app: AppTest) -> None:
    board = _board()
    students = [_open(board.id) for _ in range(3)]
    given = [s.selectbox(key=f"board:{board.id}:value").value for s in students]
    assert given == [0, 1, 2]  # each student the value fewest have
    assert "Learning rate = 0.01" in all_text(students[1]) and not students[1].button(key="board:run_all").value
    assert students[1].button(key="board:run_all").disabled  # only the opener sweeps

    students[2].selectbox(key=f"board:{board.id}:value").set_value(3).run()  # picks another value
    for s in students:
        s.button(key="board:train").click().run()
        assert not s.exception and not s.error, [e.value for e in s.error]
    assert wait_until(lambda: _all_done(board, 3), WAIT)
    jobs = {r.job_id: r for r in _snapshot(board).runs}
    for s, index in zip(students, (0, 1, 3), strict=True):
        mine = [r for r in jobs.values() if r.owner == s.session_state["owner"]]
        assert [r.value_index for r in mine] == [index]
        job = session.manager().get(mine[0].job_id, s.session_state["owner"])
        assert job.kind == boards.KIND and job.snapshot().runs[0].config["lr"] == board.values[index]
    students[0].run()
    table = students[0].dataframe[-1].value
    assert list(table["Value"]) == ["0.001", "0.01", "1"] and table["Who"].str.endswith("(you)").sum() == 1
    assert _points(students[0], "Best perplexity", "finished") == 3
    assert all(s.strip() for s in table["Greedy line"])


def test_the_opener_runs_every_value_and_the_board_fills(app: AppTest) -> None:
    board = _board(owner=app.session_state["owner"])
    app.query_params["board"] = board.id
    app.run()
    assert "You opened this board" in all_text(app)
    app.button(key="board:run_all").click().run()
    assert not app.exception and not app.error
    snap = _snapshot(board)
    assert sorted(r.value_index for r in snap.runs) == [0, 1, 2, 3]  # every run is on the board at once
    assert wait_until(lambda: _all_done(board, 4), WAIT)
    app.run()
    assert _points(app, "Best perplexity", "finished") == 4 and _points(app, "Best perplexity", "training") == 0
    assert _points(app, "Seconds per epoch", "finished") == 4
    (curves,) = [s for s in plotly_specs(app) if "coloured by its value" in s["layout"]["title"]["text"]]
    assert {tr["name"] for tr in curves["data"]} == {"0.001", "0.01", "0.1", "1"}
    snapshot = _snapshot(board)
    csv = pd.read_csv(io.StringIO(board_ui.board_csv(board, snapshot, {r.owner: "Ann" for r in snapshot.runs})))
    assert len(csv) == 4 * TINY.epochs and sorted(set(csv["value"])) == [0.001, 0.01, 0.1, 1.0]
    assert set(csv["seed"]) == {TINY.seed}


def test_a_visitor_sees_the_others_only_as_text_and_controls_only_their_own_runs(app: AppTest, monkeypatch) -> None:
    board = _board()
    named = "<img src=x onerror=alert(1)> **Bo**"
    monkeypatch.setattr(board_ui, "display_name", lambda owner: named if owner == "someone" else None)
    board_ui.boards().store.add_run(BoardRunRecord("f" * 12, board.id, "someone", 0, 3, 1.0))
    board_ui.boards().store.save_result("f" * 12, {"status": "finished", "planned": 2, "epochs": [1, 2],
                                                  "perplexity": [30.0, 20.0], "seconds": [0.5, 0.5]})  # fmt: skip
    student = _open(board.id)
    student.button(key="board:train").click().run()
    theirs = [r for r in _snapshot(board).runs if r.owner == student.session_state["owner"]]
    assert len(theirs) == 1
    other = _open(board.id)
    assert other.button(key="board:stop_mine").disabled  # nothing of theirs is training: nothing to stop
    board_ui._stop([theirs[0].job_id])  # as the other browser (this thread has no session: a new owner)
    assert session.manager().get(theirs[0].job_id, student.session_state["owner"]).control.stopped is False
    other.run()
    table = other.dataframe[-1].value
    assert named in list(table["Who"])  # shown as typed, by a table that renders nothing
    for spec in plotly_specs(other):
        dumped = str(spec)
        assert "<img" not in dumped and ("&lt;img" in dumped or "Best" not in spec["layout"]["title"]["text"])
    student.button(key="board:stop_mine").click().run()  # their own Stop stops their own run
    assert wait_until(lambda: session.manager().get(theirs[0].job_id, student.session_state["owner"]).done, WAIT)


def test_a_student_trains_one_run_at_a_time_and_the_cap_is_said(app: AppTest, monkeypatch) -> None:
    board = _board(base=TrainConfig(**{**TINY.to_dict(), "epochs": 50}))
    student = _open(board.id)
    student.button(key="board:train").click().run()
    student.button(key="board:train").click().run()
    assert "already have a run training on this board" in shown(" ".join(e.value for e in student.error))
    monkeypatch.setattr(board_runs, "MAX_LIVE_BOARD_RUNS", 1)
    other = _open(board.id)
    other.button(key="board:train").click().run()
    assert "The server has 1 board runs queued or training" in shown(" ".join(e.value for e in other.error))
    student.button(key="board:stop_mine").click().run()


def test_boards_opened_alone_are_capped_per_browser_and_the_page_says_so(app: AppTest) -> None:
    for _ in range(MAX_BOARDS_PER_OWNER):
        _board(owner=app.session_state["owner"])
    app.run()
    assert len(app.get("page_link")) >= MAX_BOARDS_PER_OWNER  # "Your boards" lists them
    app.number_input(key="corpus:max_chars").set_value(3000).run()
    app.button(key="FormSubmitter:board:new_form-Open the board").click().run()
    assert f"You have opened {MAX_BOARDS_PER_OWNER} boards already" in shown(" ".join(e.value for e in app.error))


@pytest.mark.parametrize("bad", ["0" * 16, "../../etc/passwd", "<script>"])
def test_a_link_to_no_board_says_so(app: AppTest, bad: str) -> None:
    at = _open(bad)
    assert not at.exception and "names no board" in " ".join(w.value for w in at.warning)


def test_the_csv_keeps_names_as_text_for_spreadsheets() -> None:
    board = new_board("t", "clip", [None, 0.1], TINY, SONGCI)
    run = board_runs.BoardRun("a" * 12, "o", 1, 0, 3, "finished", 0, 2, (1,), (9.0,), (0.5,))
    text = board_ui.board_csv(board, board_runs.BoardSnapshot(board, (run,), (1, 0), "x", 0.0), {"o": "=HYPERLINK(1)"})
    table = pd.read_csv(io.StringIO(text))
    assert table["name"][0] == "'=HYPERLINK(1)" and table["value"][0] == "off"


@pytest.mark.parametrize("lang", [*CHINESE, "en"])
def test_a_board_with_runs_reads_in_its_language(lang: str) -> None:
    """In Chinese no English sentence or Streamlit English; in English no Chinese but corpus text and named authors."""
    with app_page("pages/board.py", lang=lang) as at:
        _check(at, lang, "form")
        board = _board(owner=at.session_state["owner"], values=(0.01, 0.1))
        at.query_params["board"] = board.id
        at.run()
        at.button(key="board:run_all").click().run()
        assert wait_until(lambda: _all_done(board, 2), WAIT)
        at.run()
        _check(at, lang, "board")


def test_the_table_says_where_a_queued_run_stands_in_a_few_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "current_lang", lambda: "en")
    board = new_board("t", "lr", [0.01, 0.1, 1.0], TINY, SONGCI)
    runs = tuple(
        board_runs.BoardRun(f"{i:012x}", "o", 1, i, 3, status, position, 2)
        for i, (status, position) in enumerate([("queued", 3), ("queued", 0), ("running", 0)])
    )
    snapshot = board_runs.BoardSnapshot(board, runs, (1, 1, 1), "x", 0.0)
    table = board_ui.runs_table(board, snapshot, board_ui.Viewer("t"), {"o": "Visitor 1"})
    assert list(table["Status"]) == ["Queued (#3)", "Starting…", "Training"]
