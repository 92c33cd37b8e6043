"""ONNX operators as plain functions over NumPy arrays: one function per op, named after it,
inputs positional and attributes as keyword arguments (ONNX's names).

The implementations live in ops_conv (Conv, ConvTranspose, Col2Im), ops_nn (pools, norms,
activations, Dropout), ops_math (elementwise, Gemm/MatMul, reductions), ops_tensor (shape
and data movement, Cast) and ops_resize (Resize, Upsample).

>>> import numpy as np
>>> from convkit.onnx import ops
>>> ops.Gemm(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), transB=1)
array([[3., 3., 3., 3.],
       [3., 3., 3., 3.]], dtype=float32)
"""
from ._util import onnx_pads, padding_from  # noqa: F401  (kept importable from here)
from .ops_conv import Col2Im, Conv, ConvTranspose
from .ops_math import (Add, Clip, Div, Erf, Exp, Gemm, Log, MatMul, Max, Mean, Min, Mul, Pow, ReduceMax,
                       ReduceMean, ReduceSum, Sqrt, Sub, Sum)
from .ops_nn import (LRN, AveragePool, BatchNormalization, Dropout, Elu, GlobalAveragePool, GlobalMaxPool,
                     HardSigmoid, HardSwish, InstanceNormalization, LeakyRelu, LogSoftmax, LpPool, MaxPool,
                     MaxUnpool, PRelu, Relu, Selu, Sigmoid, Softmax, Tanh)
from .ops_resize import Resize, Upsample
from .ops_tensor import (Cast, Concat, Constant, ConstantOfShape, Flatten, Gather, Identity, Pad, Reshape, Shape,
                         Slice, Split, Squeeze, Transpose, Unsqueeze)

__all__ = [
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "MaxUnpool",
    "Col2Im", "BatchNormalization", "InstanceNormalization", "LRN", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Softmax", "LogSoftmax", "Gemm", "MatMul", "Add", "Sub",
    "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Sum", "Mean", "Max", "Min", "Concat", "Split", "Slice",
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Pad", "Dropout", "Identity", "Constant",
    "ConstantOfShape", "Shape", "Gather", "ReduceMean", "ReduceMax", "ReduceSum", "Cast", "Resize", "Upsample",
]
