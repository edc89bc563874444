"""The book's two minibatch samplers, their counts, and the drawing helper that describes them.

Most tests sample from `ids = range(n)`, so every value is its own corpus position and the
layout of a batch can be checked directly.
"""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from lm_core.corpus import Corpus
from lm_core.errors import CorpusError
from lm_core.sampling import (
    adjacent_batches,
    batches,
    check_enough,
    describe_minibatches,
    min_chars_needed,
    minibatches_per_epoch,
    random_batches,
)

N, B, T = 1_000, 4, 7


def _positions(n: int = N) -> list[int]:
    return list(range(n))


# -- random sampling --------------------------------------------------------------------------


def test_random_windows_start_at_multiples_of_T_and_labels_are_shifted() -> None:
    """Every row is a window starting at k*T; labels are the next characters."""
    out = list(random_batches(_positions(), B, T, random.Random(0)))
    assert out, "expected minibatches"
    for X, Y in out:
        assert X.shape == Y.shape == (B, T)
        assert X.dtype == Y.dtype == torch.long
        for row in X.tolist():
            assert row[0] % T == 0
            assert row == list(range(row[0], row[0] + T))
        assert torch.equal(Y, X + 1)


def test_random_uses_each_window_at_most_once_and_skips_leftovers() -> None:
    """One epoch draws ((n-1)//T)//B minibatches of distinct windows, all inside the corpus."""
    num_windows = (N - 1) // T
    out = list(random_batches(_positions(), B, T, random.Random(0)))
    assert len(out) == num_windows // B == minibatches_per_epoch(N, B, T, "random")
    starts = [row[0] for X, _ in out for row in X.tolist()]
    assert len(starts) == len(set(starts)) == len(out) * B
    assert all(0 <= s // T < num_windows for s in starts)
    assert max(int(Y.max()) for _, Y in out) <= N - 1


@pytest.mark.parametrize("mode", ["random", "adjacent"])
def test_a_pass_started_at_minibatch_k_is_the_rest_of_the_same_pass(mode: str) -> None:
    """`start=k` (a resumed run continuing mid-pass) gives the pass's minibatches from k on, and leaves the
    RNG where the whole pass leaves it: the shuffle is drawn when the pass is made, before any minibatch."""
    whole_rng, part_rng = random.Random(3), random.Random(3)
    whole = list(batches(mode, _positions(), B, T, whole_rng))
    part = batches(mode, _positions(), B, T, part_rng, start=5)
    assert part_rng.getstate() == whole_rng.getstate()  # before any minibatch was taken
    rest = list(part)
    assert len(rest) == len(whole) - 5
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(rest, whole[5:], strict=True))


def test_random_order_changes_between_epochs_and_is_shuffled() -> None:
    """The rng shuffles the windows (not in corpus order), and a second epoch uses a new order."""
    rng = random.Random(0)
    first = [X[:, 0].tolist() for X, _ in random_batches(_positions(), B, T, rng)]
    second = [X[:, 0].tolist() for X, _ in random_batches(_positions(), B, T, rng)]
    in_order = [list(range(b * B * T, (b + 1) * B * T, T)) for b in range(len(first))]
    assert first != in_order
    assert first != second


def test_random_same_seed_same_batches_different_seed_different() -> None:
    """The shuffle depends only on the rng's seed."""

    def epoch(seed: int) -> list[torch.Tensor]:
        return [X for X, _ in random_batches(_positions(), B, T, random.Random(seed))]

    a, b, c = epoch(3), epoch(3), epoch(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_random_on_book_corpus_gives_8_minibatches(book_corpus: Corpus) -> None:
    """The book's corpus with B=32, T=35: 285 windows, 8 minibatches, labels shifted by one."""
    ids = book_corpus.indices
    out = list(random_batches(ids, 32, 35, random.Random(0)))
    assert (len(ids) - 1) // 35 == 285
    assert len(out) == 8 == minibatches_per_epoch(len(ids), 32, 35, "random")
    windows: dict[tuple[int, ...], list[int]] = {}
    for s in range(0, 285 * 35, 35):
        windows.setdefault(tuple(ids[s : s + 35]), []).append(s)  # lyrics repeat: a text can sit at several s
    for X, Y in out:
        assert X.shape == Y.shape == (32, 35)
        for row_x, row_y in zip(X.tolist(), Y.tolist(), strict=True):
            assert tuple(row_x) in windows, "row is not a window starting at a multiple of T"
            assert any(row_y == ids[s + 1 : s + 36] for s in windows[tuple(row_x)])


# -- adjacent sampling -------------------------------------------------------------------------


def test_adjacent_rows_are_contiguous_slices_and_continue_across_minibatches() -> None:
    """Row r reads the r-th slice of len//B chars; minibatch i+1 continues where i ended."""
    row_len = N // B
    out = list(adjacent_batches(_positions(), B, T))
    assert len(out) == (row_len - 1) // T == minibatches_per_epoch(N, B, T, "adjacent")
    for i, (X, Y) in enumerate(out):
        assert X.shape == Y.shape == (B, T)
        assert torch.equal(Y, X + 1)
        for r in range(B):
            assert X[r].tolist() == list(range(r * row_len + i * T, r * row_len + i * T + T))
    for (X0, _), (X1, _) in itertools.pairwise(out):
        assert torch.equal(X1[:, 0], X0[:, -1] + 1)
    # labels never run past the end of their own row
    assert all(int(Y[r].max()) < (r + 1) * row_len for _, Y in out for r in range(B))


def test_adjacent_is_the_same_every_epoch() -> None:
    """Adjacent sampling has no randomness: two epochs are identical (the rng is ignored)."""
    a = list(batches("adjacent", _positions(), B, T, random.Random(0)))
    b = list(batches("adjacent", _positions(), B, T, random.Random(99)))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))


