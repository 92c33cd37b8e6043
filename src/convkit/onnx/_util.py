"""Attribute helpers shared by the op modules: ONNX pads and auto_pad to convkit's (lo, hi) pairs."""
from __future__ import annotations

import math
import os

import numpy as np

from .. import shapes

_AUTO_PAD = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def ints(v):
    """An ONNX ints attribute or 1-D int tensor input as a tuple of Python ints (None stays None)."""
    if v is None:
        return None
    return tuple(int(i) for i in np.asarray(v).reshape(-1))


def onnx_pads(pads, n):
    """ONNX [begins..., ends...] -> ((lo, hi), ...); None means no padding."""
    if pads is None:
        return ((0, 0),) * n
    pads = [int(p) for p in pads]
    return tuple((pads[i], pads[i + n]) for i in range(n))


def padding_from(auto_pad, pads, n):
    auto = _s(auto_pad) or "NOTSET"
    if auto in _AUTO_PAD:
        return _AUTO_PAD[auto]
    return onnx_pads(pads, n)


def window(x, kernel_shape, strides, pads, dilations, auto_pad):
    """kernel, stride, explicit (lo, hi) padding and dilation of a pooling node."""
    k = tuple(int(v) for v in kernel_shape)
    n = len(k)
    s = tuple(int(v) for v in strides) if strides else (1,) * n
    d = tuple(int(v) for v in dilations) if dilations else (1,) * n
    pad = padding_from(auto_pad, pads, n)
    if isinstance(pad, str):
        pad = shapes.resolve_padding(pad, x.shape[2:], k, s, d)
    return k, s, pad, d


def _physical_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


MAX_OUTPUT_BYTES = _physical_memory() // 2


def check_output_size(op, shape, dtype):
    """Refuse an output size read from the model's data (pads, sizes, scales, shapes) that could not fit
    in this machine's memory: a corrupt or hostile file must fail cleanly, not exhaust memory."""
    n = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    if any(int(s) < 0 for s in shape) or n > MAX_OUTPUT_BYTES:
        raise ValueError(f"{op}: the output must fit in memory ({MAX_OUTPUT_BYTES / 2**30:.0f} GiB); "
                         f"got shape={tuple(int(s) for s in shape)} ({n / 2**30:.3g} GiB).")
