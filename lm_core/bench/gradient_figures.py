"""`python -m lm_core bench-bptt`: seconds per figure of the Gradients through time page.

The page promises every figure within a second of a change for a 200-character
text at h = 256, and the ρ slider within half a second, at one torch thread.
This measures each figure's computation (median of `repeats`, after one
warm-up) on the book's corpus for every model kind, without Streamlit, and
the time cap for 2,048 hidden units.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch

from ..analysis import bptt
from ..corpus import Corpus
from ..limits import MAX_HIDDEN
from ..models import MODEL_KINDS, build_model

TEXT_LEN = 200


def _seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def figure_times(corpus: Corpus, hidden: int = 256, repeats: int = 3) -> dict[str, dict[str, float]]:
    """{model kind: {figure: seconds}} for a 200-character text of the corpus."""
    ids = corpus.encode(corpus.text)
    text_ids = ids[:TEXT_LEN]
    out: dict[str, dict[str, float]] = {}
    for kind in MODEL_KINDS:
        model = build_model(kind, corpus.vocab_size, hidden, seed=0)
        for p in model.parameters():
            p.requires_grad_(False)
        row = {
            "connectivity (t = 199)": _seconds(
                lambda model=model: bptt.connectivity(model, text_ids, TEXT_LEN - 2), repeats
            ),
            "connectivity, one-hot reference": _seconds(
                lambda model=model: bptt.connectivity_reference(model, text_ids, TEXT_LEN - 2), repeats
            ),
            "gradient vs distance (32 × 35)": _seconds(
                lambda model=model: bptt.gradient_by_distance(model, ids, 35, 32), repeats
            ),
            "surprisal": _seconds(lambda model=model: bptt.surprisal(model, text_ids), repeats),
            "step-through (step 200)": _seconds(
                lambda model=model: bptt.step_view(model, text_ids, TEXT_LEN - 1), repeats
            ),
        }
        out[kind] = row
    base = build_model("scratch-rnn", corpus.vocab_size, hidden, seed=0)
    base_radius = bptt.spectral_radius(bptt.recurrent_weight(base))  # computed once, as the page caches it

    def rho_redraw() -> None:
        model = copy.deepcopy(base)
        bptt.set_spectral_radius(model, 1.5, current=base_radius)
        bptt.gradient_by_distance(model, ids, 35, 32)
        X, Y = bptt.corpus_minibatch(ids, 32, 35)
        bptt.minibatch_gradient(model, X, Y, 0.01)

    out["scratch-rnn"]["ρ slider redraw (rescale + curve + ‖g‖)"] = _seconds(rho_redraw, repeats)
    gru = build_model("scratch-gru", corpus.vocab_size, hidden, seed=0)
    out["scratch-gru"]["unit pattern search (10,000 chars)"] = _seconds(
        lambda: bptt.find_unit_pattern(bptt.corpus_states(gru, ids[:10_000]), [0, 1], 0.0), repeats
    )
    return out


def capped_times(corpus: Corpus, repeats: int = 1) -> dict[str, str]:
    """What the 2,048-unit time cap leaves and how long it takes (torch.nn GRU, the costliest step)."""
    ids = corpus.encode(corpus.text)
    model = build_model("gru", corpus.vocab_size, MAX_HIDDEN, seed=0)
    for p in model.parameters():
        p.requires_grad_(False)
    text_len = bptt.text_limit(model)
    cap = bptt.cap_work(model, 32, 35)
    conn = _seconds(lambda model=model: bptt.connectivity(model, ids[:text_len], text_len - 2), repeats)
    dist = _seconds(lambda: bptt.gradient_by_distance(model, ids, 35, 32), repeats)
    return {
        f"connectivity, text capped to {text_len} chars": f"{conn:.3f}",
        f"gradient vs distance, capped to {cap.rows} × {cap.steps}": f"{dist:.3f}",
    }


def main(corpus: Corpus, repeats: int = 3) -> str:
    torch.set_num_threads(1)
    lines = [f"seconds per figure, 1 torch thread, hidden 256, text {TEXT_LEN} characters (median of {repeats})"]
    for kind, row in figure_times(corpus, repeats=repeats).items():
        for name, secs in row.items():
            lines.append(f"  {kind:<13} {name:<44} {secs:7.3f}")
    lines.append(f"time cap at {MAX_HIDDEN:,} hidden units (torch.nn GRU):")
    for name, secs in capped_times(corpus).items():
        lines.append(f"  {name:<58} {secs:>7}")
    return "\n".join(lines)
