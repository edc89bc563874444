"""Shared helpers and fixtures for the model pages' tests (Hidden states, Generate, the model picker).

A plain module, imported by the test files (pytest registers the fixtures it
finds in a test module's namespace); `conftest.py` belongs to someone else.
Models are tiny (16 hidden units, 2 epochs on ~1,000 synthetic characters) and
trained once per test session; each test writes the checkpoints it needs into
its own temporary folder and points the app there with `RNN_LAB_CHECKPOINTS`.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import streamlit as st
from apptest_helpers import shown
from streamlit.testing.v1 import AppTest

from lab_ui import session
from lab_ui.model_source import CHECKPOINT_ENV
from lm_core.checkpoint import from_trainer, to_bytes
from lm_core.corpus import Corpus
from lm_core.training import TrainConfig, Trainer

APP = REPO / "streamlit_app.py"
TIMEOUT = 60
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


def synthetic_text(n_lines: int = 90, seed: int = 3) -> str:
    """About 1,500 deterministic characters made of LINES."""
    rng = random.Random(seed)
    return "\n".join(f"{a}，{b}。" for a, b in (rng.sample(LINES, 2) for _ in range(n_lines)))


def tiny_corpus() -> Corpus:
    return Corpus.from_text(synthetic_text(), name=CORPUS_NAME, max_chars=None)


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
def _trained_bytes() -> dict[str, bytes]:
    out = {kind: to_bytes(from_trainer(train_tiny(kind))) for kind in ("gru", "rnn", "scratch-lstm")}
    out["gru-h8"] = to_bytes(from_trainer(train_tiny("gru", hidden=8)))
    return out


@pytest.fixture
def trained() -> dict[str, bytes]:
    """Checkpoint bytes of tiny trained models: "gru", "rnn", "scratch-lstm" (16 units) and "gru-h8".

    Trained once per process, whichever test module asks first.
    """
    return _trained_bytes()


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: dict[str, bytes]) -> Callable[..., Path]:
    """`shipped("gru", "rnn")` writes those checkpoints (in that order) as the app's shipped models."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv(CHECKPOINT_ENV, str(folder))

    def make(*kinds: str) -> Path:
        for i, kind in enumerate(kinds):
            (folder / f"{i}_{kind}.pt").write_bytes(trained[kind])
        return folder

    return make


@pytest.fixture(autouse=True)
def clean_streamlit() -> Iterator[None]:
    """Fresh caches for every test; stop and join every training thread afterwards."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    session.manager().shutdown()
    st.cache_resource.clear()
    st.cache_data.clear()


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
