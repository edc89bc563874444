"""A class's results as one CSV table: a row per run of every student, for a spreadsheet.

Names come from students, so a cell that a spreadsheet would read as a formula (starting with = + - @, a tab
or a carriage return) is written with a leading apostrophe: the CSV shows what was typed and runs nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..serve.store import RunRecord
from .store import ClassInfo, StudentInfo

COLUMNS = (
    "class", "student", "run", "model", "status", "epoch", "planned", "best_perplexity", "last_perplexity",
    "diverged", "hidden", "num_steps", "batch_size", "lr", "optimizer", "clip", "sampling", "corpus", "started",
)  # fmt: skip
SETTINGS = ("hidden", "num_steps", "batch_size", "lr", "optimizer", "clip", "sampling")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A value as a spreadsheet should show it: text that would start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _number(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) and math.isfinite(value) else ""


def result_row(klass: ClassInfo, student: StudentInfo, record: RunRecord, history: Sequence[dict]) -> list[Any]:
    """One run as a CSV row (COLUMNS), from the run store's record and its per-epoch metrics."""
    last = history[-1].get("perplexity") if history else None
    config = record.config
    row = [
        klass.name,
        student.name,
        record.label,
        config.get("model", ""),
        record.status,
        record.epoch,
        record.planned,
        _number(record.best_perplexity),
        _number(last),
        record.status == "diverged",
        *(config.get(name, "") if config.get(name) is not None else "" for name in SETTINGS),
        record.corpus_name,
        dt.datetime.fromtimestamp(record.created).isoformat(timespec="seconds"),
    ]
    return [safe_cell(v) for v in row]


def results_csv(rows: Iterable[list[Any]]) -> bytes:
    """The rows under the COLUMNS header, as UTF-8 with a byte-order mark (so spreadsheets read Chinese names)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")
