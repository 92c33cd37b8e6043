"""The ``convkit`` command: thin subcommands over the library.

Errors from bad arguments become one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import os
import platform
import runpy
import sys
from pathlib import Path


def _info(args):
    import numpy as np

    import convkit
    from convkit._blas import blas_info, cpu_model

    b = blas_info()
    print(f"convkit   {convkit.__version__}")
    print(f"python    {platform.python_version()} ({sys.executable})")
    print(f"numpy     {np.__version__}")
    print(f"cpu       {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"blas      {b['library'] or 'unknown'}")
    if b["config"]:
        print(f"          {b['config']}")
    set_by = " set by the convkit command; CONVKIT_BLAS_TUNING=0 keeps the default" \
        if "OPENBLAS_CORETYPE" in os.environ.get("CONVKIT_SET_BLAS", "") else ""
    print(f"core type {b['corename'] or 'unknown'}"
          + (f" (OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}{set_by})"
             if os.environ.get("OPENBLAS_CORETYPE") else ""))
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    print(f"threads   {b['threads'] if b['threads'] is not None else 'unknown'}"
          + (f" (OPENBLAS_THREAD_TIMEOUT={timeout}"
             + (" set by the convkit command)" if "TIMEOUT" in os.environ.get("CONVKIT_SET_BLAS", "") else ")")
             if timeout else ""))
    print(f"workspace {convkit.get_workspace_limit() / 2**20:g} MiB per op")
    print(f"loops     {convkit.num_threads()} threads for convkit's own elementwise work")
    if b["advice"]:
        print(f"advice    {b['advice']}")
    return 0


def _examples_dir():
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "examples", Path.cwd() / "examples"):
        if cand.is_dir() and any(cand.glob("[0-9]*.py")):
            return cand
    return None


def _demo(args):
    folder = _examples_dir()
    if folder is None:
        print("convkit demo: the examples/ folder was not found; run this from a convkit checkout.",
              file=sys.stderr)
        return 2
    scripts = sorted(folder.glob("[0-9]*.py"))
    for script in scripts:
        if args.only and args.only not in script.name:
            continue
        print(f"\n=== {script.stem} " + "=" * max(0, 60 - len(script.stem)))
        runpy.run_path(str(script), run_name="__main__")
    return 0


def _train(args):
    from convkit.train import TrainingError, TrainingInterrupted
    from convkit.train.run import train_run

    try:
        train_run(args.data, args.model, args.epochs, args.batch_size, args.optimizer, args.lr, args.seed,
                  args.out, args.resume, progress=not args.no_progress)
    except TrainingInterrupted as e:
        print(f"convkit train: {e}; continue with the same command and --resume.", file=sys.stderr)
        return 130
    except TrainingError as e:
        print(f"convkit train: {e}", file=sys.stderr)
        return 1
    return 0


def _eval(args):
    from convkit.train.run import eval_run

    r = eval_run(args.checkpoint, args.data)
    print(f"test loss {r['loss']:.4f}  test accuracy {r['accuracy']:.4f}")
    return 0


def _load_inputs(paths):
    import numpy as np

    from convkit.data import read_image

    arrays = []
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"predict: input must be an existing image or .npy file; got '{p}'.")
        arrays.append(np.load(p, allow_pickle=False) if str(p).endswith(".npy") else read_image(p))
    return arrays


def _predict(args):
    import numpy as np

    from convkit.train.run import classify, load_trained

    net, config = load_trained(args.checkpoint)
    for path, x in zip(args.inputs, _load_inputs(args.inputs)):
        classes, probs = classify(net, config, x)
        for i, (c, p) in enumerate(zip(classes, probs)):
            top = np.argsort(p)[::-1][:3]
            label = f"{path}" + (f"[{i}]" if len(classes) > 1 else "")
            print(f"{label}: class {c} (p={p[c]:.3f}); top 3: " + ", ".join(f"{k}:{p[k]:.3f}" for k in top))
    return 0


def _parse_shape(text, ndim=None):
    from convkit.explain.arithmetic import parse_shape

    try:
        shape = parse_shape(text, "summary", "--input")
    except ValueError:
        shape = ()
    if not shape or any(s > 2**31 for s in shape) or (ndim and len(shape) != ndim):
        count = f", {ndim} of them (C x H x W)" if ndim else ""
        raise ValueError(f"summary: --input must be sizes joined by x{count}, each from 1 to 2**31, as 1x28x28; "
                         f"got --input={text!r}.")
    return shape


def _summary(args):
    from convkit import models

    shape = _parse_shape(args.input, ndim=3)  # every model in convkit.models takes C x H x W images
    net = models.get_model(args.model, in_channels=shape[0])
    print(models.summary(net, shape))
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="convkit", description="Convolutional networks on NumPy.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("info", help="versions, BLAS library, core type and threads")
    s.set_defaults(func=_info)
    s = sub.add_parser("demo", help="run the worked examples, each printing what it shows")
    s.add_argument("--only", default=None, help="run the examples whose file name contains this")
    s.set_defaults(func=_demo)

    s = sub.add_parser("train", help="train a CNN (default: digits_cnn on the bundled 8x8 digits)")
    s.add_argument("--data", default="digits", help="digits | mnist:DIR | fashion-mnist:DIR | cifar10:DIR")
    s.add_argument("--model", default=None, help="digits_cnn, mnist_cnn, lenet5, resnet8, resnet20, fcn "
                   "(default: the data set's own)")
    s.add_argument("--epochs", type=int, default=None, help="default: 15 for digits, 3 for (fashion-)mnist")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default=None, help="output folder (default runs/DATASET-MODEL)")
    s.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=_train)

    s = sub.add_parser("eval", help="test loss and accuracy of a trained checkpoint")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", default=None, help="default: the data the checkpoint was trained on")
    s.set_defaults(func=_eval)

    s = sub.add_parser("predict", help="classify images (PNG, PGM/PPM) or .npy arrays")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("inputs", nargs="+", help="image or .npy files")
    s.set_defaults(func=_predict)

    s = sub.add_parser("summary", help="per layer: output shape, parameters, MACs")
    s.add_argument("--model", required=True)
    s.add_argument("--input", required=True, help="C x H x W, e.g. 1x28x28")
    s.set_defaults(func=_summary)

    # Subcommands that live beside the parts of the library they drive; each module's
    # add_commands(sub) registers its parsers and imports nothing heavy until a command runs.
    from convkit.explain.cli import add_commands as explain_commands
    from convkit.onnx.cli import add_commands as onnx_commands

    explain_commands(sub)
    onnx_commands(sub)
    return p


# Commands that spend their time in matrix products, for which _with_faster_blas restarts the process.
_HEAVY = ("train", "eval", "predict", "run", "demo")


def _with_faster_blas():
    """Run a heavy command again with OpenBLAS tuned, when it would gain and the user has not chosen:
    OPENBLAS_CORETYPE=SkylakeX when the CPU has AVX-512 but NumPy's OpenBLAS picked its AVX2 kernels
    (about 1.9x faster matrix products on such a CPU), and OPENBLAS_THREAD_TIMEOUT=4 so that OpenBLAS's
    idle threads sleep at once instead of spinning beside convkit's own threads (a training step of
    mnist_cnn: about 20% faster on two cores). OpenBLAS reads both only when it loads, so the process
    starts again: one exec, before any work. Skipped when CONVKIT_BLAS_TUNING=0 or outside POSIX."""
    if os.name != "posix" or os.environ.get("CONVKIT_BLAS_TUNING") == "0" or os.environ.get("CONVKIT_SET_BLAS"):
        return
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command not in _HEAVY:
        return
    from convkit import _blas

    env = _blas.tuning_env()
    if env:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "convkit", *sys.argv[1:]],
                  dict(os.environ, **env, CONVKIT_SET_BLAS=",".join(sorted(env))))


def main(argv=None):
    if argv is None:  # the `convkit` command itself, not a call from Python
        _with_faster_blas()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, MemoryError) as e:
        if args.debug:
            raise
        print(f"convkit {args.command}: {e}", file=sys.stderr)
        return 2
