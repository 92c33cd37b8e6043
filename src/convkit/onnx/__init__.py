"""ONNX operators as plain functions over NumPy arrays (one function per op,
named after it, attributes as keyword arguments). The onnx package is needed
only to read and write model files, not to run these functions."""
from . import ops

__all__ = ["ops"]
