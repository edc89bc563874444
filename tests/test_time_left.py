"""The time-left estimate of a live job (lm_core.serve.views): from the run's own measured epochs, its
warm-up epoch left out, robust to a slow epoch on a shared machine, and summed over the runs of a lockstep job."""

from __future__ import annotations

import random

import pytest

from lm_core.serve.views import RunView, job_view, seconds_left


def _run(seconds: list[float], epochs: int) -> RunView:
    history = [{"epoch": k + 1, "seconds": s, "tokens_per_s": 1000.0} for k, s in enumerate(seconds)]
    return RunView("rnn", {"epochs": epochs}, history, [], [], "running", "", {})


def _noisy_epochs(rng: random.Random, n: int, typical: float) -> list[float]:
    """Epoch durations as a busy 2-core machine gives them: ±20 % jitter, and one in twenty 2-4x slower."""
    return [typical * (rng.uniform(2, 4) if rng.random() < 0.05 else rng.uniform(0.8, 1.2)) for _ in range(n)]


def test_nothing_measured_yet_gives_no_estimate() -> None:
    assert seconds_left([], 10) is None
    assert seconds_left([3.0], 0) == 0.0


def test_the_warm_up_epoch_counts_only_while_it_is_the_only_one() -> None:
    """Epoch 1 (one-off costs) is all there is to go on at first; once epoch 2 is measured it is left out."""
    assert seconds_left([8.0], 4) == pytest.approx(32.0)
    assert seconds_left([8.0, 2.0], 4) == pytest.approx(8.0)


@pytest.mark.parametrize("seed", range(20))
def test_noisy_epochs_give_an_estimate_near_the_truth(seed: int) -> None:
    """From epoch 6 on (five epochs after the warm-up measured), the estimate is within 30 % of the time the
    remaining epochs take on average (the durations' expected value, warm-up aside), however the jitter and the
    slow epochs fall."""
    rng = random.Random(seed)
    planned, typical = 60, 2.0
    expected_epoch = typical * (0.95 * 1.0 + 0.05 * 3.0)  # the mean of `_noisy_epochs`' distribution
    durations = [typical * rng.uniform(2, 4)] + _noisy_epochs(rng, planned - 1, typical)
    for done in range(6, planned):
        truth = expected_epoch * (planned - done)
        estimate = seconds_left(durations[:done], planned - done)
        assert estimate is not None
        assert abs(estimate - truth) <= 0.3 * truth, (done, estimate, truth)


def test_one_slow_epoch_does_not_swing_the_estimate() -> None:
    """A single epoch that met a busy moment (5x) moves the estimate by at most a tenth."""
    steady = [6.0] + [2.0] * 8
    before = seconds_left(steady, 50)
    after = seconds_left([*steady, 10.0], 49)
    assert before is not None and after is not None
    assert after / 49 == pytest.approx(before / 50, rel=0.1)


def test_a_job_view_estimates_from_its_runs_epochs_after_the_warm_up() -> None:
    """Two runs in lockstep: a round is both runs' epochs; the slow first epochs do not double the estimate."""
    runs = [_run([8.0, 2.0, 2.0, 2.0], 100), _run([6.0, 1.0, 1.0, 1.0], 100)]
    view = job_view("j", "running", "", 1, runs, elapsed=20.0, queue_position=0)
    assert view.epoch == 4
    assert view.eta_seconds == pytest.approx(3.0 * 96)
