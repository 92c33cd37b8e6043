"""The convkit command: info and demo, and one-line errors."""
import subprocess
import sys
from pathlib import Path

import pytest

from convkit import cli

ROOT = Path(__file__).resolve().parents[1]


def test_info_reports_blas(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("numpy", "blas", "core type", "threads", "workspace"):
        assert key in out


def test_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "convkit", "info"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert r.returncode == 0, r.stderr
    assert "convkit" in r.stdout


def test_demo_runs_one_example(capsys):
    assert cli.main(["demo", "--only", "02_"]) == 0
    assert "17" in capsys.readouterr().out


def test_bad_command_exits_2(capsys):
    try:
        cli.main(["nonsense"])
    except SystemExit as e:
        assert e.code == 2


def _fake_blas(monkeypatch, corename, flags):
    from convkit import _blas
    monkeypatch.setattr(_blas, "cpu_flags", lambda: set(flags))
    monkeypatch.setattr(_blas, "blas_info", lambda: {"corename": corename})


AVX512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2"}


def _restarts(monkeypatch, argv, env=None):
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda exe, args, e: calls.append((args, e)))
    monkeypatch.setattr(cli.sys, "argv", argv)
    with monkeypatch.context() as m:
        for var in ("OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT", "CONVKIT_BLAS_TUNING", "CONVKIT_SET_BLAS"):
            m.delenv(var, raising=False)
        for k, v in (env or {}).items():
            m.setenv(k, v)
        cli._with_faster_blas()
    return calls


def test_heavy_commands_restart_once_with_openblas_tuned(monkeypatch):
    """`convkit train` execs itself once with AVX-512 kernels (when OpenBLAS picked AVX2 ones on an
    AVX-512 CPU) and idle OpenBLAS threads that sleep at once (both are read only when OpenBLAS loads)."""
    _fake_blas(monkeypatch, "Haswell", AVX512)
    (args, env), = _restarts(monkeypatch, ["convkit", "--debug", "train", "--epochs", "1"])
    assert args[1:] == ["-m", "convkit", "--debug", "train", "--epochs", "1"]
    assert env["OPENBLAS_CORETYPE"] == "SkylakeX" and env["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert env["CONVKIT_SET_BLAS"] == "OPENBLAS_CORETYPE,OPENBLAS_THREAD_TIMEOUT"
    # the user's own settings win, and a restarted process does not restart again
    (args, env), = _restarts(monkeypatch, ["convkit", "train"], {"OPENBLAS_CORETYPE": "Haswell"})
    assert "OPENBLAS_CORETYPE" not in env.get("CONVKIT_SET_BLAS") and env["OPENBLAS_CORETYPE"] == "Haswell"
    assert _restarts(monkeypatch, ["convkit", "train"], {"CONVKIT_BLAS_TUNING": "0"}) == []
    assert _restarts(monkeypatch, ["convkit", "train"], {"CONVKIT_SET_BLAS": "OPENBLAS_THREAD_TIMEOUT"}) == []
    assert _restarts(monkeypatch, ["convkit", "explain", "conv"]) == []       # light commands start once
    _fake_blas(monkeypatch, "SkylakeX", AVX512)                               # already the fast kernels
    (args, env), = _restarts(monkeypatch, ["convkit", "train"])
    assert "OPENBLAS_CORETYPE" not in env.get("CONVKIT_SET_BLAS")
    _fake_blas(monkeypatch, "Haswell", {"avx2"})                              # no AVX-512 on this CPU
    assert _restarts(monkeypatch, ["convkit", "eval"], {"OPENBLAS_THREAD_TIMEOUT": "28"}) == []


def test_info_says_who_set_the_core_type(monkeypatch, capsys):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "SkylakeX")
    monkeypatch.setenv("CONVKIT_SET_BLAS", "OPENBLAS_CORETYPE,OPENBLAS_THREAD_TIMEOUT")
    assert cli.main(["info"]) == 0
    assert "OPENBLAS_CORETYPE=SkylakeX set by the convkit command" in capsys.readouterr().out


@pytest.mark.parametrize("shape,message", [
    ("1x1000000x1000000", "bytes"),                                   # far more memory than any machine
    ("1x99999999999999999999x28", "--input must be sizes joined by x, 3 of them"),
    ("1x28", "--input must be sizes joined by x, 3 of them"),
])
def test_summary_input_errors_are_one_line(capsys, shape, message):
    assert cli.main(["summary", "--model", "mnist_cnn", "--input", shape]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit summary: ") and err.count("\n") == 1 and message in err
