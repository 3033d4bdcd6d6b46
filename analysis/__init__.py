"""Figures that make MGCMA understandable: Figure 3 (UMAP), cross-attention heatmaps, Gaussian
overlap, ablation tables. Functions take model outputs and return figures; `python -m mgcma.analysis`
writes them as PNG (matplotlib) and HTML (plotly)."""
