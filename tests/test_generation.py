"""Generation: the book's greedy decoding, seeded sampling, candidate lists, prefix checks, memorisation spans."""

from __future__ import annotations

import pytest
import torch

from lm_core.corpus import Corpus
from lm_core.errors import ConfigError, VocabularyError
from lm_core.generation import BOOK_PREFIXES, copied_spans, default_prefixes, generate
from lm_core.models import CharModel
from lm_core.training import EpochEvent, TrainConfig, Trainer

PREFIX = "春风"


@pytest.fixture(scope="module")
def trained_gru(tiny_corpus: Corpus) -> CharModel:
    """A GRU trained a few epochs on the tiny corpus: confident, but not deterministic, predictions."""
    cfg = TrainConfig(model="gru", hidden=32, num_steps=8, batch_size=8, optimizer="adam", lr=1e-2, epochs=3)
    trainer = Trainer(tiny_corpus, cfg)
    history = [e for e in trainer.train() if isinstance(e, EpochEvent)]
    assert history[-1].perplexity < history[0].perplexity
    return trainer.model


def _independent_greedy(model: CharModel, corpus: Corpus, prefix: str, length: int) -> str:
    """The book's predict_rnn, written here: zero state, prefix in one forward call, then argmax one char at a time."""
    with torch.no_grad():
        ids = corpus.encode(prefix)
        logits, state = model(torch.tensor([ids]), model.begin_state(1))
        out = list(ids)
        for _ in range(length):
            nxt = int(logits[-1].argmax())
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]]), state)
    return corpus.decode(out)


