"""Pictures for learners: the sliding kernel, a model's filters and feature maps, training curves.

matplotlib is an optional extra (``pip install "convkit[plot]"``); it is
imported only when a picture is drawn, with the Agg backend and without
pyplot (so no global state and no windows). GIFs are written with Pillow,
which matplotlib itself requires.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure`
whose axes are the panels; :func:`save_figure` writes one atomically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as C
from .. import shapes

PLOT_HINT = "pictures need matplotlib: pip install 'convkit[plot]'"

# cell colours (RGB in [0, 1])
_INPUT, _PAD, _ZERO = (0.60, 0.78, 0.95), (0.93, 0.93, 0.93), (1.0, 1.0, 1.0)
_WINDOW, _OUT, _DONE, _NOW = (0.98, 0.55, 0.20), (0.88, 0.95, 0.88), (0.45, 0.75, 0.55), (0.10, 0.50, 0.25)


def _figure(figsize):
    """A new Agg-backed Figure (ImportError with the install hint when matplotlib is missing)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(PLOT_HINT) from e
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=100):
    """Write ``fig`` as a PNG to ``path``, atomically."""
    from ..train.checkpoint import atomic_write

    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=dpi))
    return Path(path)


# ---------------------------------------------------------------- the sliding kernel
@dataclass
class Slide:
    """Geometry of a kernel sliding over a (padded) input grid onto an output grid, 2-d.

    ``roles`` marks each cell of the grid the kernel slides over: 0 input,
    1 padding, 2 a zero inserted between input cells (transposed convolution).
    ``frames[i]`` is (output cell, grid cells under the kernel).
    """

    roles: np.ndarray
    out_shape: tuple
    frames: list
    title: str


def slide(input_size, kernel_size, stride=1, padding=0, dilation=1, *, transposed=False, output_padding=0,
          ceil_mode=False):
    """The :class:`Slide` of a 1-d or 2-d convolution, or of a transposed one as the
    equivalent stride-1 convolution over the input with zeros inserted (the picture in
    Dumoulin and Visin's convolution-arithmetic guide). ``ceil_mode`` (pooling) adds the
    cells a last, partly outside window reaches as padding.

    >>> s = slide((5, 5), 3, stride=2, padding=1)
    >>> s.roles.shape, s.out_shape, len(s.frames)
    ((7, 7), (3, 3), 9)
    """
    op = "explain animate"
    size = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    if len(size) not in (1, 2):
        raise ValueError(f"{op}: pictures need 1 or 2 spatial dims; got input size {size}.")
    n = len(size)
    ks = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    st = C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    if transposed:
        pads = C.padding_arg(op, padding, n, allow_strings=False)
        opad = C.ntuple(op, "output_padding", output_padding, n, minimum=0)
        out = shapes.conv_transpose_output_shape(size, ks, st, pads, opad, dl, op=op)
        edge = [(d * (f - 1) - lo, d * (f - 1) - hi + o) for f, d, (lo, hi), o in zip(ks, dl, pads, opad)]
        if any(a < 0 or b < 0 for a, b in edge):
            raise ValueError(f"{op}: a transposed picture needs padding <= D*(F-1) on each side; got "
                             f"padding={pads} for kernel {ks}, dilation {dl}.")
        inner = tuple((w - 1) * s + 1 for w, s in zip(size, st))
        roles = np.full(tuple(i + a + b for i, (a, b) in zip(inner, edge)), 1, np.int8)
        core = tuple(slice(a, a + i) for (a, _), i in zip(edge, inner))
        roles[core] = 2
        roles[tuple(slice(a, a + i, s) for (a, _), i, s in zip(edge, inner, st))] = 0
        step = (1,) * n
        title = (f"transposed conv: input {'x'.join(map(str, size))}, kernel {'x'.join(map(str, ks))}, "
                 f"stride {'x'.join(map(str, st))} (zeros inserted), padding {pads}")
    else:
        pads = shapes.resolve_padding(padding, size, ks, st, dl, op=op)
        if ceil_mode:
            out = shapes.pool_output_shape(size, ks, st, pads, dl, ceil_mode=True, op=op)
            reach = [(o - 1) * s + d * (f - 1) + 1 for o, s, d, f in zip(out, st, dl, ks)]
            pads = tuple((lo, max(hi, r - w - lo)) for (lo, hi), r, w in zip(pads, reach, size))
        else:
            out = shapes.conv_output_shape(size, ks, st, pads, dl, op=op)
        roles = np.ones(shapes.padded_shape(size, pads), np.int8)
        roles[tuple(slice(lo, lo + w) for (lo, _), w in zip(pads, size))] = 0
        step = st
        title = (f"conv: input {'x'.join(map(str, size))}, kernel {'x'.join(map(str, ks))}, "
                 f"stride {'x'.join(map(str, st))}, padding {pads}"
                 + (f", dilation {'x'.join(map(str, dl))}" if any(d > 1 for d in dl) else ""))
    if n == 1:  # draw 1-d as one row
        roles, out, ks, step, dl = roles[None], (1, out[0]), (1, ks[0]), (1, step[0]), (1, dl[0])
    frames = []
    for oi in range(out[0]):
        for oj in range(out[1]):
            cells = [(oi * step[0] + a * dl[0], oj * step[1] + b * dl[1]) for a in range(ks[0]) for b in range(ks[1])]
            frames.append(((oi, oj), cells))
    return Slide(roles, tuple(out), frames, title)


