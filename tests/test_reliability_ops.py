"""Reliability of every public F.* op and nn layer on bad and edge inputs.

For each op (listed from ``convkit.functional.__all__``, checked to be complete) a valid call
on small arrays is taken as the base; then its main input is replaced by wrong ranks, empty
dimensions, wrong dtypes (ints, bool, complex, object, str), non-contiguous, reversed, broadcast
and read-only views, Python lists, NaN and inf. Every call must either return, or raise a
ValueError or TypeError whose message starts with the op's name and names an argument. Views
must give the same numbers as a contiguous copy; NaN (and inf, where the function is not
saturating) must reach the output. Hypothesis then draws sizes and hyper-parameters (negative,
zero, huge, wrong types) for the windowed ops, where the only other allowed outcome is a
MemoryError raised before allocating, naming the op and the bytes needed.
"""
import collections
import os
import re

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import convkit.functional as F  # noqa: E402
import convkit.nn as nn  # noqa: E402
from convkit._config import alloc_limit, check_alloc  # noqa: E402


# NaN and inf inputs make NumPy warn (inf - inf, ...): expected here, and the values are what is checked
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning",
                                        "ignore:divide by zero encountered:RuntimeWarning",
                                        "ignore:.*must equal num_features:UserWarning")

# CONVKIT_FUZZ=20 runs 20 times the examples (docs/reliability.md quotes such a run)
FUZZ = int(os.environ.get("CONVKIT_FUZZ", "1"))


# calls made and how they ended, printed at the end of the module (pytest -s): the figures in docs/reliability.md
STATS = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def report_stats():
    yield
    print("\nreliability_ops:", dict(STATS))


def counted(call):
    def run(*a):
        STATS["calls"] += 1
        try:
            y = call(*a)
        except (ValueError, TypeError, MemoryError) as e:
            STATS[type(e).__name__] += 1
            raise
        STATS["returned"] += 1
        return y
    return run


def rnd(*shape, seed=0):
    return np.random.default_rng(seed + 7 * len(shape) + sum(shape)).standard_normal(shape)


X1, X2, X3 = rnd(2, 3, 7), rnd(2, 3, 6, 6), rnd(1, 2, 4, 4, 4)
V = rnd(2, 3, 4)
L = rnd(4, 5)
T_IDX = np.array([0, 3, 1, 4])
T01 = np.random.default_rng(1).uniform(0.05, 0.95, (4, 5))
P01 = np.random.default_rng(2).uniform(0.05, 0.95, (4, 5))
W1, W2, W3 = rnd(4, 3, 3, seed=1), rnd(4, 3, 3, 3, seed=1), rnd(3, 2, 2, 2, 2, seed=1)
WT1, WT2, WT3 = rnd(3, 2, 3, seed=2), rnd(3, 2, 3, 3, seed=2), rnd(2, 2, 2, 2, 2, seed=2)
B4 = rnd(4, seed=3)
G4 = rnd(2, 4, 3, 3)
LW, LB = rnd(5, 4, seed=4), rnd(5, seed=4)


def ones_like_out(y):
    return np.ones(np.shape(y[0] if isinstance(y, tuple) else y))


def gen():
    return np.random.default_rng(0)


# name -> (base input, call(x), flags). "n": NaN reaches an output; "i": +inf gives a non-finite output;
# "d": the domain is [0, 1] (probabilities): NaN and inf are refused with a ValueError, as PyTorch does.
CASES = {}


def case(name, x, call, flags=""):
    CASES[name] = (x, call, flags)


