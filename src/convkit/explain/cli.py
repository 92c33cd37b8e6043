"""`convkit explain ...` and `convkit show ...` subcommands.

Nothing heavy is imported until a command runs. Bad arguments raise
ValueError (one line on stderr, exit 2, from convkit.cli); a missing
matplotlib is the same one line and exit 2.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

PADDING_HELP = "an int, ints per dim as 1x2, (lo, hi) pairs per dim as 0:1x1:0, or same, valid, same_lower"


# ---------------------------------------------------------------- argument parsing
def _split(text):
    return str(text).strip().strip("[]()").lower().replace(",", "x").split("x")


def int_or_ints(text, flag="--kernel-size"):
    """"3" -> 3; "3x3" or "3,3" -> (3, 3)."""
    parts = _split(text)
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"explain: {flag} must be an int or ints joined by x, as 3 or 3x3; got {flag}={text!r}.") \
            from None
    return vals[0] if len(vals) == 1 and "x" not in str(text).lower() and "," not in str(text) else vals


def padding_value(text):
    """"same" -> "same"; "1" -> 1; "1x2" -> (1, 2); "0:1x1:0" -> ((0, 1), (1, 0))."""
    t = str(text).strip().lower()
    if t.isalpha() or "_" in t:
        return t
    try:
        if ":" in t:
            return tuple(tuple(int(v) for v in p.split(":")) for p in _split(t))
        return int_or_ints(t, "--padding")
    except ValueError:
        raise ValueError(f"explain: --padding must be {PADDING_HELP}; got --padding={text!r}.") from None


def index_value(text):
    """"0,0,1", "0x0x1" or "[0, 0, 1]" -> (0, 0, 1)."""
    try:
        return tuple(int(p) for p in _split(text))
    except ValueError:
        raise ValueError(f"explain element: --at must be output indices joined by ',', as 0,0,0; "
                         f"got --at={text!r}.") from None


def array_value(text, flag):
    """A JSON list literal, or the path of a .npy file (loaded without pickle)."""
    import numpy as np

    t = str(text).strip()
    if t.endswith(".npy"):
        if not Path(t).is_file():
            raise FileNotFoundError(f"explain: {flag} must be a JSON list or an existing .npy file; got '{t}'.")
        return np.load(t, allow_pickle=False)
    try:
        return np.asarray(json.loads(t), dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"explain: {flag} must be a JSON list literal such as [[1, 2], [3, 4]] or a .npy path; "
                         f"got {flag}={text!r}.") from None


def _conv_options(s, strings=True, strict=True):
    s.add_argument("--stride", default=1, help="an int or ints per dim (2x1)")
    s.add_argument("--padding", default=0, help=PADDING_HELP if strings else
                   "an int, ints per dim, or lo:hi pairs per dim")
    s.add_argument("--dilation", default=1)
    if strict:
        s.add_argument("--strict", action="store_true",
                       help="an output size that is not a whole number is an error showing the arithmetic")
    s.add_argument("--data-format", default="channels_first", choices=["channels_first", "channels_last"])


def _shape_options(s, channels=True):
    s.add_argument("--input", required=True, help="N x C x spatial or C x spatial, as 1x192x28x28 or 1,192,28,28 "
                   "(with an int --kernel-size, 3 numbers are C,H,W and 4 are N,C,H,W)")
    if channels:
        s.add_argument("--out-channels", type=int, required=True, help="K, the number of filters")
    s.add_argument("--kernel-size", required=True, help="F, or F per dim as 3x3")
    s.add_argument("--spatial-dims", type=int, default=None, help="1, 2 or 3: how many of the sizes are spatial")
    s.add_argument("--animate", default=None, metavar="OUT.gif|OUT.png",
                   help="draw the kernel sliding over the input (GIF, or a PNG strip); needs matplotlib")


def add_commands(sub):
    """Register this module's subcommands on the `convkit` parser's subparsers."""
    e = sub.add_parser("explain", help="shapes, weights, costs and arithmetic of a layer, with your numbers")
    es = e.add_subparsers(dest="what", required=True)

    s = es.add_parser("conv", help="output size, weight shapes, parameters, MACs, im2col, receptive field")
    _shape_options(s)
    _conv_options(s)
    s.add_argument("--groups", type=int, default=1)
    s.add_argument("--no-bias", action="store_true")
    s.set_defaults(func=_explain_conv)

    s = es.add_parser("conv-transpose", help="the same for a transposed convolution")
    _shape_options(s)
    _conv_options(s, strings=False, strict=False)
    s.add_argument("--output-padding", default=0)
    s.add_argument("--groups", type=int, default=1)
    s.add_argument("--no-bias", action="store_true")
    s.set_defaults(func=_explain_conv_transpose)

    s = es.add_parser("pool", help="the same for max or average pooling")
    _shape_options(s, channels=False)
    _conv_options(s)
    s.set_defaults(stride=None)
    s.add_argument("--kind", default="max", choices=["max", "avg"])
    s.add_argument("--ceil-mode", action="store_true")
    s.set_defaults(func=_explain_pool)

    s = es.add_parser("element", help="how one output value is computed, term by term")
    s.add_argument("--x", required=True, help="input: JSON list, as [[[1,2],[3,4]]], or a .npy path")
    s.add_argument("--w", required=True, help="weight (K, C/G, *kernel): JSON list or .npy path")
    s.add_argument("--b", default=None, help="bias (K,): JSON list or .npy path")
    s.add_argument("--at", required=True, help="output index, as 0,0,0")
    _conv_options(s, strict=False)
    s.add_argument("--groups", type=int, default=1)
    s.set_defaults(func=_explain_element)

    s = es.add_parser("backward", help="grad_x and grad_w of a convolution built by hand, checked")
    s.add_argument("--input", default="1x1x5x5", help="shape of a random integer x (default 1x1x5x5)")
    s.add_argument("--kernel-size", default=3)
    s.add_argument("--out-channels", type=int, default=1)
    s.add_argument("--x", default=None, help="the input instead: JSON list or .npy path")
    s.add_argument("--w", default=None, help="the weight instead: JSON list or .npy path")
    s.add_argument("--grad-out", default=None, help="dL/dy instead: JSON list or .npy path")
    s.add_argument("--stride", default=1)
    s.add_argument("--padding", default=0, help=PADDING_HELP)
    s.add_argument("--dilation", default=1)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_explain_backward)

    w = sub.add_parser("show", help="pictures: filters, feature maps, training curves (needs matplotlib)")
    ws = w.add_subparsers(dest="what", required=True)
    s = ws.add_parser("filters", help="the filters of a trained model's conv layer as an image grid")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--layer", default=None, help="the conv layer's name (default: the first conv)")
    s.add_argument("--max-filters", type=int, default=64)
    s.add_argument("--out", default="filters.png")
    s.set_defaults(func=_show_filters)
    s = ws.add_parser("activations", help="the feature maps of one image through every conv layer")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--image", required=True, help="a PNG, PGM/PPM or .npy image the model takes")
    s.add_argument("--max-maps", type=int, default=8)
    s.add_argument("--out", default="activations.png")
    s.set_defaults(func=_show_activations)
    s = ws.add_parser("curves", help="loss and accuracy per epoch from a run's metrics.json")
    s.add_argument("--metrics", required=True, help="metrics.json, or the run folder holding it")
    s.add_argument("--out", default="curves.png")
    s.set_defaults(func=_show_curves)


# ---------------------------------------------------------------- handlers
def _parse(args):
    """Turn the text options into ints, tuples and pairs here, so a bad one is the usual one-line error."""
    for flag in ("kernel_size", "stride", "dilation", "output_padding"):
        v = getattr(args, flag, None)
        if isinstance(v, str):
            setattr(args, flag, int_or_ints(v, "--" + flag.replace("_", "-")))
    if isinstance(getattr(args, "padding", None), str):
        args.padding = padding_value(args.padding)
    if isinstance(getattr(args, "at", None), str):
        args.at = index_value(args.at)
    return args


def _pictures_missing(e, cmd):
    print(f"convkit {cmd}: {e}", file=sys.stderr)
    return 2


def _animate(args, input_spatial, kernel, stride, padding, dilation, **kw):
    from .pictures import animate

    try:
        n = animate(args.animate, input_spatial, kernel, stride, padding, dilation, **kw)
    except ImportError as e:
        return _pictures_missing(e, "explain")
    print(f"\nwrote {args.animate} ({n} {'frames' if str(args.animate).lower().endswith('.gif') else 'steps'})")
    return 0


def _spatial(e):
    n = len(e.kernel_size)
    return tuple(e.input_shape[-n - 1:-1] if e.data_format == "channels_last" else e.input_shape[-n:])


def _explain_conv(args):
    from . import conv

    _parse(args)
    e = conv(args.input, args.out_channels, args.kernel_size, args.stride, args.padding, args.dilation, args.groups,
             bias=not args.no_bias, strict=args.strict, data_format=args.data_format, spatial_dims=args.spatial_dims)
    print(e)
    if args.animate:
        return _animate(args, _spatial(e), e.kernel_size, e.stride, e.padding, e.dilation)
    return 0


def _explain_conv_transpose(args):
    from . import conv_transpose

    _parse(args)
    e = conv_transpose(args.input, args.out_channels, args.kernel_size, args.stride, args.padding,
                       args.output_padding, args.dilation, args.groups, bias=not args.no_bias,
                       data_format=args.data_format, spatial_dims=args.spatial_dims)
    print(e)
    if args.animate:
        return _animate(args, _spatial(e), e.kernel_size, e.stride, e.padding, e.dilation, transposed=True,
                        output_padding=e.output_padding)
    return 0


def _explain_pool(args):
    from . import pool

    _parse(args)
    e = pool(args.input, args.kernel_size, args.stride, args.padding, args.dilation, args.ceil_mode, args.kind,
             strict=args.strict, data_format=args.data_format, spatial_dims=args.spatial_dims)
    print(e)
    if args.animate:
        return _animate(args, _spatial(e), e.kernel_size, e.stride, e.padding, e.dilation, ceil_mode=e.ceil_mode)
    return 0


def _explain_element(args):
    from . import element

    _parse(args)
    b = None if args.b is None else array_value(args.b, "--b")
    print(element(array_value(args.x, "--x"), array_value(args.w, "--w"), b, args.at, args.stride, args.padding,
                  args.dilation, args.groups, data_format=args.data_format))
    return 0


def _explain_backward(args):
    from . import backward, parse_shape

    _parse(args)
    x = None if args.x is None else array_value(args.x, "--x")
    w = None if args.w is None else array_value(args.w, "--w")
    g = None if args.grad_out is None else array_value(args.grad_out, "--grad-out")
    e = backward(x, w, g, args.stride, args.padding, args.dilation, input_shape=parse_shape(args.input),
                 kernel_size=args.kernel_size, out_channels=args.out_channels, seed=args.seed)
    print(e)
    return 0 if e.matches else 1


def _show_filters(args):
    from convkit.train.run import load_trained

    from .pictures import conv_layers, filters_figure, save_figure

    net, _ = load_trained(args.checkpoint)
    layers = dict(conv_layers(net))
    if not layers:
        raise ValueError(f"show filters: the model must have a conv layer; '{args.checkpoint}' has none.")
    name = args.layer if args.layer is not None else next(iter(layers))
    if name not in layers:
        raise ValueError(f"show filters: --layer must be one of {sorted(layers)}; got --layer={name!r}.")
    weight = layers[name].weight.data
    try:
        save_figure(filters_figure(weight, args.max_filters, title=f"layer {name}"), args.out)
    except ImportError as e:
        return _pictures_missing(e, "show")
    print(f"wrote {args.out}: {min(weight.shape[0], args.max_filters)} filters of layer {name}, "
          f"weight {tuple(weight.shape)}")
    return 0


def _show_activations(args):
    import numpy as np

    from convkit.data import read_image
    from convkit.train.run import load_trained, prepare_input

    from .pictures import activations_figure, feature_maps, save_figure

    net, config = load_trained(args.checkpoint)
    path = Path(args.image)
    if not path.is_file():
        raise FileNotFoundError(f"show activations: --image must be an existing image or .npy file; got '{path}'.")
    x = prepare_input(np.load(path, allow_pickle=False) if path.suffix == ".npy" else read_image(path), config)
    maps = feature_maps(net, x[:1])
    try:
        save_figure(activations_figure(x[0], maps, args.max_maps), args.out)
    except ImportError as e:
        return _pictures_missing(e, "show")
    for name, m in maps:
        print(f"{name}: {m.shape[0]} maps of {'x'.join(map(str, m.shape[1:]))}")
    print(f"wrote {args.out}")
    return 0


def _show_curves(args):
    from .pictures import curves_figure, save_figure

    path = Path(args.metrics)
    path = path / "metrics.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"show curves: --metrics must be a metrics.json or a run folder; got '{args.metrics}'.")
    try:
        history = json.loads(path.read_text())["epochs"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"show curves: '{path}' must be a metrics.json written by convkit train.") from None
    try:
        save_figure(curves_figure(history), args.out)
    except ImportError as e:
        return _pictures_missing(e, "show")
    last = history[-1]
    print(f"wrote {args.out}: {len(history)} epochs, last train loss {last['train_loss']:.4f}"
          + (f", test accuracy {last['test_accuracy']:.4f}" if last.get("test_accuracy") is not None else ""))
    return 0
