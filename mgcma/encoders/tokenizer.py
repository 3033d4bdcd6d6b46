"""The text encoder's tokenizer through the `tokenizers` library alone.

transformers' AutoTokenizer costs about 1 s to import on a 2-core CPU, and all it adds for a fast
tokenizer is configuration around the same `tokenizer.json`. `TextTokenizer` makes the calls MGCMA
and its users make of a Hugging Face tokenizer (`tok(texts, padding=True, truncation=True,
max_length=64, return_tensors="pt")`, offsets, `convert_ids_to_tokens`, `save_pretrained`) and gives
the same ids (tested against AutoTokenizer). Directories without a tokenizer.json go to transformers.
"""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import torch

FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


class Encoding(dict):
    """transformers' BatchEncoding as MGCMA reads it: a dict whose keys are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class TextTokenizer:
    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer
        self.directory = Path(directory)
        self.backend_tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        config_file = self.directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        pad = config.get("pad_token") or "[PAD]"
        self.pad_token = pad["content"] if isinstance(pad, dict) else pad
        self.pad_token_id = self.backend_tokenizer.token_to_id(self.pad_token) or 0
        self.model_max_length = int(config.get("model_max_length", 512))
        self.vocab_size = self.backend_tokenizer.get_vocab_size(with_added_tokens=False)
        self.lock = threading.Lock()   # padding and truncation are set on the shared backend per call

    def __call__(self, text: str | list[str], padding: bool = False, truncation: bool = False,
                 max_length: int | None = None, return_tensors: str | None = None,
                 return_offsets_mapping: bool = False) -> Encoding:
        """One text -> lists of ids (a (1, T) tensor with return_tensors="pt"); a list -> one row each."""
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: only 'pt' (PyTorch) or None")
        single = isinstance(text, str)
        backend = self.backend_tokenizer
        with self.lock:
            if truncation:
                backend.enable_truncation(max_length or self.model_max_length)
            else:
                backend.no_truncation()
            if padding:
                backend.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token)
            else:
                backend.no_padding()
            rows = backend.encode_batch([text] if single else list(text))
        out = Encoding(input_ids=[r.ids for r in rows], token_type_ids=[r.type_ids for r in rows],
                       attention_mask=[r.attention_mask for r in rows])
        if return_offsets_mapping:
            out["offset_mapping"] = [r.offsets for r in rows]
        if return_tensors == "pt":
            if len({len(r.ids) for r in rows}) > 1:
                raise ValueError("texts of different lengths need padding=True to become one tensor")
            return Encoding({k: torch.tensor(v) for k, v in out.items()})
        return Encoding({k: v[0] for k, v in out.items()}) if single else out

    def convert_ids_to_tokens(self, ids) -> list[str]:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return [self.backend_tokenizer.id_to_token(int(i)) for i in ids]

    def batch_decode(self, rows, skip_special_tokens: bool = False) -> list[str]:
        rows = rows.tolist() if isinstance(rows, torch.Tensor) else rows
        return self.backend_tokenizer.decode_batch(rows, skip_special_tokens=skip_special_tokens)

    def save_pretrained(self, directory: str | Path) -> None:
        """Copies the tokenizer's files, so that this class and AutoTokenizer both read the copy."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            if (self.directory / name).is_file():
                shutil.copy(self.directory / name, directory / name)
