"""Activations, softmax and dropout, each forward beside its vjp.

Names, arguments and defaults follow ``torch.nn.functional``, without
``inplace``: nothing here writes to its inputs. Every ``f(x, ...)`` has
``f_vjp(grad_out, x, ..., out=None)`` with the forward's arguments after
``grad_out``; ``out``, the forward's result, is used where that is cheaper than
recomputing it (relu, sigmoid, tanh, elu, selu, softmax, log_softmax) and is
accepted and ignored elsewhere. The dropouts are the exception: their vjp is
``dropout_vjp(grad_out, mask)`` with the mask the forward returned.

Arrays keep their float dtype (ints and bools become float64) and so do the
gradients; Python-number arguments never promote float32 to float64.
Kernels work on fresh temporaries in place, and select between branches with
arithmetic (``max(x, 0)``, a 0/1 factor) rather than ``np.where`` on a data-
dependent mask, which runs several times slower on unsorted signs.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks as C
from .._parallel import num_threads, parts, run_blocks

_SQRT1_2 = math.sqrt(0.5)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)          # gelu tanh approximation
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)  # standard normal density at 0
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# --------------------------------------------------------------------------- argument handling

def _in(op, x):
    """x as a float array; a 0-d x is viewed as (1,) so in-place ufuncs work (flag says so)."""
    x = C.as_float_array(op, "input", x)
    C.check_alloc(op, x.size * x.itemsize)
    return (x.reshape(1), True) if x.ndim == 0 else (x, False)


def _like(op, name, a, x, scalar):
    """grad_out or out: checked against the input's shape, cast to its dtype."""
    if a is None:
        return None
    a = C.as_float_array(op, name, a)
    C.same_shape(op, name, a.shape, () if scalar else x.shape, "input.shape")
    return a.reshape(x.shape).astype(x.dtype, copy=False)


def _in_vjp(op, x, grad_out, out=None):
    x, scalar = _in(op, x)
    return x, _like(op, "grad_out", grad_out, x, scalar), _like(op, "out", out, x, scalar), scalar


def _ret(y, scalar):
    return y.reshape(()) if scalar else y


# Kernels of several passes run over flat blocks of this many elements, on convkit's threads, so that a block's
# temporaries stay in cache from one pass to the next instead of each pass streaming whole arrays through
# memory: from 2 blocks for the long kernels (gelu, erf, softplus: 30-odd passes), from 16 for the others
# (blocks over whole: 0.74-1.26 at 400 K float32 values, 0.54-1.08 at 1 M, 0.32-0.95 at 6.4 M; relu's and
# relu6's gradients, two passes, 1.03-1.76 everywhere, so they run whole). See docs/performance.md.
_BLOCK = 1 << 16
_LIGHT_BLOCKS = 16


def _blockwise(kernel, *arrays, heavy=False, **params):
    """``kernel(*arrays, **params)``, an elementwise kernel returning a fresh array, run over flat blocks of the
    same-shaped arrays (None entries pass through) into one result. Every element sees the same operations
    either way, so the result is bitwise the whole-array one. Small (below 2 blocks for a ``heavy`` kernel,
    else _LIGHT_BLOCKS) or non-contiguous input runs whole."""
    x = arrays[0]
    live = [a for a in arrays if a is not None]
    if x.size <= (2 if heavy else _LIGHT_BLOCKS) * _BLOCK or not all(a.flags.c_contiguous for a in live):
        return kernel(*arrays, **params)
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    first = kernel(*(None if f is None else f[:_BLOCK] for f in flat), **params)
    out = np.empty(x.size, first.dtype)
    out[:_BLOCK] = first
    starts = list(range(_BLOCK, x.size, _BLOCK))

    def run(part):
        for i in part:
            sl = slice(i, i + _BLOCK)
            out[sl] = kernel(*(None if f is None else f[sl] for f in flat), **params)

    run_blocks(run, [starts[p] for p in parts(len(starts), num_threads())])
    return out.reshape(x.shape)


def _dim(op, dim, ndim):
    d = C.as_int(op, "dim", dim)
    n = max(ndim, 1)
    if not -n <= d < n:
        C.fail(op, "dim", f"in [{-n}, {n}) for input.ndim={ndim}", d)
    return d % n


def _sigmoid(x):
    """1 / (1 + exp(-x)) as a fresh array. exp(-x) overflowing to inf gives exactly 0, the right answer."""
    t = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(t, out=t)
    t += 1
    np.reciprocal(t, out=t)
    return t


def _step(x):
    """1 where x > 0, else 0, in x's float dtype (a bool array times a Python float would be float64)."""
    return (x > 0).astype(x.dtype)


