"""Turning a job's snapshot into chart curves and tables (shared by the training pages)."""

from __future__ import annotations

import pandas as pd

from lm_core.serve.views import JobView

from .charts import Curve

COLUMNS = (
    "epoch",
    "perplexity",
    "val_perplexity",
    "seconds",
    "tokens_per_s",
    "grad_norm_mean",
    "grad_norm_max",
    "clipped_fraction",
)


def curves_from_view(view: JobView, metric: str = "perplexity", labels: list[str] | None = None) -> list[Curve]:
    """One curve per run; a diverged run gets a marker one epoch after its last good one.

    `labels` names the runs as drawn (default: the job's own labels).
    """
    curves = []
    for i, run in enumerate(view.runs):
        epochs = [h["epoch"] for h in run.history]
        values = [h[metric] for h in run.history]
        diverged = (epochs[-1] if epochs else 0) + 1 if run.status == "diverged" else None
        curves.append(Curve(labels[i] if labels else run.label, epochs, values, diverged_at=diverged))
    return curves


def epochs_table(view: JobView, labels: list[str] | None = None) -> pd.DataFrame:
    """Every run's per-epoch metrics in one long table (also the CSV download)."""
    frames = []
    for i, run in enumerate(view.runs):
        df = pd.DataFrame(run.history, columns=list(COLUMNS))
        df.insert(0, "run", labels[i] if labels else run.label)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", *COLUMNS])
