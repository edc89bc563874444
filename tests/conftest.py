"""Shared fixtures: the book's corpus (read in place, never copied) and a tiny synthetic corpus."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so that plain `pytest` (not only `python -m pytest`) finds lm_core
    sys.path.insert(0, str(REPO))

from lm_core.corpus import Corpus

BOOK_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "jaychou_lyrics.txt.zip"

# Phrases written for these tests (not lyrics from any corpus).
TINY_PHRASES = (
    "春风吹过小河边",
    "月光照在老树上",
    "我们一起唱着歌",
    "雨后的天空很蓝",
    "远方的朋友你好吗",
    "山上的花开了",
)


def tiny_text(n_lines: int = 80, seed: int = 1) -> str:
    """A deterministic synthetic text of about 1,000 characters made of TINY_PHRASES."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        a, b = rng.sample(TINY_PHRASES, 2)
        lines.append(f"{a}，{b}。")
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _own_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own run store folder, so no test writes to the repository's lab-data/."""
    folder = tmp_path_factory.mktemp("lab-data")
    monkeypatch.setenv("RNN_LAB_DATA", str(folder))
    return folder


@pytest.fixture(scope="session")
def book_zip() -> Path:
    """Path of the book's corpus beside the repository; skip (or fail in CI) when it is missing."""
    if not BOOK_ZIP.is_file():
        message = f"the book's corpus is missing at {BOOK_ZIP}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return BOOK_ZIP


@pytest.fixture(scope="session")
def book_corpus(book_zip: Path) -> Corpus:
    """The book's corpus with the book's preprocessing (10,000 characters)."""
    return Corpus.from_file(book_zip)


@pytest.fixture(scope="session")
def tiny_corpus() -> Corpus:
    """A small synthetic Chinese corpus (all characters kept) for fast training tests."""
    return Corpus.from_text(tiny_text(), name="tiny", max_chars=None)
