"""What BLAS NumPy runs on: library, OpenBLAS core type, threads, and whether
the CPU could do better (AVX-512 present but AVX2 kernels chosen)."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import threading

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


@functools.lru_cache(maxsize=None)
def _openblas():
    """The OpenBLAS that NumPy loaded, opened once (ctypes.CDLL), or None."""
    path = _openblas_path()
    try:
        return ctypes.CDLL(path) if path else None
    except OSError:
        return None


def _symbol(lib, name):
    """OpenBLAS's function ``name`` under any of the prefixes and suffixes NumPy's builds give it, or None."""
    for pre in _PREFIXES:
        for suf in _SUFFIXES:
            fn = getattr(lib, f"{pre}{name}{suf}", None)
            if fn is not None:
                return fn
    return None


def _call(lib, name, restype):
    fn = _symbol(lib, name)
    if fn is None:
        return None
    fn.restype = restype
    return fn()


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
    lib = _openblas()
    if lib is not None:
        cfg = _call(lib, "get_config", ctypes.c_char_p)
        core = _call(lib, "get_corename", ctypes.c_char_p)
        info["config"] = cfg.decode() if cfg else None
        info["corename"] = core.decode() if core else None
        info["threads"] = blas_threads()
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


# ------------------------------------------------------------------ direct GEMM calls
# np.matmul cannot accumulate into its output (BLAS's beta) and copies operands whose rows are not
# contiguous in both directions; convkit's implicit-GEMM convolutions (functional/_implicit.py) sum
# one product per kernel tap into one result, with operands that are offset windows of one padded
# input. So the GEMM of the OpenBLAS that NumPy loaded is called directly when it is found with
# its 64-bit integer interface (NumPy's wheels; checked against np.matmul on first use); elsewhere
# :func:`gemm` falls back to np.matmul and an add.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_gemm_fns = None


def _load_gemm():
    global _gemm_fns
    if _gemm_fns is not None:
        return _gemm_fns
    fns = {}
    lib = _openblas()
    if lib is not None and os.environ.get("CONVKIT_DIRECT_GEMM", "1") != "0":
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        for kind, dtype, scalar in (("s", np.float32, ctypes.c_float), ("d", np.float64, ctypes.c_double)):
            names = (f"scipy_cblas_{kind}gemm64_", f"cblas_{kind}gemm64_")
            fn = next((f for f in (getattr(lib, n, None) for n in names) if f is not None), None)
            if fn is None:
                continue
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, scalar, ptr, i64, ptr, i64,
                           scalar, ptr, i64]
            fn.restype = None
            fns[np.dtype(dtype)] = fn
    _gemm_fns = fns
    for dtype in list(fns):  # a wrong guess of the interface must not give wrong answers
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal((9, 11)).astype(dtype)[1:8, 2:8]
        out = np.ones((5, 6), dtype)
        gemm(a, b, out, beta=1.0)
        if not np.allclose(out, a @ b + 1, rtol=1e-4, atol=1e-4):
            del fns[dtype]
    return fns


def direct_gemm(dtype) -> bool:
    """Whether :func:`gemm` calls BLAS itself for this dtype (else np.matmul and an add)."""
    return np.dtype(dtype) in _load_gemm()


def _operand(a):
    """(transposed?, leading dimension) of a 2-D array BLAS can read in place, or None."""
    item = a.itemsize
    s0, s1 = a.strides
    if s1 == item and s0 % item == 0 and s0 >= max(1, a.shape[1]) * item:
        return False, s0 // item
    if s0 == item and s1 % item == 0 and s1 >= max(1, a.shape[0]) * item:
        return True, s1 // item
    return None


def gemm(a, b, out, beta=0.0):
    """out = a @ b + beta * out for 2-D arrays of one float dtype; ``out``'s rows may be strided (its
    last axis contiguous), ``a`` and ``b`` may be row- or column-major views with any leading
    dimension. Returns ``out``."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape != (m, n):
        raise ValueError(f"gemm: operands must be (m, k) @ (k, n) -> (m, n); got a={a.shape}, b={b.shape}, "
                         f"out={out.shape}.")
    fn = _load_gemm().get(out.dtype) if a.dtype == b.dtype == out.dtype else None
    fa, fb = _operand(a), _operand(b)
    fo = _operand(out)
    if fn is None or fa is None or fb is None or fo is None or fo[0] or 0 in (m, n, k):
        if beta == 0.0:
            np.matmul(a, b, out=out)
        else:
            if beta != 1.0:
                out *= beta
            out += a @ b
        return out
    fn(_ROW_MAJOR, _TRANS if fa[0] else _NO_TRANS, _TRANS if fb[0] else _NO_TRANS, m, n, k, 1.0,
       a.ctypes.data, fa[1], b.ctypes.data, fb[1], beta, out.ctypes.data, fo[1])
    return out


# ------------------------------------------------------------------ BLAS's threads
# An ONNX session runs parts of a batch side by side on convkit's threads (onnx/session.py); their products
# must then run on the thread that calls them, not wake OpenBLAS's own workers (which would then compete
# with the other part's thread for the same cores).

_one = {"depth": 0, "saved": None}
_one_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _threads_fns():
    """(get, set) of the number of OpenBLAS threads, or () when NumPy's BLAS is not an OpenBLAS found here."""
    lib = _openblas()
    if lib is None:
        return ()
    get, put = _symbol(lib, "get_num_threads"), _symbol(lib, "set_num_threads")
    if get is None or put is None:
        return ()
    get.restype, get.argtypes = ctypes.c_int, []
    put.restype, put.argtypes = None, [ctypes.c_int]
    return get, put


def can_set_threads() -> bool:
    """Whether :func:`one_thread` can hold BLAS to the calling thread."""
    return bool(_threads_fns())


def blas_threads():
    """How many threads OpenBLAS runs its products on now, or None when unknown."""
    fns = _threads_fns()
    return fns[0]() if fns else None


def held_to_one_thread() -> bool:
    """Whether a :func:`one_thread` block is running (convkit's heuristics then plan for products on one thread)."""
    return _one["depth"] > 0


@contextlib.contextmanager
def one_thread():
    """BLAS products run on their calling thread alone while the block runs (process-wide, as OpenBLAS's
    setting is; nested and concurrent blocks share one count, and the last one out restores the number of
    threads found on the way in). Yields False, changing nothing, where BLAS's threads cannot be set."""
    fns = _threads_fns()
    if not fns:
        yield False
        return
    get, put = fns
    with _one_lock:
        if _one["depth"] == 0:
            _one["saved"] = get()
            put(1)
        _one["depth"] += 1
    try:
        yield True
    finally:
        with _one_lock:
            _one["depth"] -= 1
            if _one["depth"] == 0:
                put(_one["saved"])