# convolutions
case("conv", X2, lambda x: F.conv(x, W2, B4, padding=1), "ni")
case("conv1d", X1, lambda x: F.conv1d(x, W1, B4), "ni")
case("conv2d", X2, lambda x: F.conv2d(x, W2, B4, stride=2), "ni")
case("conv3d", X3, lambda x: F.conv3d(x, W3), "ni")
_g = np.ones((2, 4, 6, 6))
case("conv_vjp", X2, lambda x: F.conv_vjp(_g, x, W2, B4, padding=1), "n")
case("conv_transpose", X2, lambda x: F.conv_transpose(x, WT2, stride=2), "ni")
case("conv_transpose1d", X1, lambda x: F.conv_transpose1d(x, WT1, padding=1), "ni")
case("conv_transpose2d", X2, lambda x: F.conv_transpose2d(x, WT2, groups=1), "ni")
case("conv_transpose3d", X3, lambda x: F.conv_transpose3d(x, WT3), "ni")
_gt = np.ones((2, 2, 13, 13))
case("conv_transpose_vjp", X2, lambda x: F.conv_transpose_vjp(_gt, x, WT2, stride=2), "n")
# padding, unfold
case("pad", V, lambda x: F.pad(x, (1, 2)), "ni")
case("pad_vjp", V, lambda x: F.pad_vjp(np.ones((2, 3, 7)), x, (1, 2), mode="reflect"))
case("unfold", X2, lambda x: F.unfold(x, 3), "ni")
_cols = rnd(2, 27, 16)
case("fold", _cols, lambda c: F.fold(c, (6, 6), 3), "ni")
case("unfold_vjp", X2, lambda x: F.unfold_vjp(np.ones((2, 27, 16)), x, 3))
case("fold_vjp", _cols, lambda c: F.fold_vjp(np.ones((2, 3, 6, 6)), c, (6, 6), 3))
# pooling
for _n, _x in ((None, X2), (1, X1), (2, X2), (3, X3)):
    _s = "" if _n is None else f"{_n}d"
    _f = {k: getattr(F, k + _s) for k in ("max_pool", "avg_pool", "lp_pool", "adaptive_avg_pool",
                                          "adaptive_max_pool", "max_unpool")}
    case("max_pool" + _s, _x, lambda x, f=_f["max_pool"]: f(x, 2), "ni")
    case("avg_pool" + _s, _x, lambda x, f=_f["avg_pool"]: f(x, 3, stride=2, padding=1), "ni")
    case("lp_pool" + _s, _x, lambda x, f=_f["lp_pool"]: f(x, 2, 2), "ni")
    case("adaptive_avg_pool" + _s, _x, lambda x, f=_f["adaptive_avg_pool"], n=_x.ndim - 2: f(x, (3,) * n), "ni")
    case("adaptive_max_pool" + _s, _x, lambda x, f=_f["adaptive_max_pool"], n=_x.ndim - 2: f(x, (2,) * n), "ni")
    _y, _i = F.max_pool(_x, 2, return_indices=True)
    case("max_unpool" + _s, _y, lambda y, f=_f["max_unpool"], i=_i: f(y, i, 2), "ni")
case("max_pool_vjp", X2, lambda x: F.max_pool_vjp(np.ones((2, 3, 3, 3)), x, 2))
case("avg_pool_vjp", X2, lambda x: F.avg_pool_vjp(np.ones((2, 3, 3, 3)), x, 3, stride=2, padding=1))
case("lp_pool_vjp", X2, lambda x: F.lp_pool_vjp(np.ones((2, 3, 3, 3)), x, 2, 2))
case("adaptive_avg_pool_vjp", X2, lambda x: F.adaptive_avg_pool_vjp(np.ones((2, 3, 3, 3)), x, 3))
case("adaptive_max_pool_vjp", X2, lambda x: F.adaptive_max_pool_vjp(np.ones((2, 3, 2, 2)), x, 2))
_yu, _iu = F.max_pool(X2, 2, return_indices=True)
case("max_unpool_vjp", _yu, lambda y: F.max_unpool_vjp(np.ones((2, 3, 6, 6)), y, _iu, 2))
case("global_avg_pool", X2, F.global_avg_pool, "ni")
case("global_max_pool", X2, F.global_max_pool, "ni")
case("global_avg_pool_vjp", X2, lambda x: F.global_avg_pool_vjp(np.ones((2, 3, 1, 1)), x))
case("global_max_pool_vjp", X2, lambda x: F.global_max_pool_vjp(np.ones((2, 3, 1, 1)), x))
# activations: elementwise ones saturate (no inf flag) or grow (inf flag)
for _name, _flags in (("relu", "ni"), ("relu6", "n"), ("leaky_relu", "ni"), ("elu", "ni"), ("selu", "ni"),
                      ("sigmoid", "n"), ("tanh", "n"), ("silu", "ni"), ("softplus", "ni"), ("erf", "n"),
                      ("gelu", "ni"), ("hardsigmoid", "n"), ("hardswish", "ni")):
    case(_name, V, getattr(F, _name), _flags)
    if _name != "erf":
        case(_name + "_vjp", V, lambda x, f=getattr(F, _name + "_vjp"): f(np.ones((2, 3, 4)), x))
