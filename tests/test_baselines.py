"""N-gram baselines: checked against plain counting, and against their limiting cases."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from lm_core.baselines import ngram_baselines, split_at_document
from lm_core.errors import CorpusError, localized


def _naive(train: list[int], val: list[int], v: int, k1: float, k2: float) -> tuple[float, float]:
    uni = Counter(train)
    pairs = Counter(itertools.pairwise(train))
    ctx = Counter(train[:-1])
    nll_u = -sum(math.log((uni[c] + k1) / (len(train) + k1 * v)) for c in val) / len(val)
    nll_b = -sum(math.log((pairs[(a, b)] + k2) / (ctx[a] + k2 * v)) for a, b in itertools.pairwise(val)) / (
        len(val) - 1
    )
    return math.exp(nll_u), math.exp(nll_b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_plain_counting(seed: int) -> None:
    rng = random.Random(seed)
    v = 30
    train = [rng.randrange(v) if rng.random() < 0.3 else (i * 7) % v for i in range(2_000)]
    val = [rng.randrange(v) for _ in range(300)] + [3, 29, 0]  # includes pairs never seen in training
    got = ngram_baselines(train, val, v, unigram_k=1.0, bigram_k=0.1)
    want_u, want_b = _naive(train, val, v, 1.0, 0.1)
    assert got.unigram == pytest.approx(want_u, rel=1e-9)
    assert got.bigram == pytest.approx(want_b, rel=1e-9)
    assert got.vocab_size == v


def test_uniform_counts_give_the_vocabulary_size() -> None:
    v = 8
    train = list(range(v)) * 50  # every character equally often
    got = ngram_baselines(train, list(range(v)), v)
    assert got.unigram == pytest.approx(v)


def test_a_deterministic_sequence_is_nearly_certain_for_the_bigram() -> None:
    v = 10
    train = list(range(v)) * 200  # 0 1 2 ... 9 0 1 2 ...: the next character is always known
    got = ngram_baselines(train, list(range(v)) * 3, v, bigram_k=1e-6)
    assert got.bigram < 1.001
    assert got.unigram == pytest.approx(v, rel=1e-3)  # single characters are uniform


def test_ids_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(CorpusError, match="outside a vocabulary of 5"):
        ngram_baselines([0, 1, 2], [1, 5], 5)


def test_too_short_a_split_is_refused() -> None:
    with pytest.raises(CorpusError, match="at least 2"):
        ngram_baselines([0, 1, 2], [1], 3)


def test_split_keeps_documents_whole() -> None:
    starts = [0, 40, 75, 90]  # four documents in 100 characters
    cut = split_at_document(100, 0.2, starts)  # the plain cut would be at 80, inside the third document
    assert cut == 90
    assert split_at_document(100, 0.25, starts) == 75  # a start exactly at the cut is kept


def test_split_with_no_whole_document_in_the_tail_is_refused() -> None:
    with pytest.raises(CorpusError, match="No whole document") as info:
        split_at_document(100, 0.1, [0, 50])
    assert localized(info.value, "zh") != str(info.value)  # the catalogue has it in Chinese


@pytest.mark.slow
def test_song_ci_baselines_match_the_issue_figures() -> None:
    """The whole cleaned Song ci, last 5 % of ci held out: unigram ≈ 605, bigram ≈ 237."""
    from lm_core.corpus import Corpus
    from lm_core.songci import songci_text

    text = songci_text("全部 (all Song ci)")
    corpus = Corpus.from_text(text, max_chars=None)
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    cut = split_at_document(len(corpus), 0.05, starts)
    got = ngram_baselines(corpus.indices[:cut], corpus.indices[cut:], corpus.vocab_size)
    assert corpus.vocab_size == 5182
    assert got.unigram == pytest.approx(605, rel=0.01)
    assert got.bigram == pytest.approx(237, rel=0.01)
