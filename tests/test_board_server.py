"""A board on a real `streamlit run` (127.0.0.1), driven by websocket clients (tests/st_client.py), no browser.

Four students open the board's link, are given the four values and train them; then one user alone presses
"Run all values". Either way every run shows on the board while it trains (a partial curve, "k / n" epochs
in its row) and, once they have finished, the best-perplexity chart has one point per run.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from st_client import Page, StClient
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from testkit import Server, streamlit_server

from lab_ui.web import COOKIE
from lm_core.boards import BoardSpec, new_board
from lm_core.serve.board_store import BoardStore
from lm_core.training import TrainConfig

pytestmark = [pytest.mark.server, pytest.mark.slow]

WAIT = 300.0  # seconds: a bound for four runs on a loaded 2-core machine, never a pass condition by itself
VALUES = (0.001, 0.01, 0.1, 1.0)
# Long enough that each run trains for several seconds even on a quiet machine with one worker (the board
# redraws every 2 s, and each run must be seen part-trained), short enough for a test.
RUN = TrainConfig(model="gru", hidden=32, num_steps=10, batch_size=8, lr=0.01, optimizer="adam", epochs=60, seed=1)
CORPUS = {"source": "songci", "subset": "xin", "max_chars": 3000}


@pytest.fixture(scope="module")
def data() -> str:
    return tempfile.mkdtemp(prefix="lab-board-")  # never the repo's lab-data/


@pytest.fixture(scope="module")
def server(data: str) -> Iterator[Server]:
    with (Path(data) / "server.log").open("w") as log, streamlit_server(data, log, ready_within=120.0) as running:
        yield running


def _create(data: str, owner: str) -> BoardSpec:
    """A board as its opener's form would store it, written into the server's data folder."""
    board = new_board(owner, "lr", VALUES, RUN, CORPUS, preset="quick_demo", title="Learning rate")
    store = BoardStore(data)
    store.create(board)
    store.close()
    return board


def _owner(tab: StClient) -> str:
    """The owner id the server derives from this browser's identity cookie (lab_ui.session.owner_id)."""
    token = next(c.value for c in tab.cookies if c.name == COOKIE)
    return hashlib.sha256(f"rnnlab-owner:{token}".encode()).hexdigest()[:16]


def _table(page: Page) -> pd.DataFrame | None:
    """The board's table of runs as drawn (the last dataframe of the page)."""
    frames = page.of("dataframe")
    return convert_arrow_bytes_to_pandas_df(frames[-1].proto.dataframe.arrow_data.data) if frames else None


def _chart(page: Page, title: str) -> dict | None:
    for element in page.of("plotly_chart"):
        spec = json.loads(element.proto.plotly_chart.spec)
        if title in spec["layout"]["title"]["text"]:
            return spec
    return None


def _finished_points(page: Page) -> int:
    spec = _chart(page, "Best perplexity")
    return sum(len(tr["x"]) for tr in spec["data"] if tr.get("meta") == "finished") if spec else 0


def _given(page: Page) -> str | None:
    """The value the page says this student was given (its Markdown escapes undone)."""
    said = [x.replace("\\", "") for x in page.texts if "You were given" in x]
    return said[0].split("Learning rate = ")[1].split("**")[0] if said else None


def _watch(viewer: StClient, runs: int) -> tuple[set[tuple[str, str]], Page]:
    """Follow the board on `viewer` until `runs` runs have finished; the runs seen part-trained on the way.

    A run counts as seen while it trains when its row showed 0 < k < n epochs (its curve is partly drawn).
    """
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        page = viewer.page
        table = _table(page)
        if table is not None and len(table) == runs:
            for _, row in table.iterrows():
                done, planned = (int(x) for x in str(row["Epoch"]).split(" / "))
                if 0 < done < planned and row["Status"] != "Finished":
                    seen.add((str(row["Value"]), str(row["Who"])))
            if (table["Status"] == "Finished").all() and _finished_points(page) == runs:
                return seen, page
        time.sleep(0.2)
    raise AssertionError(f"the board did not show {runs} finished runs within {WAIT:g} s")


def test_four_students_fill_a_board_of_four_values(server: Server, data: str) -> None:
    board = _create(data, owner="teacher")
    query = f"board={board.id}&lang=en"
    with StClient(server.url, timeout=WAIT, lifetime=WAIT + 120) as teacher:
        teacher.open("board", query)
        teacher.wait_for(lambda p: p.has_text("No runs yet"), what="the empty board")
        students = [StClient(server.url, timeout=WAIT, lifetime=WAIT + 120) for _ in VALUES]
        try:
            for tab in students:
                tab.open("board", query)
            given = [tab.wait_for(lambda p: _given(p), what="the value given") for tab in students]
            assert sorted(given) == sorted(f"{v:g}" for v in VALUES)  # each student the value fewest have
            for tab in students:
                tab.click("Train this value")
                assert not [a for a in tab.page.alerts if a[0] == "error"], tab.page.alerts
            seen, page = _watch(teacher, len(VALUES))
        finally:
            for tab in students:
                tab.close()
    table = _table(page)
    assert sorted(table["Value"]) == sorted(f"{v:g}" for v in VALUES)
    assert len(set(table["Who"])) == 4  # four browsers, four people on the board
    assert len(seen) == 4, f"runs seen while training: {seen}"  # every run appeared while it trained
    assert _finished_points(page) == 4


def test_one_users_run_all_values_fills_the_same_kind_of_board(server: Server, data: str) -> None:
    with StClient(server.url, timeout=WAIT, lifetime=WAIT + 120) as alone:
        alone.open("board", "lang=en")
        board = _create(data, owner=_owner(alone))  # opened by this browser
        alone.open("board", f"board={board.id}&lang=en")
        alone.wait_for(lambda p: p.has_text("You opened this board"), what="the opener's note")
        alone.click("Run all 4 values")
        assert not [a for a in alone.page.alerts if a[0] == "error"], alone.page.alerts
        first = _table(alone.page)
        assert first is not None and len(first) == 4  # the whole sweep is on the board at once
        seen, page = _watch(alone, len(VALUES))
    assert len(seen) == 4, f"runs seen while training: {seen}"
    assert _finished_points(page) == 4 and set(_table(page)["Who"]) == {"Visitor 1 (you)"}