def test_adjacent_on_book_corpus_gives_8_minibatches(book_corpus: Corpus) -> None:
    """The book's corpus with B=32, T=35 gives 8 adjacent minibatches of shape (32, 35)."""
    ids = book_corpus.indices
    out = list(adjacent_batches(ids, 32, 35))
    assert len(out) == 8
    row_len = len(ids) // 32
    for i, (X, Y) in enumerate(out):
        assert X.shape == Y.shape == (32, 35)
        for r in (0, 13, 31):
            start = r * row_len + i * 35
            assert X[r].tolist() == ids[start : start + 35]
            assert Y[r].tolist() == ids[start + 1 : start + 36]


def test_batches_dispatches_and_rejects_unknown_mode() -> None:
    """`batches` picks the sampler by name; an unknown mode is an error."""
    rnd = list(batches("random", _positions(), B, T, random.Random(5)))
    ref = list(random_batches(_positions(), B, T, random.Random(5)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(rnd, ref, strict=True))
    with pytest.raises(ValueError):
        batches("sideways", _positions(), B, T, random.Random(0))
    with pytest.raises(ValueError):
        minibatches_per_epoch(N, B, T, "sideways")


# -- describe_minibatches -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["random", "adjacent"])
@pytest.mark.parametrize("seed", [0, 7])
def test_describe_minibatches_matches_the_batches_actually_yielded(mode: str, seed: int) -> None:
    """The drawing helper's spans are exactly the positions the sampler yields for the first k minibatches."""
    k = 3
    spans = describe_minibatches(N, B, T, mode, k=k, seed=seed)
    yielded = list(batches(mode, _positions(), B, T, random.Random(seed)))[:k]
    assert len(spans) == k * B
    for span in spans:
        X, _ = yielded[span.minibatch]
        assert span.length == T
        assert X[span.row].tolist() == list(range(span.start, span.start + T))
        expected_state = "reset" if mode == "random" or span.minibatch == 0 else "carried"
        assert span.state == expected_state
    assert {(s.minibatch, s.row) for s in spans} == {(i, r) for i in range(k) for r in range(B)}


def test_describe_minibatches_stops_at_the_epochs_end() -> None:
    """Asking for more minibatches than an epoch has returns only the real ones."""
    per_epoch = minibatches_per_epoch(100, 2, 10, "adjacent")
    spans = describe_minibatches(100, 2, 10, "adjacent", k=50)
    assert len(spans) == per_epoch * 2
    per_epoch = minibatches_per_epoch(100, 2, 10, "random")
    assert len(describe_minibatches(100, 2, 10, "random", k=50)) == per_epoch * 2
    with pytest.raises(ValueError):
        describe_minibatches(100, 2, 10, "sideways")


# -- corpus too short ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["random", "adjacent"])
def test_check_enough_names_the_needed_length(mode: str) -> None:
    """One character short of one minibatch raises a CorpusError naming the count needed; enough passes."""
    batch, steps = 5, 6
    need = batch * steps + 1 if mode == "random" else batch * (steps + 1)
    assert min_chars_needed(batch, steps, mode) == need
    assert minibatches_per_epoch(need, batch, steps, mode) == 1
    assert minibatches_per_epoch(need - 1, batch, steps, mode) == 0
    with pytest.raises(CorpusError, match=rf"needs {need}\b") as info:
        check_enough(need - 1, batch, steps, mode)
    assert mode in str(info.value)
    check_enough(need, batch, steps, mode)
    assert len(list(batches(mode, list(range(need)), batch, steps, random.Random(0)))) == 1
    assert list(batches(mode, list(range(need - 1)), batch, steps, random.Random(0))) == []


def test_check_enough_for_the_books_settings_on_a_short_text() -> None:
    """With B=32, T=35 a 1,000-character text is too short; the message gives 1,121 (random)."""
    with pytest.raises(CorpusError, match="1,121"):
        check_enough(1_000, 32, 35, "random")
    with pytest.raises(CorpusError, match="1,152"):
        check_enough(1_000, 32, 35, "adjacent")


def test_the_sampling_lesson_is_the_books_setup_at_half_the_size() -> None:
    """Half the default corpus with half the batch: the book's 8 minibatches per epoch in both modes and its
    adjacent rows of 312 characters, so the lesson keeps the book's shape at half the cost."""
    from lm_core.lessons import SAMPLING_CHARS, SAMPLING_PRESET
    from lm_core.songci import songci_corpus
    from lm_core.training import book_config

    cfg = SAMPLING_PRESET
    cfg.validate()
    assert cfg == book_config("scratch-rnn", "random", batch_size=16, epochs=80, seed=0)
    n = len(songci_corpus(max_chars=SAMPLING_CHARS))
    book_n, book_b = 10_000, 32
    for mode in ("random", "adjacent"):
        ours = minibatches_per_epoch(n, cfg.batch_size, cfg.num_steps, mode)
        assert ours == minibatches_per_epoch(book_n, book_b, cfg.num_steps, mode) == 8
    assert n // cfg.batch_size == book_n // book_b == 312
