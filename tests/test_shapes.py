"""convkit.shapes: the one place the arithmetic lives, checked against hand-worked cases and PyTorch."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from convkit import shapes


@pytest.mark.parametrize("args,expected", [
    (((28, 28), 5, 1, 2), (28, 28)),
    (((28, 28), 5, 1, 0), (24, 24)),
    (((224, 224), 7, 2, 3), (112, 112)),
    (((7,), 3, 2, 0), (3,)),
    (((8,), 3, 3, 0), (2,)),          # the stride does not tile: floor
    (((10,), 3, 1, 0, 2), (6,)),      # dilation 2: effective kernel 5
    (((5, 6), (2, 3), (2, 1), ((1, 0), (0, 2))), (3, 6)),
])
def test_conv_output_shape(args, expected):
    assert shapes.conv_output_shape(*args) == expected


def test_strict_mode_shows_the_arithmetic():
    with pytest.raises(ValueError, match=r"\(28 - 5 \+ 2\*0\)/2 \+ 1 = 12\.5 is not an integer"):
        shapes.conv_output_shape((28,), 5, stride=2, strict=True)
    assert shapes.conv_output_shape((28,), 5, stride=2) == (12,)
    assert shapes.conv_output_shape((27,), 5, stride=2, strict=True) == (12,)
    with pytest.raises(ValueError, match=r"dilated kernel 2\*\(3-1\)\+1 = 5"):
        shapes.conv_output_shape((12,), 3, stride=3, dilation=2, strict=True)


def test_output_below_one_is_always_an_error():
    with pytest.raises(ValueError, match=r"output size must be >= 1 in spatial dim 1; got \(2 - 3 \+ 2\*0\)/1 \+ 1 = 0"):
        shapes.conv_output_shape((5, 2), 3)


@pytest.mark.parametrize("w,k,s,d,lower,expected", [
    (28, 5, 1, 1, False, (2, 2)),
    (28, 4, 1, 1, False, (1, 2)),
    (28, 4, 1, 1, True, (2, 1)),
    (7, 4, 2, 1, False, (1, 2)),     # out = ceil(7/2) = 4: total = 3*2 + 4 - 7 = 3
    (8, 3, 2, 1, False, (0, 1)),
    (9, 3, 3, 1, False, (0, 0)),
    (5, 3, 1, 2, False, (2, 2)),
])
def test_same_padding_rule(w, k, s, d, lower, expected):
    pads = shapes.resolve_padding("same_lower" if lower else "same", (w,), k, s, d)
    assert pads == (expected,)
    assert shapes.conv_output_shape((w,), k, s, pads, d) == (-(-w // s),)


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3))
def test_same_gives_ceil_of_input_over_stride(w, k, s, d):
    pads = shapes.resolve_padding("same", (w,), k, s, d)
    assert shapes.conv_output_shape((w,), k, s, pads, d) == (-(-w // s),)
    lo, hi = pads[0]
    assert hi - lo in (0, 1)


def test_pool_output_shape_ceil_mode():
    assert shapes.pool_output_shape((5,), 2) == (2,)
    assert shapes.pool_output_shape((5,), 2, ceil_mode=True) == (3,)
    # a window that would start in the right padding is dropped
    assert shapes.pool_output_shape((6,), 2, stride=2, padding=1, ceil_mode=True) == (4,)
    assert shapes.pool_output_shape((5,), 3, stride=2, padding=1, ceil_mode=True) == (3,)


@given(st.integers(1, 20), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2), st.integers(1, 2),
       st.booleans())
def test_pool_shape_matches_torch(w, k, s, p, d, ceil):
    torch = pytest.importorskip("torch")
    if p > k // 2 or w + 2 * p < d * (k - 1) + 1:
        return
    out = torch.nn.functional.max_pool1d(torch.zeros(1, 1, w), k, s, p, d, ceil_mode=ceil).shape[-1]
    assert shapes.pool_output_shape((w,), k, s, p, d, ceil) == (out,)


def test_conv_transpose_output_shape():
    assert shapes.conv_transpose_output_shape((14, 14), 4, 2, 1) == (28, 28)
    assert shapes.conv_transpose_output_shape((3,), 3, 2, 0, 1) == (8,)
    assert shapes.conv_transpose_output_shape((3,), 3, 2, ((1, 0),)) == (6,)
    with pytest.raises(ValueError, match="output_padding must be smaller than stride or dilation"):
        shapes.conv_transpose_output_shape((3,), 3, 2, 0, 2)


def test_receptive_field():
    assert shapes.receptive_field([3, 3, 3]).size == (7,)
    rf = shapes.receptive_field([{"kernel_size": 5, "stride": 1}, {"kernel_size": 2, "stride": 2},
                                 {"kernel_size": 5}, {"kernel_size": 2, "stride": 2}], ndim=2)
    assert rf.size == (16, 16) and rf.jump == (4, 4)
    assert shapes.receptive_field([{"kernel_size": 3, "dilation": 2}]).size == (5,)
    assert str(shapes.receptive_field([3])) == "receptive field 3, jump 1"


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: shapes.conv_output_shape((28,), 0), ValueError, r"conv: kernel_size must be >= 1; got kernel_size=0\."),
    (lambda: shapes.conv_output_shape((28,), 3, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: shapes.conv_output_shape((0,), 3), ValueError, r"input_shape must be >= 1"),
    (lambda: shapes.conv_output_shape((), 3), ValueError, r"input_shape must be a non-empty"),
    (lambda: shapes.conv_output_shape((28,), 3, padding="full"), ValueError, r"padding must be"),
    (lambda: shapes.conv_output_shape((28,), (3, 3)), ValueError, r"kernel_size must be an int or a sequence of 1"),
    (lambda: shapes.conv_output_shape((28,), 3.0), TypeError, r"kernel_size must be an int"),
])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_numpy_integers_are_accepted():
    assert shapes.conv_output_shape((np.int64(28),), np.int32(5)) == (24,)
