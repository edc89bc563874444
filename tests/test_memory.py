"""The run-memory estimate: its structure (monotone in every setting), the budget, and the refusal's message.

How close the estimate is to real runs is measured by `python -m lm_core bench-memory` (a benchmark, not a
test): here only what must hold whatever the calibration.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from lm_core import memory
from lm_core.corpus import Corpus
from lm_core.errors import ConfigError, localized
from lm_core.memory import (
    RunMemoryError,
    check_job_memory,
    check_run_memory,
    default_run_memory,
    estimate_run_memory,
    parse_size,
    run_memory_budget,
)
from lm_core.training import TrainConfig, Trainer

GB = 2**30
# The probe's run that reached 6.85 GB: torch.nn RNN, 256 hidden, batch 256 × 200 steps, 8,000 distinct characters.
PROBE = TrainConfig(model="rnn", sampling="adjacent", optimizer="adam", lr=1e-3, batch_size=256, num_steps=200)
PROBE_VOCAB, PROBE_CHARS = 8000, 200_000


def _total(config: TrainConfig, vocab: int = 1000, n_chars: int = 100_000) -> int:
    return estimate_run_memory(config, vocab, n_chars).total


BASE = TrainConfig(model="gru", sampling="adjacent", optimizer="sgd", lr=1.0, hidden=256, batch_size=32, num_steps=35)


@pytest.mark.parametrize(
    "field, values",
    [
        ("batch_size", [1, 8, 32, 256, 1024]),
        ("num_steps", [1, 10, 35, 200, 1000]),
        ("hidden", [1, 16, 256, 1024, 2048]),
        ("num_layers", [1, 2, 3]),
        ("embed", [16, 256, 1024]),  # (0 is one-hot input: V columns, which a small embedding undercuts)
    ],
)
def test_the_estimate_grows_with_every_size(field: str, values: list[int]) -> None:
    """Each size setting, raised with the others fixed, raises the estimate (strictly: each matters)."""
    totals = [_total(replace(BASE, **{field: v})) for v in values]
    assert totals == sorted(totals) and len(set(totals)) == len(totals), totals


@pytest.mark.parametrize("model", ["scratch-rnn", "scratch-gru", "scratch-lstm", "rnn", "gru", "lstm"])
def test_vocabulary_and_corpus_length_raise_it_for_every_model(model: str) -> None:
    cfg = replace(BASE, model=model)
    assert _total(cfg, vocab=100) < _total(cfg, vocab=1000) < _total(cfg, vocab=8000)
    assert _total(cfg, n_chars=10_000) < _total(cfg, n_chars=1_000_000) < _total(cfg, n_chars=20_000_000)


def test_gates_adam_validation_and_keeping_the_graph_each_cost_more() -> None:
    """RNN < GRU < LSTM at the same size; Adam over SGD; a validation share; not detaching, more with each
    minibatch the graph spans; relu costs what tanh costs."""
    sizes = [_total(replace(BASE, model=m)) for m in ("rnn", "gru", "lstm")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    assert _total(BASE) < _total(replace(BASE, optimizer="adam", lr=1e-3))
    assert _total(BASE) < _total(replace(BASE, val_fraction=0.1))
    kept = [_total(replace(BASE, detach=False, steps_per_epoch=k)) for k in (1, 2, 10, 50)]
    assert _total(BASE) == kept[0] and kept == sorted(kept) and len(set(kept)) == 4
    rnn = replace(BASE, model="rnn")
    assert _total(rnn) == _total(replace(rnn, nonlinearity="relu"))


def test_without_detaching_the_graph_spans_a_pass_or_an_epoch() -> None:
    """The kept graph is cut where the state resets (a pass of adjacent sampling) or is carried into a new epoch."""
    cfg = replace(BASE, detach=False)
    assert memory.kept_minibatches(cfg, 10_000) == (10_000 // 32 - 1) // 35  # the book's 8 minibatches
    assert memory.kept_minibatches(replace(cfg, steps_per_epoch=3), 10_000) == 3
    assert memory.kept_minibatches(replace(cfg, steps_per_epoch=500), 10_000) == 8
    assert memory.kept_minibatches(BASE, 10_000) == 1
    longer = [_total(cfg, n_chars=n) - _total(BASE, n_chars=n) for n in (10_000, 100_000, 1_000_000)]
    assert longer == sorted(longer) and longer[0] > 0 and longer[2] > 50 * longer[0]


def test_the_probes_run_is_dominated_by_its_logits() -> None:
    """256 × 200 characters over 8,000: the output layer is by far the largest term, and it alone is several GB."""
    estimate = estimate_run_memory(PROBE, PROBE_VOCAB, PROBE_CHARS)
    assert estimate.dominant == "output"
    assert estimate.output > 4 * GB and estimate.output > 5 * estimate.terms()["weights"]


def _refusal(config: TrainConfig, budget: int, vocab: int = 1000, n_chars: int = 100_000) -> RunMemoryError:
    with pytest.raises(RunMemoryError) as info:
        check_run_memory(config, vocab, n_chars, budget)
    assert isinstance(info.value, ConfigError) and localized(info.value, "zh")
    return info.value


def _fits(config: TrainConfig, budget: int, vocab: int = 1000, n_chars: int = 100_000) -> bool:
    return estimate_run_memory(config, vocab, n_chars).total <= budget


def test_a_logit_heavy_run_is_told_the_batch_size_and_num_steps_that_fit() -> None:
    """The message names batch size and num_steps with the largest values that fit (each really is the largest)."""
    error = _refusal(PROBE, 3 * GB, PROBE_VOCAB, PROBE_CHARS)
    text = str(error)
    assert "batch size" in text and "num_steps" in text and "8,000" in text
    assert "批量大小" in localized(error, "zh") and "num_steps" in localized(error, "zh")
    b = int(re.search(r"batch size \(at most ([\d,]+) fits\)", text).group(1).replace(",", ""))
    t = int(re.search(r"num_steps \(at most ([\d,]+) fits\)", text).group(1).replace(",", ""))
    assert _fits(replace(PROBE, batch_size=b), 3 * GB, PROBE_VOCAB, PROBE_CHARS)
    assert not _fits(replace(PROBE, batch_size=b + 1), 3 * GB, PROBE_VOCAB, PROBE_CHARS)
    assert _fits(replace(PROBE, num_steps=t), 3 * GB, PROBE_VOCAB, PROBE_CHARS)
    assert not _fits(replace(PROBE, num_steps=t + 1), 3 * GB, PROBE_VOCAB, PROBE_CHARS)
    assert f"{b}" in localized(error, "zh") and f"{t}" in localized(error, "zh")
    assert "one run may use about 3.0 GB" in text and "最多可用约 3.0 GB" in localized(error, "zh")
    assert "最多可用約 3.0 GB" in localized(error, "zh-Hant")


def test_a_weight_heavy_run_is_told_the_hidden_units_and_adam() -> None:
    """Big vocabulary, wide layer, tiny minibatches: lower the hidden units (and Adam doubles the weights)."""
    cfg = replace(BASE, model="lstm", hidden=2048, batch_size=1, num_steps=5, optimizer="adam", lr=1e-3)
    estimate = estimate_run_memory(cfg, 8000, 100_000)
    assert estimate.dominant == "weights"
    error = _refusal(cfg, 1 * GB, vocab=8000)
    assert "hidden units" in str(error) and "SGD" in str(error) and "隐藏单元数" in localized(error, "zh")
    h = int(re.search(r"at most ([\d,]+) fits", str(error)).group(1).replace(",", ""))
    assert _fits(replace(cfg, hidden=h), 1 * GB, 8000) and not _fits(replace(cfg, hidden=h + 1), 1 * GB, 8000)


def test_a_recurrent_heavy_run_is_told_the_batch_size_and_num_steps() -> None:
    cfg = replace(BASE, model="lstm", hidden=2048, batch_size=1024, num_steps=200)
    assert estimate_run_memory(cfg, 50, 1_000_000).dominant == "recurrent"
    error = _refusal(cfg, 2 * GB, vocab=50, n_chars=1_000_000)
    assert "batch size" in str(error) and "hidden states" in str(error) and "隐藏状态" in localized(error, "zh")


def test_keeping_the_graph_of_a_long_epoch_is_told_to_detach_or_cut_the_epoch() -> None:
    """Not detaching on a long corpus: the graph of every minibatch dominates; detach, or fewer minibatches per
    epoch (the largest number that fits)."""
    cfg = replace(BASE, model="scratch-rnn", hidden=512, detach=False)
    n_chars = 2_000_000
    assert estimate_run_memory(cfg, 1000, n_chars).dominant == "graph"
    error = _refusal(cfg, 2 * GB, n_chars=n_chars)
    assert "detach" in str(error) and "minibatches per epoch" in str(error) and "分离" in localized(error, "zh")
    k = int(re.search(r"at most ([\d,]+)\.", str(error)).group(1).replace(",", ""))
    assert _fits(replace(cfg, steps_per_epoch=k), 2 * GB, n_chars=n_chars)
    assert not _fits(replace(cfg, steps_per_epoch=k + 1), 2 * GB, n_chars=n_chars)


def test_a_huge_corpus_is_told_to_be_shorter() -> None:
    cfg = replace(BASE, hidden=32, batch_size=8, num_steps=10)
    assert estimate_run_memory(cfg, 100, 20_000_000).dominant == "corpus"
    error = _refusal(cfg, 768 * 2**20, vocab=100, n_chars=20_000_000)
    assert "shorter corpus" in str(error) and "20,000,000" in str(error) and "更短的语料" in localized(error, "zh")


def test_a_run_within_the_budget_passes_and_returns_its_estimate() -> None:
    estimate = check_run_memory(BASE, 1000, 100_000, 8 * GB)
    assert estimate == estimate_run_memory(BASE, 1000, 100_000) and estimate.total < 8 * GB


def test_a_comparison_in_one_worker_counts_both_runs_weights_but_one_step() -> None:
    one = estimate_run_memory(BASE, 1000, 100_000)
    two = memory.job_total([one, one])
    assert one.total < two < 2 * one.total
    assert check_job_memory([one, one], two) == two
    with pytest.raises(RunMemoryError, match="side by side") as info:
        check_job_memory([one, one], two - 1)
    assert localized(info.value, "zh")


# -- the budget ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3221225472", 3 * GB),
        ("3G", 3 * GB),
        ("3g", 3 * GB),
        ("3 GiB", 3 * GB),
        ("3GB", 3 * GB),
        ("2.5G", int(2.5 * GB)),
        ("512M", 512 * 2**20),
        ("1T", 2**40),
        ("", None),
        ("lots", None),
        ("-3G", None),
        ("3X", None),
        ("0", None),
    ],
)
def test_sizes_are_read_like_an_operator_writes_them(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


def test_the_default_budget_fits_one_run_per_core_beside_the_server() -> None:
    """(memory − server reserve) / (cores × tolerance): 8 GiB a run on the lab's 2-core 24 GiB machine."""
    assert default_run_memory(24 * GB, 2) == 8 * GB
    assert default_run_memory(64 * GB, 8) == 6 * GB
    assert default_run_memory(8 * GB, 4) == memory.MIN_DEFAULT_BUDGET  # a small laptop still trains the book
    for mem, cores in ((24 * GB, 2), (64 * GB, 8), (256 * GB, 32)):
        budget = default_run_memory(mem, cores)
        assert cores * budget * memory.ESTIMATE_TOLERANCE + memory.SERVER_RESERVE <= mem


