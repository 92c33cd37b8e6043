"""convkit.explain: the arithmetic explanations, one output element, the backward pass, and their CLI."""
import itertools

import numpy as np
import pytest

import convkit.functional as F
from convkit import cli, explain, reference, shapes


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- explain conv
def test_one_by_one_conv_numbers():
    e = explain.conv("1x192x28x28", 32, 1)
    assert e.output_shape == (1, 32, 28, 28)
    assert e.weight_shape == (32, 192, 1, 1) and e.weight_shape_tf == (1, 1, 192, 32) and e.bias_shape == (32,)
    assert e.params == 32 * 192 + 32 and e.macs == 28 * 28 * 192 * 32 == 4_816_896 and e.flops == 2 * e.macs
    text = str(e)
    assert "(784, 192) @ (192, 32) = (784, 32)" in text and "H*W = 28*28 = 784" in text
    assert "(N*OH*OW = 1*28*28 = 784) x (C/G*kH*kW = 192*1*1 = 192) @ 192 x 32" in text
    assert "32*192 = 6,144 kernels of 1x1" in text


def test_tf_mnist_layer_and_same_padding():
    e = explain.conv("1,1,28,28", 32, 5, padding="same")
    assert e.weight_shape_tf == (5, 5, 1, 32) and e.params == 832 and e.padding == ((2, 2), (2, 2))
    text = str(e)
    assert "H: floor((28 + 2 + 2 - 1*(5-1) - 1)/1) + 1 = floor(27/1) + 1 = 28" in text
    assert 'padding "same"' in text and "H (2, 2), W (2, 2)" in text
    odd = explain.conv("1x7x7", 4, 4, stride=2, padding="same")  # total padding 3: extra cell at the end
    assert odd.padding == ((1, 2), (1, 2)) and odd.output_shape == (4, 4, 4)
    assert explain.conv("1x7x7", 4, 4, stride=2, padding="same_lower").padding == ((2, 1), (2, 1))


def test_rounding_down_is_shown_and_strict_refuses_it(capsys):
    e = explain.conv("1x1x28x28", 8, 5, stride=2)
    assert e.output_shape == (1, 8, 12, 12)
    assert "23/2 = 11.5 rounds down: the last 1 cell(s) of the padded input are never read" in str(e)
    with pytest.raises(ValueError, match=r"\(28 - 5 \+ 2\*0\)/2 \+ 1 = 12.5 is not an integer"):
        explain.conv("1x1x28x28", 8, 5, stride=2, strict=True)
    code, out, err = run(capsys, "explain", "conv", "--input", "1x1x28x28", "--out-channels", "8",
                         "--kernel-size", "5", "--stride", "2", "--strict")
    assert code == 2 and out == "" and "(28 - 5 + 2*0)/2 + 1 = 12.5 is not an integer" in err
    assert len(err.strip().splitlines()) == 1


