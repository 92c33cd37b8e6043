"""What BLAS NumPy runs on: library, OpenBLAS core type, threads, and whether
the CPU could do better (AVX-512 present but AVX2 kernels chosen)."""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_PREFIXES = ("openblas_", "scipy_openblas_")
_SUFFIXES = ("", "64_", "_64")


def _openblas_path():
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if line.split() else ""
                if "openblas" in os.path.basename(path).lower():
                    return path
    except OSError:
        pass
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    found = glob.glob(os.path.join(libs, "*openblas*"))
    return found[0] if found else None


def _call(lib, name, restype):
    for pre in _PREFIXES:
        for suf in _SUFFIXES:
            fn = getattr(lib, f"{pre}{name}{suf}", None)
            if fn is not None:
                fn.restype = restype
                return fn()
    return None


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def blas_info():
    """A dict: library, version/config, core type, threads, and advice (or None)."""
    info = {"library": None, "config": None, "corename": None, "threads": None, "advice": None}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["library"] = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:  # pragma: no cover - show_config layout differs between builds
        pass
    path = _openblas_path()
    if path:
        try:
            lib = ctypes.CDLL(path)
            cfg = _call(lib, "get_config", ctypes.c_char_p)
            core = _call(lib, "get_corename", ctypes.c_char_p)
            info["config"] = cfg.decode() if cfg else None
            info["corename"] = core.decode() if core else None
            info["threads"] = _call(lib, "get_num_threads", ctypes.c_int)
        except OSError:
            pass
    if better_coretype(info["corename"]):
        info["advice"] = (f"this CPU has AVX-512 but OpenBLAS runs its {info['corename']} (AVX2) kernels; "
                          "set OPENBLAS_CORETYPE=SkylakeX before Python starts for faster matrix products "
                          "(the convkit command does this itself unless CONVKIT_BLAS_TUNING=0)")
    return info


def tuning_env(environ=None):
    """The OpenBLAS settings the ``convkit`` command adds before it restarts a heavy command, as a dict
    of environment variables (empty when the user set them already or nothing would gain):
    OPENBLAS_CORETYPE=SkylakeX where :func:`better_coretype` says so, and OPENBLAS_THREAD_TIMEOUT=4 so
    that OpenBLAS's idle threads sleep at once instead of spinning beside convkit's own threads."""
    environ = os.environ if environ is None else environ
    env = {}
    if not environ.get("OPENBLAS_CORETYPE"):
        core = better_coretype(blas_info()["corename"])
        if core:
            env["OPENBLAS_CORETYPE"] = core
    if not environ.get("OPENBLAS_THREAD_TIMEOUT"):
        env["OPENBLAS_THREAD_TIMEOUT"] = "4"
    return env


def better_coretype(corename):
    """"SkylakeX" when the CPU has AVX-512 (F, BW, DQ, VL) but OpenBLAS chose an AVX2 or older
    core type (``corename``, as OpenBLAS reports it), else None."""
    if (corename or "").lower() not in ("haswell", "zen", "sandybridge"):
        return None
    return "SkylakeX" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= cpu_flags() else None
