"""Pooling layers, as ``torch.nn``: max, average, Lp, adaptive, and max unpooling.

Arguments are stored as given (PyTorch's repr shows them that way) and
checked once in the constructor. Inputs are (N, C, *spatial) or unbatched
(C, *spatial); arrays or Tensors in, Tensors out.

Shape (max, avg, Lp): ``o = floor((L + lo + hi - d*(k-1) - 1) / s) + 1`` per
dim (ceil with ceil_mode); stride defaults to kernel_size.
"""
from __future__ import annotations

import numpy as np

from .. import _checks as C
from .. import functional as F
from ..autograd import Tensor, as_tensor
from ..functional.pool import _relu_commutes
from .activation import ReLU
from .module import Module


def _window_args(op, n, kernel_size, stride, padding, dilation=1, *, strings=True):
    C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    if stride is not None:
        C.ntuple(op, "stride", stride, n, minimum=1)
    C.padding_arg(op, padding, n, allow_strings=strings)
    C.ntuple(op, "dilation", dilation, n, minimum=1)


class _MaxPoolNd(Module):
    _n = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        op = type(self).__name__
        _window_args(op, self._n, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices = C.flag(op, "return_indices", return_indices)
        self.ceil_mode = C.flag(op, "ceil_mode", ceil_mode)

    def forward(self, input):
        return getattr(F, f"max_pool{self._n}d")(as_tensor(input), self.kernel_size, self.stride, self.padding,
                                                 self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def _may_precede(self, act, x):
        """Whether ``act(x)`` then this pool may run as this pool then ``act``, with the same output and
        gradients: act a plain ReLU, no hooks on either, no indices asked for, a float array or plain Tensor
        (not the ONNX exporter's tracing tensor, which records the graph as written), and every window on
        an input cell (``F.pool._relu_commutes``). :class:`~convkit.nn.Sequential` then runs the ReLU on the
        pool's output, a quarter of the cells for a 2x2 pool."""
        return (type(act) is ReLU and type(self).forward is _MaxPoolNd.forward and not self.return_indices
                and not act._forward_hooks and not self._forward_hooks and type(x) in (Tensor, np.ndarray)
                and x.dtype.kind == "f"
                and _relu_commutes(x.shape, self._n, self.kernel_size, self.stride, self.padding, self.dilation,
                                   self.ceil_mode))


class MaxPool1d(_MaxPoolNd):
    """Max over windows of (N, C, L); ``return_indices`` also gives the argmax (flat per plane), for MaxUnpool1d.

    >>> MaxPool1d(2)(np.arange(6.).reshape(1, 1, 6)).shape
    (1, 1, 3)
    """
    _n = 1


class MaxPool2d(_MaxPoolNd):
    """Max over windows of (N, C, H, W); arguments as :class:`MaxPool1d`.

    >>> MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """
    _n = 2


class MaxPool3d(_MaxPoolNd):
    """Max over windows of (N, C, D, H, W); arguments as :class:`MaxPool1d`."""
    _n = 3


class _AvgPoolNd(Module):
    _n = 0

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        op = type(self).__name__
        _window_args(op, self._n, kernel_size, stride, padding)
        if divisor_override is not None and C.as_int(op, "divisor_override", divisor_override) == 0:
            C.fail(op, "divisor_override", "a non-zero int or None", divisor_override)
        if self._n == 1:  # PyTorch's AvgPool1d stores 1-tuples
            kernel_size = C.ntuple(op, "kernel_size", kernel_size, 1)
            stride = None if stride is None else C.ntuple(op, "stride", stride, 1)
            padding = padding if isinstance(padding, (str, tuple)) else C.ntuple(op, "padding", padding, 1)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = C.flag(op, "ceil_mode", ceil_mode)
        self.count_include_pad = C.flag(op, "count_include_pad", count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input):
        return getattr(F, f"avg_pool{self._n}d")(as_tensor(input), self.kernel_size, self.stride, self.padding,
                                                 self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over windows of (N, C, L); count_include_pad and divisor_override as PyTorch.

    >>> AvgPool1d(2)
    AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    """
    _n = 1


class AvgPool2d(_AvgPoolNd):
    """Mean over windows of (N, C, H, W); arguments as :class:`AvgPool1d`."""
    _n = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over windows of (N, C, D, H, W); arguments as :class:`AvgPool1d`."""
    _n = 3


class _LPPoolNd(Module):
    """Lp pooling ``(sum |x|**p) ** (1/p)`` per window.

    PyTorch raises x (not |x|) to the power p, so the two agree for p = 2 (and
    any even p, or x >= 0); with ceil_mode PyTorch also rescales windows cut by
    the edge, which convkit does not. See :func:`convkit.functional.lp_pool`.
    """
    _n = 0

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        op = type(self).__name__
        C.real_number(op, "norm_type", norm_type, positive=True)
        self.norm_type = norm_type
        _window_args(op, self._n, kernel_size, stride, 0)
        self.kernel_size, self.stride = kernel_size, stride
        self.ceil_mode = C.flag(op, "ceil_mode", ceil_mode)

    def forward(self, input):
        return getattr(F, f"lp_pool{self._n}d")(as_tensor(input), self.norm_type, self.kernel_size, self.stride,
                                                ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Lp pooling over (N, C, L); see :class:`_LPPoolNd` for the difference from PyTorch."""
    _n = 1


class LPPool2d(_LPPoolNd):
    """Lp pooling over (N, C, H, W)."""
    _n = 2


class LPPool3d(_LPPoolNd):
    """Lp pooling over (N, C, D, H, W)."""
    _n = 3


class _AdaptivePool(Module):
    _n = 0

    def __init__(self, output_size):
        super().__init__()
        C.optional_ntuple(type(self).__name__, "output_size", output_size, self._n, minimum=1)
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _AdaptiveAvgPoolNd(_AdaptivePool):
    def forward(self, input):
        return getattr(F, f"adaptive_avg_pool{self._n}d")(as_tensor(input), self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Mean over ``output_size`` adaptive bins of (N, C, L): bin i is [floor(iL/O), ceil((i+1)L/O))."""
    _n = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Adaptive mean over (N, C, H, W) to (N, C, *output_size); ``AdaptiveAvgPool2d(1)`` is global pooling.

    >>> AdaptiveAvgPool2d(1)(np.ones((2, 3, 5, 5))).shape
    (2, 3, 1, 1)
    """
    _n = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Adaptive mean over (N, C, D, H, W)."""
    _n = 3


class _AdaptiveMaxPoolNd(_AdaptivePool):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = C.flag(type(self).__name__, "return_indices", return_indices)

    def forward(self, input):
        return getattr(F, f"adaptive_max_pool{self._n}d")(as_tensor(input), self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max over adaptive bins of (N, C, L)."""
    _n = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max over adaptive bins of (N, C, H, W)."""
    _n = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max over adaptive bins of (N, C, D, H, W)."""
    _n = 3


class _MaxUnpoolNd(Module):
    _n = 0

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        op, n = type(self).__name__, self._n
        self.kernel_size = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
        self.stride = C.ntuple(op, "stride", stride if stride is not None else kernel_size, n, minimum=1)
        self.padding = C.ntuple(op, "padding", padding, n, minimum=0)

    def forward(self, input, indices, output_size=None):
        """``indices`` from the matching MaxPool with return_indices=True; output_size as PyTorch."""
        return getattr(F, f"max_unpool{self._n}d")(as_tensor(input), indices, self.kernel_size, self.stride,
                                                   self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of MaxPool1d: values back at their indices, zeros elsewhere.

    Shape: ``L_out = (L - 1)*S - 2P + k`` unless output_size is given.
    """
    _n = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of MaxPool2d; see :class:`MaxUnpool1d`."""
    _n = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of MaxPool3d; see :class:`MaxUnpool1d`."""
    _n = 3


__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool1d", "LPPool2d",
           "LPPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]