CONFIGS = [  # input, out_channels, kernel, stride, padding, dilation, groups
    ("2x6x9x7", 4, 3, 1, 0, 1, 1), ("6x9x7", 4, (3, 2), (2, 1), 1, 1, 2), ("1x4x11x10", 8, 3, 2, "same", 2, 4),
    ("3x2x13", 3, (4,), 3, ((1, 2),), 1, 1), ("2x5x6x7", 5, 2, 1, "valid", 1, 1), ("1x2x5x6x7", 2, 2, 2, 1, 1, 2),
    ("4x10", 2, 3, 2, 1, 2, 2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_conv_numbers_agree_with_running_the_op(cfg):
    shape, k, ks, st, pad, dl, g = cfg
    e = explain.conv(shape, k, ks, st, pad, dl, g)
    x = np.zeros(explain.parse_shape(shape))
    w = np.ones(e.weight_shape)
    y = F.conv(x, w, np.zeros(k), st, pad, dl, g)
    assert y.shape == e.output_shape
    assert e.params == w.size + k
    assert e.macs == (x.shape[0] if e.batched else 1) * int(np.prod(y.shape[1 if e.batched else 0:])) * \
        int(np.prod(w.shape[1:]))
    # the receptive field of one output cell is the dilated kernel
    n = len(e.kernel_size)
    assert e.receptive_field.size == tuple(d * (f - 1) + 1 for f, d in zip(e.kernel_size, e.dilation))
    assert e.receptive_field.jump == e.stride and len(e.dims) == n


def test_channels_last_layout():
    e = explain.conv("2x28x28x3", 16, 3, stride=2, padding=1, data_format="channels_last")
    y = F.conv(np.zeros((2, 28, 28, 3)), np.zeros((16, 3, 3, 3)), stride=2, padding=1, data_format="channels_last")
    assert e.output_shape == y.shape == (2, 14, 14, 16) and e.in_channels == 3
    assert "(N x H x W x C)" in str(e) and e.weight_shape_tf == (3, 3, 3, 16)


def test_batched_or_unbatched_from_the_number_of_sizes():
    assert explain.conv("3x28x28", 8, 3).batched is False          # int kernel: 3 numbers are C, H, W
    assert explain.conv("1x3x28x28", 8, 3).batched is True         # 4 numbers are N, C, H, W
    assert explain.conv("1x3x28", 8, (3,)).output_shape == (1, 8, 26)          # a 1-tuple kernel: N, C, L
    assert explain.conv("1x3x28", 8, 3, spatial_dims=1).output_shape == (1, 8, 26)
    assert explain.conv("2x3x8x8x8", 4, 3).output_shape == (2, 4, 6, 6, 6)     # 5 numbers: N, C, D, H, W
    with pytest.raises(ValueError, match="1-3 spatial dims"):
        explain.conv("1x1x2x3x4x5", 8, 3)
    with pytest.raises(ValueError, match="1-3 spatial dims"):
        explain.conv("1x3x28x28", 8, (3,))
    with pytest.raises(ValueError, match="input must be positive sizes"):
        explain.conv("1x0x28", 8, 3)
    with pytest.raises(ValueError, match="groups must divide in_channels"):
        explain.conv("1x6x8x8", 8, 3, groups=4)


def test_conv_transpose_numbers_agree_with_the_op():
    e = explain.conv_transpose("1x64x14x14", 32, 4, stride=2, padding=1)
    assert e.output_shape == (1, 32, 28, 28) and e.weight_shape == (64, 32, 4, 4) and e.params == 64 * 32 * 16 + 32
    assert e.gathers == (2, 2) and e.macs == 14 * 14 * 64 * 32 * 16
    assert "H: (14 - 1)*2 - 1 - 1 + 1*(4-1) + 0 + 1 = 28" in str(e)
    assert "H: 14 -> 27 with zeros, padded by 2 and 2 -> 31, window 4 -> 28" in str(e)
    for shape, k, ks, st, pad, op_, dl, g in [("2x4x5x6", 6, 3, 2, 1, 1, 1, 2), ("3x7", 2, 5, 3, (2,), 2, 2, 1),
                                             ("1x2x3x4x5", 4, 2, (1, 2, 3), 0, 0, 1, 1)]:
        e = explain.conv_transpose(shape, k, ks, st, pad, op_, dl, g)
        y = F.conv_transpose(np.zeros(explain.parse_shape(shape)), np.zeros(e.weight_shape), np.zeros(k), st, pad,
                             op_, g, dl)
        assert y.shape == e.output_shape, (shape, y.shape, e.output_shape)
        assert e.params == int(np.prod(e.weight_shape)) + k


def test_pool_numbers_agree_with_the_ops():
    e = explain.pool("1x64x28x28", 2)
    assert e.output_shape == (1, 64, 14, 14) and e.stride == (2, 2) and e.ops == 64 * 14 * 14 * 3
    x = np.zeros((2, 3, 7, 9))
    for ks, st, pad, ceil in [(3, 2, 1, False), (2, None, 0, True), ((3, 2), (2, 3), (1, 0), True)]:
        e = explain.pool(x.shape, ks, st, pad, ceil_mode=ceil)
        assert F.max_pool(x, ks, st, pad, ceil_mode=ceil).shape == e.output_shape
        assert explain.pool(x.shape, ks, st, pad, ceil_mode=ceil, kind="avg").output_shape == \
            F.avg_pool(x, ks, st, pad, ceil_mode=ceil).shape
    assert "ceil((7 + 0 + 0 - 1*(2-1) - 1)/2) + 1 = ceil(5/2) + 1 = 4" in str(explain.pool("64x7x7", 2, ceil_mode=True))
    with pytest.raises(ValueError, match="12.5 is not an integer"):
        explain.pool("1x28x28", 5, stride=2, strict=True)


def test_cli_explain_conv_transpose_and_pool(capsys):
    code, out, _ = run(capsys, "explain", "conv-transpose", "--input", "1x64x14x14", "--out-channels", "32",
                       "--kernel-size", "4", "--stride", "2", "--padding", "1")
    assert code == 0 and "-> output 1x32x28x28" in out and "(64, 32, 4, 4)" in out
    code, out, _ = run(capsys, "explain", "pool", "--input", "1x64x28x28", "--kernel-size", "3", "--stride", "2",
                       "--padding", "1", "--kind", "avg")
    assert code == 0 and "avg_pool: input 1x64x28x28 (N x C x H x W) -> output 1x64x14x14" in out
    code, out, _ = run(capsys, "explain", "conv", "--input", "1,3,32,32", "--out-channels", "16", "--kernel-size",
                       "3x5", "--padding", "0:1x2:2", "--dilation", "1x2")
    assert code == 0 and "-> output 1x16x31x28" in out and "(16, 3, 3, 5)" in out


@pytest.mark.parametrize("argv, message", [
    (["conv", "--input", "1x3xaxb", "--out-channels", "4", "--kernel-size", "3"], "input must be positive sizes"),
    (["conv", "--input", "1x3x8x8", "--out-channels", "4", "--kernel-size", "3", "--padding", "1:x"],
     "--padding must be"),
    (["conv", "--input", "1x3x8x8", "--out-channels", "4", "--kernel-size", "9"], "output size must be >= 1"),
    (["conv-transpose", "--input", "1x3x8x8", "--out-channels", "4", "--kernel-size", "3", "--stride", "2",
      "--output-padding", "2"], "output_padding must be"),
    (["element", "--x", "[[1, 2]", "--w", "[[[1]]]", "--at", "0,0"], "--x must be a JSON list"),
    (["element", "--x", "missing.npy", "--w", "[[[1]]]", "--at", "0,0"], "existing .npy file"),
    (["element", "--x", "[[1, 2]]", "--w", "[[[1]]]", "--at", "0,5"], "at must be an index into the output"),
    (["backward", "--grad-out", "[1, 2]"], "grad_out must have y's shape"),
])
def test_cli_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, "explain", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- explain element
def test_element_of_the_one_by_one_example(capsys):
    x = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    e = explain.element(x, [[[[2]], [[3]]]], at=(0, 0, 0))
    assert e.formula() == "y[0,0,0] = 1*2 + 5*3 = 17" and e.value == 17 == e.conv_value and e.matches
    assert [t.x_index for t in e.terms] == [(0, 0, 0), (1, 0, 0)]
    code, out, _ = run(capsys, "explain", "element", "--x", str(x), "--w", "[[[[2]], [[3]]]]", "--at", "0,1,1")
    assert code == 0 and "y[0,1,1] = 4*2 + 8*3 = 32" in out and "(matches)" in out


def test_element_marks_padding_and_adds_the_bias():
    x = np.arange(1, 26.).reshape(1, 1, 5, 5)
    w = np.arange(9.).reshape(1, 1, 3, 3) - 4
    e = explain.element(x, w, b=[0.5], at=(0, 0, 0, 2), stride=2, padding=1)
    assert sum(t.padded for t in e.terms) == 5 and all(t.x_value == 0 for t in e.terms if t.padded)
    assert e.terms[0].x_index == (0, 0, -1, 3)  # padded cells keep their coordinate outside the input
    assert e.formula().endswith("+ 0.5 (bias) = 44.5") and e.value == 44.5 == e.conv_value
    assert "  pad   pad   pad" in str(e) and "b[0] = 0.5" in str(e)


def test_element_equals_conv_everywhere(rng):
    cases = [((2, 4, 5, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)),
             ((3, 7), (2, 3, 3), dict(stride=2, padding="same")),
             ((1, 2, 4, 3, 5), (2, 2, 2, 2, 3), dict(padding=1, dilation=(2, 1, 1)))]
    for xs, ws, kw in cases:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
        y = F.conv(x, w, b, **kw)
        for at in itertools.islice(np.ndindex(*y.shape), 0, None, 7):
            e = explain.element(x, w, b, at=at, **kw)
            assert abs(e.value - y[at]) < 1e-9 and e.matches
            assert len(e.terms) == int(np.prod(ws[1:]))


def test_element_channels_last_and_npy(tmp_path, capsys):
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    w = np.ones((2, 3, 2, 2), np.float32)
    e = explain.element(x, w, at=(1, 2, 0, 1), padding="same", data_format="channels_last")
    y = F.conv(x, w, padding="same", data_format="channels_last")
    assert e.value == y[1, 2, 0, 1] and e.terms[0].x_index[-1] == 0  # channel last in the index
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    code, out, _ = run(capsys, "explain", "element", "--x", str(tmp_path / "x.npy"), "--w", str(tmp_path / "w.npy"),
                       "--at", "1,2,0,1", "--padding", "same", "--data-format", "channels_last")
    assert code == 0 and f"= {int(y[1, 2, 0, 1])}\n" in out


# ---------------------------------------------------------------- explain backward
@pytest.mark.parametrize("kw", [dict(), dict(stride=2), dict(stride=2, padding=1), dict(stride=3, padding=(1, 0)),
                                dict(dilation=2, stride=2, padding="same"),
                                dict(input_shape=(2, 3, 7, 6), out_channels=4, kernel_size=(3, 2), stride=(2, 3),
                                     dilation=(1, 2)),
                                dict(input_shape=(2, 9), kernel_size=3, stride=2),
                                dict(input_shape=(1, 2, 5, 4, 6), kernel_size=2, stride=2, padding=1)])
def test_backward_by_hand_equals_vjp_and_reference(kw):
    e = explain.backward(**kw)
    assert e.matches and e.max_diff < 1e-9 and e.transpose_matches
    gx, gw, gb = reference.conv_vjp(e.grad_out, e.x, e.w, np.zeros(e.w.shape[0]), e.stride, e.padding, e.dilation)
    assert np.allclose(e.grad_x, gx) and np.allclose(e.grad_w, gw) and np.allclose(e.grad_b, gb)
    names = [s.name for s in e.steps]
    assert ("g dilated" in names) == any(s > 1 for s in e.stride)


def test_backward_text_and_given_arrays(capsys):
    x = np.arange(16.).reshape(1, 1, 4, 4)
    w = np.array([[[[1., 2.], [3., 4.]]]])
    g = np.ones((1, 1, 2, 2))
    e = explain.backward(x, w, g, stride=2)
    assert e.grad_w.tolist() == [[[[20., 24.], [36., 40.]]]]        # sums of the four 2x2 blocks' corners
    assert e.grad_x.tolist() == [[np.tile(w[0, 0], (2, 2)).tolist()]]  # each window gets w back
    text = str(e)
    assert "w rotated (1, 1, 2, 2)" in text and "[[[[4 3]" in text and "(matches)" in text
    code, out, _ = run(capsys, "explain", "backward", "--x", str(x.tolist()), "--w", str(w.tolist()), "--stride", "2",
                       "--grad-out", "[1, 1, 1, 1]")
    assert code == 0 and "g dilated (1, 1, 3, 3)" in out and out.count("(matches)") == 2
    code, out, _ = run(capsys, "explain", "backward", "--input", "2x3x6x6", "--out-channels", "2", "--padding", "same")
    assert code == 0 and "x (2, 3, 6, 6)" in out


def test_receptive_field_step_matches_receptive_field():
    layers = [3, {"kernel_size": 2, "stride": 2}, {"kernel_size": 3, "dilation": 2}, {"kernel_size": 3, "stride": 2}]
    rf = shapes.ReceptiveField((1, 1), (1, 1))
    for lay in layers:
        spec = lay if isinstance(lay, dict) else {"kernel_size": lay}
        rf = shapes.receptive_field_step(rf, spec["kernel_size"], spec.get("stride", 1), spec.get("dilation", 1))
    assert rf == shapes.receptive_field(layers, ndim=2)
