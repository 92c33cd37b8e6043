"""Explanations and pictures for learners: every common question about a convolution
answered with the user's own numbers.

- :func:`conv`, :func:`conv_transpose`, :func:`pool`: output size with the arithmetic
  filled in, weight shapes (PyTorch/ONNX and TF/Keras order), parameters, MACs,
  the im2col matrix product and the receptive field;
- :func:`element`: how one output value is computed, term by term;
- :func:`backward`: grad_x and grad_w built by hand and checked against F.conv_vjp;
- :mod:`convkit.explain.pictures`: the sliding kernel (GIF or PNG), filters, feature
  maps and training curves (needs matplotlib).

Each returns an object with the numbers as attributes; ``str()`` gives the text.
``convkit explain ...`` and ``convkit show ...`` print the same.

>>> from convkit import explain
>>> explain.conv("1x192x28x28", out_channels=32, kernel_size=1).output_shape
(1, 32, 28, 28)
"""
from .arithmetic import (ConvExplanation, ConvTransposeExplanation, PoolExplanation, conv, conv_transpose,
                         fmt_shape, parse_shape, pool)
from .backward import BackwardExplanation, backward
from .element import ElementExplanation, element

__all__ = ["conv", "conv_transpose", "pool", "element", "backward", "parse_shape", "fmt_shape",
           "ConvExplanation", "ConvTransposeExplanation", "PoolExplanation", "ElementExplanation",
           "BackwardExplanation"]
