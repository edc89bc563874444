"""Experiment boards: a class (or one student) varies one setting over a few values and sees every run on one chart.

A board is a definition (`BoardSpec`, here: the setting, its values, the preset's other settings, the
corpus) and the runs trained for it. Each run is a normal job of the job manager, owned by whoever started
it; the board only records which job trained which value (`serve.board_store.BoardStore`, an SQLite file in
the data folder, so a board and its link outlive a restart) and draws them from one shared snapshot
(`serve.board_runs.Boards`): those belong to the job server, this module to the engine. Who may see what: a board shows each run's curve, value, status, speed, greedy line and
its owner's display name, nothing else, and it offers no control over anyone's run; the page controls only
the viewer's own jobs through the manager, which checks the owner.

The engine never imports Streamlit; the page (`lab_ui/board_ui.py`) turns a snapshot into charts and text.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import LabError
from .limits import MAX_BOARD_EPOCHS, MAX_BOARD_TITLE, MAX_BOARD_VALUES
from .models import MODEL_KINDS
from .sampling import MODES
from .songci import SUBSETS
from .training import TrainConfig

KIND = "board"  # the `kind` of every job trained for a board (My runs lists them with the owner's other runs)
BOARD_ID = re.compile(r"[0-9a-f]{16}")  # what `new_board_id` makes: anything else is never looked up
MAX_CORPUS_CHARS = 2_000_000  # a board's corpus size setting, as the corpus picker bounds it
CORPUS_SOURCES = ("songci", "book")  # corpora every student's server has: uploads and pasted text are not shared


class BoardError(LabError):
    """A board cannot be made, found or trained on as asked (a cap met, a value that is not one)."""


# -- the settings a board may vary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """A setting a board varies: its `TrainConfig` field and the kind of its values."""

    name: str
    kind: str  # "float" | "int" | "choice"
    choices: tuple[str, ...] = ()  # the allowed values, in order, for a "choice"
    optional: bool = False  # None is a value (clipping off)


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("lr", "float"),
        Variable("hidden", "int"),
        Variable("num_steps", "int"),
        Variable("batch_size", "int"),
        Variable("sampling", "choice", MODES),
        Variable("clip", "float", optional=True),
        Variable("model", "choice", MODEL_KINDS),
    )
}


def normalise_values(setting: str, values: Iterable[Any]) -> tuple[Any, ...]:
    """The values of `setting` a board will use, checked and in their natural order (None first).

    Refuses a setting that is not one of `VARIABLES`, fewer than two distinct values, more than
    `MAX_BOARD_VALUES`, and a value of the wrong kind; each value's range is checked by the config later.
    """
    variable = VARIABLES.get(setting)
    if variable is None:
        raise BoardError("error.boards.bad_setting", name=str(setting)[:40])
    out: list[Any] = []
    for value in values:
        value = _one_value(variable, value)
        if value not in out:
            out.append(value)
    if len(out) < 2:
        raise BoardError("error.boards.few_values")
    if len(out) > MAX_BOARD_VALUES:
        raise BoardError("error.boards.many_values", n=MAX_BOARD_VALUES)
    if variable.kind == "choice":
        return tuple(sorted(out, key=variable.choices.index))
    return tuple(sorted(out, key=lambda v: -math.inf if v is None else v))


def _one_value(variable: Variable, value: Any) -> Any:
    if value is None and variable.optional:
        return None
    if variable.kind == "choice":
        if isinstance(value, str) and value in variable.choices:
            return value
    elif isinstance(value, bool):
        pass
    elif variable.kind == "int" and isinstance(value, int):
        return value
    elif variable.kind == "float" and isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise BoardError("error.boards.bad_value", value=str(value)[:40])


def check_corpus(spec: dict[str, Any]) -> dict[str, Any]:
    """A board's corpus: the bundled Song ci (a subset) or the book's corpus as the operator provided it.

    Both can be rebuilt from the spec alone on any day, by any student's browser; an uploaded or pasted
    text could not, so a board refuses it.
    """
    source = spec.get("source")
    max_chars = spec.get("max_chars")
    if source not in CORPUS_SOURCES:
        raise BoardError("error.boards.corpus")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or not 1 <= max_chars <= MAX_CORPUS_CHARS
    ):
        raise BoardError("error.boards.corpus")
    if source == "songci":
        subset = spec.get("subset")
        if subset not in SUBSETS:
            raise BoardError("error.boards.corpus")
        return {"source": source, "subset": subset, "max_chars": max_chars}
    return {"source": source, "max_chars": max_chars}


# -- a board's definition ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardSpec:
    """What a board trains: `setting` over `values`, everything else as in `base` (a `TrainConfig` dict)."""

    id: str
    title: str
    setting: str
    values: tuple[Any, ...]
    base: dict[str, Any]
    corpus: dict[str, Any]
    preset: str  # the preset `base` came from, by name (shown; `base` is what counts)
    owner: str  # who opened it (their runs are not bounded by MAX_BOARD_RUNS_PER_STUDENT)
    class_id: str | None = None  # the class whose board it is; None: opened alone
    created: float = 0.0

    @property
    def epochs(self) -> int:
        return int(self.base["epochs"])

    def config(self, value_index: int, seed: int | None = None) -> TrainConfig:
        """The settings of a run of value `value_index` (and `seed`, else the preset's)."""
        cfg = TrainConfig.from_dict({**self.base, self.setting: self.values[value_index]})
        if seed is not None:
            cfg.seed = seed
        return cfg

    def to_json(self) -> str:
        return json.dumps(
            {
                "title": self.title,
                "setting": self.setting,
                "values": list(self.values),
                "base": self.base,
                "corpus": self.corpus,
                "preset": self.preset,
            }
        )


def new_board(
    owner: str,
    setting: str,
    values: Iterable[Any],
    base: TrainConfig,
    corpus: dict[str, Any],
    preset: str = "",
    title: str = "",
    class_id: str | None = None,
) -> BoardSpec:
    """A checked board definition with a fresh id (not yet stored: `BoardStore.create` does that).

    Every value's run settings are checked as the Train button would (`TrainConfig.validate`), so a board
    never offers a value that cannot train.
    """
    title = " ".join(str(title).split())
    if len(title) > MAX_BOARD_TITLE:
        raise BoardError("error.boards.title", n=MAX_BOARD_TITLE)
    if not isinstance(base.epochs, int) or not 1 <= base.epochs <= MAX_BOARD_EPOCHS:
        raise BoardError("error.boards.epochs", n=MAX_BOARD_EPOCHS)
    spec = BoardSpec(
        id=new_board_id(),
        title=title,
        setting=setting,
        values=normalise_values(setting, values),
        base={**base.to_dict(), "patience": 0},  # every run trains all its epochs: the curves end together
        corpus=check_corpus(corpus),
        preset=str(preset)[:40],
        owner=owner,
        class_id=class_id,
        created=time.time(),
    )
    for i in range(len(spec.values)):
        spec.config(i).validate()
    return spec


def new_board_id() -> str:
    return secrets.token_hex(8)
