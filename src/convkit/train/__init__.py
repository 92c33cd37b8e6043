"""Training: :func:`fit`, :func:`evaluate`, :func:`predict`, and npz checkpoints that never use pickle."""
from .checkpoint import load_checkpoint, save_checkpoint
from .fit import TrainingError, TrainingInterrupted, evaluate, fit, predict

__all__ = ["fit", "evaluate", "predict", "save_checkpoint", "load_checkpoint", "TrainingError",
           "TrainingInterrupted"]
