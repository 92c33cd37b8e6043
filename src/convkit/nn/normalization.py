"""Normalisation layers, as ``torch.nn``: BatchNorm, InstanceNorm, LayerNorm, GroupNorm, LocalResponseNorm.

Parameter and buffer names, shapes, initial values and state_dict keys are
PyTorch's (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``). Batch statistics in training, running statistics
in eval mode; the running statistics are updated in place by the forward
(see :func:`convkit.functional.batch_norm`).
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .. import _checks as C
from .. import functional as F
from ..autograd import Tensor, as_tensor
from .conv import _float_dtype
from .module import Module, Parameter


def _affine(module, enabled, bias, shape, dt):
    """Register ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or None for those turned off."""
    module.register_parameter("weight", Parameter(np.ones(shape, dt)) if enabled else None)
    module.register_parameter("bias", Parameter(np.zeros(shape, dt)) if enabled and bias else None)


def _reset_affine(module):
    if module.weight is not None:
        module.weight.data[...] = 1
    if module.bias is not None:
        module.bias.data[...] = 0


class _NormBase(Module):
    """num_features channels with optional affine weight/bias and running statistics.

    ``bias=False`` (keyword, PyTorch 2.x) keeps the weight but drops the bias when affine.
    """

    _ranks = ()         # accepted input ndims
    _shape = ""         # how the ranks read, for errors

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True,
                 dtype=None):
        super().__init__()
        op = type(self).__name__
        self.num_features = C.as_int(op, "num_features", num_features, minimum=1)
        self.eps = C.eps(op, eps)
        if momentum is not None:
            momentum = C.real_number(op, "momentum", momentum)
            if not 0 <= momentum <= 1:
                C.fail(op, "momentum", "in [0, 1] or None (cumulative average)", momentum)
        self.momentum = momentum
        self.affine = C.flag(op, "affine", affine)
        self.track_running_stats = C.flag(op, "track_running_stats", track_running_stats)
        C.flag(op, "bias", bias)
        dt = _float_dtype(op, dtype)
        _affine(self, self.affine, bias, self.num_features, dt)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dt)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input(self, x):
        op = type(self).__name__
        if x.ndim not in self._ranks:
            C.fail(op, "input.ndim", f"{' or '.join(map(str, self._ranks))} for {self._shape}", x.ndim)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input):
        x = as_tensor(input)
        self._check_input(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input.shape[1] must equal num_features={self.num_features}; "
                             f"got input.shape={x.shape}.")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average, as PyTorch
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) per channel C = num_features.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``: batch statistics in
    training (running_mean/var updated with ``momentum``; None gives the
    cumulative average over num_batches_tracked), running statistics in eval.

    Shape: (N, C) or (N, C, L), unchanged.

    >>> BatchNorm1d(3)(np.random.default_rng(0).normal(size=(4, 3))).shape
    (4, 3)
    """
    _ranks, _shape = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) per channel; see :class:`BatchNorm1d`.

    >>> BatchNorm2d(8)
    BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """
    _ranks, _shape = (4,), "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) per channel; see :class:`BatchNorm1d`."""
    _ranks, _shape = (5,), "(N, C, D, H, W)"


class _InstanceNorm(_NormBase):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, *,
                 bias=True, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias, dtype=dtype)

    def forward(self, input):
        op = type(self).__name__
        x = as_tensor(input)
        self._check_input(x)
        shape = x.shape
        unbatched = x.ndim == self._ranks[0]
        if unbatched:
            x = x.unsqueeze(0)
        if x.shape[1] != self.num_features:
            msg = (f"{op}: input channels (dim {0 if unbatched else 1}) must equal num_features={self.num_features}; "
                   f"got input.shape={shape}.")
            if self.affine or self.track_running_stats:
                raise ValueError(msg)
            warnings.warn(msg + " (Without affine or running stats the layer still works; as PyTorch, "
                          "this only warns.)", UserWarning, stacklevel=2)
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats,
                            self.momentum if self.momentum is not None else 0.0, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L): each (sample, channel) over L.

    affine=False and track_running_stats=False by default, as PyTorch; with
    track_running_stats, eval mode uses the running statistics.
    """
    _ranks, _shape = (2, 3), "(C, L) or (N, C, L)"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W); see :class:`InstanceNorm1d`."""
    _ranks, _shape = (3, 4), "(C, H, W) or (N, C, H, W)"


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W); see :class:`InstanceNorm1d`."""
    _ranks, _shape = (4, 5), "(C, D, H, W) or (N, C, D, H, W)"


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` dims.

    Parameters: ``weight`` (ones) and ``bias`` (zeros) of shape normalized_shape
    when elementwise_affine (bias only when ``bias=True``).

    Shape: (*, *normalized_shape), unchanged.

    >>> LayerNorm(4)
    LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, *, dtype=None):
        super().__init__()
        op = "LayerNorm"
        if isinstance(normalized_shape, (numbers.Integral, np.integer)) and not isinstance(normalized_shape, bool):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
            raise TypeError(f"{op}: normalized_shape must be an int or a non-empty sequence of ints; "
                            f"got normalized_shape={normalized_shape!r}.")
        self.normalized_shape = C.ntuple(op, "normalized_shape", tuple(normalized_shape), len(normalized_shape),
                                         minimum=1)
        self.eps = C.eps(op, eps)
        self.elementwise_affine = C.flag(op, "elementwise_affine", elementwise_affine)
        C.flag(op, "bias", bias)
        dt = _float_dtype(op, dtype)
        _affine(self, self.elementwise_affine, bias, self.normalized_shape, dt)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(as_tensor(input), self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Split the channels of (N, C, *) into num_groups groups and normalise each over its channels and
    spatial dims; per-channel ``weight`` (ones) and ``bias`` (zeros) when affine.

    Shape: (N, C, *), unchanged; num_groups divides C = num_channels.

    >>> GroupNorm(2, 4)(np.ones((1, 4, 3))).shape
    (1, 4, 3)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True, dtype=None):
        super().__init__()
        op = "GroupNorm"
        self.num_groups = C.as_int(op, "num_groups", num_groups, minimum=1)
        self.num_channels = C.as_int(op, "num_channels", num_channels, minimum=1)
        if self.num_channels % self.num_groups:
            raise ValueError(f"{op}: num_groups must divide num_channels; got num_channels={self.num_channels}, "
                             f"num_groups={self.num_groups}.")
        self.eps = C.eps(op, eps)
        self.affine = C.flag(op, "affine", affine)
        C.flag(op, "bias", bias)
        dt = _float_dtype(op, dtype)
        _affine(self, self.affine, bias, self.num_channels, dt)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        x = as_tensor(input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: input.shape must be (N, {self.num_channels}, *) for "
                             f"num_channels={self.num_channels}; got input.shape={x.shape}.")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalisation across channels (AlexNet):
    ``y[c] = x[c] / (k + alpha/size * sum(x[c']**2 over the size-window around c))**beta``.

    Shape: (N, C, *spatial), unchanged.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        op = "LocalResponseNorm"
        self.size = C.as_int(op, "size", size, minimum=1)
        self.alpha = C.real_number(op, "alpha", alpha)
        self.beta = C.real_number(op, "beta", beta)
        self.k = C.real_number(op, "k", k)

    def forward(self, input):
        return F.local_response_norm(as_tensor(input), self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
           "LayerNorm", "GroupNorm", "LocalResponseNorm"]
