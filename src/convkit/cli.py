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
    print(f"core type {b['corename'] or 'unknown'}"
          + (f" (OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']})" if os.environ.get("OPENBLAS_CORETYPE") else ""))
    print(f"threads   {b['threads'] if b['threads'] is not None else 'unknown'}")
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


def build_parser():
    p = argparse.ArgumentParser(prog="convkit", description="Convolutional networks on NumPy.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("info", help="versions, BLAS library, core type and threads")
    s.set_defaults(func=_info)
    s = sub.add_parser("demo", help="run the worked examples, each printing what it shows")
    s.add_argument("--only", default=None, help="run the examples whose file name contains this")
    s.set_defaults(func=_demo)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as e:
        if args.debug:
            raise
        print(f"convkit {args.command}: {e}", file=sys.stderr)
        return 2
