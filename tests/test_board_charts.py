"""The board's figures read from the back of a classroom: colours that stand out on white, a legend that does not
pretend a marker is a value, text large enough to project."""

from __future__ import annotations

import pytest

from lab_ui.board_charts import Baseline, BoardLine, ValuePoint, by_value_figure, curves_figure, value_colors

LABELS = ["0.0001", "0.001", "0.01", "0.1"]


def _luminance(color: str) -> float:
    if color.startswith("#"):
        channels = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        channels = [float(x) for x in color[color.index("(") + 1 : -1].split(",")[:3]]

    def linear(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(v) for v in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast_on_white(color: str) -> float:
    return 1.05 / (_luminance(color) + 0.05)


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("n", range(1, 9))
def test_every_values_colour_stands_out_on_white(n: int, ordered: bool) -> None:
    colors = value_colors(n, ordered)
    assert len(colors) == n and len(set(colors)) == n
    assert min(_contrast_on_white(c) for c in colors) >= 2.0, colors  # a pale yellow line vanishes when projected


def _points() -> list[ValuePoint]:
    return [ValuePoint(i % 4, 10.0 + i, f"run {i}", done=i < 6) for i in range(8)]


def test_the_by_value_legend_shows_neutral_markers_not_one_values_colour() -> None:
    colors = value_colors(4, True)
    fig = by_value_figure(_points(), LABELS, colors, "t", "x", "y", True, "finished", "training", "median")
    legend = [tr for tr in fig.data if tr.showlegend is not False]
    assert {tr.name for tr in legend} == {"finished", "training", "median"}
    for trace in legend:
        marker_colors = {str(trace.marker.color), str(trace.marker.line.color)} if trace.mode == "markers" else set()
        assert not marker_colors & set(colors), (trace.name, marker_colors)
    drawn = [tr for tr in fig.data if tr.meta in ("finished", "training")]
    assert sum(len(tr.x) for tr in drawn) == 8  # every run is still one point, in its value's colour
    assert all(tr.showlegend is False for tr in drawn)


def test_board_figures_use_text_large_enough_to_project() -> None:
    colors = value_colors(4, True)
    lines = [BoardLine(i, f"run {i}", [1, 2, 3], [50.0, 20.0, 10.0 + i]) for i in range(4)]
    figures = [
        curves_figure(lines, LABELS, colors, 3, "t", "x", "y", Baseline(100, "uniform")),
        by_value_figure(_points(), LABELS, colors, "t", "x", "y", False, "finished", "training", "median"),
    ]
    for fig in figures:
        assert fig.layout.font.size >= 14 and fig.layout.legend.font.size >= 14
        assert fig.layout.title.font.size >= 18
        for axis in (fig.layout.xaxis, fig.layout.yaxis):  # said per axis: Streamlit's theme overrides the layout's
            assert axis.tickfont.size >= 14 and axis.title.font.size >= 14
        margin = fig.layout.margin
        below = -fig.layout.legend.y * (fig.layout.height - margin.t - margin.b)  # pixels under the plot's edge
        # The legend's top edge clears the tick labels and the axis title under the plot.
        assert fig.layout.legend.yanchor == "top" and below >= 4 * fig.layout.xaxis.tickfont.size
