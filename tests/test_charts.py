"""The charts (lab_ui.charts): the perplexity chart draws the n-gram baselines of the validation split as dotted
lines."""

from __future__ import annotations

from lab_ui import charts


def test_baselines_become_dotted_lines_with_labels() -> None:
    curve = charts.Curve("a", [1, 2], [500.0, 300.0])
    fig = charts.perplexity_figure([curve], 5, "t", "x", "y", 5182, "uniform", baselines=[(605.0, "unigram 605")])
    lines = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert sorted(round(s.y0) for s in lines) == [605, 5182]
    assert any(a.text == "unigram 605" for a in fig.layout.annotations)
    plain = charts.perplexity_figure([curve], 5, "t", "x", "y", 5182, "uniform")
    assert len([s for s in plain.layout.shapes if s.line.dash == "dot"]) == 1


def test_a_horizontal_line_is_the_shape_add_hline_draws() -> None:
    """`horizontal_line` replaces Plotly's slow `add_hline` (40 first draws at once silenced the server): it
    must draw the very same shape, on a log axis and with a subplot grid's first axes alike."""
    import plotly.graph_objects as go

    for log in (False, True):
        ours, plotly_s = go.Figure(), go.Figure()
        for fig in (ours, plotly_s):
            fig.add_trace(go.Scatter(x=[1, 2], y=[3.0, 40.0]))
            if log:
                fig.update_yaxes(type="log")
        charts.horizontal_line(ours, 25.0, {"dash": "dot", "color": "#888"})
        plotly_s.add_hline(y=25.0, line={"dash": "dot", "color": "#888"})
        assert ours.to_plotly_json()["layout"] == plotly_s.to_plotly_json()["layout"]


def test_the_perplexity_chart_draws_its_lines_across_the_plot() -> None:
    curve = charts.Curve("a", [1, 2], [500.0, 300.0])
    fig = charts.perplexity_figure([curve], 5, "t", "x", "y", 5182, "uniform", baselines=[(605.0, "unigram")])
    for shape in fig.layout.shapes:
        assert (shape.xref, shape.x0, shape.x1, shape.yref, shape.y0) == ("x domain", 0, 1, "y", shape.y1)