# --------------------------------------------------------------------------- relu family

def relu(x):
    """Rectified linear unit, ``max(x, 0)``.

    Shape
    -----
    Any shape; the output has x's shape and dtype.

    Examples
    --------
    >>> relu(np.array([-1., 0., 2.]))
    array([0., 0., 2.])
    """
    x, s = _in("relu", x)
    return _ret(np.maximum(x, 0), s)


def relu_vjp(grad_out, x, out=None):
    """Gradient of :func:`relu`: grad_out where x > 0, else 0 (0 at x == 0, as in PyTorch)."""
    x, g, o, s = _in_vjp("relu_vjp", x, grad_out, out)
    return _ret(g * ((x if o is None else o) > 0), s)


def relu6(x):
    """``min(max(x, 0), 6)``.

    Examples
    --------
    >>> relu6(np.array([-1., 3., 7.]))
    array([0., 3., 6.])
    """
    x, s = _in("relu6", x)
    return _ret(np.clip(x, 0, 6), s)


def relu6_vjp(grad_out, x, out=None):
    """Gradient of :func:`relu6`: grad_out where 0 < x < 6, else 0."""
    x, g, _, s = _in_vjp("relu6_vjp", x, grad_out, out)
    m = x > 0
    m &= x < 6
    return _ret(g * m, s)


def leaky_relu(x, negative_slope=0.01):
    """``x`` where x > 0, else ``negative_slope * x``.

    Examples
    --------
    >>> leaky_relu(np.array([-2., 3.]), 0.5)
    array([-1.,  3.])
    """
    x, s = _in("leaky_relu", x)
    slope = C.real_number("leaky_relu", "negative_slope", negative_slope)
    return _ret(_blockwise(_leaky_relu, x, slope=slope), s)


def _leaky_relu(x, slope):
    # x vs slope*x: the larger wins for any slope <= 1 (x > 0 keeps x, x < 0 takes slope*x), the smaller above 1
    return (np.maximum if slope <= 1 else np.minimum)(x, x * slope)


def leaky_relu_vjp(grad_out, x, negative_slope=0.01, out=None):
    """Gradient of :func:`leaky_relu`: grad_out where x > 0, else negative_slope * grad_out."""
    x, g, _, s = _in_vjp("leaky_relu_vjp", x, grad_out)
    slope = C.real_number("leaky_relu_vjp", "negative_slope", negative_slope)
    return _ret(_blockwise(_leaky_relu_vjp, x, g, slope=slope), s)


def _leaky_relu_vjp(x, g, slope):
    f = _step(x)
    f *= 1 - slope
    f += slope
    f *= g
    return f


def _prelu_args(op, x, weight):
    x, s = _in(op, x)
    w = C.as_float_array(op, "weight", weight)
    if w.ndim > 1:
        C.fail(op, "weight.ndim", "0 or 1 (one slope, or one per channel)", w.ndim)
    ch = x.shape[1] if x.ndim >= 2 and not s else 1
    if w.size not in (1, ch):
        raise ValueError(f"{op}: weight must have 1 or input.shape[1] = {ch} elements (1 when input.ndim < 2); "
                         f"got weight.shape={w.shape} and input.shape={() if s else x.shape}.")
    dtype = C.result_dtype(x, w)
    x, wb = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    wb = wb.reshape((-1,) + (1,) * (x.ndim - 2)) if w.size > 1 else wb.reshape(())
    return x, w, wb, s


def prelu(x, weight):
    """Parametric relu: ``x`` where x > 0, else ``weight[c] * x`` for channel c (dim 1).

    Parameters
    ----------
    x : array (N, C, *) or any shape when weight has one element.
    weight : array with 1 or C elements (0-d or 1-d). Below 2 dims x has one channel.

    Examples
    --------
    >>> prelu(np.array([[-1., 2.], [-3., -4.]]), np.array([0.5, 2.]))
    array([[-0.5,  2. ],
           [-1.5, -8. ]])
    """
    x, _, wb, s = _prelu_args("prelu", x, weight)
    y = np.minimum(x, 0)
    y *= wb
    y += np.maximum(x, 0)
    return _ret(y, s)


