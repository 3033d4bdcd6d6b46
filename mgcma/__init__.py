"""MGCMA: multi-granularity cross-modal alignment for speech + text emotion recognition."""
from .config import ModelConfig, preset
from .model import MGCMA, MGCMAOutput
from .checkpoint import CheckpointError, load_model, save_model

__all__ = ["ModelConfig", "preset", "MGCMA", "MGCMAOutput", "CheckpointError", "load_model", "save_model"]
