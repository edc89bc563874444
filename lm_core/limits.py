"""The resource limits of the app and the CLI: what a visitor, a run or an owner may take.

The server is shared by a classroom, so everything a visitor can send is
bounded, and each bound is checked *before* the expensive step it protects
(reading, inflating, allocating a model). The UI states these numbers where
the user meets them (uploader help, error messages) and SECURITY.md's Limits
section repeats them. `server.maxUploadSize` in `.streamlit/config.toml` must
equal `MAX_UPLOAD_MB` (a test checks it).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def operator_whole(name: str, default: int, lo: int = 1, hi: int = 100_000) -> int:
    """A limit the operator may set in the environment (`name`, a whole number in [lo, hi]), else `default`.

    Read once, when the server starts. A value that is not such a number keeps the default and says so in the
    log: a typo must not lift a limit.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        log.warning("%s=%r is not a whole number from %d to %d; using %d", name, raw, lo, hi, default)
        return default
    return value


MAX_UPLOAD_MB = 20  # every uploader in the app; the server refuses larger requests outright
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 2**20

MAX_CORPUS_BYTES = MAX_UPLOAD_BYTES  # a corpus file, and the text inside a zip once inflated
MAX_VOCAB = 8_000  # distinct characters: the input and output layers grow with it
MAX_HIDDEN = 2_048  # hidden units: the recurrent weights grow with its square
MAX_LAYERS = 3  # stacked torch.nn layers
MAX_EMBED = 1_024  # embedding dimension (0 = one-hot input)
MAX_DROPOUT = 0.9  # dropout between layers; 1 would drop everything
# Weights of one model (4 bytes each). A model within MAX_VOCAB and MAX_HIDDEN can still exceed it
# (an LSTM at 8,000 × 2,048 has 99 M); with gradients and Adam's two moments a run holds about
# four copies, so one job stays under ~800 MB.
MAX_PARAMETERS = 50_000_000

# A checkpoint a visitor uploads is at most the upload size. What the server wrote itself (a worker's start
# and published checkpoints, the run store's copies) and what the operator reads (the CLI, shipped files) may
# be larger, up to what a model within MAX_PARAMETERS takes with Adam's two moments (plus slack).
MAX_CHECKPOINT_BYTES = MAX_UPLOAD_BYTES
MAX_OWN_CHECKPOINT_BYTES = 3 * 4 * MAX_PARAMETERS + 64 * 2**20
MAX_CLI_CHECKPOINT_BYTES = MAX_OWN_CHECKPOINT_BYTES

# Finished jobs kept in memory (their curves, samples and last weights), per browser (one per training
# page) and in total (a class of 40). Superseded runs go first, then the oldest.
MAX_FINISHED_PER_OWNER = 3
MAX_FINISHED_TOTAL = 40
# ... and the bytes their weights and optimiser states take, in total: by count alone, 40 of the largest models
# (MAX_PARAMETERS, with Adam's two moments: 600 MB each) would hold 24 GB. Past this, the oldest release their
# optimiser states first, then go (superseded and oldest first, as above).
MAX_FINISHED_BYTES = 2 * 2**30
# A finished job nobody has looked at for this long keeps its curves but drops its optimiser state
# (the published weights stay, so Generate and Hidden states can still use it; only Continue restarts
# the optimiser fresh, as for a checkpoint saved with --slim).
RELEASE_UNWATCHED_AFTER = 10 * 60.0

# Jobs queued, training or paused at once: on the whole server (a class of 40 with one run each, and the teacher's),
# and per browser (one sweep of a board: MAX_BOARD_VALUES). A new browser identity costs nothing, so the total is
# what protects the server; a Train click beyond either is refused before its model is built ("the lab is full").
# Operators with more cores or memory raise them; a small laptop server may lower the total.
MAX_LIVE_JOBS_ENV = "RNN_LAB_MAX_JOBS"
MAX_LIVE_JOBS = operator_whole(MAX_LIVE_JOBS_ENV, 48)
MAX_LIVE_JOBS_PER_OWNER_ENV = "RNN_LAB_MAX_JOBS_PER_OWNER"
MAX_LIVE_JOBS_PER_OWNER = operator_whole(MAX_LIVE_JOBS_PER_OWNER_ENV, 8)

