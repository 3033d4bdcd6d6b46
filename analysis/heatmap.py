"""Token cross-attention as words x seconds, both directions, per head and head-averaged."""
from __future__ import annotations

import re

import numpy as np

SPECIAL = {"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"}


def merge_wordpieces(tokens: list[str]) -> list[tuple[str, list[int]]]:
    """WordPiece tokens -> [(word, token indices)]: '##' pieces join the word before them;
    special tokens are dropped. Used when the text and offsets are not known."""
    words = []
    for i, tok in enumerate(tokens):
        if tok in SPECIAL:
            continue
        if tok.startswith("##") and words:
            words[-1] = (words[-1][0] + tok[2:], words[-1][1] + [i])
        else:
            words.append((tok, [i]))
    return words


def merge_words(text: str, offsets: list[tuple[int, int]]) -> list[tuple[str, list[int]]]:
    """Tokens -> the whitespace-separated words of `text` they came from, using the tokenizer's
    character offsets, so that "can't" and "weekend." stay one word each (BERT splits the
    punctuation off). Special tokens (empty spans) are dropped."""
    spans = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    words, current = [], None
    for i, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        k = next((k for k, (ws, we, _) in enumerate(spans) if ws <= start < we), None)
        if k is None:
            continue
        if k != current:
            words.append((spans[k][2], []))
            current = k
        words[-1][1].append(i)
    return words


def word_attention(s2t: np.ndarray, t2s: np.ndarray, groups: list[list[int]]):
    """s2t: (h, Ts, Tt) speech frames over tokens; t2s: (h, Tt, Ts) tokens over frames.
    -> (speech->words (h, W, Ts): each frame's attention mass on each word, summed over its pieces;
        words->speech (h, W, Ts): each word's attention over time, averaged over its pieces)."""
    s2w = np.stack([s2t[:, :, g].sum(-1) for g in groups], axis=1)   # (h, W, Ts)
    w2s = np.stack([t2s[:, g, :].mean(1) for g in groups], axis=1)   # (h, W, Ts)
    return s2w, w2s


def attention_maps(output, tokens: list[str], frame_seconds: float, index: int = 0, text=None, offsets=None):
    """From a forward output -> (words, speech->words (h, W, Ts), words->speech (h, W, Ts), frame times).
    With the text and the tokenizer's offsets, tokens are merged into the text's words."""
    if output.speech_to_text_attn is None:
        raise ValueError("this model has no token alignment module, so there is no cross-attention to show")
    n_frames = int(output.speech_mask[index].sum())
    n_tokens = int(output.text_mask[index].sum())
    s2t = output.speech_to_text_attn[index, :, :n_frames, :n_tokens].float().numpy()
    t2s = output.text_to_speech_attn[index, :, :n_tokens, :n_frames].float().numpy()
    merged = merge_words(text, offsets[:n_tokens]) if offsets is not None else merge_wordpieces(tokens[:n_tokens])
    if not merged:
        raise ValueError("the transcript is empty, so there are no words to attend to")
    s2w, w2s = word_attention(s2t, t2s, [g for _, g in merged])
    times = (np.arange(n_frames) + 0.5) * frame_seconds
    return [w for w, _ in merged], s2w, w2s, times


def span_caption(share: dict | None) -> str:
    if share is None:
        return ""
    return (f"{100 * share['in_span']:.0f} % of a word's attention falls inside its own spoken span "
            f"(chance {100 * share['chance']:.0f} %, {share['ratio']:.1f}x; {share['words']} words)")


def heatmap_figure(words, s2w, w2s, times, per_head: bool = True, spans=None, share=None):
    """matplotlib: rows = directions, columns = head average (+ each head). `spans`: each word's
    (start, end) in seconds (or None), outlined on its row; `share`: the in-span numbers."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    heads = s2w.shape[0]
    cols = 1 + (heads if per_head else 0)
    height = max(2.4, 0.28 * len(words) + 1.2)
    fig, axes = plt.subplots(2, cols, figsize=(max(3.6 * cols + 1, 9), 2 * height), squeeze=False)
    rows = [("speech frames attend to words", s2w), ("words attend to speech", w2s)]
    extent = [0, times[-1] + (times[0] if len(times) else 0), len(words) - 0.5, -0.5]
    for r, (title, maps) in enumerate(rows):
        panels = [("mean of heads", maps.mean(0))] + ([(f"head {h + 1}", maps[h]) for h in range(heads)] if per_head else [])
        for c, (name, image) in enumerate(panels):
            ax = axes[r, c]
            im = ax.imshow(image, aspect="auto", cmap="magma", extent=extent, interpolation="nearest")
            for i, span in enumerate(spans or []):
                if span is not None:
                    ax.add_patch(Rectangle((span[0], i - 0.5), span[1] - span[0], 1, fill=False, edgecolor="#00e5ff", lw=1.2))
            ax.set_yticks(range(len(words)), words if c == 0 else [""] * len(words), fontsize=8)
            ax.set_xlabel("time (s)")
            ax.set_title(f"{title}\n{name}" if c == 0 else name, fontsize=9)
        fig.colorbar(im, ax=axes[r, -1], fraction=0.05, label="attention")
    if spans:
        fig.text(0.01, 0.0, "cyan boxes: when Whisper heard each word. " + span_caption(share), fontsize=8, va="top")
    fig.tight_layout()
    return fig


def heatmap_plotly(words, s2w, w2s, times, spans=None, share=None):
    """plotly: head-averaged maps of both directions (hover shows word, time and weight), each
    word's spoken span outlined when known."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("speech frames attend to words", "words attend to speech"))
    for c, maps in enumerate((s2w, w2s), start=1):
        fig.add_trace(go.Heatmap(z=maps.mean(0), x=np.round(times, 3), y=list(range(len(words))), colorscale="Magma",
                                 customdata=np.array(words)[:, None].repeat(len(times), 1), showscale=c == 2,
                                 hovertemplate="%{customdata} @ %{x} s: %{z:.3f}<extra></extra>"), 1, c)
        for i, span in enumerate(spans or []):
            if span is not None:
                fig.add_shape(type="rect", x0=span[0], x1=span[1], y0=i - 0.5, y1=i + 0.5, row=1, col=c,
                              line=dict(color="#00e5ff", width=1.5))
        fig.update_xaxes(title_text="time (s)", row=1, col=c)
        fig.update_yaxes(autorange="reversed", tickvals=list(range(len(words))), ticktext=words, row=1, col=c)
    caption = span_caption(share)
    fig.update_layout(height=max(320, 26 * len(words) + 190), margin=dict(l=10, r=10, t=50, b=90),
                      annotations=list(fig.layout.annotations) + ([dict(
                          text="cyan boxes: when Whisper heard each word. " + caption, showarrow=False,
                          xref="paper", yref="paper", x=0, y=0, yshift=-70, xanchor="left", yanchor="top",
                          font=dict(size=11))] if spans else []))
    return fig
