"""Bad command-line input: one line on stderr naming the problem, exit code 2, no traceback;
``--debug`` shows the traceback. Through convkit.cli.main and through a real ``python -m convkit``."""
import os
import subprocess
import sys

import numpy as np
import pytest

from convkit import cli
from convkit.train import save_checkpoint


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--epochs", "1", "--batch-size", "256", "--out", str(out), "--no-progress"]) == 0
    return out


def _one_line_exit_2(argv, capsys, pattern):
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"convkit {argv[0]}: "), err
    assert pattern in lines[0], (pattern, err)
    return lines[0]


@pytest.mark.parametrize("shape", ["1x28xx", "x", "", "abc", "0x28x28", "-1x28x28", "1x28x28x", "1.5x28x28",
                                   "1;28;28", "1x2y"])
def test_malformed_shape_strings(shape, capsys):
    _one_line_exit_2(["summary", "--model", "mnist_cnn", f"--input={shape}"], capsys, "--input")


@pytest.mark.parametrize("shape", ["1x" + "9" * 30 + "x28", "1x28", "1x2x2"])
def test_shapes_the_model_cannot_take(shape, capsys):
    _one_line_exit_2(["summary", "--model", "mnist_cnn", f"--input={shape}"], capsys, "")


@pytest.mark.parametrize("spec, pattern", [
    ("imagenet", "--data must be digits, mnist:DIR"),
    ("mnist", "needs a folder"),
    ("cifar10:", "needs a folder"),
    ("digits:/tmp", "takes no folder"),
    ("fashion-mnist:/no/such/folder", "folder must exist"),
    (":", "--data must be"),
])
def test_bad_data_specs_for_train_and_eval(spec, pattern, run_dir, capsys):
    _one_line_exit_2(["train", "--data", spec, "--out", str(run_dir / "x"), "--no-progress"], capsys, pattern)
    _one_line_exit_2(["eval", "--checkpoint", str(run_dir / "checkpoint.npz"), "--data", spec], capsys, pattern)


def test_data_folders_without_the_files(tmp_path, capsys):
    for name in ("mnist", "cifar10"):
        _one_line_exit_2(["train", "--data", f"{name}:{tmp_path}", "--out", str(tmp_path / "o"), "--no-progress"],
                         capsys, str(tmp_path))


@pytest.mark.parametrize("argv, pattern", [
    (["train", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "--epochs", "-2"], "--epochs must be >= 1"),
    (["train", "--lr", "nan"], "--lr must be > 0"),
    (["train", "--model", "vgg99"], "--model must be one of"),
])
def test_bad_training_settings(argv, pattern, tmp_path, capsys):
    _one_line_exit_2(argv + ["--out", str(tmp_path), "--no-progress"], capsys, pattern)


def _bad_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("not a checkpoint")
    np.savez(tmp_path / "foreign.npz", w=np.ones(3))
    save_checkpoint(tmp_path / "not_training.npz", {"w": np.ones(3)})
    (tmp_path / "folder.npz").mkdir()
    return {"empty.npz": "it is empty", "text.npz": "not an .npz (zip) file", "foreign.npz": "no convkit header",
            "not_training.npz": "checkpoint", "folder.npz": "existing checkpoint file",
            "missing.npz": "existing checkpoint file"}


def test_missing_unreadable_and_foreign_checkpoints(tmp_path, capsys):
    for name, pattern in _bad_files(tmp_path).items():
        path = str(tmp_path / name)
        _one_line_exit_2(["eval", "--checkpoint", path], capsys, pattern)
        _one_line_exit_2(["predict", "--checkpoint", path, path], capsys, pattern)


def test_predict_inputs(run_dir, tmp_path, capsys):
    ck = str(run_dir / "checkpoint.npz")
    np.save(tmp_path / "big.npy", np.zeros((1, 28, 28), np.float32))
    np.save(tmp_path / "rgb.npy", np.zeros((3, 8, 8), np.float32))
    np.save(tmp_path / "cplx.npy", np.zeros((1, 8, 8), np.complex64))
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 8, 8), np.float32))
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "dir.png").mkdir()
    cases = {"big.npy": "1x8x8", "rgb.npy": "1x8x8", "cplx.npy": "dtype", "obj.npy": "pickle",
             "empty.npy": "", "fake.png": "fake.png", "notes.txt": "notes.txt", "dir.png": "existing image",
             "missing.png": "existing image"}
    for name, pattern in cases.items():
        _one_line_exit_2(["predict", "--checkpoint", ck, str(tmp_path / name)], capsys, pattern)


def test_unreadable_file_is_one_line(run_dir, tmp_path, capsys, monkeypatch):
    """A permission error (as for a file without read rights; tests may run as root, so it is injected)."""
    img = tmp_path / "x.npy"
    np.save(img, np.zeros((1, 8, 8), np.float32))
    real = np.load

    def denied(path, *a, **k):
        if str(path) == str(img):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(np, "load", denied)
    _one_line_exit_2(["predict", "--checkpoint", str(run_dir / "checkpoint.npz"), str(img)], capsys,
                     "Permission denied")


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValueError, match="--input must be sizes joined by x"):
        cli.main(["--debug", "summary", "--model", "mnist_cnn", "--input", "1x28xx"])


def _python_m(*argv):
    env = dict(os.environ, CONVKIT_BLAS_TUNING="0")
    return subprocess.run([sys.executable, "-m", "convkit", *argv], capture_output=True, text=True, env=env,
                          timeout=120)


def test_real_process_one_line_and_debug_traceback(tmp_path):
    r = _python_m("summary", "--model", "mnist_cnn", "--input", "1x28xx")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--input must be sizes joined by x" in r.stderr
    r = _python_m("eval", "--checkpoint", str(tmp_path / "missing.npz"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _python_m("--debug", "summary", "--model", "mnist_cnn", "--input", "1x28xx")
    assert r.returncode != 0 and "Traceback" in r.stderr and "ValueError" in r.stderr


def test_ctrl_c_in_a_real_train_process_saves_and_resumes(tmp_path):
    import signal
    import time

    from convkit.train import load_checkpoint

    env = dict(os.environ, CONVKIT_BLAS_TUNING="0")
    cmd = [sys.executable, "-m", "convkit", "train", "--epochs", "200", "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "checkpoint.npz").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.05)  # into the next epoch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("convkit train: interrupted at epoch ") and "--resume" in err
    state = load_checkpoint(tmp_path / "checkpoint.npz")
    done = state["epoch"]
    assert 1 <= done < 200
    r = subprocess.run(cmd[:5] + [str(done + 1)] + cmd[6:] + ["--resume"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(tmp_path / "checkpoint.npz")["epoch"] == done + 1
