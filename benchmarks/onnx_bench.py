"""ResNet-18 as an ONNX graph: convkit.onnx vs onnxruntime, batch 1 and 8, interleaved.

    python benchmarks/onnx_bench.py [--repeats 7] [--threads 2] [--batches 1,8] [--bn] [--profile] [--floor] [--whole]

The graph is built with onnx.helper and random weights (He init, so activations stay
sized like a trained net's): torchvision's resnet18 layout at 224x224, convolutions
with bias and batch norm folded in, as torch.onnx.export writes it (``--bn`` keeps
separate BatchNormalization nodes instead). Each repeat runs convkit then onnxruntime
(intra_op_num_threads = --threads) on the same input, so both see the same machine
load; the table reports medians and the ratio convkit / onnxruntime (< 1 is faster).
``--profile`` adds convkit's time per op type and its slowest nodes. ``--whole`` also times, in the same
repeats, a convkit session that never splits a batch into parts (``split_batch=False``).

``--floor`` also times, in the same interleaved repeats, how far matrix products alone can go:
every Conv node's products with their operands already in place and nothing else (no columns
built, no transforms, no other node): the im2col product (the faster of its two orientations),
and, for 3x3 stride-1 layers, Winograd F(4x4, 3x3)'s multiply phase (36 products of
(K, C) @ (C, tiles)) where that is faster. A network whose convolutions are computed by these
products cannot take less time than this.
"""
from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))
import convkit  # noqa: E402
import convkit.onnx  # noqa: E402
from _floor import fastest, forward_forms  # noqa: E402
from _timing import interleaved  # noqa: E402

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.exit("onnx_bench: needs the onnx package (pip install onnx)")
try:
    import onnxruntime as ort
except ImportError:  # onnxruntime is optional: then only convkit is timed
    ort = None


def resnet18(bn=False, seed=0, opset=17):
    """torchvision's resnet18 (BasicBlock, [2, 2, 2, 2]) as an ONNX ModelProto with random weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def tensor(name, a):
        inits.append(numpy_helper.from_array(a.astype(np.float32), name))
        return name

    def conv(x, cin, cout, k, s, name, relu=True):
        w = rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
        pads = [k // 2] * 4
        if bn:
            nodes.append(helper.make_node("Conv", [x, tensor(name + ".w", w)], [name + ".c"], strides=[s, s],
                                          pads=pads, name=name))
            stats = [rng.uniform(0.5, 1.5, cout), rng.normal(0, 0.1, cout), rng.normal(0, 0.1, cout),
                     rng.uniform(0.5, 1.5, cout)]
            nodes.append(helper.make_node("BatchNormalization", [name + ".c"] + [
                tensor(f"{name}.bn{i}", v) for i, v in enumerate(stats)], [name + ".o"], name=name + ".bn"))
        else:
            b = rng.normal(0, 0.1, cout)
            nodes.append(helper.make_node("Conv", [x, tensor(name + ".w", w), tensor(name + ".b", b)],
                                          [name + ".o"], strides=[s, s], pads=pads, name=name))
        if not relu:
            return name + ".o"
        nodes.append(helper.make_node("Relu", [name + ".o"], [name + ".r"]))
        return name + ".r"

    x = conv("input", 3, 64, 7, 2, "conv1")
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    x, cin = "pool", 64
    for stage, cout in enumerate((64, 128, 256, 512), 1):
        for block in range(2):
            s = 2 if stage > 1 and block == 0 else 1
            name = f"layer{stage}.{block}"
            h = conv(x, cin, cout, 3, s, name + ".conv1")
            h = conv(h, cout, cout, 3, 1, name + ".conv2", relu=False)
            short = conv(x, cin, cout, 1, s, name + ".down", relu=False) if (s != 1 or cin != cout) else x
            nodes.append(helper.make_node("Add", [h, short], [name + ".add"]))
            nodes.append(helper.make_node("Relu", [name + ".add"], [name + ".out"]))
            x, cin = name + ".out", cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    fc = rng.standard_normal((1000, 512)) / np.sqrt(512)
    nodes.append(helper.make_node("Gemm", ["flat", tensor("fc.w", fc), tensor("fc.b", np.zeros(1000))],
                                  ["logits"], transB=1, name="fc"))
    graph = helper.make_graph(nodes, "resnet18", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what opset 17 needs, and what older onnxruntime builds read
    return model


def run_wrapped(sess, x, wrap):
    """One run of ``sess`` on ``x`` with each node's function replaced by ``wrap(fn, i, name, op, attrs)``;
    the session's own nodes are put back afterwards."""
    saved = sess._nodes
    sess._nodes = [(i, name, op, ins, outs, wrap(fn, i, name, op, attrs), attrs)
                   for (i, name, op, ins, outs, fn, attrs) in saved]
    try:
        sess.run(None, {"input": x})
    finally:
        sess._nodes = saved


