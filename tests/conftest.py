import os
from typing import NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from mgcma.checkpoint import load_tokenizer
from mgcma.config import preset

pytest_plugins = ["tests.skipped_browser"]


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(preset("test"))


@pytest.fixture
def make_batch(tokenizer):
    """Random clips of the given lengths (samples) with texts, padded as a batch."""
    def make(lengths, texts=None, seed=0):
        g = torch.Generator().manual_seed(seed)
        texts = texts or [f"sentence number {i} is rather {'good' if i % 2 else 'bad'}" for i in range(len(lengths))]
        n = max(lengths)
        audio = torch.zeros(len(lengths), n)
        mask = torch.zeros(len(lengths), n, dtype=torch.bool)
        for i, length in enumerate(lengths):
            audio[i, :length] = 0.1 * torch.randn(length, generator=g)
            mask[i, :length] = True
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        labels = torch.arange(len(lengths)) % 4
        return dict(audio=audio, audio_mask=mask, input_ids=enc.input_ids,
                    text_mask=enc.attention_mask.bool(), labels=labels)
    return make


@pytest.fixture(scope="session")
def test_checkpoint(tmp_path_factory, tokenizer):
    """A small random model saved as a checkpoint directory."""
    from mgcma.checkpoint import save_model
    from mgcma.model import MGCMA
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model"
    save_model(MGCMA(preset("test")).eval(), path, tokenizer)
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """64 synthetic utterances (16 speakers in 4 folds)."""
    from mgcma.data.synthetic import SyntheticConfig, generate
    return generate(tmp_path_factory.mktemp("syn"), SyntheticConfig(size=64, seed=3), progress=False)


class RunningApp(NamedTuple):
    demo: object   # gr.Blocks
    url: str
    app: object    # mgcma.app.ui.App, for tests that look inside


@pytest.fixture(scope="session")
def running_app():
    """The app on the bundled model, in this process, on a free loopback port."""
    from mgcma.app.serve import load_warm
    from mgcma.app.ui import App, QUEUE
    from mgcma.config import DEFAULT_CHECKPOINT
    app = App(load_warm(DEFAULT_CHECKPOINT, asr="auto", device="cpu", precision="float32"))   # as python app.py
    demo = app.build().queue(**QUEUE)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                            max_file_size="50mb")
    yield RunningApp(demo, url, app)
    demo.close()
