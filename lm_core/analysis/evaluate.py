"""Does a model write new ci? Measured against targets a model that composes, not recites, meets.

* validation perplexity on the checkpoint's own split of its corpus, next to
  the bigram (and unigram) baseline of the same split;
* 100-character samples at temperature 0.8 from 5 prefixes × 10 seeds:
  the share of generated characters inside stretches of 8+ characters found
  verbatim in the *training* text (`generation.copied_spans`, the Generate
  page's memorisation meter), and the share that are CJK characters or the
  corpus's punctuation (anything else — spaces between ci, stray symbols —
  counts against it).

Targets: validation perplexity ≥ 25 % below the bigram, copied ≤ 10 %,
CJK/punctuation ≥ 95 %. This module only measures; `cli.py` prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..baselines import Baselines, ngram_baselines
from ..checkpoint import Checkpoint
from ..corpus import Corpus
from ..errors import CheckpointError
from ..generation import copied_spans, default_prefixes, generate
from ..training import evaluate_perplexity

PREFIXES = ("明月", "东风", "江南", "故人", "春")
SEEDS = tuple(range(10))
LENGTH = 100
TEMPERATURE = 0.8
MIN_COPIED = 8
_CJK_OR_PUNCT = re.compile(r"[\u4e00-\u9fff，。、！？；：]")


@dataclass(frozen=True)
class LyricsReport:
    val_perplexity: float | None
    baselines: Baselines | None
    copied_share: float  # mean over samples of copied characters / generated characters
    cjk_share: float  # mean over samples of CJK-or-punctuation characters / generated characters
    samples: list[str]

    @property
    def below_bigram(self) -> float | None:
        """1 - val/bigram: 0.25 means 25 % below the bigram baseline."""
        if self.val_perplexity is None or self.baselines is None:
            return None
        return 1 - self.val_perplexity / self.baselines.bigram


def evaluate_lyrics(ckpt: Checkpoint, corpus: Corpus, val_fraction: float | None = None) -> LyricsReport:
    """Measure `ckpt` on `corpus` (the corpus it was trained on; its split is recomputed the same way)."""
    if list(corpus.idx_to_char) != ckpt.vocab:
        raise CheckpointError(
            "error.evaluate.other_vocab",
        )
    cfg = ckpt.config
    fraction = cfg.val_fraction if val_fraction is None else val_fraction
    train_ids, val_ids = corpus.split(fraction)
    train_text = corpus.text[: len(train_ids)]
    model = ckpt.build_model().eval()
    val = baselines = None
    if val_ids:
        val = evaluate_perplexity(model, val_ids, cfg.num_steps, cfg.batch_size)
        baselines = ngram_baselines(train_ids, val_ids, corpus.vocab_size)
    copied, cjk, samples = [], [], []
    prefixes = [p for p in PREFIXES if all(ch in corpus.char_to_idx for ch in p)] or default_prefixes(corpus)
    for prefix in prefixes:
        for seed in SEEDS:
            text = generate(model, ckpt.vocab, prefix, LENGTH, "sample", TEMPERATURE, None, seed).text
            new = text[len(prefix) :]
            spans = copied_spans(text, train_text, MIN_COPIED, start=len(prefix))
            copied.append(sum(e - b for b, e in spans) / len(new))
            cjk.append(sum(bool(_CJK_OR_PUNCT.match(ch)) for ch in new) / len(new))
            samples.append(text)
    return LyricsReport(val, baselines, sum(copied) / len(copied), sum(cjk) / len(cjk), samples)