_pw = np.full(3, 0.25)
case("prelu", V, lambda x: F.prelu(x, _pw), "ni")
case("prelu_vjp", V, lambda x: F.prelu_vjp(np.ones((2, 3, 4)), x, _pw))
case("softmax", V, lambda x: F.softmax(x, 1), "ni")
case("log_softmax", V, lambda x: F.log_softmax(x, 1), "ni")
case("softmax_vjp", V, lambda x: F.softmax_vjp(np.ones((2, 3, 4)), x, 1))
case("log_softmax_vjp", V, lambda x: F.log_softmax_vjp(np.ones((2, 3, 4)), x, 1))
case("dropout", V, lambda x: F.dropout(x, 0.5, True, generator=gen()))
case("dropout1d", V, lambda x: F.dropout1d(x, 0.5, True, generator=gen()))
case("dropout2d", X2, lambda x: F.dropout2d(x, 0.5, True, generator=gen()))
case("dropout3d", X3, lambda x: F.dropout3d(x, 0.5, True, generator=gen()))
_mask = F.dropout(V, 0.5, True, generator=gen(), return_mask=True)[1]
case("dropout_vjp", V, lambda g: F.dropout_vjp(g, _mask), "n")
# losses
case("cross_entropy", L, lambda x: F.cross_entropy(x, T_IDX), "ni")
case("cross_entropy_vjp", L, lambda x: F.cross_entropy_vjp(1.0, x, T_IDX))
case("nll_loss", L, lambda x: F.nll_loss(x, T_IDX), "ni")
case("nll_loss_vjp", L, lambda x: F.nll_loss_vjp(1.0, x, T_IDX))
case("mse_loss", L, lambda x: F.mse_loss(x, T01), "ni")
case("mse_loss_vjp", L, lambda x: F.mse_loss_vjp(1.0, x, T01))
case("l1_loss", L, lambda x: F.l1_loss(x, T01), "ni")
case("l1_loss_vjp", L, lambda x: F.l1_loss_vjp(1.0, x, T01))
case("binary_cross_entropy_with_logits", L, lambda x: F.binary_cross_entropy_with_logits(x, T01), "ni")
case("binary_cross_entropy_with_logits_vjp", L, lambda x: F.binary_cross_entropy_with_logits_vjp(1.0, x, T01))
case("binary_cross_entropy", P01, lambda x: F.binary_cross_entropy(x, T01), "d")
case("binary_cross_entropy_vjp", P01, lambda x: F.binary_cross_entropy_vjp(1.0, x, T01), "d")
# normalisation
case("batch_norm", X2, lambda x: F.batch_norm(x, np.zeros(3), np.ones(3), training=True), "ni")
case("batch_norm_vjp", X2, lambda x: F.batch_norm_vjp(np.ones((2, 3, 6, 6)), x, np.zeros(3), np.ones(3),
                                                      training=True))
case("layer_norm", X2, lambda x: F.layer_norm(x, (6, 6)), "ni")
case("layer_norm_vjp", X2, lambda x: F.layer_norm_vjp(np.ones((2, 3, 6, 6)), x, (6, 6)))
case("group_norm", G4, lambda x: F.group_norm(x, 2), "ni")
case("group_norm_vjp", G4, lambda x: F.group_norm_vjp(np.ones((2, 4, 3, 3)), x, 2))
case("instance_norm", X2, F.instance_norm, "ni")
case("instance_norm_vjp", X2, lambda x: F.instance_norm_vjp(np.ones((2, 3, 6, 6)), x))
case("local_response_norm", X2, lambda x: F.local_response_norm(x, 3), "ni")
case("local_response_norm_vjp", X2, lambda x: F.local_response_norm_vjp(np.ones((2, 3, 6, 6)), x, 3))
case("linear", L[:, :4], lambda x: F.linear(x, LW, LB), "ni")
case("linear_vjp", L[:, :4], lambda x: F.linear_vjp(np.ones((4, 5)), x, LW, LB))


# settings and introspection of the convolution planner, not array ops
NOT_OPS = {"autotune", "clear_plans", "conv_algorithms", "conv_plans", "get_autotune", "set_autotune"}


def test_every_public_op_has_a_case():
    assert sorted(set(F.__all__) - set(CASES) - NOT_OPS) == []
    assert sorted(set(CASES) - set(F.__all__)) == []


# ------------------------------------------------------------------ the checks


