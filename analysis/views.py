"""The three views of one prediction, as interactive plotly figures (used by the app)."""
from __future__ import annotations

import numpy as np

from .gaussians import gaussian_plotly
from .heatmap import attention_maps, heatmap_plotly
from .reference import ReferenceMap, reference_plotly
from .word_times import in_span_share, spans_for


def prediction_views(prediction, frame_seconds: float, reference: ReferenceMap | None = None, timed_words=None):
    """-> (heatmap, gaussians, reference map); a view the model cannot give is None.
    timed_words: [(word, start s, end s)] from Whisper, outlined on the heatmap."""
    out = prediction.output
    heatmap = gaussians = umap = None
    if out.speech_to_text_attn is not None and prediction.transcript:
        words, s2w, w2s, times = attention_maps(out, prediction.words, frame_seconds, text=prediction.transcript, offsets=prediction.offsets)
        spans = spans_for(words, timed_words) if timed_words else None
        share = in_span_share(w2s.mean(0), times, spans) if spans else None
        heatmap = heatmap_plotly(words, s2w, w2s, times, spans, share)
    if out.mu_speech is not None and prediction.w2 is not None:
        w2_reference = (reference.w2_own, reference.w2_other) if reference is not None and reference.w2_own is not None else None
        gaussians = gaussian_plotly(*(t[0].numpy() for t in (out.mu_speech, out.sigma_speech, out.mu_text, out.sigma_text)),
                                    prediction.w2, prediction.sim, reference=w2_reference)
    if reference is not None and out.speech_fused is not None and out.text_fused is not None:
        xy = reference.place(np.stack([out.speech_fused[0].numpy(), out.text_fused[0].numpy()]))
        umap = reference_plotly(reference, xy[0], xy[1])
    return heatmap, gaussians, umap


def placeholder_plotly(text: str, height: int = 160):
    """An empty figure that says what will be drawn there. Shown before the first clip, it also
    has the browser load its plotting library with the page instead of on the first click."""
    import plotly.graph_objects as go
    fig = go.Figure()
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(visible=False),
                      yaxis=dict(visible=False), plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
                      annotations=[dict(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                                        font=dict(size=13, color="#888"))])
    return fig