def test_the_budget_comes_from_the_environment_else_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(memory.ENV, "3G")
    assert run_memory_budget() == 3 * GB
    monkeypatch.setenv(memory.ENV, "three gigabytes")
    assert run_memory_budget() == default_run_memory()
    assert memory.ENV in caplog.text  # the operator's mistake goes to the log, not to a visitor
    monkeypatch.delenv(memory.ENV)
    assert run_memory_budget() == default_run_memory()


def test_sizes_are_said_as_people_do_and_the_note_states_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.size_text(int(1.64 * GB)) == "1.6 GB"
    assert memory.size_text(350 * 2**20) == "350 MB"
    assert memory.size_text(12 * GB) == "12 GB"
    monkeypatch.setenv(memory.ENV, "3G")
    note = memory.memory_note(BASE, 1000, 100_000)
    need = memory.size_text(estimate_run_memory(BASE, 1000, 100_000).total)
    assert note.localize("en") == f"This run needs about {need} of memory; one run may use about 3.0 GB."
    assert note.localize("zh").startswith(f"这次训练预计需要约 {need} 内存")


# -- where runs are created -----------------------------------------------------------------------------------


@pytest.fixture()
def wide_corpus() -> Corpus:
    """3,000 distinct characters: enough vocabulary for a logit-heavy run to exceed a small budget."""
    chars = [chr(0x4E00 + i) for i in range(3000)]
    return Corpus.from_text("".join(chars) * 10, "wide", max_chars=None)