def _base(name):
    name = name.removesuffix("_vjp")
    return re.sub(r"[123]d$", "", name)


def check_error(op, exc, allowed_heads=()):
    """exc is a ValueError/TypeError (or MemoryError) whose message is "op: argument ..."."""
    msg = str(exc)
    head, sep, rest = msg.partition(": ")
    assert sep, f"{op}: message has no 'op: ' prefix: {msg!r}"
    assert _base(head) == _base(op) or head in allowed_heads, f"{op}: message names {head!r}: {msg!r}"
    if isinstance(exc, MemoryError):
        assert re.search(r"would need \d+ bytes", rest), msg
        return
    arg = re.match(r"[A-Za-z_]+", rest)
    assert arg, msg
    assert "must" in rest or "only" in rest, msg


def outcome(op, call, x, allowed_heads=()):
    """Run call(x): returns its result, or None after checking the error it raised."""
    try:
        return call(x)
    except (ValueError, TypeError) as e:
        check_error(op, e, allowed_heads)
        return None


def arrays_of(y):
    y = y if isinstance(y, tuple) else (y,)
    return [np.asarray(getattr(a, "data", a)) for a in y if a is not None]


def same(a, b, what):
    """Equal up to rounding: a reduction may sum in another order over another memory layout."""
    for p, q in zip(arrays_of(a), arrays_of(b)):
        assert p.shape == q.shape and p.dtype == q.dtype, what
        tol = 1e-12 if p.dtype.kind != "f" else max(1e-12, 16 * float(np.finfo(p.dtype).eps))
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol, err_msg=what)


def _bad_ranks(x):
    out = [x.reshape(-1), x[None], x[None, None], np.float64(1.5)]
    if x.ndim > 2:
        out.append(x[0, 0])
    return out


def _zero_sizes(x):
    return [x[(slice(None),) * ax + (slice(0, 0),)] for ax in range(x.ndim)]


def _views(x):
    big = np.zeros(tuple(2 * s for s in x.shape))
    strided = big[(slice(None, None, 2),) * x.ndim]
    strided[...] = x
    ro = x.copy()
    ro.flags.writeable = False
    return {"strided": strided, "fortran": np.asfortranarray(x), "reversed": x[..., ::-1],
            "broadcast": np.broadcast_to(x[:1], x.shape), "read-only": ro}


@pytest.mark.parametrize("op", sorted(CASES))
def test_bad_and_edge_inputs(op):
    x, call, flags = CASES[op]
    call = counted(call)
    ref = call(x.copy())  # the base call is valid
    assert all(np.isfinite(a).all() for a in arrays_of(ref) if a.dtype.kind == "f"), op
    for bad in _bad_ranks(x) + _zero_sizes(x):
        outcome(op, call, bad)
    for dtype in (np.int32, np.int64, np.uint8, bool, np.float16, np.float32):
        outcome(op, call, (x * 3).astype(dtype))
    for dtype in (np.complex128, object, str):
        with pytest.raises(TypeError) as info:
            call(x.astype(dtype))
        check_error(op, info.value)
    for what, view in _views(x).items():
        same(call(view), call(np.ascontiguousarray(view)), f"{op} on a {what} view")
    same(outcome(op, call, x.tolist()), ref, f"{op} on a list")
    for value, flag in ((np.nan, "n"), (np.inf, "i")):
        bad = x.copy()
        bad.flat[0] = value
        # a non-finite value is data, never an error (except where the domain is [0, 1])
        y = outcome(op, call, bad) if "d" in flags else call(bad)
        if flag in flags:
            check = np.isnan if flag == "n" else (lambda a: ~np.isfinite(a))
            assert any(check(a).any() for a in arrays_of(y)), f"{op}: {value} in the input does not reach the output"


# ops whose output depends on every input element (an element anywhere must carry its NaN through)
EVERY_ELEMENT = {"conv", "conv1d", "conv3d", "conv_transpose", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "pad", "unfold", "fold", "max_pool", "max_pool2d", "max_pool3d",
                 "lp_pool", "lp_pool2d", "lp_pool3d", "adaptive_avg_pool", "adaptive_avg_pool1d",
                 "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool", "adaptive_max_pool1d",
                 "adaptive_max_pool2d", "adaptive_max_pool3d", "global_avg_pool", "global_max_pool", "relu", "relu6",
                 "leaky_relu", "elu", "selu", "sigmoid", "tanh", "silu", "softplus", "erf", "gelu", "hardsigmoid",
                 "hardswish", "prelu", "softmax", "log_softmax", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
                 "cross_entropy", "batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
                 "linear", "max_unpool", "max_unpool1d", "max_unpool2d", "max_unpool3d"}


