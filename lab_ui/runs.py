"""Turning a job's snapshot into chart curves and tables (shared by the training pages)."""

from __future__ import annotations

import pandas as pd

from lm_core.serve.views import JobView

from .charts import Curve
from .i18n import N_, t

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
# The per-epoch table's headers as a page shows them; the CSV keeps the ids above (a file for scripts, the same in
# every language).
COLUMN_LABELS = {
    "run": N_("training_page.col_run"),
    "epoch": N_("training_page.col_epoch"),
    "perplexity": N_("training_page.col_perplexity"),
    "val_perplexity": N_("training_page.col_val_perplexity"),
    "seconds": N_("training_page.col_seconds"),
    "tokens_per_s": N_("training_page.col_tokens_per_s"),
    "grad_norm_mean": N_("training_page.col_grad_norm_mean"),
    "grad_norm_max": N_("training_page.col_grad_norm_max"),
    "clipped_fraction": N_("training_page.col_clipped_fraction"),
}


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


def shown_epochs_table(view: JobView, labels: list[str]) -> pd.DataFrame:
    """`epochs_table` with its headers in the page's language, for the page (not the CSV)."""
    return epochs_table(view, labels).rename(columns={col: t(key) for col, key in COLUMN_LABELS.items()})