# Uploaded and pasted corpora the server keeps ready, once per content (sha256) whoever sent them: at most this
# many, and this many bytes (their text and character ids); the least recently used go first.
MAX_KEPT_CORPORA = 16
MAX_KEPT_CORPUS_BYTES = 512 * 2**20
# ... and a built corpus (text and character ids, made again from the kept text when asked) that no page asked for
# in this long goes: after a class leaves, the server's memory returns (a running job holds its own).
KEPT_CORPUS_IDLE_SECONDS = 120.0

# Experiment boards (lm_core/boards.py): one setting varied over a few values, every run a normal job.
# A class's boards are made by its teacher and bounded per class; a board someone opens alone is bounded per
# browser and, because a new browser costs nothing, by a server-wide count of such boards beside it.
MAX_BOARD_VALUES = 8  # values of the varied setting on one board
MAX_BOARD_TITLE = 80  # characters of a board's title
MAX_BOARD_EPOCHS = 200  # epochs of each run on a board
MAX_BOARDS_PER_CLASS = 20
MAX_BOARDS_PER_OWNER = 5  # boards one browser (or student) opens alone
MAX_BOARDS_ALONE_TOTAL = 500  # boards opened alone, all browsers together
BOARD_IDLE_DAYS = 30  # a board opened alone that nobody opened for this long makes room when that cap is met
MAX_BOARD_RUNS = 100  # runs on one board, everyone's together
MAX_BOARD_RUNS_PER_STUDENT = 5  # one visitor's runs on a board they did not open (its opener: MAX_BOARD_RUNS)
MAX_LIVE_BOARD_RUNS_PER_OWNER = MAX_BOARD_VALUES  # queued or training board runs of one browser: one sweep
MAX_LIVE_BOARD_RUNS = 64  # queued or training board runs of the whole server
MAX_BOARD_SEATS = 200  # value assignments a board remembers (later visitors are still given the next value)

# torch threads a CLI command may ask for: more than any machine here has cores; a huge count (10^8) crashes torch.
MAX_THREADS = 256

# Per-step gradient norms a job keeps of each run (the Gradient clipping page's chart).
MAX_STEP_TRACE = 20_000
# The run store, per owner: finished runs beyond either bound are evicted, oldest first.
MAX_RUNS_PER_OWNER = 50
MAX_BYTES_PER_OWNER = 200 * 1024 * 1024  # checkpoints and the training texts their runs use

# Text that reaches a page. A checkpoint's corpus name and note (a file could carry megabytes); what a visitor
# types to trace through time on the Gradients page (every figure stays under a second at h = 256) and on the
# Hidden states page (the heatmap stays readable and the trace fast).
MAX_CHECKPOINT_TEXT = 500
MAX_GRADIENT_TEXT = 200
MAX_HIDDEN_TEXT = 300

# Classes (lm_core.classroom). A class is made only with the teacher key, but a student's join makes rows, and a
# new browser identity costs a visitor nothing: so each per-name limit has a global one beside it.
MAX_CLASSES = 100  # classes on one server (the Teacher page and `python -m lm_core class create` refuse more)
MAX_STUDENTS_PER_CLASS = 80  # names in one class; a join with a new name past this is refused, saying so
MAX_BROWSERS_PER_STUDENT = 20  # browsers signed in as one student at once; the oldest is signed out past this
MAX_NAME_CHARS = 40  # a display name (visible characters, trimmed)
MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 12  # a PIN is digits only, chosen by the student
# Wrong PINs: per (class, name), then that name waits for the window to pass; and in all, across every class
# and name, so trying many names (or many classes) from many browsers is slow too.
JOIN_FAILURES_PER_NAME = 5
JOIN_FAILURES_GLOBAL = 200
JOIN_FAILURE_WINDOW = 15 * 60.0  # seconds a failure counts
# The teacher key: wrong keys per browser and in all, in the same kind of window.
TEACHER_FAILURES_PER_BROWSER = 5
TEACHER_FAILURES_GLOBAL = 30
TEACHER_FAILURE_WINDOW = 10 * 60.0
TEACHER_UNLOCK_SECONDS = 12 * 3600.0  # an unlocked Teacher page stays unlocked this long in that browser
MAX_LESSON_MINUTES = 6 * 60  # the longest lesson lock