@settings(max_examples=100 * FUZZ)
@given(op=st.sampled_from(sorted(CASES)), dtype=st.sampled_from([np.float64, np.float32, np.float16]),
       layout=st.sampled_from(["contiguous", "strided", "fortran", "reversed", "broadcast", "read-only"]),
       where=st.floats(0, 1, exclude_max=True), value=st.sampled_from([None, np.nan]))
def test_random_layouts_dtypes_and_nan_positions(op, dtype, layout, where, value):
    x, call, flags = CASES[op]
    call = counted(call)
    x = x.astype(dtype)
    if value is not None:
        x = x.copy()
        x.flat[int(where * x.size)] = value
    view = x if layout == "contiguous" else _views(x)[layout]
    if layout == "broadcast":
        x = np.ascontiguousarray(view)
    try:
        y = call(view)
    except (ValueError, TypeError) as e:  # only binary_cross_entropy refuses NaN (its domain is [0, 1])
        assert "d" in flags and value is not None, (op, e)
        check_error(op, e)
        return
    same(y, call(np.ascontiguousarray(view)), f"{op} on a {layout} {np.dtype(dtype).name} view")
    outs = [a for a in arrays_of(y) if a.dtype.kind == "f"]
    if value is None and dtype != np.float16:  # float16 overflows in exp and friends: inf is then right
        assert all(np.isfinite(a).all() for a in outs), op
    if value is not None and op in EVERY_ELEMENT and (layout != "broadcast" or int(where * x.size) < x[0].size):
        assert any(np.isnan(a).any() for a in outs), f"{op}: a NaN at flat index {int(where * x.size)} was lost"


# ------------------------------------------------------------------ nn layers

