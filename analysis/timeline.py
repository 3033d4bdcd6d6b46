"""The emotion timeline of a long recording: its turns coloured by emotion, one lane per speaker
(one lane when the turns carry no speaker), and each class's probability over time (a step per
turn, gaps where nobody speaks)."""
from __future__ import annotations

from mgcma.calibration import top_two

from .figure3 import PALETTE


def timeline_plotly(segments: list[dict], labels: list[str]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    colour = {name: PALETTE[i % len(PALETTE)][0] for i, name in enumerate(labels)}
    lanes = list(dict.fromkeys(sorted(s.get("speaker", "") for s in segments)))   # one per speaker
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.3, 0.7], vertical_spacing=0.08,
                        subplot_titles=("turns by speaker" if lanes != [""] else "utterances",
                                        "probability of each emotion"))
    for name in labels:   # one legend entry per emotion, bars grouped under it
        mine = [s for s in segments if s["label"] == name]
        # an answer below the model's "not sure" threshold is hatched, and its hover names the top two
        fig.add_trace(go.Bar(x=[s["end"] - s["start"] for s in mine], base=[s["start"] for s in mine],
                             y=[s.get("speaker", "") for s in mine], orientation="h", marker_color=colour[name], name=name, legendgroup=name, showlegend=False,
                             marker_pattern_shape=["/" if s.get("not_sure") else "" for s in mine],
                             customdata=[[i, s["text"], verdict(s), s.get("speaker", "")] for i, s in enumerate(segments)
                                         if s["label"] == name],
                             hovertemplate="%{customdata[3]} %{base:.1f} s: %{customdata[2]}<br>%{customdata[1]}<extra></extra>"), 1, 1)
    for name in labels:
        xs, ys = [], []
        for s in segments:
            xs += [s["start"], s["end"], None]
            ys += [s["probabilities"][name]] * 2 + [None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=colour[name], width=3), name=name,
                                 legendgroup=name, connectgaps=False), 2, 1)   # every class in the legend
    fig.update_yaxes(range=[0, 1], title_text="probability", row=2, col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=lanes[::-1], row=1, col=1)   # Speaker 1 on top
    fig.update_xaxes(title_text="seconds", row=2, col=1)
    fig.update_layout(height=340 + 22 * len(lanes), barmode="overlay", margin=dict(l=50, r=110, t=40, b=40),
                      legend=dict(x=1.01, y=0.5, title_text="emotion"))
    return fig


def verdict(segment: dict, percent: bool = True) -> str:
    """"angry 81 %", or "not sure: neutral 41 % or sad 35 %" (without the percentages: "angry",
    "not sure: neutral or sad")."""
    (first, p1), (second, p2) = top_two(segment["probabilities"])
    a, b = (f"{first} {100 * p1:.0f} %", f"{second} {100 * p2:.0f} %") if percent else (first, second)
    return f"not sure: {a} or {b}" if segment.get("not_sure") else a
