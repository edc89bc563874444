"""Plotly figures, built from plain numbers so they are testable without a browser.

A figure built twice from the same numbers is identical, so Streamlit does not
re-mount it on a poll with no new epoch; axes are fixed to the planned epochs so
they do not jump while a run grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass
class Curve:
    label: str
    epochs: list[int]
    values: list[float]
    diverged_at: int | None = None  # epoch at which the run diverged, drawn as a marker
    dash: str = "solid"


def perplexity_figure(
    curves: Sequence[Curve],
    planned_epochs: int,
    title: str,
    x_title: str,
    y_title: str,
    vocab_size: int | None = None,
    baseline_label: str = "",
    height: int = 380,
) -> go.Figure:
    """Perplexity (log y) vs epoch; optional dotted line at the vocabulary size (uniform guess)."""
    fig = go.Figure()
    ys: list[float] = []
    for i, c in enumerate(curves):
        color = PALETTE[i % len(PALETTE)]
        vals = [v for v in c.values if v is not None and math.isfinite(v)]
        ys.extend(vals)
        fig.add_trace(
            go.Scatter(
                x=c.epochs, y=c.values, name=c.label, mode="lines+markers" if len(c.epochs) < 60 else "lines",
                line={"color": color, "dash": c.dash}, marker={"size": 5},
                hovertemplate="%{x}: %{y:.2f}<extra>" + c.label + "</extra>",
            )
        )
        if c.diverged_at is not None:
            y = vals[-1] if vals else (vocab_size or 1000)
            fig.add_trace(
                go.Scatter(
                    x=[c.diverged_at], y=[y], mode="markers+text", name=f"{c.label} ✕",
                    marker={"symbol": "x", "size": 14, "color": color}, text=["✕"], textposition="top center",
                    showlegend=False, hoverinfo="skip",
                )
            )
    if vocab_size:
        ys.append(vocab_size)
        fig.add_hline(y=vocab_size, line={"dash": "dot", "color": "#888"}, annotation_text=baseline_label,
                      annotation_position="top right")
    lo = min(ys) if ys else 1.0
    hi = max(ys) if ys else 1000.0
    lo = max(1.0, lo) / 1.3
    fig.update_layout(
        title=title, height=height, margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.18}, xaxis_title=x_title, yaxis_title=y_title,
        uirevision="keep",
    )
    fig.update_xaxes(range=[0.5, max(planned_epochs, 1) + 0.5])
    fig.update_yaxes(type="log", range=[math.log10(lo), math.log10(hi * 1.3)])
    return fig