LAYERS = {
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3), X1), "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), X2),
    "Conv3d": (lambda: nn.Conv3d(2, 3, 2), X3), "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 2, 3), X1),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2), X2),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(2, 2, 2), X3), "Linear": (lambda: nn.Linear(4, 5), L[:, :4]),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), X1), "BatchNorm2d": (lambda: nn.BatchNorm2d(3), X2),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(2), X3), "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3), X1),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3), X2), "InstanceNorm3d": (lambda: nn.InstanceNorm3d(2), X3),
    "LayerNorm": (lambda: nn.LayerNorm(6), X2), "GroupNorm": (lambda: nn.GroupNorm(2, 4), G4),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3), X2),
    "ReLU": (nn.ReLU, V), "ReLU6": (nn.ReLU6, V), "LeakyReLU": (nn.LeakyReLU, V), "Sigmoid": (nn.Sigmoid, V),
    "Tanh": (nn.Tanh, V), "GELU": (nn.GELU, V), "SiLU": (nn.SiLU, V), "ELU": (nn.ELU, V), "SELU": (nn.SELU, V),
    "Softplus": (nn.Softplus, V), "Hardswish": (nn.Hardswish, V), "Hardsigmoid": (nn.Hardsigmoid, V),
    "PReLU": (lambda: nn.PReLU(3), V), "Softmax": (lambda: nn.Softmax(1), V),
    "LogSoftmax": (lambda: nn.LogSoftmax(1), V),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), X1), "MaxPool2d": (lambda: nn.MaxPool2d(2), X2),
    "MaxPool3d": (lambda: nn.MaxPool3d(2), X3), "AvgPool1d": (lambda: nn.AvgPool1d(2), X1),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, 1), X2), "AvgPool3d": (lambda: nn.AvgPool3d(2), X3),
    "LPPool1d": (lambda: nn.LPPool1d(2, 2), X1), "LPPool2d": (lambda: nn.LPPool2d(2, 2), X2),
    "LPPool3d": (lambda: nn.LPPool3d(2, 2), X3), "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(3), X1),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(3), X2),
    "AdaptiveAvgPool3d": (lambda: nn.AdaptiveAvgPool3d(2), X3),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(3), X1),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(3), X2),
    "AdaptiveMaxPool3d": (lambda: nn.AdaptiveMaxPool3d(2), X3),
    "MaxUnpool1d": (lambda: nn.MaxUnpool1d(2), F.max_pool1d(X1, 2)),
    "MaxUnpool2d": (lambda: nn.MaxUnpool2d(2), F.max_pool2d(X2, 2)),
    "MaxUnpool3d": (lambda: nn.MaxUnpool3d(2), F.max_pool3d(X3, 2)),
    "Dropout": (lambda: nn.Dropout(0.5), V), "Dropout1d": (lambda: nn.Dropout1d(0.5), V),
    "Dropout2d": (lambda: nn.Dropout2d(0.5), X2), "Dropout3d": (lambda: nn.Dropout3d(0.5), X3),
    "Flatten": (nn.Flatten, X2), "Unflatten": (lambda: nn.Unflatten(1, (1, 3)), V),
    "Identity": (nn.Identity, V),
}
_CONTAINERS = {"Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "IncompatibleKeys", "init"}


def test_every_layer_has_a_case():
    assert sorted(set(nn.__all__) - set(LAYERS) - _CONTAINERS) == []


@pytest.mark.parametrize("name", sorted(k for k, v in LAYERS.items() if v is not None))
def test_layer_bad_and_edge_inputs(name):
    make, x = LAYERS[name]
    layer = make().eval()
    heads = (name,) + tuple(F.__all__)
    indices = None
    if name.startswith("MaxUnpool"):  # its second input: where max_pool found the values x holds
        base = {"1d": X1, "2d": X2, "3d": X3}[name[-2:]]
        indices = getattr(F, "max_pool" + name[-2:])(base, 2, return_indices=True)[1]

    @counted
    def call(a):
        return layer(a) if indices is None else layer(a, indices)

    ref = arrays_of(call(x.copy()))
    for bad in _bad_ranks(x) + _zero_sizes(x):
        outcome(name, call, bad, heads)
    for dtype in (np.int64, bool, np.float32):
        outcome(name, call, x.astype(dtype), heads)
    for dtype in (np.complex128, object):
        if name in ("Flatten", "Unflatten", "Identity"):  # only move data: any dtype is fine
            assert arrays_of(call(x.astype(dtype)))[0].dtype == dtype
            continue
        with pytest.raises(TypeError) as info:
            call(x.astype(dtype))
        check_error(name, info.value, heads)
    for what, view in _views(x).items():
        same(call(view), call(np.ascontiguousarray(view)), f"{name} on a {what} view")
    bad = x.copy()
    bad.flat[0] = np.nan
    assert np.isnan(arrays_of(call(bad))[0]).any(), f"{name}: NaN in the input does not reach the output"
    assert ref and all(np.isfinite(a).all() for a in ref if a.dtype.kind == "f")


# Constructors: hypothesis draws bad hyper-parameters; each is refused at construction, naming the class.
_BAD = st.one_of(st.integers(-3, 0), st.just(-(10**9)), st.floats(allow_nan=True), st.text(max_size=2),
                 st.none(), st.just([1, "a"]), st.just(True))


@settings(max_examples=30 * FUZZ)
@given(kind=st.sampled_from(["Conv2d", "ConvTranspose1d", "MaxPool2d", "AvgPool3d", "Linear", "BatchNorm2d",
                             "GroupNorm", "LPPool2d", "AdaptiveAvgPool2d", "Dropout", "LayerNorm"]),
       which=st.integers(0, 2), value=_BAD)
def test_layer_constructors_refuse_bad_arguments(kind, which, value):
    good = {"Conv2d": [3, 4, 3], "ConvTranspose1d": [3, 4, 3], "MaxPool2d": [2, 2, 0], "AvgPool3d": [2, 2, 0],
            "Linear": [3, 4], "BatchNorm2d": [3, 1e-5, 0.1], "GroupNorm": [2, 4, 1e-5], "LPPool2d": [2, 2, 2],
            "AdaptiveAvgPool2d": [3], "Dropout": [0.5], "LayerNorm": [4, 1e-5]}[kind]
    args = list(good)
    args[which % len(args)] = value
    try:
        counted(getattr(nn, kind))(*args)
    except (ValueError, TypeError) as e:
        check_error(kind, e, (kind,))


# ------------------------------------------------------------------ hypothesis over hyper-parameters

_PARAM = st.one_of(st.integers(-2, 7), st.sampled_from([10**9, 2**62]), st.just(1.5), st.just("2"), st.none(),
                   st.tuples(st.integers(-1, 4), st.integers(-1, 4)))


@settings(max_examples=150 * FUZZ)
@given(op=st.sampled_from(["conv2d", "depthwise", "conv_vjp", "conv1d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "lp_pool1d",
                           "unfold", "adaptive_max_pool2d", "max_unpool2d", "pad"]),
       n=st.integers(0, 2), c=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6),
       k=_PARAM, s=_PARAM, p=_PARAM, d=_PARAM, huge_batch=st.booleans())
