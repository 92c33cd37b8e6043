"""Pictures: the sliding kernel (GIF and PNG strip), filters, feature maps and curves; each rendered,
checked not blank and with the expected panels or frames. matplotlib is optional: those tests skip."""
import json
import sys

import numpy as np
import pytest

from convkit import cli, models
from convkit.explain import pictures
from convkit.train.checkpoint import save_checkpoint


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- geometry (no matplotlib needed)
def test_slide_geometry_conv():
    s = pictures.slide((5, 5), 3, stride=2, padding=1)
    assert s.roles.shape == (7, 7) and (s.roles == 1).sum() == 49 - 25 and s.out_shape == (3, 3)
    assert len(s.frames) == 9
    (o, cells) = s.frames[4]
    assert o == (1, 1) and cells[0] == (2, 2) and cells[-1] == (4, 4)
    d = pictures.slide((7, 7), 3, dilation=2)
    assert d.out_shape == (3, 3) and d.frames[0][1][:3] == [(0, 0), (0, 2), (0, 4)]
    one = pictures.slide(8, 3, stride=2)
    assert one.roles.shape == (1, 8) and one.out_shape == (1, 3)
    ceil = pictures.slide(5, 2, stride=2, ceil_mode=True)  # pooling: the last window hangs over the end
    assert ceil.roles.tolist() == [[0, 0, 0, 0, 0, 1]] and ceil.out_shape == (1, 3)


def test_slide_geometry_transposed_is_the_zero_inserted_conv():
    s = pictures.slide((3, 3), 3, stride=2, padding=1, transposed=True, output_padding=1)
    # 3 cells with 1 zero between -> 5; padded D*(F-1)-P = 1 before and 1 + output_padding after -> 8
    assert s.roles.shape == (8, 8) and (s.roles == 0).sum() == 9 and (s.roles == 2).sum() == 25 - 9
    assert s.out_shape == (6, 6) and len(s.frames) == 36
    with pytest.raises(ValueError, match="padding <= D"):
        pictures.slide((5, 5), 3, stride=2, padding=3, transposed=True)
    with pytest.raises(ValueError, match="1 or 2 spatial dims"):
        pictures.slide((3, 3, 3), 2)


def test_missing_matplotlib_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    code, out, err = run(capsys, "explain", "conv", "--input", "1x1x5x5", "--out-channels", "1", "--kernel-size",
                         "3", "--animate", str(tmp_path / "a.gif"))
    assert code == 2 and "pip install 'convkit[plot]'" in err and len(err.strip().splitlines()) == 1
    assert "-> output 1x1x3x3" in out and not (tmp_path / "a.gif").exists()
    assert pictures.plot_curves([{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5}], tmp_path / "c.png") is False


# ---------------------------------------------------------------- rendered pictures
@pytest.fixture(scope="module")
def mpl():
    return pytest.importorskip("matplotlib")


def _png(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert float(np.var(img[..., :3])) > 1e-3, "picture is blank"
    return img


def test_strip_has_two_panels_per_step(mpl, tmp_path):
    s = pictures.slide((5, 5), 3, stride=2, padding=1)
    fig = pictures.slide_strip_figure(s)
    assert len(fig.axes) == 2 * 9
    # the first panel shows the window at the top-left corner of the padded input, in the window colour
    first = fig.axes[0].images[0].get_array()
    assert np.allclose(first[0, 0], pictures._WINDOW) and np.allclose(first[3, 3], pictures._INPUT)
    assert np.allclose(first[0, 4], pictures._PAD)
    pictures.save_figure(fig, tmp_path / "strip.png")
    _png(tmp_path / "strip.png")
    big = pictures.slide_strip_figure(pictures.slide((12, 12), 3), max_frames=16)
    assert len(big.axes) == 2 * 16


def test_gif_has_one_frame_per_output_cell(mpl, tmp_path, capsys):
    from PIL import Image

    code, out, _ = run(capsys, "explain", "conv", "--input", "1x1x5x5", "--out-channels", "1", "--kernel-size", "3",
                       "--stride", "2", "--padding", "1", "--animate", str(tmp_path / "conv.gif"))
    assert code == 0 and "(9 frames)" in out
    with Image.open(tmp_path / "conv.gif") as im:
        assert im.n_frames == 9
        frames = []
        for i in (0, 8):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), np.float64))
    assert all(np.var(f) > 10 for f in frames) and not np.array_equal(frames[0], frames[1])
    code, out, _ = run(capsys, "explain", "conv-transpose", "--input", "1x1x2x2", "--out-channels", "1",
                       "--kernel-size", "3", "--stride", "2", "--animate", str(tmp_path / "t.png"))
    assert code == 0 and "(16 steps)" in out  # output 5x5 = 25 cells, the strip shows 16
    _png(tmp_path / "t.png")
    code, out, err = run(capsys, "explain", "pool", "--input", "1x1x4x4x4", "--kernel-size", "2", "--animate",
                         str(tmp_path / "p.gif"))
    assert code == 2 and "1 or 2 spatial dims" in err