def test_greedy_is_the_books_argmax_decoding(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """Greedy output starts with the prefix, has len(prefix)+length chars, and equals an independent argmax loop."""
    out = generate(trained_gru, tiny_corpus, PREFIX, 40)
    assert out.prefix == PREFIX and out.text.startswith(PREFIX)
    assert len(out.text) == len(PREFIX) + 40
    assert out.generated == out.text[len(PREFIX) :]
    assert out.text == _independent_greedy(trained_gru, tiny_corpus, PREFIX, 40)
    assert generate(trained_gru, tiny_corpus, PREFIX, 40).text == out.text


def test_greedy_with_zero_length_returns_the_prefix(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """length=0 returns just the prefix (no candidates)."""
    out = generate(trained_gru, tiny_corpus, "月光照", 0)
    assert out.text == "月光照" and out.steps == []


def test_sampling_is_reproducible_by_seed(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """The same seed reproduces a sample exactly; different seeds give different texts."""
    a = generate(trained_gru, tiny_corpus, PREFIX, 100, strategy="sample", seed=1)
    b = generate(trained_gru, tiny_corpus, PREFIX, 100, strategy="sample", seed=1)
    c = generate(trained_gru, tiny_corpus, PREFIX, 100, strategy="sample", seed=2)
    assert a.text == b.text
    assert a.text != c.text
    assert a.text.startswith(PREFIX) and len(a.text) == len(PREFIX) + 100
    torch.manual_seed(0)  # the global generator must not matter
    assert generate(trained_gru, tiny_corpus, PREFIX, 100, strategy="sample", seed=1).text == a.text


def test_top_k_one_equals_greedy(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """Sampling from only the most likely character is greedy decoding, whatever the seed or temperature."""
    greedy = generate(trained_gru, tiny_corpus, PREFIX, 50).text
    for seed, temperature in ((0, 1.0), (5, 3.0)):
        sampled = generate(trained_gru, tiny_corpus, PREFIX, 50, "sample", temperature, top_k=1, seed=seed)
        assert sampled.text == greedy


def test_top_k_only_picks_among_the_k_best(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """With top_k=3 the choice is among three candidates and every other candidate has probability 0."""
    out = generate(trained_gru, tiny_corpus, PREFIX, 60, "sample", temperature=2.0, top_k=3, seed=4, n_candidates=5)
    for char, step in zip(out.generated, out.steps, strict=True):
        assert char in [c.char for c in step[:3]]
        assert all(c.prob == 0 for c in step[3:])
        assert sum(c.prob for c in step[:3]) == pytest.approx(1.0, abs=1e-5)


def test_steps_list_sorted_candidates(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """Each generated char has n_candidates (char, prob) pairs, sorted by probability, summing to at most 1."""
    for strategy in ("greedy", "sample"):
        out = generate(trained_gru, tiny_corpus, PREFIX, 30, strategy=strategy, n_candidates=4)
        assert len(out.steps) == 30
        for char, step in zip(out.generated, out.steps, strict=True):
            assert len(step) == 4
            probs = [c.prob for c in step]
            assert probs == sorted(probs, reverse=True)
            assert all(0 <= p <= 1 for p in probs) and sum(probs) <= 1 + 1e-6
            assert all(c.char in tiny_corpus.char_to_idx for c in step)
            if strategy == "greedy":
                assert char == step[0].char


def test_generate_accepts_a_plain_vocabulary_list_and_keeps_train_mode(
    trained_gru: CharModel, tiny_corpus: Corpus
) -> None:
    """A vocabulary list (as in a checkpoint) works like the Corpus; the model's train/eval mode is restored."""
    trained_gru.train()
    from_list = generate(trained_gru, list(tiny_corpus.idx_to_char), PREFIX, 20)
    assert trained_gru.training
    assert from_list.text == generate(trained_gru, tiny_corpus, PREFIX, 20).text


# -- bad prefixes and settings ---------------------------------------------------------------------


def test_unknown_characters_are_named(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """A prefix with characters outside the vocabulary raises VocabularyError naming each of them."""
    with pytest.raises(VocabularyError) as info:
        generate(trained_gru, tiny_corpus, "春Q风Z春", 10)
    message = str(info.value)
    assert "Q" in message and "Z" in message
    assert "春" not in message and "风" not in message


def test_prefix_of_only_unknown_characters_says_none_are_known(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """An emoji-only prefix says that none of its characters are in the vocabulary."""
    with pytest.raises(VocabularyError, match="None of the prefix"):
        generate(trained_gru, tiny_corpus, "😀🎵", 10)


def test_empty_prefix_is_refused(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """Generation needs at least one character to start from."""
    with pytest.raises(VocabularyError):
        generate(trained_gru, tiny_corpus, "", 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"length": -1},
        {"length": 2001},
        {"strategy": "beam"},
        {"strategy": "sample", "temperature": 0.0},
        {"strategy": "sample", "temperature": float("nan")},
        {"strategy": "sample", "top_k": 0},
    ],
)
def test_bad_generation_settings_are_config_errors(
    trained_gru: CharModel, tiny_corpus: Corpus, kwargs: dict[str, object]
) -> None:
    """Out-of-range length, strategy, temperature or top-k raise ConfigError."""
    with pytest.raises(ConfigError):
        generate(trained_gru, tiny_corpus, PREFIX, **kwargs)


# -- default prefixes -------------------------------------------------------------------------------


def test_default_prefixes_are_the_books_when_the_vocabulary_has_them() -> None:
    """A corpus containing 分, 开 and 不 offers the book's prefixes 分开 / 不分开."""
    corpus = Corpus.from_text("我们不分开，永远不分开。春天来了。", max_chars=None)
    assert default_prefixes(corpus) == BOOK_PREFIXES == ("分开", "不分开")


def test_default_prefixes_on_the_book_corpus(book_corpus: Corpus) -> None:
    """The book's own corpus offers its two prefixes."""
    assert default_prefixes(book_corpus) == ("分开", "不分开")


def test_default_prefixes_fall_back_to_the_corpus_start(tiny_corpus: Corpus) -> None:
    """Without 分/开/不, the prefixes are the first 2 and 4 characters of the (stripped) text."""
    start = tiny_corpus.text.strip()[:4]
    assert default_prefixes(tiny_corpus) == (start[:2], start[:4])
    assert default_prefixes({"春": 0, "风": 1}, "  春风 ") == ("春风",)
    assert default_prefixes({"春": 0}, "   ") == ()
    only_fen_kai = Corpus.from_text("分开了，春风吹过小河边", max_chars=None)  # has 分开, not 不
    assert default_prefixes(only_fen_kai) == ("分开",)


# -- memorisation spans -----------------------------------------------------------------------------


def test_copied_spans_finds_a_copied_stretch(tiny_corpus: Corpus) -> None:
    """A 12-character stretch of the corpus inside novel text is reported as one (begin, end) span."""
    corpus_text = tiny_corpus.text
    stretch = corpus_text[40:52]
    assert all(ch not in corpus_text for ch in "abcxyz")
    text = "abc" + stretch + "xyz"
    assert copied_spans(text, corpus_text) == [(3, 15)]
    assert text[3:15] == stretch


def test_copied_spans_reports_nothing_for_novel_text_or_short_overlaps(tiny_corpus: Corpus) -> None:
    """Text not in the corpus, or overlaps shorter than min_len, give no span."""
    corpus_text = tiny_corpus.text
    assert copied_spans("abcdefghijklmnopqrstuvwxyz", corpus_text) == []
    seven = corpus_text[10:17]
    assert copied_spans("ab" + seven + "yz", corpus_text) == []
    assert copied_spans("ab" + seven + "yz", corpus_text, min_len=7) == [(2, 9)]


def test_copied_spans_separate_stretches_and_start(tiny_corpus: Corpus) -> None:
    """Two separate copies give two spans; `start` ignores the part before it (e.g. the prefix)."""
    corpus_text = tiny_corpus.text
    a, b = corpus_text[0:9], corpus_text[200:210]
    text = a + "xyz" + b
    assert copied_spans(text, corpus_text) == [(0, 9), (12, 22)]
    assert copied_spans(text, corpus_text, start=9) == [(12, 22)]


# -- how much a continuation depends on its prefix ------------------------------------------------------------


def _memoryless(corpus: Corpus) -> CharModel:
    """A scratch RNN with W_hh = 0: its state depends on the last character only."""
    from lm_core.models import build_model

    model = build_model("scratch-rnn", corpus.vocab_size, 16, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(100)  # weights of order 1, so characters really differ
        model.W_hh.zero_()
    return model


def test_a_memoryless_model_forgets_the_prefix_after_one_character(tiny_corpus: Corpus) -> None:
    """Prefixes ending in different characters differ only for the first continuation character; the same
    prefix never differs; a prefix sharing its last character with the other never matters."""
    from lm_core.generation import prefix_influence

    model = _memoryless(tiny_corpus)
    text = tiny_corpus.text
    a, b, continuation = text[0:2], text[5:7], text[10:30]
    assert a[-1] != b[-1]
    influence = prefix_influence(model, tiny_corpus, a, continuation, other=b)
    assert len(influence.tv) == len(continuation) and influence.first == 0
    assert influence.tv[0] > 0.1 and max(influence.tv[1:]) < 1e-9
    assert influence.forgotten_after == 1
    same = prefix_influence(model, tiny_corpus, a, continuation, other=a)
    assert max(same.tv) == 0 and same.forgotten_after == 0
    alone = prefix_influence(model, tiny_corpus, a, continuation)
    assert alone.first == 1 and len(alone.tv) == len(continuation) - 1 and alone.forgotten_after == 1


def test_a_model_with_memory_keeps_the_prefix_for_a_while(trained_gru: CharModel, tiny_corpus: Corpus) -> None:
    """The trained GRU: the prefix still moves later characters' distributions; `forgotten_after` is where the
    distances stay below the threshold for good."""
    from lm_core.generation import prefix_influence

    text = tiny_corpus.text
    influence = prefix_influence(trained_gru, tiny_corpus, text[0:4], text[20:60], other=text[7:9])
    assert max(influence.tv[2:]) > 0.01
    k = influence.forgotten_after
    if k is None:
        assert influence.tv[-1] >= influence.threshold
    else:
        assert influence.tv[k - 1] >= influence.threshold and max(influence.tv[k:], default=0) < influence.threshold
    with pytest.raises(VocabularyError):
        prefix_influence(trained_gru, tiny_corpus, "😀", text[20:60])
