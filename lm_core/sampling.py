"""The book's two ways of cutting a corpus into minibatches, and a map of them.

Random sampling (T = num_steps, B = batch_size)::

    corpus  |w0 ...|w1 ...|w2 ...|w3 ...|w4 ...| ...   windows start at k*T
    epoch   shuffle the windows once, take B at a time; leftovers are skipped
    state   reset before every minibatch (neighbouring rows are unrelated)

Adjacent (consecutive) sampling::

    row 0   |mb0 T cols|mb1 T cols|mb2 ...    row r = r-th contiguous slice
    row 1   |mb0       |mb1       |mb2 ...    of len // B characters
    ...
    state   carried from minibatch i to i+1 (detached), reset each epoch

Labels are always the inputs shifted one character to the right. Batches are
`(B, T)` int64 tensors.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .errors import CorpusError
from .messages import N_, Message

MODES = ("random", "adjacent")
MODE_KEYS = {"random": N_("error.sampling.mode_random"), "adjacent": N_("error.sampling.mode_adjacent")}


def minibatches_per_epoch(n_chars: int, batch_size: int, num_steps: int, mode: str) -> int:
    """How many minibatches one epoch yields; 0 means the corpus is too short."""
    if mode == "random":
        return ((n_chars - 1) // num_steps) // batch_size
    if mode == "adjacent":
        return max(0, (n_chars // batch_size - 1) // num_steps)
    raise ValueError(f"unknown sampling mode {mode!r}")


def min_chars_needed(batch_size: int, num_steps: int, mode: str) -> int:
    """The shortest corpus that gives one minibatch in `mode`."""
    return batch_size * num_steps + 1 if mode == "random" else batch_size * (num_steps + 1)


def check_enough(n_chars: int, batch_size: int, num_steps: int, mode: str) -> None:
    """Raise a `CorpusError` that says what to change when no minibatch fits."""
    if minibatches_per_epoch(n_chars, batch_size, num_steps, mode) == 0:
        need = min_chars_needed(batch_size, num_steps, mode)
        raise CorpusError(
            "error.sampling.too_short",
            n_chars=n_chars,
            mode=Message(MODE_KEYS.get(mode, mode)),
            batch_size=batch_size,
            num_steps=num_steps,
            need=need,
        )


def random_batches(
    ids: Sequence[int] | torch.Tensor,
    batch_size: int,
    num_steps: int,
    rng: random.Random,
    device: torch.device | str = "cpu",
    start: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random sampling exactly as the book: shuffled windows at multiples of T.

    `start` skips the pass's first minibatches (a resumed run continuing mid-pass); the whole
    shuffle is still drawn from `rng`, so the pass and the RNG after it are the uninterrupted ones.
    """
    data = torch.as_tensor(ids, dtype=torch.long)
    num_windows = (len(data) - 1) // num_steps
    order = list(range(num_windows))
    rng.shuffle(order)  # now, not at the first minibatch: after this call `rng` is where the pass leaves it
    return _windows(data, order, batch_size, num_steps, device, start)


def _windows(
    data: torch.Tensor, order: list[int], batch_size: int, num_steps: int, device: torch.device | str, start: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The minibatches of one shuffled pass, B windows at a time, from minibatch `start`."""
    for b in range(start, len(order) // batch_size):
        starts = torch.tensor(order[b * batch_size : (b + 1) * batch_size]) * num_steps
        cols = starts[:, None] + torch.arange(num_steps)  # (B, T)
        yield data[cols].to(device), data[cols + 1].to(device)


def adjacent_batches(
    ids: Sequence[int] | torch.Tensor,
    batch_size: int,
    num_steps: int,
    device: torch.device | str = "cpu",
    start: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Adjacent sampling exactly as the book: B rows, T columns at a time (from minibatch `start`)."""
    data = torch.as_tensor(ids, dtype=torch.long)
    row_len = len(data) // batch_size
    rows = data[: batch_size * row_len].view(batch_size, row_len).to(device)
    for b in range(start, (row_len - 1) // num_steps):
        i = b * num_steps
        yield rows[:, i : i + num_steps], rows[:, i + 1 : i + num_steps + 1]


def batches(
    mode: str,
    ids: Sequence[int] | torch.Tensor,
    batch_size: int,
    num_steps: int,
    rng: random.Random,
    device: torch.device | str = "cpu",
    start: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of minibatches in either mode (`rng` is only used by random), from minibatch `start`."""
    if mode == "random":
        return random_batches(ids, batch_size, num_steps, rng, device, start)
    if mode == "adjacent":
        return adjacent_batches(ids, batch_size, num_steps, device, start)
    raise ValueError(f"unknown sampling mode {mode!r}")


@dataclass(frozen=True)
class RowSpan:
    """Which corpus positions one row of one minibatch reads."""

    minibatch: int
    row: int
    start: int  # first input position; the labels are start+1 .. start+T
    length: int
    state: str  # "reset" (fresh zero state) or "carried" (from the previous minibatch)


def describe_minibatches(
    n_chars: int, batch_size: int, num_steps: int, mode: str, k: int = 4, seed: int = 0
) -> list[RowSpan]:
    """Rows of the first `k` minibatches of an epoch, for drawing.

    For random mode the shuffle uses `random.Random(seed)`, the same stream a
    training run with that seed uses for its first epoch.
    """
    spans: list[RowSpan] = []
    if mode == "random":
        num_windows = (n_chars - 1) // num_steps
        order = list(range(num_windows))
        random.Random(seed).shuffle(order)
        for b in range(min(k, num_windows // batch_size)):
            for r, w in enumerate(order[b * batch_size : (b + 1) * batch_size]):
                spans.append(RowSpan(b, r, w * num_steps, num_steps, "reset"))
    elif mode == "adjacent":
        row_len = n_chars // batch_size
        for b in range(min(k, max(0, (row_len - 1) // num_steps))):
            for r in range(batch_size):
                spans.append(RowSpan(b, r, r * row_len + b * num_steps, num_steps, "reset" if b == 0 else "carried"))
    else:
        raise ValueError(f"unknown sampling mode {mode!r}")
    return spans


__all__ = [
    "MODES",
    "RowSpan",
    "adjacent_batches",
    "batches",
    "check_enough",
    "describe_minibatches",
    "min_chars_needed",
    "minibatches_per_epoch",
    "random_batches",
]
