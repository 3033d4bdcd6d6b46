"""The ONNX graphs of a checkpoint, for inference without PyTorch (mgcma/infer/onnx_recognizer.py).

  python -m mgcma.export --checkpoint DIR --onnx OUT_DIR [--check CLIP ...]

Three graphs, as the PyTorch path runs them: the speech encoder (log-mel in, every hidden state
out), the text encoder (token ids in), and MGCMA's head (the alignment modules and the
classifier, over the encoders' outputs). The encoders run once per request and the head once per
answer (voice and words, voice only, words only: a hidden side is an all-False mask). Every
length axis is dynamic: a clip is encoded at its own length, never padded to 30 s.

OUT_DIR holds speech.onnx, text.onnx, head.onnx, config.json (the checkpoint's), tokenizer.json,
Whisper's mel filters, and speech_stats.npz where the checkpoint has it; an ensemble's other heads
(mgcma/infer/ensemble.py) as members/<k>/head.onnx with their config.json, and its ensemble.json.
Only Whisper speech encoders are exported (their log-mel front end is rewritten in NumPy);
wav2vec2's raw-audio front end is not.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..checkpoint import load_model, load_tokenizer
from ..config import CONFIG_FILE, CheckpointError
from ..encoders.whisper import WhisperAudioEncoder, mel_filters
from ..model import MGCMA
from .ensemble import load_members
from .members import ENSEMBLE_FILE, member_directories, split_members
from .onnx_recognizer import MEL_FILTERS, OnnxRecognizer
from .recognizer import EmotionRecognizer
from .speaker_means import STATS_FILE

OPSET = 18
HEAD_OUTPUTS = ("logits", "w2", "speech_to_text_attn", "text_to_speech_attn")


class SpeechGraph(nn.Module):
    """(1, M, L) log-mel, (1,) its length -> (1, T, S, D) every hidden state (S = 1 unless the
    model mixes layers), (1, T) frame mask, (1, T, D) the last layer (what Whisper's decoder reads)."""

    def __init__(self, model: MGCMA):
        super().__init__()
        self.encoder, self.weighted = model.speech_encoder, model.config.speech_layers == "weighted"

    def forward(self, mel, mel_lengths):
        out = self.encoder(mel, mel_lengths, output_hidden_states=self.weighted)
        last = out.last_hidden_state
        states = torch.stack((*out.hidden_states, last), dim=2) if self.weighted else last[:, :, None]  # (1, T, S, D)
        return states, out.mask, last


class TextGraph(nn.Module):
    """(1, Tt) token ids and attention mask (int64) -> (1, Tt, Dt)."""

    def __init__(self, model: MGCMA):
        super().__init__()
        self.encoder = model.text_encoder

    def forward(self, input_ids, attention_mask):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class HeadGraph(nn.Module):
    """The encoders' outputs (and the voice's normalisation shift, zeros for none) -> logits,
    W2 between the speech and text Gaussians, and both cross-attention maps."""

    def __init__(self, model: MGCMA):
        super().__init__()
        self.model, self.weighted = model, model.config.speech_layers == "weighted"

    def forward(self, speech_features, speech_mask, text_features, text_mask, speech_shift):
        features = speech_features if self.weighted else speech_features[:, :, 0]
        out = self.model(speech_features=features, speech_mask=speech_mask, text_features=text_features,
                         text_mask=text_mask, speech_shift=speech_shift)
        return tuple(getattr(out, name) for name in HEAD_OUTPUTS)


def example_inputs(model: MGCMA) -> dict[str, tuple]:
    """Small inputs of the right kinds, which trace every graph."""
    enc = model.speech_encoder
    frames, tokens = 50, 8
    mel = torch.randn(1, enc.config.n_mels, 2 * frames)
    with torch.inference_mode():
        states, mask, _ = SpeechGraph(model)(mel, torch.tensor([2 * frames]))
    d_text = model.text_encoder.config.hidden_size
    ids = torch.randint(1000, 2000, (1, tokens))
    return dict(speech=(mel, torch.tensor([2 * frames])), text=(ids, torch.ones_like(ids)),
                head=(states.clone(), mask.clone(), torch.randn(1, tokens, d_text),
                      torch.ones(1, tokens, dtype=torch.bool), torch.zeros(1, enc.config.hidden_size)))


def graph_specs(model: MGCMA) -> dict:
    """name -> (module, input names, output names, dynamic axes)."""
    T, L, Tt = "frames", "mel_frames", "tokens"
    return {
        "speech": (SpeechGraph(model), ["mel", "mel_lengths"], ["speech_features", "speech_mask", "last_hidden_state"],
                   {"mel": {2: L}, "speech_features": {1: T}, "speech_mask": {1: T}, "last_hidden_state": {1: T}}),
        "text": (TextGraph(model), ["input_ids", "attention_mask"], ["text_features"],
                 {"input_ids": {1: Tt}, "attention_mask": {1: Tt}, "text_features": {1: Tt}}),
        "head": (HeadGraph(model), ["speech_features", "speech_mask", "text_features", "text_mask", "speech_shift"],
                 list(HEAD_OUTPUTS),
                 {"speech_features": {1: T}, "speech_mask": {1: T}, "text_features": {1: Tt}, "text_mask": {1: Tt},
                  "speech_to_text_attn": {2: T, 3: Tt}, "text_to_speech_attn": {2: Tt, 3: T}}),
    }


def check_exportable(model: MGCMA) -> None:
    c = model.config
    if c.modality != "both" or not c.use_dist or not c.use_token:
        raise CheckpointError("ONNX export covers the full two-modality model (voice and words, every alignment "
                              f"module); this one has modality={c.modality!r}, use_dist={c.use_dist}, use_token={c.use_token}")
    if not isinstance(model.speech_encoder, WhisperAudioEncoder):
        raise CheckpointError("ONNX export needs a Whisper speech encoder (its log-mel front end is rewritten in "
                              f"numpy); this model's is {type(model.speech_encoder).__name__}")


def export(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the three graphs (and an ensemble's other heads) and what the ONNX backend reads beside them into `out`."""
    checkpoint, out = Path(checkpoint), Path(out)
    model = load_model(checkpoint, "cpu")
    check_exportable(model)
    members, voices = split_members(member_directories(checkpoint))
    heads = load_members(members, model, checkpoint, "cpu")
    out.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(model)
    for name, spec in graph_specs(model).items():
        export_graph(spec, inputs[name], out / f"{name}.onnx")
    for directory, head in zip(members, heads):
        target = out / directory.relative_to(checkpoint)
        target.mkdir(parents=True, exist_ok=True)
        export_graph(graph_specs(head)["head"], inputs["head"], target / "head.onnx")
        shutil.copy(directory / CONFIG_FILE, target / CONFIG_FILE)
    for directory in voices:   # NumPy at inference: copied as is
        shutil.copytree(directory, out / directory.relative_to(checkpoint), dirs_exist_ok=True)
    for name in (CONFIG_FILE, STATS_FILE, ENSEMBLE_FILE):
        if (checkpoint / name).is_file():
            shutil.copy(checkpoint / name, out / name)
    np.save(out / MEL_FILTERS, mel_filters(model.speech_encoder.config.n_mels))
    load_tokenizer(model.config, checkpoint).backend_tokenizer.save(str(out / "tokenizer.json"))
    return out


def export_graph(spec: tuple, inputs: tuple, path: Path) -> None:
    module, input_names, output_names, axes = spec
    path.with_name(f"{path.name}.data").unlink(missing_ok=True)   # an older export's weights, which would mislead
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")   # the tracer's notes on Python control flow it has resolved
        torch.onnx.export(module.eval(), inputs, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=True, external_data=False, verbose=False)


def compare_with_torch(checkpoint: str | Path, directory: str | Path, clips: list,
                       text: str = "I can't believe you did that.") -> float:
    """The largest difference between the ONNX and the PyTorch float32 probabilities over the
    clips, each heard alone and with `text` (then every answer: both, voice only, words only)."""
    reference = EmotionRecognizer(checkpoint, asr="none", device="cpu", precision="float32")
    onnx = OnnxRecognizer(directory, asr="none")
    worst = 0.0
    for clip in clips:
        for words in ("", text):
            a, b = reference.predict(clip, words or None, use_asr=False), onnx.predict(clip, words)
            pairs = [(a.probabilities, b["probabilities"])] + [(a.answers[m], b["answers"][m]) for m in a.answers]
            worst = max(worst, *(abs(p[k] - q[k]) for p, q in pairs for k in p))
    return worst
