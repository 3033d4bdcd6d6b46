"""The Gradio demo (see app.ui)."""