def test_hyper_parameters_never_crash_hang_or_overallocate(op, n, c, h, w, k, s, p, d, huge_batch):
    hypothesis.assume(not (op == "depthwise" and n == 0))  # a known core bug: see the xfail test below
    one_d = op.endswith("1d")
    shape = (n, c, w) if one_d else (n, c, h, w)
    x = np.ones(shape, np.float32)
    if huge_batch:  # 2**40 samples as a zero-stride view: the test allocates nothing, the op must not either
        x = np.broadcast_to(x[:1] if n else np.ones((1,) + shape[1:], np.float32), (2**40,) + shape[1:])
    f = getattr(F, op, None)
    calls = {
        "depthwise": lambda: F.conv2d(x, np.ones((c, 1, 3, 3), np.float32), stride=s, padding=p, dilation=d,
                                      groups=c),
        "conv_vjp": lambda: F.conv_vjp(np.ones(F.conv2d(x, np.ones((2, c, 2, 2), np.float32), stride=s, padding=p,
                                                        dilation=d).shape, np.float32),
                                       x, np.ones((2, c, 2, 2), np.float32), stride=s, padding=p, dilation=d),
        "conv2d": lambda: f(x, np.ones((2, c, 2, 2), np.float32), stride=s, padding=p, dilation=d),
        "conv1d": lambda: f(x, np.ones((2, c, 3), np.float32), stride=s, padding=p, dilation=d),
        "conv_transpose2d": lambda: f(x, np.ones((c, 2, 2, 2), np.float32), stride=s, padding=p, dilation=d),
        "max_pool2d": lambda: f(x, k, stride=s, padding=p, dilation=d),
        "avg_pool2d": lambda: f(x, k, stride=s, padding=p),
        "lp_pool1d": lambda: f(x, 2, k, stride=s),
        "unfold": lambda: f(x, k, dilation=d, padding=p, stride=s),
        "adaptive_max_pool2d": lambda: f(x, k),
        "max_unpool2d": lambda: f(x, np.broadcast_to(np.zeros((), np.int64), x.shape), k, stride=s, padding=p),
        "pad": lambda: f(x, (k, s) if isinstance(k, int) and isinstance(s, int) else k),
    }
    try:
        with alloc_limit(2**31):
            y = counted(calls[op])()
    except (ValueError, TypeError, MemoryError) as e:
        check_error({"depthwise": "conv2d", "conv_vjp": "conv2d"}.get(op, op), e)
        return
    y = arrays_of(y)[0]
    assert y.nbytes <= 2**31 and not np.isnan(y).any()
    if not op.startswith("max_pool"):  # max_pool: a window wholly in the padding is -inf (documented)
        assert np.isfinite(y).all()


@pytest.mark.parametrize("vjp", [False, True])
def test_depthwise_conv_of_an_empty_batch(vjp):
    x, w = np.ones((0, 2, 5, 5), np.float32), np.ones((2, 1, 3, 3), np.float32)
    if vjp:
        gx, gw, _ = F.conv_vjp(np.ones((0, 2, 3, 3), np.float32), x, w, groups=2)
        assert gx.shape == x.shape and np.array_equal(gw, np.zeros_like(w))
    else:
        assert F.conv2d(x, w, groups=2).shape == (0, 2, 3, 3)


# ------------------------------------------------------------------ MemoryError before allocating


def test_check_alloc_names_op_and_size():
    check_alloc("op", 10)  # small: never refused
    with alloc_limit(2**20):
        with pytest.raises(MemoryError, match=r"^conv2d: output would need 4194304 bytes \(4 MiB\); "
                                              r"the allocation limit is 1048576 bytes"):
            check_alloc("conv2d", 4 * 2**20)
    with pytest.raises(MemoryError, match=r"^relu: output would need \d+ bytes .* of memory are available"):
        check_alloc("relu", 2**62)
    with pytest.raises(ValueError, match="alloc_limit: nbytes must be an int >= 1024"):
        with alloc_limit(5):
            pass


