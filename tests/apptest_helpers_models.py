"""Shared helpers for the model pages' tests (Hidden states, Generate, the model picker).

A plain module imported by the test files; the fixtures built on it (`trained_checkpoints`,
`shipped`, `clean_streamlit`) are in `conftest.py`. Models are tiny (16 hidden
units, 2 epochs on ~1,500 synthetic characters) and trained once per test
session; each test writes the checkpoints it needs into its own temporary
folder and points the app there with `RNN_LAB_CHECKPOINTS`.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import streamlit as st  # noqa: F401  (tests clear its caches as helpers.st)
from apptest_helpers import TIMEOUT, shown
from streamlit.testing.v1 import AppTest
from testkit import tiny_text

from lab_ui import jobs_ui, session
from lab_ui.model_cache import CHECKPOINT_ENV  # noqa: F401  (tests read it as helpers.CHECKPOINT_ENV)
from lm_core.checkpoint import from_trainer, to_bytes
from lm_core.corpus import Corpus
from lm_core.training import TrainConfig, Trainer

APP = REPO / "streamlit_app.py"
CORPUS_NAME = "synthetic test lines"

# Lines written for these tests (not lyrics from any corpus); they contain the book's prefixes 分开 / 不分开.
LINES = (
    "我们分开以后天很蓝",
    "不分开的手在风里",
    "月光照着小河流",
    "春天的花开满山坡",
    "你说别再分开了",
    "雨停了我还在等你",
    "远方的歌声很轻",
)


def tiny_corpus() -> Corpus:
    return Corpus.from_text(tiny_text(LINES, n_lines=90, seed=3), name=CORPUS_NAME, max_chars=None)


def tiny_config(kind: str, epochs: int = 2, hidden: int = 16) -> TrainConfig:
    return TrainConfig(
        model=kind,
        sampling="adjacent",
        hidden=hidden,
        num_steps=10,
        batch_size=8,
        lr=1e-2,
        optimizer="adam",
        clip=1.0,
        epochs=epochs,
        seed=0,
    )


def train_tiny(kind: str, epochs: int = 2, hidden: int = 16) -> Trainer:
    trainer = Trainer(tiny_corpus(), tiny_config(kind, epochs, hidden))
    for _ in trainer.train():
        pass
    return trainer


@functools.cache
def trained_bytes() -> dict[str, bytes]:
    out = {kind: to_bytes(from_trainer(train_tiny(kind))) for kind in ("gru", "rnn", "scratch-lstm")}
    out["gru-h8"] = to_bytes(from_trainer(train_tiny("gru", hidden=8)))
    return out


def trained_job(owner: str, label: str = "GRU", epochs: int = 1, kind: str = "gru") -> str:
    """Id of a tiny `kind` run that `owner` trained to the end in the app's job manager, as the Train page would."""
    job = session.manager().submit(
        owner, [Trainer(tiny_corpus(), tiny_config(kind, epochs=epochs))], [label], kind="train"
    )
    job.thread.join(TIMEOUT)
    return job.id


def with_train_job(kind: str, label: str) -> Callable[[AppTest], None]:
    """An `open_page(prepare=...)` step: the visitor "tester" trained a tiny `kind` model (2 epochs) on the Train
    page of this session, so the model pages offer it with its corpus."""

    def prepare(at: AppTest) -> None:
        at.session_state["owner"] = "tester"
        at.session_state[jobs_ui.job_key("train")] = trained_job("tester", label, epochs=2, kind=kind)

    return prepare


def open_page(page: str, lang: str = "en", prepare: Callable[[AppTest], None] | None = None) -> AppTest:
    """Run the entrypoint, then switch to `pages/<page>.py` and run it."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if prepare is not None:
        prepare(at)
    at.run()
    if lang != "zh":
        # Through the sidebar radio rather than `?lang=`: the Train page's preset selectbox formats its
        # options lazily by language, which AppTest evaluates outside the script run (as Chinese).
        at.radio(key="_lang_widget").set_value(lang)
    at.switch_page(f"pages/{page}.py").run()
    assert_ok(at)
    return at


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def decode(value: Any) -> Any:
    """A Plotly typed array (`{"dtype", "bdata", "shape"}`) as a numpy array; other values unchanged."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]).newbyteorder("<"))
        shape = value.get("shape")
        if shape:
            array = array.reshape([int(s) for s in str(shape).split(",")])
        return array
    return value


def plotly_specs(at: AppTest) -> dict[str, dict]:
    """Every Plotly figure on the page as parsed JSON, by the end of its element id (the chart's key)."""
    out = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        out[element.proto.id] = spec
    return out


def figure(at: AppTest, key: str) -> dict:
    """The Plotly figure drawn with `st.plotly_chart(..., key=key)`."""
    matches = [spec for element_id, spec in plotly_specs(at).items() if element_id.endswith(key)]
    assert matches, f"no chart with key {key!r}; found {list(plotly_specs(at))}"
    return matches[0]


def html_bodies(at: AppTest) -> list[str]:
    return [h.value for h in at.html]


def html_text(body: str) -> str:
    """The visible text of an `st.html` body (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def texts(at: AppTest) -> str:
    """All alert, caption and markdown text on the page, for "the message names X" checks."""
    parts = [e.value for kind in ("error", "warning", "info", "success", "caption", "markdown") for e in at.get(kind)]
    return "\n".join(shown(str(p)) for p in parts)
