"""ONNX for convkit: ``load`` runs ONNX models on NumPy with onnxruntime's interface, and ``ops``
holds one function per ONNX op, named after it, attributes as keyword arguments. The onnx package
is needed only to read and write model files, not to run the op functions."""
from . import ops
from .session import InferenceSession, NodeArg, load
from .export import ExportError, export

__all__ = ["ops", "load", "InferenceSession", "NodeArg", "export", "ExportError"]