def profile(sess, x):
    """convkit's time per op type and its slowest nodes, for one run (a batch run in parts: summed over the
    parts, which run side by side, and each part's nodes listed apart)."""
    per_op, per_node = collections.Counter(), []

    def wrap(fn, i, name, op, attrs):
        def timed(*a, **k):
            t0 = time.perf_counter()
            r = fn(*a, **k)
            dt = time.perf_counter() - t0
            per_op[op] += dt
            per_node.append((dt, i, name, op, tuple(a[0].shape)))
            return r
        return timed

    run_wrapped(sess, x, wrap)
    total = sum(per_op.values())
    print(f"  convkit per op type (total {total * 1e3:.1f} ms):", ", ".join(
        f"{op} {t * 1e3:.1f} ms ({100 * t / total:.0f}%)" for op, t in per_op.most_common()))
    for dt, i, name, op, shape in sorted(per_node, reverse=True)[:6]:
        print(f"    node {i:3d} {name:24s} {op:10s} in {shape}: {dt * 1e3:.1f} ms")


def conv_shapes(sess, x):
    """(input shape, weight shape, strides) of every Conv node, from one run of ``sess``."""
    found = []

    def wrap(fn, i, name, op, attrs):
        if op != "Conv":
            return fn

        def record(*a, **k):
            found.append((a[0].shape, a[1].shape, tuple(attrs.get("strides") or (1, 1))))
            return fn(*a, **k)
        return record

    run_wrapped(sess, x, wrap)
    return found


def products_floor(shapes, rng):
    """One callable that runs every layer's products in turn, each in its faster form (chosen by a
    median of 5 beforehand), and a line per layer saying which form and its time. Each layer is padded
    by kernel // 2 on every side, as every Conv node of resnet18() is."""
    steps, lines = [], []
    for (n, c, h, w_), (k, _, kh, kw), (sh, sw) in shapes:
        out = convkit.shapes.conv_output_shape((h, w_), (kh, kw), (sh, sw), (kh // 2, kw // 2))
        best, fn, seconds = fastest(forward_forms(n, c, k, out, (kh, kw), (sh, sw), (1, 1), rng))
        steps.append(fn)
        lines.append(f"    {c:3d}->{k:3d} {kh}x{kw}/{sh} at {h}x{w_}: {best} {seconds * 1e3:.2f} ms")
    return (lambda: [f() for f in steps]), lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--bn", action="store_true", help="separate BatchNormalization nodes (not folded)")
    ap.add_argument("--profile", action="store_true", help="convkit's time per op type and slowest nodes")
    ap.add_argument("--floor", action="store_true", help="also time the convolutions' matrix products alone")
    ap.add_argument("--whole", action="store_true", help="also time convkit with every batch run whole")
    args = ap.parse_args(argv)
    convkit.set_num_threads(args.threads)
    model = resnet18(bn=args.bn)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    ours = convkit.onnx.load(data)
    # a session that never splits a batch: timed with --whole; the floor takes the whole batch's shapes from it
    whole = convkit.onnx.load(data, split_batch=False) if args.whole or args.floor else None
    theirs = None
    if ort is not None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        theirs = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    print(f"resnet18 ({'conv + BatchNormalization' if args.bn else 'BN folded into conv'}), float32 224x224, "
          f"{args.repeats} repeats, {args.threads} threads; onnxruntime "
          f"{ort.__version__ if ort else 'absent'}, convkit {convkit.__version__}")
    print(f"{'batch':>5s} {'convkit ms':>11s} {'onnxruntime ms':>15s} {'ratio':>6s} {'max rel diff':>13s}")
    for n in (int(b) for b in args.batches.split(",")):
        x = np.random.default_rng(n).standard_normal((n, 3, 224, 224)).astype(np.float32)
        a = ours.run(None, {"input": x})[0]  # warm-up, and the answers compared
        diff = float("nan")
        if theirs is not None:
            b = theirs.run(None, {"input": x})[0]
            diff = float(np.abs(a - b).max() / np.abs(b).max())
        floor, floor_lines = None, []
        if args.floor:
            floor, floor_lines = products_floor(conv_shapes(whole, x), np.random.default_rng(0))
        runs = {"ours": lambda: ours.run(None, {"input": x})}
        if theirs is not None:
            runs["theirs"] = lambda: theirs.run(None, {"input": x})
        if floor is not None:
            runs["floor"] = floor
        if args.whole:
            whole.run(None, {"input": x})
            runs["whole"] = lambda: whole.run(None, {"input": x})
        times = interleaved(runs, args.repeats)
        t_ours, t_theirs, t_floor = times["ours"], times.get("theirs", []), times.get("floor", [])
        m = statistics.median(t_ours)
        if theirs is not None:
            mt = statistics.median(t_theirs)
            print(f"{n:5d} {m * 1e3:11.1f} {mt * 1e3:15.1f} {m / mt:6.2f} {diff:13.1e}")
        else:
            print(f"{n:5d} {m * 1e3:11.1f} {'-':>15s} {'-':>6s} {'-':>13s}")
        if args.whole:
            mw = statistics.median(times["whole"])
            line = f"      convkit with the batch run whole: {mw * 1e3:.1f} ms (parts / whole {m / mw:.2f})"
            print(line + (f" = {mw / mt:.2f} x onnxruntime" if theirs is not None else ""))
        if floor is not None:
            mf = statistics.median(t_floor)
            line = f"      products alone (the floor): {mf * 1e3:.1f} ms"
            if theirs is not None:
                line += f" = {mf / mt:.2f} x onnxruntime"
            print(line)
            print("\n".join(floor_lines))
        if args.profile:
            profile(ours, x)


if __name__ == "__main__":
    main()
