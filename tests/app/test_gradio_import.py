"""app/gradio_import.py: Gradio imported without writing type stubs, and still working."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = """import gradio as gr

class Shout(gr.Textbox):
    def preprocess(self, payload):
        return None if payload is None else payload.upper()
"""
RUN = """import sys
sys.path[:0] = [{root!r}, {folder!r}]
if {skip}:
    from mgcma.app.gradio_import import skip_stub_writing
    skip_stub_writing()
import gradio as gr
from shout import Shout
with gr.Blocks() as demo:
    box = Shout()
print(box.preprocess("calm"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("skip", [True, False])
def test_components_work_and_no_stub_is_written_only_when_skipped(tmp_path, skip):
    """Gradio writes a .pyi beside every component class it meets, a user's own too: the
    control (not skipped) shows the check can see a stub being written."""
    (tmp_path / "shout.py").write_text(COMPONENT)
    run = subprocess.run([sys.executable, "-c", RUN.format(root=str(ROOT), folder=str(tmp_path), skip=skip)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("CALM")
    assert (tmp_path / "shout.pyi").exists() is not skip
