"""The chapter's exercises and the book's own experiments, as lessons a teacher can link (the Lessons page).

d2l-zh ends "循环神经网络的从零开始实现" with six exercises; each `Lesson` names the page that does it (a page key
of the entrypoint's `PAGES`), the whole run it starts from (`config` and `compare`, so a link opens the same
experiment whatever the visitor's settings were), and its words as catalogue keys: what to look for, a question,
and, where the lab cannot do the exercise exactly, what the link does instead (`instead`).

Data only: `lab_ui.lesson` turns a lesson into the target page's URL through the settings' own URL code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .lessons import PRESET, SAMPLING_CHARS, SAMPLING_PRESET
from .messages import N_
from .songci import DEFAULT_SUBSET
from .training import TrainConfig, book_config


@dataclass(frozen=True)
class Lesson:
    """One exercise or experiment: where it runs, from which settings, and what the student should see and answer."""

    key: str  # stable id (tests, widget keys)
    page: str  # the page key it opens (the entrypoint's PAGES)
    title: str  # catalogue keys, each written N_("lessons.…")
    look: str
    question: str
    instead: str = ""  # what the link does where the lab cannot do the exercise as the book asks
    config: TrainConfig | None = None  # the run's settings; None: the page has no settings of its own (a model page)
    compare: str = "none"  # the Train page's second run, in lockstep: a model kind or "no_detach"
    # The corpus picker's source, Song ci subset and size, where the lesson shows only on its own corpus.
    corpus: dict[str, str | int] = field(default_factory=dict)


EXERCISES: tuple[Lesson, ...] = (
    Lesson(
        "embedding",
        "train",
        N_("lessons.embedding_title"),
        N_("lessons.embedding_look"),
        N_("lessons.embedding_question"),
        instead=N_("lessons.embedding_instead"),
        config=book_config("rnn", embed=32, epochs=60, seed=0),
    ),
    Lesson(
        "tune",
        "train",
        N_("lessons.tune_title"),
        N_("lessons.tune_look"),
        N_("lessons.tune_question"),
        config=book_config("scratch-rnn", "random", epochs=100, seed=0),
    ),
    Lesson(
        "sharpen",
        "generate",
        N_("lessons.sharpen_title"),
        N_("lessons.sharpen_look"),
        N_("lessons.sharpen_question"),
        instead=N_("lessons.sharpen_instead"),
    ),
    Lesson(
        "no_clip",
        "clipping",
        N_("lessons.no_clip_title"),
        N_("lessons.no_clip_look"),
        N_("lessons.no_clip_question"),
        config=book_config("scratch-rnn", "random", epochs=30, seed=0),
    ),
    Lesson(
        "no_detach",
        "train",
        N_("lessons.no_detach_title"),
        N_("lessons.no_detach_look"),
        N_("lessons.no_detach_question"),
        config=book_config("scratch-rnn", "adjacent", epochs=30, seed=0),
        compare="no_detach",  # the same run not detached, in lockstep (lab_ui.settings.NOT_DETACHED)
    ),
    Lesson(
        "relu",
        "clipping",
        N_("lessons.relu_title"),
        N_("lessons.relu_look"),
        N_("lessons.relu_question"),
        config=book_config("scratch-rnn", "random", nonlinearity="relu", epochs=30, seed=0),
    ),
)

EXPERIMENTS: tuple[Lesson, ...] = (
    Lesson(
        "sampling",
        "sampling",
        N_("lessons.sampling_title"),
        N_("lessons.sampling_look"),
        N_("lessons.sampling_question"),
        config=SAMPLING_PRESET,
        corpus={"source": "songci", "subset": DEFAULT_SUBSET, "max_chars": SAMPLING_CHARS},
    ),
    Lesson(
        "gru_vs_rnn",
        "train",
        N_("lessons.gru_vs_rnn_title"),
        N_("lessons.gru_vs_rnn_look"),
        N_("lessons.gru_vs_rnn_question"),
        config=book_config("scratch-rnn", "adjacent", epochs=160, seed=0),
        compare="scratch-gru",
    ),
    Lesson(
        "generalise",
        "generalise",
        N_("lessons.generalise_title"),
        N_("lessons.generalise_look"),
        N_("lessons.generalise_question"),
        config=PRESET,
    ),
    Lesson(
        "gradients",
        "gradients",
        N_("lessons.gradients_title"),
        N_("lessons.gradients_look"),
        N_("lessons.gradients_question"),
    ),
)


def all_lessons() -> tuple[Lesson, ...]:
    """The exercises, then the book's experiments."""
    return EXERCISES + EXPERIMENTS