def prelu_vjp(grad_out, x, weight, out=None):
    """Gradients of :func:`prelu`: (grad_x, grad_weight), grad_weight shaped like weight.

    ``grad_x = grad_out`` where x > 0 else ``weight * grad_out``; ``grad_weight``
    sums ``grad_out * x`` over the cells where x <= 0, per channel.
    """
    op = "prelu_vjp"
    x, w, wb, s = _prelu_args(op, x, weight)
    g = _like(op, "grad_out", grad_out, x, s)
    gx = _step(x)
    gx *= 1 - wb
    gx += wb
    gx *= g
    gw = np.minimum(x, 0)
    gw *= g
    if w.size > 1:
        gw = gw.sum(axis=(0, *range(2, x.ndim)))
    else:
        gw = gw.sum()
    return _ret(gx, s), np.asarray(gw, dtype=x.dtype).reshape(w.shape)


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` where x > 0, else ``alpha * (exp(x) - 1)``.

    Examples
    --------
    >>> elu(np.array([0., 2.]))
    array([0., 2.])
    """
    x, s = _in("elu", x)
    alpha = C.real_number("elu", "alpha", alpha)
    return _ret(_blockwise(_elu, x, alpha=alpha), s)


def _elu(x, alpha):
    t = np.minimum(x, 0)  # exp never sees the positive side, so it cannot overflow
    np.expm1(t, out=t)
    t *= alpha
    t += np.maximum(x, 0)  # expm1(0) = 0: each side adds nothing to the other
    return t


def elu_vjp(grad_out, x, alpha=1.0, out=None):
    """Gradient of :func:`elu`: grad_out where x > 0, else ``grad_out * alpha * exp(x)``
    (``grad_out * (out + alpha)`` when the forward's ``out`` is given)."""
    x, g, o, s = _in_vjp("elu_vjp", x, grad_out, out)
    alpha = C.real_number("elu_vjp", "alpha", alpha)
    return _ret(_blockwise(_elu_vjp, x, g, o, alpha=alpha), s)


def _elu_vjp(x, g, o, alpha):
    if o is None:
        t = np.minimum(x, 0)
        np.exp(t, out=t)
        t *= alpha
    else:
        t = o * (x <= 0)
        t += alpha
    # where x > 0, t holds alpha: the step lifts it to 1
    m = _step(x)
    m *= 1 - alpha
    t += m
    t *= g
    return t


def selu(x):
    """Scaled elu: ``scale * elu(x, alpha)`` with the self-normalising constants
    alpha = 1.6733, scale = 1.0507 (exact values as in PyTorch).

    Examples
    --------
    >>> selu(np.array([0., 1.]))
    array([0.        , 1.05070099])
    """
    x, s = _in("selu", x)
    return _ret(_blockwise(_selu, x), s)


def _selu(x):
    t = np.minimum(x, 0)
    np.expm1(t, out=t)
    t *= _SELU_SCALE * _SELU_ALPHA
    p = np.maximum(x, 0)
    p *= _SELU_SCALE
    t += p
    return t


def selu_vjp(grad_out, x, out=None):
    """Gradient of :func:`selu`: ``scale * grad_out`` where x > 0, else
    ``grad_out * scale * alpha * exp(x)`` (``grad_out * (out + scale * alpha)`` given ``out``)."""
    x, g, o, s = _in_vjp("selu_vjp", x, grad_out, out)
    return _ret(_blockwise(_selu_vjp, x, g, o), s)


def _selu_vjp(x, g, o):
    if o is None:
        t = np.minimum(x, 0)
        np.exp(t, out=t)
        t *= _SELU_SCALE * _SELU_ALPHA
    else:
        t = np.minimum(o, 0)
        t += _SELU_SCALE * _SELU_ALPHA
    m = _step(x)
    m *= _SELU_SCALE - _SELU_SCALE * _SELU_ALPHA
    t += m
    t *= g
    return t


# --------------------------------------------------------------------------- smooth activations

def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for large |x|.

    Examples
    --------
    >>> sigmoid(np.array([0., -800., 800.]))
    array([0.5, 0. , 1. ])
    """
    x, s = _in("sigmoid", x)
    return _ret(_blockwise(_sigmoid, x), s)


def sigmoid_vjp(grad_out, x, out=None):
    """Gradient of :func:`sigmoid`: ``grad_out * y * (1 - y)`` with y = sigmoid(x) (or ``out``)."""
    x, g, o, s = _in_vjp("sigmoid_vjp", x, grad_out, out)
    return _ret(_blockwise(_sigmoid_vjp, x, g, o), s)


def _sigmoid_vjp(x, g, o):
    y = _sigmoid(x) if o is None else o
    t = 1 - y
    t *= y
    t *= g
    return t


def tanh(x):
    """Hyperbolic tangent.

    Examples
    --------
    >>> tanh(np.array([0.]))
    array([0.])
    """
    x, s = _in("tanh", x)
    return _ret(np.tanh(x), s)


def tanh_vjp(grad_out, x, out=None):
    """Gradient of :func:`tanh`: ``grad_out * (1 - y**2)`` with y = tanh(x) (or ``out``)."""
    x, g, o, s = _in_vjp("tanh_vjp", x, grad_out, out)
    return _ret(_blockwise(_tanh_vjp, x, g, o), s)


def _tanh_vjp(x, g, o):
    y = np.tanh(x) if o is None else o
    t = y * y
    np.subtract(1, t, out=t)
    t *= g
    return t


def silu(x):
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``.

    Examples
    --------
    >>> silu(np.array([0., -800.]))
    array([ 0., -0.])
    """
    x, s = _in("silu", x)
    return _ret(_blockwise(_silu, x), s)


def _silu(x):
    t = _sigmoid(x)
    t *= x
    return t


def silu_vjp(grad_out, x, out=None):
    """Gradient of :func:`silu`: ``grad_out * s * (1 + x * (1 - s))`` with s = sigmoid(x)."""
    x, g, _, s = _in_vjp("silu_vjp", x, grad_out)
    return _ret(_blockwise(_silu_vjp, x, g), s)


def _silu_vjp(x, g):
    sg = _sigmoid(x)
    t = 1 - sg
    t *= x
    t += 1
    t *= sg
    t *= g
    return t


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and x itself where ``beta * x > threshold``.

    Examples
    --------
    >>> softplus(np.array([0., 30.]), beta=2.0)
    array([ 0.34657359, 30.        ])
    """
    op = "softplus"
    x, s = _in(op, x)
    beta = C.real_number(op, "beta", beta)
    if beta == 0:
        C.fail(op, "beta", "nonzero", beta)
    threshold = C.real_number(op, "threshold", threshold)
    return _ret(_blockwise(_softplus, x, heavy=True, beta=beta, threshold=threshold), s)


def _softplus(x, beta, threshold):
    bx = x * beta
    # log1p(exp(bx)) with no overflow: max(bx, 0) + log1p(exp(-|bx|)), np.logaddexp(0, bx)'s own branches
    # (whose float32 loop is scalar: 32x64x56x56, 112 ms against 17 for these passes)
    y = np.abs(bx)
    np.negative(y, out=y)
    np.exp(y, out=y)
    np.log1p(y, out=y)
    y += np.maximum(bx, 0)
    y /= beta
    over = bx > threshold
    if over.any():  # rare, so the masked copy is cheap
        np.copyto(y, x, where=over)
    return y


def softplus_vjp(grad_out, x, beta=1.0, threshold=20.0, out=None):
    """Gradient of :func:`softplus`: ``grad_out * sigmoid(beta * x)``, grad_out past the threshold."""
    op = "softplus_vjp"
    x, g, _, s = _in_vjp(op, x, grad_out)
    beta = C.real_number(op, "beta", beta)
    if beta == 0:
        C.fail(op, "beta", "nonzero", beta)
    threshold = C.real_number(op, "threshold", threshold)
    return _ret(_blockwise(_softplus_vjp, x, g, heavy=True, beta=beta, threshold=threshold), s)


def _softplus_vjp(x, g, beta, threshold):
    bx = x * beta
    t = _sigmoid(bx)
    t *= g
    over = bx > threshold
    if over.any():
        np.copyto(t, g, where=over)
    return t


# --------------------------------------------------------------------------- erf and gelu

# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969) 631-637; coefficients of netlib specfun CALERF.
# A/B: erf on |x| <= 0.46875; Cc/D: erfc on (0.46875, 4]; P/Q: erfc beyond 4.
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_Cc = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
       8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
       2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1/sqrt(pi)
_THRESH = 0.46875


def _rational(z, num_c, den_c, n):
    """Cody's nested evaluation: (((c[n]*z + c0)*z + c1)*z ... + c[n-1]) / ((z + d0)*z ... + d[n-1])."""
    num = z * num_c[n]
    den = z.copy()
    for i in range(n - 1):
        num += num_c[i]
        num *= z
        den += den_c[i]
        den *= z
    num += num_c[n - 1]
    den += den_c[n - 1]
    num /= den
    return num


def _erf_small(x):
    """erf(x) for |x| <= 0.46875."""
    r = _rational(x * x, _A, _B, 4)
    r *= x
    return r


def _erfc_pos(y):
    """erfc(y) for y > 0.46875 (inf and nan allowed)."""
    y = np.minimum(y, 28.0)  # erfc(28) underflows to 0; the clip keeps inf out of the split below
    r = np.empty_like(y)
    mid = y <= 4
    r[mid] = _rational(y[mid], _Cc, _D, 8)
    far = ~mid
    yf = y[far]
    z = 1 / (yf * yf)
    t = _rational(z, _P, _Q, 5)
    t *= z
    np.subtract(_SQRPI, t, out=t)
    t /= yf
    r[far] = t
    # exp(-y*y) as exp(-ys*ys) * exp(-(y-ys)(y+ys)), ys = y rounded down to 1/16: keeps y*y's low bits
    ys = np.trunc(y * 16)
    ys /= 16
    dl = (y - ys) * (y + ys)
    ys *= ys
    np.negative(ys, out=ys)
    np.exp(ys, out=ys)
    np.negative(dl, out=dl)
    np.exp(dl, out=dl)
    r *= ys
    r *= dl
    return r


# float32 and float16: one rational over the clamped range, no branches (Eigen's and XLA's erf;
# absolute error below 5e-7 evaluated in float32, twice as fast as the float64 steps that would
# reach 1e-7); x * alpha(x^2) / beta(x^2), coefficients from the highest power down.
_ERF32_ALPHA = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF32_BETA = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
               -1.42647390514189e-02)


def _horner(z, coeffs):
    p = z * coeffs[0]
    for c in coeffs[1:-1]:
        p += c
        p *= z
    p += coeffs[-1]
    return p


def _erf32(x):
    """erf for float32/float16 input, evaluated in float32 (float16 cannot hold the products)."""
    v = np.clip(x, -4, 4, dtype=np.float32)  # erf(4) rounds to 1 in float32
    z = v * v
    num = _horner(z, _ERF32_ALPHA)
    num *= v
    num /= _horner(z, _ERF32_BETA)
    return num


def _erfc(x):
    """erfc(x) for any real x; in float64 accurate in both tails (no 1 - erf cancellation)."""
    if x.dtype != np.float64:
        r = _erf32(x)
        np.subtract(1, r, out=r)
        return r.astype(x.dtype, copy=False)
    small = np.abs(x) <= _THRESH
    r = np.empty_like(x)
    r[small] = 1 - _erf_small(x[small])
    big = ~small
    xb = x[big]
    e = _erfc_pos(np.abs(xb))
    r[big] = np.where(xb < 0, 2 - e, e)
    return r.astype(x.dtype, copy=False)


def erf(x):
    """The error function ``2/sqrt(pi) * integral_0^x exp(-t**2) dt``, elementwise.

    NumPy has none. float64 uses W. J. Cody's rational Chebyshev
    approximations (relative error below 1e-15); float32 and float16 one
    branch-free rational (Eigen's, absolute error below 5e-7), and keep their dtype.

    Examples
    --------
    >>> erf(np.array([0., np.inf, -np.inf]))
    array([ 0.,  1., -1.])
    """
    x, s = _in("erf", x)
    return _ret(_blockwise(_erf, x, heavy=True), s)


def _erf(x):
    if x.dtype != np.float64:
        return _erf32(x).astype(x.dtype, copy=False)
    small = np.abs(x) <= _THRESH
    r = np.empty_like(x)
    r[small] = _erf_small(x[small])
    big = ~small
    xb = x[big]
    e = _erfc_pos(np.abs(xb))
    np.subtract(0.5, e, out=e)
    e += 0.5  # (0.5 - erfc) + 0.5 rounds better than 1 - erfc
    r[big] = np.copysign(e, xb)
    return r.astype(x.dtype, copy=False)


def _gelu_approx(op, approximate):
    if approximate not in ("none", "tanh"):
        C.fail(op, "approximate", "'none' or 'tanh'", approximate)
    return approximate == "tanh"


def gelu(x, approximate="none"):
    """Gaussian error linear unit ``x * Phi(x)``, Phi the standard normal CDF.

    ``approximate="tanh"``: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))``.

    Examples
    --------
    >>> np.round(gelu(np.array([0., 1.])), 4)
    array([0.    , 0.8413])
    """
    x, s = _in("gelu", x)
    return _ret(_blockwise(_gelu, x, heavy=True, tanh=_gelu_approx("gelu", approximate)), s)


def _gelu_core(x, tanh):
    """What gelu's gradient needs again: erfc(-x/sqrt 2) = 1 + erf(x/sqrt 2) (accurate for negative x too), or
    for the tanh form the tanh term."""
    if not tanh:
        return _erfc(x * -_SQRT1_2)
    t = x * x
    t *= 0.044715
    t += 1
    t *= x
    t *= _SQRT_2_PI
    np.tanh(t, out=t)
    return t


def _gelu(x, core=None, tanh=False):
    t = _gelu_core(x, tanh) if core is None else core.copy()
    if tanh:
        t += 1
    t *= x
    t *= 0.5
    return t


def gelu_vjp(grad_out, x, approximate="none", out=None):
    """Gradient of :func:`gelu`: ``grad_out * (Phi(x) + x * phi(x))`` (phi the normal density),
    or the derivative of the tanh form with ``approximate="tanh"``."""
    x, g, _, s = _in_vjp("gelu_vjp", x, grad_out)
    return _ret(_blockwise(_gelu_vjp, x, g, heavy=True, tanh=_gelu_approx("gelu_vjp", approximate)), s)


def _gelu_vjp(x, g, core=None, tanh=False):
    """The gradient, with ``core`` (_gelu_core's, kept by the forward) or without (made again)."""
    x2 = x * x
    if tanh:
        th = _gelu_core(x, True) if core is None else core.copy()
        d = x2  # d/dx of the tanh argument, times x/2
        d *= 3 * 0.044715
        d += 1
        d *= x
        d *= 0.5 * _SQRT_2_PI
        d *= 1 - th * th
        th += 1
        th *= 0.5
        d += th
    else:
        x2 *= -0.5
        d = np.exp(x2, out=x2)
        d *= x
        d *= _INV_SQRT_2PI
        d += (_gelu_core(x, False) if core is None else core) * 0.5
    d *= g
    return d


def _gelu_taped(x, approximate="none"):
    """gelu for autograd: (y, _gelu_core's term, kept for :func:`_gelu_taped_vjp`). NumPy has no erf: made
    again in the backward it is some 30 passes over x (32x64x56x56 float32: see docs/performance.md)."""
    x, s = _in("gelu", x)
    tanh = _gelu_approx("gelu", approximate)
    core = _blockwise(_gelu_core, x, heavy=True, tanh=tanh)
    return _ret(_blockwise(_gelu, x, core, tanh=tanh), s), core


def _gelu_taped_vjp(grad_out, x, core, approximate="none"):
    """gelu_vjp from the forward's kept term: the same bits, without erf."""
    x, g, _, s = _in_vjp("gelu_vjp", x, grad_out)
    return _ret(_blockwise(_gelu_vjp, x, g, core, tanh=_gelu_approx("gelu_vjp", approximate)), s)


# --------------------------------------------------------------------------- hard activations

def hardsigmoid(x):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between.

    Examples
    --------
    >>> hardsigmoid(np.array([-4., 0., 4.]))
    array([0. , 0.5, 1. ])
    """
    x, s = _in("hardsigmoid", x)
    return _ret(_blockwise(_hardsigmoid, x), s)


def _hardsigmoid(x):
    t = x + 3
    np.clip(t, 0, 6, out=t)
    t /= 6
    return t


def hardsigmoid_vjp(grad_out, x, out=None):
    """Gradient of :func:`hardsigmoid`: grad_out / 6 where -3 < x < 3, else 0."""
    x, g, _, s = _in_vjp("hardsigmoid_vjp", x, grad_out)
    return _ret(_blockwise(_hardsigmoid_vjp, x, g), s)


def _hardsigmoid_vjp(x, g):
    m = x > -3
    m &= x < 3
    t = g * m
    t *= 1 / 6
    return t


def hardswish(x):
    """``x * relu6(x + 3) / 6``.

    Examples
    --------
    >>> hardswish(np.array([-4., 0., 3.]))
    array([-0.,  0.,  3.])
    """
    x, s = _in("hardswish", x)
    return _ret(_blockwise(_hardswish, x), s)


def _hardswish(x):
    t = x + 3
    np.clip(t, 0, 6, out=t)
    t *= x
    t /= 6
    return t


def hardswish_vjp(grad_out, x, out=None):
    """Gradient of :func:`hardswish`: 0 for x <= -3, ``grad_out * (x/3 + 1/2)`` between, grad_out for x >= 3
    (PyTorch's choice at the two kinks)."""
    x, g, _, s = _in_vjp("hardswish_vjp", x, grad_out)
    return _ret(_blockwise(_hardswish_vjp, x, g), s)


def _hardswish_vjp(x, g):
    t = x / 3
    t += 0.5
    m = x > -3
    m &= x < 3
    t *= m
    t += x >= 3
    t *= g
    return t


# --------------------------------------------------------------------------- softmax

def softmax(x, dim):
    """``exp(x) / sum(exp(x))`` along ``dim``, computed as exp(x - max) so it cannot overflow.

    Examples
    --------
    >>> softmax(np.array([[0., 0.], [1., 1.]]), dim=1)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    x, s = _in("softmax", x)
    d = _dim("softmax", dim, x.ndim - s)
    return _ret(_along(_softmax, d, x), s)


# Softmax-like ops reduce along one dim: other than the first, they run over blocks of the first dim of about
# this many bytes, on convkit's threads, each block's passes in cache (32x64x56x56 float32 over dim 1, forward +
# gradient through autograd beside PyTorch: 2.82 -> 2.14 times its time, benchmarks/ops_suite.py).
_ALONG_BLOCK_BYTES = 1 << 20


def _along(kernel, d, *arrays):
    """kernel(*arrays, d), which reduces along dim d only, over blocks of dim 0 when d > 0 (None entries pass
    through): each block's rows are reduced as the whole array's are, so the result is the same bits."""
    x = arrays[0]
    per = max(1, _ALONG_BLOCK_BYTES // max(1, x[:1].nbytes)) if x.ndim > 1 else x.shape[0]
    if d == 0 or per >= x.shape[0]:
        return kernel(*arrays, d)
    out = np.empty_like(x)

    def block(i):
        sl = slice(i, i + per)
        out[sl] = kernel(*(None if a is None else a[sl] for a in arrays), d)
    run_blocks(block, range(0, x.shape[0], per))
    return out


def _softmax(x, d):
    e = x - np.max(x, axis=d, keepdims=True, initial=-np.inf)
    np.exp(e, out=e)
    e /= e.sum(axis=d, keepdims=True)
    return e


def softmax_vjp(grad_out, x, dim, out=None):
    """Gradient of :func:`softmax`: ``y * (grad_out - sum(grad_out * y, dim))``, y the output."""
    x, g, o, s = _in_vjp("softmax_vjp", x, grad_out, out)
    d = _dim("softmax_vjp", dim, x.ndim - s)
    return _ret(_along(_softmax_vjp, d, x, g, o), s)


def _softmax_vjp(x, g, o, d):
    y = _softmax(x, d) if o is None else o
    t = g * y
    np.subtract(g, t.sum(axis=d, keepdims=True), out=t)
    t *= y
    return t


def log_softmax(x, dim):
    """``x - log(sum(exp(x)))`` along ``dim``, with the max taken out first.

    Examples
    --------
    >>> log_softmax(np.array([0., 0.]), dim=0)
    array([-0.69314718, -0.69314718])
    """
    x, s = _in("log_softmax", x)
    d = _dim("log_softmax", dim, x.ndim - s)
    return _ret(_along(_log_softmax, d, x), s)


def _log_softmax(x, d):
    t = x - np.max(x, axis=d, keepdims=True, initial=-np.inf)
    e = np.exp(t)
    t -= np.log(e.sum(axis=d, keepdims=True))
    return t


def log_softmax_vjp(grad_out, x, dim, out=None):
    """Gradient of :func:`log_softmax`: ``grad_out - exp(y) * sum(grad_out, dim)``, y the output."""
    x, g, o, s = _in_vjp("log_softmax_vjp", x, grad_out, out)
    d = _dim("log_softmax_vjp", dim, x.ndim - s)
    return _ret(_along(_log_softmax_vjp, d, x, g, o), s)


def _log_softmax_vjp(x, g, o, d):
    t = _softmax(x, d) if o is None else np.exp(o)
    t *= g.sum(axis=d, keepdims=True)
    np.subtract(g, t, out=t)
    return t


# --------------------------------------------------------------------------- dropout

def _dropout_args(op, x, p, training, generator, return_mask):
    x = C.as_float_array(op, "input", x)
    C.check_alloc(op, 2 * x.size * x.itemsize, "output and mask")
    p = C.real_number(op, "p", p)
    if not 0 <= p <= 1:
        C.fail(op, "p", "in [0, 1]", p)
    training = C.flag(op, "training", training)
    return_mask = C.flag(op, "return_mask", return_mask)
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{op}: generator must be a numpy.random.Generator or None; "
                        f"got generator of type {type(generator).__name__}.")
    return x, p, training, return_mask


def _dropout(x, p, training, generator, return_mask, mask_shape):
    if not training:
        y, mask = x, np.ones((1,) * x.ndim, dtype=x.dtype)
    else:
        if p == 1:
            mask = np.zeros(mask_shape, dtype=x.dtype)
        else:
            rng = np.random.default_rng() if generator is None else generator
            draw = np.float32 if x.dtype.itemsize <= 4 else np.float64
            mask = (rng.random(mask_shape, dtype=draw) >= p).astype(x.dtype)  # kept with probability 1 - p
            mask *= 1 / (1 - p)
        y = x * mask
    return (y, mask) if return_mask else y


def dropout(x, p=0.5, training=True, *, generator=None, return_mask=False):
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p).

    Parameters
    ----------
    x : array, any shape.
    p : probability of zeroing, in [0, 1]; p = 1 gives zeros.
    training : when False, x is returned unchanged.
    generator : a ``numpy.random.Generator``; None uses ``np.random.default_rng()``.
    return_mask : also return the mask (x's dtype, values 0 or 1/(1-p)) with
        ``y = x * mask``; pass it to :func:`dropout_vjp`. Outside training it is
        ones of shape (1,) * x.ndim.

    Examples
    --------
    >>> dropout(np.ones(4), p=0.0)
    array([1., 1., 1., 1.])
    >>> y, mask = dropout(np.ones(3), p=1.0, return_mask=True)
    >>> y
    array([0., 0., 0.])
    """
    x, p, training, return_mask = _dropout_args("dropout", x, p, training, generator, return_mask)
    return _dropout(x, p, training, generator, return_mask, x.shape)


def _feature_dropout(n, x, p, training, generator, return_mask):
    op = f"dropout{n}d"
    x, p, training, return_mask = _dropout_args(op, x, p, training, generator, return_mask)
    dims = ("L",) if n == 1 else ("H", "W") if n == 2 else ("D", "H", "W")
    what = "(N, C, {0}) or (C, {0})".format(", ".join(dims))
    C.batched(op, x, n, what=what)
    mask_shape = x.shape[:x.ndim - n] + (1,) * n
    return _dropout(x, p, training, generator, return_mask, mask_shape)


def dropout1d(x, p=0.5, training=True, *, generator=None, return_mask=False):
    """Channel dropout for (N, C, L) or (C, L): zeroes whole channels; mask shape (N, C, 1).

    Arguments as :func:`dropout`.

    Examples
    --------
    >>> dropout1d(np.ones((2, 3)), p=1.0)
    array([[0., 0., 0.],
           [0., 0., 0.]])
    """
    return _feature_dropout(1, x, p, training, generator, return_mask)


def dropout2d(x, p=0.5, training=True, *, generator=None, return_mask=False):
    """Channel dropout for (N, C, H, W) or unbatched (C, H, W); mask shape (N, C, 1, 1).

    Arguments as :func:`dropout`. A 3-d input is unbatched (C, H, W), the
    behaviour PyTorch documents as its future one (today it treats 3-d as
    (N, C, L) with a warning).

    Examples
    --------
    >>> y, mask = dropout2d(np.ones((2, 3, 4, 4)), p=0.5, return_mask=True,
    ...                     generator=np.random.default_rng(0))
    >>> mask.shape
    (2, 3, 1, 1)
    """
    return _feature_dropout(2, x, p, training, generator, return_mask)


def dropout3d(x, p=0.5, training=True, *, generator=None, return_mask=False):
    """Channel dropout for (N, C, D, H, W) or (C, D, H, W); mask shape (N, C, 1, 1, 1).

    Arguments as :func:`dropout`.

    Examples
    --------
    >>> dropout3d(np.ones((1, 2, 1, 1, 1)), training=False).ravel()
    array([1., 1.])
    """
    return _feature_dropout(3, x, p, training, generator, return_mask)


def dropout_vjp(grad_out, mask):
    """Gradient of every dropout: ``grad_out * mask`` (the mask broadcasts; None means ones).

    Examples
    --------
    >>> dropout_vjp(np.ones((2, 2)), np.array([[0.], [2.]]))
    array([[0., 0.],
           [2., 2.]])
    """
    op = "dropout_vjp"
    g = C.as_float_array(op, "grad_out", grad_out)
    if mask is None:
        return g
    m = C.as_float_array(op, "mask", mask)
    try:
        ok = np.broadcast_shapes(m.shape, g.shape) == g.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: mask.shape must broadcast to grad_out.shape {g.shape}; got mask.shape={m.shape}.")
    return g.astype(m.dtype, copy=False) * m


__all__ = [
    "relu", "relu_vjp", "relu6", "relu6_vjp", "leaky_relu", "leaky_relu_vjp", "prelu", "prelu_vjp",
    "elu", "elu_vjp", "selu", "selu_vjp", "sigmoid", "sigmoid_vjp", "tanh", "tanh_vjp", "silu", "silu_vjp",
    "softplus", "softplus_vjp", "erf", "gelu", "gelu_vjp", "hardsigmoid", "hardsigmoid_vjp",
    "hardswish", "hardswish_vjp", "softmax", "softmax_vjp", "log_softmax", "log_softmax_vjp",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "dropout_vjp",
]