def _grid_image(s, upto):
    """RGB images of the input grid and the output grid at frame ``upto``."""
    colours = np.array([_INPUT, _PAD, _ZERO])
    grid = colours[s.roles]
    (oi, oj), cells = s.frames[upto]
    for r, c in cells:
        grid[r, c] = _WINDOW
    outg = np.empty(s.out_shape + (3,))
    outg[:] = _OUT
    for (pi, pj), _ in s.frames[:upto]:
        outg[pi, pj] = _DONE
    outg[oi, oj] = _NOW
    return grid, outg


def _draw_grid(ax, img, label):
    ax.imshow(img, interpolation="nearest")
    h, w = img.shape[:2]
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="0.35", linewidth=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(label, fontsize=8)


def _frame_indices(s, max_frames):
    n = len(s.frames)
    if n <= max_frames:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_frames - 1)) for i in range(max_frames)})


def slide_strip_figure(s, max_frames=16, columns=8):
    """A PNG strip: for each shown frame an input panel above an output panel (2 axes per frame)."""
    idx = _frame_indices(s, max_frames)
    cols = min(columns, len(idx))
    rows = 2 * math.ceil(len(idx) / cols)
    fig = _figure((1.6 * cols, 1.7 * rows))
    for i, f in enumerate(idx):
        r, c = divmod(i, cols)
        grid, outg = _grid_image(s, f)
        _draw_grid(fig.add_subplot(rows, cols, 2 * r * cols + c + 1), grid, f"step {f + 1}: input")
        _draw_grid(fig.add_subplot(rows, cols, (2 * r + 1) * cols + c + 1), outg, f"output {s.frames[f][0]}")
    fig.suptitle(s.title, fontsize=9)
    fig.tight_layout()
    return fig


def slide_gif_frames(s, max_frames=64):
    """The animation as a list of RGB uint8 arrays, one per shown output cell."""
    fig = _figure((6.4, 3.4))
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    grid, outg = _grid_image(s, 0)
    _draw_grid(a, grid, "input (grey: padding" + (", white: inserted zeros)" if (s.roles == 2).any() else ")"))
    _draw_grid(b, outg, "output")
    ia, ib = a.images[0], b.images[0]
    fig.suptitle(s.title, fontsize=8)
    frames = []
    for f in _frame_indices(s, max_frames):
        grid, outg = _grid_image(s, f)
        ia.set_data(grid)
        ib.set_data(outg)
        b.set_title(f"output cell {s.frames[f][0]}", fontsize=8)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    return frames


