"""convkit train / eval / predict / summary: outputs, resume, and one-line errors."""
import json
import struct
import zlib

import numpy as np
import pytest

from convkit import cli, data


def write_png(path, img):
    """A minimal 8-bit greyscale PNG (filter 0 rows) for the predict tests."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    return out


def test_train_writes_metrics_checkpoint_and_summary(trained, capsys):
    m = json.loads((trained / "metrics.json").read_text())
    assert m["config"] == {"data": "digits", "dataset": "digits", "model": "digits_cnn", "epochs": 2,
                           "batch_size": 64, "optimizer": "adam", "lr": 0.001, "seed": 0}
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    for e in m["epochs"]:
        assert set(e) >= {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"}
    assert (trained / "checkpoint.npz").is_file()


def test_resume_extends_a_run_to_the_same_numbers(trained, tmp_path):
    assert cli.main(["train", "--epochs", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    straight = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    import shutil
    shutil.copytree(trained, tmp_path / "resumed")
    assert cli.main(["train", "--epochs", "3", "--out", str(tmp_path / "resumed"), "--resume", "--no-progress"]) == 0
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())["epochs"]
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(resumed) == strip(straight)


def test_eval_reports_the_last_test_accuracy(trained, capsys):
    capsys.readouterr()
    assert cli.main(["eval", "--checkpoint", str(trained / "checkpoint.npz")]) == 0
    acc = json.loads((trained / "metrics.json").read_text())["epochs"][-1]["test_accuracy"]
    assert f"test accuracy {acc:.4f}" in capsys.readouterr().out


def test_predict_npy_and_png(trained, tmp_path, capsys):
    test = data.digits(False)
    imgs = (test.images[:3].astype(np.float32) / 16)
    np.save(tmp_path / "batch.npy", imgs)
    write_png(tmp_path / "one.png", (test.images[0, 0].astype(np.uint16) * 255 // 16).astype(np.uint8))
    capsys.readouterr()
    assert cli.main(["predict", "--checkpoint", str(trained / "checkpoint.npz"), str(tmp_path / "batch.npy"),
                     str(tmp_path / "one.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith(f"{tmp_path / 'batch.npy'}[0]: class ")
    assert "top 3:" in lines[3]


def test_summary_table(capsys):
    assert cli.main(["summary", "--model", "mnist_cnn", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "total parameters: 3,274,634" in out and "32x28x28" in out and "627,200" in out


@pytest.mark.parametrize("argv,message", [
    (["summary", "--model", "mnist_cnn", "--input", "1x28xx"], "--input must be sizes joined by x"),
    (["summary", "--model", "vgg", "--input", "1x28x28"], "name must be one of"),
    (["train", "--data", "imagenet"], "--data must be digits, mnist:DIR"),
    (["train", "--data", "mnist"], "needs a folder"),
    (["train", "--data", "mnist:/no/such/dir"], "folder must exist"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--lr", "-1"], "--lr must be > 0"),
    (["eval", "--checkpoint", "/no/such.npz"], "existing checkpoint"),
    (["predict", "--checkpoint", "/no/such.npz", "x.npy"], "existing checkpoint"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_predict_wrong_size_and_missing_file(trained, tmp_path, capsys):
    np.save(tmp_path / "big.npy", np.zeros((1, 28, 28), np.float32))
    assert cli.main(["predict", "--checkpoint", str(trained / "checkpoint.npz"), str(tmp_path / "big.npy")]) == 2
    assert "must be images of shape 1x8x8" in capsys.readouterr().err
    assert cli.main(["predict", "--checkpoint", str(trained / "checkpoint.npz"), str(tmp_path / "no.npy")]) == 2
    assert "existing image or .npy file" in capsys.readouterr().err


def test_resume_with_other_settings_is_refused(trained, capsys):
    assert cli.main(["train", "--out", str(trained), "--resume", "--lr", "0.01", "--no-progress"]) == 2
    assert "--resume must use the run's own settings" in capsys.readouterr().err


def test_resume_without_checkpoint(tmp_path, capsys):
    assert cli.main(["train", "--out", str(tmp_path), "--resume"]) == 2
    assert "needs a checkpoint" in capsys.readouterr().err


def test_curves_png_when_matplotlib_is_installed(trained):
    pytest.importorskip("matplotlib")
    png = (trained / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
