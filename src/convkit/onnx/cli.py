"""`convkit run`, `convkit inspect` and `convkit export` subcommands."""


def add_commands(sub):
    """Register this module's subcommands on the `convkit` parser's subparsers."""
    _add_import_commands(sub)
    s = sub.add_parser("export", help="write a trained checkpoint as an ONNX model")
    s.add_argument("--checkpoint", required=True, help="a convkit train checkpoint.npz")
    s.add_argument("--out", required=True, help="the .onnx file to write")
    s.add_argument("--opset", type=int, default=17, help="ONNX opset (13 or newer; default 17)")
    s.set_defaults(func=_export)


def _export(args):
    """`convkit export`: the checkpoint's model, traced at its data set's image shape, as an ONNX file."""
    import numpy as np

    from convkit.onnx import export
    from convkit.train.run import DATASETS, load_trained

    net, config = load_trained(args.checkpoint)
    shape = DATASETS[config["dataset"]]["shape"]
    proto = export(net, np.zeros((2, *shape), np.float32), args.out, opset=args.opset)
    print(f"wrote {args.out}: {config['model']} as ONNX opset {args.opset}, {len(proto.graph.node)} nodes; "
          f"input 'input' (batch, {', '.join(map(str, shape))}) float32, scaled as convkit predict scales it, "
          f"output 'output' (batch, classes) logits")
    return 0


# ----------------------------------------------------------------------------- run / inspect (import side)
def _add_import_commands(sub):
    s = sub.add_parser("run", help="run an ONNX model on .npy inputs")
    s.add_argument("model", help="the .onnx file")
    s.add_argument("--input", action="append", required=True, metavar="[NAME=]PATH",
                   help="a .npy array for the model's input (NAME=PATH when it has several; repeat)")
    s.add_argument("--output", help="write the outputs here: .npy (one output) or .npz (all, by name)")
    s.set_defaults(func=_run)
    s = sub.add_parser("inspect", help="an ONNX model's inputs, outputs, opset, ops and layer shapes")
    s.add_argument("model", help="the .onnx file")
    s.add_argument("--shape", action="append", default=[], metavar="NAME=AxBx...",
                   help="the input shape to infer layer shapes with (default: the declared one, 1 for unknown dims)")
    s.add_argument("--no-layers", action="store_true", help="skip the per-node summary")
    s.set_defaults(func=_inspect)


def _read_inputs(sess, specs):
    import numpy as np

    names = [a.name for a in sess.get_inputs()]
    feed = {}
    for k, spec in enumerate(specs):
        name, _, path = spec.partition("=")
        if not path or name not in names:
            name, path = (names[k] if k < len(names) else None), spec
        if name is None:
            raise ValueError(f"run: --input must be given once per model input {names}; got {len(specs)}.")
        feed[name] = np.load(path, allow_pickle=False)
    return feed


def _cast_floats(sess, feed):
    """Float arrays of another precision are cast to the model's float type (a note says so)."""
    import numpy as np

    from .ops_tensor import DTYPES

    for a in sess.get_inputs():
        want = sess._input_types.get(a.name)
        arr = feed.get(a.name)
        dt = DTYPES.get(want)
        if arr is not None and dt is not None and np.dtype(dt).kind == "f" and arr.dtype.kind == "f" \
                and arr.dtype != dt:
            print(f"note: input {a.name!r} cast from {arr.dtype} to {np.dtype(dt)}")
            feed[a.name] = arr.astype(dt)
    return feed


def _describe(name, y):
    import numpy as np

    line = f"{name}: shape {tuple(y.shape)} {y.dtype}"
    if y.size and y.dtype.kind in "fiub":
        line += f"  min {y.min():.6g}  max {y.max():.6g}  mean {y.mean(dtype=np.float64):.6g}"
    if y.ndim == 2 and y.shape[1] > 1 and y.dtype.kind == "f":
        top = np.argmax(y, axis=1)
        line += f"  argmax per row {top[:10].tolist()}{' ...' if len(top) > 10 else ''}"
    return line


def _run(args):
    """`convkit run`: the model's outputs for .npy inputs, printed as a summary and optionally saved."""
    import numpy as np

    from convkit.train.checkpoint import atomic_write

    from . import load

    sess = load(args.model)
    feed = _cast_floats(sess, _read_inputs(sess, args.input))
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, feed)
    for name, y in zip(names, outs):
        print(_describe(name, y))
    if args.output:
        if args.output.endswith(".npz"):
            atomic_write(args.output, lambda f: np.savez(f, **dict(zip(names, outs))))
        elif len(outs) == 1:
            atomic_write(args.output, lambda f: np.save(f, outs[0], allow_pickle=False))
        else:
            raise ValueError(f"run: --output must end in .npz for a model with {len(outs)} outputs; "
                             f"got --output={args.output!r}.")
        print(f"wrote {args.output}")
    return 0


def _shape_arg(spec):
    from convkit.explain.arithmetic import parse_shape

    name, _, dims = spec.partition("=")
    try:
        return name, parse_shape(dims, "inspect", "--shape")
    except ValueError:
        raise ValueError(f"inspect: --shape must be NAME=AxBx...; got --shape={spec!r}.") from None


def _inspect(args):
    """`convkit inspect`: inputs, outputs, opset, op counts and a per-node summary with shapes."""
    import numpy as np

    from ._proto import inline_external_data, read_model
    from .ops_tensor import DTYPES
    from .session import InferenceSession

    model, label, folder = read_model(args.model)
    inline_external_data(model, label, folder)
    sess = InferenceSession(model, label=label)
    n_params = sum(b.data.size for b in sess.buffers())
    print(f"{label}: ir_version {model.ir_version}, producer {model.producer_name or '?'} "
          f"{model.producer_version}".rstrip())
    print("opset   " + ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import))
    print(f"nodes   {len(sess._nodes)}, initializers {len(sess._buffers)} ({n_params:,} values)")
    for title, args_ in (("inputs", sess.get_inputs()), ("outputs", sess.get_outputs())):
        print(title)
        for a in args_:
            print(f"  {a.name}: {a.type} {a.shape}")
    print("ops used")
    for op, n in sess.op_counts().most_common():
        print(f"  {op:<24}{n:>6}")
    if args.no_layers:
        return 0
    given = dict(_shape_arg(s) for s in args.shape)
    feed = {}
    for a in sess.get_inputs():
        shape = given.get(a.name) or tuple(d if isinstance(d, int) and d > 0 else 1 for d in (a.shape or ()))
        feed[a.name] = np.zeros(shape, DTYPES.get(sess._input_types.get(a.name), np.float32))
    try:
        env = sess._execute(sess._check_feed(feed), keep=[o for n in sess._nodes for o in n[4]])
        how = "shapes from a run on zeros of shape " + ", ".join(f"{k} {v.shape}" for k, v in feed.items())
    except ValueError as e:
        env, how = {}, f"no shapes: a run on zeros failed ({e}); give --shape"
    print(f"layers ({how})")
    print(f"  {'#':>4}  {'op':<20}{'name':<28}{'output shape':<24}params")
    for i, name, op, ins, outs, _, _ in sess._nodes:
        name = name or next((o for o in outs if o), '-')
        params = sum(sess._buffers[n].data.size for n in ins if n in sess._buffers)
        shapes = ", ".join(str(tuple(env[o].shape)) if o in env else "?" for o in outs if o)
        print(f"  {i:>4}  {op:<20}{name[:27]:<28}{shapes:<24}{params:,}" if params else
              f"  {i:>4}  {op:<20}{name[:27]:<28}{shapes}")
    return 0
