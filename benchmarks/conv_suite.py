"""Layer suite: convkit vs PyTorch CPU, forward + grad_x + grad_w, interleaved.

    python benchmarks/conv_suite.py [--repeats 7] [--threads 2] [--dtype float32] [--only NAME]
                                    [--autotune] [--both-coretypes] [--floor] [--functional] [--more]

Each repeat times convkit then PyTorch on the same layer, both through autograd (a forward that
keeps what its backward needs, then the backward), so both see the
same machine load, with a pause before each so that neither runs beside the
other's still-spinning threads; the table reports medians, the ratio convkit/PyTorch
(< 1 is faster), GFLOP/s counted as direct convolution (2 * MACs per pass,
three passes) and as a share of the measured SGEMM ceiling (a 2048^3
float32 matrix product through NumPy), the algorithms convkit chose
(forward/backward), and convkit's peak extra memory (tracemalloc) for one
forward+backward. PyTorch is optional: without it only convkit is timed.

--functional times convkit through F.conv and F.conv_vjp instead (the suite's method until
session 11): the forward keeps nothing, so the backward makes its columns anew.

--floor also times, in the same interleaved repeats, each layer's matrix products alone
(benchmarks/_floor.py): forward, input and weight gradient, each in the fastest of the forms
convkit's algorithms compute, operands in place and nothing else. No algorithm built on those
products can take less time; the table adds the floor and its ratio to PyTorch. A stride-1
depthwise layer's floor is its multiply-accumulates' arithmetic alone (one multiply and one add per
tap, one dot per tap for the weight); grouped and strided depthwise layers and pools get none.

--more adds layers beyond the issue's suite (strided depthwise, grouped, dilated at 256 channels) in a
second table, outside the geometric mean.

--both-coretypes runs the suite a second time in a fresh process with the
other OpenBLAS core type (SkylakeX's AVX-512 kernels or Haswell's AVX2 ones:
OPENBLAS_CORETYPE is read only when NumPy loads OpenBLAS).
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))
import convkit  # noqa: E402
import convkit.functional as F  # noqa: E402
from convkit._blas import blas_info  # noqa: E402
from _floor import conv_pass_forms, depthwise_pass_forms, fastest  # noqa: E402
from _timing import interleaved  # noqa: E402

conv_mod = importlib.import_module("convkit.functional.conv")   # which transposed passes run by sub-pixel phases

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # PyTorch is optional
    torch = None

# name, kind, N, C, K, spatial, kernel, stride, padding, dilation, groups
SUITE = [
    ("mnist1 5x5 1->32", "conv", 64, 1, 32, (28, 28), 5, 1, 2, 1, 1),
    ("mnist2 5x5 32->64", "conv", 64, 32, 64, (14, 14), 5, 1, 2, 1, 1),
    ("stem 7x7/2 3->64", "conv", 8, 3, 64, (224, 224), 7, 2, 3, 1, 1),
    ("3x3 64->64 56", "conv", 8, 64, 64, (56, 56), 3, 1, 1, 1, 1),
    ("3x3 256->256 14", "conv", 8, 256, 256, (14, 14), 3, 1, 1, 1, 1),
    ("3x3 512->512 7", "conv", 8, 512, 512, (7, 7), 3, 1, 1, 1, 1),
    ("1x1 192->64 28", "conv", 8, 192, 64, (28, 28), 1, 1, 0, 1, 1),
    ("1x1/2 64->128 56", "conv", 8, 64, 128, (56, 56), 1, 2, 0, 1, 1),
    ("dw3x3 144 56", "conv", 8, 144, 144, (56, 56), 3, 1, 1, 1, 144),
    ("3x3 d2 64->64 56", "conv", 8, 64, 64, (56, 56), 3, 1, 2, 2, 1),
    ("conv1d 64->64 L4096", "conv", 16, 64, 64, (4096,), 3, 1, 1, 1, 1),
    ("conv3d 16->32 16x32x32", "conv", 2, 16, 32, (16, 32, 32), 3, 1, 1, 1, 1),
    ("convT 4/2 64->32 28", "convT", 8, 64, 32, (28, 28), 4, 2, 1, 1, 1),
    ("maxpool 2x2 64x112", "maxpool", 8, 64, 64, (112, 112), 2, 2, 0, 1, 1),
    ("maxpool 3x3/2 64x112", "maxpool", 8, 64, 64, (112, 112), 3, 2, 1, 1, 1),
]

# --more: layers of MobileNets, ResNeXts and dilated networks, beyond the suite
MORE = [
    ("dw3x3/2 96 112", "conv", 8, 96, 96, (112, 112), 3, 2, 1, 1, 96),
    ("dw5x5/2 144 56", "conv", 8, 144, 144, (56, 56), 5, 2, 2, 1, 144),
    ("dw5x5 240 28", "conv", 8, 240, 240, (28, 28), 5, 1, 2, 1, 240),
    ("3x3 g2 64->64 56", "conv", 8, 64, 64, (56, 56), 3, 1, 1, 1, 2),
    ("3x3 g8 128->128 28", "conv", 8, 128, 128, (28, 28), 3, 1, 1, 1, 8),
    ("3x3 g32 128->128 28", "conv", 8, 128, 128, (28, 28), 3, 1, 1, 1, 32),
    ("3x3 d2 256->256 28", "conv", 4, 256, 256, (28, 28), 3, 1, 2, 2, 1),
    ("convT 2/2 128->64 28", "convT", 8, 128, 64, (28, 28), 2, 2, 0, 1, 1),
    ("convT 3/2 64->32 28", "convT", 8, 64, 32, (28, 28), 3, 2, 1, 1, 1),
]


def make(case, dtype, rng):
    name, kind, n, c, k, sp, f, s, p, d, g = case
    x = rng.standard_normal((n, c) + sp).astype(dtype)
    nd = len(sp)
    if kind == "conv":
        w = rng.standard_normal((k, c // g) + (f,) * nd).astype(dtype) * 0.1
        kw = dict(stride=s, padding=p, dilation=d, groups=g)
    elif kind == "convT":
        w = rng.standard_normal((c, k // g) + (f,) * nd).astype(dtype) * 0.1
        kw = dict(stride=s, padding=p, dilation=d, groups=g)
    else:
        w = None
        kw = dict(kernel_size=f, stride=s, padding=p)
    return x, w, kw


def convkit_step(kind, x, w, kw, functional=False):
    """One forward + backward of convkit, through autograd like PyTorch's step (the forward keeps what
    its backward needs: im2col's columns, Winograd's transformed input, max pool's indices), or with
    ``functional`` through F.conv and F.conv_vjp (the backward makes everything anew). Returns the
    output and the gradients (of x, and of w for a convolution) of a sum of the outputs."""
    if functional:
        if kind == "conv":
            y = F.conv(x, w, None, **kw)
            return (y,) + tuple(F.conv_vjp(np.ones_like(y), x, w, None, **kw)[:2])
        if kind == "convT":
            y = F.conv_transpose(x, w, None, **kw)
            return (y,) + tuple(F.conv_transpose_vjp(np.ones_like(y), x, w, None, **kw)[:2])
        # like PyTorch, keep the forward's indices for the backward
        y, idx = F.max_pool(x, **kw, return_indices=True)
        return y, F.max_pool_vjp(np.ones_like(y), x, **kw, indices=idx)
    tx = convkit.Tensor(x, requires_grad=True)
    tw = None if w is None else convkit.Tensor(w, requires_grad=True)
    if kind == "conv":
        y = F.conv(tx, tw, None, **kw)
    elif kind == "convT":
        y = F.conv_transpose(tx, tw, None, **kw)
    else:
        y = F.max_pool(tx, **kw)
    y.backward(np.ones(y.shape, y.dtype))
    return (y.data, tx.grad.data) + (() if tw is None else (tw.grad.data,))


def torch_step(kind, x, w, kw, nd):
    tx = x.requires_grad_()
    if kind == "conv":
        y = getattr(TF, f"conv{nd}d")(tx, w.requires_grad_(), None, **kw)
    elif kind == "convT":
        y = getattr(TF, f"conv_transpose{nd}d")(tx, w.requires_grad_(), None, **kw)
    else:
        y = getattr(TF, f"max_pool{nd}d")(tx, **kw)
    y.backward(torch.ones_like(y))
    tx.grad = None
    if w is not None:
        w.grad = None


def flops(case, x_shape, y_shape):
    name, kind, n, c, k, sp, f, s, p, d, g = case
    if kind == "maxpool":
        return 0
    nd = len(sp)
    out_cells = math.prod(y_shape[2:]) if kind == "conv" else math.prod(x_shape[2:])
    macs = n * out_cells * (k if kind == "conv" else c) * (c // g if kind == "conv" else k // g) * f ** nd
    return 3 * 2 * macs


def sgemm_ceiling(repeats=5, n=2048):
    """GFLOP/s of the best of ``repeats`` n^3 float32 matrix products through NumPy."""
    a = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best = min(_timed(lambda: np.matmul(a, a, out=out)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def algorithms(case, x, w, kw, functional=False):
    """convkit's choice, forward/backward (for a transposed conv: "subpixel" where it runs as the stride-1
    convolution of its output's phases, else the passes of the conv it is the gradient of)."""
    name, kind = case[:2]
    if kind == "maxpool":
        return "-"
    if kind == "conv":
        a = F.conv_algorithms(x.shape, w.shape, **kw)
        return f"{a['forward' if functional else 'forward_autograd']}/{a['backward']}"
    y = F.conv_transpose(x[:1], w, None, **kw)
    a = F.conv_algorithms((x.shape[0],) + y.shape[1:], w.shape, **kw)
    spec = conv_mod._conv_transpose_spec(x, w, None, kw["stride"], kw["padding"], 0, kw["groups"], kw["dilation"],
                                         None, "channels_first")[0]
    fwd = "subpixel" if conv_mod._subpixel_ok(x.shape, w, spec) else a["backward"]
    bwd = "subpixel" if conv_mod._subpixel_ok(x.shape, w, spec, vjp=True) else a["forward"]
    return f"{fwd}/{bwd}"


def layer_floor(case, x, w, kw, rng):
    """(fn, forms): fn runs the layer's forward, input-gradient and weight-gradient products alone, each
    in its fastest form (chosen by a median of 5), and forms names them; (None, "-") for a layer
    without products (max pool, grouped). A transposed convolution's three passes are those of the
    convolution it is the input gradient of, whose products are the same. A stride-1 depthwise layer's
    are its multiply-accumulates' arithmetic (_floor.depthwise_pass_forms)."""
    name, kind, n, c, k, sp, f, s, p, d, g = case
    nd = len(sp)
    depthwise = kind == "conv" and g == c == k and s == 1 and d == 1
    if kind == "maxpool" or (g != 1 and not depthwise):
        return None, "-"
    kernel, strides, dilations = (f,) * nd, (s,) * nd, (d,) * nd
    if kind == "conv":
        out = F.conv(x[:1], w, None, **kw).shape[2:]
        passes = (depthwise_pass_forms(n, c, out, kernel, rng) if depthwise else
                  conv_pass_forms(n, c, k, sp, out, kernel, strides, dilations, rng))
    else:
        passes = conv_pass_forms(n, k, c, F.conv_transpose(x[:1], w, None, **kw).shape[2:], sp, kernel, strides,
                                 dilations, rng)
    chosen = [fastest(passes[name]) for name in ("forward", "grad_x", "grad_w")]
    fns = [fn for _, fn, _ in chosen]
    return (lambda: [fn() for fn in fns]), " + ".join(form for form, _, _ in chosen)


def peak_memory(fn):
    """Peak bytes NumPy allocates during fn, counting the buffers convkit reuses between calls (scratch
    and pooled arrays): they are given back first, so fn makes them anew."""
    convkit.release_memory()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--only", default=None, help="run the layers whose name contains this")
    ap.add_argument("--autotune", action="store_true", help="let convkit measure its algorithms per shape")
    ap.add_argument("--floor", action="store_true", help="also time each layer's matrix products alone")
    ap.add_argument("--functional", action="store_true",
                    help="time convkit through F.conv + F.conv_vjp instead of autograd")
    ap.add_argument("--more", action="store_true", help="then layers beyond the suite, outside the geometric mean")
    ap.add_argument("--both-coretypes", action="store_true",
                    help="then run again in a fresh process with the other OpenBLAS core type")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    if torch is not None:
        torch.set_num_threads(args.threads)
    convkit.set_num_threads(args.threads)
    F.set_autotune(args.autotune)
    core = blas_info()["corename"] or "unknown"
    ceiling = sgemm_ceiling()
    print(f"convkit conv suite, {args.dtype}, {args.repeats} repeats, torch "
          f"{torch.__version__ if torch else 'absent'} at {args.threads} threads"
          + (", autotune" if args.autotune else "") + (", convkit functional" if args.functional else
                                                         ", both through autograd"))
    print(f"OpenBLAS core type {core}"
          + (f" (OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']})" if os.environ.get("OPENBLAS_CORETYPE") else
             " (default)") + f"; SGEMM ceiling {ceiling:.0f} GFLOP/s (2048^3, float32, NumPy)")
    print(f"{'layer':24s} {'convkit ms':>11s} {'torch ms':>9s} {'ratio':>6s} {'GFLOP/s':>8s} {'%ceil':>6s} "
          f"{'peak MiB':>9s}" + (f" {'floor ms':>9s} {'fl/torch':>8s}" if args.floor else "") + "  algorithm")
    ratios, floor_ratios, floor_forms = [], [], []
    for case in SUITE + (MORE if args.more else []):
        if case is MORE[0]:
            print("beyond the suite (not in the geometric mean):")
        if args.only and args.only not in case[0]:
            continue
        kind, nd = case[1], len(case[5])
        if kind == "maxpool" and not hasattr(F, "max_pool"):
            continue
        x, w, kw = make(case, args.dtype, rng)
        tx = torch.from_numpy(x) if torch else None
        tw = torch.from_numpy(w) if (torch and w is not None) else None
        floor, forms = layer_floor(case, x, w, kw, rng) if args.floor else (None, "-")
        runs = {"ours": lambda: convkit_step(kind, x, w, kw, args.functional)}
        if torch:
            runs["theirs"] = lambda: torch_step(kind, tx.detach(), None if tw is None else tw.detach(), kw, nd)
        for fn in list(runs.values()):
            fn()  # warm-up
        if floor is not None:
            runs["floor"] = floor
        times = interleaved(runs, args.repeats)
        ours, theirs, floors = times["ours"], times.get("theirs", []), times.get("floor", [])
        mem = peak_memory(lambda: convkit_step(kind, x, w, kw, args.functional)) / 2**20
        if kind == "conv":
            y_shape = F.conv(x[:1], w, None, **kw).shape
        else:
            y_shape = None
        fl = flops(case, x.shape, y_shape)
        m_ours = statistics.median(ours)
        gf = f"{fl / m_ours / 1e9:8.1f} {100 * fl / m_ours / 1e9 / ceiling:5.0f}%" if fl else f"{'-':>8s} {'-':>6s}"
        alg = algorithms(case, x, w, kw, args.functional)
        m_t = statistics.median(theirs) if torch else None
        fl_cols = ""
        if args.floor:
            m_f = statistics.median(floors) if floors else None
            fl_cols = f" {m_f * 1e3:9.2f}" if m_f is not None else f" {'-':>9s}"
            fl_cols += f" {m_f / m_t:8.2f}" if m_f is not None and m_t else f" {'-':>8s}"
            if m_f is not None:
                floor_forms.append(f"  {case[0]:24s} {forms}")
                if m_t:
                    floor_ratios.append(m_f / m_t)
        if torch:
            if case in SUITE:
                ratios.append(m_ours / m_t)
            peer = f"{m_t * 1e3:9.2f} {m_ours / m_t:6.2f}"
        else:
            peer = f"{'-':>9s} {'-':>6s}"
        print(f"{case[0]:24s} {m_ours * 1e3:11.2f} {peer} {gf} {mem:9.1f}{fl_cols}  {alg}")
        sys.stdout.flush()
    if ratios:
        gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"geometric mean ratio convkit/torch: {gm:.2f}  (worst {max(ratios):.2f})")
    if floor_ratios:
        gm = math.exp(sum(map(math.log, floor_ratios)) / len(floor_ratios))
        print(f"the floor (products, or a depthwise layer's arithmetic, alone) / torch over the {len(floor_ratios)} "
              f"layers with one: geometric mean "
              f"{gm:.2f}, {min(floor_ratios):.2f} to {max(floor_ratios):.2f}")
    if floor_forms:
        print("the floor's forms (forward + grad_x + grad_w):")
        print("\n".join(floor_forms))
    if args.both_coretypes:
        other = "Haswell" if core.lower().startswith("skylake") or core.lower().startswith("cooperlake") \
            or core.lower().startswith("sapphire") else "SkylakeX"
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--both-coretypes"]
        print(f"\n--- again with OPENBLAS_CORETYPE={other} (a fresh process) ---", flush=True)
        subprocess.run([sys.executable, __file__, *rest], env=dict(os.environ, OPENBLAS_CORETYPE=other), check=True)


if __name__ == "__main__":
    main()
