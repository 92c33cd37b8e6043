"""The layers around the convolutions: convkit vs PyTorch, forward + backward through each one's autograd.

    python benchmarks/ops_suite.py [--repeats 7] [--threads 2] [--shape 32,64,56,56] [--only NAME ...]

Batch norm (training), average and max pools, adaptive average pooling, activations, layer and group
norm, softmax and dropout, each on one float32 activation (by default 32x64x56x56, 6.4 M values, as a
ResNet-sized batch). Each repeat runs convkit then PyTorch on the same input after a pause, so both see
the same machine load (benchmarks/_timing.interleaved); the table gives medians and the ratio convkit /
PyTorch (< 1 is faster). Both sides are fed a grad_out made once, so no time goes into making it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))
import convkit  # noqa: E402
import convkit.functional as F  # noqa: E402
from convkit import Tensor  # noqa: E402
from _timing import interleaved  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # PyTorch is optional: then only convkit is timed
    torch = TF = None


def cases(c):
    """name -> (convkit forward on a Tensor, PyTorch forward on a tensor); c channels."""
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)

    def ck_bn(x):
        return F.batch_norm(x, zeros.copy(), ones.copy(), Tensor(ones, requires_grad=True),
                            Tensor(zeros, requires_grad=True), training=True)

    def th_bn(x):
        return TF.batch_norm(x, torch.zeros(c), torch.ones(c), torch.ones(c, requires_grad=True),
                             torch.zeros(c, requires_grad=True), training=True)
    return {
        "batch_norm (training)": (ck_bn, th_bn),
        "avg_pool 2x2": (lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2)),
        "avg_pool 3x3/2 pad 1": (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: TF.avg_pool2d(x, 3, 2, 1)),
        "adaptive_avg_pool 1": (lambda x: F.adaptive_avg_pool2d(x, 1), lambda x: TF.adaptive_avg_pool2d(x, 1)),
        "max_pool 3x3/2 pad 1": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1)),
        "adaptive_max_pool 1": (lambda x: F.adaptive_max_pool2d(x, 1), lambda x: TF.adaptive_max_pool2d(x, 1)),
        "relu": (F.relu, TF.relu if TF else None),
        "gelu": (F.gelu, TF.gelu if TF else None),
        "silu": (F.silu, TF.silu if TF else None),
        "hardswish": (F.hardswish, TF.hardswish if TF else None),
        "sigmoid": (F.sigmoid, torch.sigmoid if torch else None),
        "softplus": (F.softplus, TF.softplus if TF else None),
        "layer_norm (last dim)": (lambda x: F.layer_norm(x, x.shape[-1:]), lambda x: TF.layer_norm(x, x.shape[-1:])),
        "group_norm 8 groups": (lambda x: F.group_norm(x, 8), lambda x: TF.group_norm(x, 8)),
        "softmax (dim 1)": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
        "dropout 0.5": (lambda x: F.dropout(x, 0.5, True), lambda x: TF.dropout(x, 0.5, True)),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shape", default="32,64,56,56", help="the activation's shape, N,C,H,W")
    p.add_argument("--only", nargs="*", help="names (or name prefixes) to run")
    args = p.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    convkit.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    peer = torch.__version__ if torch else "-"
    print(f"ops suite, float32 {'x'.join(map(str, shape))}, forward + backward through autograd, {args.repeats} "
          f"repeats, {args.threads} threads; torch {peer}, convkit {convkit.__version__}")
    print(f"{'op':24s} {'convkit ms':>10s} {'torch ms':>9s} {'ratio':>6s}")
    ratios = []
    for name, (ck, th) in cases(shape[1]).items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        g_ck = {}

        def run_ck():
            xt = Tensor(x, requires_grad=True)
            y = ck(xt)
            if "g" not in g_ck:
                g_ck["g"] = np.ones(y.shape, np.float32)
            y.backward(g_ck["g"])
        runs = {"convkit": run_ck}
        if torch is not None:
            g_th = {}

            def run_th():
                xt = torch.from_numpy(x).requires_grad_()
                y = th(xt)
                if "g" not in g_th:
                    g_th["g"] = torch.ones_like(y)
                y.backward(g_th["g"])
            runs["torch"] = run_th
        for fn in runs.values():
            fn()                                                   # warm up, and make each grad_out
        t = {k: 1e3 * statistics.median(v) for k, v in interleaved(runs, args.repeats).items()}
        line = f"{name:24s} {t['convkit']:10.2f}"
        if torch is not None:
            ratios.append(t["convkit"] / t["torch"])
            line += f" {t['torch']:9.2f} {ratios[-1]:6.2f}"
        print(line, flush=True)
    if ratios:
        print(f"geometric mean ratio convkit/torch: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()
