"""Writing text from a prefix: the book's greedy decoding, temperature and top-k.

As in the book, the state starts at zero, the prefix is fed one character at a
time (forced), then each next character is chosen from the model's
distribution and fed back. The output includes the prefix. Sampling uses a
private `torch.Generator`, so a seed reproduces the text exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .corpus import Corpus
from .errors import ConfigError, VocabularyError
from .models import CharModel
from .vocab import Chars, unknown_chars

STRATEGIES = ("greedy", "sample")
MAX_LENGTH = 2_000


@dataclass
class Candidate:
    char: str
    prob: float


@dataclass
class Generation:
    prefix: str
    text: str  # prefix + generated characters
    steps: list[list[Candidate]] = field(default_factory=list)  # per generated char, top candidates

    @property
    def generated(self) -> str:
        return self.text[len(self.prefix) :]


BOOK_PREFIXES = ("分开", "不分开")


def default_prefixes(vocab: dict[str, int] | Corpus, text: str = "") -> tuple[str, ...]:
    """The book's prefixes when the vocabulary has them, else the corpus's first characters."""
    known = vocab.char_to_idx if isinstance(vocab, Corpus) else vocab
    text = text or (vocab.text if isinstance(vocab, Corpus) else "")
    usable = tuple(p for p in BOOK_PREFIXES if all(ch in known for ch in p))
    if usable:
        return usable
    start = text.strip()[:4]
    return (start[:2], start[:4]) if len(start) >= 4 else ((start,) if start else ())


def check_prefix(prefix: str, vocab: dict[str, int]) -> None:
    """Raise a `VocabularyError` naming every character the model does not know."""
    if not prefix:
        raise VocabularyError("error.generation.empty_prefix")
    unknown = unknown_chars(prefix, vocab)
    if unknown:
        if len(unknown) == len(set(prefix)):
            raise VocabularyError(
                "error.generation.no_known_chars",
                chars=Chars(unknown),
            )
        raise VocabularyError(
            "error.generation.unknown_chars",
            chars=Chars(unknown),
        )


@torch.no_grad()
def generate(
    model: CharModel,
    vocab: Corpus | list[str],
    prefix: str,
    length: int = 50,
    strategy: str = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    n_candidates: int = 5,
) -> Generation:
    """Append `length` characters to `prefix` and record the top candidates per step."""
    idx_to_char = vocab.idx_to_char if isinstance(vocab, Corpus) else list(vocab)
    char_to_idx = {ch: i for i, ch in enumerate(idx_to_char)}
    check_prefix(prefix, char_to_idx)
    if not 0 <= length <= MAX_LENGTH:
        raise ConfigError("error.generation.length", limit=MAX_LENGTH)
    if strategy not in STRATEGIES:
        raise ConfigError(
            "error.generation.strategy",
            strategy=strategy,
        )
    if strategy == "sample" and not (math.isfinite(temperature) and 0.01 <= temperature <= 10):
        raise ConfigError("error.generation.temperature")
    if top_k is not None and top_k < 1:
        raise ConfigError("error.generation.top_k")
    if not 0 <= seed < 2**63:  # torch.Generator takes 64 bits; beyond that it raises a bare RuntimeError
        raise ConfigError(
            "error.generation.seed",
        )

    was_training = model.training
    model.eval()
    device = model.device
    gen = torch.Generator(device=device).manual_seed(seed)
    state = model.begin_state(1)
    out = [char_to_idx[prefix[0]]]
    steps: list[list[Candidate]] = []
    for t in range(len(prefix) - 1 + length):
        logits, state = model(torch.tensor([[out[-1]]], device=device), state)
        if t < len(prefix) - 1:
            out.append(char_to_idx[prefix[t + 1]])
            continue
        logits = logits[0].float()
        if strategy == "greedy":
            probs = torch.softmax(logits, 0)
            choice = int(probs.argmax())
        else:
            scaled = logits / temperature
            if top_k is not None and top_k < scaled.numel():
                kth = torch.topk(scaled, top_k).values[-1]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            probs = torch.softmax(scaled, 0)
            choice = int(torch.multinomial(probs, 1, generator=gen))
        top = torch.topk(probs, min(n_candidates, probs.numel()))
        steps.append([Candidate(idx_to_char[int(i)], float(p)) for p, i in zip(top.values, top.indices)])
        out.append(choice)
    model.train(was_training)
    return Generation(prefix, "".join(idx_to_char[i] for i in out), steps)


def copied_spans(text: str, corpus_text: str, min_len: int = 8, start: int = 0) -> list[tuple[int, int]]:
    """Maximal stretches of `text[start:]` (≥ `min_len` chars) found verbatim in the corpus.

    Returns `(begin, end)` index pairs into `text`, merged where they overlap:
    the memorisation meter of the Generate page.
    """
    spans: list[tuple[int, int]] = []
    i = start
    n = len(text)
    while i + min_len <= n:
        if text[i : i + min_len] in corpus_text:
            j = i + min_len
            while j < n and text[i : j + 1] in corpus_text:
                j += 1
            if spans and i <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], j))
            else:
                spans.append((i, j))
            i += 1
        else:
            i += 1
    return spans


@dataclass
class PrefixInfluence:
    """How much each character of a continuation still depends on the prefix it was written after.

    `tv[j]` is the total-variation distance (0: identical, 1: disjoint) between the model's distributions for
    continuation character `first + j` read after `prefix` and after `other` (another prefix, or nothing:
    the continuation alone from a zero state, which has no distribution for its first character, so there
    `first` is 1). `forgotten_after` is the first position from which every distance stays below
    `threshold`: from there on the model writes as if the prefix had never been there, so two prefixes
    sampled with the same seed (the same random draws) pick the same characters.
    """

    prefix: str
    other: str  # "" when compared with no prefix at all
    continuation: str
    tv: list[float]
    threshold: float
    first: int = 0  # the continuation index of tv[0]

    @property
    def forgotten_after(self) -> int | None:
        """Characters of the continuation after which the prefix no longer matters (None: it still does at the end)."""
        for j in range(len(self.tv) - 1, -1, -1):
            if self.tv[j] >= self.threshold:
                return None if j == len(self.tv) - 1 else self.first + j + 1
        return self.first


def _next_char_probs(model: CharModel, ids: list[int]) -> torch.Tensor:
    """(len(ids), V) probabilities of the character after each position, reading `ids` from a zero state."""
    X = torch.tensor([ids], device=model.device)
    logits, _ = model(X, model.begin_state(1))
    return torch.softmax(logits.double(), dim=-1)


@torch.no_grad()
def prefix_influence(
    model: CharModel,
    vocab: Corpus | list[str],
    prefix: str,
    continuation: str,
    other: str = "",
    threshold: float = 0.01,
) -> PrefixInfluence:
    """Compare the distributions of `continuation`'s characters after `prefix` and after `other` (see the class).

    With no `other`, the comparison starts at the continuation's second character: the first one has no
    "before" without a prefix. One forward pass per prefix: cheap enough to run beside every generation.
    """
    idx_to_char = vocab.idx_to_char if isinstance(vocab, Corpus) else list(vocab)
    char_to_idx = {ch: i for i, ch in enumerate(idx_to_char)}
    for text in (prefix, continuation, other):
        if text:
            check_prefix(text, char_to_idx)
    if len(continuation) < (1 if other else 2):
        raise ConfigError("error.generation.continuation_too_short")
    was_training = model.training
    model.eval()
    cont = [char_to_idx[ch] for ch in continuation]
    mine = _next_char_probs(model, [char_to_idx[ch] for ch in prefix] + cont[:-1])[len(prefix) - 1 :]
    if other:
        theirs = _next_char_probs(model, [char_to_idx[ch] for ch in other] + cont[:-1])[len(other) - 1 :]
    else:
        theirs = _next_char_probs(model, cont[:-1])
        mine = mine[1:]
    model.train(was_training)
    tv = (0.5 * (mine - theirs).abs().sum(dim=-1)).tolist()
    return PrefixInfluence(prefix, other, continuation, tv, threshold, first=0 if other else 1)
