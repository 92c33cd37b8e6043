"""Model summary: receptive field and jump per layer, and shape mismatches reported at the layer that breaks."""
import subprocess
import sys

import pytest

from convkit import cli, models, nn, shapes


def rows(s):
    return {r.name: r for r in s.rows}


def test_mnist_cnn_receptive_fields_match_the_layer_stack():
    s = models.mnist_cnn().summary((1, 28, 28))  # the Module method
    r = rows(s)
    stack = [5, {"kernel_size": 2, "stride": 2}, 5, {"kernel_size": 2, "stride": 2}]
    for name, upto in (("0", 1), ("2", 2), ("3", 3), ("5", 4)):
        want = shapes.receptive_field(stack[:upto], ndim=2)
        assert (r[name].receptive_field, r[name].jump) == (want.size, want.jump), name
    assert r["1"].receptive_field == r["0"].receptive_field  # ReLU keeps it
    assert r["6"].receptive_field is None and r["7"].jump is None  # Flatten, Linear: the whole input
    text = str(s)
    assert "16x16   4x4" in text and "all     -" in text and "RF: receptive field" in text
    assert r["0"].macs == 28 * 28 * 32 * 25 and s.total_params == 3_274_634  # the old columns are unchanged


def test_resnet_receptive_field_follows_the_longest_path():
    s = models.resnet8().summary((3, 32, 32))
    r = rows(s)
    main = [3, 3, 3, {"kernel_size": 3, "stride": 2}, 3, {"kernel_size": 3, "stride": 2}, 3]
    want = shapes.receptive_field(main, ndim=2)
    assert (r["layer3.0.conv2"].receptive_field, r["layer3.0.conv2"].jump) == (want.size, want.jump) == \
        ((25, 25), (4, 4))
    # the 1x1 stride-2 shortcut sees the block input (7x7 after layer1), not the main path
    assert r["layer2.0.shortcut.0"].receptive_field == (7, 7) and r["layer2.0.shortcut.0"].jump == (2, 2)
    assert r["fc"].receptive_field is None


def test_dilation_transpose_and_adaptive_pool():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2), nn.ConvTranspose2d(4, 2, 4, stride=2),
                        nn.AdaptiveAvgPool2d(3))
    r = rows(net.summary((1, 16, 16)))
    assert r["0"].receptive_field == (5, 5)
    # an output cell of the transposed conv gathers ceil(4/2) = 2 neighbouring input cells: 5 + 1
    assert r["1"].jump == (0.5, 0.5) and r["1"].receptive_field == (6, 6) and r["1"].output_shape == (2, 26, 26)
    # adaptive 26 -> 3: windows of ceil(26/3) = 9 cells, 8 apart
    assert r["2"].output_shape == (2, 3, 3) and r["2"].jump == (4, 4) and r["2"].receptive_field == (10, 10)


def test_linear_after_flatten_reports_the_size_it_should_have():
    with pytest.raises(ValueError) as e:
        models.mnist_cnn().summary((1, 32, 32))
    msg = str(e.value)
    assert msg.startswith("summary: Linear(7) expects 3136 input features but receives 4096 (from Flatten of 64x8x8)")
    assert "should have in_features=4096" in msg and "or the input should be 1x28x28" in msg
    with pytest.raises(ValueError, match=r"Linear\(7\) expects 400 input features but receives 576 \(from Flatten "
                                         r"of 16x6x6\).*in_features=576, or the input should be 1x28x28"):
        models.lenet5().summary((1, 32, 32))


def test_too_few_channels_is_reported_at_the_conv():
    with pytest.raises(ValueError, match=r"Conv2d\(0\) expects 1 input channel but receives 3 \(from the input "
                                         r"3x28x28\); it should have in_channels=3, or the input should have 1 "
                                         r"channel, as 1x28x28"):
        models.mnist_cnn().summary((3, 28, 28))
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(64, 8, 3))
    with pytest.raises(ValueError, match=r"Conv2d\(2\) expects 64 input channels but receives 32 \(from ReLU\(1\) "
                                         r"output 32x8x8\); it should have in_channels=32\."):
        net.summary((1, 10, 10))
    bn = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(1\) expects 4 input channels but receives 8.*num_features=8"):
        bn.summary((1, 10, 10))
    # after a failure the layers are unwrapped and work again
    assert net[0](__import__("numpy").zeros((1, 1, 10, 10), "float32")).shape == (1, 32, 8, 8)
    assert "forward" not in net[0].__dict__


def test_cli_summary_mismatch_is_one_line_exit_2(capsys):
    assert cli.main(["summary", "--model", "mnist_cnn", "--input", "1x32x32"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "Linear(7) expects 3136 input features but receives 4096" in err
    assert cli.main(["summary", "--model", "digits_cnn", "--input", "1x8x8"]) == 0
    out, _ = capsys.readouterr()
    assert "RF" in out and "jump" in out and "30,762" in out


def test_nn_does_not_import_models():
    code = "import sys, convkit.nn as nn; nn.Conv2d(1, 1, 1); print('convkit.models' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr
