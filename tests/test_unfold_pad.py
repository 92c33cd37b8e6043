"""unfold/fold (im2col/col2im) and pad: against the reference, PyTorch, and each other's adjoint."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import convkit.functional as F
import convkit.reference as R


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 5, 6), dict(kernel_size=3)),
    ((2, 3, 5, 6), dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 2), stride=(2, 3))),
    ((2, 3, 7), dict(kernel_size=(2,), stride=3, padding=((2, 0),))),
    ((1, 2, 4, 3, 5), dict(kernel_size=(2, 1, 3), stride=(1, 2, 2), padding=1)),
    ((1, 2, 4, 4), dict(kernel_size=1)),
])
def test_unfold_fold_match_reference(rng, shape, kw):
    x = rng.standard_normal(shape)
    cols = F.unfold(x, **kw)
    np.testing.assert_allclose(cols, R.unfold(x, **kw))
    cols.flags.writeable and None
    assert cols.flags.writeable
    g = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(F.fold(g, shape[2:], **kw), R.fold(g, shape[2:], **kw), atol=1e-12)
    # fold is the adjoint of unfold
    np.testing.assert_allclose(np.vdot(cols, g), np.vdot(x, F.fold(g, shape[2:], **kw)), rtol=1e-10)
    np.testing.assert_allclose(F.unfold_vjp(g, x, **kw), F.fold(g, shape[2:], **kw))


def test_unfold_matmul_is_conv(rng):
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    cols = F.unfold(x, (3, 2), padding=1, stride=2)
    y = (w.reshape(4, -1) @ cols).reshape(2, 4, 3, 3)
    np.testing.assert_allclose(y, F.conv(x, w, padding=1, stride=2))


def test_unfold_fold_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 7, 8))
    for kw in [dict(kernel_size=3), dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 2), stride=(2, 3))]:
        a = F.unfold(x, **kw)
        np.testing.assert_allclose(a, torch.nn.functional.unfold(torch.tensor(x), **kw).numpy())
        np.testing.assert_allclose(F.fold(a, (7, 8), **kw),
                                   torch.nn.functional.fold(torch.tensor(a), (7, 8), **kw).numpy())


def test_unbatched_unfold_fold(rng):
    x = rng.standard_normal((3, 5, 5))
    cols = F.unfold(x, 2)
    assert cols.shape == (12, 16)
    assert F.fold(cols, (5, 5), 2).shape == (3, 5, 5)


@pytest.mark.parametrize("call,pattern", [
    (lambda: F.fold(np.zeros((1, 10, 16)), (5, 5), 2), r"fold: input.shape\[1\] must be divisible by prod\(kernel_size\) = 4"),
    (lambda: F.fold(np.zeros((1, 8, 15)), (5, 5), 2), r"fold: input.shape\[2\] must be the number of windows 16 = 4\*4"),
    (lambda: F.unfold(np.zeros((1, 1, 2, 2)), 3), r"unfold: output size must be >= 1"),
    (lambda: F.unfold(np.zeros((1, 1, 5, 5)), 2, stride=0), r"unfold: stride must be >= 1"),
])
def test_unfold_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (1, 2, 3, 0), (0, 0, 1, 4), (2, 1, 1, 2, 1, 1)])
def test_pad_matches_torch_and_numpy(rng, mode, pad):
    x = rng.standard_normal((2, 3, 5, 6))
    y = F.pad(x, pad, mode)
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    np.testing.assert_allclose(y, np.pad(x, widths, mode=np_mode))
    g = rng.standard_normal(y.shape)
    gx = F.pad_vjp(g, x, pad, mode)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-10)  # pad is linear: adjoint identity


def test_pad_negative_crops_and_value(rng):
    x = rng.standard_normal((2, 5))
    np.testing.assert_allclose(F.pad(x, (-1, 2), value=7.0), np.concatenate([x[:, 1:], np.full((2, 2), 7.0)], 1))
    assert F.pad(np.arange(3, dtype=np.uint8), (1, 1)).dtype == np.uint8


@given(st.integers(1, 6), st.integers(0, 5), st.integers(0, 5), st.sampled_from(["reflect", "replicate", "circular"]))
def test_pad_vjp_is_adjoint(n, lo, hi, mode):
    if mode == "reflect" and (lo >= n or hi >= n) or mode == "circular" and (lo > n or hi > n):
        with pytest.raises(ValueError, match="pad: pad must be"):
            F.pad(np.zeros((1, n)), (lo, hi), mode)
        return
    rng = np.random.default_rng(n * 100 + lo * 10 + hi)
    x = rng.standard_normal((2, n))
    y = F.pad(x, (lo, hi), mode)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, F.pad_vjp(g, x, (lo, hi), mode)), rtol=1e-10)
    np.testing.assert_allclose(F.pad_vjp(g, x, (lo, hi), mode), R.pad_vjp(g[None], (1, 2, n), ((lo, hi),), mode)[0],
                               atol=1e-12)


@pytest.mark.parametrize("call,pattern", [
    (lambda: F.pad(np.zeros((2, 3)), (1,)), r"pad: pad must be a sequence of an even number of ints"),
    (lambda: F.pad(np.zeros((2, 3)), (1, 1), mode="mirror"), r"pad: mode must be"),
    (lambda: F.pad(np.zeros((2, 3)), (3, 0), mode="reflect"), r"pad: pad must be smaller than the input size 3"),
    (lambda: F.pad(np.zeros((2, 3)), (1, 1, 1, 1, 1, 1)), r"pad: pad must be at most 4 ints"),
    (lambda: F.pad(np.zeros((2, 3)), (-2, -2)), r"pad: pad must be such that dim 1 \(size 3\) stays non-empty"),
])
def test_pad_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