HUGE = 2**36  # samples; a float32 (3, 32, 32) batch of them is 768 TiB, more than any machine has


def _huge(shape, dtype=np.float32):
    return np.broadcast_to(np.ones((), dtype), shape)


@pytest.mark.parametrize("call", [
    lambda: F.conv2d(_huge((HUGE, 3, 32, 32)), np.ones((8, 3, 3, 3), np.float32), padding=1),
    lambda: F.conv2d(_huge((HUGE, 3, 32, 32)), np.ones((3, 1, 3, 3), np.float32), padding=1, groups=3),
    lambda: F.conv2d(_huge((HUGE, 4, 8, 8)), np.ones((4, 4, 1, 1), np.float32)),
    lambda: F.conv1d(_huge((2, 3, 8)), np.ones((2, 3, 3), np.float32), padding=2**40),
    lambda: F.conv_vjp(_huge((HUGE, 8, 30, 30)), _huge((HUGE, 3, 32, 32)), np.ones((8, 3, 3, 3), np.float32)),
    lambda: F.conv_transpose2d(_huge((HUGE, 3, 8, 8)), np.ones((3, 2, 3, 3), np.float32), stride=2),
    lambda: F.conv_transpose1d(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 3), np.float32), stride=2**40),
    lambda: F.max_pool2d(_huge((HUGE, 3, 32, 32)), 2),
    lambda: F.max_pool1d(np.ones((1, 1, 4)), 2**40 + 1, padding=2**39, stride=1),
    lambda: F.avg_pool2d(_huge((HUGE, 3, 32, 32)), 3, padding=1),
    lambda: F.adaptive_avg_pool2d(np.ones((1, 1, 4, 4)), (2**30, 2**30)),
    lambda: F.max_unpool1d(np.ones((1, 1, 2)), np.zeros((1, 1, 2), np.int64), 2**42),
    lambda: F.global_max_pool_vjp(_huge((HUGE, 3, 1, 1)), _huge((HUGE, 3, 32, 32))),
    lambda: F.unfold(_huge((HUGE, 3, 32, 32)), 3),
    lambda: F.fold(_huge((HUGE, 27, 16)), (4, 4), 3, padding=1),
    lambda: F.pad(np.ones((2, 2)), (2**40, 0)),
    lambda: F.relu(_huge((HUGE, 3, 32, 32))),
    lambda: F.softmax(_huge((HUGE, 1000)), 1),
    lambda: F.dropout(_huge((HUGE, 1000))),
    lambda: F.cross_entropy(_huge((HUGE, 1000)), _huge((HUGE,), np.int64)),
    lambda: F.mse_loss(_huge((HUGE, 1000)), _huge((HUGE, 1000))),
    lambda: F.batch_norm(_huge((HUGE, 3, 32, 32)), np.zeros(3), np.ones(3), training=True),
    lambda: F.layer_norm(_huge((HUGE, 64)), 64),
    lambda: F.local_response_norm(_huge((HUGE, 3, 8, 8)), 2),
    lambda: F.linear(_huge((HUGE, 64)), np.ones((10, 64), np.float32)),
    lambda: F.relu(_huge((HUGE, 1000), np.int8)),  # the int -> float64 copy is checked too
    lambda: nn.Conv2d(3, 8, 3)(_huge((HUGE, 3, 32, 32))),
], ids=lambda f: "")
def test_memory_error_before_allocating(call):
    """Outputs larger than the machine: MemoryError naming the op and the bytes, at once (nothing is allocated;
    np.empty of that size would either fail without the size in our terms or overcommit and be OOM-killed)."""
    with pytest.raises(MemoryError) as info:
        counted(call)()
    msg = str(info.value)
    assert re.match(r"^[a-z_0-9]+: .+ would need \d+ bytes \([\d.]+ [KMGTPE]iB\); only \d+ bytes", msg), msg


def test_alloc_limit_applies_to_ordinary_sizes():
    x = np.ones((16, 3, 32, 32), np.float32)  # output of a 64-filter conv: 4 MiB
    w = np.ones((64, 3, 3, 3), np.float32)
    with alloc_limit(2**20):
        with pytest.raises(MemoryError, match=r"^conv2d: output and padded input would need \d+ bytes"):
            F.conv2d(x, w, padding=1)
    assert F.conv2d(x, w, padding=1).shape == (16, 64, 32, 32)  # the limit was for the block only