def _checkpoint(tmp_path):
    net = models.digits_cnn()
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"config": {"model": "digits_cnn", "dataset": "digits", "data": "digits"},
                           "model": net.state_dict()})
    return path, net


def test_show_filters_and_activations(mpl, tmp_path, capsys):
    ckpt, net = _checkpoint(tmp_path)
    code, out, _ = run(capsys, "show", "filters", "--checkpoint", str(ckpt), "--out", str(tmp_path / "f.png"))
    assert code == 0 and "32 filters of layer 0" in out and "(32, 1, 3, 3)" in out
    _png(tmp_path / "f.png")
    assert len(pictures.filters_figure(net[0].weight.data).axes) == 32
    assert len(pictures.filters_figure(np.random.default_rng(0).standard_normal((5, 3, 3, 3))).axes) == 5
    code, _, err = run(capsys, "show", "filters", "--checkpoint", str(ckpt), "--layer", "9")
    assert code == 2 and "--layer must be one of ['0', '3', '7']" in err

    img = (np.arange(64).reshape(1, 8, 8) % 16).astype(np.uint8) * 16
    np.save(tmp_path / "img.npy", img)
    code, out, _ = run(capsys, "show", "activations", "--checkpoint", str(ckpt), "--image", str(tmp_path / "img.npy"),
                       "--out", str(tmp_path / "a.png"), "--max-maps", "4")
    assert code == 0 and "0: 32 maps of 8x8" in out and "7: 64 maps of 4x4" in out
    _png(tmp_path / "a.png")
    maps = pictures.feature_maps(net, img.astype(np.float32) / 255)
    assert [name for name, _ in maps] == ["0", "3", "7"]
    assert len(pictures.activations_figure(img, maps, max_maps=4).axes) == 1 + 3 * 4


def test_show_curves_and_train_run_use_the_same_drawing(mpl, tmp_path, capsys):
    from convkit.train.run import plot_curves

    epochs = [{"epoch": i, "train_loss": 1.0 / i, "train_accuracy": 0.5 + 0.1 * i, "test_loss": 1.2 / i,
               "test_accuracy": 0.4 + 0.1 * i, "seconds": 1.0, "lr": 1e-3} for i in (1, 2, 3)]
    (tmp_path / "metrics.json").write_text(json.dumps({"config": {}, "epochs": epochs}))
    code, out, _ = run(capsys, "show", "curves", "--metrics", str(tmp_path), "--out", str(tmp_path / "c.png"))
    assert code == 0 and "3 epochs" in out and "test accuracy 0.7000" in out
    _png(tmp_path / "c.png")
    fig = pictures.curves_figure(epochs)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    assert plot_curves(epochs, tmp_path / "c2.png") is True
    _png(tmp_path / "c2.png")
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = run(capsys, "show", "curves", "--metrics", str(tmp_path / "bad.json"))
    assert code == 2 and "metrics.json written by convkit train" in err