def test_the_trainer_refuses_before_it_builds_anything(wide_corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over `RNN_LAB_RUN_MEMORY` the Trainer raises the message before a model or optimiser exists."""
    from lm_core import training

    monkeypatch.setenv(memory.ENV, "1G")
    cfg = TrainConfig(model="rnn", sampling="random", batch_size=256, num_steps=100, optimizer="adam", lr=1e-3)

    def must_not_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built before the memory check")

    monkeypatch.setattr(training, "build_config_model", must_not_build)
    with pytest.raises(RunMemoryError, match="batch size") as info:
        Trainer(wide_corpus, cfg)
    assert info.value.budget == GB and info.value.estimate.total > GB
    monkeypatch.undo()
    monkeypatch.setenv(memory.ENV, "1G")
    small = replace(cfg, batch_size=4)
    assert Trainer(wide_corpus, small).memory.total <= GB
    assert Trainer(wide_corpus, cfg, memory_budget=math.inf).memory.total > GB  # the operator's --force


def test_a_run_and_its_not_detached_twin_are_checked_together_and_told_what_fits_them_both() -> None:
    """The "do not detach" comparison: each run fits alone, the pair in one worker does not. The refusal names
    minibatches per epoch with the largest number at which both runs fit together."""
    detached = replace(BASE, model="scratch-rnn", hidden=512)
    pair = [detached, replace(detached, detach=False)]
    vocab, n_chars = 1000, 2_000_000
    alone = max(_total(c, vocab, n_chars) for c in pair)
    together = memory.job_total([estimate_run_memory(c, vocab, n_chars) for c in pair])
    assert alone < together
    assert memory.check_runs_memory(pair, vocab, n_chars, together) == together
    budget = (alone + together) // 2
    with pytest.raises(RunMemoryError, match="side by side") as info:
        memory.check_runs_memory(pair, vocab, n_chars, budget)
    said = str(info.value)
    assert "minibatches per epoch" in said and "每个周期的小批量数" in localized(info.value, "zh")
    k = int(re.search(r"at most ([\d,]+)\.", said).group(1).replace(",", ""))

    def pair_fits(steps: int) -> bool:
        cut = [estimate_run_memory(replace(c, steps_per_epoch=steps), vocab, n_chars) for c in pair]
        return memory.job_total(cut) <= budget

    assert pair_fits(k) and not pair_fits(k + 1)