def write_gif(path, frames, ms_per_frame=600):
    """Write RGB frames as a looping GIF (with Pillow, which matplotlib installs), atomically."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("GIF pictures need Pillow (pip install pillow); or ask for a .png strip") from e
    from ..train.checkpoint import atomic_write

    images = [Image.fromarray(f) for f in frames]
    atomic_write(Path(path), lambda fh: images[0].save(fh, format="GIF", save_all=True, append_images=images[1:],
                                                      duration=ms_per_frame, loop=0))
    return Path(path)


def animate(path, input_size, kernel_size, stride=1, padding=0, dilation=1, *, transposed=False, output_padding=0,
            ceil_mode=False, max_frames=64):
    """Draw the kernel sliding over the input onto the output: a GIF for ``*.gif``, else a PNG strip
    (at most 16 steps). Returns the number of frames (GIF) or steps (strip) drawn."""
    s = slide(input_size, kernel_size, stride, padding, dilation, transposed=transposed,
              output_padding=output_padding, ceil_mode=ceil_mode)
    if str(path).lower().endswith(".gif"):
        frames = slide_gif_frames(s, max_frames)
        write_gif(path, frames)
        return len(frames)
    fig = slide_strip_figure(s, min(max_frames, 16))
    save_figure(fig, path)
    return len(fig.axes) // 2


# ---------------------------------------------------------------- models
def _normalise(a):
    a = np.asarray(a, np.float64)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def filters_figure(weight, max_filters=64, title="filters"):
    """One panel per filter of a conv weight (K, C, kH, kW): RGB when C == 3, else channel 0 in grey."""
    w = np.asarray(weight)
    if w.ndim != 4:
        raise ValueError(f"show filters: weight must be (K, C, kH, kW) of a 2-d conv; got weight.shape={w.shape}.")
    k = min(w.shape[0], max_filters)
    cols = min(8, k)
    rows = math.ceil(k / cols)
    fig = _figure((1.2 * cols, 1.2 * rows + 0.5))
    for i in range(k):
        ax = fig.add_subplot(rows, cols, i + 1)
        if w.shape[1] == 3:
            ax.imshow(_normalise(w[i].transpose(1, 2, 0)), interpolation="nearest")
        else:
            ax.imshow(w[i, 0], cmap="gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(i), fontsize=7)
    chan = "" if w.shape[1] in (1, 3) else f" (input channel 0 of {w.shape[1]})"
    fig.suptitle(f"{title}: {w.shape[0]} filters of {w.shape[2]}x{w.shape[3]}{chan}", fontsize=9)
    fig.tight_layout()
    return fig


def conv_layers(net):
    """(name, module) of every convolution in ``net``, in registration order."""
    return [(name, m) for name, m in net.named_modules() if type(m).__name__.startswith("Conv")]


def feature_maps(net, x):
    """(name, output array (K, H, W)) of each conv layer for one input x (C, H, W) or (1, C, H, W)."""
    from ..autograd import Tensor, no_grad

    x = np.asarray(x, np.float32)
    x = x[None] if x.ndim == 3 else x
    maps, handles = [], []
    for name, m in conv_layers(net):
        def hook(mod, inputs, out, name=name):
            maps.append((name, np.asarray(out.data if hasattr(out, "data") else out)[0]))
        handles.append(m.register_forward_hook(hook))
    was = net.training
    net.eval()
    try:
        with no_grad():
            net(Tensor(x[:1]))
    finally:
        net.train(was)
        for h in handles:
            h.remove()
    return maps


def activations_figure(image, maps, max_maps=8):
    """The input image in the first panel, then one row per conv layer with its first ``max_maps`` maps."""
    rows = 1 + len(maps)
    cols = max(1, min(max_maps, max((m.shape[0] for _, m in maps), default=1)))
    fig = _figure((1.3 * cols + 1.2, 1.35 * rows + 0.4))
    img = np.asarray(image, np.float64)
    img = img[0] if img.ndim == 4 else img
    ax = fig.add_subplot(rows, cols, 1)
    ax.imshow(_normalise(img.transpose(1, 2, 0)) if img.shape[0] == 3 else img[0], cmap="gray",
              interpolation="nearest")
    ax.set_title("input", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    for r, (name, m) in enumerate(maps, start=1):
        for j in range(min(max_maps, m.shape[0])):
            ax = fig.add_subplot(rows, cols, r * cols + j + 1)
            ax.imshow(m[j], cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{name}\n{m.shape[1]}x{m.shape[2]}", fontsize=7)
            ax.set_title(f"{j}", fontsize=6)
    fig.suptitle("feature maps of each conv layer (first maps of each)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- training
def curves_figure(history):
    """Loss and accuracy per epoch from ``metrics.json``'s "epochs" list: two panels."""
    if not history:
        raise ValueError("show curves: the metrics must hold at least one epoch; got none.")
    fig = _figure((9, 3.5))
    a, b = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ep = [h["epoch"] for h in history]
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    b.plot(ep, [h["train_accuracy"] for h in history], "o-", label="train")
    if history[0].get("test_loss") is not None:
        a.plot(ep, [h["test_loss"] for h in history], "s-", label="test")
        b.plot(ep, [h["test_accuracy"] for h in history], "s-", label="test")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_curves(history, path):
    """Loss and accuracy per epoch into ``path`` (PNG); returns False when matplotlib is missing
    (or there is no epoch to draw)."""
    if not history:
        return False
    try:
        fig = curves_figure(history)
    except ImportError:
        return False
    save_figure(fig, path)
    return True
