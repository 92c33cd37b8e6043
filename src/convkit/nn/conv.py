"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d, as ``torch.nn``.

Arguments, parameter names and shapes, default initialisation and repr are
PyTorch's; padding also takes (lo, hi) pairs and "same_lower", and "same"
works with any stride (TF/ONNX SAME_UPPER, see :func:`convkit.functional.conv`).
Arguments are checked once, here in the constructor.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks as C
from .. import functional as F
from . import init
from .module import Module, Parameter


def _float_dtype(op, dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        C.fail(op, "dtype", "a floating-point dtype", dtype, TypeError)
    return dt


def _symmetric(pads):
    """Pairs back to PyTorch's one int per dim where every pair is symmetric."""
    return tuple(lo for lo, _ in pads) if all(lo == hi for lo, hi in pads) else pads


class _ConvNd(Module):
    _n = 0
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding, dtype, data_format):
        super().__init__()
        op, n = type(self).__name__, self._n
        self.in_channels = C.as_int(op, "in_channels", in_channels, minimum=1)
        self.out_channels = C.as_int(op, "out_channels", out_channels, minimum=1)
        self.groups = C.as_int(op, "groups", groups, minimum=1)
        if self.in_channels % self.groups:
            raise ValueError(f"{op}: groups must divide in_channels; got in_channels={self.in_channels}, "
                             f"groups={self.groups}.")
        if self.out_channels % self.groups:
            raise ValueError(f"{op}: groups must divide out_channels; got out_channels={self.out_channels}, "
                             f"groups={self.groups}.")
        self.kernel_size = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
        self.stride = C.ntuple(op, "stride", stride, n, minimum=1)
        self.dilation = C.ntuple(op, "dilation", dilation, n, minimum=1)
        pads = C.padding_arg(op, padding, n, allow_strings=not self._transposed)
        self.padding = pads if isinstance(pads, str) else _symmetric(pads)
        self.padding_mode = C.padding_mode(op, padding_mode)
        if self._transposed and self.padding_mode != "zeros":
            C.fail(op, "padding_mode", "'zeros' for a transposed convolution", padding_mode)
        self.output_padding = C.ntuple(op, "output_padding", output_padding, n, minimum=0)
        for p, s, d in zip(self.output_padding, self.stride, self.dilation):
            if p >= max(s, d):
                C.fail(op, "output_padding", "smaller than max(stride, dilation) in every dim",
                       output_padding)
        self.data_format = C.data_format(op, data_format)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{op}: bias must be a bool; got bias={bias!r}.")
        dt = _float_dtype(op, dtype)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_channels,), dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)), for weight and bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        n = self._n
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.data_format != "channels_first":
            s += f", data_format={self.data_format}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None, data_format="channels_first"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, dtype, data_format)

    def forward(self, input):
        return getattr(F, f"conv{self._n}d")(input, self.weight, self.bias, self.stride, self.padding,
                                             self.dilation, self.groups, self.padding_mode, self.data_format)


class Conv1d(_Conv):
    """1-d convolution over (N, C_in, L) or (C_in, L) (channels last: (N, L, C_in)).

    Parameters
    ----------
    in_channels, out_channels : channels of the input and the output.
    kernel_size, stride, dilation : int or 1-tuple.
    padding : int, 1-tuple, ((lo, hi),), "valid", "same" or "same_lower".
    groups : divides in_channels and out_channels.
    bias : learn an additive bias.
    padding_mode : "zeros", "reflect", "replicate" or "circular".
    dtype : parameter dtype (float32 by default).
    data_format : "channels_first" or "channels_last".

    Attributes: ``weight`` (out_channels, in_channels/groups, k), ``bias`` (out_channels,),
    both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels/groups * k.

    Shape
    -----
    ``L_out = floor((L + P_lo + P_hi - D*(k-1) - 1)/S) + 1``.

    >>> Conv1d(2, 4, 3, padding="same")(np.zeros((1, 2, 7), np.float32)).shape
    (1, 4, 7)
    """
    _n = 1


class Conv2d(_Conv):
    """2-d convolution over (N, C_in, H, W) or (C_in, H, W); arguments as :class:`Conv1d`, per dim 2-tuples.

    Weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,).

    Shape
    -----
    ``H_out = floor((H + P_lo + P_hi - D*(kh-1) - 1)/S) + 1``, likewise W_out.

    >>> Conv2d(1, 8, 3, stride=2, padding=1)(np.zeros((1, 1, 28, 28), np.float32)).shape
    (1, 8, 14, 14)
    """
    _n = 2


class Conv3d(_Conv):
    """3-d convolution over (N, C_in, D, H, W) or (C_in, D, H, W); arguments as :class:`Conv1d`.

    Shape
    -----
    ``D_out = floor((D + P_lo + P_hi - Dil*(kd-1) - 1)/S) + 1``, likewise H_out, W_out.

    >>> Conv3d(1, 2, 3)(np.zeros((1, 1, 4, 4, 4), np.float32)).shape
    (1, 2, 2, 2, 2)
    """
    _n = 3


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=None, data_format="channels_first"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, dtype, data_format)

    def forward(self, input, output_size=None):
        """``output_size`` (spatial sizes or the full shape) picks output_padding, as in PyTorch."""
        return getattr(F, f"conv_transpose{self._n}d")(
            input, self.weight, self.bias, self.stride, self.padding,
            0 if output_size is not None else self.output_padding, self.groups, self.dilation, output_size,
            self.data_format)


class ConvTranspose1d(_ConvTranspose):
    """1-d transposed convolution (the gradient of Conv1d w.r.t. its input).

    Parameters as PyTorch's; padding crops cells from each side (int, 1-tuple
    or ((lo, hi),)); ``output_padding`` (< max(stride, dilation)) adds cells at the end.
    Weight (in_channels, out_channels/groups, k), bias (out_channels,); fan_in
    for the default init is out_channels/groups * k, as PyTorch.

    Shape
    -----
    ``L_out = (L - 1)*S - P_lo - P_hi + D*(k-1) + output_padding + 1``.

    >>> ConvTranspose1d(2, 3, 3, stride=2)(np.zeros((1, 2, 4), np.float32)).shape
    (1, 3, 9)
    """
    _n = 1


class ConvTranspose2d(_ConvTranspose):
    """2-d transposed convolution; arguments as :class:`ConvTranspose1d`, per dim 2-tuples.

    Shape
    -----
    ``H_out = (H - 1)*S - P_lo - P_hi + D*(kh-1) + output_padding + 1``, likewise W_out.

    >>> ConvTranspose2d(4, 2, 2, stride=2)(np.zeros((1, 4, 5, 5), np.float32)).shape
    (1, 2, 10, 10)
    """
    _n = 2


class ConvTranspose3d(_ConvTranspose):
    """3-d transposed convolution; arguments as :class:`ConvTranspose1d`, per dim 3-tuples.

    Shape
    -----
    ``D_out = (D - 1)*S - P_lo - P_hi + Dil*(kd-1) + output_padding + 1``, likewise H_out, W_out.

    >>> ConvTranspose3d(1, 1, 2, stride=2)(np.zeros((1, 1, 2, 2, 2), np.float32)).shape
    (1, 1, 4, 4, 4)
    """
    _n = 3


__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
