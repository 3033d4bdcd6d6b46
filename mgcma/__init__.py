"""MGCMA: multi-granularity cross-modal alignment for speech + text emotion recognition."""
import importlib

_EXPORTS = {"ModelConfig": "config", "preset": "config", "MGCMA": "model", "MGCMAOutput": "model",
            "CheckpointError": "config", "load_model": "checkpoint", "save_model": "checkpoint"}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that light tools (data, synthesis) do not import torch
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'mgcma' has no attribute {name!r}")
